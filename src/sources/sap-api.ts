import { isWogateError, WogateError } from '../domain/errors.js';
import type { WorkOrder } from '../domain/workorder.js';
import { pathOf } from '../http-safety.js';
import { getPath } from './mapping.js';
import { SapHttp, type SapHttpOptions, type SapResponse } from './sap-client.js';
import {
  dateTimeOffsetLiteral, mapSapEquipment, mapSapOrder, normalizeId, ORDER_ID, odataDate, parseODataDate, text,
  type SapAssetOptions, type SapMappingOptions,
} from './sap-mapping.js';
import { mapListed, SourceError, type AssetRecord, type CallContext, type PollResult, type ReviewOrderInput, type SourceApi } from './source.js';

/** Break-glass review orders (createReview). Order types, plants and priorities are customizing: use your system's. */
export interface SapReviewOptions {
  /** MaintenanceOrderType of review orders, e.g. PM01 (on-premise standard) or YA01 (S/4HANA Cloud); required to open them. */
  readonly orderType?: string;
  /** MaintenancePlant; default breakGlass.reviewSite, else the first of `plants`. */
  readonly plant?: string;
  /** MaintenancePlanningPlant, where it differs from the plant (central planning); default the plant. */
  readonly planningPlant?: string;
  /** MaintPriority; unset leaves it to the order type's default. */
  readonly priority?: string;
}

export interface SapApiOptions extends Omit<SapHttpOptions, 'csrfServicePath'> {
  /** Default /sap/opu/odata/sap/API_MAINTENANCEORDER. */
  readonly servicePath?: string;
  /** Default /sap/opu/odata/sap/API_EQUIPMENT. */
  readonly equipmentServicePath?: string;
  /** $top per request; default 100. */
  readonly pageSize?: number;
  /** Only orders and equipment of these maintenance plants (MaintenancePlant eq ...). */
  readonly plants?: readonly string[];
  /** Each poll re-reads this far behind its cursor, for changes committed late with an earlier timestamp; default 60 s. */
  readonly pollOverlapMs?: number;
  /** listOpen reads orders whose window ended at most this long ago; default 30 days. */
  readonly openLookbackMs?: number;
  readonly mapping?: SapMappingOptions;
  readonly assets?: SapAssetOptions;
  /** Long text written back (and of review orders): text ID (default KOPF, the order header text) and language (default EN). */
  readonly writeBack?: { readonly textObjectType?: string; readonly language?: string };
  readonly review?: SapReviewOptions;
}

const SETTLED = new Set(['completed', 'closed', 'cancelled', 'draft']);
const MAX_PAGES = 100_000;
const MAX_NOTE = 2000;
export const PLANT = /^[A-Za-z0-9]{1,4}$/;
const TEXT_KEY = /^[A-Za-z0-9]{1,4}$/;
const ORDER_TYPE = /^[A-Za-z0-9]{1,4}$/;
const PRIORITY = /^[A-Za-z0-9]$/;
/** MaintenanceOrderDesc is String(40) in API_MAINTENANCEORDER. */
const DESCRIPTION_MAX = 40;
const REVIEW_TEXT_MAX = 20_000;

/** SAP compares order numbers by their internal, zero-padded form: "999" sorts before "1000". */
export function compareOrderKeys(a: string, b: string): number {
  const pa = /^\d+$/.test(a) ? a.padStart(12, '0') : a;
  const pb = /^\d+$/.test(b) ? b.padStart(12, '0') : b;
  return pa < pb ? -1 : pa > pb ? 1 : 0;
}

function quoteKey(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

interface Row {
  readonly rec: unknown;
  readonly changedMs?: number;
  readonly key: string;
}

/**
 * SAP S/4HANA Plant Maintenance over OData V2: API_MAINTENANCEORDER for orders, notes and
 * break-glass review orders, API_EQUIPMENT for the asset register.
 *
 * Paging is by key (keyset), not $skip: an order that changes while pages are read moves to the
 * end of a LastChangeDateTime ordering, and with $skip the order behind it would slide onto a page
 * already read and be missed. Each query continues after the last (LastChangeDateTime,
 * MaintenanceOrder) it saw; server-driven pages (d.__next) within one query are followed too.
 */
export class SapApi implements SourceApi {
  private readonly http: SapHttp;
  private readonly svc: string;
  private readonly eqSvc: string;
  private readonly pageSize: number;
  private readonly expand: string;
  private readonly strip: boolean;

  constructor(private readonly o: SapApiOptions) {
    this.svc = (o.servicePath ?? '/sap/opu/odata/sap/API_MAINTENANCEORDER').replace(/\/+$/, '');
    this.eqSvc = (o.equipmentServicePath ?? '/sap/opu/odata/sap/API_EQUIPMENT').replace(/\/+$/, '');
    for (const p of [this.svc, this.eqSvc]) {
      if (!/^\/[A-Za-z0-9_/.-]*$/.test(p)) throw new WogateError('CONFIG_INVALID', `source ${o.sourceId}: service path ${JSON.stringify(p)} must start with "/" and hold only letters, digits, "_", "-", "." and "/"`);
    }
    for (const pl of o.plants ?? []) {
      if (!PLANT.test(pl)) throw new WogateError('CONFIG_INVALID', `source ${o.sourceId}: plant ${JSON.stringify(pl)} is not 1 to 4 letters or digits`);
    }
    const wb = o.writeBack ?? {};
    for (const v of [wb.textObjectType, wb.language]) {
      if (v !== undefined && !TEXT_KEY.test(v)) throw new WogateError('CONFIG_INVALID', `source ${o.sourceId}: writeBack text ID and language are 1 to 4 letters or digits`);
    }
    const rv = o.review ?? {};
    for (const [key, v, re] of [['orderType', rv.orderType, ORDER_TYPE], ['plant', rv.plant, PLANT], ['planningPlant', rv.planningPlant, PLANT], ['priority', rv.priority, PRIORITY]] as const) {
      if (v !== undefined && !re.test(v)) throw new WogateError('CONFIG_INVALID', `source ${o.sourceId}: review.${key} ${JSON.stringify(v.slice(0, 20))} is not ${key === 'priority' ? 'one letter or digit' : '1 to 4 letters or digits'}`);
    }
    this.pageSize = o.pageSize ?? 100;
    if (!Number.isInteger(this.pageSize) || this.pageSize < 1 || this.pageSize > 5000) throw new WogateError('CONFIG_INVALID', `source ${o.sourceId}: pageSize must be 1 to 5000`);
    this.expand = ['to_MaintenanceOrderPartner', ...(o.mapping?.includeObjectList === true ? ['to_MaintOrderObjectListItem'] : [])].join(',');
    this.strip = o.mapping?.stripLeadingZeros ?? true;
    this.http = new SapHttp({ ...o, csrfServicePath: this.svc });
  }

  async close(): Promise<void> {
    await this.http.close();
  }

  async fetchOrder(id: string, ctx: CallContext): Promise<WorkOrder | undefined> {
    const url = this.http.url(`${this.svc}/MaintenanceOrder(${quoteKey(this.checkId(id))})`, { $expand: this.expand });
    const res = await this.http.get(url, ctx, [200, 404]);
    if (res.status === 404) return undefined;
    const rec = getPath(res.body, 'd');
    if (rec === undefined) throw this.http.invalid('GET', url, { status: res.status }, 'expected {"d": {...}}');
    return this.map(rec, res);
  }

  async poll(cursor: string | undefined, since: Date, ctx: CallContext): Promise<PollResult> {
    let start = since;
    if (cursor !== undefined) {
      const t = Date.parse(cursor);
      if (Number.isFinite(t)) start = new Date(t);
      else ctx.log.warn('unreadable SAP poll cursor; reading from the initial lookback', { source: this.o.sourceId });
    }
    const from = new Date(Math.max(0, start.getTime() - (this.o.pollOverlapMs ?? 60_000)));
    const base = [`LastChangeDateTime ge ${dateTimeOffsetLiteral(from)}`, ...this.plantFilter()];
    const orders: WorkOrder[] = [];
    let maxMs = start.getTime();
    let after: { ms: number; key: string } | undefined;
    for (let page = 0; page < MAX_PAGES; page++) {
      const filter = after
        ? [...base, `(LastChangeDateTime gt ${dateTimeOffsetLiteral(new Date(after.ms))} or (LastChangeDateTime eq ${dateTimeOffsetLiteral(new Date(after.ms))} and MaintenanceOrder gt ${quoteKey(after.key)}))`]
        : base;
      const rows = await this.query(`${this.svc}/MaintenanceOrder`, filter, 'LastChangeDateTime asc,MaintenanceOrder asc', ctx, (rec, url) => {
        const ms = parseODataDate(getPath(rec, 'LastChangeDateTime'))?.getTime();
        if (ms === undefined) throw this.http.invalid('GET', url, { status: 200 }, 'a polled order has no LastChangeDateTime');
        return ms;
      });
      for (const r of rows.rows) {
        orders.push(r.order);
        maxMs = Math.max(maxMs, r.changedMs as number);
      }
      const last = rows.rows.at(-1);
      if (!rows.more || !last) return { orders, cursor: new Date(maxMs).toISOString() };
      const next = { ms: last.changedMs as number, key: last.key };
      if (after && (next.ms < after.ms || (next.ms === after.ms && compareOrderKeys(next.key, after.key) <= 0))) throw this.stuck(rows.url);
      after = next;
    }
    throw this.stuck(`${this.svc}/MaintenanceOrder`);
  }

  async listOpen(ctx: CallContext): Promise<WorkOrder[]> {
    const endField = this.o.mapping?.window === 'scheduled' ? 'MaintOrdSchedldBscEndDateTime' : 'MaintOrdBasicEndDateTime';
    // Open status is not filterable (SystemStatusText is sap:filterable=false), so the server is asked
    // only for orders whose window could still matter and the status is judged here.
    const from = new Date(Math.max(0, ctx.now.getTime() - (this.o.openLookbackMs ?? 30 * 86_400_000)));
    const base = [`${endField} ge ${dateTimeOffsetLiteral(from)}`, ...this.plantFilter()];
    const open: WorkOrder[] = [];
    let after: string | undefined;
    for (let page = 0; page < MAX_PAGES; page++) {
      const filter = after === undefined ? base : [...base, `MaintenanceOrder gt ${quoteKey(after)}`];
      const rows = await this.query(`${this.svc}/MaintenanceOrder`, filter, 'MaintenanceOrder asc', ctx);
      for (const r of rows.rows) if (!SETTLED.has(r.order.status)) open.push(r.order);
      const last = rows.rows.at(-1);
      if (!rows.more || !last) return open;
      if (after !== undefined && compareOrderKeys(last.key, after) <= 0) throw this.stuck(rows.url);
      after = last.key;
    }
    throw this.stuck(`${this.svc}/MaintenanceOrder`);
  }

  /**
   * Equipment changes rarely and has a two-part key (Equipment, ValidityEndDate), so it is paged
   * with $skip; of several usage periods of one equipment the one valid longest is kept.
   */
  async listAssets(ctx: CallContext): Promise<AssetRecord[]> {
    const set = this.o.assets?.entitySet ?? 'Equipment';
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(set)) throw new WogateError('CONFIG_INVALID', `source ${this.o.sourceId}: assets.entitySet is not an entity set name`);
    const path = `${this.eqSvc}/${set}`;
    const filter = this.plantFilter();
    const best = new Map<string, { validTo: number; asset: AssetRecord }>();
    let previousFirst: string | undefined;
    for (let skip = 0, page = 0; page < MAX_PAGES; page++, skip += this.pageSize) {
      const first = this.http.url(path, { $top: String(this.pageSize), $skip: String(skip), $orderby: 'Equipment asc', ...(filter.length ? { $filter: filter.join(' and ') } : {}) });
      let url = first;
      let count = 0;
      let firstKey: string | undefined;
      for (;;) {
        const res = await this.http.get(url, ctx);
        const items = this.results(res, url);
        count += items.length;
        for (const rec of items) {
          firstKey ??= text(rec, 'Equipment');
          const asset = mapSapEquipment(rec, this.o.assets, this.strip);
          if (!asset) continue;
          const validTo = parseODataDate(getPath(rec, 'ValidityEndDate'))?.getTime() ?? Number.MAX_SAFE_INTEGER;
          const prev = best.get(asset.id);
          if (!prev || validTo >= prev.validTo) best.set(asset.id, { validTo, asset });
        }
        const next = this.nextLink(res, url);
        if (next === undefined) break;
        url = next;
      }
      // A short page is the last; a page longer than $top means $top (and so $skip) was ignored.
      if (count < this.pageSize || count > this.pageSize) return [...best.values()].map((b) => b.asset);
      if (firstKey !== undefined && firstKey === previousFirst) throw this.stuck(first);
      previousFirst = firstKey;
    }
    throw this.stuck(path);
  }

  /**
   * Appends the note to the order's header long text (text ID KOPF by default): POST on
   * to_MaintenanceOrderLongText when the order has none in that language yet, otherwise PATCH of
   * the MaintenanceOrderLongText entity with the old text plus the note, guarded by its ETag.
   */
  async writeBack(orderId: string, note: string, ctx: CallContext): Promise<void> {
    const id = this.checkId(orderId);
    const textType = this.o.writeBack?.textObjectType ?? 'KOPF';
    const language = this.o.writeBack?.language ?? 'EN';
    const clean = Array.from(note.trim(), (c) => (c !== '\n' && (c < ' ' || c === '\u007f') ? ' ' : c)).join('').slice(0, MAX_NOTE);
    if (clean === '') return;
    const listUrl = this.http.url(`${this.svc}/MaintenanceOrder(${quoteKey(id)})/to_MaintenanceOrderLongText`);
    const list = await this.http.get(listUrl, ctx, [200, 404]);
    if (list.status === 404) throw new SourceError(this.o.sourceId, `GET ${list.path} answered 404: order ${id} not found, note not written`, false, { method: 'GET', path: list.path, status: 404 });
    const current = this.results(list, listUrl).find((t) => text(t, 'TextObjectType') === textType && text(t, 'Language')?.toUpperCase() === language.toUpperCase());
    if (current === undefined) {
      const url = this.http.url(`${this.svc}/MaintenanceOrder(${quoteKey(id)})/to_MaintenanceOrderLongText`);
      await this.http.write('POST', url, { TextObjectType: textType, Language: language, MaintenanceOrderLongText: clean }, ctx, [201, 200, 204]);
      return;
    }
    const old = typeof getPath(current, 'MaintenanceOrderLongText') === 'string' ? (getPath(current, 'MaintenanceOrderLongText') as string) : '';
    const etag = getPath(current, '__metadata.etag');
    const key = `MaintenanceOrder=${quoteKey(id)},TextObjectType=${quoteKey(textType)},Language=${quoteKey(language)}`;
    const url = this.http.url(`${this.svc}/MaintenanceOrderLongText(${key})`);
    await this.http.write('PATCH', url, { MaintenanceOrderLongText: old === '' ? clean : `${old}\n${clean}` }, ctx, [204, 200], {
      // With the ETag a concurrent edit makes SAP answer 412 (retried from a fresh read) instead of losing a note.
      'if-match': typeof etag === 'string' && etag !== '' && !/[\r\n\0]/.test(etag) ? etag : '*',
    });
  }

  /**
   * Opens a maintenance order for a post-event review: the configured order type and plant, the
   * title as MaintenanceOrderDesc (SAP's 40 characters), the details as header long text in the
   * same call (deep insert on to_MaintenanceOrderLongText, so there is never an order without its
   * story and nothing half-done to retry), basic start now and basic end at the due date. SAP
   * numbers it and sets it CRTD. Returns the order number as fetchOrder reads it.
   */
  async createReview(input: ReviewOrderInput, ctx: CallContext): Promise<{ orderId: string }> {
    const url = this.http.url(`${this.svc}/MaintenanceOrder`);
    const path = pathOf(url);
    const refuse = (why: string) => new SourceError(this.o.sourceId, `POST ${path}: ${why}`, false, { method: 'POST', path });
    const r = this.o.review ?? {};
    if (r.orderType === undefined) throw refuse('no order type for review orders (set review.orderType on this source)');
    const plant = input.site ?? r.plant ?? this.o.plants?.[0];
    if (plant === undefined) throw refuse('no plant to open the review order at (set breakGlass.reviewSite, or review.plant or plants on this source)');
    if (!PLANT.test(plant)) throw refuse(`${JSON.stringify(plant.slice(0, 20))} is not an SAP plant (1 to 4 letters or digits)`);
    const title = oneLine(input.title);
    // A review opened late (the CMMS was down past the due date) must not end before it starts: SAP would refuse it.
    const start = ctx.now.getTime() < input.dueAt.getTime() ? ctx.now : input.dueAt;
    const body = {
      MaintenanceOrderType: r.orderType,
      MaintenanceOrderDesc: title.length > DESCRIPTION_MAX ? `${title.slice(0, DESCRIPTION_MAX - 1)}…` : title,
      MaintenancePlanningPlant: r.planningPlant ?? plant,
      MaintenancePlant: plant,
      ...(r.priority !== undefined ? { MaintPriority: r.priority } : {}),
      MaintOrdBasicStartDateTime: odataDate(start),
      MaintOrdBasicEndDateTime: odataDate(input.dueAt),
      to_MaintenanceOrderLongText: [{
        TextObjectType: this.o.writeBack?.textObjectType ?? 'KOPF',
        Language: this.o.writeBack?.language ?? 'EN',
        MaintenanceOrderLongText: keepLines(input.details).slice(0, REVIEW_TEXT_MAX),
      }],
    };
    const res = await this.http.create(url, body, ctx);
    const raw = text(getPath(res.body, 'd'), 'MaintenanceOrder');
    if (raw === undefined || !ORDER_ID.test(raw)) {
      // Created, but the answer does not say as what: not retryable, or a second order would be opened.
      throw new SourceError(this.o.sourceId, `POST ${res.path} answered ${res.status} without a usable d.MaintenanceOrder; the order was probably created, find it in SAP (not retried)`, false, {
        code: 'SOURCE_RESPONSE_INVALID', method: 'POST', path: res.path, status: res.status,
      });
    }
    return { orderId: normalizeId(raw, this.strip) };
  }

  private checkId(id: string): string {
    if (!ORDER_ID.test(id)) {
      throw new SourceError(this.o.sourceId, `order id ${JSON.stringify(id.slice(0, 40))} is not 1 to 12 letters, digits, "-" or "_"`, false, { code: 'SOURCE_RESPONSE_INVALID' });
    }
    return id;
  }

  private plantFilter(): string[] {
    const plants = this.o.plants ?? [];
    return plants.length === 0 ? [] : [`(${plants.map((p) => `MaintenancePlant eq ${quoteKey(p)}`).join(' or ')})`];
  }

  private map(rec: unknown, res: SapResponse): WorkOrder {
    try {
      return mapSapOrder(this.o.sourceId, rec, this.o.mapping);
    } catch (e) {
      if (isWogateError(e, 'HOOK_MAPPING_FAILED')) {
        throw new SourceError(this.o.sourceId, `GET ${res.path}: ${e.message}`, false, { code: 'SOURCE_RESPONSE_INVALID', method: 'GET', path: res.path, ...e.details });
      }
      throw e;
    }
  }

  private results(res: SapResponse, url: string): unknown[] {
    const items = getPath(res.body, 'd.results');
    if (!Array.isArray(items)) throw this.http.invalid('GET', url, { status: res.status }, 'expected {"d": {"results": [...]}}');
    return items;
  }

  private nextLink(res: SapResponse, url: string): string | undefined {
    const next = getPath(res.body, 'd.__next');
    if (next === undefined || next === null) return undefined;
    const page = typeof next === 'string' ? this.http.nextPage(next, url) : undefined;
    if (page === undefined) throw this.http.invalid('GET', url, { status: res.status }, 'd.__next is not a link with a query');
    return page;
  }

  /**
   * One keyset query: $top rows after the given filter, following d.__next within it. `more` says
   * a full page came back, so another query may find more.
   */
  private async query(
    path: string,
    filter: readonly string[],
    orderby: string,
    ctx: CallContext,
    changed?: (rec: unknown, url: string) => number,
  ): Promise<{ rows: (Row & { order: WorkOrder })[]; more: boolean; url: string }> {
    const first = this.http.url(path, { $filter: filter.join(' and '), $orderby: orderby, $top: String(this.pageSize), $expand: this.expand });
    let url = first;
    const rows: (Row & { order: WorkOrder })[] = [];
    for (;;) {
      const res = await this.http.get(url, ctx);
      for (const rec of this.results(res, url)) {
        const key = text(rec, 'MaintenanceOrder');
        if (key === undefined) throw this.http.invalid('GET', url, { status: res.status }, 'an order has no MaintenanceOrder');
        const order = mapListed(ctx, () => key, () => this.map(rec, res));
        if (!order) continue;
        rows.push({ rec, key, order, ...(changed ? { changedMs: changed(rec, url) } : {}) });
      }
      const next = this.nextLink(res, url);
      if (next === undefined) break;
      url = next;
    }
    return { rows, more: rows.length >= this.pageSize, url: first };
  }

  private stuck(url: string): SourceError {
    return this.http.invalid('GET', url.startsWith('http') ? url : this.http.url(url), { status: 200 }, 'paging did not advance (the server ignored $orderby or the key filter)');
  }
}

// eslint-disable-next-line no-control-regex -- every control character, line breaks included
const CONTROL = /[\u0000-\u001f\u007f]/g;
// eslint-disable-next-line no-control-regex -- control characters other than the line feed
const CONTROL_BUT_LF = /[\u0000-\u0009\u000b-\u001f\u007f]/g;

function oneLine(s: string): string {
  return s.replace(CONTROL, ' ').trim();
}

function keepLines(s: string): string {
  return s.replace(/\r\n?/g, '\n').replace(CONTROL_BUT_LF, ' ').trim();
}
