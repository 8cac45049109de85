import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { isWogateError, WogateError, type ErrorCode, type Grant } from '../domain/index.js';
import type { ActorContext, AuditLog } from '../audit/audit.js';
import { accessBlocks, blockAccess, explain, liftAccess, reasonFrom, reinstateVendor, revokeGrant, suspendedVendors, suspendVendor } from './actions.js';
import type { Reconciler, World } from '../engine/reconciler.js';
import type { VendorSuspensions } from '../engine/suspensions.js';
import type { BreakGlassService } from '../engine/breakglass.js';
import { reviewOverdue, type BreakGlassInput } from '../domain/breakglass.js';
import { tryCanonicalId } from '../domain/ids.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { Source } from '../sources/source.js';
import type { ApiToken, GrantFilter, Store } from '../store/store.js';
import { publishesCertificates, type Target } from '../targets/target.js';
import type { RateLimitsConfig } from '../config/config.js';
import { adminJsonBody, createLimiters } from './limits.js';
import { OPENAPI } from './openapi.js';
import { OidcTokenError, OidcUnavailableError, type OidcVerifier } from './oidc.js';
import { checkRouteTable, checkStaffPages, GUARDS, matchRoute, roleAtLeast, ruleFor, type BearerRoute, type Guarded, type Method } from './roles.js';
import { checkToken, describeToken, hasScope, recordTokenUse, type TokenCheck } from './tokens.js';
import { personOf, type Principal } from './person.js';
import { createPortalRouter, type PortalDeps } from '../portal/router.js';
import { createStaffRouter, type Staff } from '../staff/index.js';
import { clientError } from './client-errors.js';
import { RefusalAggregator, type RefusalArea, type RefusalSink } from './refusals.js';

export interface AppDeps {
  readonly store: Store;
  readonly sources: ReadonlyMap<string, Source>;
  readonly reconciler: Reconciler;
  readonly audit: AuditLog;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly clock: () => Date;
  readonly world: () => World;
  /** A verified delivery was stored: drain the inbox. */
  readonly onHookStored: () => void;
  /** Null when ready, else why not. */
  readonly notReady: () => Promise<string | null>;
  /** Targets, for the public CA certificate and CRL of those that issue certificates. */
  readonly targets?: ReadonlyMap<string, Target>;
  /** Per-client request limits (server.rateLimits); defaults when absent. */
  readonly rateLimits?: RateLimitsConfig;
  /** Reverse proxies whose X-Forwarded-For/-Proto are believed (server.trustProxy); none by default. */
  readonly trustProxy?: false | readonly string[];
  /** Verifies OIDC access tokens for the admin API (auth.oidc); without it only wgt_ API tokens are accepted. */
  readonly oidc?: OidcVerifier;
  /** The vendor portal under /portal (config portal); absent = no portal routes. */
  readonly portal?: Omit<PortalDeps, 'store' | 'world' | 'audit' | 'log' | 'clock' | 'loginLimiter' | 'refusals' | 'metrics'>;
  /** Break-glass requests (the config's breakGlass section decides whether they are allowed). */
  readonly breakGlass?: BreakGlassService;
  /** The vendor kill switch. */
  readonly suspensions?: VendorSuspensions;
  /** The security staff's pages under /staff (config staff); absent = no staff routes. */
  readonly staff?: Staff;
  /** Where refusals of unauthenticated callers are counted and audited once a window (src/api/refusals.ts); one of its own when absent. */
  readonly refusals?: RefusalSink;
  /** False when /metrics has a listener of its own (server.metrics): then the main one does not serve it. */
  readonly serveMetrics?: boolean;
}

const STATUS: Partial<Record<ErrorCode, number>> = {
  HOOK_SOURCE_UNKNOWN: 404,
  HOOK_HEADER_MISSING: 400,
  HOOK_SIGNATURE_INVALID: 401,
  HOOK_SIGNATURE_STALE: 401,
  HOOK_SIGNATURE_FUTURE: 401,
  HOOK_REPLAY: 409,
  HOOK_BODY_TOO_LARGE: 413,
  HOOK_BODY_INVALID: 400,
  HOOK_MAPPING_FAILED: 400,
  AUTH_MISSING: 401,
  AUTH_INVALID: 401,
  AUTH_FORBIDDEN: 403,
  AUTH_NO_PERSON: 403,
  AUTH_UNAVAILABLE: 503,
  NOT_FOUND: 404,
  BAD_REQUEST: 400,
  BODY_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  RATE_LIMITED: 429,
  STORE_CONFLICT: 409,
};

export type { Principal } from './person.js';

type Authed = Request & { token?: ApiToken; principal?: Principal; hookVerified?: boolean };

/** How the audit log names the caller: `token:<name>`, `oidc:<sub>`, or `anonymous` before authentication succeeded. */
export function actorOf(req: Request): string {
  const p = (req as Authed).principal;
  return p?.kind === 'token' ? `token:${p.token.name}` : p?.kind === 'oidc' ? `oidc:${p.sub}` : 'anonymous';
}

/** The role a signed-in person acted with (tokens have scopes, named by the token itself) and the person, for the audit record and the two-person rules. */
function contextOf(req: Request): ActorContext {
  const p = (req as Authed).principal;
  const person = personOf(p);
  return { ...(p?.kind === 'oidc' && p.role ? { role: p.role } : {}), ...(person ? { person } : {}), via: 'api' };
}

export function createApp(deps: AppDeps): express.Express {
  const d: AppDeps & { refusals: RefusalSink } = { ...deps, refusals: deps.refusals ?? defaultRefusals(deps) };
  const app = express();
  app.disable('x-powered-by');
  // Without named proxies, req.ip is the socket's peer: a client can't pick its own rate-limit key.
  app.set('trust proxy', d.trustProxy ? [...d.trustProxy] : false);
  app.use((req, res, next) => {
    res.set({
      'x-content-type-options': 'nosniff',
      'cache-control': 'no-store',
      'x-frame-options': 'DENY',
      'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
      'referrer-policy': 'no-referrer',
      'cross-origin-opener-policy': 'same-origin',
      // The CA certificate and CRL are public by design, for relying parties on any origin.
      'cross-origin-resource-policy': req.path.startsWith('/pki/') ? 'cross-origin' : 'same-origin',
      'permissions-policy': 'accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), microphone=(), payment=(), usb=()',
    });
    // Only over TLS (or from a trusted proxy that says it terminated TLS): browsers ignore it on plain HTTP anyway.
    if (req.secure) res.set('strict-transport-security', 'max-age=31536000; includeSubDomains');
    next();
  });
  const limits = createLimiters(d, d.rateLimits);

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    const why = await d.notReady();
    res.status(why ? 503 : 200).json(why ? { status: 'not ready', reason: why } : { status: 'ready' });
  });
  app.get('/openapi.json', (_req, res) => {
    res.json(OPENAPI);
  });
  if (d.serveMetrics !== false) {
    app.get('/metrics', async (_req, res) => {
      res.type(d.metrics.registry.contentType).send(await d.metrics.registry.metrics());
    });
  }

  // Public by design, like any CA's CRL distribution point: relying parties fetch them unauthenticated.
  const publisher = (id: unknown) => {
    const t = d.targets?.get(String(id));
    if (!t || !publishesCertificates(t)) throw new WogateError('NOT_FOUND', `no certificate target "${String(id)}"`);
    return t;
  };
  app.get('/pki/:targetId/crl', async (req, res) => {
    const crl = await publisher(req.params.targetId).crl();
    res.set('cache-control', 'public, max-age=60').type('application/pkix-crl').send(crl.der);
  });
  app.get('/pki/:targetId/crl.pem', async (req, res) => {
    const crl = await publisher(req.params.targetId).crl();
    res.set('cache-control', 'public, max-age=60').type('application/x-pem-file').send(crl.pem);
  });
  app.get('/pki/:targetId/ca.pem', async (req, res) => {
    // Read before any header is set: a refusal must go out as JSON, not as a cacheable PEM.
    const pem = await publisher(req.params.targetId).caCertificatePem();
    res.set('cache-control', 'public, max-age=3600').type('application/x-pem-file').send(pem);
  });

  // Limited before the body is read or a signature checked, so a flood costs little and audits once.
  app.use('/v1/hooks', limits.hooks);
  // Hooks: each source has its own size limit, so the raw body is read per source.
  const rawParsers = new Map<string, RequestHandler>();
  for (const s of d.sources.values()) rawParsers.set(s.id, express.raw({ type: () => true, limit: s.maxBodyBytes }));
  app.post('/v1/hooks/:sourceId', (req, res, next) => {
    const parse = rawParsers.get(String(req.params.sourceId));
    if (!parse) return next(new WogateError('HOOK_SOURCE_UNKNOWN', `no source "${String(req.params.sourceId)}" is configured`));
    parse(req, res, (err?: unknown) => {
      if (err && typeof err === 'object' && (err as { type?: string }).type === 'entity.too.large') {
        return next(new WogateError('HOOK_BODY_TOO_LARGE', `body is larger than the ${d.sources.get(String(req.params.sourceId))?.maxBodyBytes} bytes this source allows`));
      }
      next(err === undefined ? undefined : (clientError(err, true) ?? err));
    });
  }, async (req, res) => {
    const source = d.sources.get(String(req.params.sourceId)) as Source;
    const rawBody = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const now = d.clock();
    const delivery = source.verify({ headers: req.headers, rawBody, url: req.originalUrl }, now);
    // From here on the sender has proven it holds the source's secret: its refusals are audited one by one.
    (req as Authed).hookVerified = true;
    let payload: unknown;
    try {
      payload = JSON.parse(rawBody.toString('utf8'));
    } catch {
      throw new WogateError('HOOK_BODY_INVALID', 'body is not valid JSON');
    }
    // Read it now so that a payload wogate can't understand is refused to the sender instead of stored.
    source.parseEvent(payload, delivery);
    const stored = await d.store.recordHookEvent({ source: source.id, webhookId: delivery.webhookId, receivedAt: now, eventTime: delivery.eventTime, body: rawBody.toString('utf8') });
    if (stored.result === 'duplicate') throw new WogateError('HOOK_REPLAY', `webhook-id "${delivery.webhookId}" was already received`);
    d.metrics.hooks.inc({ source: source.id, outcome: 'accepted' });
    res.status(202).json({ accepted: true, webhookId: delivery.webhookId });
    d.onHookStored();
  });

  const v1 = express.Router();
  v1.use(limits.admin);
  v1.use(adminJsonBody());
  v1.use(authenticate(d));
  // Every /v1 route is declared through the route table (src/api/roles.ts), which supplies its guard.
  const route = (method: Method, path: string, handler: (req: Authed, res: Response) => Promise<void>) => {
    const rule = ruleFor(method, `/v1${path}`);
    if (rule.auth !== 'bearer') throw new WogateError('INTERNAL', `${method} /v1${path} is not a bearer route`);
    v1[method.toLowerCase() as Lowercase<Method>](path, guard(rule), handler as RequestHandler);
  };

  route('GET', '/grants', async (req, res) => {
    const filter: { -readonly [K in keyof GrantFilter]: GrantFilter[K] } = {};
    const state = req.query.state;
    if (typeof state === 'string') {
      const states = state.split(',');
      const bad = states.find((s) => !['pending', 'active', 'revoking', 'revoked'].includes(s));
      if (bad) throw new WogateError('BAD_REQUEST', `query "state": "${bad}" is not one of pending, active, revoking, revoked`);
      filter.states = states as Grant['state'][];
    }
    if (typeof req.query.order === 'string') filter.orderKey = req.query.order;
    if (typeof req.query.vendor === 'string') filter.vendorId = idOrAsSent(req.query.vendor) as string;
    res.json({ grants: await d.store.listGrants(filter) });
  });

  route('GET', '/grants/:id', async (req, res) => {
    const g = await d.store.getGrant(String(req.params.id));
    if (!g) throw new WogateError('NOT_FOUND', `no grant "${String(req.params.id)}"`);
    res.json({ grant: g });
  });

  route('POST', '/grants/:id/revoke', async (req, res) => {
    res.json(await revokeGrant(d, String(req.params.id), actorOf(req), reasonFrom(req.body), contextOf(req)));
  });

  route('GET', '/access/blocks', async (_req, res) => {
    res.json({ blocks: await accessBlocks(d) });
  });
  route('POST', '/access/revoke', async (req, res) => {
    res.json(await blockAccess(d, req.body, actorOf(req), contextOf(req)));
  });
  route('POST', '/access/:id/lift', async (req, res) => {
    res.json({ lifted: await liftAccess(d, String(req.params.id), actorOf(req), reasonFrom(req.body), contextOf(req)) });
  });

  route('GET', '/explain', async (req, res) => {
    const now = typeof req.query.at === 'string' ? new Date(req.query.at) : d.clock();
    if (Number.isNaN(now.getTime())) throw new WogateError('BAD_REQUEST', 'query "at" is not an ISO-8601 time');
    const ev = await explain(d, typeof req.query.order === 'string' ? req.query.order : undefined, now);
    res.json({ at: now.toISOString(), ...ev });
  });

  route('GET', '/audit/verify', async (_req, res) => {
    res.json(await d.audit.verify());
  });

  route('GET', '/vendors/suspended', async (_req, res) => {
    res.json({ suspended: suspendedVendors(d) });
  });
  route('POST', '/vendors/:id/suspend', async (req, res) => {
    // Answered after the pass, so the caller sees what the switch took away (revokes that failed keep retrying).
    res.json(await suspendVendor(d, idOrAsSent(String(req.params.id)) as string, actorOf(req), reasonFrom(req.body), contextOf(req)));
  });
  route('POST', '/vendors/:id/reinstate', async (req, res) => {
    const vendorId = idOrAsSent(String(req.params.id)) as string;
    await reinstateVendor(d, vendorId, actorOf(req), reasonFrom(req.body), contextOf(req));
    res.json({ reinstated: vendorId });
  });

  const breakGlass = () => {
    if (!d.breakGlass) throw new WogateError('NOT_FOUND', 'break-glass access is disabled on this daemon');
    return d.breakGlass;
  };
  route('GET', '/break-glass', async (_req, res) => {
    const now = d.clock();
    const requests = await breakGlass().list();
    res.json({ requests: requests.map((r) => ({ ...r, reviewOverdue: reviewOverdue(r, now) })) });
  });
  route('POST', '/break-glass', async (req, res) => {
    const r = await breakGlass().request(canonicalIds((req.body ?? {}) as BreakGlassInput), actorOf(req), contextOf(req));
    res.status(201).json({ request: r });
  });
  route('POST', '/break-glass/:id/approve', async (req, res) => {
    res.json({ request: await breakGlass().approve(String(req.params.id), actorOf(req), contextOf(req)) });
  });
  route('POST', '/break-glass/:id/close', async (req, res) => {
    res.json({ request: await breakGlass().close(String(req.params.id), actorOf(req), reasonFrom(req.body), contextOf(req)) });
  });

  route('GET', '/tokens', async (_req, res) => {
    res.json({ tokens: (await d.store.listTokens()).map(describeToken) });
  });
  route('POST', '/tokens/:id/revoke', async (req, res) => {
    const id = String(req.params.id);
    const reason = reasonFrom(req.body);
    if (!(await d.store.getToken(id))) throw new WogateError('NOT_FOUND', `no API token "${id.slice(0, 40)}"`);
    if (!(await d.store.revokeToken(id, d.clock()))) throw new WogateError('STORE_CONFLICT', `API token ${id.slice(0, 40)} is already revoked`);
    await d.audit.append({ actor: actorOf(req), action: 'token.revoked', subject: id, details: { reason, ...contextOf(req) } });
    res.json({ token: describeToken((await d.store.getToken(id)) as ApiToken) });
  });

  app.use('/v1', v1);
  // The pages count against the same per-address limit as the admin API (sign-in has its own, stricter one).
  if (d.portal) app.use('/portal', limits.admin, createPortalRouter({ ...d.portal, store: d.store, world: d.world, audit: d.audit, log: d.log, clock: d.clock, loginLimiter: limits.login, refusals: d.refusals, metrics: d.metrics }));
  if (d.staff) {
    const staff = createStaffRouter({ ...d.staff, store: d.store, audit: d.audit, log: d.log, clock: d.clock, loginLimiter: limits.login, refusals: d.refusals, metrics: d.metrics, reconciler: d.reconciler, world: d.world, ...(d.suspensions ? { suspensions: d.suspensions } : {}) });
    checkStaffPages(staff);
    app.use('/staff', limits.admin, staff);
  }
  checkRouteTable([{ prefix: '', router: app.router }, { prefix: '/v1', router: v1 }]);

  app.use((_req, _res, next) => next(new WogateError('NOT_FOUND', 'no such route')));
  app.use(errorHandler(d));
  return app;
}

const TOKEN_REFUSAL: Record<Extract<TokenCheck, { ok: false }>['reason'], string> = {
  'malformed token': 'malformed',
  'unknown token': 'unknown_token',
  'token revoked': 'revoked',
  'token expired': 'expired',
};

/**
 * A bearer shaped like wgt_… is a scoped API token; anything else is an OIDC access token. Refusals
 * carry a reason code for the audit record; no message ever quotes the presented token.
 */
function authenticate(d: AppDeps): RequestHandler {
  return async (req: Authed, _res, next) => {
    const h = req.headers.authorization;
    if (!h) throw new WogateError('AUTH_MISSING', 'an Authorization: Bearer <token> header is required', { reason: 'missing' });
    const m = /^Bearer +(\S+)$/i.exec(h);
    if (!m) throw new WogateError('AUTH_INVALID', 'Authorization header must be "Bearer <token>"', { reason: 'malformed' });
    const presented = m[1] as string;
    if (presented.startsWith('wgt_')) {
      const check = await checkToken(d.store, presented, d.clock());
      if (!check.ok) throw new WogateError('AUTH_INVALID', `token refused: ${check.reason}`, { reason: TOKEN_REFUSAL[check.reason] ?? 'invalid' });
      req.token = check.token;
      req.principal = { kind: 'token', token: check.token };
      recordTokenUse(d.store, check.token, d.clock(), (e) => d.log.warn('could not record a token\'s last use', { token: check.token.id, error: e instanceof Error ? e.message : String(e) }));
      return next();
    }
    if (!d.oidc) throw new WogateError('AUTH_INVALID', 'OIDC is not configured: only wgt_ API tokens are accepted', { reason: 'oidc_not_configured' });
    try {
      const id = await d.oidc.verify(presented);
      req.principal = { kind: 'oidc', sub: id.sub, role: id.role, person: id.person };
    } catch (e) {
      if (e instanceof OidcTokenError) throw new WogateError('AUTH_INVALID', e.message, { reason: e.reason });
      if (e instanceof OidcUnavailableError) {
        d.log.error('OIDC provider unavailable: admin API bearer tokens cannot be verified', { issuer: d.oidc.issuer, error: e.message });
        throw new WogateError('AUTH_UNAVAILABLE', 'the identity provider cannot be reached to verify the token; try again later', { reason: 'provider_unavailable' });
      }
      throw e;
    }
    next();
  };
}

/** The route's table entry decides: a token needs the entry's scope, a person its minimum role. */
function guard(rule: BearerRoute): RequestHandler & Guarded {
  const g: RequestHandler & Guarded = (req: Authed, _res, next) => {
    const p = req.principal;
    if (p?.kind === 'token') {
      if (hasScope(p.token, rule.scope)) return next();
      return next(new WogateError('AUTH_FORBIDDEN', `this route needs the "${rule.scope}" scope`, { reason: 'scope' }));
    }
    if (p?.kind !== 'oidc') return next(new WogateError('AUTH_MISSING', 'an Authorization: Bearer <token> header is required', { reason: 'missing' }));
    if (!p.role) return next(new WogateError('AUTH_FORBIDDEN', 'your token carries no value mapped to a wogate role (auth.oidc.roles)', { reason: 'no_role' }));
    if (roleAtLeast(p.role, rule.minRole)) return next();
    next(new WogateError('AUTH_FORBIDDEN', `this route needs the ${rule.minRole} role or higher; you have ${p.role}`, { reason: 'role' }));
  };
  g[GUARDS] = rule;
  return g;
}

/** Outside the daemon (tests building an app): an aggregator of the app's own, writing windows as they close. */
function defaultRefusals(d: AppDeps): RefusalSink {
  const r = new RefusalAggregator({ audit: d.audit, log: d.log, metrics: d.metrics, clock: d.clock });
  r.start();
  return r;
}

/** The wogate error a thrown value answers as: its own, a client error of express or body-parser, else INTERNAL (logged with its stack). */
function asWogateError(d: AppDeps, err: unknown, req: Request): WogateError {
  if (isWogateError(err)) return err;
  const client = clientError(err, req.path.startsWith('/v1/hooks/'));
  if (client) return client;
  d.log.error('request failed', { method: req.method, path: req.path, error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
  return new WogateError('INTERNAL', 'internal error');
}

function errorHandler(d: AppDeps & { refusals: RefusalSink }) {
  return async (err: unknown, req: Request, res: Response, _next: NextFunction): Promise<void> => {
    const e = asWogateError(d, err, req);
    const status = STATUS[e.code] ?? 500;
    const remote = req.ip ?? req.socket.remoteAddress ?? '?';
    const reason = typeof e.details?.reason === 'string' ? e.details.reason : undefined;
    const anonymous = (area: RefusalArea, sample: string) =>
      d.refusals.record({ area, remote, kind: reason ?? e.code, ...(reason ? { code: e.code } : {}), status, reason: sample, method: req.method, path: req.path });
    if (req.path.startsWith('/v1/hooks/')) {
      const source = String(req.path.split('/')[3] ?? '');
      d.metrics.hooks.inc({ source: d.sources.has(source) ? source : '(unknown)', outcome: e.code });
      // A replay verifies too, but proves only that the caller saw a delivery (a proxy log, a
      // capture): it is as anonymous as a bad signature, or one captured webhook appends a record
      // per resend for as long as its timestamp is fresh.
      if (!(req as Authed).hookVerified || e.code === 'HOOK_REPLAY') {
        anonymous('hook', `source ${source.slice(0, 64)}: ${e.message}`);
      } else {
        d.metrics.refused.inc({ area: 'hook', kind: e.code });
        d.log.warn('webhook refused', { source, status, code: e.code, error: e.message, remote: req.socket.remoteAddress });
        await d.audit
          .append({ actor: `remote:${req.socket.remoteAddress ?? '?'}`, action: 'hook.refused', subject: `source:${source.slice(0, 64)}`, details: { status, code: e.code, message: e.message, webhookId: String(req.headers['webhook-id'] ?? '').slice(0, 200) } })
          .catch(() => undefined);
      }
    } else if (status >= 500) {
      // Logged where it happened (INTERNAL with its stack, AUTH_UNAVAILABLE by authenticate).
      if (e.code === 'AUTH_UNAVAILABLE') anonymous('auth', e.message);
    } else if (actorOf(req) === 'anonymous') {
      // An unknown path or id tells nothing about anyone: logs and metrics, never the chain.
      if (e.code === 'NOT_FOUND') {
        d.metrics.refused.inc({ area: 'http', kind: e.code });
        d.log.debug('no such route', { method: req.method, path: req.path.slice(0, 200), remote });
      } else {
        anonymous(status === 401 || status === 403 ? 'auth' : 'http', e.message);
      }
    } else if (status === 401 || status === 403) {
      const rule = matchRoute(req.method, req.path);
      const details = { status, code: e.code, reason: String(e.details?.reason ?? 'unspecified'), route: rule ? `${rule.method} ${rule.path}` : null, message: e.message, remote };
      d.metrics.refused.inc({ area: 'auth', kind: reason ?? e.code });
      d.log.warn('admin API request refused', { actor: actorOf(req), ...details, path: req.path.slice(0, 200) });
      await d.audit.append({ actor: actorOf(req), action: 'auth.refused', subject: `${req.method} ${req.path.slice(0, 200)}`, details }).catch(() => undefined);
    } else {
      // An authenticated caller's bad input or unknown id: answered and counted, as before not chained.
      d.metrics.refused.inc({ area: 'http', kind: e.code });
    }
    // RFC 6750 §3: tell the client which kind of bearer problem it has (never what it sent).
    if (status === 401 && !req.path.startsWith('/v1/hooks/')) res.set('www-authenticate', `Bearer realm="wogate"${e.code === 'AUTH_MISSING' ? '' : ', error="invalid_token"'}`);
    if (status === 403 && !req.path.startsWith('/v1/hooks/')) res.set('www-authenticate', 'Bearer realm="wogate", error="insufficient_scope"');
    if (!res.headersSent) res.status(status).json({ error: { code: e.code, message: e.message } });
  };
}

/**
 * An operator's ids (break-glass, the kill switch, grant filters) in the canonical form the register
 * holds (src/domain/ids.ts), so `PLC-CL2-01` names the asset whatever its case. What can't be an
 * id is left as sent, for the request's own checks to refuse naming the field.
 */
function canonicalIds(body: BreakGlassInput): BreakGlassInput {
  const list = (v: unknown): unknown => (Array.isArray(v) ? v.map(idOrAsSent) : v);
  return { ...body, vendorId: idOrAsSent(body.vendorId), technicianIds: list(body.technicianIds), assetIds: list(body.assetIds) };
}

function idOrAsSent(v: unknown): unknown {
  const r = tryCanonicalId(v, 'id');
  return r.ok ? r.id : v;
}
