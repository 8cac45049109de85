import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import type { AuditLog } from '../audit/audit.js';
import type { PortalConfig } from '../config/config.js';
import { describeResource, type Grant } from '../domain/index.js';
import type { Logger } from '../log.js';
import type { Store } from '../store/store.js';
import { esc, errorPage, page, PORTAL_CSP, PORTAL_CSS, timeLeft } from './html.js';
import { claimText, PortalLoginError, provesMfa, safeReturnTo, type PortalOidc } from './login.js';
import { onePassphrase, toPkcs12 } from './pkcs12.js';
import { readCookie, sameSecret, setCookie, sha256, type PortalSession, type SessionManager } from './sessions.js';
import type { CredentialVault } from './vault.js';

export interface PortalDeps {
  readonly config: PortalConfig;
  readonly oidc: PortalOidc;
  readonly sessions: SessionManager;
  readonly vault: CredentialVault;
  readonly store: Store;
  readonly audit: AuditLog;
  readonly log: Logger;
  readonly clock: () => Date;
  /** Limits sign-in attempts per client address (src/api/limits.ts). */
  readonly loginLimiter: RequestHandler;
}

/** How long a started sign-in may take at the provider. */
const LOGIN_TTL_MS = 10 * 60_000;

/** A refusal: rendered as an HTML page with `status`, and audited as portal.refused with `reason`. */
export class PortalRefusal extends Error {
  constructor(readonly status: number, readonly reason: string, readonly title: string, message: string, readonly extra: Readonly<Record<string, unknown>> = {}) {
    super(message);
  }
}

type PortalRequest = Request & { portalSession?: PortalSession };

function remote(req: Request): string {
  return req.ip ?? req.socket.remoteAddress ?? '?';
}

function actor(req: PortalRequest): string {
  return req.portalSession ? `portal:${req.portalSession.technicianId}` : `remote:${remote(req)}`;
}

function grantsOf(all: readonly Grant[], s: PortalSession): Grant[] {
  return all.filter((g) => g.technicianId === s.technicianId && (s.vendorId === undefined || g.vendorId === s.vendorId));
}

/** The vendor portal under /portal: sign-in, the technician's own grants, one-time credential collection. */
export function createPortalRouter(d: PortalDeps): express.Router {
  const r = express.Router();
  const form = express.urlencoded({ extended: false, limit: 4 * 1024, parameterLimit: 10 });

  r.use((_req, res, next) => {
    res.set('content-security-policy', PORTAL_CSP);
    next();
  });
  r.get('/static/portal.css', (_req, res) => {
    res.set('cache-control', 'public, max-age=3600').type('text/css').send(PORTAL_CSS);
  });
  r.use(async (req: PortalRequest, _res, next) => {
    const s = await d.sessions.read(req, d.clock());
    if (s) req.portalSession = s;
    next();
  });

  const signedIn: RequestHandler = (req: PortalRequest, _res, next) => {
    if (!req.portalSession) return next(new PortalRefusal(401, 'not_signed_in', 'Sign-in required', 'Your session has ended or you have not signed in. Sign in again from the portal page.'));
    next();
  };
  const csrf: RequestHandler = (req: PortalRequest, _res, next) => {
    const token = (req.body as Record<string, unknown> | undefined)?.csrf;
    const s = req.portalSession;
    if (!s || typeof token !== 'string' || !sameSecret(token, s.csrfHash)) {
      return next(new PortalRefusal(403, 'csrf', 'Request refused', 'The form was not sent from this portal session (CSRF token missing or wrong). Reload the portal and try again.'));
    }
    next();
  };

  r.get('/login', d.loginLimiter, async (req, res) => {
    const returnTo = safeReturnTo(req.query.returnTo);
    if (!returnTo) throw new PortalRefusal(400, 'open_redirect', 'Sign-in refused', 'The return address is not a page of this portal.');
    let begun;
    try {
      begun = await d.oidc.begin();
    } catch (e) {
      throw new PortalRefusal(503, 'provider_unavailable', 'Sign-in unavailable', 'The identity provider cannot be reached; try again later.', { error: e instanceof Error ? e.message : String(e) });
    }
    const now = d.clock();
    // The record is bound to this browser by the cookie holding its state; both are single-use.
    await d.store.portal.putLogin(sha256(begun.state), JSON.stringify({ nonce: begun.nonce, codeVerifier: begun.codeVerifier, returnTo }), new Date(now.getTime() + LOGIN_TTL_MS));
    setCookie(res, d.sessions.names, d.sessions.names.login, begun.state, LOGIN_TTL_MS / 1000);
    res.redirect(303, begun.url.href);
  });

  r.get('/callback', d.loginLimiter, async (req, res) => {
    const state = typeof req.query.state === 'string' ? req.query.state : '';
    const bound = readCookie(req, d.sessions.names.login);
    setCookie(res, d.sessions.names, d.sessions.names.login, '', 0);
    if (!state || !bound || !sameSecret(state, sha256(bound))) {
      throw new PortalRefusal(400, 'state_mismatch', 'Sign-in refused', 'The sign-in response does not belong to a sign-in started in this browser (state mismatch). Start again from the portal page.');
    }
    const now = d.clock();
    const stored = await d.store.portal.takeLogin(sha256(state), now);
    if (!stored) throw new PortalRefusal(400, 'state_used', 'Sign-in refused', 'This sign-in response was already used or has expired. Start again from the portal page.');
    const login = JSON.parse(stored) as { nonce: string; codeVerifier: string; returnTo: string };
    let id;
    try {
      id = await d.oidc.finish(new URL(req.originalUrl, 'http://portal.invalid').search, { state, nonce: login.nonce, codeVerifier: login.codeVerifier });
    } catch (e) {
      if (!(e instanceof PortalLoginError)) throw e;
      d.log.warn('portal sign-in failed at the provider', { reason: e.reason, error: e.message });
      if (e.reason === 'provider_unavailable') throw new PortalRefusal(503, e.reason, 'Sign-in unavailable', 'The identity provider cannot be reached; try again later.');
      throw new PortalRefusal(400, e.reason, 'Sign-in refused', 'The identity provider did not confirm this sign-in (the code may have been used already). Start again from the portal page.');
    }
    const oidc = d.config.oidc;
    if (!provesMfa(id.claims, oidc)) {
      throw new PortalRefusal(403, 'mfa_missing', 'Multi-factor sign-in required', 'The portal needs a sign-in with a second factor. Sign in again at your identity provider using multi-factor authentication.', { subject: id.sub, amr: id.claims.amr ?? null, acr: id.claims.acr ?? null });
    }
    const technicianId = claimText(id.claims, oidc.technicianClaim);
    const vendorId = oidc.vendorClaim ? claimText(id.claims, oidc.vendorClaim) : undefined;
    if (!technicianId || (oidc.vendorClaim && !vendorId)) {
      throw new PortalRefusal(403, 'identity_incomplete', 'Sign-in refused', `Your identity carries no ${!technicianId ? oidc.technicianClaim : oidc.vendorClaim} claim naming your ${!technicianId ? 'technician' : 'vendor'} id.`, { subject: id.sub });
    }
    // A new session id at every sign-in (no fixation); an old session in this browser ends.
    const old = (req as PortalRequest).portalSession;
    if (old) await d.store.portal.deleteSession(old.idHash);
    await d.sessions.create(res, { technicianId, ...(vendorId ? { vendorId } : {}), subject: id.sub }, now);
    const amr = Array.isArray(id.claims.amr) ? id.claims.amr : [];
    await d.audit.append({ actor: `portal:${technicianId}`, action: 'portal.signed_in', subject: `technician:${technicianId}`, details: { sub: id.sub, ...(vendorId ? { vendorId } : {}), amr, acr: id.claims.acr ?? null, remote: remote(req) } });
    res.redirect(303, login.returnTo);
  });

  r.post('/logout', form, signedIn, csrf, async (req: PortalRequest, res) => {
    const s = req.portalSession as PortalSession;
    await d.sessions.destroy(res, s);
    await d.audit.append({ actor: actor(req), action: 'portal.signed_out', subject: `technician:${s.technicianId}`, details: {} });
    res.redirect(303, '/portal');
  });

  r.get('/', async (req: PortalRequest, res) => {
    const s = req.portalSession;
    if (!s) {
      res.type('html').send(page('Sign in', '<p>Sign in with your organisation\'s identity provider to see the access granted to you and collect your credentials.</p><p><a class="button" href="/portal/login">Sign in</a></p>'));
      return;
    }
    const now = d.clock();
    const mine = grantsOf(await d.store.listGrants({ states: ['pending', 'active'] }), s).filter((g) => g.validUntil.getTime() > now.getTime());
    const rows: string[] = [];
    for (const g of mine) {
      let credential = '';
      if (g.resource.kind === 'certificate') {
        const status = await d.vault.status(g);
        credential = status === true
          ? `<form method="post" action="/portal/grants/${esc(encodeURIComponent(g.id))}/credential"><input type="hidden" name="csrf" value="${esc(s.csrf)}"><button type="submit">Collect certificate</button></form>`
          : status instanceof Date ? `collected ${esc(status.toISOString())}` : 'not issued yet';
      }
      rows.push(`<tr data-grant="${esc(g.id)}"><td>${esc(g.assetId)}</td><td>${esc(describeResource(g.resource))}<br><small>${esc(g.targetId)}</small></td><td>${esc(g.validFrom.toISOString())}<br>${esc(g.validUntil.toISOString())}</td><td>${g.validFrom.getTime() > now.getTime() ? `starts in ${esc(timeLeft(g.validFrom, now))}` : esc(timeLeft(g.validUntil, now))}</td><td>${esc(g.state)}</td><td>${credential}</td></tr>`);
    }
    const body = rows.length
      ? `<table><thead><tr><th>Asset</th><th>Access</th><th>Window (UTC)</th><th>Time left</th><th>State</th><th>Credential</th></tr></thead><tbody>${rows.join('')}</tbody></table>`
      : '<p>You have no access granted right now. Access appears here while an approved work order names you.</p>';
    res.type('html').send(page('Your access', body, { user: { technicianId: s.technicianId, csrf: s.csrf } }));
  });

  r.post('/grants/:id/credential', form, signedIn, csrf, async (req: PortalRequest, res) => {
    const s = req.portalSession as PortalSession;
    const grantId = String(req.params.id);
    const now = d.clock();
    const g = await d.store.getGrant(grantId);
    // Someone else's grant looks exactly like a grant that does not exist.
    if (!g || grantsOf([g], s).length === 0) throw new PortalRefusal(404, 'not_your_grant', 'No such grant', 'There is no grant with this id among yours.', { grantId: grantId.slice(0, 100) });
    if (g.state === 'revoked' || g.state === 'revoking' || g.validUntil.getTime() <= now.getTime()) {
      throw new PortalRefusal(410, 'grant_ended', 'Access has ended', 'This grant has ended; its credential can no longer be collected.', { grantId });
    }
    const taken = await d.vault.take(g, actor(req), now);
    if (taken.result === 'collected') {
      throw new PortalRefusal(410, 'already_collected', 'Already collected', `The credential for this grant was collected at ${taken.collectedAt.toISOString()} and exists nowhere else. If that was not you, tell the plant's security team now.`, { grantId });
    }
    if (taken.result === 'none') throw new PortalRefusal(404, 'no_credential', 'Nothing to collect', 'No credential waits for this grant (it may not be issued yet).', { grantId });
    const passphrase = onePassphrase();
    const p12 = toPkcs12(taken.credential, passphrase);
    await d.audit.append({ actor: actor(req), action: 'portal.credential_collected', subject: `grant:${g.id}`, details: { serial: taken.credential.serial, commonName: taken.credential.commonName, notAfter: taken.credential.notAfter.toISOString(), remote: remote(req) } });
    const file = `${taken.credential.commonName.replace(/[^A-Za-z0-9._-]/g, '_')}.p12`;
    res.type('html').send(page('Your certificate', `
<p>Save the file now: this page is shown once, and wogate has deleted its copy of the private key.</p>
<p><a class="button" download="${esc(file)}" href="data:application/x-pkcs12;base64,${p12.toString('base64')}">Download ${esc(file)}</a></p>
<p>Passphrase to import it (shown once):</p>
<p class="secret" id="passphrase">${esc(passphrase)}</p>
<p>Certificate ${esc(taken.credential.commonName)}, serial ${esc(taken.credential.serial)}, valid until ${esc(taken.credential.notAfter.toISOString())}.</p>`, { user: { technicianId: s.technicianId, csrf: s.csrf } }));
  });

  r.use((req: PortalRequest, _res, next) => next(new PortalRefusal(404, 'no_route', 'Not found', `There is no portal page ${req.path.slice(0, 100)}.`)));
  r.use(refusalHandler(d));
  return r;
}

/** Every refusal: an HTML page with its status (never a stack), a log line and an audit record. */
function refusalHandler(d: PortalDeps) {
  return async (err: unknown, req: PortalRequest, res: Response, _next: NextFunction): Promise<void> => {
    let e: PortalRefusal;
    if (err instanceof PortalRefusal) e = err;
    else if (err && typeof err === 'object' && (err as { type?: string }).type === 'entity.too.large') e = new PortalRefusal(413, 'body_too_large', 'Request too large', 'The form sent is larger than the portal accepts.');
    else {
      d.log.error('portal request failed', { method: req.method, path: req.path, error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
      e = new PortalRefusal(500, 'internal', 'Something went wrong', 'The portal could not complete this request. Try again; if it persists, tell the plant\'s security team.');
    }
    const details = { status: e.status, reason: e.reason, method: req.method, path: req.path.slice(0, 200), remote: remote(req), ...e.extra };
    if (e.status !== 404 || e.reason !== 'no_route') d.log.warn('portal request refused', { actor: actor(req), ...details });
    await d.audit.append({ actor: actor(req), action: 'portal.refused', subject: `${req.method} /portal${req.path.slice(0, 200)}`, details }).catch(() => undefined);
    if (e.status === 401) res.set('www-authenticate', 'OIDC realm="wogate-portal"');
    const user = req.portalSession ? { user: { technicianId: req.portalSession.technicianId, csrf: req.portalSession.csrf } } : {};
    if (!res.headersSent) res.status(e.status).type('html').send(errorPage(e.title, e.message, user));
  };
}
