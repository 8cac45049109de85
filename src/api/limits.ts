import express, { type RequestHandler } from 'express';
import { rateLimit, type AugmentedRequest } from 'express-rate-limit';
import type { AuditLog } from '../audit/audit.js';
import type { RateLimitsConfig } from '../config/config.js';
import { WogateError } from '../domain/index.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';

/** What each limiter guards; also the `route` label of wogate_rate_limited_total. */
export type LimitedRoute = 'hooks' | 'admin' | 'login';

export const DEFAULT_RATE_LIMITS: RateLimitsConfig = {
  hooks: { perMinute: 600 },
  admin: { perMinute: 120 },
  login: { perMinute: 10 },
};

/** The admin API reads small JSON documents (a revoke reason); anything larger is refused unread. */
export const ADMIN_BODY_LIMIT_BYTES = 16 * 1024;

export interface LimiterDeps {
  readonly audit: AuditLog;
  readonly log: Logger;
  readonly metrics: Metrics;
}

export interface Limiters {
  /** POST /v1/hooks/*: per client address, before the body is read or the signature checked. */
  readonly hooks: RequestHandler;
  /** The rest of /v1: before authentication, so token guessing is limited too. */
  readonly admin: RequestHandler;
  /** The vendor portal's sign-in routes. */
  readonly login: RequestHandler;
}

const WINDOW_MS = 60_000;

/** One limiter per guarded route, each with its own memory store (counts are per process). */
export function createLimiters(d: LimiterDeps, limits: RateLimitsConfig = DEFAULT_RATE_LIMITS): Limiters {
  return {
    hooks: rateLimiter('hooks', limits.hooks.perMinute, d),
    admin: rateLimiter('admin', limits.admin.perMinute, d),
    login: loginLimiter(d, limits.login.perMinute),
  };
}

/** For the vendor portal's sign-in and callback routes. */
export function loginLimiter(d: LimiterDeps, perMinute: number = DEFAULT_RATE_LIMITS.login.perMinute): RequestHandler {
  return rateLimiter('login', perMinute, d);
}

/**
 * At most `perMinute` requests a minute from one client address (an IPv6 client by its /56), then
 * 429 with Retry-After. Every refusal is counted; only the first of each window per address is
 * logged and audited, so a flood cannot flood the audit log.
 */
export function rateLimiter(route: LimitedRoute, perMinute: number, d: LimiterDeps): RequestHandler {
  return rateLimit({
    windowMs: WINDOW_MS,
    limit: perMinute,
    // Retry-After is only set when some rate-limit headers are; draft-7 is the single RateLimit header.
    standardHeaders: 'draft-7',
    legacyHeaders: false,
    // X-Forwarded-For and Forwarded are ignored on purpose unless server.trustProxy names the proxy.
    validate: { xForwardedForHeader: false, forwardedHeader: false },
    logger: {
      warn: (e: unknown) => d.log.warn('rate limiter', { route, warning: e instanceof Error ? e.message : String(e) }),
      error: (e: unknown) => d.log.error('rate limiter', { route, error: e instanceof Error ? e.message : String(e) }),
    },
    handler: (req, res) => {
      const info = (req as AugmentedRequest)['rateLimit'];
      const remote = req.ip ?? req.socket.remoteAddress ?? '?';
      d.metrics.rateLimited.inc({ route });
      const retryAfter = Number(res.getHeader('retry-after')) || WINDOW_MS / 1000;
      const send = () => {
        if (!res.headersSent) {
          res.status(429).json({ error: { code: 'RATE_LIMITED', message: `more than ${perMinute} ${route} requests a minute from this address; retry after ${retryAfter} s` } });
        }
      };
      // The store counts atomically, so exactly one request per window and client is the first one over.
      if (info?.used !== perMinute + 1) return send();
      d.log.warn('rate limit reached', { route, remote, limit: perMinute, method: req.method, path: req.path.slice(0, 200) });
      void d.audit
        .append({ actor: `remote:${remote}`, action: 'api.rate_limited', subject: route, details: { limitPerMinute: perMinute, method: req.method, path: req.path.slice(0, 200), retryAfterSeconds: retryAfter } })
        .catch((e: unknown) => d.log.error('audit of a rate limit failed', { route, error: e instanceof Error ? e.message : String(e) }))
        .then(send);
    },
  });
}

/** express.json with the admin API's size limit; a body over it is 413 BODY_TOO_LARGE. */
export function adminJsonBody(limitBytes: number = ADMIN_BODY_LIMIT_BYTES): RequestHandler {
  const parse = express.json({ limit: limitBytes });
  return (req, res, next) => {
    parse(req, res, (err?: unknown) => {
      if (err && typeof err === 'object' && (err as { type?: string }).type === 'entity.too.large') {
        return next(new WogateError('BODY_TOO_LARGE', `request body is larger than the ${limitBytes} bytes this API accepts`));
      }
      next(err);
    });
  };
}
