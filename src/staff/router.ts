import express, { type Request, type RequestHandler } from 'express';
import { claimAt, printableSubject, roleFromClaims } from '../api/oidc.js';
import { personFromClaim } from '../api/person.js';
import { accessBlocks, blockAccess, explain, reasonFrom, reinstateVendor, revokeGrant, suspendVendor, type ActionDeps } from '../api/actions.js';
import { blocks } from '../engine/access-blocks.js';
import { GUARDS, isRole, roleAtLeast, STAFF_PAGES, type StaffGuarded, type StaffPage } from '../api/roles.js';
import type { ActorContext, AuditLog } from '../audit/audit.js';
import type { StaffConfig } from '../config/config.js';
import type { RefusalSink } from '../api/refusals.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { esc, shellPage, errorBody, type Shell } from '../portal/html.js';
import { claimText, provesMfa, safeReturnTo, type PortalOidc } from '../portal/login.js';
import { sameSecret, type LiveSession, type SessionManager } from '../portal/sessions.js';
import { beginSignIn, finishSignIn, PortalRefusal, refusalHandler } from '../portal/signin.js';
import type { StaffSessionRecord } from '../store/portal-store.js';
import { STAFF_CSP, STAFF_CSS, STAFF_JS } from './assets.js';
import { explainBody, grantBody, grantsBody, vendorsBody, type Viewer } from './pages.js';

export interface StaffDeps extends ActionDeps {
  readonly config: StaffConfig;
  readonly oidc: PortalOidc;
  readonly sessions: SessionManager<StaffSessionRecord>;
  readonly audit: AuditLog;
  readonly log: Logger;
  readonly clock: () => Date;
  /** Limits sign-in attempts per client address (src/api/limits.ts). */
  readonly loginLimiter: RequestHandler;
  /** Refusals of callers without a session (src/api/refusals.ts). */
  readonly refusals: RefusalSink;
  readonly metrics: Pick<Metrics, 'refused'>;
}

type StaffSession = LiveSession<StaffSessionRecord>;
type StaffRequest = Request & { staffSession?: StaffSession };

const SHELL: Shell = {
  product: 'wogate security staff',
  base: '/staff',
  nav: [['/staff', 'Grants'], ['/staff/vendors', 'Vendors'], ['/staff/explain', 'Explain']],
  script: '/staff/static/staff.js',
};

/** Audit actors are the same as on the admin API: `oidc:<sub>`. */
function actor(req: StaffRequest): string {
  return req.staffSession ? `oidc:${req.staffSession.subject}` : `remote:${req.ip ?? req.socket.remoteAddress ?? '?'}`;
}

function context(s: StaffSession): ActorContext {
  return { role: s.role, ...(s.person ? { person: s.person } : {}), via: 'staff' };
}

/**
 * How long a role read from the provider is believed. The role is read at sign-in only, so a
 * session older than this signs in again (a redirect through the provider, silent while the
 * provider's own session lasts) before it may do anything: a demotion takes effect within it.
 */
export const STAFF_ROLE_MAX_AGE_MS = 5 * 60_000;

function roleStale(s: StaffSession, now: Date): boolean {
  return now.getTime() - s.createdAt.getTime() >= STAFF_ROLE_MAX_AGE_MS;
}

function user(s: StaffSession | undefined) {
  return s ? { label: `${s.name} (${s.role})`, csrf: s.csrf } : undefined;
}

function viewer(s: StaffSession): Viewer {
  return { csrf: s.csrf, canAct: isRole(s.role) && roleAtLeast(s.role, 'operator') };
}

function text(v: unknown, max: number): string | undefined {
  return typeof v === 'string' && v.trim() !== '' ? v.trim().slice(0, max) : undefined;
}

/**
 * The security staff's pages under /staff: live grants with countdowns, revoking one, the vendor
 * kill switch, explaining a work order. Staff sign in at auth.oidc's provider with MFA; each page
 * needs the role of the admin API route doing the same thing (STAFF_PAGES in src/api/roles.ts),
 * and acts through the same code (src/api/actions.ts).
 */
export function createStaffRouter(d: StaffDeps): express.Router {
  const r = express.Router();
  const form = express.urlencoded({ extended: false, limit: 4 * 1024, parameterLimit: 10 });
  const send = (res: express.Response, title: string, body: string, s: StaffSession | undefined, refreshSec?: number) => {
    const attrs = ` data-now="${esc(d.clock().toISOString())}"${refreshSec ? ` data-refresh="${refreshSec}"` : ''}`;
    res.type('html').send(shellPage(SHELL, title, body, user(s), attrs));
  };

  r.use((_req, res, next) => {
    res.set('content-security-policy', STAFF_CSP);
    next();
  });
  r.get('/static/staff.css', (_req, res) => {
    res.set('cache-control', 'public, max-age=3600').type('text/css').send(STAFF_CSS);
  });
  r.get('/static/staff.js', (_req, res) => {
    res.set('cache-control', 'public, max-age=3600').type('text/javascript').send(STAFF_JS);
  });
  r.use(async (req: StaffRequest, _res, next) => {
    const s = await d.sessions.read(req, d.clock());
    if (s) req.staffSession = s;
    next();
  });

  /** The page's table entry decides: a session, then at least the role of the matching API route. */
  const guard = (p: StaffPage): RequestHandler & StaffGuarded => {
    const g: RequestHandler & StaffGuarded = (req: StaffRequest, res, next) => {
      const s = req.staffSession;
      // A session whose role is due for its re-check is treated as none until the provider confirms it again.
      const stale = s !== undefined && roleStale(s, d.clock());
      if (!s || stale) {
        if (req.method === 'GET') {
          const back = safeReturnTo(req.originalUrl, '/staff') ?? '/staff';
          return res.redirect(303, `/staff/login?returnTo=${encodeURIComponent(back)}`);
        }
        return next(stale
          ? new PortalRefusal(401, 'role_stale', 'Sign-in required', 'Your role is re-checked with the identity provider every 5 minutes and this session is due: nothing was changed. Reload the page (you are signed in again through the provider) and send the form again.')
          : new PortalRefusal(401, 'not_signed_in', 'Sign-in required', 'Your session has ended or you have not signed in. Sign in again.'));
      }
      if (!isRole(s.role) || !roleAtLeast(s.role, p.api.minRole)) {
        return next(new PortalRefusal(403, 'role', 'Not allowed', `This needs the ${p.api.minRole} role or higher; you signed in as ${s.role}.`, { need: p.api.minRole, have: s.role }));
      }
      next();
    };
    g[GUARDS] = p;
    return g;
  };
  const csrf: RequestHandler = (req: StaffRequest, _res, next) => {
    const token = (req.body as Record<string, unknown> | undefined)?.csrf;
    const s = req.staffSession;
    if (!s || typeof token !== 'string' || !sameSecret(token, s.csrfHash)) {
      return next(new PortalRefusal(403, 'csrf', 'Request refused', 'The form was not sent from this session (CSRF token missing or wrong). Reload the page and try again.'));
    }
    next();
  };
  /** Declares a page through the table: GETs are guarded; POSTs are guarded, then read the form and check its CSRF token. */
  const pageRoute = (method: 'GET' | 'POST', path: string, handler: (req: StaffRequest, res: express.Response, s: StaffSession) => Promise<void>) => {
    const p = STAFF_PAGES.find((x) => x.method === method && x.path === `/staff${path === '/' ? '' : path}`);
    if (!p) throw new Error(`${method} /staff${path} is not in STAFF_PAGES`);
    const h: RequestHandler = (req: StaffRequest, res) => handler(req, res, req.staffSession as StaffSession);
    if (method === 'GET') r.get(path, guard(p), h);
    else r.post(path, guard(p), form, csrf, h);
  };

  const flow = { oidc: d.oidc, store: d.store, names: d.sessions.names, base: '/staff', realm: 'staff', clock: d.clock } as const;
  r.get('/login', d.loginLimiter, async (req, res) => {
    await beginSignIn(flow, req, res);
  });

  r.get('/callback', d.loginLimiter, async (req: StaffRequest, res) => {
    const { id, returnTo } = await finishSignIn(flow, req, res, d.log);
    // A new session id at every sign-in (no fixation): an old session in this browser ends here,
    // also when this sign-in is refused below (a role taken away at the provider ends the session).
    const old = req.staffSession;
    if (old) await d.store.portal.staff.deleteSession(old.idHash);
    if (!provesMfa(id.claims, d.config.oidc)) {
      throw new PortalRefusal(403, 'mfa_missing', 'Multi-factor sign-in required', 'The staff pages need a sign-in with a second factor. Sign in again at your identity provider using multi-factor authentication.', { subject: id.sub, amr: id.claims.amr ?? null, acr: id.claims.acr ?? null });
    }
    if (!printableSubject(id.sub)) throw new PortalRefusal(403, 'identity_incomplete', 'Sign-in refused', 'Your identity\'s subject (sub) is not 1 to 255 printable characters.');
    const role = roleFromClaims(id.claims, d.config);
    if (!role) {
      throw new PortalRefusal(403, 'no_role', 'Not allowed', `Your identity carries no value of the ${d.config.roleClaim} claim that maps to a wogate role. Ask the plant's security team for one.`, { subject: id.sub });
    }
    const name = ['preferred_username', 'email', 'name'].map((c) => claimText(id.claims, c)).find((v) => v !== undefined) ?? id.sub;
    const person = personFromClaim(claimAt(id.claims, d.config.personClaim), d.config.personClaim);
    // Signing in again as the same subject (the 5-minute role check) keeps the old session's end.
    await d.sessions.create(res, { subject: id.sub, name, role, ...(person ? { person } : {}) }, d.clock(), old?.subject === id.sub ? old.expiresAt : undefined);
    const amr = Array.isArray(id.claims.amr) ? id.claims.amr : [];
    await d.audit.append({ actor: `oidc:${id.sub}`, action: 'staff.signed_in', subject: `oidc:${id.sub}`, details: { role, name, person: person ?? null, renewed: old?.subject === id.sub, amr, acr: id.claims.acr ?? null, remote: req.ip ?? req.socket.remoteAddress ?? '?' } });
    res.redirect(303, returnTo);
  });

  r.post('/logout', form, csrf, async (req: StaffRequest, res) => {
    const s = req.staffSession as StaffSession;
    await d.sessions.destroy(res, s);
    await d.audit.append({ actor: actor(req), action: 'staff.signed_out', subject: `oidc:${s.subject}`, details: {} });
    res.redirect(303, '/staff/login');
  });

  pageRoute('GET', '/', async (req, res, s) => {
    const now = d.clock();
    const vendor = text(req.query.vendor, 200);
    const asset = text(req.query.asset, 200);
    const grants = (await d.store.listGrants({ states: ['pending', 'active', 'revoking'], ...(vendor ? { vendorId: vendor } : {}) }))
      .filter((g) => asset === undefined || g.assetId === asset)
      .sort((a, b) => a.validUntil.getTime() - b.validUntil.getTime());
    const suspended = new Set(d.suspensions?.list().map((x) => x.vendorId) ?? []);
    send(res, 'Live grants', grantsBody(grants, now, { ...(vendor ? { vendor } : {}), ...(asset ? { asset } : {}) }, suspended), s, 60);
  });

  pageRoute('GET', '/grants/:id', async (req, res, s) => {
    const g = await d.store.getGrant(String(req.params.id));
    if (!g) throw new PortalRefusal(404, 'no_grant', 'No such grant', `There is no grant "${String(req.params.id).slice(0, 100)}".`);
    const flash = req.query.done === 'revoked' ? 'Revoked: the target is being told now; the state below says when it confirmed.'
      : req.query.done === 'blocked' ? 'This access is blocked for all orders: every grant of it is being revoked and none is made until the block is lifted.' : undefined;
    const holders = await d.reconciler.entryHolders(g);
    const block = (await accessBlocks(d)).find((b) => blocks(b, g));
    send(res, `Grant ${g.id}`, grantBody(g, d.clock(), viewer(s), { holders, ...(block ? { block } : {}), ...(flash ? { flash } : {}) }), s);
  });

  pageRoute('POST', '/grants/:id/revoke', async (req, res, s) => {
    const { grant } = await revokeGrant(d, String(req.params.id), actor(req), reasonFrom(req.body), context(s));
    res.redirect(303, `/staff/grants/${encodeURIComponent(grant.id)}?done=revoked`);
  });

  pageRoute('POST', '/grants/:id/block-access', async (req, res, s) => {
    const id = String(req.params.id);
    await blockAccess(d, { grantId: id, reason: (req.body as Record<string, unknown>).reason }, actor(req), context(s));
    res.redirect(303, `/staff/grants/${encodeURIComponent(id)}?done=blocked`);
  });

  pageRoute('GET', '/vendors', async (req, res, s) => {
    const live = await d.store.listGrants({ states: ['pending', 'active', 'revoking'] });
    const suspended = new Map((d.suspensions?.list() ?? []).map((x) => [x.vendorId, x]));
    const rows = [...d.world().register.vendors.values()].sort((a, b) => a.id.localeCompare(b.id)).map((vendor) => {
      const suspension = suspended.get(vendor.id);
      return { vendor, live: live.filter((g) => g.vendorId === vendor.id).length, ...(suspension ? { suspension } : {}) };
    });
    const done = text(req.query.done, 20);
    const who = text(req.query.vendor, 200);
    const flash = who && done === 'suspended' ? `${who} is suspended: every grant is being revoked.` : who && done === 'reinstated' ? `${who} is reinstated: their open work orders authorise access again.` : undefined;
    send(res, 'Vendors', vendorsBody(rows, viewer(s), flash), s);
  });

  pageRoute('POST', '/vendors/:id/suspend', async (req, res, s) => {
    const vendorId = String(req.params.id);
    const reason = reasonFrom(req.body);
    const confirm = (req.body as Record<string, unknown>).confirm;
    if (confirm !== vendorId) throw new PortalRefusal(400, 'not_confirmed', 'Not suspended', `Type the vendor id "${vendorId.slice(0, 200)}" exactly to confirm the kill switch; nothing was changed.`);
    await suspendVendor(d, vendorId, actor(req), reason, context(s));
    res.redirect(303, `/staff/vendors?done=suspended&vendor=${encodeURIComponent(vendorId)}`);
  });

  pageRoute('POST', '/vendors/:id/reinstate', async (req, res, s) => {
    const vendorId = String(req.params.id);
    await reinstateVendor(d, vendorId, actor(req), reasonFrom(req.body), context(s));
    res.redirect(303, `/staff/vendors?done=reinstated&vendor=${encodeURIComponent(vendorId)}`);
  });

  pageRoute('GET', '/explain', async (req, res, s) => {
    const order = text(req.query.order, 300);
    const at = text(req.query.at, 40);
    if (!order) return send(res, 'Explain a work order', explainBody('', at ?? '', undefined, undefined), s);
    const when = at ? new Date(at) : d.clock();
    if (Number.isNaN(when.getTime())) throw new PortalRefusal(400, 'bad_time', 'Request refused', `"At" is not an ISO-8601 time: ${at?.slice(0, 40)}`);
    send(res, `Explain ${order}`, explainBody(order, at ?? '', await explain(d, order, when), when), s);
  });

  r.use((req: StaffRequest, _res, next) => next(new PortalRefusal(404, 'no_route', 'Not found', `There is no staff page ${req.path.slice(0, 100)}.`)));
  r.use(refusalHandler({
    log: d.log, audit: d.audit, action: 'staff.refused', base: '/staff', actor, refusals: d.refusals, metrics: d.metrics,
    render: (title, message, req: StaffRequest) => shellPage(SHELL, title, errorBody(message, '/staff', 'Back to the grants'), user(req.staffSession)),
  }));
  return r;
}
