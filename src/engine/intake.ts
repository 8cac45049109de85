import { evaluate, isWogateError, orderKey, type WorkOrder } from '../domain/index.js';
import type { AuditLog } from '../audit/audit.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { Source } from '../sources/source.js';
import type { HookEvent, Store } from '../store/store.js';
import type { World } from './reconciler.js';

export interface IntakeOptions {
  readonly store: Store;
  readonly sources: ReadonlyMap<string, Source>;
  readonly audit: AuditLog;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly clock: () => Date;
  readonly world: () => World;
  /** Called with the orders whose stored state changed, so the reconciler looks at them again. */
  readonly onChange: (orderKeys: string[]) => void;
}

/**
 * Drains the inbox: each stored delivery becomes a canonical order (re-read from the CMMS where
 * the source can), is stored unless an older revision, and its policy decision is audited.
 * Runs one drain at a time; a trigger during a drain runs another after it.
 */
export class Intake {
  private draining: Promise<void> | undefined;
  private again = false;

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
          batch = await this.o.store.pendingHookEvents(100);
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

  /** Returns the order's key when its stored state changed. */
  private async process(ev: HookEvent): Promise<string | undefined> {
    const source = this.o.sources.get(ev.source);
    const delivery = { webhookId: ev.webhookId, eventTime: ev.eventTime };
    try {
      if (!source) throw new Error(`source "${ev.source}" is no longer configured`);
      const order = await source.toWorkOrder(JSON.parse(ev.body) as unknown, delivery);
      const result = await this.o.store.upsertOrder(order, this.o.clock());
      await this.o.store.finishHookEvent(ev.seq, 'processed');
      await this.o.audit.append({
        actor: `source:${ev.source}`,
        action: 'order.received',
        subject: orderKey(order),
        details: { webhookId: ev.webhookId, revision: order.revision, status: order.status, sourceStatus: order.sourceStatus, result },
      });
      if (result === 'stale') {
        this.o.log.info('older revision of an order ignored', { order: orderKey(order), revision: order.revision });
        return undefined;
      }
      if (result === 'unchanged') return undefined;
      await this.auditDecision(order);
      return orderKey(order);
    } catch (e) {
      const error = e instanceof Error ? e.message : String(e);
      await this.o.store.finishHookEvent(ev.seq, 'rejected', error);
      this.o.metrics.hooks.inc({ source: ev.source, outcome: 'rejected_after_store' });
      this.o.log.warn('stored webhook could not be turned into a work order', { source: ev.source, webhookId: ev.webhookId, code: isWogateError(e) ? e.code : 'INTERNAL', error });
      await this.o.audit.append({ actor: `source:${ev.source}`, action: 'hook.rejected', subject: ev.webhookId, details: { error } });
      return undefined;
    }
  }

  /** Writes down what policy says about this order right now: every grant and every denial with its reason. */
  private async auditDecision(order: WorkOrder): Promise<void> {
    const { policySet, register } = this.o.world();
    const now = this.o.clock();
    const ev = evaluate([order], register, policySet, now);
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
