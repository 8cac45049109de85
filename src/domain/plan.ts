import type { Denial, Evaluation } from './evaluate.js';
import type { DesiredGrant, Grant } from './grant.js';

export type Action =
  | { readonly kind: 'provision'; readonly desired: DesiredGrant; readonly existing?: Grant }
  | { readonly kind: 'update'; readonly grant: Grant; readonly desired: DesiredGrant }
  | { readonly kind: 'revoke'; readonly grant: Grant; readonly reason: string };

/**
 * Desired minus actual → provision; actual minus desired → revoke; a changed window → update.
 * Only grants whose window has opened are provisioned; one that has ended is revoked even when
 * the order is still open. Grants waiting out a retry backoff are left for their time.
 * `blocked` holds keys an operator revoked by hand: policy may still allow them, but they stay off.
 */
export function plan(evaluation: Evaluation, actual: readonly Grant[], now: Date, blocked: ReadonlySet<string> = new Set()): Action[] {
  const t = now.getTime();
  const due = new Map<string, DesiredGrant>();
  for (const d of evaluation.grants) {
    if (d.validFrom.getTime() <= t && t < d.validUntil.getTime() && !blocked.has(d.key)) due.set(d.key, d);
  }
  const actions: Action[] = [];
  const live = new Map<string, Grant>();
  for (const g of actual) {
    if (g.state === 'revoked') continue;
    live.set(g.key, g);
    const waiting = g.nextAttemptAt !== undefined && g.nextAttemptAt.getTime() > t;
    const desired = due.get(g.key);
    if (g.state === 'revoking' || !desired) {
      // Only a revoke that itself failed waits out its backoff; access that is no longer allowed
      // is taken away now, whatever an earlier provision or update's retry schedule says.
      if (!(waiting && g.state === 'revoking')) actions.push({ kind: 'revoke', grant: g, reason: g.revokeReason ?? revokeReason(g, evaluation, t, blocked) });
      continue;
    }
    if (waiting) continue;
    if (g.state === 'pending') actions.push({ kind: 'provision', desired, existing: g });
    else if (g.validUntil.getTime() !== desired.validUntil.getTime() || g.validFrom.getTime() !== desired.validFrom.getTime()) {
      actions.push({ kind: 'update', grant: g, desired });
    }
  }
  for (const d of due.values()) if (!live.has(d.key)) actions.push({ kind: 'provision', desired: d });
  // Revokes first: when a target is struggling, taking access away matters more than giving it.
  const rank = { revoke: 0, update: 1, provision: 2 } as const;
  return actions.sort((a, b) => rank[a.kind] - rank[b.kind]);
}

function revokeReason(g: Grant, evaluation: Evaluation, t: number, blocked: ReadonlySet<string>): string {
  if (blocked.has(g.key)) return 'blocked by an operator';
  if (t >= g.validUntil.getTime()) return `window ended at ${g.validUntil.toISOString()}`;
  const denial = evaluation.denials.find((d) => matchesGrant(d, g));
  if (denial) return `${denial.code}: ${denial.reason}`;
  const stillDesired = evaluation.grants.find((d) => d.key === g.key);
  if (stillDesired) return `window starts at ${stillDesired.validFrom.toISOString()}`;
  return 'no longer authorised by the order and policy';
}

function matchesGrant(d: Denial, g: Grant): boolean {
  return (
    d.orderKey === g.orderKey &&
    (d.technicianId === undefined || d.technicianId === g.technicianId) &&
    (d.assetId === undefined || d.assetId === g.assetId)
  );
}
