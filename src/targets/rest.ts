// The HTTP client every vendor adapter (FortiGate, PAN-OS, CyberArk, BeyondTrust, Lenel, ...) calls
// its system through: one deadline per call, a size limit, no redirects or proxies, and failures
// classified the same way everywhere (429/5xx/timeouts retryable, other refusals not), with
// messages that name the method and path but never a query string, a credential or a session token.
import http from 'node:http';
import https from 'node:https';
import type { AxiosInstance, AxiosResponse } from 'axios';
import { checkHttpUrl, excerpt, parseRetryAfter, pathOf, safeAxios, transportFailure } from '../http-safety.js';
import { TargetError, type CallContext } from './target.js';

export interface RestClientOptions {
  readonly targetId: string;
  /** http(s) origin plus optional path prefix; no query, fragment or credentials. */
  readonly baseUrl: string;
  /** Where baseUrl came from, for the config error; default "baseUrl". */
  readonly where?: string;
  /** Whole-call deadline; default 10000. */
  readonly timeoutMs?: number;
  /** Default 4 MiB. */
  readonly maxResponseBytes?: number;
  /** PEM CA bundle to trust for an appliance with a private certificate, instead of the system store. */
  readonly caPem?: string;
  /** Values never to show in a message (configured credentials); session tokens are added as they are learned. */
  readonly secrets?: readonly string[];
}

export interface RestRequest {
  /** What the call is for, in errors and logs: provision, revoke, list, login... */
  readonly op: string;
  readonly method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** Appended to baseUrl; path segments from data must already be encoded (see `seg`). */
  readonly path: string;
  readonly query?: Readonly<Record<string, string>>;
  readonly headers?: Readonly<Record<string, string>>;
  /** Sent as application/json. */
  readonly json?: unknown;
  /** Sent as application/x-www-form-urlencoded. */
  readonly form?: Readonly<Record<string, string>>;
  /** Statuses besides 2xx that the caller handles itself (404 on a revoke, 401 to log in again). */
  readonly accept?: readonly number[];
}

export interface RestResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, unknown>>;
  readonly text: string;
  /** "POST /api/x", for messages. */
  readonly what: string;
  readonly op: string;
}

/** A path segment from data (an object name, an account), encoded so it can't add segments or a query. */
export function seg(value: string | number): string {
  return encodeURIComponent(String(value));
}

export class RestClient {
  readonly targetId: string;
  readonly timeoutMs: number;
  private readonly base: string;
  private readonly client: AxiosInstance;
  private readonly agents: { http: http.Agent; https: https.Agent };
  private readonly secrets: string[];

  constructor(o: RestClientOptions) {
    this.targetId = o.targetId;
    this.base = checkHttpUrl(o.baseUrl, `target ${o.targetId}: ${o.where ?? 'baseUrl'}`).toString().replace(/\/+$/, '');
    this.timeoutMs = o.timeoutMs ?? 10_000;
    this.secrets = (o.secrets ?? []).filter((s) => s.trim() !== '');
    this.agents = {
      http: new http.Agent({ keepAlive: true, maxSockets: 8 }),
      https: new https.Agent({ keepAlive: true, maxSockets: 8, minVersion: 'TLSv1.2', ...(o.caPem ? { ca: o.caPem } : {}) }),
    };
    this.client = safeAxios({ timeoutMs: this.timeoutMs, maxResponseBytes: o.maxResponseBytes ?? 4 * 1024 * 1024, agents: this.agents });
  }

  /** Something learned at run time (a session token) that must never appear in a message either. */
  addSecret(value: string): void {
    if (value.trim() !== '' && !this.secrets.includes(value)) this.secrets.push(value);
  }

  /** Sends the request; answers that are not 2xx (or in `accept`) become a classified TargetError. */
  async request(req: RestRequest, ctx: CallContext): Promise<RestResponse> {
    const url = this.base + req.path;
    const what = `${req.method} ${pathOf(url)}`;
    const headers: Record<string, string> = { accept: 'application/json', ...req.headers };
    let data: string | undefined;
    if (req.json !== undefined) {
      data = JSON.stringify(req.json);
      headers['content-type'] = 'application/json';
    } else if (req.form !== undefined) {
      data = new URLSearchParams(req.form as Record<string, string>).toString();
      headers['content-type'] = 'application/x-www-form-urlencoded';
    }
    // axios' own timeout is per socket phase; this deadline bounds the whole call, trickled body included.
    const deadline = AbortSignal.timeout(this.timeoutMs);
    const signal = ctx.signal ? AbortSignal.any([ctx.signal, deadline]) : deadline;
    const started = Date.now();
    let res: AxiosResponse<string>;
    try {
      res = await this.client.request<string>({ method: req.method, url, params: req.query, headers, data, signal });
    } catch (e) {
      const f = transportFailure(e, deadline.aborted, this.timeoutMs);
      throw new TargetError(this.targetId, `${what}: ${f.problem}`, true, { op: req.op, path: pathOf(url), ...f.details, ...(f.tooLarge ? { code: 'TARGET_RESPONSE_INVALID' } : {}) });
    }
    ctx.log.debug('target call', { target: this.targetId, op: req.op, call: what, status: res.status, ms: Date.now() - started });
    const out: RestResponse = { status: res.status, headers: res.headers as Record<string, unknown>, text: typeof res.data === 'string' ? res.data : '', what, op: req.op };
    if ((res.status >= 200 && res.status < 300) || req.accept?.includes(res.status)) return out;
    throw this.statusError(out, ctx.now);
  }

  /** The answer as JSON, or a TARGET_RESPONSE_INVALID error (retryable: a proxy's error page is usually passing). */
  json(res: RestResponse, expected = 'JSON'): unknown {
    try {
      return JSON.parse(res.text);
    } catch {
      throw this.invalid(res, `expected ${expected}, got ${res.text.trim() === '' ? 'an empty body' : 'something that is not JSON'}`);
    }
  }

  /** An answer of an unexpected shape: the grant stays retrying with this reason. */
  invalid(res: RestResponse, what: string): TargetError {
    return new TargetError(this.targetId, `${res.what} answered ${res.status}: ${what}; body: ${this.excerpt(res.text)}`, true, {
      code: 'TARGET_RESPONSE_INVALID', op: res.op, status: res.status,
    });
  }

  /** A refusal carried inside a 2xx (PAN-OS `status="error"`, FortiGate `"status":"error"`). */
  refused(res: RestResponse, what: string, retryable: boolean, details: Record<string, unknown> = {}): TargetError {
    return new TargetError(this.targetId, `${res.what} answered ${res.status} with an error: ${this.redact(what)}`, retryable, { op: res.op, status: res.status, ...details });
  }

  /** Text from an answer, cut short, control characters blanked, every known secret replaced. */
  excerpt(text: string): string {
    return excerpt(text, this.secrets);
  }

  redact(text: string): string {
    let out = text;
    for (const s of this.secrets) out = out.split(s).join('[redacted]');
    return out;
  }

  async close(): Promise<void> {
    this.agents.http.destroy();
    this.agents.https.destroy();
  }

  private statusError(res: RestResponse, now: Date): TargetError {
    const s = res.status;
    const retryable = s === 408 || s === 429 || s >= 500;
    const retryAfterMs = s === 429 || s === 503 ? (parseRetryAfter(res.headers['retry-after'], now) ?? (s === 429 ? 1_000 : undefined)) : undefined;
    const hint = s >= 300 && s < 400 ? ' (redirects are not followed)' : '';
    return new TargetError(this.targetId, `${res.what} answered ${s}${hint}: ${this.excerpt(res.text)}`, retryable, {
      op: res.op, status: s, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
    });
  }
}

/**
 * A login session shared by concurrent calls: one login at a time, and a call refused with 401
 * (the session expired or was killed on the appliance) logs in again once and is retried.
 */
export class Session {
  private token: string | undefined;
  private pending: Promise<string> | undefined;

  constructor(
    private readonly client: RestClient,
    private readonly login: (ctx: CallContext) => Promise<string>,
  ) {}

  async get(ctx: CallContext): Promise<string> {
    if (this.token !== undefined) return this.token;
    this.pending ??= this.login(ctx)
      .then((t) => {
        this.client.addSecret(t);
        this.token = t;
        return t;
      })
      .finally(() => {
        this.pending = undefined;
      });
    return this.pending;
  }

  /** Forget the token (logged off, or refused); the next call logs in again. */
  clear(): string | undefined {
    const t = this.token;
    this.token = undefined;
    return t;
  }

  /** Runs `call` with the token; on 401 logs in once more and runs it again. */
  async with(ctx: CallContext, call: (token: string) => Promise<RestResponse>): Promise<RestResponse> {
    const first = await this.get(ctx);
    const res = await call(first);
    if (res.status !== 401) return res;
    if (this.token === first) this.token = undefined;
    const again = await call(await this.get(ctx));
    if (again.status === 401) throw new TargetError(this.client.targetId, `${again.what} answered 401 right after a fresh login: the service account is refused`, false, { op: again.op, status: 401 });
    return again;
  }
}
