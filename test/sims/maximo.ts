import type { AddressInfo } from 'node:net';
import type { Server, ServerResponse } from 'node:http';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { CanonicalStatus, OrderType } from '../../src/domain/index.js';
import type { CmmsSimulator, SimOrderSpec } from './simulator.js';

/**
 * IBM Maximo's REST/JSON API and publish-channel HTTP endpoint, after IBM's Maximo REST API
 * guide (ibm-maximo-dev.github.io/maximo-restapi-documentation): `apikey` header (or query),
 * GET <base>/os/<os>?lean=1&oslc.select&oslc.where&oslc.orderBy&oslc.pageSize&pageno with
 * `{member, responseInfo: {pagenum, nextPage: {href}}}`, member hrefs naming the server as it sees
 * itself (`http://localhost/...`), rest ids `_` + base64("SITE/WONUM") with `=` as `-`, dates
 * `2025-03-04T08:12:03-05:00`, `_rowstamp` from one global sequence, status synonyms beside
 * `status_maxvalue`, errors `{"Error": {reasonCode, message, statusCode}}`, member updates by POST
 * with `x-method-override: PATCH` (child lists replaced unless `patchtype: MERGE`). Outbound
 * messages are JSON from a publish channel (JSON mapping) with Basic auth or a header secret.
 */

export type MaximoSimHookAuth =
  | { readonly kind: 'basic'; readonly username: string; readonly password: string }
  | { readonly kind: 'header'; readonly name: string; readonly secret: string };

export interface MaximoSimOptions {
  readonly apiKey?: string;
  /** '/maximo/api' (MAS, default) or '/maximo/oslc' (7.6). */
  readonly basePath?: string;
  readonly hookAuth?: MaximoSimHookAuth;
  /** Offset dates are written in; default -05:00. */
  readonly utcOffset?: string;
  readonly clock?: () => Date;
  /** Internal status → the customer's synonym shown in `status`. */
  readonly synonyms?: Readonly<Record<string, string>>;
  /** How Maximo names itself in hrefs; default http://localhost. */
  readonly publicHost?: string;
}

export const MAXIMO_SIM_DEFAULTS = {
  apiKey: 'sim-apikey-6ad1f0c27e5b4e0a9d3c',
  hookAuth: { kind: 'basic', username: 'MXINTADM', password: 'sim-hook-password-20c9e7a1' } as MaximoSimHookAuth,
};

const STATUS_OF: Readonly<Record<CanonicalStatus, string>> = {
  // Maximo has no draft; a new order waits for approval.
  draft: 'WAPPR', awaiting_approval: 'WAPPR', approved: 'APPR', in_progress: 'INPRG', on_hold: 'WMATL',
  completed: 'COMP', closed: 'CLOSE', cancelled: 'CAN',
};
const STATUS_TEXT: Readonly<Record<string, string>> = {
  WAPPR: 'Waiting on Approval', APPR: 'Approved', WSCH: 'Waiting to be Scheduled', WMATL: 'Waiting on Material', WPCOND: 'Waiting on Plant Cond',
  INPRG: 'In Progress', COMP: 'Completed', CLOSE: 'Closed', CAN: 'Canceled', HISTEDIT: 'Edited in History',
};
const WORKTYPE_OF: Readonly<Record<OrderType, string>> = { planned: 'PM', corrective: 'CM', emergency: 'EM' };
const HISTORY = new Set(['CLOSE', 'CAN', 'HISTEDIT']);

interface SimWo {
  specId: string;
  workorderid: number;
  wonum: string;
  siteid: string;
  status: string;
  spec: SimOrderSpec;
  created: Date;
  changedate: Date;
  statusdate: Date;
  rowstamp: number;
  worklog: { description: string; longdescription: string; logtype: string; createdate: Date }[];
}

interface SimAsset {
  assetnum: string;
  siteid: string;
  description: string;
  location: string;
  assettype: string;
  priority: number;
}

type Row = Record<string, unknown>;
type Failure = number | 'html' | 'hang';
type Planned = Failure | 'pass';

class BadQuery extends Error {}

export class MaximoSim implements CmmsSimulator {
  readonly requests: { method: string; path: string; query: string }[] = [];
  readonly apiKey: string;
  readonly hookAuth: MaximoSimHookAuth;
  readonly basePath: string;
  private readonly byWonum = new Map<string, SimWo>();
  private readonly assets = new Map<string, SimAsset>();
  private readonly failures: Planned[] = [];
  private readonly hung: ServerResponse[] = [];
  private server!: Server;
  private port = 0;
  private seq = 5_000_000;
  private woid = 130_000;
  private msg = 0;
  private readonly clock: () => Date;
  private readonly offset: string;

  private constructor(private readonly o: MaximoSimOptions) {
    this.apiKey = o.apiKey ?? MAXIMO_SIM_DEFAULTS.apiKey;
    this.hookAuth = o.hookAuth ?? MAXIMO_SIM_DEFAULTS.hookAuth;
    this.basePath = o.basePath ?? '/maximo/api';
    this.clock = o.clock ?? (() => new Date());
    this.offset = o.utcOffset ?? '-05:00';
  }

  static async start(o: MaximoSimOptions = {}): Promise<MaximoSim> {
    const sim = new MaximoSim(o);
    const app = sim.app();
    await new Promise<void>((resolve) => {
      sim.server = app.listen(0, '127.0.0.1', () => resolve());
    });
    sim.port = (sim.server.address() as AddressInfo).port;
    return sim;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}${this.basePath}`;
  }

  upsert(spec: SimOrderSpec): void {
    const { wonum, siteid } = this.key(spec.id, spec.site);
    const now = this.now();
    const prior = this.byWonum.get(wonum);
    const status = STATUS_OF[spec.status];
    this.byWonum.set(wonum, {
      specId: spec.id, wonum, siteid, status, spec,
      workorderid: prior?.workorderid ?? ++this.woid,
      created: prior?.created ?? now,
      changedate: now,
      statusdate: prior && prior.status === status ? prior.statusdate : now,
      rowstamp: ++this.seq,
      worklog: prior?.worklog ?? [],
    });
    for (const a of spec.assetIds) {
      if (!this.assets.has(`${siteid}/${a}`)) this.putAsset({ assetnum: a, siteid, description: `Asset ${a}`, location: `${siteid}-AREA1`, assettype: 'PLC', priority: 8 });
    }
  }

  change(id: string, patch: Partial<Omit<SimOrderSpec, 'id'>>): void {
    const wo = this.find(id);
    if (!wo) throw new Error(`maximo sim: no work order ${id}`);
    const now = this.now();
    const spec = { ...wo.spec, ...patch };
    const status = STATUS_OF[spec.status];
    Object.assign(wo, { spec, changedate: now, rowstamp: ++this.seq, ...(status !== wo.status ? { status, statusdate: now } : {}) });
  }

  remove(id: string): void {
    const wo = this.find(id);
    if (wo) this.byWonum.delete(wo.wonum);
  }

  putAsset(a: SimAsset): void {
    this.assets.set(`${a.siteid}/${a.assetnum}`, a);
  }

  notes(id: string): readonly string[] {
    return (this.find(id)?.worklog ?? []).map((w) => w.longdescription || w.description);
  }

  failNext(count: number, how: Failure): void {
    for (let i = 0; i < count; i++) this.failures.push(how);
  }

  /** Lets `skip` requests through, then fails the one after: a failure on page 2 of a read. */
  failAfter(skip: number, how: Failure): void {
    this.failures.splice(0, this.failures.length, ...Array.from({ length: skip }, () => 'pass' as const), how);
  }

  /** The publish channel's JSON message for the order's current state, and the headers its endpoint sends. */
  message(id: string): { body: string; headers: Record<string, string> } {
    const wo = this.find(id);
    if (!wo) throw new Error(`maximo sim: no work order ${id}`);
    const body = JSON.stringify({
      header: { messageID: `${++this.msg}.${this.now().getTime()}`, creationDateTime: this.date(this.now()), action: 'Replace', publishChannel: 'WOGATE_WO' },
      workorder: this.lean(wo, undefined),
    });
    const a = this.hookAuth;
    const auth: Record<string, string> = a.kind === 'basic'
      ? { authorization: `Basic ${Buffer.from(`${a.username}:${a.password}`).toString('base64')}` }
      : { [a.name.toLowerCase()]: a.secret };
    return { body, headers: { 'content-type': 'application/json', ...auth } };
  }

  async notify(id: string, hookUrl: string): Promise<number> {
    const { body, headers } = this.message(id);
    const res = await fetch(hookUrl, { method: 'POST', headers, body });
    await res.arrayBuffer();
    return res.status;
  }

  async close(): Promise<void> {
    for (const r of this.hung.splice(0)) r.destroy();
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }

  private now(): Date {
    return new Date(Math.floor(this.clock().getTime() / 1000) * 1000);
  }

  private key(id: string, site: string): { wonum: string; siteid: string } {
    const slash = id.indexOf('/');
    return slash > 0 ? { siteid: id.slice(0, slash), wonum: id.slice(slash + 1) } : { siteid: site, wonum: id };
  }

  private find(id: string): SimWo | undefined {
    return this.byWonum.get(id) ?? this.byWonum.get(id.slice(id.indexOf('/') + 1));
  }

  /** `2025-03-04T08:12:03-05:00`, as Maximo writes dates. */
  private date(d: Date): string {
    const sign = this.offset.startsWith('-') ? -1 : 1;
    const mins = sign * (Number(this.offset.slice(1, 3)) * 60 + Number(this.offset.slice(4, 6)));
    return `${new Date(d.getTime() + mins * 60_000).toISOString().slice(0, 19)}${this.offset}`;
  }

  private restId(siteid: string, wonum: string): string {
    return `_${Buffer.from(`${siteid}/${wonum}`).toString('base64').replace(/=/g, '-')}`;
  }

  private href(os: string, restId?: string): string {
    return `${this.o.publicHost ?? 'http://localhost'}${this.basePath}/os/${os}${restId ? `/${restId}` : ''}`;
  }

  /** Every attribute of the lean record, children included; `select` narrows it like oslc.select. */
  private lean(wo: SimWo, select: Selection | undefined): Row {
    const s = wo.spec;
    const internal = wo.status;
    const history = this.statusHistory(wo);
    const full: Row = {
      wonum: wo.wonum, siteid: wo.siteid, orgid: 'EAGLENA', workorderid: wo.workorderid, description: s.title ?? `Work order ${wo.wonum}`,
      status: this.o.synonyms?.[internal] ?? internal, status_maxvalue: internal, status_description: STATUS_TEXT[internal] ?? internal,
      statusdate: this.date(wo.statusdate), worktype: WORKTYPE_OF[s.type], vendor: s.vendorId,
      schedstart: this.date(s.start), schedfinish: this.date(s.end), targstartdate: this.date(s.start), targcompdate: this.date(s.end),
      changedate: this.date(wo.changedate), changeby: 'MAXADMIN', istask: false, historyflag: HISTORY.has(internal), reportdate: this.date(wo.created),
      ...(s.assetIds[0] !== undefined ? { assetnum: s.assetIds[0], location: `${wo.siteid}-AREA1` } : {}),
    };
    const children: Record<string, Row[]> = {
      assignment: s.technicianIds.map((t, i) => ({ laborcode: t, status: 'ASSIGNED', status_maxvalue: 'ASSIGNED', assignmentid: wo.workorderid * 10 + i })),
      wostatus: history,
      multiassetlocci: s.assetIds.slice(1).map((a, i) => ({ assetnum: a, siteid: wo.siteid, multiid: wo.workorderid * 10 + i, isprimary: false })),
      worklog: wo.worklog.map((w) => ({ description: w.description, logtype: w.logtype, createdate: this.date(w.createdate), createby: 'MXINTADM' })),
    };
    const out: Row = { href: this.href('mxapiwodetail', this.restId(wo.siteid, wo.wonum)), _rowstamp: String(wo.rowstamp) };
    // A synonym-domain attribute comes with its internal value and description when selected.
    const picked = (k: string) => !select || select.all || select.attrs.has(k) || (/_(maxvalue|description)$/.test(k) && select.attrs.has(k.replace(/_(maxvalue|description)$/, '')));
    for (const [k, v] of Object.entries(full)) if (picked(k)) out[k] = v;
    // Lean JSON leaves out a relationship with no rows.
    for (const [k, rows] of Object.entries(children)) if ((!select || select.children.has(k)) && rows.length > 0) out[k] = rows;
    return out;
  }

  private statusHistory(wo: SimWo): Row[] {
    const at = (i: number) => this.date(new Date(wo.created.getTime() + i * 1000));
    const rows: Row[] = [{ status: 'WAPPR', status_maxvalue: 'WAPPR', changeby: 'MAXADMIN', changedate: at(0) }];
    if (wo.status === 'WAPPR') return rows;
    wo.spec.approvers.forEach((a, i) => rows.push({ status: this.o.synonyms?.APPR ?? 'APPR', status_maxvalue: 'APPR', changeby: a, changedate: at(i + 1) }));
    if (wo.status !== 'APPR') rows.push({ status: wo.status, status_maxvalue: wo.status, changeby: 'MAXADMIN', changedate: this.date(wo.statusdate) });
    return rows;
  }

  private assetRow(a: SimAsset, select: Selection): Row {
    const full: Row = { ...a, status: 'OPERATING', classstructureid: '1021' };
    const out: Row = { href: this.href('mxapiasset', `_${Buffer.from(`${a.assetnum}/${a.siteid}`).toString('base64').replace(/=/g, '-')}`), _rowstamp: String(this.seq) };
    for (const [k, v] of Object.entries(full)) if (select.all || select.attrs.has(k)) out[k] = v;
    return out;
  }

  private app(): express.Express {
    const app = express();
    const api = express.Router();
    api.use((req, res, next) => this.gate(req, res, next));
    api.get('/os/:os', (req, res) => this.query(req, res));
    api.post('/os/:os', express.json({ limit: '1mb' }), (req, res) => this.create(req, res));
    api.post('/os/:os/:restid', express.json({ limit: '1mb' }), (req, res) => this.update(req, res));
    app.use(this.basePath, api);
    app.use((_req: Request, res: Response) => this.error(res, 404, 'BMXAA8727E', 'The OSLC resource was not found.'));
    return app;
  }

  private error(res: Response, status: number, reasonCode: string, message: string): void {
    res.status(status).json({ Error: { errorattrname: '', errorobjpath: '', reasonCode, message: `${reasonCode} - ${message}`, statusCode: String(status) } });
  }

  private gate(req: Request, res: Response, next: NextFunction): void {
    const q = req.originalUrl.indexOf('?');
    this.requests.push({ method: req.method, path: `${req.baseUrl}${req.path}`, query: q < 0 ? '' : req.originalUrl.slice(q + 1) });
    const failure = this.failures.shift();
    if (failure === 'hang') {
      this.hung.push(res);
      return;
    }
    if (failure === 'html') {
      res.status(200).type('text/html').send('<!DOCTYPE html><html><head><title>Maximo Login</title></head><body><form action="j_security_check"></form></body></html>');
      return;
    }
    if (typeof failure === 'number') {
      if (failure === 429 || failure === 503) res.set('retry-after', '7');
      this.error(res, failure, failure === 401 ? 'BMXAA7901E' : 'BMXAA9999E', failure === 401 ? 'You cannot log in at this time. Contact the system administrator.' : 'Simulated failure.');
      return;
    }
    const key = req.get('apikey') ?? (typeof req.query.apikey === 'string' ? req.query.apikey : undefined);
    if (key !== this.apiKey) {
      this.error(res, 401, 'BMXAA7901E', 'You cannot log in at this time. Contact the system administrator.');
      return;
    }
    next();
  }

  private query(req: Request, res: Response): void {
    const os = String(req.params.os).toLowerCase();
    const p = (k: string) => (typeof req.query[k] === 'string' ? (req.query[k] as string) : undefined);
    let rows: Row[];
    try {
      const select = parseSelect(p('oslc.select'));
      const where = parseWhere(p('oslc.where'));
      const order = parseOrderBy(p('oslc.orderBy'));
      if (os === 'mxapiwodetail') {
        const wos = [...this.byWonum.values()].filter((wo) => where.every((c) => c(this.lean(wo, undefined))));
        rows = sortRows(wos.map((wo) => ({ wo, row: this.lean(wo, undefined) })), order).map((x) => this.lean(x.wo, select));
      } else if (os === 'mxapiasset') {
        const all = [...this.assets.values()].filter((a) => where.every((c) => c({ ...a, status: 'OPERATING' })));
        rows = sortRows(all.map((a) => ({ wo: a, row: a as unknown as Row })), order).map((x) => this.assetRow(x.wo, select));
      } else {
        this.error(res, 404, 'BMXAA8727E', `The OSLC resource ${os} was not found.`);
        return;
      }
    } catch (e) {
      if (e instanceof BadQuery) return this.error(res, 400, 'BMXAA8744E', `The OSLC query was not parsed. ${e.message}`);
      throw e;
    }
    const size = p('oslc.pageSize') === undefined ? rows.length || 1 : Number(p('oslc.pageSize'));
    const pageno = Number(p('pageno') ?? '1');
    if (!Number.isInteger(size) || size < 1 || !Number.isInteger(pageno) || pageno < 1) return this.error(res, 400, 'BMXAA8744E', 'Bad paging parameters.');
    const page = rows.slice((pageno - 1) * size, pageno * size);
    const self = (n: number) => `${this.href(os)}?${new URLSearchParams({ ...(req.query as Record<string, string>), pageno: String(n) }).toString()}`;
    const info: Row = { href: self(pageno), pagenum: pageno };
    if (p('collectioncount') === '1') Object.assign(info, { totalCount: rows.length, totalPages: Math.ceil(rows.length / size) });
    if (pageno * size < rows.length) info.nextPage = { href: self(pageno + 1) };
    if (pageno > 1) info.previousPage = { href: self(pageno - 1) };
    if (p('lean') !== '1') {
      // Without lean=1 Maximo answers in OSLC namespaces, which a lean reader can't use.
      res.json({ 'rdfs:member': page.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [`spi:${k}`, v]))), 'oslc:responseInfo': info });
      return;
    }
    res.json({ member: page, href: this.href(os), responseInfo: info });
  }

  /** The lean record of an order as the API would return it (every attribute), for assertions. */
  record(id: string): Row | undefined {
    const wo = this.find(id);
    return wo ? this.lean(wo, undefined) : undefined;
  }

  /** Orders created through the API (POST to the collection), by wogate id `SITE/WONUM`, oldest first. */
  created(): string[] {
    return [...this.byWonum.values()].filter((w) => w.specId.startsWith('created:')).map((w) => `${w.siteid}/${w.wonum}`);
  }

  /**
   * Creating a member: POST <base>/os/<os> with the attributes; Maximo numbers the order, sets it
   * WAPPR, answers 201 with a Location header, and with the attributes the `properties` header
   * names in the body when one is sent.
   */
  private create(req: Request, res: Response): void {
    if (String(req.params.os).toLowerCase() !== 'mxapiwodetail') return this.error(res, 404, 'BMXAA8727E', 'The OSLC resource was not found.');
    const body = (req.body ?? {}) as Row;
    const siteid = typeof body.siteid === 'string' ? body.siteid : '';
    if (siteid === '') return this.error(res, 400, 'BMXAA4195E', 'A value is required for the Site field on the WORKORDER object.');
    const parse = (v: unknown) => (typeof v === 'string' && Number.isFinite(Date.parse(v)) ? new Date(Date.parse(v)) : undefined);
    const now = this.now();
    const due = parse(body.targcompdate);
    if (body.targcompdate !== undefined && !due) return this.error(res, 400, 'BMXAA4144E', 'The date in targcompdate is not valid.');
    const wonum = String(++this.woid);
    const wo: SimWo = {
      specId: `created:${wonum}`, workorderid: this.woid, wonum, siteid, status: 'WAPPR',
      spec: {
        id: wonum, status: 'awaiting_approval', vendorId: '', technicianIds: [], assetIds: [], start: parse(body.targstartdate) ?? now, end: due ?? now,
        type: 'corrective', site: siteid, approvers: [], ...(typeof body.description === 'string' ? { title: body.description } : {}),
      },
      created: now, changedate: now, statusdate: now, rowstamp: ++this.seq,
      worklog: typeof body.description_longdescription === 'string'
        ? [{ description: 'Long description', longdescription: body.description_longdescription, logtype: 'CLIENTNOTE', createdate: now }]
        : [],
    };
    this.byWonum.set(wonum, wo);
    res.set('location', this.href('mxapiwodetail', this.restId(siteid, wonum)));
    if (req.get('properties')) {
      res.status(201).json(this.lean(wo, parseSelect(req.get('properties'))));
      return;
    }
    res.status(201).end();
  }

  private update(req: Request, res: Response): void {
    if (String(req.params.os).toLowerCase() !== 'mxapiwodetail') return this.error(res, 404, 'BMXAA8727E', 'The OSLC resource was not found.');
    const wo = [...this.byWonum.values()].find((w) => this.restId(w.siteid, w.wonum) === req.params.restid);
    if (!wo) return this.error(res, 404, 'BMXAA8727E', 'The OSLC resource was not found.');
    if (req.get('x-method-override') !== 'PATCH') return this.error(res, 400, 'BMXAA9549E', 'The API method is not supported for this resource.');
    const body = req.body as { worklog?: unknown } | undefined;
    const entries = Array.isArray(body?.worklog) ? (body.worklog as Row[]) : [];
    const added = entries.map((e) => ({
      description: String(e.description ?? ''), longdescription: String(e.description_longdescription ?? ''), logtype: String(e.logtype ?? 'CLIENTNOTE'), createdate: this.now(),
    }));
    // Without MERGE a PATCH replaces the child list: older worklog entries would be gone.
    wo.worklog = req.get('patchtype') === 'MERGE' ? [...wo.worklog, ...added] : added;
    if (req.get('properties')) {
      res.status(200).json(this.lean(wo, parseSelect(req.get('properties'))));
      return;
    }
    res.status(204).end();
  }
}

interface Selection {
  readonly all: boolean;
  readonly attrs: ReadonlySet<string>;
  readonly children: ReadonlySet<string>;
}

function splitTop(s: string, sep: RegExp): string[] {
  const out: string[] = [];
  let depth = 0;
  let quoted = false;
  let cur = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i] as string;
    if (c === '"') quoted = !quoted;
    else if (!quoted && (c === '{' || c === '[')) depth++;
    else if (!quoted && (c === '}' || c === ']')) depth--;
    if (!quoted && depth === 0) {
      const m = sep.exec(s.slice(i));
      if (m && m.index === 0) {
        out.push(cur);
        cur = '';
        i += m[0].length - 1;
        continue;
      }
    }
    cur += c;
  }
  out.push(cur);
  return out.map((x) => x.trim()).filter((x) => x !== '');
}

function parseSelect(select: string | undefined): Selection {
  if (select === undefined || select.trim() === '*') return { all: true, attrs: new Set(), children: new Set(['assignment', 'wostatus', 'multiassetlocci', 'worklog']) };
  const attrs = new Set<string>();
  const children = new Set<string>();
  for (const term of splitTop(select, /^,/)) {
    const child = /^(?:rel\.)?([a-z0-9_]+)\{.*\}$/i.exec(term);
    if (child) children.add((child[1] as string).toLowerCase());
    else attrs.add(term.toLowerCase());
  }
  return { all: attrs.has('*'), attrs, children };
}

type Clause = (row: Row) => boolean;

function literal(text: string): string | number | boolean {
  const t = text.trim();
  if (/^".*"$/.test(t)) return t.slice(1, -1);
  if (t === 'true' || t === 'false') return t === 'true';
  if (/^-?\d+(\.\d+)?$/.test(t)) return Number(t);
  throw new BadQuery(`Encountered "${t.slice(0, 40)}".`);
}

function compare(a: unknown, b: string | number | boolean): number {
  if (typeof b === 'boolean') return (a === true || a === 1 ? 1 : 0) - (b ? 1 : 0);
  if (typeof b === 'number') return Number(a) - b;
  const da = typeof a === 'string' ? Date.parse(a) : NaN;
  const db = Date.parse(b);
  if (/^\d{4}-\d{2}-\d{2}T/.test(b) && Number.isFinite(da) && Number.isFinite(db)) return da - db;
  const sa = String(a ?? '');
  return sa < b ? -1 : sa > b ? 1 : 0;
}

function like(a: unknown, pattern: string): boolean {
  const re = new RegExp(`^${pattern.split('%').map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
  return re.test(String(a ?? ''));
}

const ATTRIBUTES = new Set(['wonum', 'siteid', 'status', 'changedate', 'statusdate', 'istask', 'historyflag', 'workorderid', 'vendor', 'worktype', 'assetnum', 'location', 'assettype', 'priority', 'woclass']);

function parseWhere(where: string | undefined): Clause[] {
  if (where === undefined || where.trim() === '') return [];
  return splitTop(where, /^\s+and\s+/i).map((clause): Clause => {
    const inMatch = /^([a-z0-9_]+)\s+in\s+\[(.*)\]$/i.exec(clause);
    const opMatch = /^([a-z0-9_]+)\s*(>=|<=|!=|=|>|<)\s*(.+)$/i.exec(clause);
    const attr = ((inMatch ?? opMatch)?.[1] ?? '').toLowerCase();
    if (!inMatch && !opMatch) throw new BadQuery(`Encountered "${clause.slice(0, 40)}".`);
    if (!ATTRIBUTES.has(attr)) throw new BadQuery(`The attribute ${attr} is not valid.`);
    if (inMatch) {
      const values = splitTop(inMatch[2] as string, /^,/).map(literal);
      return (row) => values.some((v) => compare(row[attr], v) === 0);
    }
    const op = opMatch?.[2] as string;
    const value = literal(opMatch?.[3] as string);
    if (op === '=' && typeof value === 'string' && value.includes('%')) return (row) => like(row[attr], value);
    return (row) => {
      const c = compare(row[attr], value);
      return op === '=' ? c === 0 : op === '!=' ? c !== 0 : op === '>=' ? c >= 0 : op === '<=' ? c <= 0 : op === '>' ? c > 0 : c < 0;
    };
  });
}

function parseOrderBy(orderBy: string | undefined): { attr: string; dir: number }[] {
  if (orderBy === undefined) return [];
  return orderBy.split(',').map((t) => {
    // An unencoded "+" arrives as a space; Maximo then can't tell the direction.
    if (!/^[+-][a-z0-9_]+$/i.test(t)) throw new BadQuery(`oslc.orderBy term "${t}" needs a + or - prefix.`);
    return { attr: t.slice(1).toLowerCase(), dir: t.startsWith('-') ? -1 : 1 };
  });
}

function sortRows<T>(rows: { wo: T; row: Row }[], order: { attr: string; dir: number }[]): { wo: T; row: Row }[] {
  return [...rows].sort((a, b) => {
    for (const { attr, dir } of order) {
      const va = a.row[attr];
      const c = typeof va === 'number' ? compare(va, Number(b.row[attr])) : compare(va, String(b.row[attr] ?? ''));
      if (c !== 0) return c * dir;
    }
    return 0;
  });
}
