import http from 'node:http';
import https from 'node:https';
import type { AxiosInstance, AxiosResponse } from 'axios';
import { WogateError, type ResourceKind, type TargetRef } from '../domain/index.js';
import {
  BAD_HEADER_CHAR,
  compileJson,
  compilePath,
  compileString,
  readPath,
  renderHeader,
  renderJson,
  renderUrl,
  TemplateValueError,
  type CompiledJson,
  type CompiledString,
  type NameCheck,
  type TemplateValue,
} from './http-template.js';
import { entryId, TargetError, type CallContext, type Target, type TargetEntry, type TargetGrant } from './target.js';
import { checkHttpUrl, excerpt, parseRetryAfter, pathOf, safeAxios, transportFailure } from '../http-safety.js';

export interface HttpRequestSpec {
  readonly method: 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'GET';
  /** Path template, appended to `baseUrl`; must start with "/". */
  readonly url: string;
  /** Header value templates; names are literal. */
  readonly headers?: Readonly<Record<string, string>>;
  /** JSON value whose string leaves are templates. */
  readonly body?: unknown;
  /** Statuses that mean success; default any 2xx. */
  readonly okStatus?: readonly number[];
  /** revoke only: statuses that mean "already gone", counted as success; default [404, 410]. */
  readonly goneStatus?: readonly number[];
  /** Dotted path in the JSON answer whose value becomes the ref id (provision/update), or each item's ref id (list). */
  readonly refFrom?: string;
}

export interface HttpListSpec extends HttpRequestSpec {
  /** Dotted path to the array of entries; default: the answer itself is the array. */
  readonly itemsFrom?: string;
  /** Dotted path, inside each item, to the grant key. */
  readonly keyFrom?: string;
  /** Dotted path, inside each item, to the expiry: ISO 8601 text or epoch seconds. */
  readonly expiresFrom?: string;
}

export interface HttpTargetOptions {
  readonly id: string;
  /** http(s) origin plus optional path prefix; no query or fragment. Credentials are only ever sent here. */
  readonly baseUrl: string;
  /** Whole-call deadline; default 10000. */
  readonly timeoutMs?: number;
  /** Sent on every call (e.g. Authorization, secrets already resolved). Not templated, never logged. */
  readonly headers?: Readonly<Record<string, string>>;
  /** True when the remote system enforces validUntil itself. */
  readonly nativeExpiry?: boolean;
  /** The kinds of resource its templates are written for; default network. */
  readonly resourceKinds?: readonly ResourceKind[];
  readonly provision: HttpRequestSpec;
  /** Default: provision again. */
  readonly update?: HttpRequestSpec;
  readonly revoke: HttpRequestSpec;
  /** Without it, list() returns [] and drift detection is unavailable for this target. */
  readonly list?: HttpListSpec;
  /** Default 1 MiB. */
  readonly maxResponseBytes?: number;
}

type Op = 'provision' | 'update' | 'revoke' | 'list';

interface CompiledRequest {
  readonly op: Op;
  readonly method: HttpRequestSpec['method'];
  readonly url: CompiledString;
  readonly headers: readonly (readonly [string, CompiledString])[];
  readonly body?: CompiledJson;
  readonly ok: (status: number) => boolean;
  readonly gone: readonly number[];
  readonly refFrom?: readonly string[];
  readonly refFromText?: string;
}

const GRANT_NAMES = [
  'grant.id', 'grant.key', 'grant.orderKey', 'grant.source', 'grant.orderId', 'grant.vendorId', 'grant.technicianId',
  'grant.assetId', 'grant.targetId', 'grant.validFrom', 'grant.validUntil', 'grant.validUntilEpoch', 'grant.ttlSeconds',
  'resource.kind', 'resource.sourceAddress', 'resource.address', 'resource.port', 'resource.protocol',
  'resource.account', 'resource.group', 'resource.safe', 'resource.badge', 'resource.accessLevel', 'resource.commonName',
];
/** Every placeholder the http target knows; a config naming anything else fails at start. */
export const HTTP_PLACEHOLDERS: readonly string[] = [...GRANT_NAMES, 'entry.id', 'ref.id', 'ref.key'];

/**
 * Placeholders naming one work order's grant. Grants of several orders that open the same
 * resource share one entry on the target (docs/decisions/0005), and the calls for that entry may
 * come from any of them: a URL built from one of these would address a different remote entry
 * per order, so a revoke could leave another order's entry open. They are refused in URLs.
 */
const GRANT_SCOPED = ['grant.id', 'grant.key', 'grant.orderKey', 'grant.orderId', 'grant.source'];


const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

function isTemplateValue(v: unknown): v is TemplateValue {
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';
}

/**
 * Generic HTTP target: templated provision/update/revoke/list calls for systems without an adapter.
 * URLs address the target entry, which grants of several orders may share: `{{entry.id}}` (stable
 * per target and resource), `{{ref.id}}` (what provision answered) or the resource's fields. A revoke
 * must work after a crash that lost the stored ref, so revoke templates should prefer
 * `{{entry.id}}` or the resource's fields to `{{ref.id}}`: without a stored id such a revoke fails
 * as not retryable until an operator steps in.
 */
export class HttpTarget implements Target {
  readonly kind = 'http';
  readonly id: string;
  readonly nativeExpiry: boolean;
  readonly resourceKinds: readonly ResourceKind[];
  readonly canList: boolean;
  private readonly base: string;
  private readonly timeoutMs: number;
  private readonly staticHeaders: Readonly<Record<string, string>>;
  private readonly secrets: readonly string[];
  private readonly req: Readonly<Record<Exclude<Op, 'list'>, CompiledRequest>>;
  private readonly listReq?: CompiledRequest & {
    readonly items?: readonly string[];
    readonly key?: readonly string[];
    readonly expires?: readonly string[];
  };
  private readonly agents = { http: new http.Agent({ keepAlive: true }), https: new https.Agent({ keepAlive: true }) };
  private readonly client: AxiosInstance;

  constructor(o: HttpTargetOptions) {
    this.id = o.id;
    this.nativeExpiry = o.nativeExpiry ?? false;
    this.resourceKinds = o.resourceKinds ?? ['network'];
    this.canList = o.list !== undefined;
    const where = `target ${o.id}`;
    this.base = checkHttpUrl(o.baseUrl, `${where}: baseUrl`).href.replace(/\/+$/, '');
    this.timeoutMs = o.timeoutMs ?? 10_000;
    if (!(this.timeoutMs > 0)) throw new WogateError('CONFIG_INVALID', `${where}: timeoutMs must be positive`);
    for (const [name, value] of Object.entries(o.headers ?? {})) {
      checkHeaderName(name, `${where}: headers`);
      // The value is a secret more often than not: say which header, never what it holds.
      if (BAD_HEADER_CHAR.test(value)) throw new WogateError('CONFIG_INVALID', `${where}: header ${name} contains CR, LF or another character not allowed in a header (value not shown)`);
    }
    this.staticHeaders = { ...o.headers };
    // An error page may echo request headers; their values (and a bare token after "Bearer ") never reach a message.
    this.secrets = Object.values(this.staticHeaders).flatMap((v) => [v, v.trim().split(/\s+/).pop() ?? '']).filter((v) => v.length >= 8);

    const storesId = o.provision.refFrom !== undefined || o.update?.refFrom !== undefined;
    const check = (op: Op): NameCheck => (name) => {
      if (!HTTP_PLACEHOLDERS.includes(name)) return `is unknown (known: ${HTTP_PLACEHOLDERS.join(', ')})`;
      if (op === 'list') return 'is not available in list, which concerns no single grant';
      if (name.startsWith('ref.') && op === 'provision') return 'is not available in provision: nothing is stored before it';
      if (name === 'ref.id' && !storesId) return 'needs refFrom on provision or update, otherwise the stored ref is { key }';
      return undefined;
    };
    this.req = {
      provision: compileRequest('provision', o.provision, `${where}: provision`, check('provision')),
      update: compileRequest('update', o.update ?? o.provision, `${where}: update`, check('update')),
      revoke: compileRequest('revoke', o.revoke, `${where}: revoke`, check('revoke')),
    };
    if (o.list) {
      const w = `${where}: list`;
      const c = compileRequest('list', o.list, w, check('list'));
      if (o.list.keyFrom === undefined && o.list.refFrom === undefined) {
        throw new WogateError('CONFIG_INVALID', `${w}: needs keyFrom or refFrom to tell the entries apart`);
      }
      this.listReq = {
        ...c,
        ...(o.list.itemsFrom !== undefined ? { items: compilePath(o.list.itemsFrom, `${w}.itemsFrom`) } : {}),
        ...(o.list.keyFrom !== undefined ? { key: compilePath(o.list.keyFrom, `${w}.keyFrom`) } : {}),
        ...(o.list.expiresFrom !== undefined ? { expires: compilePath(o.list.expiresFrom, `${w}.expiresFrom`) } : {}),
      };
    }

    this.client = safeAxios({ timeoutMs: this.timeoutMs, maxResponseBytes: o.maxResponseBytes ?? 1024 * 1024, agents: this.agents });
  }

  async init(): Promise<void> {}

  async provision(grant: TargetGrant, ctx: CallContext): Promise<TargetRef> {
    this.checkKind(grant);
    const res = await this.call(this.req.provision, values(this.id, grant, undefined, ctx.now), ctx);
    return this.refOf(this.req.provision, res, grant, undefined);
  }

  async update(grant: TargetGrant, ref: TargetRef | undefined, ctx: CallContext): Promise<TargetRef> {
    this.checkKind(grant);
    const res = await this.call(this.req.update, values(this.id, grant, ref, ctx.now), ctx);
    return this.refOf(this.req.update, res, grant, ref);
  }

  async revoke(grant: TargetGrant, ref: TargetRef | undefined, ctx: CallContext): Promise<void> {
    // provision() refuses other kinds before any call, so nothing of one can exist here.
    if (!this.resourceKinds.includes(grant.resource.kind)) return;
    await this.call(this.req.revoke, values(this.id, grant, ref, ctx.now), ctx);
  }

  /** Without a `list` request configured this returns [] and drift detection is unavailable for this target. */
  async list(ctx: CallContext): Promise<TargetEntry[]> {
    const spec = this.listReq;
    if (!spec) return [];
    const res = await this.call(spec, new Map(), ctx);
    const parsed = this.parseJson(spec, res, `a JSON ${spec.items ? `object with an array at "${spec.items.join('.')}"` : 'array'}`);
    const items = spec.items ? readPath(parsed, spec.items) : parsed;
    if (!Array.isArray(items)) throw this.invalid(spec, res, `expected a JSON ${spec.items ? `array at "${spec.items.join('.')}"` : 'array'}`);
    return items.map((item, i): TargetEntry => {
      const id = spec.refFrom ? readPath(item, spec.refFrom) : undefined;
      const key = spec.key ? readPath(item, spec.key) : undefined;
      if (spec.refFrom && !isId(id)) throw this.invalid(spec, res, `expected item ${i} to have a string or number at "${spec.refFromText}"`);
      if (spec.key && !isId(key)) throw this.invalid(spec, res, `expected item ${i} to have a string or number at "${spec.key.join('.')}"`);
      const expiresAt = spec.expires ? toDate(readPath(item, spec.expires)) : undefined;
      if (spec.expires && !expiresAt) throw this.invalid(spec, res, `expected item ${i} to have an ISO 8601 time or epoch seconds at "${spec.expires.join('.')}"`);
      return {
        ref: isId(id) ? { id } : { key: String(key) },
        ...(isId(key) ? { key: String(key) } : {}),
        ...(expiresAt ? { expiresAt } : {}),
      };
    });
  }

  async close(): Promise<void> {
    this.agents.http.destroy();
    this.agents.https.destroy();
  }

  private checkKind(grant: TargetGrant): void {
    const kind = grant.resource.kind;
    if (!this.resourceKinds.includes(kind)) throw new TargetError(this.id, `a ${kind} resource can't be provisioned here: this target is configured for ${this.resourceKinds.join(', ')}`, false, { code: 'RESOURCE_KIND_UNSUPPORTED' });
  }

  private refOf(req: CompiledRequest, res: AxiosResponse<string>, grant: TargetGrant, prior: TargetRef | undefined): TargetRef {
    if (!req.refFrom) {
      // An update that does not answer with an id keeps the one provision stored, so revoke can still use it.
      return prior && prior.id !== undefined ? prior : { key: entryId(this.id, grant.resource) };
    }
    const id = readPath(this.parseJson(req, res, `JSON with a string or number at "${req.refFromText}"`), req.refFrom);
    if (!isId(id)) throw this.invalid(req, res, `expected JSON with a string or number at "${req.refFromText}"`);
    return { id };
  }

  private parseJson(req: CompiledRequest, res: AxiosResponse<string>, expected: string): unknown {
    try {
      return JSON.parse(res.data);
    } catch {
      throw this.invalid(req, res, `expected ${expected}, got ${describeType(res)}`);
    }
  }

  private invalid(req: CompiledRequest, res: AxiosResponse<string>, what: string): TargetError {
    const path = pathOf(res.config.url ?? '');
    return new TargetError(this.id, `${req.method} ${path} answered ${res.status}: ${what}; body: ${excerpt(res.data, this.secrets)}`, true, {
      code: 'TARGET_RESPONSE_INVALID', op: req.op, method: req.method, path, status: res.status,
    });
  }

  private async call(req: CompiledRequest, vals: ReadonlyMap<string, TemplateValue>, ctx: CallContext): Promise<AxiosResponse<string>> {
    let url: string;
    const headers: Record<string, string> = { accept: 'application/json', ...this.staticHeaders };
    let data: string | undefined;
    try {
      url = this.base + renderUrl(req.url, vals, `${req.op}.url`);
      for (const [name, tpl] of req.headers) headers[name] = renderHeader(tpl, vals, `${req.op}.headers.${name}`);
      if (req.body) {
        data = JSON.stringify(renderJson(req.body, vals, `${req.op}.body`));
        if (!Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) headers['content-type'] = 'application/json';
      }
    } catch (e) {
      // Retrying cannot change a grant's values, so this stays failed until config or data changes.
      if (e instanceof TemplateValueError) throw new TargetError(this.id, `${req.method} ${req.op}: ${e.message}`, false, { op: req.op });
      throw e;
    }
    const path = pathOf(url);
    // axios' own timeout is per socket phase; this deadline bounds the whole call, trickled body included.
    const deadline = AbortSignal.timeout(this.timeoutMs);
    const signal = ctx.signal ? AbortSignal.any([ctx.signal, deadline]) : deadline;
    const started = Date.now();
    let res: AxiosResponse<string>;
    try {
      res = await this.client.request<string>({ method: req.method, url, headers, data, signal });
    } catch (e) {
      throw this.transportError(req, path, e, deadline.aborted);
    }
    ctx.log.debug('http target call', { target: this.id, op: req.op, method: req.method, path, status: res.status, ms: Date.now() - started });
    if (req.ok(res.status) || (req.op === 'revoke' && req.gone.includes(res.status))) return res;
    throw this.statusError(req, path, res, ctx.now);
  }

  private transportError(req: CompiledRequest, path: string, e: unknown, timedOut: boolean): TargetError {
    const f = transportFailure(e, timedOut, this.timeoutMs);
    return new TargetError(this.id, `${req.method} ${path}: ${f.problem}`, true, { op: req.op, method: req.method, path, ...f.details, ...(f.tooLarge ? { code: 'TARGET_RESPONSE_INVALID' } : {}) });
  }

  private statusError(req: CompiledRequest, path: string, res: AxiosResponse<string>, now: Date): TargetError {
    const s = res.status;
    const retryable = s === 408 || s === 429 || s >= 500;
    const retryAfterMs = s === 429 || s === 503 ? parseRetryAfter(res.headers['retry-after'], now) : undefined;
    const hint = s >= 300 && s < 400 ? ' (redirects are not followed)' : '';
    return new TargetError(this.id, `${req.method} ${path} answered ${s}${hint}: ${excerpt(res.data, this.secrets)}`, retryable, {
      op: req.op, method: req.method, path, status: s, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
    });
  }
}

function compileRequest(
  op: Op,
  spec: HttpRequestSpec,
  where: string,
  check: NameCheck,
): CompiledRequest {
  if (!spec.url.startsWith('/')) {
    // A full URL here would send the target's credentials to whatever host the template names.
    throw new WogateError('CONFIG_INVALID', `${where}.url: must be a path starting with "/" (it is appended to baseUrl)`);
  }
  const url = compileString(spec.url, `${where}.url`, (name) =>
    GRANT_SCOPED.includes(name)
      ? 'names one work order\'s grant, but the grants of several orders opening one resource share one entry (docs/decisions/0005): address the entry with {{entry.id}}, {{ref.id}} or the resource\'s fields'
      : check(name));
  const headers = Object.entries(spec.headers ?? {}).map(([name, v]): [string, CompiledString] => {
    checkHeaderName(name, `${where}.headers`);
    if (BAD_HEADER_CHAR.test(v)) throw new WogateError('CONFIG_INVALID', `${where}.headers.${name}: contains a character not allowed in a header`);
    return [name, compileString(v, `${where}.headers.${name}`, check)];
  });
  const body = spec.body === undefined ? undefined : compileJson(spec.body, `${where}.body`, check);
  for (const list of [spec.okStatus, spec.goneStatus]) {
    for (const s of list ?? []) if (!Number.isInteger(s) || s < 100 || s > 599) throw new WogateError('CONFIG_INVALID', `${where}: ${s} is not an HTTP status`);
  }
  const okSet = spec.okStatus ? new Set(spec.okStatus) : undefined;
  return {
    op,
    method: spec.method,
    url,
    headers,
    ...(body ? { body } : {}),
    ok: okSet ? (s) => okSet.has(s) : (s) => s >= 200 && s < 300,
    gone: op === 'revoke' ? (spec.goneStatus ?? [404, 410]) : [],
    ...(spec.refFrom !== undefined ? { refFrom: compilePath(spec.refFrom, `${where}.refFrom`), refFromText: spec.refFrom } : {}),
  };
}

function values(targetId: string, g: TargetGrant, ref: TargetRef | undefined, now: Date): Map<string, TemplateValue> {
  const r = g.resource;
  const entry = entryId(targetId, r);
  const m = new Map<string, TemplateValue>([
    ['entry.id', entry],
    ['grant.id', g.id], ['grant.key', g.key], ['grant.orderKey', g.orderKey], ['grant.source', g.source],
    ['grant.orderId', g.orderId], ['grant.vendorId', g.vendorId], ['grant.technicianId', g.technicianId],
    ['grant.assetId', g.assetId], ['grant.targetId', g.targetId],
    ['grant.validFrom', g.validFrom.toISOString()], ['grant.validUntil', g.validUntil.toISOString()],
    ['grant.validUntilEpoch', Math.floor(g.validUntil.getTime() / 1000)],
    // Rounded down so a remote timer never outlives the window.
    ['grant.ttlSeconds', Math.max(0, Math.floor((g.validUntil.getTime() - now.getTime()) / 1000))],
    // Only the fields this kind of resource has: a template naming another kind's field fails the call as not retryable.
    ...Object.entries(r).map(([k, v]): [string, TemplateValue] => [`resource.${k}`, v as TemplateValue]),
  ]);
  const own = (k: string) => (ref && Object.hasOwn(ref, k) ? ref[k] : undefined);
  const id = own('id');
  if (isTemplateValue(id)) m.set('ref.id', id);
  // Without refFrom the stored ref is { key: entry.id }, so the entry can stand in when none was recorded.
  const key = own('key');
  m.set('ref.key', isTemplateValue(key) ? key : entry);
  return m;
}

function checkHeaderName(name: string, where: string): void {
  if (!HEADER_NAME.test(name)) throw new WogateError('CONFIG_INVALID', `${where}: ${JSON.stringify(name)} is not a valid header name`);
}

function describeType(res: AxiosResponse<string>): string {
  const type = res.headers['content-type'];
  return typeof type === 'string' && type !== '' ? `${type.split(';', 1)[0]} that is not JSON` : 'a body that is not JSON';
}

function isId(v: unknown): v is string | number {
  return (typeof v === 'string' && v !== '') || (typeof v === 'number' && Number.isFinite(v));
}

function toDate(v: unknown): Date | undefined {
  const d = typeof v === 'number' ? new Date(v * 1000) : typeof v === 'string' ? new Date(v) : undefined;
  return d && !Number.isNaN(d.getTime()) ? d : undefined;
}
