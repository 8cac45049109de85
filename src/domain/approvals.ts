import { tryCanonicalId } from './ids.js';
import type { Vendor } from './register.js';
import type { WorkOrder } from './workorder.js';

/** One person who may approve work orders, from the approvers register. */
export interface Approver {
  /** Canonical. */
  readonly id: string;
  readonly name?: string;
  readonly roles: readonly string[];
  /** Other ids the same person uses (another CMMS's user name): canonical; one person, counted once. */
  readonly aliases: readonly string[];
}

/** Every id and alias of every registered approver → that person. */
export type ApproverIndex = ReadonlyMap<string, Approver>;

export function indexApprovers(people: readonly Approver[]): ApproverIndex {
  const out = new Map<string, Approver>();
  for (const p of people) for (const id of [p.id, ...p.aliases]) out.set(id, p);
  return out;
}

export type DiscountReason = 'invalid_id' | 'order_vendor' | 'order_technician' | 'not_registered' | 'duplicate';

/** An approval that does not count, and why. */
export interface Discounted {
  /** The approval's id, canonical (as given when it is not a valid id). */
  readonly by: string;
  readonly why: DiscountReason;
  /** The registered person the id belongs to, when there is one. */
  readonly person?: string;
}

export interface ApprovalTally {
  /** Distinct people whose approval counts, by their register id (or the approval's id when unregistered). */
  readonly counted: readonly string[];
  readonly discounted: readonly Discounted[];
  /** Required roles no distinct counted person could fill (empty when the rule names none or all are filled). */
  readonly unfilledRoles: readonly string[];
  /** Which person filled which required role. */
  readonly filled: readonly { readonly role: string; readonly person: string }[];
}

const WHY: Readonly<Record<DiscountReason, string>> = {
  invalid_id: 'not a valid id',
  order_vendor: "the order's own vendor",
  order_technician: "one of the order's own technicians",
  not_registered: 'not in the approvers register (the rule names roles)',
  duplicate: 'the same person approved more than once',
};

export function discountText(d: Discounted): string {
  return `${d.by}${d.person !== undefined && d.person !== d.by ? ` (${d.person})` : ''}: ${WHY[d.why]}`;
}

/**
 * Who counts towards an order's approvals. A person counts once, whichever of their ids (register
 * aliases) they approved under; the order's vendor and any of the vendor's technicians never count,
 * so the people doing the work can't approve it. When `roles` is given, each listed role needs its
 * own person holding it (one person holding two roles fills one), and people not in the register
 * count for nothing.
 */
export function tallyApprovals(order: WorkOrder, vendor: Vendor | undefined, approvers: ApproverIndex | undefined, roles?: readonly string[]): ApprovalTally {
  const interested = new Set<string>();
  for (const raw of [order.vendorId, ...order.technicianIds, ...(vendor?.technicians.map((t) => t.id) ?? [])]) {
    const c = tryCanonicalId(raw, 'id');
    if (c.ok) interested.add(c.id);
  }
  const vendorId = tryCanonicalId(order.vendorId, 'vendorId');
  const counted: string[] = [];
  const people = new Map<string, Approver | undefined>();
  const discounted: Discounted[] = [];
  const seen = new Set<string>();
  for (const a of order.approvals) {
    const c = tryCanonicalId(a.by, 'approvals[].by');
    if (!c.ok) {
      discounted.push({ by: String(a.by), why: 'invalid_id' });
      continue;
    }
    const person = approvers?.get(c.id);
    const ids = person ? [person.id, ...person.aliases] : [c.id];
    const named = person ? { person: person.id } : {};
    const own = ids.find((id) => interested.has(id));
    if (own !== undefined) {
      discounted.push({ by: c.id, why: vendorId.ok && own === vendorId.id ? 'order_vendor' : 'order_technician', ...named });
      continue;
    }
    if (roles && !person) {
      discounted.push({ by: c.id, why: 'not_registered' });
      continue;
    }
    const key = person?.id ?? c.id;
    // The same id twice is one approval; a second id of one person is worth saying out loud.
    if (seen.has(c.id)) continue;
    seen.add(c.id);
    if (people.has(key)) {
      discounted.push({ by: c.id, why: 'duplicate', ...named });
      continue;
    }
    people.set(key, person);
    counted.push(key);
  }
  const { filled, unfilled } = roles ? assignRoles(roles, counted.map((k) => people.get(k)).filter((p): p is Approver => p !== undefined)) : { filled: [], unfilled: [] };
  return { counted, discounted, unfilledRoles: unfilled, filled };
}

/**
 * A largest assignment of distinct people to the required roles (bipartite matching by augmenting
 * paths): greedy would let a person holding both roles take the one only they could not be spared for.
 */
function assignRoles(roles: readonly string[], people: readonly Approver[]): { filled: { role: string; person: string }[]; unfilled: string[] } {
  const holder: (number | undefined)[] = roles.map(() => undefined);
  const tryPerson = (p: number, seen: Set<number>): boolean => {
    for (const [r, role] of roles.entries()) {
      if (seen.has(r) || !(people[p] as Approver).roles.includes(role)) continue;
      seen.add(r);
      const current = holder[r];
      if (current === undefined || tryPerson(current, seen)) {
        holder[r] = p;
        return true;
      }
    }
    return false;
  };
  for (const p of people.keys()) tryPerson(p, new Set());
  const filled: { role: string; person: string }[] = [];
  const unfilled: string[] = [];
  for (const [r, role] of roles.entries()) {
    const p = holder[r];
    if (p === undefined) unfilled.push(role);
    else filled.push({ role, person: (people[p] as Approver).id });
  }
  return { filled, unfilled };
}
