import { describeResource, type Grant, type ResourceKind } from '../domain/index.js';
import type { AuditLog } from '../audit/audit.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { SourceError, type Source } from '../sources/source.js';
import { backoffDelay } from './backoff.js';

export type GrantChange = 'provisioned' | 'updated' | 'revoked';

export interface WriteBackOptions {
  readonly sources: ReadonlyMap<string, Source>;
  readonly audit: AuditLog;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly random: () => number;
  /** Changes to one order within this window go into one note. */
  readonly batchMs?: number;
  readonly attempts?: number;
  /**
   * summary (default): the note names the technician, asset, target, kind of access and window,
   * never the resource itself. The CMMS is read by far more people than the targets are, and
   * addresses, directory DNs, badge numbers and account names are what an intruder maps a plant
   * with; why access ended is its deny code, not the reason. full: the resource in words and the
   * reason as well (engine.writeBack.detail).
   */
  readonly detail?: WriteBackDetail;
}

export type WriteBackDetail = 'summary' | 'full';

/**
 * Leaves the access trail on the work order itself (Maximo worklog, SAP long text, MaintainX
 * comment), so maintenance sees it where they work. Runs beside the reconciler, never in its way:
 * a failure here is logged and audited and never delays or blocks a revoke.
 */
export class WriteBack {
  private readonly pending = new Map<string, { source: Source; orderId: string; lines: string[] }>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();

  constructor(private readonly o: WriteBackOptions) {}

  /** Called by the reconciler after a target confirmed a change. */
  record(grant: Grant, change: GrantChange): void {
    const source = this.o.sources.get(grant.source);
    if (!source?.api) return;
    const key = grant.orderKey;
    const entry = this.pending.get(key) ?? { source, orderId: grant.orderId, lines: [] };
    entry.lines.push(describe(grant, change, this.o.detail ?? 'summary'));
    this.pending.set(key, entry);
    if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        void this.flush();
      }, this.o.batchMs ?? 1000);
      this.timer.unref();
    }
  }

  /** Sends every pending note now; resolves when all have been tried. */
  flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    const batch = [...this.pending.entries()];
    this.pending.clear();
    this.flushing = this.flushing.then(() => Promise.all(batch.map(([key, e]) => this.send(key, e.source, e.orderId, e.lines))).then(() => undefined));
    return this.flushing;
  }

  private async send(key: string, source: Source, orderId: string, lines: string[]): Promise<void> {
    const note = ['wogate access trail:', ...lines].join('\n');
    const attempts = this.o.attempts ?? 3;
    for (let attempt = 1; ; attempt++) {
      try {
        await source.api?.writeBack(orderId, note, { now: new Date(), log: this.o.log.child({ source: source.id }) });
        await this.o.audit.append({ actor: 'wogate', action: 'writeback.sent', subject: key, details: { lines: lines.length } });
        return;
      } catch (e) {
        const error = e instanceof Error ? e.message : String(e);
        const retryable = !(e instanceof SourceError) || e.retryable;
        if (!retryable || attempt >= attempts) {
          this.o.metrics.alerts.inc({ kind: 'writeback_failed' });
          this.o.log.warn('could not write the access trail back to the work order', { order: key, error });
          await this.o.audit.append({ actor: 'wogate', action: 'writeback.failed', subject: key, details: { error, attempts: attempt, note } }).catch(() => undefined);
          return;
        }
        await new Promise((r) => setTimeout(r, backoffDelay(attempt, { baseMs: 500, maxMs: 10_000 }, this.o.random)));
      }
    }
  }
}

const KIND: Readonly<Record<ResourceKind, string>> = {
  network: 'network access',
  group: 'directory group membership',
  pam: 'privileged account safe membership',
  badge: 'badge access level',
  certificate: 'client certificate',
};

function describe(g: Grant, change: GrantChange, detail: WriteBackDetail): string {
  const r = g.resource;
  const what = `${g.technicianId} -> ${g.assetId} (${detail === 'full' ? describeResource(r) : KIND[r.kind]}) on ${g.targetId}`;
  if (change === 'revoked') {
    const why = g.revokeReason === undefined ? undefined : detail === 'full' ? g.revokeReason : endedBecause(g.revokeReason);
    return `- access ENDED: ${what}${why ? ` (${why})` : ''}`;
  }
  const verb = change === 'provisioned' ? 'GRANTED' : 'CHANGED';
  return `- access ${verb}: ${what}, ${g.validFrom.toISOString()} to ${g.validUntil.toISOString()}`;
}

/**
 * Why access ended, as summary tells the CMMS: the deny code, not its reason, which can quote an
 * asset's endpoints (ASSET_CONFLICT) or an operator's words about an incident; those stay in the audit log.
 */
function endedBecause(reason: string): string {
  const code = /^([A-Z][A-Z_]+):/.exec(reason)?.[1];
  if (code) return code;
  if (reason.startsWith('revoked by ') || reason === 'blocked by an operator') return 'revoked by an operator';
  if (/^window (ended|starts) at [0-9TZ:.-]+$/.test(reason)) return reason;
  return 'no longer authorised';
}
