import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import { resourceKey, type NetworkResource } from '../../src/domain/index.js';
import { silentLogger } from '../../src/log.js';
import { NftablesTarget, type NftablesTargetOptions } from '../../src/targets/nftables.js';
import { TargetError, type CallContext, type TargetGrant } from '../../src/targets/target.js';
import { Netns, netnsAvailable, skipOrFail, veth } from '../helpers/netns.js';

const VENDOR = '10.77.1.2';
const ASSET = '10.77.2.2';
const OFFICE = '10.77.3.2';
const TABLE = 'wogate';
/** Long enough for a SYN to cross two veth hops many times over; short enough to keep the file fast. */
const PROBE_MS = 1500;

/** Asset services: TCP echo on every port; on the first, UDP echo, or a 100 ms tick stream after "stream". */
const SERVER = `
const net = require('node:net'), dgram = require('node:dgram');
const [host, ...ports] = process.argv.slice(1);
let pending = ports.length + 1;
const ready = () => { if (--pending === 0) console.log('LISTENING'); };
for (const p of ports) net.createServer((s) => {
  s.on('error', () => {});
  s.on('data', (d) => s.write(d));
}).listen(Number(p), host, ready);
const u = dgram.createSocket('udp4');
u.on('message', (m, r) => {
  if (m.toString().includes('stream')) setInterval(() => u.send('tick\\n', r.port, r.address), 100);
  else u.send(m, r.port, r.address);
});
u.bind(Number(ports[0]), host, ready);`;

/** One connection attempt: prints CONNECTED (tcp) / ANSWERED (udp), REFUSED or TIMEOUT. */
const PROBE = `
const [host, port, ms, proto] = process.argv.slice(1);
const done = (w) => { console.log(w); process.exit(0); };
setTimeout(() => done('TIMEOUT'), Number(ms));
if (proto === 'udp') {
  const u = require('node:dgram').createSocket('udp4');
  u.on('message', () => done('ANSWERED'));
  u.on('error', (e) => done('ERROR ' + e.code));
  u.send('ping', Number(port), host);
} else {
  const s = require('node:net').connect({ host, port: Number(port) });
  s.on('connect', () => done('CONNECTED'));
  s.on('error', (e) => done(e.code === 'ECONNREFUSED' ? 'REFUSED' : 'ERROR ' + e.code));
}`;

/** A long-lived tcp or udp client: stdin lines are sent, everything received comes out as "RECV <line>". */
const SESSION = `
const [host, port, proto] = process.argv.slice(1);
const print = (d) => { for (const l of d.toString().split('\\n')) if (l) console.log('RECV ' + l); };
let send;
if (proto === 'udp') {
  const u = require('node:dgram').createSocket('udp4');
  u.on('message', print);
  u.connect(Number(port), host, () => console.log('CONNECTED'));
  send = (l) => u.send(l + '\\n');
} else {
  const s = require('node:net').connect({ host, port: Number(port) }, () => console.log('CONNECTED'));
  s.on('data', print);
  s.on('error', (e) => console.log('ERROR ' + e.code));
  s.on('close', () => console.log('CLOSED'));
  send = (l) => s.write(l + '\\n');
}
require('node:readline').createInterface({ input: process.stdin }).on('line', send);`;

function ctx(now = new Date()): CallContext {
  return { now, log: silentLogger };
}

let seq = 0;
function grant(r: Partial<NetworkResource>, validUntil: Date): TargetGrant {
  const resource = { kind: 'network', sourceAddress: VENDOR, address: ASSET, port: 502, protocol: 'tcp', ...r } as NetworkResource;
  const id = `g${++seq}`;
  return {
    id,
    key: `cmms:WO-${id}|tech-1|fw|${resourceKey(resource)}`,
    orderKey: `cmms:WO-${id}`,
    source: 'cmms',
    orderId: `WO-${id}`,
    vendorId: 'acme',
    technicianId: 'tech-1',
    assetId: 'plc-1',
    targetId: 'fw',
    resource,
    validFrom: new Date(Date.now() - 1000),
    validUntil,
  };
}

const inSeconds = (s: number): Date => new Date(Date.now() + s * 1000);

async function probe(from: Netns, port: number, proto: 'tcp' | 'udp' = 'tcp'): Promise<string> {
  const child = from.node(PROBE, ASSET, String(port), String(PROBE_MS), proto);
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  await new Promise((resolve) => child.on('exit', resolve));
  return out.trim();
}

class Session {
  readonly lines: string[] = [];
  constructor(private readonly child: ReturnType<Netns['node']>) {
    createInterface({ input: child.stdout }).on('line', (l) => this.lines.push(l));
  }
  send(text: string): void {
    this.child.stdin.write(`${text}\n`);
  }
  count(line: string): number {
    return this.lines.filter((l) => l === line).length;
  }
  async waitFor(line: string, ms: number): Promise<boolean> {
    for (const end = Date.now() + ms; Date.now() < end; await sleep(20)) if (this.lines.includes(line)) return true;
    return this.lines.includes(line);
  }
  close(): void {
    this.child.kill('SIGKILL');
  }
}

describe('integration: nftables target in a network namespace', function () {
  this.timeout(30_000);
  let vendor: Netns, fw: Netns, asset: Netns, office: Netns;
  let options: NftablesTargetOptions;
  let target: NftablesTarget;
  const made: Netns[] = [];

  async function chainRules(): Promise<number> {
    const doc = JSON.parse(await fw.exec('nft', '-j', 'list', 'chain', 'inet', TABLE, 'forward')) as { nftables: { rule?: unknown }[] };
    return doc.nftables.filter((i) => i.rule !== undefined).length;
  }

  async function elements(): Promise<string[]> {
    return (await target.list(ctx())).map((e) => String(e.ref['element']));
  }

  before(async function () {
    const available = await netnsAvailable();
    if (!available.ok) skipOrFail(this, 'nftables integration tests', available.why);
    for (const label of ['vendor', 'fw', 'asset', 'office']) made.push(await Netns.create(label));
    [vendor, fw, asset, office] = made as [Netns, Netns, Netns, Netns];
    await veth(fw, 'to-vendor', '10.77.1.1/24', vendor, 'eth0', `${VENDOR}/24`);
    await veth(fw, 'to-asset', '10.77.2.1/24', asset, 'eth0', `${ASSET}/24`);
    await veth(fw, 'to-office', '10.77.3.1/24', office, 'eth0', `${OFFICE}/24`);
    for (const [ns, gw] of [[vendor, '10.77.1.1'], [asset, '10.77.2.1'], [office, '10.77.3.1']] as const) {
      await ns.ip('route', 'add', 'default', 'via', gw);
    }
    await fw.exec('sysctl', '-q', '-w', 'net.ipv4.ip_forward=1');
    const server = asset.node(SERVER, ASSET, '502', '503');
    await new Promise<void>((resolve, reject) => {
      server.stdout.on('data', (b: Buffer) => b.toString().includes('LISTENING') && resolve());
      server.on('exit', (code) => reject(new Error(`asset server exited with ${String(code)}`)));
    });
    options = { id: 'fw', table: TABLE, netns: fw.name, vendorSources: ['10.77.1.0/24'] };
    target = new NftablesTarget(options);
  });

  after(async () => {
    for (const ns of made.reverse()) await ns.destroy();
  });

  it('lets the vendor through before init (the topology routes), and denies it once the table exists', async () => {
    expect(await probe(vendor, 502)).to.equal('CONNECTED');
    await target.init(ctx());
    expect(await probe(vendor, 502)).to.equal('TIMEOUT');
  });

  describe('once initialised', () => {
    beforeEach(async () => {
      await target.init(ctx());
      await fw.exec('nft', 'flush', 'set', 'inet', TABLE, 'vendor_access');
    });

    it('opens exactly the granted vendor, asset, protocol and port: tcp 502 yes, tcp 503 and udp 502 no', async () => {
      const ref = await target.provision(grant({}, inSeconds(60)), ctx());
      expect(ref).to.deep.equal({ element: `${VENDOR} . ${ASSET} . tcp . 502` });
      const [tcp502, tcp503, udp502] = await Promise.all([probe(vendor, 502), probe(vendor, 503), probe(vendor, 502, 'udp')]);
      expect({ tcp502, tcp503, udp502 }).to.deep.equal({ tcp502: 'CONNECTED', tcp503: 'TIMEOUT', udp502: 'TIMEOUT' });
      await target.provision(grant({ protocol: 'udp' }, inSeconds(60)), ctx());
      expect(await probe(vendor, 502, 'udp')).to.equal('ANSWERED');
    });

    it('leaves traffic from outside the vendor sources untouched', async () => {
      expect(await Promise.all([probe(office, 502), probe(office, 503)])).to.deep.equal(['CONNECTED', 'CONNECTED']);
    });

    it('on revoke, refuses new connections and cuts open tcp and udp sessions in both directions', async () => {
      const grants = [grant({}, inSeconds(60)), grant({ protocol: 'udp' }, inSeconds(60))];
      for (const g of grants) await target.provision(g, ctx());
      const tcp = new Session(vendor.node(SESSION, ASSET, '502', 'tcp'));
      const udp = new Session(vendor.node(SESSION, ASSET, '502', 'udp'));
      try {
        for (const s of [tcp, udp]) {
          expect(await s.waitFor('CONNECTED', 2000), 'session connects').to.equal(true);
          s.send('hello');
          expect(await s.waitFor('RECV hello', 1000), 'echo before revoke').to.equal(true);
        }
        // A flow the asset keeps alive on its own: conntrack would call it established forever.
        udp.send('stream');
        expect(await udp.waitFor('RECV tick', 1000), 'asset streams before revoke').to.equal(true);

        for (const g of grants) await target.revoke(g, undefined, ctx());
        await sleep(300); // whatever was already in flight
        const ticks = udp.count('RECV tick');
        tcp.send('after');
        udp.send('after');
        const [fresh, tcpEcho, udpEcho] = await Promise.all([probe(vendor, 502), tcp.waitFor('RECV after', PROBE_MS), udp.waitFor('RECV after', PROBE_MS)]);
        expect(fresh, 'new connection').to.equal('TIMEOUT');
        expect({ tcpEcho, udpEcho }, 'vendor to asset in the open sessions').to.deep.equal({ tcpEcho: false, udpEcho: false });
        expect(udp.count('RECV tick'), 'asset to vendor in the open session').to.equal(ticks);
      } finally {
        tcp.close();
        udp.close();
      }
    });

    it('ends access at validUntil by itself, with no call from wogate (native expiry)', async () => {
      expect(target.nativeExpiry).to.equal(true);
      const validUntil = inSeconds(3);
      await target.provision(grant({}, validUntil), ctx());
      expect(await probe(vendor, 502)).to.equal('CONNECTED');
      await sleep(validUntil.getTime() - Date.now() + 200);
      expect(await probe(vendor, 502)).to.equal('TIMEOUT');
      expect(await elements()).to.deep.equal([]);
    });

    it('provisioning twice keeps one element and takes the new timeout; update moves it either way; revoking twice succeeds', async () => {
      const element = `${VENDOR} . ${ASSET} . tcp . 502`;
      const first = grant({}, inSeconds(60));
      await target.provision(first, ctx());
      const later = { ...first, validUntil: inSeconds(600) };
      await target.provision(later, ctx());
      let entries = await target.list(ctx());
      expect(entries.map((e) => e.ref)).to.deep.equal([{ element }]);
      expect(entries[0]?.expiresAt?.getTime()).to.be.within(later.validUntil.getTime() - 2000, later.validUntil.getTime() + 100);

      const shorter = { ...first, validUntil: inSeconds(120) };
      expect(await target.update(shorter, { element }, ctx())).to.deep.equal({ element });
      entries = await target.list(ctx());
      expect(entries).to.have.length(1);
      expect(entries[0]?.expiresAt?.getTime()).to.be.within(shorter.validUntil.getTime() - 2000, shorter.validUntil.getTime() + 100);
      expect(await probe(vendor, 502)).to.equal('CONNECTED');

      // A window moved into the past means "no access now", not "keep the old element".
      await target.update({ ...first, validUntil: new Date(Date.now() - 1000) }, { element }, ctx());
      expect(await elements()).to.deep.equal([]);

      await target.provision(first, ctx());
      await target.revoke(first, { element }, ctx());
      await target.revoke(first, { element }, ctx());
      await target.revoke(first, undefined, ctx());
      expect(await elements()).to.deep.equal([]);
    });

    it('lists every element with its expiry relative to ctx.now', async () => {
      const a = grant({ port: 502 }, inSeconds(90));
      const b = grant({ port: 503, protocol: 'udp' }, inSeconds(7200));
      await target.provision(a, ctx());
      await target.provision(b, ctx());
      const listed = await target.list(ctx());
      const byElement = new Map(listed.map((e) => [String(e.ref['element']), e]));
      expect([...byElement.keys()].sort()).to.deep.equal([`${VENDOR} . ${ASSET} . tcp . 502`, `${VENDOR} . ${ASSET} . udp . 503`]);
      for (const [g, el] of [[a, `${VENDOR} . ${ASSET} . tcp . 502`], [b, `${VENDOR} . ${ASSET} . udp . 503`]] as const) {
        const entry = byElement.get(el);
        expect(entry?.key, 'the grant key is not knowable from an element').to.equal(undefined);
        expect(entry?.expiresAt?.getTime()).to.be.within(g.validUntil.getTime() - 2000, g.validUntil.getTime() + 100);
      }
      // expiresAt is anchored on the caller's clock, so a test clock moves it.
      const shifted = await target.list(ctx(new Date(Date.now() + 3_600_000)));
      const t = shifted.find((e) => e.ref['element'] === `${VENDOR} . ${ASSET} . tcp . 502`);
      expect(t?.expiresAt?.getTime()).to.be.within(a.validUntil.getTime() + 3_598_000, a.validUntil.getTime() + 3_600_100);
    });

    it('init twice, or by a restarted wogate, keeps the rules single and the elements with their timeouts', async () => {
      const g = grant({}, inSeconds(300));
      await target.provision(g, ctx());
      const rules = await chainRules();
      expect(rules).to.equal(4);
      await target.init(ctx());
      await new NftablesTarget(options).init(ctx());
      expect(await chainRules()).to.equal(rules);
      const entries = await target.list(ctx());
      expect(entries).to.have.length(1);
      expect(entries[0]?.expiresAt?.getTime()).to.be.within(g.validUntil.getTime() - 2000, g.validUntil.getTime() + 100);
      expect(await probe(vendor, 502)).to.equal('CONNECTED');
    });

    it('recreates its table and deny rules when something outside wogate deleted them', async () => {
      await fw.exec('nft', 'delete', 'table', 'inet', TABLE);
      expect(await probe(vendor, 503), 'fail-open while the table is gone').to.equal('CONNECTED');
      await target.provision(grant({}, inSeconds(60)), ctx());
      expect(await chainRules()).to.equal(4);
      expect(await Promise.all([probe(vendor, 502), probe(vendor, 503)])).to.deep.equal(['CONNECTED', 'TIMEOUT']);
      await fw.exec('nft', 'delete', 'table', 'inet', TABLE);
      expect(await target.list(ctx())).to.deep.equal([]);
      expect(await chainRules()).to.equal(4);
    });

    it('with managedPorts, denies those ports to every source that holds no grant', async () => {
      const guarded = new NftablesTarget({ ...options, managedPorts: [{ protocol: 'tcp', port: 503 }] });
      try {
        await guarded.init(ctx());
        expect(await Promise.all([probe(office, 502), probe(office, 503)])).to.deep.equal(['CONNECTED', 'TIMEOUT']);
        await guarded.provision(grant({ sourceAddress: OFFICE, port: 503 }, inSeconds(60)), ctx());
        expect(await probe(office, 503)).to.equal('CONNECTED');
      } finally {
        await target.init(ctx());
      }
      expect(await chainRules()).to.equal(4);
    });

    it('reports a failed nft call as a retryable TargetError carrying its stderr; a missing nft binary is not retryable', async () => {
      const noNs = await new NftablesTarget({ ...options, netns: 'wg-no-such-namespace' }).init(ctx()).then(() => undefined, (e: unknown) => e);
      expect(noNs).to.be.instanceOf(TargetError);
      expect((noNs as TargetError).retryable).to.equal(true);
      expect(String((noNs as TargetError).details?.['stderr'])).to.include('wg-no-such-namespace');
      const noNft = await new NftablesTarget({ ...options, netns: fw.name, nft: '/nonexistent/nft' }).init(ctx()).then(() => undefined, (e: unknown) => e);
      expect((noNft as TargetError).retryable, String(noNft)).to.equal(false);
    });

    it('rejects injected, malformed and IPv6 input before nft is ever run', async () => {
      // This target's nft does not exist: any input that got as far as running it would fail differently.
      const blind = new NftablesTarget({ ...options, nft: '/nonexistent/nft' });
      const bad: [Partial<NetworkResource>, string][] = [
        [{ sourceAddress: '1.2.3.4 }; flush ruleset; {' }, 'invalid_input'],
        [{ address: `${ASSET}\nflush ruleset` }, 'invalid_input'],
        [{ address: `${ASSET} . ${ASSET}` }, 'invalid_input'],
        [{ address: '010.077.002.002' }, 'invalid_input'],
        [{ address: '10.77.2.256' }, 'invalid_input'],
        [{ address: 'fe80::1%eth0' }, 'invalid_input'],
        [{ port: 70000 }, 'invalid_input'],
        [{ port: 0 }, 'invalid_input'],
        [{ port: 502.5 }, 'invalid_input'],
        [{ port: '502 } ; flush ruleset' as unknown as number }, 'invalid_input'],
        [{ protocol: 'tcp }' as 'tcp' }, 'invalid_input'],
        [{ protocol: 'icmp' as 'tcp' }, 'invalid_input'],
        [{ sourceAddress: 'fd00:77::2' }, 'ipv6_unsupported'],
        [{ address: '::ffff:10.77.2.2' }, 'ipv6_unsupported'],
      ];
      for (const [resource, reason] of bad) {
        const g = grant(resource, inSeconds(60));
        for (const call of [() => blind.provision(g, ctx()), () => blind.update(g, undefined, ctx()), () => target.provision(g, ctx())]) {
          const e: unknown = await call().then(
            () => undefined,
            (err: unknown) => err,
          );
          expect(e, JSON.stringify(resource)).to.be.instanceOf(TargetError);
          expect((e as TargetError).retryable, JSON.stringify(resource)).to.equal(false);
          expect((e as TargetError).details?.['reason'], JSON.stringify(resource)).to.equal(reason);
        }
        // Nothing that could be provisioned: revoking it is a no-op and never reaches nft either.
        await blind.revoke(g, undefined, ctx());
      }
      expect(await chainRules()).to.equal(4);
      expect(await elements()).to.deep.equal([]);
    });
  });
});

// Pure option checks: they run everywhere, namespaces or not.
describe('nftables target options', () => {
  const base: NftablesTargetOptions = { id: 'fw', table: TABLE, vendorSources: ['10.77.1.0/24'] };

  it('renders one table, one timeout set keyed vendor . asset . protocol . port, and a chain rebuilt in the same transaction', () => {
    const t = new NftablesTarget({ ...base, managedPorts: [{ protocol: 'tcp', port: 502 }] });
    expect(t.ruleset.split('\n')).to.deep.equal([
      'add table inet wogate',
      'add set inet wogate vendor_access { type ipv4_addr . ipv4_addr . inet_proto . inet_service; flags timeout; }',
      'add chain inet wogate forward { type filter hook forward priority 0; policy accept; }',
      'flush chain inet wogate forward',
      'add rule inet wogate forward ip saddr . ip daddr . meta l4proto . th dport @vendor_access accept',
      'add rule inet wogate forward ct state established ct direction reply ip daddr . ip saddr . meta l4proto . th sport @vendor_access accept',
      'add rule inet wogate forward ip saddr { 10.77.1.0/24 } drop',
      'add rule inet wogate forward ip daddr { 10.77.1.0/24 } drop',
      'add rule inet wogate forward meta l4proto . th dport { tcp . 502 } drop',
      '',
    ]);
  });

  it('refuses configurations that would inject nft syntax or govern nothing', () => {
    const reject = (o: Partial<NftablesTargetOptions>): void => {
      expect(() => new NftablesTarget({ ...base, ...o } as NftablesTargetOptions), JSON.stringify(o)).to.throw(TargetError);
    };
    reject({ table: 'wogate; flush ruleset' });
    reject({ set: 'a b' });
    reject({ chain: '' });
    reject({ netns: '../etc' });
    reject({ vendorSources: ['10.77.1.0/33'] });
    reject({ vendorSources: ['10.77.1.0/24 } accept'] });
    reject({ vendorSources: [] });
    reject({ managedPorts: [{ protocol: 'tcp', port: 65536 }] });
    reject({ hook: 'prerouting' as 'forward' });
    expect(new NftablesTarget({ ...base, vendorSources: ['10.77.1.9/24', 'fd00:77::/64'] }).ruleset).to.include('ip saddr { 10.77.1.0/24 } drop').and.include('ip6 saddr { fd00:77::/64 } drop');
    expect(new NftablesTarget({ ...base, vendorSources: [], policy: 'drop' }).ruleset).to.include('policy drop;');
  });
});
