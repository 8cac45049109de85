import { sameId } from './ids.js';
import type { Approval, CanonicalStatus, WorkOrder } from './workorder.js';

/**
 * What an order named when it was last approved: the baseline a later revision is held to under
 * `require.reapproveOnWiden`. Anything beyond it (another asset or technician, a longer window)
 * waits for a new approval; anything inside it applies at once.
 */
export interface ApprovedScope {
  /** Absent in baselines recorded before it was kept. Technician ids are unique only within a vendor: another vendor is other people. */
  readonly vendorId?: string;
  readonly assetIds: readonly string[];
  readonly technicianIds: readonly string[];
  readonly windowStart: Date;
  readonly windowEnd: Date;
  /** The approvals it was approved with, as `by|at`: a new one is a new approval. */
  readonly approvals: readonly string[];
}

const APPROVED: readonly CanonicalStatus[] = ['approved', 'in_progress'];
/** Statuses that send an order back for approval: coming back from one of them is approving it again. */
const UNAPPROVED: readonly CanonicalStatus[] = ['draft', 'awaiting_approval'];

export function scopeOf(order: WorkOrder, counting: readonly Approval[] = order.approvals): ApprovedScope {
  return {
    vendorId: order.vendorId,
    assetIds: [...order.assetIds],
    technicianIds: [...order.technicianIds],
    windowStart: order.window.start,
    windowEnd: order.window.end,
    approvals: fingerprints(counting),
  };
}

function fingerprints(approvals: readonly Approval[]): string[] {
  return [...new Set(approvals.map((a) => `${a.by}|${a.at && !Number.isNaN(a.at.getTime()) ? a.at.toISOString() : ''}`))].sort();
}

/**
 * The baseline after a new revision of an order. Sent back for approval: none (the next approval
 * sets it). Approved with no baseline, or with an approval the baseline has not seen: this
 * revision's scope. `counting` are the order's approvals that count (approvalsThatCount): the
 * technician doing the work adding their own approval must not approve the wider scope. Otherwise the baseline stays: a narrower revision does not shrink it, since
 * what was approved stays approved, and a wider one does not grow it.
 */
export function nextApprovedScope(previous: ApprovedScope | undefined, order: WorkOrder, counting: readonly Approval[] = order.approvals, withdrawn = false): ApprovedScope | undefined {
  // wogate's own withdrawal of an order it can't read (stored as draft) is not the CMMS sending it
  // back for approval: coming back readable must not count as approved again.
  if (withdrawn) return previous;
  if (UNAPPROVED.includes(order.status)) return undefined;
  if (!APPROVED.includes(order.status)) return previous;
  if (!previous) return scopeOf(order, counting);
  const known = new Set(previous.approvals);
  return fingerprints(counting).some((f) => !known.has(f)) ? scopeOf(order, counting) : previous;
}

/** Why this vendor's technician on this asset lies outside what was approved; undefined when inside. */
export function widening(scope: ApprovedScope, vendorId: string, technicianId: string, assetId: string): string | undefined {
  // Compared in canonical form: a baseline recorded before ids were canonical (decision 11) keeps
  // the spelling it was stored with, and must not read as a widening once the order is rewritten.
  if (scope.vendorId !== undefined && !sameId(scope.vendorId, vendorId)) {
    return `the order was moved to vendor "${vendorId}" after it was approved for vendor "${scope.vendorId}"; the order must be approved again`;
  }
  const parts: string[] = [];
  if (!scope.technicianIds.some((id) => sameId(id, technicianId))) parts.push(`technician "${technicianId}"`);
  if (!scope.assetIds.some((id) => sameId(id, assetId))) parts.push(`asset "${assetId}"`);
  if (parts.length === 0) return undefined;
  return `${parts.join(' and ')} ${parts.length > 1 ? 'were' : 'was'} added after the order was approved (approved scope: assets ${scope.assetIds.join(', ')}; technicians ${scope.technicianIds.join(', ')}); the order must be approved again`;
}

/** The order with its window held inside the approved one: a later end or earlier start waits for approval, a shorter window applies at once. */
export function clampToApproved(order: WorkOrder, scope: ApprovedScope): { order: WorkOrder; clamped: boolean } {
  const start = Math.max(order.window.start.getTime(), scope.windowStart.getTime());
  const end = Math.min(order.window.end.getTime(), scope.windowEnd.getTime());
  if (start === order.window.start.getTime() && end === order.window.end.getTime()) return { order, clamped: false };
  return { order: { ...order, window: { start: new Date(start), end: new Date(end) } }, clamped: true };
}
