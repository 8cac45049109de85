import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Request, Response } from 'express';
import type { PortalSessionRecord, SessionRecord, SessionTable } from '../store/portal-store.js';

export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('base64url');
}

/** Equal hashes of two strings, in constant time whatever the inputs' lengths. */
export function sameSecret(presented: string, expectedHash: string): boolean {
  const a = Buffer.from(sha256(presented));
  const b = Buffer.from(expectedHash);
  return a.length === b.length && timingSafeEqual(a, b);
}

export function readCookie(req: Request, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return undefined;
}

export interface CookieNames {
  readonly session: string;
  readonly login: string;
  /** Secure + __Host- prefix; off only when the pages run plain HTTP on loopback (tests, local proxies). */
  readonly secure: boolean;
}

/** The vendor portal's cookies (`realm` portal) or the staff pages' (`realm` staff): never the same names. */
export function cookieNames(secure: boolean, realm: 'portal' | 'staff' = 'portal'): CookieNames {
  const session = realm === 'portal' ? 'wogate_portal' : 'wogate_staff';
  const login = realm === 'portal' ? 'wogate_login' : 'wogate_staff_login';
  return secure ? { session: `__Host-${session}`, login: `__Host-${login}`, secure } : { session, login, secure };
}

export function setCookie(res: Response, names: CookieNames, name: string, value: string, maxAgeSec: number): void {
  const attrs = [`${name}=${value}`, 'Path=/', 'HttpOnly', 'SameSite=Lax', `Max-Age=${maxAgeSec}`];
  if (names.secure) attrs.push('Secure');
  res.append('set-cookie', attrs.join('; '));
}

/** A live session with the synchronizer token for its forms (derived from the session id, stored only hashed). */
export type LiveSession<R extends SessionRecord> = R & { readonly csrf: string };

export type PortalSession = LiveSession<PortalSessionRecord>;

function csrfFor(sessionId: string): string {
  return createHmac('sha256', sessionId).update('wogate-portal-csrf').digest('base64url');
}

/** What the caller gives a new session: the record without the fields the manager fills in. */
export type SessionFields<R extends SessionRecord> = Omit<R, keyof SessionRecord>;

/** Server-side sessions: the cookie holds 256 random bits; the store holds only their hash. */
export class SessionManager<R extends SessionRecord = PortalSessionRecord> {
  constructor(
    private readonly store: SessionTable<R>,
    readonly names: CookieNames,
    private readonly lifetimeMs: number,
    private readonly idleMs: number,
  ) {}

  /** `notAfter` caps the new session's end: a session renewed by signing in again keeps its original end. */
  async create(res: Response, who: SessionFields<R>, now: Date, notAfter?: Date): Promise<LiveSession<R>> {
    const id = randomBytes(32).toString('base64url');
    const csrf = csrfFor(id);
    const end = Math.min(now.getTime() + this.lifetimeMs, notAfter?.getTime() ?? Infinity);
    const base: SessionRecord = { idHash: sha256(id), csrfHash: sha256(csrf), createdAt: now, lastSeenAt: now, expiresAt: new Date(end) };
    const rec = { ...who, ...base } as R;
    await this.store.createSession(rec);
    setCookie(res, this.names, this.names.session, id, Math.max(0, Math.floor((end - now.getTime()) / 1000)));
    return { ...rec, csrf };
  }

  /** The live session named by the cookie, touched; an expired or idle one is deleted. */
  async read(req: Request, now: Date): Promise<LiveSession<R> | undefined> {
    const id = readCookie(req, this.names.session);
    if (!id || !/^[A-Za-z0-9_-]{43}$/.test(id)) return undefined;
    const rec = await this.store.getSession(sha256(id));
    if (!rec) return undefined;
    if (rec.expiresAt.getTime() <= now.getTime() || now.getTime() - rec.lastSeenAt.getTime() >= this.idleMs) {
      await this.store.deleteSession(rec.idHash);
      return undefined;
    }
    await this.store.touchSession(rec.idHash, now);
    return { ...rec, csrf: csrfFor(id) };
  }

  async destroy(res: Response, s: SessionRecord | undefined): Promise<void> {
    if (s) await this.store.deleteSession(s.idHash);
    setCookie(res, this.names, this.names.session, '', 0);
  }
}
