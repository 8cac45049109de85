export const CANONICAL_STATUSES = [
  'draft', 'awaiting_approval', 'approved', 'in_progress', 'on_hold', 'completed', 'closed', 'cancelled',
] as const;
export type CanonicalStatus = (typeof CANONICAL_STATUSES)[number];

export const ORDER_TYPES = ['planned', 'corrective', 'emergency'] as const;
export type OrderType = (typeof ORDER_TYPES)[number];

export interface Approval {
  readonly by: string;
  readonly at?: Date;
}

export interface TimeWindow {
  readonly start: Date;
  readonly end: Date;
}

/** The canonical order every source maps its records onto. */
export interface WorkOrder {
  readonly source: string;
  readonly id: string;
  readonly title?: string;
  readonly site?: string;
  readonly status: CanonicalStatus;
  /** The source's own status code, kept for the audit trail. */
  readonly sourceStatus: string;
  readonly vendorId: string;
  readonly technicianIds: readonly string[];
  readonly assetIds: readonly string[];
  readonly window: TimeWindow;
  readonly type: OrderType;
  readonly approvals: readonly Approval[];
  /** Monotonic per order in the source (change date, rowstamp, event time): older revisions never overwrite newer. */
  readonly revision: string;
}

export function orderKey(o: { source: string; id: string }): string {
  return `${o.source}/${o.id}`;
}

/**
 * Orders revisions: numeric when both are numbers (rowstamps), otherwise as ISO-8601 text,
 * which sorts chronologically when the source uses one format.
 */
export function compareRevisions(a: string, b: string): number {
  const na = Number(a);
  const nb = Number(b);
  if (a.trim() !== '' && b.trim() !== '' && Number.isFinite(na) && Number.isFinite(nb)) return Math.sign(na - nb);
  const ta = Date.parse(a);
  const tb = Date.parse(b);
  if (Number.isFinite(ta) && Number.isFinite(tb)) return Math.sign(ta - tb);
  return a < b ? -1 : a > b ? 1 : 0;
}
