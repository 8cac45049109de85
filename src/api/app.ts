import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { evaluate, isWogateError, WogateError, type ErrorCode, type Grant } from '../domain/index.js';
import type { AuditLog } from '../audit/audit.js';
import type { Reconciler, World } from '../engine/reconciler.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { Source } from '../sources/source.js';
import type { ApiToken, GrantFilter, Store } from '../store/store.js';
import { publishesCertificates, type Target } from '../targets/target.js';
import { OPENAPI } from './openapi.js';
import { checkToken, hasScope, type Scope } from './tokens.js';

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
  NOT_FOUND: 404,
  BAD_REQUEST: 400,
};

type Authed = Request & { token?: ApiToken };

export function createApp(d: AppDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', false);
  app.use((_req, res, next) => {
    res.set({ 'x-content-type-options': 'nosniff', 'cache-control': 'no-store', 'x-frame-options': 'DENY', 'content-security-policy': "default-src 'none'" });
    next();
  });

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
  app.get('/metrics', async (_req, res) => {
    res.type(d.metrics.registry.contentType).send(await d.metrics.registry.metrics());
  });

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
    res.set('cache-control', 'public, max-age=3600').type('application/x-pem-file').send(await publisher(req.params.targetId).caCertificatePem());
  });

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
      next(err);
    });
  }, async (req, res) => {
    const source = d.sources.get(String(req.params.sourceId)) as Source;
    const rawBody = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const now = d.clock();
    const delivery = source.verify({ headers: req.headers, rawBody, url: req.originalUrl }, now);
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
  v1.use(express.json({ limit: '16kb' }));
  v1.use(authenticate(d));

  v1.get('/grants', requireScope('grants:read'), async (req, res) => {
    const filter: { -readonly [K in keyof GrantFilter]: GrantFilter[K] } = {};
    const state = req.query.state;
    if (typeof state === 'string') {
      const states = state.split(',');
      const bad = states.find((s) => !['pending', 'active', 'revoking', 'revoked'].includes(s));
      if (bad) throw new WogateError('BAD_REQUEST', `query "state": "${bad}" is not one of pending, active, revoking, revoked`);
      filter.states = states as Grant['state'][];
    }
    if (typeof req.query.order === 'string') filter.orderKey = req.query.order;
    if (typeof req.query.vendor === 'string') filter.vendorId = req.query.vendor;
    res.json({ grants: await d.store.listGrants(filter) });
  });

  v1.get('/grants/:id', requireScope('grants:read'), async (req, res) => {
    const g = await d.store.getGrant(String(req.params.id));
    if (!g) throw new WogateError('NOT_FOUND', `no grant "${String(req.params.id)}"`);
    res.json({ grant: g });
  });

  v1.post('/grants/:id/revoke', requireScope('grants:revoke'), async (req: Authed, res) => {
    const body = (req.body ?? {}) as { reason?: unknown };
    if (typeof body.reason !== 'string' || body.reason.trim().length < 3 || body.reason.length > 500) {
      throw new WogateError('BAD_REQUEST', 'body field "reason" is required: a string of 3 to 500 characters saying why');
    }
    const actor = `token:${req.token?.name ?? '?'}`;
    const g = await d.reconciler.revokeNow(String(req.params.id), actor, body.reason.trim());
    if (!g) throw new WogateError('NOT_FOUND', `no grant "${String(req.params.id)}"`);
    res.json({ grant: g });
  });

  v1.get('/explain', requireScope('explain'), async (req, res) => {
    const now = typeof req.query.at === 'string' ? new Date(req.query.at) : d.clock();
    if (Number.isNaN(now.getTime())) throw new WogateError('BAD_REQUEST', 'query "at" is not an ISO-8601 time');
    let ev;
    if (typeof req.query.order === 'string') {
      const [source, ...rest] = req.query.order.split('/');
      const order = await d.store.getOrder(source ?? '', rest.join('/'));
      if (!order) throw new WogateError('NOT_FOUND', `no work order "${req.query.order}" (expected <source>/<id>)`);
      const { policySet, register } = d.world();
      ev = evaluate([order], register, policySet, now);
    } else {
      ev = await d.reconciler.evaluation(now);
    }
    res.json({ at: now.toISOString(), ...ev });
  });

  v1.get('/audit/verify', requireScope('audit:read'), async (_req, res) => {
    res.json(await d.audit.verify());
  });

  app.use('/v1', v1);

  app.use((_req, _res, next) => next(new WogateError('NOT_FOUND', 'no such route')));
  app.use(errorHandler(d));
  return app;
}

function authenticate(d: AppDeps): RequestHandler {
  return async (req: Authed, _res, next) => {
    const h = req.headers.authorization;
    if (!h) return next(new WogateError('AUTH_MISSING', 'an Authorization: Bearer <token> header is required'));
    const m = /^Bearer (\S+)$/.exec(h);
    if (!m) return next(new WogateError('AUTH_INVALID', 'Authorization header must be "Bearer <token>"'));
    const check = await checkToken(d.store, m[1] as string, d.clock());
    if (!check.ok) return next(new WogateError('AUTH_INVALID', `token refused: ${check.reason}`));
    req.token = check.token;
    next();
  };
}

function requireScope(scope: Scope): RequestHandler {
  return (req: Authed, _res, next) => {
    if (req.token && hasScope(req.token, scope)) return next();
    next(new WogateError('AUTH_FORBIDDEN', `this route needs the "${scope}" scope`));
  };
}

function errorHandler(d: AppDeps) {
  return async (err: unknown, req: Request, res: Response, _next: NextFunction): Promise<void> => {
    let e: WogateError;
    if (isWogateError(err)) e = err;
    else if (err && typeof err === 'object' && (err as { type?: string }).type === 'entity.too.large') e = new WogateError('BAD_REQUEST', 'request body too large');
    else if (err && typeof err === 'object' && (err as { type?: string }).type === 'entity.parse.failed') e = new WogateError('BAD_REQUEST', 'request body is not valid JSON');
    else {
      d.log.error('request failed', { method: req.method, path: req.path, error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
      e = new WogateError('INTERNAL', 'internal error');
    }
    const status = STATUS[e.code] ?? 500;
    if (req.path.startsWith('/v1/hooks/')) {
      const source = String(req.path.split('/')[3] ?? '');
      d.metrics.hooks.inc({ source: d.sources.has(source) ? source : '(unknown)', outcome: e.code });
      d.log.warn('webhook refused', { source, status, code: e.code, error: e.message, remote: req.socket.remoteAddress });
      await d.audit
        .append({ actor: `remote:${req.socket.remoteAddress ?? '?'}`, action: 'hook.refused', subject: `source:${source.slice(0, 64)}`, details: { status, code: e.code, message: e.message, webhookId: String(req.headers['webhook-id'] ?? '').slice(0, 200) } })
        .catch(() => undefined);
    } else if (status === 401 || status === 403) {
      await d.audit
        .append({ actor: `remote:${req.socket.remoteAddress ?? '?'}`, action: 'api.refused', subject: `${req.method} ${req.path.slice(0, 200)}`, details: { status, code: e.code, message: e.message } })
        .catch(() => undefined);
    }
    if (!res.headersSent) res.status(status).json({ error: { code: e.code, message: e.message } });
  };
}
