import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { AuditLog } from '../../src/audit/audit.js';
import { DriftChecker, DriftMonitor, type EntryRevoker } from '../../src/engine/drift.js';
import { Reconciler } from '../../src/engine/reconciler.js';
import { silentLogger } from '../../src/log.js';
import { createMetrics, type Metrics } from '../../src/metrics.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import { TargetError, type CallContext, type TargetEntry, type TargetGrant } from '../../src/targets/target.js';
import { MemoryTarget } from '../helpers/memory-target.js';
import { order, policySet, register, tmpDir } from '../helpers/world.js';

/** A target that can delete by its own reference, as drift removal needs. */
class RemovableMemoryTarget extends MemoryTarget implements EntryRevoker {
  async revokeEntry(entry: TargetEntry, _ctx: CallContext): Promise<void> {
    this.open.delete(String(entry.ref['key']));
  }
}

/** Lists entries by ref only, like nftables: matching has to go through the stored targetRef. */
class RefOnlyMemoryTarget extends MemoryTarget {
  override async list(): Promise<TargetEntry[]> {
    return [...this.open.values()].map((g) => ({ ref: { key: g.key } }));
  }
}

function rogue(key: string, now: Date): TargetGrant {
  return {
    id: 'not-ours', key, orderKey: 'x:1', source: 'x', orderId: '1', vendorId: 'mallory', technicianId: 'eve', assetId: 'PLC-1', targetId: 'fw',
    resource: { kind: 'network', sourceAddress: '10.9.9.9', address: '10.20.0.10', port: 502, protocol: 'tcp' },
    validFrom: now, validUntil: new Date(now.getTime() + 86_400_000),
  };
}

describe('drift checker against MemoryTarget and a real SQLite store', () => {
  let dir: string;
  let store: SqliteStore;
  let audit: AuditLog;
  let metrics: Metrics;
  let rec: Reconciler;
  const clock = { now: new Date('2026-11-22T10:00:00Z') };
  const now = () => clock.now;

  async function setUp(fw: MemoryTarget, authoritative: string[] = []): Promise<DriftChecker> {
    const targets = new Map([['fw', fw]]);
    rec = new Reconciler({
      store, targets, audit, log: silentLogger, metrics, clock: now, random: () => 0.5, world: () => ({ policySet: policySet(), register }),
      retry: { baseMs: 1000, maxMs: 60_000, alertAfter: 3 }, lookbackMs: 86_400_000,
    });
    await store.upsertOrder(order({}, clock.now), clock.now);
    expect((await rec.reconcile()).provisioned).to.equal(2);
    return new DriftChecker({ store, targets, audit, log: silentLogger, metrics, clock: now, authoritative: new Set(authoritative) });
  }

  async function auditActions(): Promise<string[]> {
    return (await store.readAudit(0, 1000)).map((r) => r.action).filter((a) => a.startsWith('drift.'));
  }

  async function alerts(kind: string): Promise<number> {
    return (await metrics.alerts.get()).values.find((v) => v.labels['kind'] === kind)?.value ?? 0;
  }

  beforeEach(async () => {
    dir = tmpDir();
    store = new SqliteStore(path.join(dir, 'w.db'));
    await store.migrate();
    audit = new AuditLog(store, now);
    metrics = createMetrics();
  });
  afterEach(async () => {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('reports nothing when the target holds exactly what wogate granted', async () => {
    const drift = await setUp(new MemoryTarget('fw'));
    const r = await drift.check();
    expect(r.unexpected).to.deep.equal([]);
    expect(r.missing).to.deep.equal([]);
    expect(r.failed).to.deep.equal([]);
    expect(await auditActions()).to.deep.equal([]);
  });

  it('reports a hand-added entry once (audit and alert metric) and leaves it when the target is not authoritative', async () => {
    const fw = new MemoryTarget('fw');
    const drift = await setUp(fw);
    fw.open.set('hand-added', rogue('hand-added', clock.now));
    const r = await drift.check();
    expect(r.unexpected.map((u) => [u.entry.key, u.outcome])).to.deep.equal([['hand-added', 'kept']]);
    expect(fw.open.has('hand-added')).to.equal(true);
    expect(await auditActions()).to.deep.equal(['drift.unexpected']);
    const rec = (await store.readAudit(0, 1000)).find((a) => a.action === 'drift.unexpected');
    expect(rec?.details).to.deep.include({ target: 'fw', key: 'hand-added', authoritative: false });
    expect(await alerts('drift_unexpected')).to.equal(1);

    // Still there next time: still in the report, not audited or alerted again.
    expect((await drift.check()).unexpected).to.have.length(1);
    expect(await auditActions()).to.deep.equal(['drift.unexpected']);
    expect(await alerts('drift_unexpected')).to.equal(1);
  });

  it('removes a hand-added entry on an authoritative target that can revoke by entry, and keeps the granted ones', async () => {
    const fw = new RemovableMemoryTarget('fw');
    const drift = await setUp(fw, ['fw']);
    fw.open.set('hand-added', rogue('hand-added', clock.now));
    const r = await drift.check();
    expect(r.unexpected.map((u) => u.outcome)).to.deep.equal(['removed']);
    expect([...fw.open.keys()].sort()).to.deep.equal((await store.listGrants({ states: ['active'] })).map((g) => g.key).sort());
    expect(await auditActions()).to.deep.equal(['drift.unexpected', 'drift.removed']);
    expect((await drift.check()).unexpected).to.deep.equal([]);
  });

  it('reports drift.unremovable, and removes nothing, when an authoritative target cannot revoke by entry', async () => {
    const fw = new MemoryTarget('fw');
    const drift = await setUp(fw, ['fw']);
    fw.open.set('hand-added', rogue('hand-added', clock.now));
    const calls = fw.calls.length;
    const r = await drift.check();
    expect(r.unexpected.map((u) => u.outcome)).to.deep.equal(['unremovable']);
    expect(fw.calls.length, 'no revoke with a made-up grant').to.equal(calls);
    expect(fw.open.has('hand-added')).to.equal(true);
    expect(await auditActions()).to.deep.equal(['drift.unexpected', 'drift.unremovable']);
  });

  it('reports a failed removal as unremovable and tries again on the next check', async () => {
    const fw = new RemovableMemoryTarget('fw');
    const drift = await setUp(fw, ['fw']);
    fw.open.set('hand-added', rogue('hand-added', clock.now));
    const revokeEntry = fw.revokeEntry.bind(fw);
    fw.revokeEntry = () => Promise.reject(new TargetError('fw', 'simulated outage', true));
    const r1 = await drift.check();
    expect(r1.unexpected.map((u) => [u.outcome, u.error])).to.deep.equal([['unremovable', 'target fw: simulated outage']]);
    fw.revokeEntry = revokeEntry;
    expect((await drift.check()).unexpected.map((u) => u.outcome)).to.deep.equal(['removed']);
    expect(fw.open.has('hand-added')).to.equal(false);
  });

  it('reports an active grant deleted behind wogate\'s back as missing and returns it for re-provisioning', async () => {
    const fw = new MemoryTarget('fw');
    const drift = await setUp(fw);
    const [gone, kept] = await store.listGrants({ states: ['active'] });
    fw.open.delete(gone!.key);
    const r = await drift.check();
    expect(r.missing.map((g) => g.id)).to.deep.equal([gone!.id]);
    expect(r.unexpected).to.deep.equal([]);
    expect(fw.open.has(kept!.key)).to.equal(true);
    const rec = (await store.readAudit(0, 1000)).find((a) => a.action === 'drift.missing');
    expect(rec?.subject).to.equal(gone!.id);
    expect(rec?.details).to.deep.include({ target: 'fw', key: gone!.key });
    expect(await alerts('drift_missing')).to.equal(1);
  });

  it('on schedule, sets a lost grant back to pending and has it provisioned again; the gauge shows the finding', async () => {
    const fw = new MemoryTarget('fw');
    const checker = await setUp(fw);
    const [gone] = await store.listGrants({ states: ['active'] });
    fw.open.delete(gone!.key);
    const asked: string[][] = [];
    const monitor = new DriftMonitor({ checker, store, log: silentLogger, clock: now, schedule: '*/10 * * * *', reprovision: (keys) => asked.push(keys) });
    const report = await monitor.run();
    expect(report?.missing).to.have.length(1);
    expect(asked).to.deep.equal([[gone!.orderKey]]);
    expect((await store.getGrant(gone!.id))?.state).to.equal('pending');
    expect((await metrics.drift.get()).values.find((v) => v.labels['kind'] === 'missing')?.value).to.equal(1);
    await rec.reconcile(asked[0]);
    expect(fw.open.has(gone!.key), 'provisioned again').to.equal(true);
    expect((await store.getGrant(gone!.id))?.state).to.equal('active');
    await monitor.run();
    expect((await metrics.drift.get()).values.find((v) => v.labels['kind'] === 'missing')?.value).to.equal(0);
  });

  it('does not call a grant missing when its window has ended and only the expiry revoke is pending', async () => {
    const fw = new MemoryTarget('fw');
    const drift = await setUp(fw);
    fw.open.clear();
    clock.now = new Date(clock.now.getTime() + 2 * 3_600_000);
    try {
      expect((await drift.check()).missing).to.deep.equal([]);
    } finally {
      clock.now = new Date('2026-11-22T10:00:00Z');
    }
  });

  it('matches entries by stored ref when the target does not report grant keys', async () => {
    const fw = new RefOnlyMemoryTarget('fw');
    const drift = await setUp(fw);
    expect(await drift.check()).to.deep.include({ unexpected: [], missing: [] });
    fw.open.set('hand-added', rogue('hand-added', clock.now));
    const r = await drift.check();
    expect(r.unexpected.map((u) => u.entry.ref)).to.deep.equal([{ key: 'hand-added' }]);
  });

  it('defers removing a ref-only entry while a grant on that target is mid-provision without a recorded ref', async () => {
    const fw = new (class extends RefOnlyMemoryTarget implements EntryRevoker {
      async revokeEntry(entry: TargetEntry): Promise<void> {
        this.open.delete(String(entry.ref['key']));
      }
    })('fw');
    const drift = await setUp(fw, ['fw']);
    const [g] = await store.listGrants({ states: ['active'] });
    const { targetRef: _ref, ...rest } = g!;
    await store.saveGrant({ ...rest, state: 'pending' });
    fw.open.set('hand-added', rogue('hand-added', clock.now));
    expect((await drift.check()).unexpected.map((u) => u.outcome)).to.deep.include('deferred');
    expect(fw.open.has('hand-added')).to.equal(true);
    await store.saveGrant(g!);
    const r = await drift.check();
    expect(r.unexpected.map((u) => [u.entry.ref['key'], u.outcome])).to.deep.equal([['hand-added', 'removed']]);
  });

  it('reports a target whose list fails without guessing at drift, and still checks the others', async () => {
    const fw = new MemoryTarget('fw');
    await setUp(fw);
    const broken = new MemoryTarget('broken');
    broken.list = () => Promise.reject(new TargetError('broken', 'list answered 503', true));
    const checker = new DriftChecker({ store, targets: new Map([['broken', broken], ['fw', fw]]), audit, log: silentLogger, metrics, clock: now, authoritative: new Set() });
    fw.open.set('hand-added', rogue('hand-added', clock.now));
    const r = await checker.check();
    expect(r.failed).to.deep.equal([{ targetId: 'broken', error: 'target broken: list answered 503' }]);
    expect(r.unexpected).to.have.length(1);
  });
});
