import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { canonicalId } from '../domain/ids.js';
import type { ApiToken, Store } from '../store/store.js';

/** What a scoped API token may do. `admin` implies every other scope. */
export const SCOPES = ['grants:read', 'grants:revoke', 'explain', 'audit:read', 'breakglass', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

// wgt_<12 hex id>_<43 base64url secret>: the id finds the row, the secret is only ever compared as a hash.
const TOKEN = /^wgt_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/;

function digest(secret: string): Buffer {
  return createHash('sha256').update(secret).digest();
}

function newSecret(): { secret: string; hash: string } {
  const secret = randomBytes(32).toString('base64url');
  return { secret, hash: digest(secret).toString('hex') };
}

/**
 * `owner` is the person who holds the token (src/api/person.ts), stored canonical; it throws
 * InvalidIdError naming `ownerField` for one that can't be an id. Without an owner the token works
 * for its scopes but is nobody in the two-person rules (break-glass, reinstating a vendor).
 */
export async function createToken(
  store: Store, name: string, scopes: readonly Scope[], now: Date,
  o: { readonly expiresAt?: Date; readonly owner?: string; readonly ownerField?: string } = {},
): Promise<{ token: string; record: ApiToken }> {
  const id = randomBytes(6).toString('hex');
  const owner = o.owner === undefined ? undefined : canonicalId(o.owner, o.ownerField ?? 'owner');
  const { secret, hash } = newSecret();
  const record: ApiToken = { id, name, hash, scopes: [...scopes], createdAt: now, ...(o.expiresAt ? { expiresAt: o.expiresAt } : {}), ...(owner ? { owner } : {}) };
  await store.createToken(record);
  return { token: `wgt_${id}_${secret}`, record };
}

/**
 * A new secret for a live token, in place: same id, name, owner, scopes and expiry. The old secret
 * stops working at once (no overlap: docs/decisions/0012). Undefined for an unknown or revoked id.
 */
export async function rotateToken(store: Store, id: string): Promise<{ token: string; record: ApiToken } | undefined> {
  const { secret, hash } = newSecret();
  if (!(await store.rotateToken(id, hash))) return undefined;
  const record = (await store.getToken(id)) as ApiToken;
  return { token: `wgt_${id}_${secret}`, record };
}

/** How stale a token's last-used time may get: one write a minute per token at most. */
export const LAST_USED_GRANULARITY_MS = 60_000;

/** Records that a token was accepted, off the request's path; a failure is only logged. */
export function recordTokenUse(store: Store, token: ApiToken, now: Date, onError: (e: unknown) => void): void {
  if (token.lastUsedAt && now.getTime() - token.lastUsedAt.getTime() < LAST_USED_GRANULARITY_MS) return;
  setImmediate(() => {
    store.touchToken(token.id, now, new Date(now.getTime() - LAST_USED_GRANULARITY_MS)).catch(onError);
  });
}

/** What may be shown of a token: everything but its hash. */
export function describeToken(t: ApiToken): Record<string, unknown> {
  return {
    id: t.id, name: t.name, owner: t.owner ?? null, scopes: t.scopes, createdAt: t.createdAt.toISOString(),
    expiresAt: t.expiresAt?.toISOString() ?? null, lastUsedAt: t.lastUsedAt?.toISOString() ?? null, revokedAt: t.revokedAt?.toISOString() ?? null,
  };
}

export type TokenCheck = { ok: true; token: ApiToken } | { ok: false; reason: string };

/** Constant-time over the secret; the same answer for an unknown id and a wrong secret. */
export async function checkToken(store: Store, presented: string, now: Date): Promise<TokenCheck> {
  const m = TOKEN.exec(presented);
  if (!m) return { ok: false, reason: 'malformed token' };
  const record = await store.getToken(m[1] as string);
  const given = digest(m[2] as string);
  const stored = record ? Buffer.from(record.hash, 'hex') : Buffer.alloc(32);
  const match = stored.length === given.length && timingSafeEqual(stored, given);
  if (!record || !match) return { ok: false, reason: 'unknown token' };
  if (record.revokedAt) return { ok: false, reason: 'token revoked' };
  if (record.expiresAt && record.expiresAt.getTime() <= now.getTime()) return { ok: false, reason: 'token expired' };
  return { ok: true, token: record };
}

export function hasScope(token: ApiToken, scope: Scope): boolean {
  return token.scopes.includes('admin') || token.scopes.includes(scope);
}
