import type { Request, Response } from 'express';
import { clientError } from '../api/client-errors.js';
import type { RefusalSink } from '../api/refusals.js';
import { isWogateError } from '../domain/index.js';
import type { Store } from '../store/store.js';
import { PortalLoginError, safeReturnTo, type LoginClaims, type PortalOidc } from './login.js';
import { readCookie, sameSecret, setCookie, sha256, type CookieNames } from './sessions.js';

/**
 * The authorization code flow with PKCE as both sets of pages run it (the vendor portal and the
 * staff pages): the pre-login record (state, nonce, PKCE verifier, where to return) is stored under
 * the hash of the state, and bound to the browser by a cookie holding the state; both are single-use.
 */

/** A refusal: rendered as an HTML page with `status`, and audited with `reason`. */
export class PortalRefusal extends Error {
  constructor(readonly status: number, readonly reason: string, readonly title: string, message: string, readonly extra: Readonly<Record<string, unknown>> = {}) {
    super(message);
  }
}

export interface SignInFlow {
  readonly oidc: PortalOidc;
  readonly store: Store;
  readonly names: CookieNames;
  /** /portal or /staff: the only places a sign-in may return to. */
  readonly base: string;
  /** Kept in the pre-login record and checked at the callback, so one set of pages can't finish the other's sign-in. */
  readonly realm: 'portal' | 'staff';
  readonly clock: () => Date;
}

/** How long a started sign-in may take at the provider. */
const LOGIN_TTL_MS = 10 * 60_000;

/** Stores the pre-login record, sets the state cookie and redirects to the provider. */
export async function beginSignIn(f: SignInFlow, req: Request, res: Response): Promise<void> {
  const returnTo = safeReturnTo(req.query.returnTo, f.base);
  if (!returnTo) throw new PortalRefusal(400, 'open_redirect', 'Sign-in refused', `The return address is not a page under ${f.base}.`);
  let begun;
  try {
    begun = await f.oidc.begin();
  } catch (e) {
    throw new PortalRefusal(503, 'provider_unavailable', 'Sign-in unavailable', 'The identity provider cannot be reached; try again later.', { error: e instanceof Error ? e.message : String(e) });
  }
  const now = f.clock();
  await f.store.portal.putLogin(sha256(begun.state), JSON.stringify({ realm: f.realm, nonce: begun.nonce, codeVerifier: begun.codeVerifier, returnTo }), new Date(now.getTime() + LOGIN_TTL_MS));
  setCookie(res, f.names, f.names.login, begun.state, LOGIN_TTL_MS / 1000);
  res.redirect(303, begun.url.href);
}

/**
 * The provider's redirect back: the state must match this browser's cookie and an unused record,
 * then the code is redeemed and the ID token verified. Returns its claims and where to go next.
 */
export async function finishSignIn(f: SignInFlow, req: Request, res: Response, log: { warn(msg: string, meta: Record<string, unknown>): void }): Promise<{ id: LoginClaims; returnTo: string }> {
  const state = typeof req.query.state === 'string' ? req.query.state : '';
  const bound = readCookie(req, f.names.login);
  setCookie(res, f.names, f.names.login, '', 0);
  if (!state || !bound || !sameSecret(state, sha256(bound))) {
    throw new PortalRefusal(400, 'state_mismatch', 'Sign-in refused', 'The sign-in response does not belong to a sign-in started in this browser (state mismatch). Start again from the first page.');
  }
  const stored = await f.store.portal.takeLogin(sha256(state), f.clock());
  const login = stored === undefined ? undefined : (JSON.parse(stored) as { realm?: string; nonce: string; codeVerifier: string; returnTo: string });
  // Records written before the staff pages existed have no realm: they were the portal's.
  if (!login || (login.realm ?? 'portal') !== f.realm) throw new PortalRefusal(400, 'state_used', 'Sign-in refused', 'This sign-in response was already used or has expired. Start again from the first page.');
  try {
    const id = await f.oidc.finish(new URL(req.originalUrl, 'http://pages.invalid').search, { state, nonce: login.nonce, codeVerifier: login.codeVerifier });
    return { id, returnTo: login.returnTo };
  } catch (e) {
    if (!(e instanceof PortalLoginError)) throw e;
    log.warn(`${f.realm} sign-in failed at the provider`, { reason: e.reason, error: e.message });
    if (e.reason === 'provider_unavailable') throw new PortalRefusal(503, e.reason, 'Sign-in unavailable', 'The identity provider cannot be reached; try again later.');
    throw new PortalRefusal(400, e.reason, 'Sign-in refused', 'The identity provider did not confirm this sign-in (the code may have been used already). Start again from the first page.');
  }
}

const WOGATE_STATUS: Partial<Record<string, [number, string]>> = {
  BAD_REQUEST: [400, 'Request refused'],
  NOT_FOUND: [404, 'Not found'],
  STORE_CONFLICT: [409, 'Conflict'],
  AUTH_FORBIDDEN: [403, 'Not allowed'],
};

export interface RefusalPages {
  readonly log: { debug(msg: string, meta: Record<string, unknown>): void; warn(msg: string, meta: Record<string, unknown>): void; error(msg: string, meta: Record<string, unknown>): void };
  readonly audit: { append(e: { actor: string; action: string; subject: string; details: Record<string, unknown> }): Promise<unknown> };
  /** portal.refused or staff.refused. */
  readonly action: string;
  /** /portal or /staff, for the audit subject. */
  readonly base: string;
  readonly actor: (req: Request) => string;
  readonly render: (title: string, message: string, req: Request) => string;
  /** Refusals of callers with no session and no identity from the provider: counted, audited once a window. */
  readonly refusals: RefusalSink;
  /** Counts the unknown pages, which are not audited. */
  readonly metrics: { refused: { inc(labels: { area: string; kind: string }): void } };
}

/**
 * Every refusal of a set of pages: an HTML page with its status (never a stack), a log line and an
 * audit record. Errors of the shared actions (src/api/actions.ts) keep their status and message.
 * A caller that is nobody yet (no session, no identity from the provider) is aggregated per address
 * and window (src/api/refusals.ts); an unknown page is only logged and counted.
 */
export function refusalHandler(p: RefusalPages) {
  return async (err: unknown, req: Request, res: Response, _next: (e?: unknown) => void): Promise<void> => {
    let e: PortalRefusal;
    const code = isWogateError(err) ? err.code : undefined;
    const known = code ? WOGATE_STATUS[code] : undefined;
    if (err instanceof PortalRefusal) e = err;
    else if (known && code && err instanceof Error) e = new PortalRefusal(known[0], code.toLowerCase(), known[1], err.message);
    else if (err && typeof err === 'object' && (err as { type?: string }).type === 'entity.too.large') e = new PortalRefusal(413, 'body_too_large', 'Request too large', 'The form sent is larger than these pages accept.');
    else if (clientError(err, false)) {
      const c = clientError(err, false) as NonNullable<ReturnType<typeof clientError>>;
      e = new PortalRefusal(c.code === 'UNSUPPORTED_MEDIA_TYPE' ? 415 : c.code === 'BODY_TOO_LARGE' ? 413 : 400, c.code.toLowerCase(), 'Request refused', c.message);
    } else {
      p.log.error(`${p.base} request failed`, { method: req.method, path: req.path, error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
      e = new PortalRefusal(500, 'internal', 'Something went wrong', 'The request could not be completed. Try again; if it persists, tell the plant\'s security team.');
    }
    const remote = req.ip ?? req.socket.remoteAddress ?? '?';
    const actor = p.actor(req);
    const area = p.base === '/staff' ? 'staff' : 'portal';
    if (e.status === 404 && e.reason === 'no_route') {
      p.metrics.refused.inc({ area, kind: e.reason });
      p.log.debug(`${p.base}: no such page`, { method: req.method, path: req.path.slice(0, 200), remote });
    } else if (actor.startsWith('remote:') && !Object.hasOwn(e.extra, 'subject')) {
      p.refusals.record({ area, remote, kind: e.reason, status: e.status, reason: e.message, method: req.method, path: `${p.base}${req.path}` });
    } else {
      const details = { status: e.status, reason: e.reason, method: req.method, path: req.path.slice(0, 200), remote, ...e.extra };
      p.metrics.refused.inc({ area, kind: e.reason });
      p.log.warn(`${p.base} request refused`, { actor, ...details });
      await p.audit.append({ actor, action: p.action, subject: `${req.method} ${p.base}${req.path.slice(0, 200)}`, details }).catch(() => undefined);
    }
    if (e.status === 401) res.set('www-authenticate', `OIDC realm="wogate-${p.base.slice(1)}"`);
    if (!res.headersSent) res.status(e.status).type('html').send(p.render(e.title, e.message, req));
  };
}
