import { evaluate, freshApprovalsReapprove, isWogateError, narrows, nextApprovedScope, orderKey, type WorkOrder } from '../domain/index.js';
import type { AuditLog } from '../audit/audit.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { SourceError, type Source, type SourceEvent } from '../sources/source.js';
import type { HookEvent, Store } from '../store/store.js';
import { applyAccessBlocks, readAccessBlocks } from './access-blocks.js';
import { backoffDelay } from './backoff.js';
import { evaluationInputs, type World } from './reconciler.js';

export interface IntakeOptions {
  readonly store: Store;
  readonly sources: ReadonlyMap<string, Source>;
  readonly audit: AuditLog;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly clock: () => Date;
  readonly random: () => number;
  readonly world: () => World;
  /** Called with the orders whose stored state changed, so the reconciler looks at them again. */
  readonly onChange: (orderKeys: string[]) => void;
  /** Re-reads of one order per delivery before it is deferred (default 3). */
  readonly rereadAttempts?: number;
  /** A delivery deferred this many times is given up (the poller's resync still covers the order). */
  readonly maxDeferrals?: number;
}

const REREAD_BACKOFF = { baseMs: 250, maxMs: 2000 };
const DEFER_BACKOFF = { baseMs: 5000, maxMs: 300_000 };

/**
 * Drains the inbox: each stored delivery is read into an event; where the source has an API the
 * order is re-read from the CMMS (a webhook is a doorbell, not the order's state) and a
 * disagreement is audited. The order is stored unless an older revision, and its policy decision
 * is audited. One drain at a time; a trigger during a drain runs another after it.
 */
export class Intake {
  private draining: Promise<void> | undefined;
  private again = false;
  private timer: NodeJS.Timeout | undefined;
  private timerAt: number | undefined;
  private readonly due = new Set<number>();

  constructor(private readonly o: IntakeOptions) {}

  drain(): Promise<void> {
    if (this.draining) {
      this.again = true;
      return this.draining;
    }
    this.draining = (async () => {
      do {
        this.again = false;
        let batch: HookEvent[];
        do {
          batch = await this.o.store.pendingHookEvents(100, this.o.clock());
          const changed = new Set<string>();
          for (const ev of batch) {
            const key = await this.process(ev);
            if (key) changed.add(key);
          }
          if (changed.size > 0) this.o.onChange([...changed]);
        } while (batch.length === 100);
      } while (this.again);
    })().finally(() => {
      this.draining = undefined;
    });
    return this.draining;
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Drains again at `at` (every deferred delivery's due time is kept; the timer is for the earliest). */
  private wakeAt(at: number): void {
    this.due.add(at);
    this.arm();
  }

  private arm(): void {
    const now = this.o.clock().getTime();
    for (const t of this.due) if (t <= now - 60_000) this.due.delete(t);
    const next = Math.min(...this.due);
    if (!Number.isFinite(next) || (this.timer && this.timerAt === next)) return;
    clearTimeout(this.timer);
    this.timerAt = next;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.due.delete(next);
      void this.drain().catch(() => undefined).finally(() => this.arm());
    }, Math.max(0, next - now));
    this.timer.unref();
  }

  /**
   * Stores one order from any path (webhook, poll, resync) and audits what policy now says of it.
   * Returns the order's key when its stored state changed. `withdrawn`: wogate withdrew the order
   * itself (it can't be read), which keeps its approved scope.
   */
  async ingest(order: WorkOrder, actor: string, details: Record<string, unknown> = {}, withdrawn = false): Promise<string | undefined> {
    const { register, policySet } = this.o.world();
    // A widened order is approved again only by fresh approvals that would approve it new.
    const result = await this.o.store.upsertOrder(order, this.o.clock(), freshApprovalsReapprove(register, policySet), withdrawn);
    if (result === 'unchanged') return undefined;
    await this.o.audit.append({
      actor,
      action: 'order.received',
      subject: orderKey(order),
      details: { ...details, revision: order.revision, status: order.status, sourceStatus: order.sourceStatus, result },
    });
    if (result === 'stale') {
      this.o.log.info('older revision of an order ignored', { order: orderKey(order), revision: order.revision });
      return undefined;
    }
    await this.auditDecision(order);
    return orderKey(order);
  }

  private async process(ev: HookEvent): Promise<string | undefined> {
    const source = this.o.sources.get(ev.source);
    const delivery = { webhookId: ev.webhookId, eventTime: ev.eventTime };
    const actor = `source:${ev.source}`;
    try {
      if (!source) throw new Error(`source "${ev.source}" is no longer configured`);
      const event = source.parseEvent(JSON.parse(ev.body) as unknown, delivery);
      if (!source.api) {
        if (!event.order) throw new Error(`source "${ev.source}" sent a thin event and has no API to read the order from`);
        const key = await this.ingest(event.order, actor, { webhookId: ev.webhookId, event: event.type });
        await this.o.store.finishHookEvent(ev.seq, 'processed');
        return key;
      }
      return await this.doorbell(source, event, ev);
    } catch (e) {
      const error = e instanceof Error ? e.message : String(e);
      await this.o.store.finishHookEvent(ev.seq, 'rejected', error);
      this.o.metrics.hooks.inc({ source: ev.source, outcome: 'rejected_after_store' });
      this.o.log.warn('stored webhook could not be turned into a work order', { source: ev.source, webhookId: ev.webhookId, code: isWogateError(e) ? e.code : 'INTERNAL', error });
      await this.o.audit.append({ actor, action: 'hook.rejected', subject: ev.webhookId, details: { error } });
      return undefined;
    }
  }

  /** The webhook names the order; the CMMS says what it is. */
  private async doorbell(source: Source, event: SourceEvent, ev: HookEvent): Promise<string | undefined> {
    const actor = `source:${source.id}`;
    const subject = `${source.id}/${event.orderId}`;
    let fresh: WorkOrder | undefined;
    try {
      fresh = await this.reread(source, event.orderId);
    } catch (e) {
      return this.unreadable(source, event, ev, e instanceof Error ? e.message : String(e));
    }
    await this.o.store.finishHookEvent(ev.seq, 'processed');
    if (!fresh) {
      // Gone from the CMMS: whatever it allowed ends.
      const stored = await this.o.store.getOrder(source.id, event.orderId);
      await this.o.audit.append({ actor, action: 'order.deleted_in_source', subject, details: { webhookId: ev.webhookId, known: stored !== undefined } });
      if (!stored || stored.status === 'cancelled') return undefined;
      return this.ingest({ ...stored, status: 'cancelled', sourceStatus: '(deleted in source)' }, actor, { webhookId: ev.webhookId, deleted: true });
    }
    if (event.order) {
      const diff = differences(event.order, fresh);
      if (diff.length > 0) {
        this.o.metrics.alerts.inc({ kind: 'webhook_api_disagreement' });
        this.o.log.warn('webhook and CMMS API disagree about an order; the API wins', { order: subject, fields: diff });
        await this.o.audit.append({ actor, action: 'order.disagreement', subject, details: { webhookId: ev.webhookId, fields: diff, webhook: summary(event.order), api: summary(fresh) } });
      }
    }
    return this.ingest(fresh, actor, { webhookId: ev.webhookId, event: event.type, reread: true });
  }

  private async reread(source: Source, id: string): Promise<WorkOrder | undefined> {
    const attempts = this.o.rereadAttempts ?? 3;
    for (let attempt = 1; ; attempt++) {
      try {
        return await (source.api as NonNullable<Source['api']>).fetchOrder(id, { now: this.o.clock(), log: this.o.log.child({ source: source.id }) });
      } catch (e) {
        const retryable = !(e instanceof SourceError) || e.retryable;
        if (!retryable || attempt >= attempts) throw e;
        const hinted = e instanceof SourceError && typeof e.details?.retryAfterMs === 'number' ? e.details.retryAfterMs : 0;
        await new Promise((r) => setTimeout(r, Math.min(REREAD_BACKOFF.maxMs, Math.max(hinted, backoffDelay(attempt, REREAD_BACKOFF, this.o.random)))));
      }
    }
  }

  /**
   * The CMMS can't be read. No new access on the webhook's word: its own account of the order is
   * taken only when it narrows what is already allowed; otherwise the delivery waits and is retried.
   */
  private async unreadable(source: Source, event: SourceEvent, ev: HookEvent, error: string): Promise<string | undefined> {
    const actor = `source:${source.id}`;
    const subject = `${source.id}/${event.orderId}`;
    this.o.log.warn('could not re-read the order from the CMMS', { order: subject, error });
    if (event.order) {
      const world = this.o.world();
      const { policySet, register } = world;
      const now = this.o.clock();
      const stored = await this.o.store.getOrder(source.id, event.orderId);
      const inputs = await evaluationInputs(world, this.o.store, [event.order]);
      // The claim is judged with the approved scope storing it would give: a new approval in it
      // would approve its wider scope, which is more access on the webhook's word.
      const key = orderKey(event.order);
      const scope = nextApprovedScope(inputs.approvedScopes?.get(key), event.order, freshApprovalsReapprove(register, policySet));
      const claimed = new Map(inputs.approvedScopes);
      if (scope) claimed.set(key, scope);
      else claimed.delete(key);
      if (narrows(evaluate([event.order], register, policySet, now, { ...inputs, approvedScopes: claimed }), evaluate(stored ? [stored] : [], register, policySet, now, inputs))) {
        await this.o.store.finishHookEvent(ev.seq, 'processed');
        await this.o.audit.append({ actor, action: 'order.unverified_restriction', subject, details: { webhookId: ev.webhookId, error, status: event.order.status } });
        return this.ingest(event.order, actor, { webhookId: ev.webhookId, event: event.type, reread: false });
      }
    }
    if (ev.attempts + 1 >= (this.o.maxDeferrals ?? 12)) {
      await this.o.store.finishHookEvent(ev.seq, 'rejected', `gave up re-reading the order: ${error}`);
      await this.o.audit.append({ actor, action: 'hook.abandoned', subject, details: { webhookId: ev.webhookId, attempts: ev.attempts + 1, error } });
      return undefined;
    }
    const delay = backoffDelay(ev.attempts + 1, DEFER_BACKOFF, this.o.random);
    await this.o.store.deferHookEvent(ev.seq, new Date(this.o.clock().getTime() + delay), error);
    await this.o.audit.append({ actor, action: 'order.reread_failed', subject, details: { webhookId: ev.webhookId, error, retryInMs: delay } });
    this.wakeAt(this.o.clock().getTime() + delay + 10);
    return undefined;
  }

  /** Writes down what policy says about this order right now: every grant and every denial with its reason. */
  private async auditDecision(order: WorkOrder): Promise<void> {
    const world = this.o.world();
    const { policySet, register } = world;
    const now = this.o.clock();
    // Access blocks as the reconciler applies them, so the record never lists a grant a block keeps off.
    const ev = applyAccessBlocks(evaluate([order], register, policySet, now, await evaluationInputs(world, this.o.store, [order])), await readAccessBlocks(this.o.store));
    for (const d of ev.denials) this.o.metrics.denials.inc({ code: d.code });
    await this.o.audit.append({
      actor: 'wogate',
      action: 'order.evaluated',
      subject: orderKey(order),
      details: {
        status: order.status,
        grants: ev.grants.map((g) => ({ technician: g.technicianId, asset: g.assetId, target: g.targetId, resource: g.resource, validFrom: g.validFrom.toISOString(), validUntil: g.validUntil.toISOString(), rule: g.rule })),
        denials: ev.denials.map((d) => ({ technician: d.technicianId, asset: d.assetId, code: d.code, reason: d.reason })),
      },
    });
    if (ev.denials.length > 0) {
      this.o.log.info('order evaluated: some access denied', { order: orderKey(order), status: order.status, grants: ev.grants.length, denials: ev.denials.map((d) => `${[d.technicianId, d.assetId].filter(Boolean).join(' -> ') || 'order'}: ${d.code}: ${d.reason}`) });
    } else {
      this.o.log.info('order evaluated', { order: orderKey(order), status: order.status, grants: ev.grants.length });
    }
  }
}

function summary(o: WorkOrder): Record<string, unknown> {
  return {
    status: o.status, sourceStatus: o.sourceStatus, vendor: o.vendorId, technicians: o.technicianIds, assets: o.assetIds,
    start: o.window.start.toISOString(), end: o.window.end.toISOString(), approvals: o.approvals.length, revision: o.revision,
  };
}

/** The fields on which a webhook and the API can disagree in a way that matters for access. */
function differences(a: WorkOrder, b: WorkOrder): string[] {
  const sa = summary(a);
  const sb = summary(b);
  return ['status', 'vendor', 'technicians', 'assets', 'start', 'end', 'approvals'].filter((k) => JSON.stringify(sa[k]) !== JSON.stringify(sb[k]));
}
