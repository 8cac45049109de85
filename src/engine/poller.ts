import cron, { type ScheduledTask } from 'node-cron';
import type { WorkOrder } from '../domain/index.js';
import type { AuditLog } from '../audit/audit.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { AssetRecord, CallContext, Source, SourceApi } from '../sources/source.js';
import type { Store } from '../store/store.js';
import type { Intake } from './intake.js';

export interface PollerOptions {
  readonly source: Source & { readonly api: SourceApi };
  readonly intake: Pick<Intake, 'ingest'>;
  readonly store: Store;
  readonly audit: AuditLog;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly clock: () => Date;
  /** node-cron expressions (5 or 6 fields). */
  readonly incremental: string;
  readonly fullResync: string;
  /** The first incremental poll reads changes since now minus this. */
  readonly initialLookbackMs: number;
  /** No successful read for this long raises an alert (and fails closed when configured). */
  readonly staleAfterMs: number;
  readonly failClosed: boolean;
  /** Told when the source goes stale (true) or recovers (false), so the reconciler can exclude it. */
  readonly onStale: (sourceId: string, stale: boolean) => void;
  /** Orders whose stored state changed. */
  readonly onChange: (orderKeys: string[]) => void;
  /** When set, each resync also reads the CMMS's assets and hands them over. */
  readonly onAssets?: (records: readonly AssetRecord[]) => Promise<void>;
}

/** Statuses that can still hold access somewhere in policy; anything else is settled. */
const SETTLED = new Set(['completed', 'closed', 'cancelled']);

/**
 * Reads a source's changes by cursor on a schedule, and runs a full resync that finds orders
 * closed while their events were missed. The cursor lives in the store, so a restart continues
 * where it stopped. A source that can't be read for longer than its staleness limit raises an
 * alert and, if configured, stops authorising anything (fail closed) until it can be read again.
 */
export class SourcePoller {
  private tasks: ScheduledTask[] = [];
  private stale = false;
  private busy: Promise<void> = Promise.resolve();

  constructor(private readonly o: PollerOptions) {}

  private get id(): string {
    return this.o.source.id;
  }

  private unreadable: { id: string | undefined; error: Error }[] = [];
  /** What was last reported per unreadable order, so a record that stays broken is reported once, not every poll. */
  private readonly reported = new Map<string, string>();

  private ctx(): CallContext {
    return { now: this.o.clock(), log: this.o.log.child({ source: this.id }), onUnreadable: (r) => this.unreadable.push(r) };
  }

  /**
   * Records the listing skipped: each is audited and counted; an order wogate holds that can no
   * longer be read is withdrawn (stored as draft, which no sane policy allows) until it reads again,
   * so an unknown status code can't keep a door open.
   */
  private async settleUnreadable(): Promise<void> {
    const found = this.unreadable.splice(0);
    const changed: string[] = [];
    for (const { id, error } of found) {
      this.o.metrics.denials.inc({ code: 'ORDER_UNREADABLE' });
      const key = id ?? `?${error.message}`;
      if (this.reported.get(key) !== error.message) {
        this.reported.set(key, error.message);
        this.o.log.warn(`source ${this.id}: an order could not be read and is skipped`, { order: id, error: error.message });
        await this.o.audit.append({ actor: `source:${this.id}`, action: 'order.unreadable', subject: `${this.id}/${id ?? '?'}`, details: { error: error.message } });
      }
      const stored = id ? await this.o.store.getOrder(this.id, id) : undefined;
      if (!stored || SETTLED.has(stored.status) || stored.status === 'draft') continue;
      const k = await this.o.intake.ingest({ ...stored, status: 'draft', sourceStatus: `(unreadable: ${error.message.slice(0, 160)})` }, `source:${this.id}`, { unreadable: true }, true);
      if (k) changed.push(k);
    }
    if (changed.length > 0) this.o.onChange(changed);
  }

  async start(): Promise<void> {
    const opts = { noOverlap: true, name: `poll:${this.id}` };
    this.tasks = [
      cron.schedule(this.o.incremental, () => this.run('poll'), opts),
      cron.schedule(this.o.fullResync, () => this.run('resync'), { ...opts, name: `resync:${this.id}` }),
    ];
    // Staleness is checked on the incremental schedule too, so a source that hangs still trips it.
    await this.run('resync');
  }

  stop(): void {
    for (const t of this.tasks) void t.stop();
    this.tasks = [];
  }

  /** One step, serialized with the others; failures are counted, never thrown into the scheduler. */
  run(kind: 'poll' | 'resync'): Promise<void> {
    this.busy = this.busy.then(async () => {
      try {
        if (kind === 'poll') await this.pollOnce();
        else await this.resync();
        await this.markRead();
      } catch (e) {
        const error = e instanceof Error ? e.message : String(e);
        this.o.metrics.hooks.inc({ source: this.id, outcome: `${kind}_failed` });
        this.o.log.warn(`${kind} of source ${this.id} failed`, { error });
        await this.o.audit.append({ actor: 'wogate', action: `source.${kind}_failed`, subject: this.id, details: { error } }).catch(() => undefined);
      }
      await this.checkStale();
    });
    return this.busy;
  }

  /** Changes since the stored cursor; the cursor moves only after every order is stored. */
  async pollOnce(): Promise<number> {
    const key = `cursor:${this.id}`;
    const cursor = await this.o.store.getState(key);
    const since = new Date(this.o.clock().getTime() - this.o.initialLookbackMs);
    const res = await this.o.source.api.poll(cursor, since, this.ctx());
    await this.ingestAll(res.orders, 'poll');
    await this.settleUnreadable();
    await this.o.store.setState(key, res.cursor);
    return res.orders.length;
  }

  /**
   * Every open order from the CMMS, and every order wogate still thinks open that the CMMS no
   * longer lists, re-read one by one: that is how a missed "closed" is found.
   */
  async resync(): Promise<{ open: number; settled: number }> {
    if (this.o.onAssets && this.o.source.api.listAssets) await this.o.onAssets(await this.o.source.api.listAssets(this.ctx()));
    const open = await this.o.source.api.listOpen(this.ctx());
    await this.ingestAll(open, 'resync');
    // Unreadable orders are not in `open`; settling them first keeps them out of the re-read below.
    const unreadableIds = new Set(this.unreadable.map((u) => u.id));
    await this.settleUnreadable();
    const listed = new Set(open.map((o) => o.id));
    const stored = await this.o.store.listOrders(new Date(0));
    const missing = stored.filter((o) => o.source === this.id && !SETTLED.has(o.status) && o.status !== 'draft' && !listed.has(o.id) && !unreadableIds.has(o.id));
    const changed: string[] = [];
    for (const o of missing) {
      const fresh = await this.o.source.api.fetchOrder(o.id, this.ctx());
      const next: WorkOrder = fresh ?? { ...o, status: 'cancelled', sourceStatus: '(deleted in source)' };
      const k = await this.o.intake.ingest(next, `source:${this.id}`, { via: 'resync', missedEvent: true, deleted: fresh === undefined });
      if (k) changed.push(k);
    }
    if (changed.length > 0) {
      this.o.log.warn(`resync of ${this.id} found ${changed.length} order(s) changed while their events were missed`, { orders: changed });
      this.o.onChange(changed);
    }
    return { open: open.length, settled: missing.length };
  }

  private async ingestAll(orders: readonly WorkOrder[], via: string): Promise<void> {
    const changed: string[] = [];
    for (const o of orders) {
      this.reported.delete(o.id);
      if (o.source !== this.id) throw new Error(`source ${this.id} returned an order of source ${o.source}`);
      const k = await this.o.intake.ingest(o, `source:${this.id}`, { via });
      if (k) changed.push(k);
    }
    if (changed.length > 0) this.o.onChange(changed);
  }

  private async markRead(): Promise<void> {
    await this.o.store.setState(`lastRead:${this.id}`, this.o.clock().toISOString());
  }

  /** The last successful read, or undefined when there never was one. */
  async lastRead(): Promise<Date | undefined> {
    const v = await this.o.store.getState(`lastRead:${this.id}`);
    return v ? new Date(v) : undefined;
  }

  isStale(): boolean {
    return this.stale;
  }

  private async checkStale(): Promise<void> {
    const last = await this.lastRead();
    const now = this.o.clock().getTime();
    // Never read yet counts from the first attempt, so a source down since start is caught too.
    if (!last) await this.o.store.setState(`firstTry:${this.id}`, (await this.o.store.getState(`firstTry:${this.id}`)) ?? new Date(now).toISOString());
    const since = last ?? new Date((await this.o.store.getState(`firstTry:${this.id}`)) as string);
    const stale = now - since.getTime() > this.o.staleAfterMs;
    if (stale === this.stale) return;
    this.stale = stale;
    if (stale) {
      this.o.metrics.alerts.inc({ kind: 'source_stale' });
      this.o.log.error(`ALERT: source ${this.id} has not been read since ${since.toISOString()}${this.o.failClosed ? '; failing closed: access it authorised is revoked until it can be read' : ''}`);
    } else {
      this.o.log.info(`source ${this.id} can be read again`);
    }
    await this.o.audit.append({ actor: 'wogate', action: stale ? 'source.stale' : 'source.recovered', subject: this.id, details: { lastRead: last?.toISOString() ?? null, failClosed: this.o.failClosed } });
    if (this.o.failClosed) this.o.onStale(this.id, stale);
  }
}

