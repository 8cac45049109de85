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

/** Statuses after which an order allows nothing: a move to one of them only ever narrows access. */
export const ENDED_STATUSES: readonly CanonicalStatus[] = ['completed', 'closed', 'cancelled'];

export function isEnded(status: CanonicalStatus): boolean {
  return ENDED_STATUSES.includes(status);
}

/**
 * A revision is a finite decimal number (Maximo's rowstamp, a generic source's sequence) or an
 * ISO-8601 date-time with an offset (SAP's and MaintainX's change times, Maximo's changedate, the
 * delivery's event time). Nothing else is ordered: text comparison of arbitrary values let
 * `"Infinity"` sort after every later number and freeze an order open.
 */
export type RevisionKind = 'number' | 'timestamp';

const DECIMAL = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;
const NON_NEGATIVE_INTEGER = /^\+?\d+$/;
const ISO_WITH_OFFSET = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d{1,9})?)?(?:[Zz]|[+-]\d{2}:?\d{2})$/;
const MAX_REVISION_LENGTH = 64;

export function revisionKind(revision: string): RevisionKind | undefined {
  const s = revision.trim();
  if (s === '' || s.length > MAX_REVISION_LENGTH) return undefined;
  if (DECIMAL.test(s)) return Number.isFinite(Number(s)) ? 'number' : undefined;
  if (ISO_WITH_OFFSET.test(s)) return Number.isFinite(Date.parse(s.replace(',', '.'))) ? 'timestamp' : undefined;
  return undefined;
}

/** Why `revision` can't order an order's updates, or undefined when it can. */
export function revisionProblem(revision: string): string | undefined {
  return revisionKind(revision) === undefined
    ? `revision ${JSON.stringify(revision.length > 64 ? `${revision.slice(0, 64)}…` : revision)} is neither a finite number nor an ISO-8601 date-time with an offset`
    : undefined;
}

/**
 * Orders two revisions of one order: -1, 0 or 1; undefined when they can't be compared (either is
 * not a revision, or one is a number and the other a time). Whole numbers compare exactly (a
 * rowstamp can pass 2^53).
 */
export function compareRevisions(a: string, b: string): -1 | 0 | 1 | undefined {
  const ka = revisionKind(a);
  const kb = revisionKind(b);
  if (ka === undefined || ka !== kb) return undefined;
  const sa = a.trim();
  const sb = b.trim();
  if (ka === 'number') {
    if (NON_NEGATIVE_INTEGER.test(sa) && NON_NEGATIVE_INTEGER.test(sb)) return sign(BigInt(sa) - BigInt(sb));
    return sign(Number(sa) - Number(sb));
  }
  return sign(Date.parse(sa.replace(',', '.')) - Date.parse(sb.replace(',', '.')));
}

function sign(n: number | bigint): -1 | 0 | 1 {
  return n > 0 ? 1 : n < 0 ? -1 : 0;
}
