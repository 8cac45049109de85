import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { demoOrder } from '../../src/demo/demo.js';
import { REPO, startDaemon, until, type TestDaemon } from '../helpers/daemon.js';
import { tmpDir } from '../helpers/world.js';

describe('reload (SIGHUP)', function () {
  this.timeout(30_000);
  let t: TestDaemon;
  let pdir: string;
  beforeEach(async () => {
    pdir = tmpDir();
    fs.copyFileSync(path.join(REPO, 'policies/plc-maintenance.yaml'), path.join(pdir, 'plc-maintenance.yaml'));
    t = await startDaemon({ edit: (c) => (c.policies.dir = pdir) });
  });
  afterEach(async () => {
    await t.stop();
    fs.rmSync(pdir, { recursive: true, force: true });
  });

  it('keeps the last good policies when the new files are invalid, and says why in the audit log', async () => {
    fs.writeFileSync(path.join(pdir, 'plc-maintenance.yaml'), 'apiVersion: wogate/v1\nkind: AccessPolicy\nmetadata: {name: plc}\nrules: []\n');
    t.daemon.reload();
    expect(t.daemon.runtime.world().policySet.policies[0]?.rules.length).to.equal(2);
    await t.hook(demoOrder('WO-R1', 'APPR', new Date(), new Date()));
    await until(async () => (await t.daemon.runtime.store.listGrants({ states: ['active'] })).length === 2, 'grants under the old policy');
    await until(async () => (await t.daemon.runtime.store.readAudit(0, 1000)).some((r) => r.action === 'policy.reload_refused'), 'audit record');
    const rec = (await t.daemon.runtime.store.readAudit(0, 1000)).find((r) => r.action === 'policy.reload_refused');
    expect(String(rec?.details.error)).to.include('plc-maintenance.yaml');
  });

  it('applies a valid new policy and revokes what it no longer allows', async () => {
    await t.hook(demoOrder('WO-R2', 'APPR', new Date(), new Date()));
    await until(async () => (await t.daemon.runtime.store.listGrants({ states: ['active'] })).length === 2, 'two grants');
    const text = fs.readFileSync(path.join(pdir, 'plc-maintenance.yaml'), 'utf8').replaceAll('assetClasses: [PLC, HMI]', 'assetClasses: [PLC]');
    fs.writeFileSync(path.join(pdir, 'plc-maintenance.yaml'), text);
    t.daemon.reload();
    await until(async () => (await t.daemon.runtime.store.listGrants({ states: ['active'] })).length === 1, 'HMI grant revoked');
    const [left] = await t.daemon.runtime.store.listGrants({ states: ['active'] });
    expect(left?.assetId).to.equal('plc-cl2-01');
  });
});
