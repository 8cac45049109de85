import type { ActorContext, AuditLog } from '../audit/audit.js';
import { WogateError, resourceKey, type Evaluation, type Grant } from '../domain/index.js';
import { idProblem, sameId } from '../domain/ids.js';
import { addAccessBlock, liftAccessBlock, readAccessBlocks, type AccessBlock, type AccessSpec } from '../engine/access-blocks.js';
import type { Reconciler, World } from '../engine/reconciler.js';
import type { Suspension, VendorSuspensions } from '../engine/suspensions.js';
import type { Store } from '../store/store.js';
import { roleAtLeast, ruleFor, isRole } from './roles.js';

/**
 * What security staff can do, whether they call the admin API or use the staff pages: one
 * implementation, so a page can never do more (or check less) than its API route.
 */
export interface ActionDeps {
  readonly store: Store;
  readonly reconciler: Reconciler;
  readonly world: () => World;
  readonly audit: AuditLog;
  readonly clock: () => Date;
  readonly suspensions?: VendorSuspensions;
}

/** The written reason every operator action needs: 3 to 500 characters. */
export function reasonFrom(body: unknown): string {
  const reason = (body ?? {}) as { reason?: unknown };
  if (typeof reason.reason !== 'string' || reason.reason.trim().length < 3 || reason.reason.length > 500) {
    throw new WogateError('BAD_REQUEST', 'field "reason" is required: a string of 3 to 500 characters saying why');
  }
  return reason.reason.trim();
}

/** A live grant of another order that keeps a target entry alive, as the answers name it. */
export interface Holder {
  readonly grant: string;
  readonly order: string;
  readonly technician: string;
  readonly state: Grant['state'];
  readonly validUntil: Date;
}

const holder = (g: Grant): Holder => ({ grant: g.id, order: g.orderKey, technician: g.technicianId, state: g.state, validUntil: g.validUntil });

/**
 * Revokes a grant now and keeps it off (a block policy can't undo). When another order's grant
 * shares the target entry, the entry stays for it: `stillHeldBy` names those grants, so "revoked"
 * is never read as "the access is gone" (blockAccess takes the access itself).
 */
export async function revokeGrant(d: ActionDeps, id: string, actor: string, reason: string, context: ActorContext): Promise<{ grant: Grant; stillHeldBy: Holder[] }> {
  const g = await d.reconciler.revokeNow(id, actor, reason, context);
  if (!g) throw new WogateError('NOT_FOUND', `no grant "${id.slice(0, 200)}"`);
  return { grant: g, stillHeldBy: (await d.reconciler.entryHolders(g)).map(holder) };
}

export async function accessBlocks(d: Pick<ActionDeps, 'store'>): Promise<AccessBlock[]> {
  return readAccessBlocks(d.store);
}

const RESOURCE_KEY = /^(net|group|pam|badge|cert):[^\p{Cc}]{1,500}$/u;

/** The access a block body names: `{grantId}` (that grant's technician, target and resource) or `{targetId, technicianId, resourceKey}`. */
async function accessFrom(d: ActionDeps, body: unknown): Promise<AccessSpec> {
  const b = (body ?? {}) as Record<string, unknown>;
  if (b.grantId !== undefined) {
    if (typeof b.grantId !== 'string' || b.targetId !== undefined || b.technicianId !== undefined || b.resourceKey !== undefined) {
      throw new WogateError('BAD_REQUEST', 'give either "grantId" (a string) or "targetId", "technicianId" and "resourceKey", not both');
    }
    const g = await d.store.getGrant(b.grantId);
    if (!g) throw new WogateError('NOT_FOUND', `no grant "${b.grantId.slice(0, 200)}"`);
    return { technicianId: g.technicianId, targetId: g.targetId, resourceKey: resourceKey(g.resource) };
  }
  const bad = idProblem(b.technicianId, 'field "technicianId"');
  if (bad) throw new WogateError('BAD_REQUEST', `${bad.message} (or give "grantId")`);
  if (typeof b.targetId !== 'string' || b.targetId === '' || b.targetId.length > 200) throw new WogateError('BAD_REQUEST', 'field "targetId" is required: the id of a target in the config (or give "grantId")');
  const known = new Set(d.world().policySet.policies.flatMap((p) => p.rules.flatMap((r) => r.grant.map((e) => e.target))));
  if (!known.has(b.targetId)) throw new WogateError('NOT_FOUND', `no policy grants access on target "${b.targetId.slice(0, 200)}"`);
  if (typeof b.resourceKey !== 'string' || !RESOURCE_KEY.test(b.resourceKey)) {
    throw new WogateError('BAD_REQUEST', 'field "resourceKey" is required: the resource key of a grant (net:…, group:…, pam:…, badge:…, cert:…), as GET /v1/grants/{id} shows it (or give "grantId")');
  }
  return { technicianId: b.technicianId as string, targetId: b.targetId, resourceKey: b.resourceKey };
}

/**
 * "Revoke this access for all orders": one technician's hold on one resource of one target is
 * blocked, so every grant of it (present and future, any order) is revoked and none is made until
 * the block is lifted. Returns after the revokes, with what still holds the entry (another
 * technician sharing it; failed revokes keep retrying).
 */
export async function blockAccess(d: ActionDeps, body: unknown, actor: string, context: ActorContext): Promise<{ block: AccessBlock; revoked: Holder[]; stillHeldBy: Holder[] }> {
  const reason = reasonFrom(body);
  const spec = await accessFrom(d, body);
  const block = await addAccessBlock(d.store, d.audit, spec, actor, reason, d.clock(), context);
  const revoked = await d.reconciler.revokeAccess(block);
  const left = revoked[0] ? await d.reconciler.entryHolders(revoked[0]) : [];
  return { block, revoked: revoked.map(holder), stillHeldBy: left.map(holder) };
}

export async function liftAccess(d: ActionDeps, id: string, actor: string, reason: string, context: ActorContext): Promise<AccessBlock> {
  const block = await liftAccessBlock(d.store, d.audit, id, actor, reason, context);
  await d.reconciler.reconcile();
  return block;
}

function suspensions(d: ActionDeps): VendorSuspensions {
  if (!d.suspensions) throw new WogateError('NOT_FOUND', 'the vendor kill switch is not available on this daemon');
  return d.suspensions;
}

export function suspendedVendors(d: ActionDeps): Suspension[] {
  return suspensions(d).list();
}

/**
 * The kill switch: every grant of the vendor is revoked in one pass and their orders are denied
 * until reinstated. Returns after the pass, with how many grants are still being revoked (failed
 * revokes keep retrying).
 */
export async function suspendVendor(d: ActionDeps, vendorId: string, actor: string, reason: string, context: ActorContext): Promise<{ suspension: Suspension; stillRevoking: number }> {
  if (!d.world().register.vendors.has(vendorId)) throw new WogateError('NOT_FOUND', `no vendor "${vendorId.slice(0, 200)}" in the vendor register`);
  const suspension = await suspensions(d).suspend(vendorId, actor, reason, context);
  await d.reconciler.reconcile();
  const live = await d.store.listGrants({ vendorId, states: ['pending', 'active', 'revoking'] });
  return { suspension, stillRevoking: live.length };
}

/**
 * Lifts a suspension. The route's soloRole (src/api/roles.ts) may do it alone; anyone else must be
 * another person than the one who suspended (compared as persons, so a second token or a sign-in of
 * the same person does not count); a caller without a person can't, nor anyone when the suspension
 * names no person.
 */
export async function reinstateVendor(d: ActionDeps, vendorId: string, actor: string, reason: string, context: ActorContext): Promise<void> {
  const s = suspensions(d).list().find((x) => x.vendorId === vendorId);
  if (!s) throw new WogateError('NOT_FOUND', `vendor "${vendorId.slice(0, 200)}" is not suspended`);
  const rule = ruleFor('POST', '/v1/vendors/:id/reinstate');
  const solo = rule.auth === 'bearer' && rule.soloRole !== undefined && isRole(context.role) && roleAtLeast(context.role, rule.soloRole);
  if (!solo) {
    const need = rule.auth === 'bearer' && rule.soloRole ? ` (or the ${rule.soloRole} role)` : '';
    if (!context.person) {
      throw new WogateError('AUTH_NO_PERSON', `reinstating a vendor needs a second person${need}: sign in through OIDC, or use an API token made with an owner; ${actor} names none`, { reason: 'no_person' });
    }
    // A suspension naming no person (a token without an owner, an older wogate) can't be shown to
    // be someone else's: comparing actor strings would let its author lift it under another credential.
    if (s.byPerson === undefined) {
      throw new WogateError('AUTH_FORBIDDEN', `second-person rule: the suspension of ${vendorId.slice(0, 200)} (by ${s.by}) names no person, so no one can be shown to be another person than who suspended; a policy-admin must reinstate it, or suspend it again as yourself for another person to reinstate`, { reason: 'no_suspender_person' });
    }
    if (sameId(s.byPerson, context.person)) {
      throw new WogateError('AUTH_FORBIDDEN', `second-person rule: ${s.byPerson} suspended ${vendorId.slice(0, 200)} and can't reinstate it alone; another operator${need} must`, { reason: 'second_person_rule' });
    }
  }
  await suspensions(d).reinstate(vendorId, actor, reason, context);
  await d.reconciler.reconcile();
}

/** The engine's decision at `at` for one order (`<source>/<id>`), or for every live order. */
export async function explain(d: ActionDeps, orderRef: string | undefined, at: Date): Promise<Evaluation> {
  if (orderRef === undefined) return d.reconciler.evaluation(at);
  const slash = orderRef.indexOf('/');
  const order = slash > 0 ? await d.store.getOrder(orderRef.slice(0, slash), orderRef.slice(slash + 1)) : undefined;
  if (!order) throw new WogateError('NOT_FOUND', `no work order "${orderRef.slice(0, 200)}" (expected <source>/<id>)`);
  return d.reconciler.explainOrders([order], at);
}
