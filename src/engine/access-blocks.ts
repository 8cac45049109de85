import { randomUUID } from 'node:crypto';
import type { ActorContext, AuditLog } from '../audit/audit.js';
import { resourceKey, WogateError, type Denial, type DesiredGrant, type Evaluation } from '../domain/index.js';
import { sameId } from '../domain/ids.js';
import type { Store } from '../store/store.js';

/**
 * An operator's "revoke this access": one technician's hold on one resource of one target,
 * whatever order gives it. Blocking a grant (revoke now) only keeps that order's grant off; a
 * second order naming the same technician and asset shares the target entry and keeps it alive
 * (docs/decisions/0005). A block takes every grant of that access away, present and future, until
 * it is lifted (docs/decisions/0014).
 */
export interface AccessBlock {
  readonly id: string;
  readonly technicianId: string;
  readonly targetId: string;
  /** resourceKey(grant.resource): the entry on the target. */
  readonly resourceKey: string;
  readonly reason: string;
  readonly by: string;
  readonly at: string;
}

export type AccessSpec = Pick<AccessBlock, 'technicianId' | 'targetId' | 'resourceKey'>;

const KEY = 'access-blocks';

/** Kept like the vendor kill switch (src/engine/suspensions.ts): one store state, read at each pass so the CLI and the daemon see the same blocks. */
export async function readAccessBlocks(store: Store): Promise<AccessBlock[]> {
  const raw = await store.getState(KEY);
  return raw ? (JSON.parse(raw) as AccessBlock[]) : [];
}

export function blocks(b: AccessSpec, g: Pick<DesiredGrant, 'technicianId' | 'targetId' | 'resource'>): boolean {
  return b.targetId === g.targetId && b.resourceKey === resourceKey(g.resource) && sameId(b.technicianId, g.technicianId);
}

/**
 * The evaluation with every blocked grant turned into an ACCESS_BLOCKED denial, so the plan
 * revokes what is live and provisions nothing new, and explain says why.
 */
export function applyAccessBlocks(ev: Evaluation, list: readonly AccessBlock[]): Evaluation {
  if (list.length === 0) return ev;
  const denied: Denial[] = [];
  const grants = ev.grants.filter((g) => {
    const b = list.find((x) => blocks(x, g));
    if (b) denied.push({ orderKey: g.orderKey, technicianId: g.technicianId, assetId: g.assetId, code: 'ACCESS_BLOCKED', reason: `this access on ${b.targetId} is blocked for all orders (block ${b.id}) by ${b.by}: ${b.reason}` });
    return !b;
  });
  return { ...ev, grants, denials: [...ev.denials, ...denied] };
}

export async function addAccessBlock(store: Store, audit: AuditLog, spec: AccessSpec, by: string, reason: string, at: Date, context: ActorContext = {}): Promise<AccessBlock> {
  const list = await readAccessBlocks(store);
  const same = list.find((b) => b.targetId === spec.targetId && b.resourceKey === spec.resourceKey && sameId(b.technicianId, spec.technicianId));
  if (same) throw new WogateError('BAD_REQUEST', `this access is already blocked (block ${same.id} by ${same.by} at ${same.at})`, { blockId: same.id });
  const block: AccessBlock = { id: randomUUID(), technicianId: spec.technicianId, targetId: spec.targetId, resourceKey: spec.resourceKey, reason, by, at: at.toISOString() };
  await store.setState(KEY, JSON.stringify([...list, block]));
  await audit.append({ actor: by, action: 'access.blocked', subject: block.id, details: { reason, technician: block.technicianId, target: block.targetId, resource: block.resourceKey, ...context } });
  return block;
}

export async function liftAccessBlock(store: Store, audit: AuditLog, id: string, by: string, reason: string, context: ActorContext = {}): Promise<AccessBlock> {
  const list = await readAccessBlocks(store);
  const block = list.find((b) => b.id === id);
  if (!block) throw new WogateError('NOT_FOUND', `no access block "${id.slice(0, 200)}"`);
  await store.setState(KEY, JSON.stringify(list.filter((b) => b.id !== id)));
  await audit.append({ actor: by, action: 'access.block_lifted', subject: id, details: { reason, technician: block.technicianId, target: block.targetId, resource: block.resourceKey, blockedBy: block.by, blockedAt: block.at, ...context } });
  return block;
}
