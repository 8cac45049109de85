import { randomBytes, randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type Request, type Response } from 'express';
import type { CanonicalStatus, OrderType } from '../../src/domain/index.js';
import { DEFAULT_STATUS_RULES, type SapSourceOptions } from '../../src/sources/sap.js';
import { basicAuthorization } from '../../src/sources/sap-webhook.js';
import type { CmmsSimulator, SimOrderSpec } from './simulator.js';

/**
 * SAP S/4HANA as wogate sees it: OData V2 API_MAINTENANCEORDER and API_EQUIPMENT ({"d":{"results"}}
 * envelopes, /Date(ms+0000)/ dates, $filter/$orderby/$top/$skip/$expand, server-driven paging with
 * d.__next), Basic or OAuth 2.0 client-credentials auth, the CSRF token dance for writes, Gateway
 * error bodies, and Event Mesh CloudEvents pushed with Basic auth. Self-contained: the demo uses it too.
 */

export const SIM_SERVICE = '/sap/opu/odata/sap/API_MAINTENANCEORDER';
export const SIM_EQUIPMENT_SERVICE = '/sap/opu/odata/sap/API_EQUIPMENT';

export interface SapSimOptions {
  readonly username?: string;
  readonly password?: string;
  /** Also accept OAuth 2.0 client credentials from POST /oauth/token. */
  readonly oauth?: { readonly clientId: string; readonly clientSecret: string; readonly lifetimeSeconds?: number };
  /** Require this APIKey header (API Business Hub sandbox style). */
  readonly apiKey?: string;
  /** Credentials Event Mesh uses when it calls wogate's webhook. */
  readonly webhook?: { readonly username: string; readonly password: string };
  /** At most this many rows per answer; the rest via d.__next ($skiptoken). 0 = no server paging. */
  readonly serverPageSize?: number;
  /** The system clock (LastChangeDateTime, event time); SAP keeps whole seconds. */
  readonly clock?: () => Date;
  /** Order types the system's customizing knows, for orders created through the API; default PM01-PM03, YA01-YA03. */
  readonly orderTypes?: readonly string[];
}

export interface SimEquipment {
  readonly id: string;
  readonly name?: string;
  readonly objectType?: string;
  readonly abc?: string;
  readonly plant?: string;
  readonly functionalLocation?: string;
  readonly deleted?: boolean;
  /** Usage period end; default 9999-12-31. */
  readonly validTo?: Date;
}

interface Stored {
  spec: SimOrderSpec;
  created: number;
  changed: number;
  lastChangeBy: string;
  longText?: { text: string; changed: number };
  /** Header fields of an order created through the API, which SimOrderSpec has no place for. */
  header?: { orderType: string; planningPlant: string; priority?: string };
}

type Row = Record<string, unknown>;

const STATUS_TEXT: Record<CanonicalStatus, [string, string]> = {
  draft: ['CRTD NMAT', 'DRFT'],
  awaiting_approval: ['CRTD NMAT', ''],
  approved: ['REL  NMAT PRC', 'VNDR'],
  in_progress: ['REL  PCNF NMAT PRC', 'VNDR'],
  on_hold: ['REL  LKD  NMAT PRC', 'VNDR'],
  completed: ['TECO NMAT PRC', ''],
  closed: ['CLSD NMAT PRC', ''],
  cancelled: ['CRTD DLFL', ''],
};
const EVENT: Record<CanonicalStatus, string> = {
  draft: 'SetToInPlanning',
  awaiting_approval: 'SubmdForApproval',
  approved: 'SetToInPreparation',
  in_progress: 'SetToWorkStarted',
  on_hold: 'OrdPhseCtrlActvtd',
  completed: 'SetToTechCompleted',
  closed: 'Closed',
  cancelled: 'SetToDeletnFlagged',
};
const ORDER_TYPE: Record<OrderType, string> = { planned: 'YA03', corrective: 'YA01', emergency: 'YA02' };
const END_OF_TIME = Date.UTC(9999, 11, 31);
const KEY4 = /^[A-Za-z0-9]{1,4}$/;
const ODATA_DATE = /^\/Date\((\d{1,15})(?:[+-]\d{4})?\)\/$/;
// Fields SAP fills itself (sap:creatable="false" in API_MAINTENANCEORDER, and the key: internal numbering).
const NOT_CREATABLE = ['MaintenanceOrder', 'SystemStatusText', 'UserStatusText', 'LastChangeDateTime', 'MaintOrderCreationDateTime', 'CreatedByUser', 'LastChangeByUser'];

/** Options for the SAP source that point at this simulator and read its orders back to their specs. */
export function simSourceOptions(sim: SapSim, over: Partial<SapSourceOptions> = {}): SapSourceOptions {
  return {
    id: 'sap',
    baseUrl: sim.url,
    sapClient: '100',
    auth: { type: 'basic', username: sim.username, password: sim.password },
    pageSize: 100,
    pollOverlapMs: 0,
    webhook: { auth: { type: 'basic', credentials: [{ username: sim.webhookUser.username, password: sim.webhookUser.password }] } },
    mapping: {
      // Draft has no standard system status; the simulator marks it with user status DRFT.
      statusRules: [{ user: ['DRFT'], status: 'draft' }, ...DEFAULT_STATUS_RULES],
      includeObjectList: true,
    },
    ...over,
  };
}

function odataDate(ms: number): string {
  return `/Date(${ms}+0000)/`;
}

function padKey(v: string): string {
  return /^\d+$/.test(v) ? v.padStart(12, '0') : v;
}

// ---------------------------------------------------------------- $filter: the subset wogate sends

type Tok = { t: 'lp' | 'rp' | 'word' | 'str' | 'typed'; v: string; kind?: string };

function tokenize(s: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  const quoted = (): string => {
    let v = '';
    i++;
    for (;;) {
      if (i >= s.length) throw new Error('unterminated string literal');
      if (s[i] === "'" && s[i + 1] === "'") { v += "'"; i += 2; continue; }
      if (s[i] === "'") { i++; return v; }
      v += s[i++];
    }
  };
  while (i < s.length) {
    const c = s[i] as string;
    if (c === ' ') { i++; continue; }
    if (c === '(') { out.push({ t: 'lp', v: c }); i++; continue; }
    if (c === ')') { out.push({ t: 'rp', v: c }); i++; continue; }
    if (c === "'") { out.push({ t: 'str', v: quoted() }); continue; }
    const m = /^[A-Za-z0-9_.:-]+/.exec(s.slice(i));
    if (!m) throw new Error(`unexpected "${c}" at ${i}`);
    i += m[0].length;
    if (s[i] === "'" && (m[0] === 'datetimeoffset' || m[0] === 'datetime')) out.push({ t: 'typed', v: quoted(), kind: m[0] });
    else out.push({ t: 'word', v: m[0] });
  }
  return out;
}

type Pred = (r: Row) => boolean;

function parseFilter(s: string): Pred {
  const toks = tokenize(s);
  let p = 0;
  const peek = () => toks[p];
  const next = () => {
    const t = toks[p++];
    if (!t) throw new Error('unexpected end of $filter');
    return t;
  };
  const literal = (t: Tok): { v: string | number } => {
    if (t.t === 'str') return { v: padKey(t.v) };
    if (t.t === 'typed') {
      const ms = Date.parse(t.kind === 'datetime' && !/[zZ]|[+-]\d\d:\d\d$/.test(t.v) ? `${t.v}Z` : t.v);
      if (!Number.isFinite(ms)) throw new Error(`bad ${t.kind} literal`);
      return { v: ms };
    }
    if (t.t === 'word' && /^-?\d+$/.test(t.v)) return { v: Number(t.v) };
    throw new Error(`expected a literal, got "${t.v}"`);
  };
  const comparison = (): Pred => {
    const field = next();
    if (field.t !== 'word') throw new Error('expected a property name');
    const op = next().v;
    const { v } = literal(next());
    const get = (r: Row): string | number | undefined => {
      const x = r[field.v];
      return typeof x === 'string' ? padKey(x) : typeof x === 'number' ? x : undefined;
    };
    const ops: Record<string, (a: string | number, b: string | number) => boolean> = {
      eq: (a, b) => a === b, ne: (a, b) => a !== b, gt: (a, b) => a > b, ge: (a, b) => a >= b, lt: (a, b) => a < b, le: (a, b) => a <= b,
    };
    const f = ops[op];
    if (!f) throw new Error(`operator "${op}" is not supported`);
    return (r) => {
      const a = get(r);
      return a !== undefined && f(a, v);
    };
  };
  const factor = (): Pred => {
    if (peek()?.t === 'lp') {
      next();
      const e = expr();
      if (next().t !== 'rp') throw new Error('expected ")"');
      return e;
    }
    return comparison();
  };
  const term = (): Pred => {
    let left = factor();
    while (peek()?.v === 'and') { next(); const l = left, r = factor(); left = (x) => l(x) && r(x); }
    return left;
  };
  const expr = (): Pred => {
    let left = term();
    while (peek()?.v === 'or') { next(); const l = left, r = term(); left = (x) => l(x) || r(x); }
    return left;
  };
  const e = expr();
  if (p !== toks.length) throw new Error(`unexpected "${toks[p]?.v}"`);
  return e;
}

function sorter(orderby: string | null): (a: Row, b: Row) => number {
  const keys = (orderby ?? '').split(',').map((k) => k.trim()).filter(Boolean).map((k) => {
    const [field, dir] = k.split(/\s+/);
    return { field: field as string, desc: dir === 'desc' };
  });
  return (a, b) => {
    for (const k of keys) {
      const x = a[k.field], y = b[k.field];
      const xs = typeof x === 'string' ? padKey(x) : (x as number), ys = typeof y === 'string' ? padKey(y) : (y as number);
      if (xs < ys) return k.desc ? 1 : -1;
      if (xs > ys) return k.desc ? -1 : 1;
    }
    return 0;
  };
}

// ---------------------------------------------------------------- the simulator

export class SapSim implements CmmsSimulator {
  readonly username: string;
  readonly password: string;
  readonly webhookUser: { username: string; password: string };
  readonly requests: { method: string; path: string; query: string }[] = [];
  readonly equipment = new Map<string, SimEquipment[]>();
  /** Every CloudEvent sent by notify(), newest last. */
  readonly sentEvents: unknown[] = [];
  private readonly orders = new Map<string, Stored>();
  private readonly noteLog = new Map<string, string[]>();
  private readonly tokens = new Map<string, number>();
  private readonly sessions = new Map<string, string>();
  private failures: (number | 'html' | 'hang' | 'pass')[] = [];
  private readonly orderTypes: ReadonlySet<string>;
  private readonly createdIds: string[] = [];
  private nextOrder = 4_100_001;
  private createsWithoutId = 0;
  private server: Server | undefined;
  private base = '';

  constructor(private readonly o: SapSimOptions = {}) {
    this.username = o.username ?? 'WOGATE_COMM';
    this.password = o.password ?? randomBytes(12).toString('hex');
    this.webhookUser = o.webhook ?? { username: 'event-mesh', password: randomBytes(12).toString('hex') };
    this.orderTypes = new Set(o.orderTypes ?? ['PM01', 'PM02', 'PM03', 'YA01', 'YA02', 'YA03']);
  }

  get url(): string {
    return this.base;
  }

  get tokenUrl(): string {
    return `${this.base}/oauth/token`;
  }

  private now(): number {
    return Math.floor((this.o.clock ?? (() => new Date()))().getTime() / 1000) * 1000;
  }

  async start(): Promise<this> {
    const app = express();
    app.disable('x-powered-by');
    app.use((req, _res, next) => {
      const q = req.originalUrl.indexOf('?');
      this.requests.push({ method: req.method, path: req.path, query: q < 0 ? '' : req.originalUrl.slice(q + 1) });
      next();
    });
    app.post('/oauth/token', express.urlencoded({ extended: false }), (req, res) => this.token(req, res));
    app.use((req, res, next) => this.gate(req, res, next));
    app.use(express.json({ limit: '1mb' }));
    app.use((req, res) => {
      try {
        this.route(req, res);
      } catch (e) {
        this.error(res, 400, '/IWBEP/CM_MGW_RT/001', e instanceof Error ? e.message : String(e));
      }
    });
    await new Promise<void>((resolve) => {
      this.server = app.listen(0, '127.0.0.1', () => resolve());
    });
    this.base = `http://127.0.0.1:${(this.server?.address() as AddressInfo).port}`;
    return this;
  }

  async close(): Promise<void> {
    const s = this.server;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
    this.server = undefined;
  }

  // ------------------------------------------------------------- CmmsSimulator

  upsert(order: SimOrderSpec): void {
    const old = this.orders.get(order.id);
    const now = this.now();
    this.orders.set(order.id, { spec: order, created: old?.created ?? now, changed: now, lastChangeBy: order.approvers[0] ?? 'PLANNER1', ...(old?.longText ? { longText: old.longText } : {}) });
  }

  change(id: string, patch: Partial<Omit<SimOrderSpec, 'id'>>): void {
    const s = this.orders.get(id);
    if (!s) throw new Error(`no order ${id}`);
    s.spec = { ...s.spec, ...patch };
    s.changed = this.now();
    if (patch.approvers) s.lastChangeBy = patch.approvers[0] ?? s.lastChangeBy;
  }

  remove(id: string): void {
    this.orders.delete(id);
  }

  notes(id: string): readonly string[] {
    return this.noteLog.get(id) ?? [];
  }

  /** Orders created through the API (POST MaintenanceOrder), by order number, oldest first. */
  created(): string[] {
    return [...this.createdIds];
  }

  /** The order as a GET of MaintenanceOrder('<id>') answers it (partners expanded), or undefined. */
  record(id: string): Row | undefined {
    const s = this.orders.get(id);
    return s ? this.wire(this.render(id, s, 'to_MaintenanceOrderPartner')) : undefined;
  }

  /** The next `count` creates succeed but answer 201 without the order number, as a broken gateway might. */
  answerCreatesWithoutId(count = 1): void {
    this.createsWithoutId += count;
  }

  /** `after` lets that many calls through first, e.g. to fail the second page of a poll. */
  failNext(count: number, how: number | 'html' | 'hang', after = 0): void {
    for (let i = 0; i < after; i++) this.failures.push('pass');
    for (let i = 0; i < count; i++) this.failures.push(how);
  }

  /** Adds or replaces one usage period of an equipment (API_EQUIPMENT). */
  putEquipment(e: SimEquipment): void {
    const periods = (this.equipment.get(e.id) ?? []).filter((p) => (p.validTo?.getTime() ?? END_OF_TIME) !== (e.validTo?.getTime() ?? END_OF_TIME));
    this.equipment.set(e.id, [...periods, e]);
  }

  /** Ends the current CSRF sessions, as an S/4 session timeout would. */
  expireCsrf(): void {
    this.sessions.clear();
  }

  /** Event Mesh pushing the order's current state as a (thin) CloudEvent, structured mode, Basic auth. */
  async notify(id: string, hookUrl: string): Promise<number> {
    const s = this.orders.get(id);
    if (!s) throw new Error(`no order ${id}`);
    const event = this.event(id, EVENT[s.spec.status]);
    const res = await fetch(hookUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/cloudevents+json', authorization: basicAuthorization(this.webhookUser.username, this.webhookUser.password) },
      body: JSON.stringify(event),
      redirect: 'manual',
    });
    await res.arrayBuffer();
    return res.status;
  }

  /** The CloudEvent notify() would send, for tests that post it themselves. */
  event(id: string, name: string): Record<string, unknown> {
    const s = this.orders.get(id);
    const event = {
      specversion: '1.0',
      id: randomUUID(),
      source: '/default/sap.s4.beh/244572008',
      type: `sap.s4.beh.maintenanceorder.v1.MaintenanceOrder.${name}.v1`,
      datacontenttype: 'application/json',
      time: new Date(this.now()).toISOString().replace('.000Z', 'Z'),
      data: { MaintenanceOrder: id, MaintenanceOrderType: s ? ORDER_TYPE[s.spec.type] : 'YA01' },
    };
    this.sentEvents.push(event);
    return event;
  }

  // ------------------------------------------------------------- HTTP

  private token(req: Request, res: Response): void {
    const body = (req.body ?? {}) as Record<string, string>;
    const oauth = this.o.oauth;
    if (!oauth || body.grant_type !== 'client_credentials' || body.client_id !== oauth.clientId || body.client_secret !== oauth.clientSecret) {
      res.status(401).json({ error: 'invalid_client', error_description: 'Bad credentials' });
      return;
    }
    const token = randomBytes(24).toString('base64url');
    const lifetime = oauth.lifetimeSeconds ?? 3600;
    this.tokens.set(token, Date.now() + lifetime * 1000);
    res.json({ access_token: token, token_type: 'bearer', expires_in: lifetime, scope: 'API_MAINTENANCEORDER_0001', jti: randomUUID() });
  }

  /** Injected failures first, then the API key, then the credentials; 401 looks like the ICF logon error. */
  private gate(req: Request, res: Response, next: () => void): void {
    const fail = this.failures.shift();
    if (fail === 'hang') return;
    if (fail === 'html') {
      res.status(200).type('text/html').send('<html><head><title>Logon</title></head><body><form action="/sap/bc/ui5_ui5/">SAP NetWeaver logon</form></body></html>');
      return;
    }
    if (typeof fail === 'number') {
      if (fail === 429 || fail === 503) res.set('retry-after', '2');
      this.error(res, fail, fail === 429 ? 'SY/530' : '/IWBEP/CM_MGW_RT/004', fail === 429 ? 'Too many requests' : 'Simulated failure');
      return;
    }
    if (this.o.apiKey !== undefined && req.get('apikey') !== this.o.apiKey) {
      res.status(401).json({ fault: { faultstring: 'Failed to resolve API Key variable request.header.apikey', detail: { errorcode: 'steps.oauth.v2.FailedToResolveAPIKey' } } });
      return;
    }
    const auth = req.get('authorization') ?? '';
    const basicOk = auth === basicAuthorization(this.username, this.password);
    const bearer = /^Bearer (.+)$/.exec(auth)?.[1];
    const bearerOk = bearer !== undefined && (this.tokens.get(bearer) ?? 0) > Date.now();
    if (!basicOk && !bearerOk) {
      res.status(401).set('www-authenticate', 'Basic realm="SAP NetWeaver Application Server [S4H/100]"').type('text/html').send('<html><body><h1>Logon failed</h1></body></html>');
      return;
    }
    next();
  }

  private error(res: Response, status: number, code: string, message: string): void {
    res.status(status).json({ error: { code, message: { lang: 'en', value: message }, innererror: { application: { component_id: 'PM-WOC-MO' }, transactionid: randomUUID().replace(/-/g, '').toUpperCase() } } });
  }

  private csrfOk(req: Request, res: Response): boolean {
    const session = /SAP_SESSIONID_S4H_100=([^;]+)/.exec(req.get('cookie') ?? '')?.[1];
    const token = req.get('x-csrf-token');
    if (session !== undefined && token !== undefined && this.sessions.get(session) === token) return true;
    res.status(403).set('x-csrf-token', 'Required').type('text/plain').send('CSRF token validation failed');
    return false;
  }

  private route(req: Request, res: Response): void {
    const path = decodeURIComponent(req.path);
    const query = new URLSearchParams(req.originalUrl.includes('?') ? req.originalUrl.slice(req.originalUrl.indexOf('?') + 1) : '');
    if (req.method === 'GET' && req.get('x-csrf-token')?.toLowerCase() === 'fetch') {
      const session = randomBytes(16).toString('hex');
      const token = randomBytes(16).toString('base64');
      this.sessions.set(session, token);
      res.set('x-csrf-token', token);
      res.append('set-cookie', `SAP_SESSIONID_S4H_100=${session}; path=/; HttpOnly`);
      res.append('set-cookie', 'sap-usercontext=sap-client=100; path=/');
    }
    if (req.method === 'GET' && (path === `${SIM_SERVICE}/` || path === SIM_SERVICE)) {
      res.json({ d: { EntitySets: ['MaintenanceOrder', 'MaintenanceOrderLongText', 'MaintenanceOrderOperation', 'MaintenanceOrderPartner'] } });
      return;
    }
    if (req.method === 'GET' && path === `${SIM_SERVICE}/MaintenanceOrder`) {
      this.collection(req, res, query, [...this.orders.entries()].map(([id, s]) => this.render(id, s, query.get('$expand'))));
      return;
    }
    if (req.method === 'POST' && path === `${SIM_SERVICE}/MaintenanceOrder`) {
      this.createOrder(req, res);
      return;
    }
    const one = new RegExp(`^${SIM_SERVICE}/MaintenanceOrder\\('((?:[^']|'')*)'\\)(/to_MaintenanceOrderLongText)?$`).exec(path);
    if (one) {
      const id = (one[1] as string).replace(/''/g, "'");
      const key = [...this.orders.keys()].find((k) => padKey(k) === padKey(id));
      const s = key === undefined ? undefined : this.orders.get(key);
      if (!s || key === undefined) return this.error(res, 404, '/IWBEP/CM_MGW_RT/020', `Resource not found for segment 'MaintenanceOrder'`);
      if (!one[2] && req.method === 'GET') {
        res.json({ d: this.wire(this.render(key, s, query.get('$expand'))) });
        return;
      }
      if (one[2] && req.method === 'GET') {
        res.json({ d: { results: s.longText ? [this.longText(key, s)] : [] } });
        return;
      }
      if (one[2] && req.method === 'POST') {
        if (!this.csrfOk(req, res)) return;
        const b = req.body as Row;
        if (b.TextObjectType !== 'KOPF' || b.Language !== 'EN' || typeof b.MaintenanceOrderLongText !== 'string') return this.error(res, 400, 'IWO_BAPI/121', 'Text ID or language not allowed');
        if (s.longText) return this.error(res, 400, 'IWO_BAPI/122', 'Long text already exists');
        s.longText = { text: b.MaintenanceOrderLongText, changed: this.now() };
        s.changed = s.longText.changed;
        this.noteLog.set(key, [...this.notes(key), b.MaintenanceOrderLongText]);
        res.status(201).json({ d: this.longText(key, s) });
        return;
      }
    }
    const lt = new RegExp(`^${SIM_SERVICE}/MaintenanceOrderLongText\\(MaintenanceOrder='([^']*)',TextObjectType='KOPF',Language='EN'\\)$`).exec(path);
    if (lt && req.method === 'PATCH') {
      if (!this.csrfOk(req, res)) return;
      const key = [...this.orders.keys()].find((k) => padKey(k) === padKey(lt[1] as string));
      const s = key === undefined ? undefined : this.orders.get(key);
      if (!s?.longText || key === undefined) return this.error(res, 404, '/IWBEP/CM_MGW_RT/020', 'Resource not found');
      const ifMatch = req.get('if-match');
      if (ifMatch !== '*' && ifMatch !== this.etag(s)) return this.error(res, 412, '/IWBEP/CM_MGW_RT/098', 'Precondition failed: the entity was changed');
      const next = (req.body as Row).MaintenanceOrderLongText;
      if (typeof next !== 'string') return this.error(res, 400, '/IWBEP/CM_MGW_RT/001', 'MaintenanceOrderLongText missing');
      const added = next.startsWith(`${s.longText.text}\n`) ? next.slice(s.longText.text.length + 1) : next;
      s.longText = { text: next, changed: this.now() };
      s.changed = s.longText.changed;
      this.noteLog.set(key, [...this.notes(key), added]);
      res.status(204).end();
      return;
    }
    if (req.method === 'GET' && path === `${SIM_EQUIPMENT_SERVICE}/Equipment`) {
      this.collection(req, res, query, [...this.equipment.values()].flat().map((e) => this.renderEquipment(e)));
      return;
    }
    this.error(res, 404, '/IWBEP/CM_MGW_RT/021', `Resource not found for segment '${path.split('/').pop() ?? ''}'`);
  }

  /**
   * POST MaintenanceOrder: a new order with internal numbering, status CRTD, its header long text
   * taken from a deep insert on to_MaintenanceOrderLongText (an array, or {results: [...]}).
   * Refused with 400 as SAP would: an order type the customizing lacks, no planning plant, a
   * description over the 40 characters of MaintenanceOrderDesc, a date not in /Date(ms)/ form, a
   * finish before the start, a field SAP fills itself.
   */
  private createOrder(req: Request, res: Response): void {
    if (!this.csrfOk(req, res)) return;
    const b = req.body as unknown;
    if (typeof b !== 'object' || b === null || Array.isArray(b)) return this.error(res, 400, '/IWBEP/CM_MGW_RT/001', 'The request body is not an entity');
    const body = b as Row;
    const bad = (code: string, message: string) => this.error(res, 400, code, message);
    const fixed = NOT_CREATABLE.find((k) => Object.hasOwn(body, k));
    if (fixed) return bad('/IWBEP/CM_MGW_RT/009', `Property '${fixed}' is not creatable`);
    const type = body.MaintenanceOrderType;
    if (typeof type !== 'string' || !this.orderTypes.has(type)) return bad('IWO_BAPI2/115', `Order type ${String(type)} is not defined`);
    const desc = body.MaintenanceOrderDesc;
    if (typeof desc !== 'string' || desc.length > 40) return bad('/IWBEP/CM_MGW_RT/001', 'Property MaintenanceOrderDesc: value is not a string of at most 40 characters');
    const planning = body.MaintenancePlanningPlant;
    const plant = body.MaintenancePlant ?? planning;
    if (typeof planning !== 'string' || !KEY4.test(planning) || typeof plant !== 'string' || !KEY4.test(plant)) return bad('IWO_BAPI2/104', 'Enter a maintenance planning plant');
    const priority = body.MaintPriority;
    if (priority !== undefined && (typeof priority !== 'string' || !/^[A-Za-z0-9]$/.test(priority))) return bad('IWO_BAPI2/118', `Priority ${String(priority)} is not defined`);
    const date = (k: string): number | undefined => {
      const m = typeof body[k] === 'string' ? ODATA_DATE.exec(body[k]) : null;
      return m ? Number(m[1]) : undefined;
    };
    const start = date('MaintOrdBasicStartDateTime');
    const end = date('MaintOrdBasicEndDateTime');
    if (start === undefined || end === undefined) return bad('/IWBEP/CM_MGW_RT/001', 'Invalid value for property MaintOrdBasicStartDateTime/MaintOrdBasicEndDateTime (expected /Date(ms)/)');
    if (end < start) return bad('IW/217', 'Basic finish date is before basic start date');
    const nav = body.to_MaintenanceOrderLongText;
    const texts: unknown = Array.isArray(nav) ? nav : (nav as Row | undefined)?.results;
    if (nav !== undefined && (!Array.isArray(texts) || texts.length > 1)) return bad('/IWBEP/CM_MGW_RT/001', 'to_MaintenanceOrderLongText: expected at most one header long text');
    const lt = (texts as Row[] | undefined)?.[0];
    if (lt && (lt.TextObjectType !== 'KOPF' || lt.Language !== 'EN' || typeof lt.MaintenanceOrderLongText !== 'string')) return bad('IWO_BAPI/121', 'Text ID or language not allowed');

    const id = String(this.nextOrder++);
    const now = this.now();
    const stored: Stored = {
      spec: { id, status: 'awaiting_approval', vendorId: '', technicianIds: [], assetIds: [], start: new Date(start), end: new Date(end), type: 'corrective', site: plant, approvers: [], title: desc },
      created: now, changed: now, lastChangeBy: this.username,
      header: { orderType: type, planningPlant: planning, ...(priority !== undefined ? { priority } : {}) },
      ...(lt ? { longText: { text: lt.MaintenanceOrderLongText as string, changed: now } } : {}),
    };
    this.orders.set(id, stored);
    this.createdIds.push(id);
    if (stored.longText) this.noteLog.set(id, [stored.longText.text]);
    const row = this.wire(this.render(id, stored, null));
    if (this.createsWithoutId > 0) {
      this.createsWithoutId--;
      delete row.MaintenanceOrder;
      delete row.__metadata;
    }
    res.status(201).set('location', `${this.base}${SIM_SERVICE}/MaintenanceOrder('${id}')`).json({ d: row });
  }

  /** $filter, $orderby, $skip, $top, then server paging by $skiptoken. Rows carry raw values; dates as ms until sent. */
  private collection(req: Request, res: Response, q: URLSearchParams, rows: Row[]): void {
    const filter = q.get('$filter');
    let list = filter ? rows.filter(parseFilter(filter)) : rows;
    list = [...list].sort(sorter(q.get('$orderby')));
    const skip = Number(q.get('$skip') ?? 0);
    const top = q.has('$top') ? Number(q.get('$top')) : list.length;
    list = list.slice(skip, skip + top);
    const page = this.o.serverPageSize ?? 0;
    const from = Number(q.get('$skiptoken') ?? 0);
    const slice = page > 0 ? list.slice(from, from + page) : list;
    const d: Row = { results: slice.map((r) => this.wire(r)) };
    if (page > 0 && from + page < list.length) {
      const nq = new URLSearchParams(q);
      nq.set('$skiptoken', String(from + page));
      d.__next = `${this.base}${req.path}?${nq.toString()}`;
    }
    res.json({ d });
  }

  private wire(r: Row): Row {
    return Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'number' && /DateTime$|Date$/.test(k) ? odataDate(v) : v]));
  }

  private render(id: string, s: Stored, expand: string | null): Row {
    const o = s.spec;
    const [sys, user] = STATUS_TEXT[o.status];
    const uri = `${this.base}${SIM_SERVICE}/MaintenanceOrder('${id}')`;
    const exp = new Set((expand ?? '').split(',').map((e) => e.trim()));
    const partners = [
      ...(o.vendorId ? [{ PartnerFunction: 'VN', MaintenanceOrderPartner: o.vendorId }] : []),
      ...o.technicianIds.map((t) => ({ PartnerFunction: 'VW', MaintenanceOrderPartner: t })),
      { PartnerFunction: 'AB', MaintenanceOrderPartner: '10000123' },
    ].map((p) => ({ __metadata: { type: 'API_MAINTENANCEORDER.MaintenanceOrderPartner_Type' }, MaintenanceOrder: id, ...p }));
    const objectList = o.assetIds.slice(1).map((a, i) => ({ MaintenanceOrder: id, MaintenanceOrderObjectList: 1, MaintenanceObjectListItem: i + 1, Equipment: a, FunctionalLocation: '' }));
    return {
      __metadata: { id: uri, uri, type: 'API_MAINTENANCEORDER.MaintenanceOrderType' },
      MaintenanceOrder: id,
      MaintenanceOrderType: s.header?.orderType ?? ORDER_TYPE[o.type],
      MaintenanceOrderDesc: o.title ?? `Order ${id}`,
      MaintOrdBasicStartDateTime: o.start.getTime(),
      MaintOrdBasicEndDateTime: o.end.getTime(),
      MaintOrdSchedldBscStrtDateTime: o.start.getTime(),
      MaintOrdSchedldBscEndDateTime: o.end.getTime(),
      MaintenancePlanningPlant: s.header?.planningPlant ?? o.site,
      MaintenancePlant: o.site,
      MainWorkCenter: 'RES-0300',
      Equipment: o.assetIds[0] ?? '',
      EquipmentName: o.assetIds[0] ? `Equipment ${o.assetIds[0]}` : '',
      FunctionalLocation: s.header ? '' : `${o.site}-SPA-UTIL`,
      TechnicalObject: o.assetIds[0] ?? '',
      TechObjIsEquipOrFuncnlLoc: s.header ? '' : 'EAMS_EQUI',
      MaintPriority: s.header ? (s.header.priority ?? '') : o.type === 'emergency' ? '1' : '3',
      SystemStatusText: sys,
      UserStatusText: user,
      CreatedByUser: s.header ? this.username : 'PLANNER1',
      LastChangeByUser: s.lastChangeBy,
      MaintOrderCreationDateTime: s.created,
      LastChangeDateTime: s.changed,
      to_MaintenanceOrderPartner: exp.has('to_MaintenanceOrderPartner') ? { results: partners } : { __deferred: { uri: `${uri}/to_MaintenanceOrderPartner` } },
      to_MaintOrderObjectListItem: exp.has('to_MaintOrderObjectListItem') ? { results: objectList } : { __deferred: { uri: `${uri}/to_MaintOrderObjectListItem` } },
      to_MaintenanceOrderLongText: { __deferred: { uri: `${uri}/to_MaintenanceOrderLongText` } },
    };
  }

  private etag(s: Stored): string {
    return `W/"datetimeoffset'${new Date(s.longText?.changed ?? 0).toISOString()}'"`;
  }

  private longText(id: string, s: Stored): Row {
    const uri = `${this.base}${SIM_SERVICE}/MaintenanceOrderLongText(MaintenanceOrder='${id}',TextObjectType='KOPF',Language='EN')`;
    return {
      __metadata: { id: uri, uri, type: 'API_MAINTENANCEORDER.MaintenanceOrderLongText_Type', etag: this.etag(s) },
      MaintenanceOrder: id, TextObjectType: 'KOPF', Language: 'EN', MaintenanceOrderLongText: s.longText?.text ?? '',
    };
  }

  private renderEquipment(e: SimEquipment): Row {
    return {
      __metadata: { type: 'API_EQUIPMENT.EquipmentType' },
      Equipment: e.id,
      ValidityEndDate: e.validTo?.getTime() ?? END_OF_TIME,
      EquipmentName: e.name ?? `Equipment ${e.id}`,
      EquipmentCategory: 'M',
      TechnicalObjectType: e.objectType ?? '',
      ABCIndicator: e.abc ?? '',
      MaintenancePlant: e.plant ?? '1710',
      FunctionalLocation: e.functionalLocation ?? '',
      FunctionalLocationLabelName: e.functionalLocation ?? '',
      AssetLocation: '',
      EquipmentIsMarkedForDeletion: e.deleted ?? false,
      EquipmentIsInactive: false,
    };
  }
}
