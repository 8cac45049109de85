import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { demoOrder } from '../../src/demo/demo.js';
import { MaximoSim } from '../sims/maximo.js';
import { startDaemon, until, type TestDaemon } from '../helpers/daemon.js';
import { Netns, netnsAvailable, skipOrFail, veth } from '../helpers/netns.js';
import { tmpDir } from '../helpers/world.js';

const VENDOR = '10.78.1.2';
const ASSET = '10.78.2.2';

/**
 * One TCP attempt from inside a namespace: CONNECTED, REFUSED or TIMEOUT after `wait` ms. A probe
 * expected to connect waits long (a busy machine must not turn it into TIMEOUT); one expected to
 * be dropped waits 1.5 s: a dropped SYN never gets an answer, so nothing races that deadline.
 */
const OPEN_MS = 10_000;
const PROBE = `
const [host, port, wait] = process.argv.slice(1);
const done = (w) => { console.log(w); process.exit(0); };
setTimeout(() => done('TIMEOUT'), Number(wait));
const s = require('node:net').connect({ host, port: Number(port) });
s.on('connect', () => done('CONNECTED'));
s.on('error', (e) => done(e.code === 'ECONNREFUSED' ? 'REFUSED' : 'ERROR ' + e.code));`;

function probe(ns: Netns, port: number, waitMs = 1500): Promise<string> {
  return new Promise((resolve) => {
    let out = '';
    const p = ns.node(PROBE, ASSET, String(port), String(waitMs));
    p.stdout.on('data', (b: Buffer) => (out += b.toString()));
    p.on('exit', () => resolve(out.trim()));
  });
}

// The whole path a plant would run: a signed webhook in, policy, the nftables target in a
// firewall namespace, and a real TCP connection from a vendor namespace to an asset namespace.
describe('e2e: approved order → nftables access → closed order → no access', function () {
  this.timeout(60_000);
  const made: Netns[] = [];
  let vendor: Netns;
  let fw: Netns;
  let asset: Netns;
  let files: string;
  let t: TestDaemon | undefined;
  let maximo: MaximoSim | undefined;

  before(async function () {
    const available = await netnsAvailable();
    if (!available.ok) skipOrFail(this, 'nftables end-to-end test', available.why);
    for (const label of ['vendor', 'fw', 'asset']) made.push(await Netns.create(label));
    [vendor, fw, asset] = made as [Netns, Netns, Netns];
    await veth(fw, 'to-vendor', '10.78.1.1/24', vendor, 'eth0', `${VENDOR}/24`);
    await veth(fw, 'to-asset', '10.78.2.1/24', asset, 'eth0', `${ASSET}/24`);
    await vendor.ip('route', 'add', 'default', 'via', '10.78.1.1');
    await asset.ip('route', 'add', 'default', 'via', '10.78.2.1');
    await fw.exec('sysctl', '-q', '-w', 'net.ipv4.ip_forward=1');
    const server = asset.node(`for (const p of [502, 5900]) require('node:net').createServer((s) => s.end()).listen(p, '${ASSET}', () => p === 5900 && console.log('LISTENING'));`);
    await new Promise<void>((resolve) => server.stdout.on('data', (b: Buffer) => b.toString().includes('LISTENING') && resolve()));

    // Registers and a policy of this test's own, addressed into the namespaces.
    files = tmpDir();
    fs.mkdirSync(path.join(files, 'policies'));
    fs.writeFileSync(path.join(files, 'assets.yaml'), `assets:\n  - {id: PLC-CL2-01, class: PLC, criticality: critical, site: north-wtp, zone: process-control, endpoints: [{address: ${ASSET}, ports: [502, 5900], protocol: tcp}]}\n  - {id: HMI-FLT-01, class: HMI, criticality: high, site: north-wtp, zone: process-control, endpoints: [{address: 10.78.2.3, ports: [502], protocol: tcp}]}\n`);
    fs.writeFileSync(path.join(files, 'vendors.yaml'), `vendors:\n  - id: acme-controls\n    technicians: [{id: tech-jdoe, address: ${VENDOR}}]\n`);
    fs.writeFileSync(path.join(files, 'policies', 'fw.yaml'), 'apiVersion: wogate/v1\nkind: AccessPolicy\nmetadata: {name: fw}\nrules:\n  - id: modbus\n    match: {vendors: [acme-controls], assetClasses: [PLC, HMI]}\n    require: {statuses: [approved, in_progress], minApprovals: 1, maxDuration: 12h}\n    grant: [{type: network, target: plant-fw, ports: [502]}]\n');
    maximo = await MaximoSim.start();
    const auth = maximo.hookAuth;
    if (auth.kind !== 'basic') throw new Error('the Maximo simulator defaults to basic auth');
    process.env.TEST_MX_API_KEY = maximo.apiKey;
    process.env.TEST_MX_HOOK_PASSWORD = auth.password;
    t = await startDaemon({
      edit: (c) => {
        c.sources.push({
          id: 'maximo',
          kind: 'maximo',
          maximo: { baseUrl: maximo?.url, apiKey: 'env:TEST_MX_API_KEY', idFormat: 'wonum', webhook: { basic: [{ username: auth.username, password: 'env:TEST_MX_HOOK_PASSWORD' }] } },
          poll: { incremental: '*/5 * * * *', fullResync: '0 * * * *' },
        });
        c.policies.dir = path.join(files, 'policies');
        c.register.assets = path.join(files, 'assets.yaml');
        c.register.vendors = path.join(files, 'vendors.yaml');
        c.targets[1].enabled = true;
        c.targets[1].nftables.netns = fw.name;
        c.targets[1].nftables.vendorSources = ['10.78.1.0/24'];
      },
    });
  });

  after(async () => {
    await t?.stop();
    await maximo?.close();
    for (const ns of made.reverse()) await ns.destroy();
    if (files) fs.rmSync(files, { recursive: true, force: true });
  });

  it('opens Modbus to the asset only while the order is approved, and never the other port', async () => {
    const td = t as TestDaemon;
    expect(await probe(vendor, 502), 'denied before any order').to.equal('TIMEOUT');

    expect((await td.hook(demoOrder('WO-NFT', 'APPR', new Date(), new Date()))).status).to.equal(202);
    await until(async () => (await td.daemon.runtime.store.listGrants({ states: ['active'] })).length === 2, 'both grants active');
    expect(await probe(vendor, 502, OPEN_MS), 'granted port').to.equal('CONNECTED');
    expect(await probe(vendor, 5900), 'port the policy does not open').to.equal('TIMEOUT');
    const set = await fw.exec('nft', 'list', 'set', 'inet', 'wogate', 'vendor_access');
    expect(set).to.include(`${VENDOR} . ${ASSET} . tcp . 502 timeout`);

    expect((await td.hook(demoOrder('WO-NFT', 'CLOSE', new Date(Date.now() + 1000), new Date()))).status).to.equal(202);
    await until(async () => (await td.daemon.runtime.store.listGrants({ states: ['revoked'] })).length === 2, 'both grants revoked');
    expect(await probe(vendor, 502), 'revoked').to.equal('TIMEOUT');
    expect((await td.daemon.runtime.audit.verify()).ok).to.equal(true);
  });

  it('Maximo: an approved work order opens nftables access, completing it closes access, and the worklog says both', async () => {
    const td = t as TestDaemon;
    const sim = maximo as MaximoSim;
    const hook = `${td.daemon.url}/v1/hooks/maximo`;
    const spec = {
      id: '4200170', status: 'approved' as const, vendorId: 'acme-controls', technicianIds: ['tech-jdoe'], assetIds: ['PLC-CL2-01'],
      start: new Date(Date.now() - 60_000), end: new Date(Date.now() + 3_600_000), type: 'corrective' as const, site: 'north-wtp', approvers: ['SUPER1'], title: 'Chlorinator PLC I/O card',
    };
    sim.upsert(spec);
    expect(await sim.notify(spec.id, hook)).to.equal(202);
    await until(async () => (await td.daemon.runtime.store.listGrants({ orderKey: 'maximo/4200170', states: ['active'] })).length === 1, 'Maximo grant active');
    expect(await probe(vendor, 502, OPEN_MS)).to.equal('CONNECTED');

    sim.change(spec.id, { status: 'completed' });
    expect(await sim.notify(spec.id, hook)).to.equal(202);
    await until(async () => (await td.daemon.runtime.store.listGrants({ orderKey: 'maximo/4200170', states: ['revoked'] })).length === 1, 'Maximo grant revoked');
    expect(await probe(vendor, 502)).to.equal('TIMEOUT');

    await until(() => sim.notes(spec.id).join('\n').includes('access ENDED'), 'worklog entries written back', 10_000);
    const log = sim.notes(spec.id).join('\n');
    expect(log).to.match(/access GRANTED: tech-jdoe -> plc-cl2-01 \(network access\) on plant-fw/);
    expect(log).to.match(/access ENDED: tech-jdoe -> plc-cl2-01/);
    // The worklog is read by the whole maintenance organisation: no address unless writeBack.detail is full.
    expect(log).not.to.match(/\b\d{1,3}(\.\d{1,3}){3}\b/);
  });
});
