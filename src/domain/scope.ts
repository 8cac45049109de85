import { tallyApprovals } from './approvals.js';
import { ruleMatches } from './evaluate.js';
import { sameId } from './ids.js';
import type { PolicySet } from './policy.js';
import type { Register } from './register.js';
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
  /** The approvals it was approved with, as `by|at`: any other is a fresh approval. */
  readonly approvals: readonly string[];
}

const APPROVED: readonly CanonicalStatus[] = ['approved', 'in_progress'];
/** Statuses that send an order back for approval: coming back from one of them is approving it again. */
const UNAPPROVED: readonly CanonicalStatus[] = ['draft', 'awaiting_approval'];

export function scopeOf(order: WorkOrder): ApprovedScope {
  return {
    vendorId: order.vendorId,
    assetIds: [...order.assetIds],
    technicianIds: [...order.technicianIds],
    windowStart: order.window.start,
    windowEnd: order.window.end,
    approvals: fingerprints(order.approvals),
  };
}

/** Says whether the approvals a revision carries beyond its baseline approve it again. */
export type Reapproval = (previous: ApprovedScope, order: WorkOrder) => boolean;

/**
 * A widened order is approved again by as much approval as a new order needs: the approvals it
 * carries beyond the baseline (fresh ones), on their own, must meet the approval requirement
 * (`minApprovals`, at least one, and `approverRoles`) of every rule that matches the order and
 * holds it to its approved scope. So a compromised CMMS account that widens an order and adds one
 * approval of its own, or a register-less approver under a rule naming roles, approves nothing.
 * Approvals by the order's vendor or technicians never count (tallyApprovals).
 */
export function freshApprovalsReapprove(register: Register, policySet: PolicySet): Reapproval {
  return (previous, order) => {
    const known = new Set(previous.approvals);
    const fresh = order.approvals.filter((a) => !known.has(fingerprints([a])[0] as string));
    if (fresh.length === 0) return false;
    const vendor = register.vendors.get(order.vendorId);
    if (!vendor) return false;
    const freshOrder = { ...order, approvals: fresh };
    const assets = order.assetIds.flatMap((id) => register.assets.get(id) ?? []);
    const rules = policySet.policies.flatMap((p) => p.rules).filter((r) => r.require.reapproveOnWiden !== false && assets.some((a) => ruleMatches(r, order, vendor, a)));
    const needs = rules.length > 0 ? rules.map((r) => r.require) : [{ minApprovals: 1, approverRoles: undefined }];
    return needs.every((r) => {
      const tally = tallyApprovals(freshOrder, vendor, register.approvers, r.approverRoles);
      return tally.counted.length >= Math.max(1, r.minApprovals) && tally.unfilledRoles.length === 0;
    });
  };
}

function fingerprints(approvals: readonly Approval[]): string[] {
  return [...new Set(approvals.map((a) => `${a.by}|${a.at && !Number.isNaN(a.at.getTime()) ? a.at.toISOString() : ''}`))].sort();
}

/**
 * The baseline after a new revision of an order. Sent back for approval (draft, awaiting
 * approval): none; the CMMS approving it again sets the next one. Approved with no baseline: this
 * revision's scope. Approved with a baseline: this revision's scope when `reapproves` says its
 * fresh approvals approve it again, else the baseline stays (a narrower revision does not shrink
 * it, since what was approved stays approved, and a wider one does not grow it).
 */
export function nextApprovedScope(previous: ApprovedScope | undefined, order: WorkOrder, reapproves: Reapproval = () => false, withdrawn = false): ApprovedScope | undefined {
  // wogate's own withdrawal of an order it can't read (stored as draft) is not the CMMS sending it
  // back for approval: coming back readable must not count as approved again.
  if (withdrawn) return previous;
  if (UNAPPROVED.includes(order.status)) return undefined;
  if (!APPROVED.includes(order.status)) return previous;
  if (!previous) return scopeOf(order);
  return reapproves(previous, order) ? scopeOf(order) : previous;
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
