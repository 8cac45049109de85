import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { ApiToken, Store } from '../store/store.js';

/** What a scoped API token may do. `admin` implies every other scope. */
export const SCOPES = ['grants:read', 'grants:revoke', 'explain', 'audit:read', 'breakglass', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

// wgt_<12 hex id>_<43 base64url secret>: the id finds the row, the secret is only ever compared as a hash.
const TOKEN = /^wgt_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/;

function digest(secret: string): Buffer {
  return createHash('sha256').update(secret).digest();
}

export async function createToken(store: Store, name: string, scopes: readonly Scope[], now: Date, expiresAt?: Date): Promise<{ token: string; record: ApiToken }> {
  const id = randomBytes(6).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  const record: ApiToken = { id, name, hash: digest(secret).toString('hex'), scopes: [...scopes], createdAt: now, ...(expiresAt ? { expiresAt } : {}) };
  await store.createToken(record);
  return { token: `wgt_${id}_${secret}`, record };
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
