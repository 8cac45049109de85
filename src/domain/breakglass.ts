import { WogateError } from './errors.js';
import { sameId } from './ids.js';
import type { Register } from './register.js';
import type { WorkOrder } from './workorder.js';

/** The source name of the synthetic work orders break-glass requests become. */
export const BREAK_GLASS_SOURCE = 'break-glass';

const HOUR = 3_600_000;
/** Limits on what a site may configure: emergency access is short, and reviewed within three days. */
export const BREAK_GLASS_LIMITS = { maxDurationMs: 8 * HOUR, reviewDueMinMs: 24 * HOUR, reviewDueMaxMs: 72 * HOUR } as const;
export const JUSTIFICATION_MIN = 20;
export const JUSTIFICATION_MAX = 2000;
const MAX_IDS = 50;
const ID = /^[A-Za-z0-9][A-Za-z0-9_.:/@-]{0,199}$/;

/** The site's break-glass policy (config `breakGlass:`); without one, break-glass is refused. */
export interface BreakGlassPolicy {
  /** Hard cap on a request's access window, at most 8 h. */
  readonly maxDurationMs: number;
  /** The post-event review work order is due this long after approval: 24 h to 72 h. */
  readonly reviewDueMs: number;
}

export type BreakGlassState = 'requested' | 'approved' | 'closed';

export interface BreakGlassReview {
  /** pending: not yet created in the CMMS; open: created, waiting for the CMMS to close it; done: closed there. */
  readonly state: 'pending' | 'open' | 'done';
  readonly dueAt: Date;
  /** The review order's id in the review source, once created. */
  readonly orderId?: string;
  readonly attempts: number;
  readonly nextAttemptAt?: Date;
  readonly lastError?: string;
  /** When the overdue alert was first raised (it is raised once, then counted on each check). */
  readonly overdueSince?: Date;
  readonly doneAt?: Date;
}

export interface BreakGlassRequest {
  readonly id: string;
  /** Audit actor of who asked: `oidc:<sub>` or `token:<name>`. */
  readonly requester: string;
  /** The person who asked (canonical): the two-person rule compares this, never the credential. Absent on requests stored before persons were recorded. */
  readonly requesterPerson?: string;
  readonly vendorId: string;
  readonly technicianIds: readonly string[];
  readonly assetIds: readonly string[];
  readonly justification: string;
  readonly requestedDurationMs: number;
  readonly createdAt: Date;
  readonly state: BreakGlassState;
  readonly approver?: string;
  readonly approverPerson?: string;
  readonly approvedAt?: Date;
  /** now..now+min(requested, max), fixed at approval. */
  readonly window?: { readonly start: Date; readonly end: Date };
  readonly closedAt?: Date;
  readonly closedBy?: string;
  readonly closeReason?: string;
  readonly review?: BreakGlassReview;
}

export interface BreakGlassInput {
  readonly vendorId?: unknown;
  readonly technicianIds?: unknown;
  readonly assetIds?: unknown;
  readonly justification?: unknown;
  readonly durationMinutes?: unknown;
}

/**
 * Disabled is "not found", as for any feature a daemon does not offer: a 403 would read as "you
 * lack the role", and send people looking for a permission that does not exist.
 */
function disabled(): WogateError {
  return new WogateError('NOT_FOUND', 'break-glass access is disabled on this daemon: the config has no breakGlass section');
}

function bad(message: string, field: string): WogateError {
  return new WogateError('BAD_REQUEST', message, { field });
}

function idList(v: unknown, field: string): string[] {
  if (!Array.isArray(v) || v.length === 0 || v.length > MAX_IDS) throw bad(`body field "${field}" is required: an array of 1 to ${MAX_IDS} ids`, field);
  const out = new Set<string>();
  for (const x of v) {
    if (typeof x !== 'string' || !ID.test(x)) throw bad(`body field "${field}": ${JSON.stringify(String(x)).slice(0, 80)} is not an id`, field);
    out.add(x);
  }
  return [...out];
}

/**
 * Who acts: the audit actor (`oidc:<sub>`, `token:<name>`) and the person behind it, canonical
 * (src/domain/ids.ts): an OIDC caller's auth.oidc.personClaim, a token's owner. One person holding
 * several credentials (two tokens, a token and a sign-in) is one person.
 */
export interface Caller {
  readonly actor: string;
  readonly person?: string | undefined;
}

/** Break-glass steps need a known person: an OIDC identity, or a token made with an owner. */
function personOf(c: Caller, step: string): string {
  if (c.person === undefined || c.person === '') {
    throw new WogateError('AUTH_NO_PERSON', `${step} break-glass needs a person: sign in through OIDC, or use an API token made with an owner (wogate token create --owner); ${c.actor} names none`, { reason: 'no_person' });
  }
  return c.person;
}

/**
 * Checks a request's body against the policy and the register and returns the stored request.
 * Throws BAD_REQUEST naming the field, AUTH_FORBIDDEN when break-glass is disabled.
 */
export function newBreakGlassRequest(input: BreakGlassInput, caller: Caller, policy: BreakGlassPolicy | undefined, register: Register, id: string, now: Date): BreakGlassRequest {
  if (!policy) throw disabled();
  const requester = caller.actor;
  if (requester === 'anonymous' || requester.trim() === '') throw new WogateError('AUTH_FORBIDDEN', 'break-glass needs an identified requester', { reason: 'anonymous' });
  const requesterPerson = personOf(caller, 'requesting');
  const j = input.justification;
  if (typeof j !== 'string' || j.trim().length < JUSTIFICATION_MIN || j.length > JUSTIFICATION_MAX) {
    throw bad(`body field "justification" is required: at least ${JUSTIFICATION_MIN} characters (at most ${JUSTIFICATION_MAX}) saying what is broken and why it can't wait for a work order`, 'justification');
  }
  const vendorId = input.vendorId;
  if (typeof vendorId !== 'string' || !ID.test(vendorId)) throw bad('body field "vendorId" is required: the vendor register id', 'vendorId');
  const technicianIds = idList(input.technicianIds, 'technicianIds');
  const assetIds = idList(input.assetIds, 'assetIds');
  const minutes = input.durationMinutes;
  if (typeof minutes !== 'number' || !Number.isInteger(minutes) || minutes < 1) throw bad('body field "durationMinutes" is required: a whole number of minutes, at least 1', 'durationMinutes');
  const vendor = register.vendors.get(vendorId);
  if (!vendor) throw bad(`vendor "${vendorId}" is not in the vendor register`, 'vendorId');
  const unknownTech = technicianIds.find((t) => !vendor.technicians.some((x) => x.id === t));
  if (unknownTech !== undefined) throw bad(`technician "${unknownTech}" is not registered for vendor "${vendorId}"`, 'technicianIds');
  const unknownAsset = assetIds.find((a) => !register.assets.has(a));
  if (unknownAsset !== undefined) throw bad(`asset "${unknownAsset}" is not in the asset register`, 'assetIds');
  return {
    id, requester, requesterPerson, vendorId, technicianIds, assetIds,
    justification: j.trim(),
    // Recorded as asked; the cap is applied at approval, so the record shows both.
    requestedDurationMs: Math.min(minutes, 7 * 24 * 60) * 60_000,
    createdAt: now,
    state: 'requested',
  };
}

/**
 * A second person approves: the access window opens now and lasts min(requested, policy max).
 * Throws AUTH_NO_PERSON for a caller without a person, AUTH_FORBIDDEN for the requester themself
 * under any credential (two-person rule), STORE_CONFLICT for a request not waiting for approval.
 */
export function approveBreakGlass(r: BreakGlassRequest, caller: Caller, policy: BreakGlassPolicy | undefined, now: Date): BreakGlassRequest {
  if (!policy) throw disabled();
  const approver = caller.actor;
  const approverPerson = personOf(caller, 'approving');
  // A request stored before persons were recorded can't be checked against its approver: deny, ask again.
  if (r.requesterPerson === undefined) {
    throw new WogateError('AUTH_FORBIDDEN', `break-glass ${r.id} records no requesting person (made by an older wogate); close it and request again`, { reason: 'no_requester_person' });
  }
  if (sameId(r.requesterPerson, approverPerson)) {
    throw new WogateError('AUTH_FORBIDDEN', `two-person rule: ${r.requesterPerson} requested break-glass ${r.id} and can't approve it, through ${approver} or any other credential; another person must`, { reason: 'two_person_rule' });
  }
  if (r.state !== 'requested') throw new WogateError('STORE_CONFLICT', `break-glass ${r.id} is ${r.state}, not waiting for approval`);
  const duration = Math.min(r.requestedDurationMs, policy.maxDurationMs);
  return {
    ...r,
    state: 'approved',
    approver,
    approverPerson,
    approvedAt: now,
    window: { start: now, end: new Date(now.getTime() + duration) },
    review: { state: 'pending', dueAt: new Date(now.getTime() + policy.reviewDueMs), attempts: 0 },
  };
}

/** Ends a request: a pending one is withdrawn, an approved one loses its access. Closing twice is a conflict. */
export function closeBreakGlass(r: BreakGlassRequest, by: string, reason: string, now: Date): BreakGlassRequest {
  if (r.state === 'closed') throw new WogateError('STORE_CONFLICT', `break-glass ${r.id} is already closed`);
  return { ...r, state: 'closed', closedAt: now, closedBy: by, closeReason: reason };
}

/** The instant an approved request's access must end by itself; undefined unless approved. */
export function breakGlassEndsAt(r: BreakGlassRequest): Date | undefined {
  return r.state === 'approved' ? r.window?.end : undefined;
}

/**
 * The work order the engine grants and revokes: emergency type, approved while the request is,
 * closed after. The requester and the approver are its two distinct approvals (a rule's
 * minApprovals counts them). The revision grows with each state so the store keeps the newest.
 */
export function breakGlassOrder(r: BreakGlassRequest): WorkOrder | undefined {
  if (!r.window || !r.approver) return undefined;
  const open = r.state === 'approved';
  return {
    source: BREAK_GLASS_SOURCE,
    id: r.id,
    title: `BREAK-GLASS: ${r.justification.slice(0, 200)}`,
    status: open ? 'approved' : 'closed',
    sourceStatus: open ? 'BREAKGLASS_APPROVED' : 'BREAKGLASS_CLOSED',
    vendorId: r.vendorId,
    technicianIds: r.technicianIds,
    assetIds: r.assetIds,
    window: r.window,
    type: 'emergency',
    approvals: [{ by: r.requester, at: r.createdAt }, { by: r.approver, ...(r.approvedAt ? { at: r.approvedAt } : {}) }],
    revision: open ? '1' : '2',
  };
}

/** Past due and not closed in the CMMS. */
export function reviewOverdue(r: BreakGlassRequest, now: Date): boolean {
  const v = r.review;
  return v !== undefined && v.state !== 'done' && v.dueAt.getTime() <= now.getTime();
}

/** The text of the post-event review work order. */
export function reviewText(r: BreakGlassRequest): { title: string; details: string } {
  const lines = [
    `Post-event review of break-glass access ${r.id}.`,
    `Requested by ${r.requester} at ${r.createdAt.toISOString()}; approved by ${r.approver ?? '?'} at ${r.approvedAt?.toISOString() ?? '?'}.`,
    `Vendor ${r.vendorId}; technicians ${r.technicianIds.join(', ')}; assets ${r.assetIds.join(', ')}.`,
    `Access window ${r.window?.start.toISOString() ?? '?'} to ${r.window?.end.toISOString() ?? '?'}.`,
    `Justification: ${r.justification}`,
    'Review what was done, whether emergency access was warranted, and close this work order when done.',
  ];
  return { title: `Break-glass review ${r.id}`.slice(0, 100), details: lines.join('\n') };
}
