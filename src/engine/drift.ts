import cron, { type ScheduledTask } from 'node-cron';
import { describeResource, resourceKey, type Grant, type GrantState, type Resource, type TargetRef } from '../domain/index.js';
import type { AuditLog } from '../audit/audit.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { Store } from '../store/store.js';
import { entryId, type CallContext, type Target, type TargetEntry } from '../targets/target.js';

/**
 * What a target needs so drift removal can undo something wogate never granted. Not part of
 * Target: revoke() works from a TargetGrant, and a grant made up from a bare entry (no vendor,
 * no resource) would send a template or a firewall a call about nothing real. A target that
 * can delete by its own reference opts in by having this method.
 */
export interface EntryRevoker {
  /** Removes the entry; idempotent, succeeds if it is already gone. */
  revokeEntry(entry: TargetEntry, ctx: CallContext): Promise<void>;
}

export function canRevokeEntry(t: Target): t is Target & EntryRevoker {
  return typeof (t as Partial<EntryRevoker>).revokeEntry === 'function';
}

export interface DriftOptions {
  readonly store: Store;
  /** Only targets whose list() tells the truth: a target that cannot list returns [], which would read as "everything missing". */
  readonly targets: ReadonlyMap<string, Target>;
  readonly audit: AuditLog;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly clock: () => Date;
  /** Target ids where wogate owns every entry: what it did not grant is removed. */
  readonly authoritative: ReadonlySet<string>;
}

/**
 * kept: reported only (target not authoritative). removed: revoked by entry.
 * unremovable: authoritative, but the target cannot revoke by entry, or the removal failed.
 * deferred: a grant being provisioned has no recorded ref yet and may own it; looked at again next check.
 */
export type UnexpectedOutcome = 'kept' | 'removed' | 'unremovable' | 'deferred';

export interface UnexpectedEntry {
  readonly targetId: string;
  readonly entry: TargetEntry;
  readonly outcome: UnexpectedOutcome;
  readonly error?: string;
}

export interface DriftReport {
  readonly checkedAt: Date;
  readonly unexpected: readonly UnexpectedEntry[];
  /** Grants wogate holds as active that their target no longer lists: to be provisioned again. */
  readonly missing: readonly Grant[];
  /** Targets whose list() failed: nothing is known about them this time. */
  readonly failed: readonly { readonly targetId: string; readonly error: string }[];
}

const LIVE: readonly GrantState[] = ['active', 'pending', 'revoking'];
/**
 * A grant this close to its end may already be gone from a target with native expiry (nft
 * reports whole seconds) while the scheduler's revoke is still on its way: not drift.
 */
const EXPIRY_SLACK_MS = 2_000;

/** A ref's identity regardless of key order; refs are flat records of primitives. */
export function refId(ref: TargetRef): string {
  return JSON.stringify(Object.keys(ref).sort().map((k) => [k, ref[k]]));
}

/**
 * Whether a listed entry is the one made for this grant: by resource when the target reads it
 * back (grants of several orders can share one entry), else by grant key, else by stored ref.
 */
export function entryMatches(entry: TargetEntry, grant: { readonly key: string; readonly targetId: string; readonly targetRef?: TargetRef | undefined; readonly resource: Resource }): boolean {
  if (entry.resource !== undefined) return resourceKey(entry.resource) === resourceKey(grant.resource);
  // A key the target reads back: the entry id wogate named the entry with (the http target's {{entry.id}}), or a grant key.
  if (entry.key !== undefined) return entry.key === entryId(grant.targetId, grant.resource) || entry.key === grant.key;
  return grant.targetRef !== undefined && refId(grant.targetRef) === refId(entry.ref);
}

function describeEntry(targetId: string, e: TargetEntry): Record<string, unknown> {
  // The ref is what the target uses to name the entry (element, object id): never a credential.
  return { target: targetId, ...(e.resource ? { resource: describeResource(e.resource) } : {}), ...(e.key !== undefined ? { key: e.key } : {}), ref: e.ref, ...(e.expiresAt ? { expiresAt: e.expiresAt.toISOString() } : {}) };
}

/**
 * Compares what each target holds with what wogate granted. Unexpected entries are reported and,
 * on authoritative targets, removed; active grants a target no longer holds are reported and
 * returned for re-provisioning. Each finding is audited once while it persists, so a check every
 * few minutes does not bury the audit log under the same line.
 */
export class DriftChecker {
  /** Findings reported by the last check; `current` collects this check's. */
  private reported = new Set<string>();
  private current = new Set<string>();

  constructor(private readonly o: DriftOptions) {}

  async check(): Promise<DriftReport> {
    const checkedAt = this.o.clock();
    const unexpected: UnexpectedEntry[] = [];
    const missing: Grant[] = [];
    const failed: { targetId: string; error: string }[] = [];
    this.current = new Set();
    for (const [targetId, target] of this.o.targets) {
      const ctx: CallContext = { now: this.o.clock(), log: this.o.log };
      let entries: TargetEntry[];
      try {
        entries = await target.list(ctx);
      } catch (e) {
        const error = (e as Error).message;
        this.o.log.warn('drift check: cannot list target', { target: targetId, error });
        failed.push({ targetId, error });
        // Nothing is known about it this time: keep its findings, so they are not reported afresh.
        for (const id of this.reported) if (id.startsWith(`${targetId}\0`)) this.current.add(id);
        continue;
      }
      // Read the store after list(): every entry a target holds was journaled as pending before
      // the call that made it, so an entry cannot look unknown just because it is brand new.
      const grants = await this.o.store.listGrants({ targetId, states: LIVE });
      const inFlightWithoutRef = grants.some((g) => g.state !== 'active' && g.targetRef === undefined);

      for (const entry of entries) {
        if (grants.some((g) => entryMatches(entry, g))) continue;
        unexpected.push(await this.unexpected(targetId, target, entry, inFlightWithoutRef, ctx));
      }

      const now = ctx.now.getTime();
      for (const g of grants) {
        if (g.state !== 'active' || g.validUntil.getTime() <= now + EXPIRY_SLACK_MS || g.validFrom.getTime() > now) continue;
        if (entries.some((e) => entryMatches(e, g))) continue;
        missing.push(g);
        if (!this.first(`${targetId}\0missing\0${g.id}`)) continue;
        this.o.metrics.alerts.inc({ kind: 'drift_missing' });
        this.o.log.warn('drift: target no longer holds an active grant', { target: targetId, grant: g.id });
        await this.o.audit.append({
          actor: 'wogate', action: 'drift.missing', subject: g.id,
          details: { target: targetId, grant: g.id, key: g.key, order: g.orderKey, vendor: g.vendorId, technician: g.technicianId, validUntil: g.validUntil.toISOString() },
        });
      }
    }
    // Findings that went away are forgotten, so one that comes back is reported again.
    this.reported = this.current;
    for (const targetId of this.o.targets.keys()) {
      if (failed.some((f) => f.targetId === targetId)) continue;
      const mine = unexpected.filter((u) => u.targetId === targetId);
      this.o.metrics.drift.set({ target: targetId, kind: 'unexpected' }, mine.filter((u) => u.outcome !== 'removed').length);
      this.o.metrics.drift.set({ target: targetId, kind: 'unremovable' }, mine.filter((u) => u.outcome === 'unremovable').length);
      this.o.metrics.drift.set({ target: targetId, kind: 'missing' }, missing.filter((g) => g.targetId === targetId).length);
    }
    return { checkedAt, unexpected, missing, failed };
  }

  /** Records a finding for this check; true when the last check did not already report it. */
  private first(id: string): boolean {
    this.current.add(id);
    return !this.reported.has(id);
  }

  private async unexpected(targetId: string, target: Target, entry: TargetEntry, inFlightWithoutRef: boolean, ctx: CallContext): Promise<UnexpectedEntry> {
    const id = `${targetId}\0unexpected\0${entry.key ?? ''}\0${refId(entry.ref)}`;
    const details = describeEntry(targetId, entry);
    const subject = entry.key ?? refId(entry.ref);
    const authoritative = this.o.authoritative.has(targetId);
    if (this.first(id)) {
      this.o.metrics.alerts.inc({ kind: 'drift_unexpected' });
      this.o.log.warn('drift: target holds an entry wogate did not grant', { ...details, authoritative });
      await this.o.audit.append({ actor: 'wogate', action: 'drift.unexpected', subject, details: { ...details, authoritative } });
    }
    if (!authoritative) return { targetId, entry, outcome: 'kept' };
    if (entry.key === undefined && inFlightWithoutRef) {
      // Matched by ref only, and a grant mid-provision has no ref recorded yet: this may be its entry.
      this.o.log.info('drift: removal deferred while a grant on this target is being provisioned', details);
      return { targetId, entry, outcome: 'deferred' };
    }
    let error: string | undefined;
    if (canRevokeEntry(target)) {
      try {
        await target.revokeEntry(entry, ctx);
        this.current.delete(id); // gone: if it reappears, that is new drift
        this.o.log.warn('drift: removed an entry wogate did not grant', details);
        await this.o.audit.append({ actor: 'wogate', action: 'drift.removed', subject, details });
        return { targetId, entry, outcome: 'removed' };
      } catch (e) {
        error = (e as Error).message;
        this.o.log.error('drift: removing an unexpected entry failed; trying again next check', { ...details, error });
      }
    }
    // Tried again every check; audited once while it stays, like the finding itself.
    if (this.first(`${id}\0unremovable`)) {
      this.o.metrics.alerts.inc({ kind: 'drift_unremovable' });
      const reason = error ?? 'the target cannot revoke an entry by its reference (no revokeEntry)';
      await this.o.audit.append({ actor: 'wogate', action: 'drift.unremovable', subject, details: { ...details, reason } });
    }
    return { targetId, entry, outcome: 'unremovable', ...(error !== undefined ? { error } : {}) };
  }
}

export interface DriftMonitorOptions {
  readonly checker: DriftChecker;
  readonly store: Store;
  readonly log: Logger;
  readonly clock: () => Date;
  /** node-cron expression. */
  readonly schedule: string;
  /** Asks for a reconcile of these orders (the grants found missing were set back to pending). */
  readonly reprovision: (orderKeys: string[]) => void;
}

/**
 * Runs drift checks on a schedule. A grant a target lost is set back to pending so the next pass
 * provisions it again: the work order still says the technician should have it.
 */
export class DriftMonitor {
  private task: ScheduledTask | undefined;
  constructor(private readonly o: DriftMonitorOptions) {}

  start(): void {
    this.task = cron.schedule(this.o.schedule, () => this.run(), { noOverlap: true, name: 'drift' });
  }

  stop(): void {
    void this.task?.stop();
    this.task = undefined;
  }

  async run(): Promise<DriftReport | undefined> {
    try {
      const report = await this.o.checker.check();
      const orders = new Set<string>();
      for (const g of report.missing) {
        // Re-read: the grant may have been revoked while the check ran.
        const now = await this.o.store.getGrant(g.id);
        if (now?.state !== 'active') continue;
        await this.o.store.saveGrant({ ...now, state: 'pending', lastError: `drift: target ${g.targetId} no longer holds it`, updatedAt: this.o.clock() });
        orders.add(g.orderKey);
      }
      if (orders.size > 0) this.o.reprovision([...orders]);
      return report;
    } catch (e) {
      this.o.log.error('drift check failed', { error: e instanceof Error ? e.message : String(e) });
      return undefined;
    }
  }
}
