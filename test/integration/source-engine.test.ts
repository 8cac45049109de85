import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { AuditLog } from '../../src/audit/audit.js';
import { addAccessBlock } from '../../src/engine/access-blocks.js';
import { Intake } from '../../src/engine/intake.js';
import { SourcePoller } from '../../src/engine/poller.js';
import { Reconciler } from '../../src/engine/reconciler.js';
import { WriteBack } from '../../src/engine/writeback.js';
import { silentLogger } from '../../src/log.js';
import { createMetrics } from '../../src/metrics.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import { until } from '../helpers/daemon.js';
import { FakeCmms, fakeSource } from '../helpers/fake-cmms.js';
import { MemoryTarget } from '../helpers/memory-target.js';
import { order, policySet, register, tmpDir } from '../helpers/world.js';

// The engine's side of a CMMS with an API: doorbell re-reads, polling by cursor, full resync,
// staleness and fail-closed, and the write-back, against a real SQLite file and a fake CMMS.
describe('engine with a CMMS API', function () {
  this.timeout(20_000);
  let dir: string;
  let store: SqliteStore;
  let cmms: FakeCmms;
  let fw: MemoryTarget;
  let clock: { now: Date };
  let stale: Set<string>;
  let rec: Reconciler;
  let intake: Intake;
  let writeBack: WriteBack;
  let audit: AuditLog;

  function poller(opts: { failClosed?: boolean; staleAfterMs?: number } = {}) {
    return new SourcePoller({
      source: fakeSource(cmms), intake, store, audit, log: silentLogger, metrics: createMetrics(), clock: () => clock.now,
      incremental: '*/5 * * * *', fullResync: '0 * * * *', initialLookbackMs: 86_400_000,
      staleAfterMs: opts.staleAfterMs ?? 600_000, failClosed: opts.failClosed ?? false,
      onStale: (id, s) => (s ? stale.add(id) : stale.delete(id)),
      onChange: () => undefined,
    });
  }

  async function deliver(body: unknown) {
    await store.recordHookEvent({ source: 'cmms', webhookId: `m${Math.random()}`, receivedAt: clock.now, eventTime: clock.now, body: JSON.stringify(body) });
    await intake.drain();
    await rec.reconcile();
  }

  const actions = async () => (await store.readAudit(0, 10_000)).map((r) => r.action);

  beforeEach(async () => {
    dir = tmpDir();
    store = new SqliteStore(path.join(dir, 'w.db'));
    await store.migrate();
    cmms = new FakeCmms();
    fw = new MemoryTarget('fw');
    clock = { now: new Date('2026-11-22T10:00:00Z') };
    stale = new Set();
    audit = new AuditLog(store, () => clock.now);
    const metrics = createMetrics();
    const sources = new Map([['cmms', fakeSource(cmms)]]);
    writeBack = new WriteBack({ sources, audit, log: silentLogger, metrics, random: () => 0, batchMs: 5, attempts: 1 });
    rec = new Reconciler({
      store, targets: new Map([['fw', fw]]), audit, log: silentLogger, metrics, clock: () => clock.now, random: () => 0.5,
      world: () => ({ policySet: policySet(), register }), retry: { baseMs: 1000, maxMs: 60_000, alertAfter: 3 }, lookbackMs: 86_400_000,
      excludedSources: () => stale, onGrantChange: (g, c) => writeBack.record(g, c),
    });
    intake = new Intake({ store, sources, audit, log: silentLogger, metrics, clock: () => clock.now, random: () => 0, world: () => ({ policySet: policySet(), register }), onChange: () => undefined, rereadAttempts: 2 });
  });

  afterEach(async () => {
    intake.stop();
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('grants on what the API says, not on what the webhook claims, and audits the disagreement', async () => {
    cmms.put(order({ id: 'WO-1', status: 'awaiting_approval' }, clock.now));
    await deliver({ orderId: 'WO-1', order: order({ id: 'WO-1', status: 'approved' }, clock.now) });
    expect(fw.open.size).to.equal(0);
    expect(await actions()).to.include('order.disagreement');
    cmms.put(order({ id: 'WO-1', status: 'approved' }, clock.now));
    await deliver({ orderId: 'WO-1' });
    expect(fw.open.size).to.equal(2);
  });

  it('when the API is down, grants nothing on a webhook and retries later', async () => {
    cmms.put(order({ id: 'WO-2' }, clock.now));
    cmms.down = true;
    await deliver({ orderId: 'WO-2', order: order({ id: 'WO-2' }, clock.now) });
    expect(fw.open.size).to.equal(0);
    expect(await actions()).to.include('order.reread_failed');
    const [pending] = await store.pendingHookEvents(10);
    expect(pending?.attempts).to.equal(1);
    cmms.down = false;
    clock.now = new Date(clock.now.getTime() + 60_000);
    await intake.drain();
    await rec.reconcile();
    expect(fw.open.size).to.equal(2);
  });

  it('a deferred delivery is retried by itself once it comes due', async () => {
    cmms.put(order({ id: 'WO-2b' }, clock.now));
    cmms.down = true;
    await deliver({ orderId: 'WO-2b' });
    expect(await store.getOrder('cmms', 'WO-2b')).to.equal(undefined);
    cmms.down = false;
    clock.now = new Date(clock.now.getTime() + 60_000);
    await until(async () => (await store.getOrder('cmms', 'WO-2b')) !== undefined, 'the intake retried on its own', 8000);
  });

  it('when the API is down, still takes access away on a webhook that only narrows it', async () => {
    const wo = cmms.put(order({ id: 'WO-3' }, clock.now));
    await deliver({ orderId: 'WO-3' });
    expect(fw.open.size).to.equal(2);
    cmms.down = true;
    await deliver({ orderId: 'WO-3', order: { ...wo, status: 'closed', revision: String(Number(wo.revision) + 1) } });
    expect(fw.open.size).to.equal(0);
    expect(await actions()).to.include('order.unverified_restriction');
  });

  it('when the API is down, a webhook that widens an order and adds an approval grants nothing new on its word', async () => {
    const wo = cmms.put(order({ id: 'WO-3w', assetIds: ['PLC-1'] }, clock.now));
    await deliver({ orderId: 'WO-3w' });
    expect([...fw.open.values()].map((g) => g.assetId)).to.deep.equal(['PLC-1']);
    cmms.down = true;
    // Under the stored approved scope HMI-1 is denied, so the claim looks like no more access; but
    // storing it would take its new approval as a re-approval of the wider scope.
    await deliver({ orderId: 'WO-3w', order: { ...wo, assetIds: ['PLC-1', 'HMI-1'], approvals: [...wo.approvals, { by: 'manager' }], revision: String(Number(wo.revision) + 1) } });
    expect(await actions()).to.include('order.reread_failed');
    expect(await actions()).not.to.include('order.unverified_restriction');
    expect((await store.getOrder('cmms', 'WO-3w'))?.assetIds).to.deep.equal(['PLC-1']);
    await rec.reconcile();
    expect([...fw.open.values()].map((g) => g.assetId)).to.deep.equal(['PLC-1']);
  });

  it('the order.evaluated record says ACCESS_BLOCKED for blocked access, as the engine decides it', async () => {
    await addAccessBlock(store, audit, { technicianId: 'JDOE', targetId: 'fw', resourceKey: 'net:10.8.0.21>10.20.0.10:502/tcp' }, 'sec', 'vendor laptop lost', clock.now);
    cmms.put(order({ id: 'WO-3b', assetIds: ['PLC-1'] }, clock.now));
    await deliver({ orderId: 'WO-3b' });
    expect(fw.open.size).to.equal(0);
    const evaluated = (await store.readAudit(0, 10_000)).filter((r) => r.action === 'order.evaluated' && r.subject === 'cmms/WO-3b');
    expect(evaluated.map((r) => [r.details.grants, (r.details.denials as { code: string }[]).map((d) => d.code)])).to.deep.equal([[[], ['ACCESS_BLOCKED']]]);
  });

  it('revokes when the order was deleted in the CMMS', async () => {
    cmms.put(order({ id: 'WO-4' }, clock.now));
    await deliver({ orderId: 'WO-4' });
    expect(fw.open.size).to.equal(2);
    cmms.orders.delete('WO-4');
    await deliver({ orderId: 'WO-4' });
    expect(fw.open.size).to.equal(0);
    expect((await store.getOrder('cmms', 'WO-4'))?.status).to.equal('cancelled');
  });

  it('polls by cursor, and a new poller continues from the stored cursor after a restart', async () => {
    cmms.put(order({ id: 'A' }, clock.now));
    cmms.put(order({ id: 'B' }, clock.now));
    expect(await poller().pollOnce()).to.equal(2);
    cmms.put(order({ id: 'C' }, clock.now));
    expect(await poller().pollOnce(), 'only the change since the stored cursor').to.equal(1);
    expect(await store.getState('cursor:cmms')).to.equal('3');
    await rec.reconcile();
    expect(await store.listGrants({ states: ['active'] })).to.have.length(6);
    expect(fw.open.size, 'three orders for the same access share the target\'s two entries').to.equal(2);
  });

  it('full resync finds an order closed while its event was missed', async () => {
    cmms.put(order({ id: 'WO-5' }, clock.now));
    const p = poller();
    await p.resync();
    await rec.reconcile();
    expect(fw.open.size).to.equal(2);
    cmms.put(order({ id: 'WO-5', status: 'closed' }, clock.now)); // no webhook, no poll
    const r = await p.resync();
    expect(r.settled).to.equal(1);
    await rec.reconcile();
    expect(fw.open.size).to.equal(0);
    expect((await store.readAudit(0, 1000)).some((x) => x.action === 'order.received' && x.details.missedEvent === true)).to.equal(true);
  });

  it('alerts when a source stays unreadable, fails closed if configured, and restores access on recovery', async () => {
    cmms.put(order({ id: 'WO-6' }, clock.now));
    const p = poller({ failClosed: true, staleAfterMs: 600_000 });
    await p.run('resync');
    await rec.reconcile();
    expect(fw.open.size).to.equal(2);
    cmms.down = true;
    clock.now = new Date(clock.now.getTime() + 300_000);
    await p.run('poll');
    expect(p.isStale()).to.equal(false);
    clock.now = new Date(clock.now.getTime() + 400_000);
    await p.run('poll');
    expect(p.isStale()).to.equal(true);
    await rec.reconcile();
    expect(fw.open.size, 'failed closed').to.equal(0);
    const revoked = await store.listGrants({ states: ['revoked'] });
    expect(revoked[0]?.revokeReason).to.match(/SOURCE_STALE/);
    expect(await actions()).to.include('source.stale');
    cmms.down = false;
    await p.run('poll');
    expect(p.isStale()).to.equal(false);
    await rec.reconcile();
    expect(fw.open.size, 'restored').to.equal(2);
  });

  it('skips an order it cannot read without stalling the source, audits it, and withdraws its access', async () => {
    cmms.put(order({ id: 'WO-8' }, clock.now));
    cmms.put(order({ id: 'WO-9', assetIds: ['HMI-1'] }, clock.now));
    const p = poller();
    await p.pollOnce();
    await rec.reconcile();
    expect(await store.listGrants({ states: ['active'] })).to.have.length(3);
    cmms.put(order({ id: 'WO-8', status: 'approved' }, clock.now));
    cmms.unreadable.add('WO-8');
    cmms.put(order({ id: 'WO-10', assetIds: ['HMI-1'] }, clock.now));
    await p.pollOnce();
    expect(await store.getState('cursor:cmms'), 'the cursor moved on').to.equal('4');
    await rec.reconcile();
    expect((await store.listGrants({ states: ['active'] })).map((g) => g.orderId).sort()).to.deep.equal(['WO-10', 'WO-9']);
    expect([...fw.open.values()].map((g) => g.assetId), 'PLC-1 closed, HMI-1 kept for WO-9 and WO-10').to.deep.equal(['HMI-1']);
    expect((await store.getOrder('cmms', 'WO-8'))?.sourceStatus).to.match(/unreadable: .*WEIRD/);
    expect(await actions()).to.include('order.unreadable');
    await p.resync();
    expect((await actions()).filter((a) => a === 'order.unreadable'), 'a record that stays broken is reported once').to.have.length(1);
    cmms.unreadable.delete('WO-8');
    cmms.put(order({ id: 'WO-8' }, clock.now));
    await p.pollOnce();
    await rec.reconcile();
    expect(await store.listGrants({ states: ['active'] }), 'readable again, access back').to.have.length(4);
    expect(fw.open.size).to.equal(2);
  });

  it('an order withdrawn while unreadable keeps its approved scope: readable again and widened, the addition waits for approval', async () => {
    cmms.put(order({ id: 'WO-11', assetIds: ['PLC-1'] }, clock.now));
    const p = poller();
    await p.pollOnce();
    await rec.reconcile();
    expect([...fw.open.values()].map((g) => g.assetId)).to.deep.equal(['PLC-1']);
    cmms.put(order({ id: 'WO-11', assetIds: ['PLC-1', 'HMI-1'] }, clock.now));
    cmms.unreadable.add('WO-11');
    await p.pollOnce();
    await rec.reconcile();
    expect(fw.open.size, 'withdrawn while unreadable').to.equal(0);
    cmms.unreadable.delete('WO-11');
    cmms.put(order({ id: 'WO-11', assetIds: ['PLC-1', 'HMI-1'] }, clock.now));
    await p.pollOnce();
    await rec.reconcile();
    // wogate's own withdrawal is not the CMMS sending the order back for approval: no new approval, no HMI-1.
    expect([...fw.open.values()].map((g) => g.assetId)).to.deep.equal(['PLC-1']);
    const ev = await rec.explainOrders([(await store.getOrder('cmms', 'WO-11'))!], clock.now);
    expect(ev.denials.map((d) => [d.assetId, d.code])).to.deep.equal([['HMI-1', 'SCOPE_WIDENED_AFTER_APPROVAL']]);
  });

  it('the access trail in summary says why access ended by its code, never an operator\'s words or a denial\'s addresses', async () => {
    cmms.put(order({ id: 'WO-12', assetIds: ['PLC-1'] }, clock.now));
    await deliver({ orderId: 'WO-12' });
    const [g] = await store.listGrants({ orderKey: 'cmms/WO-12', states: ['active'] });
    await rec.revokeNow(g!.id, 'oidc:sec-lead', 'vendor laptop 10.8.0.21 seen scanning 10.20.0.0/16');
    await writeBack.flush();
    const note = (cmms.notes.get('WO-12') ?? []).join('\n');
    expect(note).to.match(/access ENDED: jdoe -> PLC-1 \(network access\) on fw \(revoked by an operator\)/);
    expect(note).not.to.match(/10\.8\.0\.21|10\.20\.0|scanning|sec-lead/);
  });

  it('writes the access trail back to the work order, and a write-back failure never blocks a revoke', async () => {
    cmms.put(order({ id: 'WO-7' }, clock.now));
    await deliver({ orderId: 'WO-7' });
    await writeBack.flush();
    expect(cmms.notes.get('WO-7')?.[0]).to.match(/access GRANTED: jdoe -> PLC-1/);
    cmms.failWriteBack = true;
    cmms.put(order({ id: 'WO-7', status: 'completed' }, clock.now));
    await deliver({ orderId: 'WO-7' });
    expect(fw.open.size).to.equal(0);
    await writeBack.flush();
    expect(await actions()).to.include('writeback.failed');
  });
});
