import { randomUUID } from 'node:crypto';
import {
  approveBreakGlass, breakGlassOrder, closeBreakGlass, newBreakGlassRequest, reviewOverdue, reviewText,
  type BreakGlassInput, type BreakGlassPolicy, type BreakGlassRequest, type BreakGlassReview,
} from '../domain/breakglass.js';
import { isWogateError, orderKey, WogateError } from '../domain/index.js';
import type { ActorContext, AuditLog } from '../audit/audit.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { Source } from '../sources/source.js';
import type { Store } from '../store/store.js';
import { backoffDelay, type BackoffOptions } from './backoff.js';
import type { World } from './reconciler.js';

export interface BreakGlassOptions {
  readonly store: Store;
  readonly audit: AuditLog;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly clock: () => Date;
  readonly world: () => World;
  /** Absent: break-glass is refused. */
  readonly policy?: BreakGlassPolicy;
  /** Where review orders are opened (its api.createReview); absent: reviews are tracked and alerted on in wogate only. */
  readonly reviewSource?: Source;
  readonly reviewSite?: string;
  /** The synthetic orders changed: reconcile them. */
  readonly trigger: (orderKeys: string[]) => void;
  /** Review creation retries; an alert after `alertAfter` failures. */
  readonly retry: BackoffOptions & { readonly alertAfter: number };
  readonly random?: () => number;
  /** How often reviews are created, polled and checked for being overdue; default 60 s. */
  readonly checkEveryMs?: number;
  readonly newId?: () => string;
}

const DONE_STATUSES = new Set(['completed', 'closed']);

/**
 * Break-glass requests: checked and stored, approved by a second person into a synthetic work
 * order the normal engine grants and revokes, closed by hand or at the hard cap, and followed by
 * a post-event review order in the CMMS that is polled until closed and alerted on when overdue.
 * Every step is audited. Changes to one request are serialised; CMMS calls happen outside that
 * lock, so a slow CMMS never delays closing a request.
 */
export class BreakGlassService {
  private lock: Promise<unknown> = Promise.resolve();
  private readonly caps = new Map<string, NodeJS.Timeout>();
  private readonly reviewing = new Set<string>();
  private ticker: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;

  constructor(private readonly o: BreakGlassOptions) {}

  get enabled(): boolean {
    return this.o.policy !== undefined;
  }

  /** Restores the cap timers of approved requests (closing those already past it) and starts the review checks. */
  async start(): Promise<void> {
    for (const r of await this.o.store.listBreakGlass({ states: ['approved'] })) this.armCap(r);
    await this.tick();
    this.ticker = setInterval(() => void this.tick(), this.o.checkEveryMs ?? 60_000);
    this.ticker.unref();
  }

  stop(): void {
    clearInterval(this.ticker);
    for (const t of this.caps.values()) clearTimeout(t);
    this.caps.clear();
  }

  list(): Promise<BreakGlassRequest[]> {
    return this.o.store.listBreakGlass();
  }

  async get(id: string): Promise<BreakGlassRequest> {
    const r = await this.o.store.getBreakGlass(id);
    if (!r) throw new WogateError('NOT_FOUND', `no break-glass request "${id.slice(0, 80)}"`);
    return r;
  }

  /**
   * `context` (the actor's role, the person behind the credential, where the request came from)
   * goes into every audit record of the step; its `person` is what the two-person rule compares.
   */
  async request(input: BreakGlassInput, actor: string, context: ActorContext = {}): Promise<BreakGlassRequest> {
    const now = this.o.clock();
    const id = this.o.newId?.() ?? `bg-${randomUUID()}`;
    let r: BreakGlassRequest;
    try {
      r = newBreakGlassRequest(input, { actor, person: context.person }, this.o.policy, this.o.world().register, id, now);
    } catch (e) {
      await this.refused(actor, 'request', 'new', e, context);
      throw e;
    }
    await this.o.store.saveBreakGlass(r);
    this.o.log.warn('BREAK-GLASS requested', { id: r.id, requester: actor, vendor: r.vendorId, assets: r.assetIds });
    await this.o.audit.append({ actor, action: 'breakglass.requested', subject: r.id, details: { ...describe(r), ...context } });
    return r;
  }

  async approve(id: string, actor: string, context: ActorContext = {}): Promise<BreakGlassRequest> {
    const approved = await this.serial(async () => {
      const r = await this.get(id);
      let next: BreakGlassRequest;
      try {
        next = approveBreakGlass(r, { actor, person: context.person }, this.o.policy, this.o.clock());
      } catch (e) {
        await this.refused(actor, 'approve', id, e, context);
        throw e;
      }
      const order = breakGlassOrder(next) as NonNullable<ReturnType<typeof breakGlassOrder>>;
      // The order first: a request marked approved whose order was never stored would grant nothing and look as if it did.
      await this.o.store.upsertOrder(order, this.o.clock());
      await this.o.store.saveBreakGlass(next);
      await this.o.audit.append({
        actor, action: 'breakglass.approved', subject: id,
        details: { ...describe(next), ...context, order: orderKey(order), capped: next.requestedDurationMs > (this.o.policy?.maxDurationMs ?? 0), reviewDueAt: next.review?.dueAt.toISOString() },
      });
      this.o.log.warn('BREAK-GLASS approved: emergency access opens now', { id, requester: next.requester, approver: actor, until: next.window?.end.toISOString() });
      this.o.trigger([orderKey(order)]);
      return next;
    });
    this.armCap(approved);
    void this.openReview(id);
    return approved;
  }

  async close(id: string, actor: string, reason: string, context: ActorContext = {}): Promise<BreakGlassRequest> {
    return this.serial(async () => {
      const r = await this.get(id);
      let next: BreakGlassRequest;
      try {
        next = closeBreakGlass(r, actor, reason, this.o.clock());
      } catch (e) {
        await this.refused(actor, 'close', id, e, context);
        throw e;
      }
      return this.finish(r, next, actor, context);
    });
  }

  /**
   * One round of the periodic work: requests past their cap are closed, pending reviews created
   * (when their backoff allows), open ones polled, and overdue ones alerted on. Safe to call any time.
   */
  tick(): Promise<void> {
    this.ticking ??= this.round().finally(() => {
      this.ticking = undefined;
    });
    return this.ticking;
  }

  private async round(): Promise<void> {
    const now = this.o.clock();
    // One request's failure must not stop the others' checks; each is retried next round.
    const each = async (id: string, f: () => Promise<void>) => {
      try {
        await f();
      } catch (e) {
        this.o.log.error('break-glass check failed; retried on the next round', { id, error: e instanceof Error ? e.message : String(e) });
      }
    };
    try {
      for (const r of await this.o.store.listBreakGlass({ states: ['approved'] })) {
        if (r.window && r.window.end.getTime() <= now.getTime()) await each(r.id, () => this.expire(r.id));
      }
      for (const r of await this.o.store.listBreakGlass({ reviewOpen: true })) {
        const v = r.review as BreakGlassReview;
        await each(r.id, async () => {
          if (v.state === 'pending' && (v.nextAttemptAt === undefined || v.nextAttemptAt.getTime() <= now.getTime())) await this.openReview(r.id);
          else if (v.state === 'open') await this.pollReview(r);
          await this.checkOverdue(r.id);
        });
      }
    } catch (e) {
      this.o.log.error('break-glass checks failed', { error: e instanceof Error ? e.message : String(e) });
    }
  }

  private async expire(id: string): Promise<void> {
    await this.serial(async () => {
      const r = await this.get(id);
      if (r.state !== 'approved') return;
      await this.finish(r, closeBreakGlass(r, 'wogate', 'hard maximum duration reached', this.o.clock()), 'wogate');
    });
  }

  /** Stores the closed request and its closed order, and has the engine take the access away. */
  private async finish(before: BreakGlassRequest, next: BreakGlassRequest, actor: string, context: ActorContext = {}): Promise<BreakGlassRequest> {
    clearTimeout(this.caps.get(next.id));
    this.caps.delete(next.id);
    const order = before.state === 'approved' ? breakGlassOrder(next) : undefined;
    if (order) await this.o.store.upsertOrder(order, this.o.clock());
    await this.o.store.saveBreakGlass(next);
    await this.o.audit.append({ actor, action: 'breakglass.closed', subject: next.id, details: { was: before.state, reason: next.closeReason, ...context, ...(order ? { order: orderKey(order) } : {}) } });
    this.o.log.warn('BREAK-GLASS closed', { id: next.id, by: actor, reason: next.closeReason, was: before.state });
    if (order) this.o.trigger([orderKey(order)]);
    return next;
  }

  private armCap(r: BreakGlassRequest): void {
    const end = r.state === 'approved' ? r.window?.end : undefined;
    if (!end) return;
    clearTimeout(this.caps.get(r.id));
    // Long waits are split: setTimeout can't hold more than about 24.8 days, and the clock may be moved in tests.
    const wait = Math.max(0, Math.min(end.getTime() - this.o.clock().getTime(), 3_600_000));
    const t = setTimeout(() => {
      this.caps.delete(r.id);
      if (this.o.clock().getTime() >= end.getTime()) void this.expire(r.id).catch((e: unknown) => this.o.log.error('closing break-glass at its cap failed; the next check retries', { id: r.id, error: String(e) }));
      else this.armCap(r);
    }, wait);
    t.unref();
    this.caps.set(r.id, t);
  }

  /** Creates the review order in the CMMS once; a failure is retried with backoff and alerted on after retry.alertAfter attempts. */
  private async openReview(id: string): Promise<void> {
    if (this.reviewing.has(id)) return;
    this.reviewing.add(id);
    try {
      const r = await this.get(id);
      if (r.review?.state !== 'pending') return;
      const api = this.o.reviewSource?.api;
      if (!api?.createReview) {
        // Nowhere to open it: wogate tracks the review itself and alerts when it is overdue.
        await this.updateReview(id, (v) => ({ ...v, attempts: v.attempts + 1, nextAttemptAt: new Date(v.dueAt.getTime()), lastError: 'no review source with a write API is configured (breakGlass.reviewSource)' }));
        return;
      }
      const now = this.o.clock();
      const { title, details } = reviewText(r);
      try {
        const { orderId } = await api.createReview({ title, details, dueAt: r.review.dueAt, ...(this.o.reviewSite ? { site: this.o.reviewSite } : {}) }, { now, log: this.o.log.child({ source: this.o.reviewSource?.id }) });
        await this.updateReview(id, (v) => ({ state: 'open', dueAt: v.dueAt, orderId, attempts: v.attempts + 1 }));
        await this.o.audit.append({ actor: 'wogate', action: 'breakglass.review_opened', subject: id, details: { source: this.o.reviewSource?.id, orderId, dueAt: r.review.dueAt.toISOString() } });
        this.o.log.info('break-glass review order opened', { id, source: this.o.reviewSource?.id, orderId, dueAt: r.review.dueAt.toISOString() });
      } catch (e) {
        const message = e instanceof Error ? e.message : String(e);
        const retryable = !isWogateError(e) || (e as { retryable?: boolean }).retryable !== false;
        const attempts = r.review.attempts + 1;
        const delay = backoffDelay(attempts, this.o.retry, this.o.random ?? Math.random);
        // A call that can't succeed by repeating it is retried at the slowest pace: the config or the CMMS must change.
        const next = new Date(now.getTime() + (retryable ? delay : this.o.retry.maxMs));
        await this.updateReview(id, (v) => ({ ...v, attempts, nextAttemptAt: next, lastError: message.slice(0, 500) }));
        this.o.log.warn('break-glass review order could not be opened; will retry', { id, attempts, retryAt: next.toISOString(), error: message });
        if (attempts === this.o.retry.alertAfter) {
          this.o.metrics.alerts.inc({ kind: 'breakglass_review_unopened' });
          this.o.log.error(`ALERT: the post-event review of break-glass ${id} could not be opened in ${this.o.reviewSource?.id} after ${attempts} attempts`, { error: message });
          await this.o.audit.append({ actor: 'wogate', action: 'alert.raised', subject: id, details: { kind: 'breakglass_review_unopened', attempts, error: message.slice(0, 500) } });
        }
      }
    } catch (e) {
      this.o.log.error('break-glass review creation failed', { id, error: e instanceof Error ? e.message : String(e) });
    } finally {
      this.reviewing.delete(id);
    }
  }

  /** Reads the review order's status; completed or closed in the CMMS ends the review. */
  private async pollReview(r: BreakGlassRequest): Promise<void> {
    const api = this.o.reviewSource?.api;
    const orderId = r.review?.orderId;
    if (!api || orderId === undefined) return;
    const now = this.o.clock();
    let status: string | undefined;
    try {
      status = (await api.fetchOrder(orderId, { now, log: this.o.log.child({ source: this.o.reviewSource?.id }) }))?.status;
    } catch (e) {
      this.o.log.warn('break-glass review order could not be read; will try again', { id: r.id, orderId, error: e instanceof Error ? e.message : String(e) });
      return;
    }
    if (status === undefined || !DONE_STATUSES.has(status)) return;
    await this.updateReview(r.id, (v) => ({ ...v, state: 'done', doneAt: now }));
    await this.o.audit.append({ actor: 'wogate', action: 'breakglass.review_closed', subject: r.id, details: { source: this.o.reviewSource?.id, orderId, status, late: r.review !== undefined && now > r.review.dueAt } });
  }

  private async checkOverdue(id: string): Promise<void> {
    const now = this.o.clock();
    const r = await this.get(id);
    if (!reviewOverdue(r, now) || r.review?.overdueSince) return;
    await this.updateReview(id, (v) => ({ ...v, overdueSince: now }));
    this.o.metrics.alerts.inc({ kind: 'breakglass_review_overdue' });
    this.o.log.error(`ALERT: the post-event review of break-glass ${id} was due ${r.review?.dueAt.toISOString()} and is not closed`, { id, orderId: r.review?.orderId });
    await this.o.audit.append({ actor: 'wogate', action: 'breakglass.review_overdue', subject: id, details: { dueAt: r.review?.dueAt.toISOString(), source: this.o.reviewSource?.id ?? null, orderId: r.review?.orderId ?? null, state: r.review?.state } });
  }

  private updateReview(id: string, f: (v: BreakGlassReview) => BreakGlassReview): Promise<void> {
    return this.serial(async () => {
      const r = await this.get(id);
      if (r.review) await this.o.store.saveBreakGlass({ ...r, review: f(r.review) });
    });
  }

  private async refused(actor: string, step: string, id: string, e: unknown, context: ActorContext): Promise<void> {
    if (!isWogateError(e)) return;
    await this.o.audit.append({ actor, action: 'breakglass.refused', subject: id, details: { step, ...context, code: e.code, message: e.message } });
  }

  private serial<T>(f: () => Promise<T>): Promise<T> {
    const run = this.lock.then(f, f);
    this.lock = run.catch(() => undefined);
    return run;
  }
}

function describe(r: BreakGlassRequest): Record<string, unknown> {
  return {
    requester: r.requester, ...(r.requesterPerson ? { requesterPerson: r.requesterPerson } : {}), vendorId: r.vendorId, technicianIds: r.technicianIds, assetIds: r.assetIds, justification: r.justification,
    requestedMinutes: Math.round(r.requestedDurationMs / 60_000),
    ...(r.approver ? { approver: r.approver } : {}),
    ...(r.approverPerson ? { approverPerson: r.approverPerson } : {}),
    ...(r.window ? { window: { start: r.window.start.toISOString(), end: r.window.end.toISOString() } } : {}),
  };
}
