import http from 'node:http';
import https from 'node:https';
import type { AxiosInstance, AxiosResponse } from 'axios';
import { WogateError } from '../domain/errors.js';
import { CRITICALITIES, type Criticality } from '../domain/register.js';
import { compareRevisions, type CanonicalStatus, type WorkOrder } from '../domain/workorder.js';
import { isPlainObject, mapMaintainXOrder, own, toDate, toId, type MaintainXMapping } from './maintainx-mapping.js';
import { canonicalAsset } from './canonical-order.js';
import { mapListed, SourceError, type AssetRecord, type CallContext, type PollResult, type ReviewOrderInput, type SourceApi } from './source.js';
import { checkHttpUrl, excerpt, parseRetryAfter, safeAxios, transportFailure } from '../http-safety.js';

/** Custom field labels (asset `extraFields`) for what MaintainX assets have no native place for. */
export interface MaintainXAssetFields {
  /** Default: the first of the asset's `assetTypes`. */
  readonly class?: string;
  /** Value low, medium, high or critical (any case); anything else is left to the overlay file. */
  readonly criticality?: string;
  /** Default: `locationId`. */
  readonly site?: string;
  readonly zone?: string;
}

/** Break-glass review orders (createReview): where they are filed. Ids are MaintainX's numbers, as strings. */
export interface MaintainXReviewOptions {
  /** Default location; breakGlass.reviewSite, when set, wins. */
  readonly locationId?: string;
  readonly assetId?: string;
  /** Work-order categories to add, e.g. one a review team filters on. */
  readonly categories?: readonly string[];
}

export interface MaintainXApiOptions {
  readonly sourceId: string;
  /** REST base, e.g. https://api.getmaintainx.com/v1; no query, no credentials. */
  readonly baseUrl: string;
  /** The API key (resolved secret), sent as `Authorization: Bearer …` and nowhere else. */
  readonly apiKey: string;
  /** `x-organization-id`, needed only with a multi-organization key. */
  readonly organizationId?: string;
  /** Whole-call deadline per request. */
  readonly timeoutMs: number;
  /** `limit` per page, 1 to 200 (MaintainX's maximum). */
  readonly pageSize: number;
  readonly maxResponseBytes: number;
  /** A runaway cursor chain stops here instead of looping forever. */
  readonly maxPages: number;
  readonly mapping: MaintainXMapping;
  readonly assetFields?: MaintainXAssetFields;
  readonly review?: MaintainXReviewOptions;
}

type Query = readonly (readonly [string, string])[];
type Visit = (item: unknown, where: string, res: AxiosResponse<string>) => 'next' | 'stop';

// The list endpoint leaves vendors, custom fields, categories and assignees out unless asked.
const EXPAND_LIST = ['assignees', 'vendor_ids', 'extra_fields', 'categories', 'asset'];
const EXPAND_ONE = ['assignees', 'extra_fields'];
const EXPAND_ASSETS = ['asset_types', 'extra_fields'];
const NOT_OPEN: readonly CanonicalStatus[] = ['completed', 'closed', 'cancelled', 'draft'];
const WORK_ORDER_ID = /^[1-9][0-9]{0,15}$/;
const CURSOR = /^mx1:(.+)$/;
const MAX_NOTE_LENGTH = 4000;
const MAX_TITLE_LENGTH = 200;
const MAX_DESCRIPTION_LENGTH = 10_000;
/** Location and asset ids go into the body as JSON numbers: at most 15 digits stay exact. */
export const MAINTAINX_NUMBER = /^[1-9][0-9]{0,14}$/;
const BAD_HEADER_CHAR = /[\r\n\0]/;

/** The MaintainX REST API: work orders, assets and comments, every failure a SourceError. */
export class MaintainXApi implements SourceApi {
  private readonly base: string;
  private readonly headers: Readonly<Record<string, string>>;
  private readonly agents = { http: new http.Agent({ keepAlive: true }), https: new https.Agent({ keepAlive: true }) };
  private readonly client: AxiosInstance;

  constructor(private readonly o: MaintainXApiOptions) {
    const where = `source ${o.sourceId}`;
    this.base = checkHttpUrl(o.baseUrl, `${where}: baseUrl`).href.replace(/\/+$/, '');
    if (o.apiKey.trim() === '' || BAD_HEADER_CHAR.test(o.apiKey.trim())) {
      // Say what is wrong, never what the key holds.
      throw new WogateError('CONFIG_INVALID', `${where}: apiKey is empty or contains CR, LF or NUL (value not shown)`);
    }
    if (o.organizationId !== undefined && !/^[0-9]{1,15}$/.test(o.organizationId)) {
      throw new WogateError('CONFIG_INVALID', `${where}: organizationId must be a MaintainX organization number`);
    }
    if (!(o.timeoutMs > 0)) throw new WogateError('CONFIG_INVALID', `${where}: timeout must be positive`);
    if (!Number.isInteger(o.pageSize) || o.pageSize < 1 || o.pageSize > 200) {
      throw new WogateError('CONFIG_INVALID', `${where}: pageSize must be an integer from 1 to 200 (MaintainX's limit)`);
    }
    this.headers = {
      accept: 'application/json',
      authorization: `Bearer ${o.apiKey.trim()}`,
      ...(o.organizationId === undefined ? {} : { 'x-organization-id': o.organizationId }),
    };
    this.client = safeAxios({ timeoutMs: o.timeoutMs, maxResponseBytes: o.maxResponseBytes, agents: this.agents });
  }

  async fetchOrder(id: string, ctx: CallContext): Promise<WorkOrder | undefined> {
    const res = await this.request('GET', `/workorders/${this.orderId(id)}`, expand(EXPAND_ONE), undefined, ctx, [404]);
    if (res.status === 404) return undefined;
    const wo = own(this.parse(res, 'a JSON object with a "workOrder" object'), 'workOrder');
    if (!isPlainObject(wo)) throw this.invalid(res, 'expected a JSON object with a "workOrder" object');
    return this.map(wo, 'workOrder', res);
  }

  /**
   * MaintainX has no change feed, so this lists by `updatedAt[gte]` newest first and stops at the
   * first order older than the cursor (which also bounds the read where the filter is not
   * honoured). Newest first keeps a keyset or offset cursor from skipping an order that changes
   * while the pages are read: it moves ahead of the pages, gets a newer `updatedAt` and is read by
   * the next poll. `>=` lets orders changed in the cursor's own millisecond through again; wogate
   * drops those by revision.
   */
  async poll(cursor: string | undefined, since: Date, ctx: CallContext): Promise<PollResult> {
    const from = cursor === undefined ? since : this.decodeCursor(cursor);
    const fromMs = from.getTime();
    let newest = fromMs;
    const byId = new Map<string, WorkOrder>();
    const query: Query = [
      ['limit', String(this.o.pageSize)], ['sort', '-updatedAt'], ['updatedAt[gte]', from.toISOString()],
      ['show_upcoming', 'true'], ...expand(EXPAND_LIST),
    ];
    await this.pages('/workorders', query, 'workOrders', ctx, (item, where, res) => {
      const changed = this.guard(res, () => toDate('revision', `${where}.updatedAt`, own(item, 'updatedAt'))).getTime();
      if (changed < fromMs) return 'stop';
      newest = Math.max(newest, changed);
      const order = mapListed(ctx, () => String(own(item, 'id')), () => this.map(item, where, res));
      if (order) keepNewest(byId, order);
      return 'next';
    });
    return { orders: [...byId.values()], cursor: `mx1:${new Date(newest).toISOString()}` };
  }

  /** Every order in a status not mapped to completed/closed/cancelled/draft, by creation date (which never moves). */
  async listOpen(ctx: CallContext): Promise<WorkOrder[]> {
    const statuses = Object.entries(this.o.mapping.statusMap).filter(([, s]) => !NOT_OPEN.includes(s)).map(([code]) => code);
    if (statuses.length === 0) return [];
    const byId = new Map<string, WorkOrder>();
    const query: Query = [
      ['limit', String(this.o.pageSize)], ['sort', 'createdAt'], ['show_upcoming', 'true'],
      ...statuses.map((s) => ['statuses', s] as const), ...expand(EXPAND_LIST),
    ];
    await this.pages('/workorders', query, 'workOrders', ctx, (item, where, res) => {
      const order = mapListed(ctx, () => String(own(item, 'id')), () => this.map(item, where, res));
      if (order && !NOT_OPEN.includes(order.status)) keepNewest(byId, order);
      return 'next';
    });
    return [...byId.values()];
  }

  async listAssets(ctx: CallContext): Promise<AssetRecord[]> {
    const out: AssetRecord[] = [];
    const query: Query = [['limit', String(this.o.pageSize)], ...expand(EXPAND_ASSETS)];
    await this.pages('/assets', query, 'assets', ctx, (item, where, res) => {
      out.push(this.guard(res, () => this.asset(item, where)));
      return 'next';
    });
    return out;
  }

  /**
   * A comment on the order. `skipWebhook` keeps wogate's own note from ringing its doorbell again;
   * comments do not move `updatedAt` (MaintainX documents that), so the note changes no revision.
   */
  async writeBack(orderId: string, note: string, ctx: CallContext): Promise<void> {
    const content = note.length > MAX_NOTE_LENGTH ? `${note.slice(0, MAX_NOTE_LENGTH - 1)}…` : note;
    const res = await this.request('POST', `/workorders/${this.orderId(orderId)}/comments`, [['skipWebhook', 'true']], { content }, ctx, [404]);
    if (res.status === 404) {
      throw new SourceError(this.o.sourceId, `POST ${pathOf(res)} answered 404: work order ${orderId} not found`, false, { method: 'POST', path: pathOf(res), status: 404 });
    }
  }

  /**
   * Opens a work order for a post-event review: the title, the details as description, priority
   * HIGH, due at `dueAt`, filed at the configured location/asset/categories. MaintainX numbers it
   * and sets it OPEN. A 2xx without a usable `id` is not retryable: the order exists, and a retry
   * would open a second one.
   */
  async createReview(input: ReviewOrderInput, ctx: CallContext): Promise<{ orderId: string }> {
    const r = this.o.review ?? {};
    const location = input.site ?? r.locationId;
    if (location !== undefined && !MAINTAINX_NUMBER.test(location)) {
      const path = this.pathOf('/workorders');
      throw new SourceError(this.o.sourceId, `POST ${path}: review location ${JSON.stringify(location.slice(0, 20))} is not a MaintainX location id (a positive integer)`, false, { method: 'POST', path });
    }
    // eslint-disable-next-line no-control-regex -- one line, nothing invisible
    const title = input.title.replace(/[\u0000-\u001f\u007f]/g, ' ').trim();
    const body = {
      title: title.length > MAX_TITLE_LENGTH ? `${title.slice(0, MAX_TITLE_LENGTH - 1)}…` : title,
      description: input.details.slice(0, MAX_DESCRIPTION_LENGTH),
      priority: 'HIGH',
      dueDate: input.dueAt.toISOString(),
      ...(location !== undefined ? { locationId: Number(location) } : {}),
      ...(r.assetId !== undefined ? { assetId: Number(r.assetId) } : {}),
      ...(r.categories !== undefined && r.categories.length > 0 ? { categories: [...r.categories] } : {}),
    };
    // skipWebhook: wogate's own order needs no doorbell back to wogate.
    const res = await this.request('POST', '/workorders', [['skipWebhook', 'true']], body, ctx);
    const id = own(this.parse(res, 'a JSON object with the new work order\'s "id"'), 'id');
    const orderId = typeof id === 'number' && Number.isSafeInteger(id) ? String(id) : typeof id === 'string' ? id : undefined;
    if (orderId === undefined || !WORK_ORDER_ID.test(orderId)) throw this.invalid(res, 'the created work order came back without a usable "id"; it was probably created, find it in MaintainX (not retried)');
    return { orderId };
  }

  async close(): Promise<void> {
    this.agents.http.destroy();
    this.agents.https.destroy();
  }

  private orderId(id: string): string {
    // Interpolated into the URL path; MaintainX's global ids are positive integers.
    if (!WORK_ORDER_ID.test(id)) {
      throw new SourceError(this.o.sourceId, `${JSON.stringify(id.slice(0, 40))} is not a MaintainX work order id (a positive integer)`, false);
    }
    return id;
  }

  private decodeCursor(cursor: string): Date {
    const m = CURSOR.exec(cursor);
    const d = m?.[1] === undefined ? undefined : new Date(m[1]);
    if (d === undefined || Number.isNaN(d.getTime())) {
      // Retrying cannot repair a stored cursor; an operator resets it.
      throw new SourceError(this.o.sourceId, 'stored poll cursor is not a MaintainX cursor (mx1:<ISO time>)', false);
    }
    return d;
  }

  private map(item: unknown, where: string, res: AxiosResponse<string>): WorkOrder {
    return this.guard(res, () => mapMaintainXOrder(this.o.sourceId, item, this.o.mapping, { path: where }));
  }

  /** A record MaintainX sent that cannot be read becomes a response error naming the request and the field. */
  private guard<T>(res: AxiosResponse<string>, f: () => T): T {
    try {
      return f();
    } catch (e) {
      if (e instanceof WogateError && e.code === 'HOOK_MAPPING_FAILED') {
        // `path` is the request's here; the record's own path moves to `recordPath`.
        throw this.invalid(res, e.message, { field: e.details?.field, recordPath: e.details?.path });
      }
      throw e;
    }
  }

  private asset(item: unknown, where: string): AssetRecord {
    const idValue = own(item, 'id');
    if (!isPlainObject(item) || idValue === undefined || idValue === null) {
      throw new WogateError('HOOK_MAPPING_FAILED', `id: path "${where}.id" is missing`, { field: 'id', path: `${where}.id` });
    }
    const f = this.o.assetFields ?? {};
    const text = (label: string | undefined): string | undefined => {
      if (label === undefined) return undefined;
      const v = own(own(item, 'extraFields'), label);
      return typeof v === 'string' && v.trim() !== '' ? v.trim() : typeof v === 'number' ? String(v) : undefined;
    };
    const name = own(item, 'name');
    const types = own(item, 'assetTypes');
    const firstType: unknown = Array.isArray(types) ? types[0] : undefined;
    const cls = f.class !== undefined ? text(f.class) : typeof firstType === 'string' && firstType.trim() !== '' ? firstType.trim() : undefined;
    const crit = text(f.criticality)?.toLowerCase();
    const loc = own(item, 'locationId');
    const site = f.site !== undefined ? text(f.site) : typeof loc === 'number' || typeof loc === 'string' ? String(loc) : undefined;
    const zone = text(f.zone);
    return canonicalAsset({
      id: toId('id', `${where}.id`, idValue),
      ...(typeof name === 'string' && name.trim() !== '' ? { name: name.trim() } : {}),
      ...(cls === undefined ? {} : { class: cls }),
      ...(crit !== undefined && (CRITICALITIES as readonly string[]).includes(crit) ? { criticality: crit as Criticality } : {}),
      ...(site === undefined ? {} : { site }),
      ...(zone === undefined ? {} : { zone }),
    });
  }

  /**
   * Follows `nextCursor` to the end. Any failure throws before the caller sees a result, so a poll
   * that fails on page 3 returns no cursor at all and the next one starts again from the old one.
   */
  private async pages(path: string, query: Query, key: string, ctx: CallContext, visit: Visit): Promise<void> {
    let cursor: string | undefined;
    const followed = new Set<string>();
    for (let page = 0; ; page++) {
      if (page >= this.o.maxPages) {
        throw new SourceError(this.o.sourceId, `GET ${this.pathOf(path)}: more than ${this.o.maxPages} pages, stopped`, false, { method: 'GET', path: this.pathOf(path) });
      }
      const res = await this.request('GET', path, cursor === undefined ? query : [...query, ['cursor', cursor]], undefined, ctx);
      const body = this.parse(res, `a JSON object with a "${key}" array`);
      const items = own(body, key);
      if (!Array.isArray(items)) throw this.invalid(res, `expected a JSON object with a "${key}" array`);
      for (let i = 0; i < items.length; i++) {
        if (visit(items[i], `${key}.${i}`, res) === 'stop') return;
      }
      const next = own(body, 'nextCursor');
      if (next === undefined || next === null || next === '') return;
      if (typeof next !== 'string') throw this.invalid(res, 'expected "nextCursor" to be a string or null');
      if (followed.has(next)) throw this.invalid(res, '"nextCursor" repeats a cursor already followed');
      followed.add(next);
      cursor = next;
    }
  }

  private pathOf(path: string): string {
    return new URL(this.base + path).pathname;
  }

  private parse(res: AxiosResponse<string>, expected: string): unknown {
    try {
      return JSON.parse(res.data) as unknown;
    } catch {
      const type = res.headers['content-type'];
      const got = typeof type === 'string' && type !== '' ? `${type.split(';', 1)[0]} that is not JSON` : 'a body that is not JSON';
      throw this.invalid(res, `expected ${expected}, got ${got}`);
    }
  }

  private invalid(res: AxiosResponse<string>, what: string, extra?: Record<string, unknown>): SourceError {
    const method = (res.config.method ?? 'GET').toUpperCase();
    const path = pathOf(res);
    return new SourceError(this.o.sourceId, `${method} ${path} answered ${res.status}: ${what}; body: ${this.excerpt(res.data)}`, false, {
      ...extra, code: 'SOURCE_RESPONSE_INVALID', method, path, status: res.status,
    });
  }

  private async request(
    method: 'GET' | 'POST', path: string, query: Query, body: unknown, ctx: CallContext, accept: readonly number[] = [],
  ): Promise<AxiosResponse<string>> {
    const qs = new URLSearchParams(query as [string, string][]).toString();
    const url = `${this.base}${path}${qs === '' ? '' : `?${qs}`}`;
    const urlPath = this.pathOf(path);
    // axios' own timeout is per socket phase; this deadline bounds the whole call, trickled body included.
    const deadline = AbortSignal.timeout(this.o.timeoutMs);
    const signal = ctx.signal ? AbortSignal.any([ctx.signal, deadline]) : deadline;
    const headers = body === undefined ? this.headers : { ...this.headers, 'content-type': 'application/json' };
    const started = Date.now();
    let res: AxiosResponse<string>;
    try {
      res = await this.client.request<string>({ method, url, headers, data: body === undefined ? undefined : JSON.stringify(body), signal });
    } catch (e) {
      throw this.transportError(method, urlPath, e, deadline.aborted);
    }
    ctx.log.debug('maintainx call', { source: this.o.sourceId, method, path: urlPath, status: res.status, ms: Date.now() - started });
    if ((res.status >= 200 && res.status < 300) || accept.includes(res.status)) return res;
    throw this.statusError(method, urlPath, res, ctx.now);
  }

  private transportError(method: string, path: string, e: unknown, timedOut: boolean): SourceError {
    const f = transportFailure(e, timedOut, this.o.timeoutMs, `${this.o.maxResponseBytes} bytes`);
    // An oversized answer comes back oversized: retrying can't help, raising maxResponseBytes can.
    return new SourceError(this.o.sourceId, `${method} ${path}: ${f.problem}`, !f.tooLarge, { method, path, ...f.details, ...(f.tooLarge ? { code: 'SOURCE_RESPONSE_INVALID' } : {}) });
  }

  private statusError(method: string, path: string, res: AxiosResponse<string>, now: Date): SourceError {
    const s = res.status;
    const retryable = s === 408 || s === 429 || s >= 500;
    const retryAfterMs = s === 429 || s === 503 ? parseRetryAfter(res.headers['retry-after'], now, res.headers['x-rate-limit-reset']) : undefined;
    const hint = s >= 300 && s < 400 ? ' (redirects are not followed)' : s === 401 ? ' (API key rejected)' : '';
    return new SourceError(this.o.sourceId, `${method} ${path} answered ${s}${hint}: ${this.excerpt(res.data)}`, retryable, {
      method, path, status: s, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
    });
  }

  private excerpt(data: unknown): string {
    return excerpt(data, [this.o.apiKey]);
  }
}

function expand(names: readonly string[]): (readonly [string, string])[] {
  // MaintainX wants repeated keys (`expand=a&expand=b`), not axios' `expand[]=a`.
  return names.map((n) => ['expand', n] as const);
}

function keepNewest(byId: Map<string, WorkOrder>, order: WorkOrder): void {
  const prev = byId.get(order.id);
  if (prev === undefined || (compareRevisions(order.revision, prev.revision) ?? 0) > 0) byId.set(order.id, order);
}

/** The URL path only: a query string may carry secrets, so it never reaches a message or log. */
function pathOf(res: AxiosResponse<string>): string {
  try {
    return new URL(res.config.url ?? '').pathname;
  } catch {
    return (res.config.url ?? '').split(/[?#]/, 1)[0] ?? '';
  }
}

