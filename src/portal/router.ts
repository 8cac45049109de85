import express, { type Request, type RequestHandler } from 'express';
import type { AuditLog } from '../audit/audit.js';
import type { PortalConfig } from '../config/config.js';
import { describeResource, vendorOfTechnician, type Grant, type Register } from '../domain/index.js';
import { sameId, tryCanonicalId } from '../domain/ids.js';
import type { RefusalSink } from '../api/refusals.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { Store } from '../store/store.js';
import { esc, errorPage, page, PORTAL_CSP, PORTAL_CSS, timeLeft } from './html.js';
import { claimText, provesMfa, type PortalOidc } from './login.js';
import { beginSignIn, finishSignIn, PortalRefusal, refusalHandler } from './signin.js';
import { onePassphrase } from './pkcs12.js';
import { sameSecret, type PortalSession, type SessionManager } from './sessions.js';
import type { CredentialVault } from './vault.js';
import { handOutFiles } from './vpn-profile.js';

export interface PortalDeps {
  readonly config: PortalConfig;
  readonly oidc: PortalOidc;
  readonly sessions: SessionManager;
  readonly vault: CredentialVault;
  /** Certificate targets that hand out a VPN profile: their button says so. */
  readonly vpnTargets?: ReadonlySet<string>;
  readonly store: Store;
  /** The vendor register: without oidc.vendorClaim, a technician's vendor is the one register entry listing them. */
  readonly world: () => { readonly register: Pick<Register, 'vendors'> };
  readonly audit: AuditLog;
  readonly log: Logger;
  readonly clock: () => Date;
  /** Limits sign-in attempts per client address (src/api/limits.ts). */
  readonly loginLimiter: RequestHandler;
  /** Refusals of callers without a session (src/api/refusals.ts). */
  readonly refusals: RefusalSink;
  readonly metrics: Pick<Metrics, 'refused'>;
}

export { PortalRefusal };

type PortalRequest = Request & { portalSession?: PortalSession };

function remote(req: Request): string {
  return req.ip ?? req.socket.remoteAddress ?? '?';
}

/** `portal:<vendor>/<technician>`: a technician id alone may name people of two vendors. */
function actor(req: PortalRequest): string {
  return req.portalSession ? `portal:${req.portalSession.vendorId}/${req.portalSession.technicianId}` : `remote:${remote(req)}`;
}

/**
 * A session's own grants: technician ids are unique only inside a vendor, so a grant is the
 * session's only when both its vendor and its technician are the session's (in canonical form,
 * whatever spelling a grant stored before ids were canonical carries).
 */
function grantsOf(all: readonly Grant[], s: PortalSession): Grant[] {
  return all.filter((g) => sameId(g.vendorId, s.vendorId) && sameId(g.technicianId, s.technicianId));
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

  const flow = { oidc: d.oidc, store: d.store, names: d.sessions.names, base: '/portal', realm: 'portal', clock: d.clock } as const;
  r.get('/login', d.loginLimiter, async (req, res) => {
    await beginSignIn(flow, req, res);
  });

  r.get('/callback', d.loginLimiter, async (req, res) => {
    const { id, returnTo } = await finishSignIn(flow, req, res, d.log);
    const now = d.clock();
    const oidc = d.config.oidc;
    if (!provesMfa(id.claims, oidc)) {
      throw new PortalRefusal(403, 'mfa_missing', 'Multi-factor sign-in required', 'The portal needs a sign-in with a second factor. Sign in again at your identity provider using multi-factor authentication.', { subject: id.sub, amr: id.claims.amr ?? null, acr: id.claims.acr ?? null });
    }
    const technicianId = claimId(id.claims, oidc.technicianClaim, 'technician', id.sub);
    // Without a vendor claim the register says whose technician this is; the daemon refuses to
    // start when an id is listed under two vendors, so one entry at most can match.
    const vendorId = oidc.vendorClaim ? claimId(id.claims, oidc.vendorClaim, 'vendor', id.sub) : vendorOfTechnician(d.world().register, technicianId);
    if (vendorId === undefined) {
      throw new PortalRefusal(403, 'identity_unknown', 'Sign-in refused', 'Your technician id is not in the plant\'s vendor register. Ask the plant\'s security team to add you.', { subject: id.sub, technicianId });
    }
    // A new session id at every sign-in (no fixation); an old session in this browser ends.
    const old = (req as PortalRequest).portalSession;
    if (old) await d.store.portal.deleteSession(old.idHash);
    await d.sessions.create(res, { technicianId, vendorId, subject: id.sub }, now);
    const amr = Array.isArray(id.claims.amr) ? id.claims.amr : [];
    await d.audit.append({ actor: `portal:${vendorId}/${technicianId}`, action: 'portal.signed_in', subject: `technician:${vendorId}/${technicianId}`, details: { sub: id.sub, vendorId, amr, acr: id.claims.acr ?? null, remote: remote(req) } });
    res.redirect(303, returnTo);
  });

  r.post('/logout', form, signedIn, csrf, async (req: PortalRequest, res) => {
    const s = req.portalSession as PortalSession;
    await d.sessions.destroy(res, s);
    await d.audit.append({ actor: actor(req), action: 'portal.signed_out', subject: `technician:${s.vendorId}/${s.technicianId}`, details: {} });
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
          ? `<form method="post" action="/portal/grants/${esc(encodeURIComponent(g.id))}/credential"><input type="hidden" name="csrf" value="${esc(s.csrf)}"><button type="submit">Collect ${d.vpnTargets?.has(g.targetId) ? 'VPN profile' : 'certificate'}</button></form>`
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
    // One passphrase for every file handed out: the VPN profile's key and the PKCS#12 (src/portal/vpn-profile.ts).
    const passphrase = onePassphrase();
    const files = handOutFiles(taken.credential, passphrase);
    await d.audit.append({ actor: actor(req), action: 'portal.credential_collected', subject: `grant:${g.id}`, details: { serial: taken.credential.serial, commonName: taken.credential.commonName, notAfter: taken.credential.notAfter.toISOString(), handedOut: files.map((f) => f.kind), remote: remote(req) } });
    const downloads = files.map((f) => `
<p><a class="button" data-kind="${esc(f.kind)}" download="${esc(f.name)}" href="data:${esc(f.mediaType)};base64,${f.bytes.toString('base64')}">Download ${esc(f.name)}</a></p>
<p>${esc(f.howToImport)}</p>`).join('');
    res.type('html').send(page(files[0]?.kind === 'openvpn' ? 'Your VPN profile' : 'Your certificate', `
<p>Save the ${files.length > 1 ? 'files' : 'file'} now: this page is shown once, and wogate has deleted its copy of the private key.</p>${downloads}
<p>Passphrase for the private key (shown once):</p>
<p class="secret" id="passphrase">${esc(passphrase)}</p>
<p>Certificate ${esc(taken.credential.commonName)}, serial ${esc(taken.credential.serial)}, valid until ${esc(taken.credential.notAfter.toISOString())}.</p>`, { user: { technicianId: s.technicianId, csrf: s.csrf } }));
  });

  /** A claim as an id in canonical form; a missing or malformed one refuses the sign-in, naming the claim. */
  function claimId(claims: Readonly<Record<string, unknown>>, claim: string, what: 'technician' | 'vendor', subject: string): string {
    const text = claimText(claims, claim);
    if (text === undefined) throw new PortalRefusal(403, 'identity_incomplete', 'Sign-in refused', `Your identity carries no ${claim} claim naming your ${what} id.`, { subject });
    const id = tryCanonicalId(text, `claim ${claim}`);
    if (!id.ok) throw new PortalRefusal(403, 'identity_invalid', 'Sign-in refused', `Your identity's ${claim} claim can't be a ${what} id: ${id.error.message}.`, { subject });
    return id.id;
  }

  r.use((req: PortalRequest, _res, next) => next(new PortalRefusal(404, 'no_route', 'Not found', `There is no portal page ${req.path.slice(0, 100)}.`)));
  r.use(refusalHandler({
    log: d.log, audit: d.audit, action: 'portal.refused', base: '/portal', actor, refusals: d.refusals, metrics: d.metrics,
    render: (title, message, req: PortalRequest) => errorPage(title, message, req.portalSession ? { user: { technicianId: req.portalSession.technicianId, csrf: req.portalSession.csrf } } : {}),
  }));
  return r;
}
