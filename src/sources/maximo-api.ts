import { WogateError, type CanonicalStatus, type WorkOrder } from '../domain/index.js';
import { getPath } from './mapping.js';
import { MaximoClient, type MaximoClientOptions } from './maximo-client.js';
import {
  assetSelect, formatMaximoDate, lowerKeys, mapMaximoAsset, mapMaximoRecord, orderKeyOf, parseMaximoDate, workOrderSelect,
  type MaximoAssetMapping, type MaximoMapping,
} from './maximo-mapping.js';
import { mapListed, SourceError, type AssetRecord, type CallContext, type PollResult, type ReviewOrderInput, type SourceApi } from './source.js';

export interface MaximoApiOptions extends MaximoClientOptions {
  readonly objectStructure: string;
  readonly assetObjectStructure: string;
  readonly pageSize: number;
  readonly sites: readonly string[];
  /** ANDed into every work-order query (poll, listOpen, fetchOrder, writeBack's look-up). */
  readonly where?: string;
  /** The server-side prefilter of listOpen; the mapped status decides in the end. */
  readonly openWhere: string;
  readonly assetWhere?: string;
  /** Each poll reads this far behind its cursor, for saves that commit after a later one. */
  readonly pollOverlapMs: number;
  readonly mapping: MaximoMapping;
  readonly assets: MaximoAssetMapping;
  readonly writeBack: { readonly logType: string; readonly clientViewable?: boolean };
}

const SETTLED: ReadonlySet<CanonicalStatus> = new Set(['completed', 'closed', 'cancelled', 'draft']);
const CURSOR_PREFIX = 'changedate:';
// Characters an OSLC string literal can't hold unescaped, and wildcards that would turn = into LIKE.
// eslint-disable-next-line no-control-regex -- control characters are among them
const UNQUOTABLE = /["\\%*\u0000-\u001f\u007f]/;
const REST_ID = /^[A-Za-z0-9_\-.~+=]+$/;
const WORKLOG_DESCRIPTION_MAX = 100;
const WORKLOG_LONG_MAX = 32_000;

/** The API side of the Maximo adapter: reads by cursor and status, re-reads by id, worklog write-back. */
export class MaximoApi implements SourceApi {
  private readonly client: MaximoClient;
  private readonly select: string;

  constructor(private readonly o: MaximoApiOptions) {
    this.client = new MaximoClient(o);
    this.select = workOrderSelect(o.mapping);
    for (const s of o.sites) {
      if (UNQUOTABLE.test(s) || s.trim() === '') throw new WogateError('CONFIG_INVALID', `source ${o.sourceId}: site ${JSON.stringify(s)} can't be used in an oslc.where clause`);
    }
  }

  close(): void {
    this.client.close();
  }

  async fetchOrder(id: string, ctx: CallContext): Promise<WorkOrder | undefined> {
    const record = await this.findOne(id, this.select, ctx);
    return record ? this.map(record, 'GET') : undefined;
  }

  /**
   * Changes since the cursor (changedate, read `>=` and `pollOverlap` behind it, so same-second
   * saves and late commits are read again rather than missed; wogate drops what it already has
   * by revision). Offset paging shifts when a record already read changes while later pages are
   * read, which can push one unread record onto a page already fetched: a record seen twice
   * shows that happened, and the cursor then stays at the first sighting so the next poll reads
   * that stretch again.
   */
  async poll(cursor: string | undefined, since: Date, ctx: CallContext): Promise<PollResult> {
    const from = this.parseCursor(cursor, ctx) ?? since;
    const lower = new Date(from.getTime() - this.o.pollOverlapMs);
    const byId = new Map<string, { order: WorkOrder; firstSeen: number }>();
    let maxSeen = from.getTime();
    let rewindTo: number | undefined;
    await this.client.collection(this.o.objectStructure, {
      select: this.select,
      where: this.where(`changedate>="${formatMaximoDate(lower)}"`),
      orderBy: '+changedate,+workorderid',
      pageSize: this.o.pageSize,
    }, ctx, (members) => {
      for (const raw of members) {
        const record = lowerKeys(raw);
        const order = mapListed(ctx, () => orderKeyOf(record, this.o.mapping).id, () => this.map(record, 'GET'));
        if (!order) continue;
        const changed = this.changedAt(record);
        maxSeen = Math.max(maxSeen, changed);
        const prior = byId.get(order.id);
        if (prior) rewindTo = Math.min(rewindTo ?? Infinity, prior.firstSeen);
        byId.set(order.id, { order, firstSeen: prior?.firstSeen ?? changed });
      }
    });
    const next = rewindTo ?? maxSeen;
    return { orders: [...byId.values()].map((v) => v.order), cursor: `${CURSOR_PREFIX}${new Date(next).toISOString()}` };
  }

  /**
   * Orders not yet in history (`historyflag=0` by default: CLOSE and CAN set it, synonyms or not),
   * then those whose mapped status can still hold access. An order that moves to history while
   * the pages are read may be skipped; the poller re-reads every stored open order not listed.
   */
  async listOpen(ctx: CallContext): Promise<WorkOrder[]> {
    const byId = new Map<string, WorkOrder>();
    await this.client.collection(this.o.objectStructure, {
      select: this.select,
      where: this.where(this.o.openWhere),
      orderBy: '+workorderid',
      pageSize: this.o.pageSize,
    }, ctx, (members) => {
      for (const raw of members) {
        const record = lowerKeys(raw);
        const order = mapListed(ctx, () => orderKeyOf(record, this.o.mapping).id, () => this.map(record, 'GET'));
        if (!order) continue;
        if (!SETTLED.has(order.status)) byId.set(order.id, order);
        else byId.delete(order.id);
      }
    });
    return [...byId.values()];
  }

  async listAssets(ctx: CallContext): Promise<AssetRecord[]> {
    const byId = new Map<string, AssetRecord>();
    const path = this.client.pathFor(this.o.assetObjectStructure);
    const clauses = [this.sitesClause(), this.o.assetWhere].filter((c): c is string => c !== undefined && c !== '');
    await this.client.collection(this.o.assetObjectStructure, {
      select: assetSelect(this.o.assets),
      ...(clauses.length > 0 ? { where: clauses.join(' and ') } : {}),
      orderBy: '+siteid,+assetnum',
      pageSize: this.o.pageSize,
    }, ctx, (members) => {
      for (const raw of members) {
        try {
          const asset = mapMaximoAsset(lowerKeys(raw), this.o.assets);
          byId.set(asset.id, asset);
        } catch (e) {
          throw this.mappingError(e, 'GET', path);
        }
      }
    });
    return [...byId.values()];
  }

  /** Adds a worklog entry: the first line as its description, the whole note as long description. */
  async writeBack(orderId: string, note: string, ctx: CallContext): Promise<void> {
    const record = await this.findOne(orderId, 'wonum,siteid', ctx);
    const path = this.client.pathFor(this.o.objectStructure);
    if (!record) throw new SourceError(this.o.sourceId, `GET ${path}: work order ${orderId} not found (deleted, or outside this source's sites/where)`, false, { method: 'GET', path });
    const restId = restIdOf(record.href, this.o.objectStructure);
    if (restId === undefined) throw this.client.invalid(undefined, 'GET', path, `work order ${orderId} came without a usable href`, false);
    // eslint-disable-next-line no-control-regex -- log text keeps line breaks and nothing else invisible
    const clean = note.replace(/\r\n?/g, '\n').replace(/[\u0000-\u0009\u000b-\u001f\u007f]/g, ' ').trim();
    const first = (clean.split('\n', 1)[0] ?? '').trim() || 'wogate';
    const entry: Record<string, unknown> = {
      description: first.length > WORKLOG_DESCRIPTION_MAX ? `${first.slice(0, WORKLOG_DESCRIPTION_MAX - 1)}…` : first,
      description_longdescription: clean.slice(0, WORKLOG_LONG_MAX),
      logtype: this.o.writeBack.logType,
    };
    if (this.o.writeBack.clientViewable !== undefined) entry.clientviewable = this.o.writeBack.clientViewable;
    await this.client.patchMember(this.o.objectStructure, restId, { worklog: [entry] }, ctx);
  }

  /**
   * Opens a work order for a post-event review: WAPPR (Maximo's default for a new order), the
   * title as description, the details as long description, due at targcompdate.
   */
  async createReview(input: ReviewOrderInput, ctx: CallContext): Promise<{ orderId: string }> {
    const path = this.client.pathFor(this.o.objectStructure);
    const site = input.site ?? this.o.sites[0];
    if (site === undefined) throw new SourceError(this.o.sourceId, `POST ${path}: no site to open the review at (set breakGlass.reviewSite or the source's sites)`, false, { method: 'POST', path });
    // eslint-disable-next-line no-control-regex -- one line, nothing invisible
    const title = input.title.replace(/[\u0000-\u001f\u007f]/g, ' ').trim();
    const body = {
      siteid: site,
      description: title.length > WORKLOG_DESCRIPTION_MAX ? `${title.slice(0, WORKLOG_DESCRIPTION_MAX - 1)}…` : title,
      description_longdescription: input.details.slice(0, WORKLOG_LONG_MAX),
      targstartdate: formatMaximoDate(ctx.now),
      targcompdate: formatMaximoDate(input.dueAt),
    };
    const created = lowerKeys(await this.client.createMember(this.o.objectStructure, body, 'wonum,siteid', ctx));
    try {
      return { orderId: orderKeyOf(created, this.o.mapping).id };
    } catch (e) {
      // Created, but the answer does not say as what: not retryable, or a second order would be opened.
      throw this.client.invalid(undefined, 'POST', path, `the created work order came back without wonum/siteid (${e instanceof Error ? e.message : String(e)})`, false);
    }
  }

  /** One order by wogate id, inside this source's scope; several matches (wonum ids across sites) are an error. */
  private async findOne(id: string, select: string, ctx: CallContext): Promise<Record<string, unknown> | undefined> {
    const path = this.client.pathFor(this.o.objectStructure);
    const key = this.parseId(id, path);
    const found: Record<string, unknown>[] = [];
    const clauses = [`wonum="${key.wonum}"`, ...(key.siteid === undefined ? [] : [`siteid="${key.siteid}"`])];
    await this.client.collection(this.o.objectStructure, {
      select, where: this.where(clauses.join(' and ')), orderBy: '+workorderid', pageSize: 10,
    }, ctx, (members) => {
      for (const raw of members) {
        const r = lowerKeys(raw);
        // The where clause is the server's business; exact equality is checked here.
        if (getPath(r, 'wonum') === key.wonum && (key.siteid === undefined || getPath(r, 'siteid') === key.siteid)) found.push(r);
      }
    });
    if (found.length > 1) {
      throw new SourceError(this.o.sourceId, `GET ${path}: work order ${key.wonum} exists in ${found.length} sites; use idFormat site/wonum`, false, { method: 'GET', path });
    }
    return found[0];
  }

  private parseId(id: string, path: string): { wonum: string; siteid?: string } {
    const bad = (why: string) => new SourceError(this.o.sourceId, `GET ${path}: ${JSON.stringify(id.slice(0, 80))} ${why}`, false, { method: 'GET', path });
    if (this.o.mapping.idFormat === 'wonum') {
      if (id === '' || UNQUOTABLE.test(id)) throw bad('is not a work order number this source can look up');
      return { wonum: id };
    }
    const slash = id.indexOf('/');
    const siteid = id.slice(0, slash);
    const wonum = id.slice(slash + 1);
    if (slash <= 0 || wonum === '' || UNQUOTABLE.test(id)) throw bad('is not a SITEID/WONUM id');
    return { wonum, siteid };
  }

  private sitesClause(): string | undefined {
    return this.o.sites.length === 0 ? undefined : `siteid in [${this.o.sites.map((s) => `"${s}"`).join(',')}]`;
  }

  private where(clause: string): string {
    return [clause, this.sitesClause(), this.o.where].filter((c): c is string => c !== undefined && c.trim() !== '').join(' and ');
  }

  private map(record: Record<string, unknown>, method: string): WorkOrder {
    try {
      return mapMaximoRecord(this.o.sourceId, record, this.o.mapping);
    } catch (e) {
      throw this.mappingError(e, method, this.client.pathFor(this.o.objectStructure));
    }
  }

  private mappingError(e: unknown, method: string, path: string): unknown {
    if (!(e instanceof WogateError) || e.code !== 'HOOK_MAPPING_FAILED') return e;
    // Retrying can't change a record's content; a statusMap that lacks a code needs a config change.
    return this.client.invalid(undefined, method, path, e.message, false, { ...e.details });
  }

  private changedAt(record: Record<string, unknown>): number {
    try {
      return parseMaximoDate('changedate', 'changedate', getPath(record, 'changedate')).getTime();
    } catch (e) {
      throw this.mappingError(e, 'GET', this.client.pathFor(this.o.objectStructure));
    }
  }

  private parseCursor(cursor: string | undefined, ctx: CallContext): Date | undefined {
    if (cursor === undefined) return undefined;
    const d = cursor.startsWith(CURSOR_PREFIX) ? new Date(cursor.slice(CURSOR_PREFIX.length)) : undefined;
    if (d && Number.isFinite(d.getTime())) return d;
    // A cursor from another adapter or an older format can't be trusted; the lookback covers the gap.
    ctx.log.warn('unreadable poll cursor ignored', { source: this.o.sourceId });
    return undefined;
  }
}

/**
 * The rest id is the last segment of `href` after `/os/<object structure>/`. Only that segment is
 * kept: the host in `href` is Maximo's idea of itself and must not receive the API key.
 */
export function restIdOf(href: unknown, os: string): string | undefined {
  if (typeof href !== 'string') return undefined;
  const m = new RegExp(`/os/${os.replace(/[^A-Za-z0-9_]/g, '')}/([^/?#]+)/?(?:[?#].*)?$`, 'i').exec(href);
  const id = m?.[1];
  return id !== undefined && REST_ID.test(id) && id !== '.' && id !== '..' ? id : undefined;
}
