import http from 'node:http';
import https from 'node:https';
import type { AxiosInstance, AxiosResponse } from 'axios';
import { WogateError } from '../domain/errors.js';
import { SourceError, type CallContext } from './source.js';
import { checkHttpUrl, excerpt, parseRetryAfter, pathOf, safeAxios, transportFailure } from '../http-safety.js';

/** How wogate signs in to S/4HANA: a communication user (Basic) or OAuth 2.0 client credentials. */
export type SapAuth =
  | { readonly type: 'basic'; readonly username: string; readonly password: string }
  | {
      readonly type: 'oauth2';
      /** Token endpoint (e.g. the XSUAA or the S/4HANA /sap/bc/sec/oauth2/token URL); may be another host than baseUrl. */
      readonly tokenUrl: string;
      readonly clientId: string;
      readonly clientSecret: string;
      readonly scope?: string;
    };

export interface SapHttpOptions {
  readonly sourceId: string;
  /** http(s) origin, optionally with a path prefix; no query. Credentials are only ever sent here (and to tokenUrl). */
  readonly baseUrl: string;
  readonly auth: SapAuth;
  /** SAP API Business Hub sandbox key, sent as the APIKey header. */
  readonly apiKey?: string;
  /** Appended as sap-client=<client> to every call. */
  readonly sapClient?: string;
  readonly timeoutMs?: number;
  readonly maxResponseBytes?: number;
  /** Service whose root answers the CSRF fetch, e.g. /sap/opu/odata/sap/API_MAINTENANCEORDER. */
  readonly csrfServicePath: string;
}

export interface SapResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, unknown>>;
  /** Parsed JSON; undefined for an empty body. */
  readonly body: unknown;
  readonly path: string;
}

type Method = 'GET' | 'POST' | 'PATCH';

const TOKEN_EARLY_MS = 30_000;
const HEADER_UNSAFE = /[\r\n\0]/;

/** SAP Gateway's error body: {"error":{"code":"…","message":{"value":"…"}}}; the code and text, if it is one. */
function odataError(data: string, secrets: readonly string[]): string | undefined {
  try {
    const e = (JSON.parse(data) as { error?: { code?: unknown; message?: { value?: unknown } | unknown } }).error;
    if (!e || typeof e !== 'object') return undefined;
    const msg = typeof e.message === 'object' && e.message !== null ? (e.message as { value?: unknown }).value : e.message;
    const parts = [typeof e.code === 'string' ? e.code : undefined, typeof msg === 'string' ? msg : undefined].filter((p) => p !== undefined);
    return parts.length > 0 ? excerpt(parts.join(': '), secrets) : undefined;
  } catch {
    return undefined;
  }
}

function headerText(v: unknown): string | undefined {
  return typeof v === 'string' ? v : Array.isArray(v) && typeof v[0] === 'string' ? v[0] : undefined;
}

/**
 * The S/4HANA OData V2 client: authentication (Basic, or OAuth 2.0 client credentials with the
 * token cached until shortly before it expires), the CSRF token dance for writes, bounded answers,
 * and errors that name the call but never its query string or headers.
 */
export class SapHttp {
  readonly origin: string;
  private readonly prefix: string;
  private readonly timeoutMs: number;
  private readonly client: AxiosInstance;
  private readonly agents = { http: new http.Agent({ keepAlive: true }), https: new https.Agent({ keepAlive: true }) };
  private token: { value: string; expiresAt: number } | undefined;
  private csrf: { token: string; cookie: string } | undefined;
  /** Blanked out of any answer quoted in an error (a gateway error page may echo request headers). */
  private readonly secrets: readonly string[];

  constructor(private readonly o: SapHttpOptions) {
    const where = `source ${o.sourceId}`;
    const base = checkHttpUrl(o.baseUrl, `${where}: baseUrl`);
    this.origin = base.origin;
    this.prefix = base.pathname.replace(/\/+$/, '');
    if (o.auth.type === 'oauth2') checkHttpUrl(o.auth.tokenUrl, `${where}: auth.tokenUrl`);
    if (o.auth.type === 'basic' && (o.auth.username === '' || o.auth.username.includes(':'))) {
      throw new WogateError('CONFIG_INVALID', `${where}: auth.username must be non-empty and without ":"`);
    }
    for (const [name, v] of [['apiKey', o.apiKey], ['sapClient', o.sapClient]] as const) {
      // Say which setting, never what it holds: it may be a secret.
      if (v !== undefined && (v === '' || HEADER_UNSAFE.test(v))) throw new WogateError('CONFIG_INVALID', `${where}: ${name} is empty or contains CR, LF or NUL (value not shown)`);
    }
    this.timeoutMs = o.timeoutMs ?? 15_000;
    if (!(this.timeoutMs > 0)) throw new WogateError('CONFIG_INVALID', `${where}: timeoutMs must be positive`);
    this.client = safeAxios({ timeoutMs: this.timeoutMs, maxResponseBytes: o.maxResponseBytes ?? 8 * 1024 * 1024, agents: this.agents });
    const a = o.auth;
    this.secrets = [
      ...(a.type === 'basic' ? [a.password, Buffer.from(`${a.username}:${a.password}`, 'utf8').toString('base64')] : [a.clientSecret]),
      ...(o.apiKey !== undefined ? [o.apiKey] : []),
    ];
  }

  /** A path under baseUrl's prefix, e.g. /sap/opu/odata/sap/API_MAINTENANCEORDER/MaintenanceOrder. */
  url(path: string, query: Readonly<Record<string, string>> = {}): string {
    const q = Object.entries({ ...query, ...(this.o.sapClient !== undefined ? { 'sap-client': this.o.sapClient } : {}) })
      .map(([k, v]) => `${k}=${encodeURIComponent(v)}`)
      .join('&');
    return `${this.origin}${this.prefix}${path}${q ? `?${q}` : ''}`;
  }

  /**
   * A server-given next link (d.__next) rebased onto the collection being read: only its query
   * ($skiptoken, ...) is taken. Gateways behind a web dispatcher often write their internal host
   * into the link, and credentials must never follow a link to wherever it points.
   */
  nextPage(next: string, current: string): string | undefined {
    let n: URL;
    try {
      n = new URL(next, current);
    } catch {
      return undefined;
    }
    if (n.search === '' || HEADER_UNSAFE.test(n.search)) return undefined;
    const c = new URL(current);
    const client = this.o.sapClient !== undefined && !/[?&]sap-client=/.test(n.search) ? `&sap-client=${encodeURIComponent(this.o.sapClient)}` : '';
    return `${c.origin}${c.pathname}${n.search}${client}`;
  }

  async get(url: string, ctx: CallContext, ok: readonly number[] = [200]): Promise<SapResponse> {
    return this.json('GET', url, await this.call('GET', url, {}, undefined, ctx), ok, ctx);
  }

  /** POST/PATCH with the CSRF token (fetched on first use, refetched once when SAP answers 403 "Required"). */
  async write(method: 'POST' | 'PATCH', url: string, body: unknown, ctx: CallContext, ok: readonly number[], extra: Readonly<Record<string, string>> = {}): Promise<SapResponse> {
    return this.json(method, url, await this.withCsrf(method, url, body, ctx, extra), ok, ctx);
  }

  /**
   * POST that creates an entity (201). A 2xx means it exists: an answer that can't be read is then
   * not retryable, because a retry would create a second one.
   */
  async create(url: string, body: unknown, ctx: CallContext): Promise<SapResponse> {
    return this.json('POST', url, await this.withCsrf('POST', url, body, ctx, {}), [201, 200], ctx, false);
  }

  private async withCsrf(method: 'POST' | 'PATCH', url: string, body: unknown, ctx: CallContext, extra: Readonly<Record<string, string>>): Promise<AxiosResponse<string>> {
    const data = JSON.stringify(body);
    for (let attempt = 0; ; attempt++) {
      const csrf = this.csrf ?? (this.csrf = await this.fetchCsrf(ctx));
      const res = await this.call(method, url, { 'content-type': 'application/json', 'x-csrf-token': csrf.token, ...(csrf.cookie ? { cookie: csrf.cookie } : {}), ...extra }, data, ctx);
      if (res.status === 403 && headerText(res.headers['x-csrf-token'])?.toLowerCase() === 'required' && attempt === 0) {
        // The token is bound to a session that ended (timeout, restart): fetch a new one and try once more.
        this.csrf = undefined;
        continue;
      }
      return res;
    }
  }

  async close(): Promise<void> {
    this.agents.http.destroy();
    this.agents.https.destroy();
  }

  /** GET the service root with `x-csrf-token: fetch`; keep the token and the session cookies it is bound to. */
  private async fetchCsrf(ctx: CallContext): Promise<{ token: string; cookie: string }> {
    const url = this.url(`${this.o.csrfServicePath}/`);
    const res = await this.call('GET', url, { 'x-csrf-token': 'fetch' }, undefined, ctx);
    if (res.status !== 200) throw this.statusError('GET', url, res, ctx.now);
    const token = headerText(res.headers['x-csrf-token']);
    if (!token || token.toLowerCase() === 'required' || HEADER_UNSAFE.test(token)) {
      throw this.invalid('GET', url, res, 'expected an x-csrf-token header in the answer to "x-csrf-token: fetch"');
    }
    const set = res.headers['set-cookie'];
    const cookies = (Array.isArray(set) ? set : typeof set === 'string' ? [set] : [])
      .map((c: unknown) => (typeof c === 'string' ? c.split(';', 1)[0]?.trim() : undefined))
      .filter((c): c is string => c !== undefined && c.includes('=') && !HEADER_UNSAFE.test(c));
    return { token, cookie: cookies.join('; ') };
  }

  private async authHeaders(ctx: CallContext, fresh: boolean): Promise<Record<string, string>> {
    const h: Record<string, string> = {};
    if (this.o.apiKey !== undefined) h.APIKey = this.o.apiKey;
    const a = this.o.auth;
    if (a.type === 'basic') {
      h.authorization = `Basic ${Buffer.from(`${a.username}:${a.password}`, 'utf8').toString('base64')}`;
    } else {
      h.authorization = `Bearer ${await this.accessToken(ctx, fresh)}`;
    }
    return h;
  }

  private async accessToken(ctx: CallContext, fresh: boolean): Promise<string> {
    const a = this.o.auth;
    if (a.type !== 'oauth2') throw new WogateError('INTERNAL', 'no OAuth configuration');
    if (!fresh && this.token && this.token.expiresAt > ctx.now.getTime()) return this.token.value;
    // Client credentials in the form body (RFC 6749 2.3.1): no doubt about how ":" or "|" in an XSUAA client id is encoded.
    const form = new URLSearchParams({
      grant_type: 'client_credentials', client_id: a.clientId, client_secret: a.clientSecret, ...(a.scope !== undefined ? { scope: a.scope } : {}),
    }).toString();
    const res = await this.send('POST', a.tokenUrl, { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' }, form, ctx);
    if (res.status !== 200) throw this.statusError('POST', a.tokenUrl, res, ctx.now);
    let body: { access_token?: unknown; expires_in?: unknown };
    try {
      body = JSON.parse(res.data) as typeof body;
    } catch {
      throw this.invalid('POST', a.tokenUrl, res, 'expected a JSON token response');
    }
    if (typeof body.access_token !== 'string' || body.access_token === '' || HEADER_UNSAFE.test(body.access_token)) {
      throw this.invalid('POST', a.tokenUrl, res, 'expected access_token in the token response');
    }
    const seconds = typeof body.expires_in === 'number' ? body.expires_in : Number(body.expires_in);
    // Without a lifetime the token is used for this call only.
    const lifetimeMs = Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : 0;
    this.token = { value: body.access_token, expiresAt: ctx.now.getTime() + Math.max(0, lifetimeMs - TOKEN_EARLY_MS) };
    return body.access_token;
  }

  /** One authenticated call; with OAuth a 401 is answered by one retry with a new token (it may have been revoked early). */
  private async call(method: Method, url: string, headers: Record<string, string>, data: string | undefined, ctx: CallContext): Promise<AxiosResponse<string>> {
    const res = await this.send(method, url, { accept: 'application/json', ...headers, ...(await this.authHeaders(ctx, false)) }, data, ctx);
    if (res.status !== 401 || this.o.auth.type !== 'oauth2') return res;
    return this.send(method, url, { accept: 'application/json', ...headers, ...(await this.authHeaders(ctx, true)) }, data, ctx);
  }

  private async send(method: Method, url: string, headers: Record<string, string>, data: string | undefined, ctx: CallContext): Promise<AxiosResponse<string>> {
    // axios' own timeout is per socket phase; this deadline bounds the whole call, trickled body included.
    const deadline = AbortSignal.timeout(this.timeoutMs);
    const signal = ctx.signal ? AbortSignal.any([ctx.signal, deadline]) : deadline;
    const started = Date.now();
    try {
      const res = await this.client.request<string>({ method, url, headers, data, signal });
      ctx.log.debug('sap call', { source: this.o.sourceId, method, path: pathOf(url), status: res.status, ms: Date.now() - started });
      return res;
    } catch (e) {
      throw this.transportError(method, url, e, deadline.aborted);
    }
  }

  private json(method: Method, url: string, res: AxiosResponse<string>, ok: readonly number[], ctx: CallContext, retryUnreadable = true): SapResponse {
    if (!ok.includes(res.status)) throw this.statusError(method, url, res, ctx.now);
    const path = pathOf(url);
    const text = typeof res.data === 'string' ? res.data : '';
    if (text.trim() === '') return { status: res.status, headers: res.headers as Record<string, unknown>, body: undefined, path };
    try {
      return { status: res.status, headers: res.headers as Record<string, unknown>, body: JSON.parse(text) as unknown, path };
    } catch {
      const type = headerText(res.headers['content-type']);
      throw this.invalid(method, url, res, `expected OData JSON, got ${type ? `${type.split(';', 1)[0]} that is not JSON` : 'a body that is not JSON'}`, retryUnreadable);
    }
  }

  invalid(method: string, url: string, res: { status: number; data?: unknown }, what: string, retryable = true): SourceError {
    const path = pathOf(url);
    return new SourceError(this.o.sourceId, `${method} ${path} answered ${res.status}: ${what}; body: ${excerpt(res.data, this.secrets)}`, retryable, {
      code: 'SOURCE_RESPONSE_INVALID', method, path, status: res.status,
    });
  }

  statusError(method: string, url: string, res: AxiosResponse<string>, now: Date): SourceError {
    const s = res.status;
    const path = pathOf(url);
    // 412 comes only from an If-Match write losing to a concurrent edit: a retry reads afresh and wins.
    const retryable = s === 408 || s === 412 || s === 429 || s >= 500;
    const retryAfterMs = s === 429 || s === 503 ? parseRetryAfter(res.headers['retry-after'], now) : undefined;
    const hint = s >= 300 && s < 400 ? ' (redirects are not followed; a redirect usually means a login page: check auth)' : '';
    const detail = odataError(res.data, this.secrets) ?? excerpt(res.data, this.secrets);
    return new SourceError(this.o.sourceId, `${method} ${path} answered ${s}${hint}: ${detail}`, retryable, {
      method, path, status: s, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
    });
  }

  private transportError(method: string, url: string, e: unknown, timedOut: boolean): SourceError {
    const path = pathOf(url);
    const f = transportFailure(e, timedOut, this.timeoutMs);
    return new SourceError(this.o.sourceId, `${method} ${path}: ${f.problem}`, true, { method, path, ...f.details, ...(f.tooLarge ? { code: 'SOURCE_RESPONSE_INVALID' } : {}) });
  }
}
