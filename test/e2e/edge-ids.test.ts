import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { demoOrder } from '../../src/demo/demo.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import type { MergedRegister, WorkOrder } from '../../src/domain/index.js';
import { REPO, startDaemon, until, type TestDaemon } from '../helpers/daemon.js';
import { tmpDir } from '../helpers/world.js';

// Ids, text and revisions as they arrive at the edge, through a real daemon receiving signed
// webhooks (the example config's generic source, policies and registers): one canonical form for
// people, vendors and assets; text that survives UTF-8; revisions wogate can order.

type Body = ReturnType<typeof demoOrder>;

/** An emergency order on the chlorinator PLC (the example policy's emergency rule asks for two approvers). */
function emergency(id: string, approvers: string[], over: Partial<Body['data']['workOrder']> = {}): Body {
  const o = demoOrder(id, 'APPR', new Date(), new Date());
  return { ...o, data: { workOrder: { ...o.data.workOrder, worktype: 'EM', assets: [{ assetnum: 'PLC-CL2-01' }], approvals: approvers.map((by) => ({ by })), ...over } } };
}

function counts(t: TestDaemon): { events: number; orders: number } {
  const db = (t.daemon.runtime.store as SqliteStore).raw();
  return {
    events: (db.prepare('SELECT count(*) n FROM hook_events').get() as { n: number }).n,
    orders: (db.prepare('SELECT count(*) n FROM work_orders').get() as { n: number }).n,
  };
}

async function evaluated(t: TestDaemon, key: string): Promise<{ grants: unknown[]; denials: { code: string }[] } | undefined> {
  const records = (await t.daemon.runtime.store.readAudit(0, 100_000)).filter((r) => r.action === 'order.evaluated' && r.subject === key);
  return records.at(-1)?.details as { grants: unknown[]; denials: { code: string }[] } | undefined;
}

async function refused(res: Response): Promise<{ status: number; code: string; message: string }> {
  const body = (await res.json()) as { error: { code: string; message: string } };
  return { status: res.status, ...body.error };
}

describe('ids, text and revisions at the edge, through a real daemon', function () {
  this.timeout(60_000);
  let t: TestDaemon;
  beforeEach(async () => {
    t = await startDaemon();
  });
  afterEach(async () => {
    await t.stop();
  });

  it('counts `ops-supervisor` and `OPS-Supervisor` as one approver: a two-approval rule denies INSUFFICIENT_APPROVALS', async () => {
    expect((await t.hook(emergency('WO-E1', ['ops-supervisor', 'OPS-Supervisor']))).status).to.equal(202);
    await until(async () => (await evaluated(t, 'demo-cmms/WO-E1')) !== undefined, 'WO-E1 evaluated');
    const order = await t.daemon.runtime.store.getOrder('demo-cmms', 'WO-E1');
    expect(order?.approvals.map((a) => a.by)).to.deep.equal(['ops-supervisor']);
    const e = await evaluated(t, 'demo-cmms/WO-E1');
    expect(e?.grants).to.deep.equal([]);
    expect(e?.denials.map((d) => d.code)).to.deep.equal(['INSUFFICIENT_APPROVALS']);
    // Two people do meet the rule, so the denial above is the one approver's doing.
    expect((await t.hook(emergency('WO-E2', ['ops-supervisor', 'security-oncall']))).status).to.equal(202);
    await until(async () => (await evaluated(t, 'demo-cmms/WO-E2')) !== undefined, 'WO-E2 evaluated');
    expect((await evaluated(t, 'demo-cmms/WO-E2'))?.grants).to.have.length(1);
  });

  it('refuses `alice` + `alice\\u200b` with 400 naming approvals[1].by and the character, and stores nothing', async () => {
    const before = counts(t);
    const r = await refused(await t.hook(emergency('WO-E3', ['alice', 'alice\u200b'])));
    expect(r).to.deep.include({ status: 400, code: 'HOOK_MAPPING_FAILED' });
    expect(r.message).to.include('approvals[1].by').and.include('U+200B at position 5');
    expect(counts(t)).to.deep.equal(before);
    expect(await t.daemon.runtime.store.getOrder('demo-cmms', 'WO-E3')).to.equal(undefined);
  });

  it('maps vendor, technician and asset ids spelled in another case onto the register, and refuses one hiding a bidi control, naming it', async () => {
    const o = demoOrder('WO-C1', 'APPR', new Date(), new Date());
    const body = { ...o, data: { workOrder: { ...o.data.workOrder, vendor: { id: 'ACME-Controls' }, technicians: [{ id: 'Tech-JDoe' }], assets: [{ assetnum: 'plc-cl2-01' }] } } };
    expect((await t.hook(body)).status).to.equal(202);
    await until(async () => (await t.daemon.runtime.store.listGrants({ states: ['active'] })).length > 0, 'a grant for the case variant');
    const [g] = await t.daemon.runtime.store.listGrants({ states: ['active'] });
    expect(g).to.deep.include({ vendorId: 'acme-controls', technicianId: 'tech-jdoe', assetId: 'plc-cl2-01' });
    const bidi = { ...o, data: { workOrder: { ...o.data.workOrder, wonum: 'WO-C2', technicians: [{ id: 'tech-\u202ejdoe' }] } } };
    const r = await refused(await t.hook(bidi));
    expect(r).to.deep.include({ status: 400, code: 'HOOK_MAPPING_FAILED' });
    expect(r.message).to.include('technicians[0]').and.include('U+202E');
  });

  it('refuses an order number holding a lone surrogate (raw JSON escape) with 400; the inbox stays empty and the audit chain verifies', async () => {
    const before = counts(t);
    const raw = JSON.stringify(demoOrder('PRB-X', 'APPR', new Date(), new Date())).replace('"PRB-X"', '"PRB-\\ud800"');
    expect(raw).to.include('PRB-\\ud800');
    const r = await refused(await t.hook(undefined, { raw }));
    expect(r).to.deep.include({ status: 400, code: 'HOOK_MAPPING_FAILED' });
    expect(r.message).to.match(/^id holds a lone UTF-16 surrogate/);
    const title = JSON.stringify(demoOrder('PRB-Y', 'APPR', new Date(), new Date())).replace('"DEMO: calibrate', '"\\udfff DEMO: calibrate');
    expect((await refused(await t.hook(undefined, { raw: title }))).message).to.match(/^title holds a lone UTF-16 surrogate/);
    expect(counts(t)).to.deep.equal(before);
    const verify = spawnSync(process.execPath, ['--import', 'tsx', path.join(REPO, 'src/cli/main.ts'), 'audit', 'verify', '-c', path.join(t.dir, 'wogate.yaml')], { cwd: REPO, encoding: 'utf8', env: { ...process.env, TEST_HOOK_SECRET: t.secret }, timeout: 30_000 });
    expect(verify.stderr).to.equal('');
    expect(verify.status).to.equal(0);
    expect(verify.stdout).to.match(/^ok: /);
  });

  it('refuses a revision of "Infinity" (or any text that is neither a number nor a timestamp) with 400 naming the revision', async () => {
    const before = counts(t);
    for (const revision of ['Infinity', 'NaN', 'v2', '2026-13-01T00:00:00Z', '1e400']) {
      const r = await refused(await t.hook(emergency('WO-R1', ['ops-supervisor'], { changedate: revision })));
      expect(r, revision).to.deep.include({ status: 400, code: 'HOOK_MAPPING_FAILED' });
      expect(r.message, revision).to.match(/^revision "/).and.include('neither a finite number nor an ISO-8601 date-time');
    }
    expect(counts(t)).to.deep.equal(before);
  });

  async function approvedWithGrants(id: string, opened: Date): Promise<void> {
    expect((await t.hook(demoOrder(id, 'APPR', opened, new Date()))).status).to.equal(202);
    await until(async () => (await t.daemon.runtime.store.listGrants({ states: ['active'], orderKey: `demo-cmms/${id}` })).length === 2, 'two grants active');
  }
  const storedRevision = (id: string, revision: string) => (t.daemon.runtime.store as SqliteStore).raw().prepare('UPDATE work_orders SET revision = ? WHERE id = ?').run(revision, id);
  const received = async (id: string, result: string) => (await t.daemon.runtime.store.readAudit(0, 100_000)).some((r) => r.action === 'order.received' && r.subject === `demo-cmms/${id}` && (r.details as { result?: string }).result === result);

  it('closes an order whose stored revision can\'t be compared with the incoming one (a rowstamp, now a change date), and revokes its access; other changes wait', async () => {
    const opened = new Date();
    await approvedWithGrants('WO-R2', opened);
    storedRevision('WO-R2', '884412');
    const later = new Date(opened.getTime() + 60_000);
    expect((await t.hook(demoOrder('WO-R2', 'WMATL', later, new Date()))).status).to.equal(202);
    await until(() => received('WO-R2', 'stale'), 'the on-hold change held back');
    expect((await t.daemon.runtime.store.getOrder('demo-cmms', 'WO-R2'))?.status).to.equal('approved');
    expect((await t.hook(demoOrder('WO-R2', 'CLOSE', new Date(later.getTime() + 60_000), new Date()))).status).to.equal(202);
    await until(async () => (await t.daemon.runtime.store.getOrder('demo-cmms', 'WO-R2'))?.status === 'closed', 'the order closed');
    await until(async () => (await t.daemon.runtime.store.listGrants({ states: ['active'], orderKey: 'demo-cmms/WO-R2' })).length === 0, 'its grants revoked');
    await until(() => t.gateway.open.size === 0, 'the gateway holding nothing');
  });

  it('replaces a stored revision of "Infinity" (kept from before revisions were checked) with the source\'s next one, so the order is not frozen', async () => {
    const opened = new Date();
    await approvedWithGrants('WO-R3', opened);
    storedRevision('WO-R3', 'Infinity');
    expect((await t.hook(demoOrder('WO-R3', 'WMATL', new Date(opened.getTime() + 60_000), new Date()))).status).to.equal(202);
    await until(async () => (await t.daemon.runtime.store.getOrder('demo-cmms', 'WO-R3'))?.status === 'on_hold', 'the order on hold');
    await until(async () => (await t.daemon.runtime.store.listGrants({ states: ['active'], orderKey: 'demo-cmms/WO-R3' })).length === 0, 'its grants revoked');
    await until(() => t.gateway.open.size === 0, 'the gateway holding nothing');
  });
});

/** An older wogate kept no approved scopes (migration 8 adds the column, empty, in the same version that makes ids canonical). */
function asBeforeApprovedScopes(store: SqliteStore): void {
  store.raw().prepare('UPDATE work_orders SET approved_scope = NULL').run();
}

describe('orders stored before ids were canonical, at the first start of this version', function () {
  this.timeout(60_000);
  let dir: string;
  let t: TestDaemon | undefined;
  afterEach(async () => {
    await t?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('are rewritten in canonical form once: they keep their access, and two spellings of one approver count once', async () => {
    dir = tmpDir();
    const file = path.join(dir, 'old.db');
    const old = new SqliteStore(file);
    await old.migrate();
    const now = new Date();
    const base: WorkOrder = {
      source: 'demo-cmms', id: 'WO-OLD1', site: 'north-wtp', status: 'approved', sourceStatus: 'APPR', vendorId: 'ACME-Controls', technicianIds: ['Tech-JDoe'],
      assetIds: ['PLC-CL2-01', 'HMI-FLT-01'], window: { start: new Date(now.getTime() - 60_000), end: new Date(now.getTime() + 2 * 3_600_000) }, type: 'planned',
      approvals: [{ by: 'ops-supervisor' }], revision: now.toISOString(),
    };
    await old.upsertOrder(base, now);
    await old.upsertOrder({ ...base, id: 'WO-OLD2', type: 'emergency', assetIds: ['PLC-CL2-01'], approvals: [{ by: 'ops-supervisor' }, { by: 'OPS-Supervisor' }] }, now);
    asBeforeApprovedScopes(old);
    await old.close();

    t = await startDaemon({ edit: (c) => { c.store.path = file; } });
    const store = t.daemon.runtime.store;
    expect((await store.getOrder('demo-cmms', 'WO-OLD1'))?.assetIds).to.deep.equal(['plc-cl2-01', 'hmi-flt-01']);
    expect((await store.getOrder('demo-cmms', 'WO-OLD2'))?.approvals.map((a) => a.by)).to.deep.equal(['ops-supervisor']);
    await until(async () => (await store.listGrants({ states: ['active'], orderKey: 'demo-cmms/WO-OLD1' })).length === 2, 'the old order\'s two grants active');
    expect((await store.listGrants({ states: ['active'], orderKey: 'demo-cmms/WO-OLD1' })).map((g) => `${g.vendorId}/${g.technicianId}`)).to.deep.equal(['acme-controls/tech-jdoe', 'acme-controls/tech-jdoe']);
    expect(await store.listGrants({ orderKey: 'demo-cmms/WO-OLD2' })).to.deep.equal([]);
    const rewrites = (await store.readAudit(0, 100_000)).filter((r) => r.action === 'store.ids_canonicalised');
    expect(rewrites.map((r) => r.details)).to.deep.equal([{ orders: 2 }]);
  });

  it('merge a CMMS\'s saved asset records under their old spelling with the overlay: a conflict still withholds the asset', async () => {
    dir = tmpDir();
    const file = path.join(dir, 'old.db');
    const old = new SqliteStore(file);
    await old.migrate();
    // The last asset sync of an older wogate, as the CMMS spelled the asset; its site disagrees with the overlay's.
    await old.setState('assets:demo-cmms', JSON.stringify([{ id: 'PLC-CL2-01', site: 'south-wtp' }]));
    await old.close();

    t = await startDaemon({ edit: (c) => { c.store.path = file; } });
    const register = t.daemon.runtime.world().register as MergedRegister;
    expect(register.conflicts.map((c) => `${c.assetId}.${c.field}`)).to.deep.equal(['plc-cl2-01.site']);
    expect(register.assets.has('plc-cl2-01'), 'withheld').to.equal(false);
    expect([...register.assets.keys()].filter((id) => id !== id.toLowerCase())).to.deep.equal([]);
  });

  it('keep a vendor suspended under its old spelling suspended: the kill switch holds across the upgrade', async () => {
    dir = tmpDir();
    const file = path.join(dir, 'old.db');
    const old = new SqliteStore(file);
    await old.migrate();
    const now = new Date();
    await old.upsertOrder({
      source: 'demo-cmms', id: 'WO-OLD3', site: 'north-wtp', status: 'approved', sourceStatus: 'APPR', vendorId: 'ACME-Controls', technicianIds: ['Tech-JDoe'],
      assetIds: ['PLC-CL2-01'], window: { start: new Date(now.getTime() - 60_000), end: new Date(now.getTime() + 2 * 3_600_000) }, type: 'planned',
      approvals: [{ by: 'ops-supervisor' }], revision: now.toISOString(),
    }, now);
    asBeforeApprovedScopes(old);
    // As an older wogate stored it, when the register spelled the vendor so.
    await old.setState('vendor-suspensions', JSON.stringify([{ vendorId: 'ACME-Controls', reason: 'credential theft reported', by: 'oidc:olga', at: now.toISOString() }]));
    await old.close();

    t = await startDaemon({ edit: (c) => { c.store.path = file; } });
    await t.daemon.reconciler.reconcile();
    expect(await t.daemon.runtime.store.listGrants({ orderKey: 'demo-cmms/WO-OLD3' })).to.deep.equal([]);
    const ev = await t.daemon.reconciler.explainOrders([(await t.daemon.runtime.store.getOrder('demo-cmms', 'WO-OLD3')) as WorkOrder], new Date());
    expect(ev.denials.map((d) => d.code)).to.deep.equal(['VENDOR_SUSPENDED']);
    expect(t.daemon.runtime.suspensions.list().map((s) => s.vendorId)).to.deep.equal(['acme-controls']);
  });
});
