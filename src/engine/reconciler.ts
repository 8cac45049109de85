import { randomUUID } from 'node:crypto';
import {
  evaluate, orderKey, plan, resourceKey, type Action, type Denial, type DesiredGrant, type Evaluation, type EvaluationInputs, type Grant, type PolicySet, type Register,
  type SourceAuthorities, type WorkOrder,
} from '../domain/index.js';
import type { ActorContext, AuditLog } from '../audit/audit.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { JournalOp, Store } from '../store/store.js';
import { TargetError, type Target, type TargetGrant } from '../targets/target.js';
import { applyAccessBlocks, blocks, readAccessBlocks, type AccessBlock } from './access-blocks.js';
import { backoffDelay, type BackoffOptions } from './backoff.js';

/** The inputs that can change on reload. */
export interface World {
  readonly policySet: PolicySet;
  readonly register: Register;
  /** What each configured source may authorise (config `sources[].authorises`, `trustAssets`). */
  readonly sources?: SourceAuthorities;
}

/** Everything evaluate() takes besides orders and now: the world's parts, and each order's approved scope from the store. */
export async function evaluationInputs(world: World, store: Pick<Store, 'approvedScopes'>, orders: readonly WorkOrder[]): Promise<EvaluationInputs> {
  return { ...(world.sources ? { sources: world.sources } : {}), approvedScopes: await store.approvedScopes(orders.map(orderKey)) };
}

export interface ReconcilerOptions {
  readonly store: Store;
  readonly targets: ReadonlyMap<string, Target>;
  readonly audit: AuditLog;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly clock: () => Date;
  readonly random: () => number;
  readonly world: () => World;
  readonly retry: BackoffOptions & { readonly alertAfter: number };
  /** Orders whose window ended longer ago than this can no longer yield access and are not read. */
  readonly lookbackMs: number;
  /** Told after a target confirmed a change (for the write-back to the work order); must not throw. */
  readonly onGrantChange?: (grant: Grant, change: 'provisioned' | 'updated' | 'revoked') => void;
  /** Sources that failed closed (stale): their orders authorise nothing until they recover. */
  readonly excludedSources?: () => ReadonlySet<string>;
  /** Vendors an operator suspended (the kill switch): their orders authorise nothing. */
  readonly suspendedVendors?: () => ReadonlyMap<string, { readonly reason: string; readonly by: string }>;
}

export interface ReconcileSummary {
  readonly provisioned: number;
  readonly updated: number;
  readonly revoked: number;
  readonly failed: number;
  /** True when the pass covered only some orders: its nextWakeAt says nothing about the rest. */
  readonly scoped?: boolean;
  readonly nextWakeAt?: Date;
}

/**
 * Level-triggered: every pass recomputes desired state from the stored orders, compares it with
 * the grants wogate holds and acts on the difference. Events only say "look again"; nothing
 * depends on one having arrived.
 */
export class Reconciler {
  private running: Promise<ReconcileSummary> | undefined;
  private wantFull = false;
  private readonly wantOrders = new Set<string>();

  constructor(private readonly o: ReconcilerOptions) {}

  async evaluation(now: Date): Promise<Evaluation> {
    return this.evaluate(await this.o.store.listOrders(new Date(now.getTime() - this.o.lookbackMs)), now);
  }

  /** The decision for these orders as the engine makes it, suspended vendors, blocked access and stale sources included (explain). */
  explainOrders(orders: readonly WorkOrder[], now: Date): Promise<Evaluation> {
    return this.evaluate(orders, now);
  }

  private async evaluate(orders: readonly WorkOrder[], now: Date): Promise<Evaluation> {
    return applyAccessBlocks(await this.evaluateOrders(orders, now), await readAccessBlocks(this.o.store));
  }

  private async evaluateOrders(orders: readonly WorkOrder[], now: Date): Promise<Evaluation> {
    const world = this.o.world();
    const { policySet, register } = world;
    const inputs = await evaluationInputs(world, this.o.store, orders);
    const excluded = this.o.excludedSources?.() ?? new Set<string>();
    const suspended = this.o.suspendedVendors?.() ?? new Map<string, { reason: string; by: string }>();
    if (excluded.size === 0 && suspended.size === 0) return evaluate(orders, register, policySet, now, inputs);
    const ev = evaluate(orders.filter((o) => !excluded.has(o.source) && !suspended.has(o.vendorId)), register, policySet, now, inputs);
    const denied = orders.flatMap((o): Denial[] => {
      const s = suspended.get(o.vendorId);
      if (s) return [{ orderKey: orderKey(o), code: 'VENDOR_SUSPENDED' as const, reason: `vendor "${o.vendorId}" is suspended by ${s.by}: ${s.reason}` }];
      return excluded.has(o.source) ? [{ orderKey: orderKey(o), code: 'SOURCE_STALE' as const, reason: `source ${o.source} can't be read and fails closed` }] : [];
    });
    return { ...ev, denials: [...ev.denials, ...denied] };
  }

  /**
   * Runs a pass over every live order, or only over `orderKeys` when an event said which orders
   * changed: a grant belongs to exactly one order, so a scoped pass decides those orders exactly as
   * a full one would, at a cost that does not grow with everything else wogate holds. Calls made
   * while a pass runs fold into the passes after it; the promise settles when they are done.
   */
  reconcile(orderKeys?: readonly string[]): Promise<ReconcileSummary> {
    if (orderKeys) for (const k of orderKeys) this.wantOrders.add(k);
    else this.wantFull = true;
    if (this.running) return this.running;
    const run = async (): Promise<ReconcileSummary> => {
      let summary: ReconcileSummary = { provisioned: 0, updated: 0, revoked: 0, failed: 0 };
      while (this.wantFull || this.wantOrders.size > 0) {
        const full = this.wantFull;
        const keys = [...this.wantOrders];
        this.wantFull = false;
        this.wantOrders.clear();
        summary = full ? await this.pass() : await this.pass(keys);
      }
      return summary;
    };
    this.running = run().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async pass(orderKeys?: readonly string[]): Promise<ReconcileSummary> {
    const end = this.o.metrics.reconcileSeconds.startTimer();
    const now = this.o.clock();
    const liveStates = ['pending', 'active', 'revoking'] as const;
    let evaluation: Evaluation;
    let actual: Grant[];
    if (orderKeys) {
      const orders = [];
      actual = [];
      for (const key of orderKeys) {
        const slash = key.indexOf('/');
        const order = await this.o.store.getOrder(key.slice(0, slash), key.slice(slash + 1));
        if (order) orders.push(order);
        actual.push(...(await this.o.store.listGrants({ orderKey: key, states: liveStates })));
      }
      evaluation = await this.evaluate(orders, now);
    } else {
      evaluation = await this.evaluation(now);
      actual = await this.o.store.listGrants({ states: liveStates });
    }
    const actions = plan(evaluation, actual, now, await this.o.store.blockedKeys());
    const counts = { provisioned: 0, updated: 0, revoked: 0, failed: 0 };
    for (const action of actions) {
      const ok = await this.act(action);
      if (!ok) counts.failed++;
      else if (action.kind === 'provision') counts.provisioned++;
      else if (action.kind === 'update') counts.updated++;
      else counts.revoked++;
    }
    let live: Grant[];
    if (orderKeys) {
      live = (await Promise.all(orderKeys.map((key) => this.o.store.listGrants({ orderKey: key, states: liveStates })))).flat();
    } else {
      live = await this.o.store.listGrants({ states: liveStates });
      for (const s of liveStates) this.o.metrics.grants.set({ state: s }, live.filter((g) => g.state === s).length);
    }
    end();
    const wake = nextWake(evaluation, live);
    return { ...counts, scoped: orderKeys !== undefined, ...(wake ? { nextWakeAt: wake } : {}) };
  }

  /** Journals the intent, calls the target, journals the outcome. Returns false when the call failed. */
  private async act(action: Action): Promise<boolean> {
    const now = this.o.clock();
    const { store } = this.o;
    let grant: Grant;
    let op: JournalOp;
    if (action.kind === 'provision') {
      op = 'provision';
      grant = action.existing
        ? { ...action.existing, ...copyDesired(action.desired), attempts: action.existing.attempts + 1, updatedAt: now }
        : { ...copyDesired(action.desired), id: randomUUID(), state: 'pending', attempts: 1, createdAt: now, updatedAt: now };
    } else if (action.kind === 'update') {
      op = 'update';
      grant = { ...action.grant, validFrom: action.desired.validFrom, validUntil: action.desired.validUntil, rule: action.desired.rule, capped: action.desired.capped, attempts: action.grant.attempts + 1, updatedAt: now };
    } else {
      op = 'revoke';
      grant = { ...action.grant, state: 'revoking', revokeReason: action.reason, attempts: (action.grant.state === 'revoking' ? action.grant.attempts : 0) + 1, updatedAt: now };
    }
    const journalId = await store.journalIntent(grant, op, now);
    const target = this.o.targets.get(grant.targetId);
    const ctx = { now, log: this.o.log.child({ target: grant.targetId, grant: grant.id }) };
    try {
      if (!target) throw new TargetError(grant.targetId, 'no such target is configured', false);
      let ref = grant.targetRef;
      const sharing = await this.sharing(grant, now);
      const entry = entryGrant(grant, sharing, op);
      const holder = latestEnd(sharing.filter((g) => g.state === 'active' && g.targetRef !== undefined));
      // Joining an entry another order's grant already holds: it exists, so it is updated through
      // the holder's ref rather than created again (a target that assigns ids would make a second one).
      if (op === 'provision' && holder) ref = await target.update(entry, holder.targetRef, ctx);
      else if (op === 'provision') ref = await target.provision(entry, ctx);
      else if (op === 'update') ref = await target.update(entry, grant.targetRef, ctx);
      else if (sharing.length > 0) {
        // Another order still holds this entry: it stays, with its own end, and only this grant ends.
        await target.update(entry, (latestEnd(sharing) as Grant).targetRef ?? grant.targetRef, ctx);
        ctx.log.info('grant revoked; its target entry stays for another order', { sharedWith: sharing.map((g) => g.id) });
      } else await target.revoke(entry, grant.targetRef, ctx);
      const done = this.o.clock();
      const after: Grant = stripRetry({
        ...grant,
        state: op === 'revoke' ? 'revoked' : 'active',
        attempts: 0,
        ...(ref ? { targetRef: ref } : {}),
        updatedAt: done,
      });
      await store.journalOutcome(journalId, 'ok', after, done);
      this.o.metrics.actions.inc({ target: grant.targetId, action: op, outcome: 'ok' });
      if (op === 'revoke' && done.getTime() >= grant.validUntil.getTime()) {
        this.o.metrics.expiryLagSeconds.observe((done.getTime() - grant.validUntil.getTime()) / 1000);
      }
      const verb = op === 'provision' ? 'provisioned' : op === 'update' ? 'updated' : 'revoked';
      this.o.log.info(`grant ${verb}`, describe(after, op === 'revoke' ? { reason: grant.revokeReason } : {}));
      await this.o.audit.append({ actor: 'wogate', action: `grant.${verb}`, subject: grant.id, details: describe(after, op === 'revoke' ? { reason: grant.revokeReason } : {}) });
      this.o.onGrantChange?.(after, verb);
      return true;
    } catch (e) {
      const done = this.o.clock();
      const message = e instanceof Error ? e.message : String(e);
      const retryable = !(e instanceof TargetError) || e.retryable;
      const retryAfter = e instanceof TargetError && typeof e.details?.retryAfterMs === 'number' ? e.details.retryAfterMs : 0;
      // Non-retryable failures still come back at the slowest pace (a revoke is never dropped); a
      // target's Retry-After is honoured up to that pace, never beyond.
      const delay = Math.min(this.o.retry.maxMs, Math.max(retryAfter, retryable ? backoffDelay(grant.attempts, this.o.retry, this.o.random) : this.o.retry.maxMs));
      const after: Grant = { ...grant, lastError: message, nextAttemptAt: new Date(done.getTime() + delay), updatedAt: done };
      await store.journalOutcome(journalId, 'failed', after, done, message);
      this.o.metrics.actions.inc({ target: grant.targetId, action: op, outcome: 'failed' });
      this.o.log.warn(`grant ${op} failed; retrying in ${Math.round(delay / 1000)} s`, describe(after, { error: message, attempt: grant.attempts }));
      await this.o.audit.append({ actor: 'wogate', action: `grant.${op}_failed`, subject: grant.id, details: describe(after, { error: message, attempt: grant.attempts, retryInMs: delay }) });
      if (grant.attempts === this.o.retry.alertAfter) {
        this.o.metrics.alerts.inc({ kind: `${op}_failing` });
        this.o.log.error(`ALERT: ${op} of grant ${grant.id} on target ${grant.targetId} has failed ${grant.attempts} times`, describe(after, { error: message }));
        await this.o.audit.append({ actor: 'wogate', action: 'alert.raised', subject: grant.id, details: { kind: `${op}_failing`, attempts: grant.attempts, error: message } });
      }
      return false;
    }
  }

  /**
   * Live grants of other orders that hold the same entry on the same target (the same technician
   * given the same resource twice): the entry lives while any of them does.
   */
  private async sharing(grant: Grant, now: Date): Promise<Grant[]> {
    const t = now.getTime();
    const others = await this.o.store.listGrants({ targetId: grant.targetId, resourceKey: resourceKey(grant.resource), states: ['pending', 'active'] });
    return others.filter((g) => g.id !== grant.id && g.validFrom.getTime() <= t && g.validUntil.getTime() > t);
  }

  /**
   * An operator's revoke: the grant's key is blocked so policy can't bring it back, and the target
   * is called now rather than at the next pass. Waits for a running pass so the two don't cross.
   * `context` (the actor's role, where the request came from) goes into the audit record.
   */
  async revokeNow(id: string, actor: string, reason: string, context: ActorContext = {}): Promise<Grant | undefined> {
    await this.running?.catch(() => undefined);
    const g = await this.o.store.getGrant(id);
    if (!g) return undefined;
    const now = this.o.clock();
    await this.o.store.addBlock({ key: g.key, reason, actor, createdAt: now });
    await this.o.audit.append({ actor, action: 'grant.revoke_requested', subject: id, details: { reason, ...context, state: g.state, order: g.orderKey, vendor: g.vendorId, technician: g.technicianId } });
    if (g.state !== 'revoked') {
      const why = `revoked by ${actor}: ${reason}`;
      await this.act({ kind: 'revoke', grant: { ...g, revokeReason: why }, reason: why });
    }
    return this.o.store.getGrant(id);
  }

  /**
   * The live grants of other orders that keep this grant's target entry alive: after a revoke that
   * became an update (docs/decisions/0005), the access remains through them.
   */
  async entryHolders(grant: Grant): Promise<Grant[]> {
    return this.sharing(grant, this.o.clock());
  }

  /**
   * An operator's access block, stored already: every live grant it covers, of any order, is revoked
   * now rather than at the next pass (which would do the same). Waits for a running pass, which
   * read the blocks before this one was added and could still have provisioned one of them.
   */
  async revokeAccess(block: AccessBlock): Promise<Grant[]> {
    await this.running?.catch(() => undefined);
    const live = await this.o.store.listGrants({ targetId: block.targetId, resourceKey: block.resourceKey, states: ['pending', 'active'] });
    const why = `ACCESS_BLOCKED: blocked for all orders by ${block.by}: ${block.reason}`;
    const out: Grant[] = [];
    for (const g of live.filter((x) => blocks(block, x))) {
      await this.act({ kind: 'revoke', grant: { ...g, revokeReason: why }, reason: why });
      out.push((await this.o.store.getGrant(g.id)) ?? g);
    }
    return out;
  }

  /**
   * After a crash: every intent without an outcome may or may not have reached its target. The
   * grant row was written with the intent, so nothing provisioned is forgotten; marking the intent
   * interrupted and clearing the grant's backoff lets the next pass redo it (calls are idempotent)
   * or revoke it if it is no longer wanted.
   */
  async replayJournal(): Promise<number> {
    const dangling = await this.o.store.danglingIntents();
    const now = this.o.clock();
    for (const j of dangling) {
      await this.o.store.markInterrupted(j.id, now);
      const g = await this.o.store.getGrant(j.grantId);
      if (g && g.state !== 'revoked') await this.o.store.saveGrant(stripRetry({ ...g, updatedAt: now }));
      this.o.log.warn('journal: an interrupted target call will be redone', { grant: j.grantId, op: j.op, target: j.targetId });
      await this.o.audit.append({ actor: 'wogate', action: 'journal.replayed', subject: j.grantId, details: { op: j.op, target: j.targetId, intentAt: j.intentAt.toISOString() } });
    }
    return dangling.length;
  }
}

function copyDesired(d: DesiredGrant): DesiredGrant {
  return {
    key: d.key, orderKey: d.orderKey, source: d.source, orderId: d.orderId, vendorId: d.vendorId, technicianId: d.technicianId,
    assetId: d.assetId, targetId: d.targetId, resource: d.resource, validFrom: d.validFrom, validUntil: d.validUntil, rule: d.rule, capped: d.capped,
  };
}

function stripRetry(g: Grant): Grant {
  const { lastError: _e, nextAttemptAt: _n, ...rest } = g;
  return rest;
}

export function toTargetGrant(g: Grant): TargetGrant {
  return {
    id: g.id, key: g.key, orderKey: g.orderKey, source: g.source, orderId: g.orderId, vendorId: g.vendorId,
    technicianId: g.technicianId, assetId: g.assetId, targetId: g.targetId, resource: g.resource, validFrom: g.validFrom, validUntil: g.validUntil,
  };
}

function describe(g: Grant, extra: Record<string, unknown>): Record<string, unknown> {
  return {
    grant: g.id, order: g.orderKey, vendor: g.vendorId, technician: g.technicianId, asset: g.assetId, target: g.targetId,
    resource: g.resource, validFrom: g.validFrom.toISOString(), validUntil: g.validUntil.toISOString(), rule: g.rule, ...extra,
  };
}

/** When the world changes by time alone: a window opens or ends, or a retry comes due. */
export function nextWake(evaluation: Evaluation, live: readonly Grant[]): Date | undefined {
  let t = evaluation.nextChangeAt?.getTime() ?? Infinity;
  for (const g of live) {
    // A grant waiting out a backoff comes due at its next attempt, not at its (maybe past) end.
    t = Math.min(t, g.nextAttemptAt ? g.nextAttemptAt.getTime() : g.validUntil.getTime());
  }
  return Number.isFinite(t) ? new Date(t) : undefined;
}

/**
 * What the target is told about an entry several grants share: the widest window among them, so
 * one order's shorter window or its end never cuts the access another order still gives. A
 * revoke with sharers left becomes an update to their window.
 */
/** The grant whose window ends last; undefined for none. */
function latestEnd(grants: readonly Grant[]): Grant | undefined {
  return grants.length ? grants.reduce((a, b) => (b.validUntil > a.validUntil ? b : a)) : undefined;
}

function entryGrant(grant: Grant, sharing: readonly Grant[], op: JournalOp): TargetGrant {
  const holders = op === 'revoke' ? sharing : [grant, ...sharing];
  const base = op === 'revoke' ? (latestEnd(sharing) ?? grant) : grant;
  if (holders.length <= 1) return toTargetGrant(base);
  return {
    ...toTargetGrant(base),
    validFrom: new Date(Math.min(...holders.map((g) => g.validFrom.getTime()))),
    validUntil: new Date(Math.max(...holders.map((g) => g.validUntil.getTime()))),
  };
}
