import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { AuditLog } from '../../src/audit/audit.js';
import { resourceKey, RESOURCE_KINDS, type TargetRef } from '../../src/domain/index.js';
import { Reconciler } from '../../src/engine/reconciler.js';
import { silentLogger } from '../../src/log.js';
import { createMetrics } from '../../src/metrics.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import type { CallContext, Target, TargetEntry, TargetGrant } from '../../src/targets/target.js';
import { order, policySet, register, tmpDir } from '../helpers/world.js';

/** Holds one entry per resource, as every real system does (one nft element, one safe member). */
class EntryTarget implements Target {
  readonly kind = 'entries';
  readonly nativeExpiry = true;
  readonly resourceKinds = RESOURCE_KINDS;
  readonly entries = new Map<string, Date>();
  constructor(readonly id: string) {}
  async init(): Promise<void> {}
  async provision(g: TargetGrant): Promise<TargetRef> {
    this.entries.set(resourceKey(g.resource), g.validUntil);
    return { entry: resourceKey(g.resource) };
  }
  update(g: TargetGrant): Promise<TargetRef> {
    return this.provision(g);
  }
  async revoke(g: TargetGrant): Promise<void> {
    this.entries.delete(resourceKey(g.resource));
  }
  async list(_ctx: CallContext): Promise<TargetEntry[]> {
    return [...this.entries].map(([entry, expiresAt]) => ({ ref: { entry }, expiresAt }));
  }
  async close(): Promise<void> {}
}

/**
 * Gives every provision a new entry under an id it picks (a POST to a collection), and updates and
 * revokes by that id: a second provision for the same resource would make a second entry.
 */
class IdTarget implements Target {
  readonly kind = 'ids';
  readonly nativeExpiry = false;
  readonly resourceKinds = RESOURCE_KINDS;
  readonly entries = new Map<string, Date>();
  private next = 1;
  constructor(readonly id: string) {}
  async init(): Promise<void> {}
  async provision(g: TargetGrant): Promise<TargetRef> {
    const id = `e${this.next++}`;
    this.entries.set(id, g.validUntil);
    return { id };
  }
  async update(g: TargetGrant, ref: TargetRef | undefined): Promise<TargetRef> {
    const id = String(ref?.id);
    if (!this.entries.has(id)) throw new Error(`update of unknown entry ${id}`);
    this.entries.set(id, g.validUntil);
    return { id };
  }
  async revoke(_g: TargetGrant, ref: TargetRef | undefined): Promise<void> {
    this.entries.delete(String(ref?.id));
  }
  async list(): Promise<TargetEntry[]> {
    return [...this.entries].map(([id, expiresAt]) => ({ ref: { id }, expiresAt }));
  }
  async close(): Promise<void> {}
}

for (const [kind, make] of [['names its entry by the resource', (id: string) => new EntryTarget(id)], ['picks an id for each new entry', (id: string) => new IdTarget(id)]] as const) describe(`engine: two orders giving one technician the same access, on a target that ${kind}`, () => {
  const H = 3_600_000;
  let dir: string;
  let store: SqliteStore;
  let fw: EntryTarget | IdTarget;
  let rec: Reconciler;
  const clock = { now: new Date('2026-11-22T10:00:00Z') };

  beforeEach(async () => {
    dir = tmpDir();
    store = new SqliteStore(path.join(dir, 'w.db'));
    await store.migrate();
    fw = make('fw');
    rec = new Reconciler({
      store, targets: new Map([['fw', fw]]), audit: new AuditLog(store, () => clock.now), log: silentLogger, metrics: createMetrics(),
      clock: () => clock.now, random: () => 0.5, world: () => ({ policySet: policySet(), register }),
      retry: { baseMs: 1000, maxMs: 60_000, alertAfter: 3 }, lookbackMs: 86_400_000,
    });
  });
  afterEach(async () => {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const two = async (endA: number, endB: number) => {
    const now = clock.now;
    const start = new Date(now.getTime() - 60_000);
    await store.upsertOrder(order({ id: 'WO-A', assetIds: ['PLC-1'], window: { start, end: new Date(now.getTime() + endA) } }, now), now);
    await store.upsertOrder(order({ id: 'WO-B', assetIds: ['PLC-1'], window: { start, end: new Date(now.getTime() + endB) } }, now), now);
    await rec.reconcile();
    expect(await store.listGrants({ states: ['active'] }), 'one grant per order').to.have.length(2);
    expect(fw.entries.size, 'one entry for both').to.equal(1);
  };
  const entryEnd = () => [...fw.entries.values()][0]?.getTime();

  it('keeps the entry at the later end whichever order is provisioned last', async () => {
    await two(4 * H, 2 * H);
    expect(entryEnd()).to.equal(clock.now.getTime() + 4 * H);
  });

  it('closing one order keeps access for the other, with the other order\'s end', async () => {
    await two(4 * H, 2 * H);
    await store.upsertOrder(order({ id: 'WO-A', assetIds: ['PLC-1'], status: 'closed', sourceStatus: 'CLOSE', revision: '2' }, clock.now), clock.now);
    const s = await rec.reconcile();
    expect(s.revoked).to.equal(1);
    expect(fw.entries.size, 'WO-B still gives access').to.equal(1);
    expect(entryEnd(), 'shortened to WO-B\'s end').to.equal(clock.now.getTime() + 2 * H);
    const active = await store.listGrants({ states: ['active'] });
    expect(active.map((g) => g.orderKey)).to.deep.equal(['cmms/WO-B']);
  });

  it('removes the entry once the last order holding it closes', async () => {
    await two(4 * H, 2 * H);
    for (const id of ['WO-A', 'WO-B']) {
      await store.upsertOrder(order({ id, assetIds: ['PLC-1'], status: 'closed', sourceStatus: 'CLOSE', revision: '2' }, clock.now), clock.now);
    }
    await rec.reconcile();
    expect(fw.entries.size).to.equal(0);
    expect(await store.listGrants({ states: ['pending', 'active', 'revoking'] })).to.have.length(0);
  });

  it('when the earlier window ends, the entry stays until the later one', async () => {
    await two(2 * H, 4 * H);
    clock.now = new Date(clock.now.getTime() + 2 * H + 1_000);
    await rec.reconcile();
    expect(fw.entries.size).to.equal(1);
    expect(entryEnd()).to.equal(new Date('2026-11-22T10:00:00Z').getTime() + 4 * H);
  });
});
