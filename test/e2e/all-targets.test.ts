import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { demoOrder } from '../../src/demo/demo.js';
import type { Grant } from '../../src/domain/index.js';
import { startDaemon, until, type TestDaemon } from '../helpers/daemon.js';
import { tmpDir } from '../helpers/world.js';
import { CyberArkSim } from '../sims/cyberark.js';
import { FortiGateSim } from '../sims/fortigate.js';
import { LenelSim } from '../sims/lenel.js';

const TOKEN = 'fgt-e2e-token-0123456789abcdef';
const PVWA_PASSWORD = 'pvwa-e2e-s3cret';
const ONGUARD_APP = 'onguard-e2e-app-id';
const ONGUARD_PASSWORD = 'onguard-e2e-s3cret';
const CA_PASSPHRASE = 'ca-e2e-passphrase-long-enough';
const BADGE = 13987;
const GROUP = 'WOGATE-PLC-CL2-MODBUS';
const LEVEL = 'WOGATE Chlorine Room';
const SAFE = 'Vendor-PLC';

// One work order, four kinds of access: a firewall flow (FortiGate), a door (Lenel OnGuard), a
// vault safe (CyberArk) and a client certificate (wogate's own CA). The daemon is real, the
// vendor systems are simulators of their documented APIs over HTTP, the certificate and CRL are
// checked with openssl. Closing the order takes all four away.
describe('e2e: one work order across network, badge, PAM and certificate targets', function () {
  this.timeout(60_000);
  let fgt: FortiGateSim;
  let onguard: LenelSim;
  let pvwa: CyberArkSim;
  let files: string;
  let t: TestDaemon;
  let levelId: number;

  before(async () => {
    fgt = await FortiGateSim.start({ token: TOKEN });
    fgt.addGroup(GROUP);
    onguard = await LenelSim.start({ applicationId: ONGUARD_APP, password: ONGUARD_PASSWORD, timeZone: 'Europe/Berlin' });
    onguard.addBadge({ id: BADGE, status: 1, badgeKey: BADGE });
    levelId = onguard.addAccessLevel(LEVEL);
    pvwa = await CyberArkSim.start({ accounts: [{ method: 'CyberArk', username: 'svc-wogate', password: PVWA_PASSWORD }], safes: [SAFE] });

    files = tmpDir();
    fs.mkdirSync(path.join(files, 'policies'));
    fs.writeFileSync(path.join(files, 'assets.yaml'), `assets:
  - id: PLC-CL2-01
    class: PLC
    criticality: critical
    site: north-wtp
    zone: process-control
    endpoints: [{address: 10.20.0.10, ports: [502], protocol: tcp}]
    badgeAreas: ["${LEVEL}"]
    pamTargets: [${SAFE}]
  - {id: HMI-FLT-01, class: HMI, criticality: high, site: north-wtp, zone: process-control, endpoints: [{address: 10.20.0.11, ports: [502], protocol: tcp}]}
`);
    fs.writeFileSync(path.join(files, 'vendors.yaml'), `vendors:
  - id: acme-controls
    technicians:
      - id: tech-jdoe
        address: 10.8.0.21
        accounts: {pam: acme.jdoe, badge: "${BADGE}", certificate: jdoe.acme-controls}
`);
    fs.writeFileSync(path.join(files, 'policies', 'plant.yaml'), `apiVersion: wogate/v1
kind: AccessPolicy
metadata: {name: plant}
rules:
  - id: plc-vendor-work
    match: {vendors: [acme-controls], assetClasses: [PLC]}
    require: {statuses: [approved, in_progress], minApprovals: 1, maxDuration: 12h}
    grant:
      - {type: network, target: plant-fw, ports: [502]}
      - {type: badge, target: doors}
      - {type: pam, target: vault}
      - {type: certificate, target: vendor-certs}
`);
    fs.writeFileSync(path.join(files, 'ca-passphrase'), CA_PASSPHRASE, { mode: 0o600 });
    process.env.E2E_FGT_TOKEN = TOKEN;
    process.env.E2E_PVWA_PASSWORD = PVWA_PASSWORD;
    process.env.E2E_ONGUARD_APP = ONGUARD_APP;
    process.env.E2E_ONGUARD_PASSWORD = ONGUARD_PASSWORD;

    t = await startDaemon({
      edit: (c) => {
        c.policies.dir = path.join(files, 'policies');
        c.register.assets = path.join(files, 'assets.yaml');
        c.register.vendors = path.join(files, 'vendors.yaml');
        c.targets = [
          c.targets[0],
          { id: 'plant-fw', kind: 'fortigate', fortigate: { baseUrl: fgt.url, token: 'env:E2E_FGT_TOKEN', scopes: [{ address: '10.20.0.10', port: 502, protocol: 'tcp', group: GROUP }] } },
          { id: 'doors', kind: 'lenel', authoritative: true, lenel: { baseUrl: onguard.url, applicationId: 'env:E2E_ONGUARD_APP', username: 'wogate-svc', password: 'env:E2E_ONGUARD_PASSWORD', accessLevels: [LEVEL], timeZone: 'Europe/Berlin', badgeBy: 'key', resolution: 'second' } },
          { id: 'vault', kind: 'cyberark', cyberark: { baseUrl: pvwa.url, authMethod: 'CyberArk', username: 'svc-wogate', password: 'env:E2E_PVWA_PASSWORD', safes: [SAFE] } },
          {
            id: 'vendor-certs', kind: 'certificate',
            certificate: { issuer: 'local', local: { dir: path.join(files, 'ca'), passphrase: `file:${path.join(files, 'ca-passphrase')}`, organization: 'North WTP', caCommonName: 'North WTP vendor CA', crlUrl: 'http://127.0.0.1/pki/vendor-certs/crl' } },
          },
        ];
      },
    });
  });

  after(async () => {
    await t?.stop();
    await Promise.all([fgt?.close(), onguard?.close(), pvwa?.close()]);
    if (files) fs.rmSync(files, { recursive: true, force: true });
  });

  const active = async () => t.daemon.runtime.store.listGrants({ states: ['active'] });
  const byTarget = (gs: Grant[], id: string) => gs.filter((g) => g.targetId === id);

  it('provisions all four on approval with the order\'s window, finds hand-made access by drift (removed where authoritative), and revokes all four when it closes', async () => {
    const opened = new Date();
    expect((await t.hook(demoOrder('WO-4711', 'APPR', opened, opened))).status).to.equal(202);
    await until(async () => (await active()).length === 4, 'four grants active', 20_000);
    const grants = await active();
    const until4 = new Set(grants.map((g) => g.validUntil.getTime()));
    expect(until4.size, 'one window for all four').to.equal(1);
    const end = [...until4][0]!;

    // Network: the technician's /32 is a member of the asset service's address group.
    expect(fgt.members(GROUP)).to.include('wogate-10.8.0.21');
    expect(fgt.address('wogate-10.8.0.21')?.subnet).to.match(/^10\.8\.0\.21 255\.255\.255\.255$/);
    // Badge: the access level is on the badge, deactivating at the window's end in Berlin time.
    const assignment = onguard.assignment(BADGE, levelId);
    expect(assignment?.DEACTIVATE, 'DEACTIVATE set').to.be.a('string');
    expect(Date.parse(onguard.render(assignment!.DEACTIVATE) as string)).to.equal(Math.floor(end / 1000) * 1000);
    // PAM: safe membership expiring at the window's end, in epoch seconds.
    expect(pvwa.member(SAFE, 'acme.jdoe')?.membershipExpirationDate).to.equal(Math.floor(end / 1000));
    // Drift: someone puts the chlorine room on another badge by hand, and adds a vault member.
    const stranger = onguard.addBadge({ id: 55501, status: 1, badgeKey: 55501 });
    onguard.assign(stranger, levelId, '2026-01-01T00:00:00', null);
    pvwa.addMemberByHand(SAFE, { memberName: 'someone.else' });
    const report = await t.daemon.drift!.run();
    expect(report?.failed, 'every target listed').to.deep.equal([]);
    expect(report?.unexpected.map((u) => [u.targetId, u.outcome]).sort()).to.deep.equal([['doors', 'removed'], ['vault', 'kept']]);
    expect(report?.missing).to.deep.equal([]);
    expect(onguard.assignment(stranger, levelId), 'the authoritative badge system lost the hand-made assignment').to.equal(undefined);
    expect(onguard.assignment(BADGE, levelId), 'the granted one stays').to.not.equal(undefined);
    expect(pvwa.member(SAFE, 'someone.else'), 'reported only: the vault target is not authoritative').to.not.equal(undefined);
    const drift = (await t.daemon.runtime.store.readAudit(0, 10_000)).filter((r) => r.action.startsWith('drift.')).map((r) => r.action).sort();
    expect(drift).to.deep.equal(['drift.removed', 'drift.unexpected', 'drift.unexpected']);

    // Certificate: issued by the CA wogate publishes, client auth only, notAfter = the window's end.
    const [cert] = byTarget(grants, 'vendor-certs');
    const serial = String(cert?.targetRef?.['serial']);
    const caPem = await (await fetch(`${t.daemon.url}/pki/vendor-certs/ca.pem`)).text();
    expect(caPem).to.match(/BEGIN CERTIFICATE/);

    expect((await t.hook(demoOrder('WO-4711', 'CLOSE', new Date(opened.getTime() + 1000), opened))).status).to.equal(202);
    await until(async () => (await active()).length === 0, 'every grant revoked', 20_000);
    expect(fgt.members(GROUP)).to.not.include('wogate-10.8.0.21');
    expect(fgt.address('wogate-10.8.0.21'), 'address object removed').to.equal(undefined);
    expect(onguard.assignment(BADGE, levelId), 'access level removed').to.equal(undefined);
    expect(pvwa.member(SAFE, 'acme.jdoe'), 'safe membership removed').to.equal(undefined);

    // The certificate's serial is on the CRL wogate publishes, signed by the CA.
    const dir = tmpDir();
    try {
      fs.writeFileSync(path.join(dir, 'ca.pem'), caPem);
      fs.writeFileSync(path.join(dir, 'crl.der'), Buffer.from(await (await fetch(`${t.daemon.url}/pki/vendor-certs/crl`)).arrayBuffer()));
      const text = execFileSync('openssl', ['crl', '-inform', 'DER', '-in', path.join(dir, 'crl.der'), '-CAfile', path.join(dir, 'ca.pem'), '-noout', '-text'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      expect(text.toUpperCase().replace(/:/g, '')).to.include(serial.toUpperCase().replace(/:/g, ''));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    const actions = (await t.daemon.runtime.store.readAudit(0, 10_000)).map((r) => `${r.action}`);
    expect(actions.filter((a) => a === 'grant.provisioned')).to.have.length(4);
    expect(actions.filter((a) => a === 'grant.revoked')).to.have.length(4);
    expect((await t.daemon.runtime.audit.verify()).ok).to.equal(true);
  });
});
