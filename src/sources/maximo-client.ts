import http from 'node:http';
import https from 'node:https';
import type { AxiosInstance, AxiosResponse } from 'axios';
import { WogateError } from '../domain/index.js';
import { SourceError, type CallContext } from './source.js';
import { excerpt, parseRetryAfter, safeAxios, transportFailure } from '../http-safety.js';

export interface MaximoClientOptions {
  readonly sourceId: string;
  /** Everything before `/os/<object structure>`: https://host/maximo/api (MAS) or https://host/maximo/oslc. */
  readonly baseUrl: string;
  readonly apiKey: string;
  readonly timeoutMs: number;
  readonly maxResponseBytes: number;
  /** A runaway `nextPage` (a server that ignores pageno) stops here instead of looping. */
  readonly maxPages: number;
}

export interface CollectionQuery {
  readonly select: string;
  readonly where?: string;
  readonly orderBy: string;
  readonly pageSize: number;
}


/**
 * Maximo's REST/JSON API (lean=1) with an API key: collection reads followed page by page, and
 * member updates. The key is only ever sent to baseUrl's origin: `href`s in answers name the
 * server as Maximo sees itself (often http://localhost behind a proxy), so nothing here follows them.
 */
export class MaximoClient {
  private readonly origin: string;
  private readonly basePath: string;
  private readonly agents = { http: new http.Agent({ keepAlive: true }), https: new https.Agent({ keepAlive: true }) };
  private readonly http: AxiosInstance;

  constructor(private readonly o: MaximoClientOptions) {
    const where = `source ${o.sourceId}`;
    let u: URL;
    try {
      u = new URL(o.baseUrl);
    } catch {
      throw new WogateError('CONFIG_INVALID', `${where}: baseUrl is not a URL`);
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new WogateError('CONFIG_INVALID', `${where}: baseUrl must be http or https`);
    if (u.search || u.hash || u.username || u.password) throw new WogateError('CONFIG_INVALID', `${where}: baseUrl must not carry a query, fragment or credentials`);
    if (o.apiKey.trim() === '' || /[\r\n]/.test(o.apiKey)) throw new WogateError('CONFIG_INVALID', `${where}: apiKey is empty or not a single line (value not shown)`);
    this.origin = u.origin;
    this.basePath = u.pathname.replace(/\/+$/, '');
    this.http = safeAxios({ timeoutMs: o.timeoutMs, maxResponseBytes: o.maxResponseBytes, agents: this.agents });
  }

  close(): void {
    this.agents.http.destroy();
    this.agents.https.destroy();
  }

  /** `/maximo/api/os/<os>[/<rest id>]`, the part of a request that may appear in messages. */
  pathFor(os: string, restId?: string): string {
    return `${this.basePath}/os/${encodeURIComponent(os)}${restId === undefined ? '' : `/${restId}`}`;
  }

  /**
   * Every page of a collection query, handed to `onPage` as it arrives. A failure on any page
   * throws, so a caller never takes a partial read for a whole one.
   */
  async collection(os: string, q: CollectionQuery, ctx: CallContext, onPage: (members: Record<string, unknown>[]) => void): Promise<void> {
    const path = this.pathFor(os);
    for (let pageno = 1; ; pageno++) {
      if (pageno > this.o.maxPages) throw new SourceError(this.o.sourceId, `GET ${path}: more than ${this.o.maxPages} pages; narrow the query or raise maxPages`, false, { method: 'GET', path });
      const query: [string, string][] = [['lean', '1'], ['oslc.select', q.select]];
      if (q.where) query.push(['oslc.where', q.where]);
      query.push(['oslc.orderBy', q.orderBy], ['oslc.pageSize', String(q.pageSize)], ['pageno', String(pageno)]);
      const res = await this.send('GET', path, query, undefined, {}, ctx);
      const body = this.json(res, 'GET', path);
      const members = body.member;
      if (!Array.isArray(members) || members.some((m) => typeof m !== 'object' || m === null || Array.isArray(m))) {
        throw this.invalid(res, 'GET', path, 'expected a lean collection ({"member": [...]}); is lean=1 honoured and the object structure right?');
      }
      onPage(members as Record<string, unknown>[]);
      const info = body.responseInfo;
      const next = typeof info === 'object' && info !== null ? (info as Record<string, unknown>).nextPage : undefined;
      const pagenum = typeof info === 'object' && info !== null ? (info as Record<string, unknown>).pagenum : undefined;
      if (typeof pagenum === 'number' && pagenum !== pageno) {
        throw this.invalid(res, 'GET', path, `asked for page ${pageno} and got page ${pagenum}; paging is not advancing`);
      }
      if (next === undefined || next === null || members.length === 0) return;
    }
  }

  /** POST with x-method-override: PATCH and patchtype: MERGE, so child lists are added to, not replaced. */
  async patchMember(os: string, restId: string, body: unknown, ctx: CallContext): Promise<void> {
    const path = this.pathFor(os, restId);
    await this.send('POST', path, [['lean', '1']], JSON.stringify(body), {
      'content-type': 'application/json',
      'x-method-override': 'PATCH',
      patchtype: 'MERGE',
    }, ctx);
  }

  /** Creates a member (POST to the collection) and returns the attributes named in `properties`. */
  async createMember(os: string, body: unknown, properties: string, ctx: CallContext): Promise<Record<string, unknown>> {
    const path = this.pathFor(os);
    const res = await this.send('POST', path, [['lean', '1']], JSON.stringify(body), { 'content-type': 'application/json', properties }, ctx);
    return this.json(res, 'POST', path);
  }

  private async send(method: 'GET' | 'POST', path: string, query: [string, string][], data: string | undefined, headers: Record<string, string>, ctx: CallContext): Promise<AxiosResponse<string>> {
    // encodeURIComponent throughout: "+" in oslc.orderBy must arrive as %2B, spaces as %20.
    const qs = query.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
    const url = `${this.origin}${path}${qs ? `?${qs}` : ''}`;
    // axios' own timeout is per socket phase; this deadline bounds the whole call, trickled body included.
    const deadline = AbortSignal.timeout(this.o.timeoutMs);
    const signal = ctx.signal ? AbortSignal.any([ctx.signal, deadline]) : deadline;
    const started = Date.now();
    let res: AxiosResponse<string>;
    try {
      res = await this.http.request<string>({
        method, url, data, signal,
        headers: { accept: 'application/json', apikey: this.o.apiKey, ...headers },
      });
    } catch (e) {
      throw this.transportError(method, path, e, deadline.aborted);
    }
    ctx.log.debug('maximo call', { source: this.o.sourceId, method, path, status: res.status, ms: Date.now() - started });
    if (res.status >= 200 && res.status < 300) return res;
    throw this.statusError(method, path, res, ctx.now);
  }

  private json(res: AxiosResponse<string>, method: string, path: string): Record<string, unknown> {
    let parsed: unknown;
    try {
      parsed = JSON.parse(res.data);
    } catch {
      const type = res.headers['content-type'];
      const what = typeof type === 'string' && type !== '' ? `${type.split(';', 1)[0]} that is not JSON` : 'a body that is not JSON';
      throw this.invalid(res, method, path, `expected JSON, got ${what}`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw this.invalid(res, method, path, 'expected a JSON object');
    return parsed as Record<string, unknown>;
  }

  /** A well-formed answer Maximo should not give; the message names the call, never its query. */
  invalid(res: AxiosResponse<string> | undefined, method: string, path: string, what: string, retryable = true, extra: Record<string, unknown> = {}): SourceError {
    const tail = res ? ` answered ${res.status}: ${what}; body: ${this.excerpt(res.data)}` : `: ${what}`;
    return new SourceError(this.o.sourceId, `${method} ${path}${tail}`, retryable, { code: 'SOURCE_RESPONSE_INVALID', method, path, ...(res ? { status: res.status } : {}), ...extra });
  }

  private transportError(method: string, path: string, e: unknown, timedOut: boolean): SourceError {
    const f = transportFailure(e, timedOut, this.o.timeoutMs, `${this.o.maxResponseBytes} bytes; lower pageSize or raise maxResponseBytes`);
    return new SourceError(this.o.sourceId, `${method} ${path}: ${f.problem}`, true, { method, path, ...f.details, ...(f.tooLarge ? { code: 'SOURCE_RESPONSE_INVALID' } : {}) });
  }

  private statusError(method: string, path: string, res: AxiosResponse<string>, now: Date): SourceError {
    const s = res.status;
    const retryable = s === 408 || s === 429 || s >= 500;
    const retryAfterMs = parseRetryAfter(res.headers['retry-after'], now);
    const hint = s >= 300 && s < 400 ? ' (redirects are not followed; is baseUrl the address Maximo answers on?)' : s === 401 ? ' (is the API key valid and active?)' : '';
    return new SourceError(this.o.sourceId, `${method} ${path} answered ${s}${hint}: ${this.errorText(res.data)}`, retryable, {
      method, path, status: s, ...(retryAfterMs !== undefined && retryable ? { retryAfterMs } : {}),
    });
  }

  /** Maximo's `{"Error": {"reasonCode", "message"}}` when it sent one, else the start of the body. */
  private errorText(data: unknown): string {
    if (typeof data === 'string') {
      try {
        const parsed = JSON.parse(data) as { Error?: { message?: unknown }; 'oslc:Error'?: { 'oslc:message'?: unknown } };
        const msg = parsed.Error?.message ?? parsed['oslc:Error']?.['oslc:message'];
        if (typeof msg === 'string') return this.excerpt(msg);
      } catch {
        // not JSON; fall through to the excerpt
      }
    }
    return this.excerpt(data);
  }

  private excerpt(data: unknown): string {
    return excerpt(data, [this.o.apiKey]);
  }
}

