import { randomBytes } from 'node:crypto';
import express, { type NextFunction, type Request, type Response } from 'express';
import { Faults, listen } from './faults.js';

/**
 * Lenel OnGuard's OpenAccess REST API, the part an access-level broker uses, over real HTTP.
 *
 * Documented or seen in public clients [V] (tractionguest/lenel-sdk docs, openaccess-sync Go
 * client, PlaceOS driver and specs, DataConduIT/OpenAccess PowerShell scripts, apis.md §5):
 * - Base `/api/access/onguard/openaccess`; every call carries `?version=1.0`; `Application-Id` on
 *   every call, `Session-Token` on all but login and `GET /version`.
 * - `POST /authentication` `{user_name, password, directory_id}` → `{session_token,
 *   token_expiration_time, version}`; `DELETE /authentication` logs out; `GET /session`.
 * - An unlicensed Application-Id: 401 `openaccess.general.invalidapplicationid` ("You are not
 *   licensed for OpenAccess.").
 * - `GET /instances?type_name=&filter=&page_number=&page_size=` (page_size default 20) →
 *   `{page_number, page_size, total_pages, total_items, count, item_list:[{property_value_map}],
 *   type_name (as asked, e.g. "lnl_badge"), version}`. Filters are a subset of SQL:
 *   `BADGEKEY=1`, `email = "x"`, `and`/`or`, `like "La%"`.
 * - `POST|PUT|DELETE /instances` with `{type_name, property_value_map}`; `type_name` may also be a
 *   query parameter. Creates echo the key: `{"property_value_map":{"BADGEKEY":13239},...}`, an
 *   assignment's as `{"AccessLevelID":1,"BadgeKey":13239}`. Property names are case-insensitive.
 * - Errors: `{"error":{"code":"openaccess.general.invalidrequestitem","message":"The property
 *   PERSONID did not exist or contained an invalid value."},"version":"1.0"}`.
 * - Lnl_Badge `BADGEKEY, ID (card number), PERSONID, STATUS (1 = Active), TYPE, ACTIVATE,
 *   DEACTIVATE`; dates are shown as server-local time with that date's offset
 *   (`"2015-07-08T00:00:00-07:00"`, `"2017-12-06T00:00:00-08:00"`).
 * - Lnl_AccessLevelAssignment `ACCESSLEVELID, BADGEKEY, ACTIVATE, DEACTIVATE`; Lnl_AccessLevel `ID, NAME`.
 *
 * Assumed [I]:
 * - Error codes other than the two above: `invalidsessiontoken` (401; unknown, logged-out or
 *   expired token), `invalidcredentials` (401), `invalidversion`, `invalidtypename`,
 *   `invalidfilter`, `duplicateinstance` (400), `instancenotfound` (404 on PUT/DELETE of a missing
 *   instance), `permissiondenied` (403), `toomanyrequests` (429), `serviceunavailable` (503), and
 *   `internalerror` for a 200 that carries an error (`error-in-200`: a proxy or a queued task).
 * - ACTIVATE/DEACTIVATE are stored as the server's wall-clock time (SQL datetime, no zone): a value
 *   with an offset is converted to local time, one without is taken as local time; a local time
 *   the zone skips is a 400; in the repeated hour a stored time is shown with the standard-time
 *   offset (the later instant, as .NET's TimeZoneInfo reads it). Seconds are kept, fractions
 *   dropped; `secondsKept: 'nearest-minute'` rounds to the nearest minute (smalldatetime).
 * - An assignment needs an existing, active (STATUS 1) badge and an existing level, and DEACTIVATE
 *   after ACTIVATE; an assignment past its DEACTIVATE stays listed (it opens nothing).
 * - String comparisons in filters ignore case; `page_size` up to 1000.
 * - Sessions end `sessionTtlMs` after login (or by `expireSessions()`); deleting a badge deletes its assignments.
 */

export const LENEL_SIM_BASE = '/api/access/onguard/openaccess';
const ACTIVE = 1;

export interface LenelSimOptions {
  readonly applicationId: string;
  readonly password: string;
  /** Default 'wogate-svc'. */
  readonly username?: string;
  /** When set, a login must name this directory. */
  readonly directoryId?: string;
  /** The server's zone; default America/New_York. */
  readonly timeZone?: string;
  /** Show dates with their offset (default, as OpenAccess does) or as bare local time. */
  readonly renderOffsets?: boolean;
  /** Take a written time's wall clock as local time and drop its offset (a server that reads only the wall time) [I: possible]. */
  readonly ignoreOffsets?: boolean;
  /** Default 'exact' (whole seconds). */
  readonly secondsKept?: 'exact' | 'nearest-minute';
  /** Default 1 h. */
  readonly sessionTtlMs?: number;
}

export interface LenelSimRequest {
  readonly method: string;
  /** Below the base path, e.g. "/instances". */
  readonly path: string;
  readonly query: Readonly<Record<string, string>>;
  /** The JSON body; a login's password is replaced by "[password]". */
  readonly body: unknown;
}

type Row = Record<string, unknown>;
type Kind = 'int' | 'string' | 'time';

interface TypeSpec {
  readonly name: string;
  readonly keys: readonly string[];
  readonly props: Readonly<Record<string, Kind>>;
  readonly required: readonly string[];
  /** The key OnGuard assigns on create. */
  readonly auto?: string;
}

const TYPES: readonly TypeSpec[] = [
  { name: 'Lnl_Badge', keys: ['BADGEKEY'], auto: 'BADGEKEY', required: ['ID', 'PERSONID'], props: { BADGEKEY: 'int', ID: 'int', PERSONID: 'int', STATUS: 'int', TYPE: 'int', ACTIVATE: 'time', DEACTIVATE: 'time' } },
  { name: 'Lnl_AccessLevel', keys: ['ID'], auto: 'ID', required: ['NAME'], props: { ID: 'int', NAME: 'string', SEGMENTID: 'int' } },
  { name: 'Lnl_AccessLevelAssignment', keys: ['BADGEKEY', 'ACCESSLEVELID'], required: ['BADGEKEY', 'ACCESSLEVELID'], props: { BADGEKEY: 'int', ACCESSLEVELID: 'int', ACTIVATE: 'time', DEACTIVATE: 'time' } },
];

class OpenAccessError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

const item = (p: string): OpenAccessError => new OpenAccessError(400, 'openaccess.general.invalidrequestitem', `The property ${p} did not exist or contained an invalid value.`);

function sendError(res: Response, status: number, code: string, message: string): void {
  res.status(status).json({ error: { code, message }, version: '1.0' });
}

const FAULT_CODES: Readonly<Record<number, string>> = {
  400: 'openaccess.general.invalidrequestitem', 403: 'openaccess.general.permissiondenied', 429: 'openaccess.general.toomanyrequests',
  500: 'openaccess.general.internalerror', 503: 'openaccess.general.serviceunavailable',
};

/* Local time, done independently of the adapter's code (brute force over offsets) so a shared bug can't hide. */

const WALL = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(Z|[+-]\d{2}:\d{2})?$/;
const formatters = new Map<string, Intl.DateTimeFormat>();

function wallOf(t: number, tz: string): string {
  let f = formatters.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-GB', { timeZone: tz, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' });
    formatters.set(tz, f);
  }
  const p = Object.fromEntries(f.formatToParts(new Date(t)).map((x) => [x.type, x.value]));
  return `${p['year']}-${p['month']}-${p['day']}T${p['hour']}:${p['minute']}:${p['second']}`;
}

function instantsOfWall(wall: string, tz: string): number[] {
  const naive = Date.parse(`${wall}Z`);
  const out: number[] = [];
  for (let q = -14 * 4; q <= 14 * 4; q++) {
    const t = naive - q * 15 * 60_000;
    if (wallOf(t, tz) === wall) out.push(t);
  }
  return out.sort((a, b) => a - b);
}

export class LenelSim {
  readonly faults: Faults;
  readonly requests: LenelSimRequest[] = [];
  readonly sessions = new Map<string, { user: string; expiresAt: number }>();
  logins = 0;
  logouts = 0;
  readonly timeZone: string;
  private readonly rows = new Map<string, Map<string, Row>>(TYPES.map((t) => [t.name, new Map()]));
  private readonly answers: { status: number; body: unknown; method: string | undefined }[] = [];
  private seq = { Lnl_Badge: 13_200, Lnl_AccessLevel: 40 } as Record<string, number>;
  private server!: { url: string; close(): Promise<void> };
  private readonly renderCache = new Map<string, string>();

  private constructor(private readonly o: LenelSimOptions) {
    this.timeZone = o.timeZone ?? 'America/New_York';
    this.faults = new Faults(
      (res, status, message) => sendError(res, status, FAULT_CODES[status] ?? 'openaccess.general.internalerror', message),
      (res) => void res.status(200).json({ error: { code: 'openaccess.general.internalerror', message: 'The operation could not be completed.' }, version: '1.0' }),
    );
  }

  static async start(o: LenelSimOptions): Promise<LenelSim> {
    const sim = new LenelSim(o);
    sim.server = await listen(sim.app());
    return sim;
  }

  get url(): string {
    return `${this.server.url}${LENEL_SIM_BASE}`;
  }

  close(): Promise<void> {
    return this.server.close();
  }

  /** Adds a badge (as an enrolment would); returns its BADGEKEY. */
  addBadge(b: { id: number; status?: number; personId?: number; badgeKey?: number }): number {
    const key = b.badgeKey ?? ++(this.seq['Lnl_Badge'] as number);
    this.table('Lnl_Badge').set(String(key), { BADGEKEY: key, ID: b.id, PERSONID: b.personId ?? 1, STATUS: b.status ?? ACTIVE, TYPE: 1, ACTIVATE: null, DEACTIVATE: null });
    return key;
  }

  setBadgeStatus(badgeKey: number, status: number): void {
    const b = this.table('Lnl_Badge').get(String(badgeKey));
    if (b) b['STATUS'] = status;
  }

  addAccessLevel(name: string, id?: number): number {
    const levelId = id ?? ++(this.seq['Lnl_AccessLevel'] as number);
    this.table('Lnl_AccessLevel').set(String(levelId), { ID: levelId, NAME: name, SEGMENTID: 0 });
    return levelId;
  }

  /** An assignment made by hand in OnGuard: local wall times ('2025-03-05T18:00:00') or null. */
  assign(badgeKey: number, levelId: number, activate: string | null, deactivate: string | null): void {
    this.table('Lnl_AccessLevelAssignment').set(`${badgeKey}|${levelId}`, { BADGEKEY: badgeKey, ACCESSLEVELID: levelId, ACTIVATE: activate, DEACTIVATE: deactivate });
  }

  /** The stored assignment, times as the server keeps them (local wall time, no zone). */
  assignment(badgeKey: number, levelId: number): { ACTIVATE: string | null; DEACTIVATE: string | null } | undefined {
    const a = this.table('Lnl_AccessLevelAssignment').get(`${badgeKey}|${levelId}`);
    return a ? { ACTIVATE: a['ACTIVATE'] as string | null, DEACTIVATE: a['DEACTIVATE'] as string | null } : undefined;
  }

  assignmentCount(): number {
    return this.table('Lnl_AccessLevelAssignment').size;
  }

  /** Ends every session, as the server's session timeout would. */
  expireSessions(): void {
    this.sessions.clear();
  }

  /** The next authenticated API call (with `method`, if given) gets this answer verbatim; a string body is sent as HTML. */
  answerNext(status: number, body: unknown, method?: 'GET' | 'POST' | 'PUT' | 'DELETE'): void {
    this.answers.push({ status, body, method });
  }

  /** A stored wall time as OpenAccess shows it. */
  render(wall: string | null): string | null {
    if (wall === null || this.o.renderOffsets === false) return wall;
    const cached = this.renderCache.get(wall);
    if (cached) return cached;
    const at = instantsOfWall(wall, this.timeZone);
    const t = at[at.length - 1];
    if (t === undefined) return wall;
    const off = Math.round((Date.parse(`${wall}Z`) - t) / 60_000);
    const a = Math.abs(off);
    const out = `${wall}${off < 0 ? '-' : '+'}${String(Math.floor(a / 60)).padStart(2, '0')}:${String(a % 60).padStart(2, '0')}`;
    this.renderCache.set(wall, out);
    return out;
  }

  private table(type: string): Map<string, Row> {
    return this.rows.get(type) as Map<string, Row>;
  }

  private app(): express.Express {
    const app = express();
    app.use(express.json({ limit: '1mb' }));
    const router = express.Router();
    router.use((req, _res, next) => {
      const body = req.path === '/authentication' && req.method === 'POST' && req.body && typeof req.body === 'object' ? { ...(req.body as Row), password: '[password]' } : req.body;
      this.requests.push({ method: req.method, path: req.path, query: Object.fromEntries(Object.entries(req.query).map(([k, v]) => [k, String(v)])), body: body ?? null });
      next();
    });
    router.use(this.faults.middleware());
    router.use((req, res, next) => {
      if (req.query['version'] !== '1.0') return sendError(res, 400, 'openaccess.general.invalidversion', 'The version parameter is missing or not supported.');
      if (req.get('Application-Id') !== this.o.applicationId) return sendError(res, 401, 'openaccess.general.invalidapplicationid', 'You are not licensed for OpenAccess.');
      next();
    });
    router.get('/version', (_req, res) => void res.json({ product_name: 'OnGuard 8.0', product_version: '8.0.001', version: '1.0' }));
    router.post('/authentication', (req, res) => this.login(req, res));
    router.use((req, res, next) => this.authenticate(req, res, next));
    router.delete('/authentication', (req, res) => {
      this.sessions.delete(req.get('Session-Token') ?? '');
      this.logouts++;
      res.json({ version: '1.0' });
    });
    router.get('/session', (req, res) => {
      const s = this.sessions.get(req.get('Session-Token') ?? '');
      res.json({ user_name: s?.user, token_expiration_time: new Date(s?.expiresAt ?? 0).toISOString(), version: '1.0' });
    });
    router.use((req, res, next) => {
      const at = this.answers.findIndex((a) => a.method === undefined || a.method === req.method);
      if (at < 0) return next();
      const a = this.answers.splice(at, 1)[0] as { status: number; body: unknown };
      res.status(a.status);
      if (typeof a.body === 'string') res.type('text/html').send(a.body);
      else res.json(a.body);
    });
    const handle = (fn: (req: Request) => unknown) => (req: Request, res: Response) => {
      try {
        res.json(fn(req));
      } catch (e) {
        if (e instanceof OpenAccessError) return sendError(res, e.status, e.code, e.message);
        throw e;
      }
    };
    router.get('/instances', handle((req) => this.list(req)));
    router.post('/instances', handle((req) => this.create(req)));
    router.put('/instances', handle((req) => this.modify(req)));
    router.delete('/instances', handle((req) => this.remove(req)));
    app.use(LENEL_SIM_BASE, router);
    app.use((_req: Request, res: Response) => void res.status(404).type('text/html').send('<html><body>Not Found</body></html>'));
    return app;
  }

  private login(req: Request, res: Response): void {
    const b = (req.body ?? {}) as Row;
    const dirOk = this.o.directoryId === undefined || b['directory_id'] === this.o.directoryId;
    if (b['user_name'] !== (this.o.username ?? 'wogate-svc') || b['password'] !== this.o.password || !dirOk) {
      return sendError(res, 401, 'openaccess.general.invalidcredentials', 'The user name or password is incorrect.');
    }
    const token = randomBytes(24).toString('hex');
    const expiresAt = Date.now() + (this.o.sessionTtlMs ?? 3_600_000);
    this.sessions.set(token, { user: String(b['user_name']), expiresAt });
    this.logins++;
    res.json({ session_token: token, token_expiration_time: new Date(expiresAt).toISOString(), version: '1.0' });
  }

  private authenticate(req: Request, res: Response, next: NextFunction): void {
    const token = req.get('Session-Token') ?? '';
    const s = this.sessions.get(token);
    if (s && s.expiresAt <= Date.now()) this.sessions.delete(token);
    if (!s || s.expiresAt <= Date.now()) return sendError(res, 401, 'openaccess.general.invalidsessiontoken', 'The session token is invalid or has expired.');
    next();
  }

  private spec(req: Request): { spec: TypeSpec; asked: string } {
    const b = (req.body ?? {}) as Row;
    const asked = String(req.query['type_name'] ?? b['type_name'] ?? '');
    const spec = TYPES.find((t) => t.name.toLowerCase() === asked.toLowerCase());
    if (!spec) throw new OpenAccessError(400, 'openaccess.general.invalidtypename', `The type name ${asked} is not valid.`);
    return { spec, asked };
  }

  /** The request's property_value_map, names upper-cased, values checked and converted (times to local wall time). */
  private values(req: Request, spec: TypeSpec): Row {
    const raw = ((req.body ?? {}) as Row)['property_value_map'];
    if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new OpenAccessError(400, 'openaccess.general.invalidrequestitem', 'property_value_map is required.');
    const out: Row = {};
    for (const [k, v] of Object.entries(raw as Row)) {
      const name = k.toUpperCase();
      const kind = spec.props[name];
      if (!kind) throw item(k);
      if (v === null && kind !== 'int') out[name] = null;
      else if (kind === 'int') {
        const n = typeof v === 'number' ? v : typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : NaN;
        if (!Number.isSafeInteger(n)) throw item(k);
        out[name] = n;
      } else if (kind === 'string') {
        if (typeof v !== 'string') throw item(k);
        out[name] = v;
      } else out[name] = this.toWall(k, v);
    }
    return out;
  }

  private toWall(name: string, v: unknown): string {
    const m = typeof v === 'string' ? WALL.exec(v) : null;
    if (!m) throw item(name);
    let wall = `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6] ?? '00'}`;
    if (Number.isNaN(Date.parse(`${wall}Z`))) throw item(name);
    if (m[7] && !this.o.ignoreOffsets) wall = wallOf(Date.parse(`${wall}${m[7]}`), this.timeZone);
    else if (instantsOfWall(wall, this.timeZone).length === 0) throw new OpenAccessError(400, 'openaccess.general.invalidrequestitem', `The property ${name} is not a valid local time.`);
    if (this.o.secondsKept === 'nearest-minute') {
      const t = Date.parse(`${wall}Z`);
      wall = new Date(Math.round(t / 60_000) * 60_000).toISOString().slice(0, 19);
    }
    return wall;
  }

  private rendered(spec: TypeSpec, row: Row): Row {
    return Object.fromEntries(Object.entries(row).map(([k, v]) => [k, spec.props[k] === 'time' ? this.render(v as string | null) : v]));
  }

  private list(req: Request): unknown {
    const { spec, asked } = this.spec(req);
    const size = Number(req.query['page_size'] ?? 20);
    const page = Number(req.query['page_number'] ?? 1);
    if (!Number.isInteger(size) || size < 1 || size > 1000 || !Number.isInteger(page) || page < 1) throw new OpenAccessError(400, 'openaccess.general.invalidrequestitem', 'page_number or page_size is not valid.');
    const filter = req.query['filter'] === undefined ? undefined : parseFilter(String(req.query['filter']), spec);
    const all = [...this.table(spec.name).values()].map((r) => this.rendered(spec, r)).filter((r) => !filter || filter(r));
    const items = all.slice((page - 1) * size, page * size);
    return {
      page_number: page, page_size: size, total_pages: Math.ceil(all.length / size), total_items: all.length, count: items.length,
      item_list: items.map((p) => ({ property_value_map: p })), type_name: asked, version: '1.0',
    };
  }

  private keyOf(spec: TypeSpec, v: Row): string {
    return spec.keys.map((k) => {
      if (typeof v[k] !== 'number') throw item(k);
      return String(v[k]);
    }).join('|');
  }

  private create(req: Request): unknown {
    const { spec } = this.spec(req);
    const v = this.values(req, spec);
    for (const r of spec.required) if (v[r] === undefined || v[r] === null) throw item(r);
    if (spec.auto) v[spec.auto] = ++(this.seq[spec.name] as number);
    const key = this.keyOf(spec, v);
    if (this.table(spec.name).has(key)) throw new OpenAccessError(400, 'openaccess.general.duplicateinstance', `An instance of ${spec.name} with these keys already exists.`);
    const row: Row = Object.fromEntries(Object.entries(spec.props).map(([k, kind]) => [k, v[k] ?? (k === 'STATUS' ? ACTIVE : kind === 'int' ? 0 : null)]));
    this.check(spec, row);
    this.table(spec.name).set(key, row);
    if (spec.name === 'Lnl_AccessLevelAssignment') return { property_value_map: { AccessLevelID: row['ACCESSLEVELID'], BadgeKey: row['BADGEKEY'] }, type_name: spec.name, version: '1.0' };
    return { property_value_map: Object.fromEntries(spec.keys.map((k) => [k, row[k]])), type_name: spec.name, version: '1.0' };
  }

  private modify(req: Request): unknown {
    const { spec } = this.spec(req);
    const v = this.values(req, spec);
    const key = this.keyOf(spec, v);
    const row = this.table(spec.name).get(key);
    if (!row) throw new OpenAccessError(404, 'openaccess.general.instancenotfound', `The ${spec.name} instance was not found.`);
    const next = { ...row, ...v };
    this.check(spec, next);
    this.table(spec.name).set(key, next);
    return { property_value_map: Object.fromEntries(spec.keys.map((k) => [k, next[k]])), type_name: spec.name, version: '1.0' };
  }

  private remove(req: Request): unknown {
    const { spec } = this.spec(req);
    const key = this.keyOf(spec, this.values(req, spec));
    if (!this.table(spec.name).delete(key)) throw new OpenAccessError(404, 'openaccess.general.instancenotfound', `The ${spec.name} instance was not found.`);
    if (spec.name === 'Lnl_Badge') for (const k of [...this.table('Lnl_AccessLevelAssignment').keys()]) if (k.startsWith(`${key}|`)) this.table('Lnl_AccessLevelAssignment').delete(k);
    return { version: '1.0' };
  }

  /** The rules OnGuard enforces on a row about to be stored. */
  private check(spec: TypeSpec, row: Row): void {
    const a = row['ACTIVATE'];
    const d = row['DEACTIVATE'];
    if (typeof a === 'string' && typeof d === 'string' && d <= a) throw new OpenAccessError(400, 'openaccess.general.invalidrequestitem', 'The deactivate date must be later than the activate date.');
    if (spec.name !== 'Lnl_AccessLevelAssignment') return;
    const badge = this.table('Lnl_Badge').get(String(row['BADGEKEY']));
    if (!badge) throw item('BADGEKEY');
    if (!this.table('Lnl_AccessLevel').has(String(row['ACCESSLEVELID']))) throw item('ACCESSLEVELID');
    if (badge['STATUS'] !== ACTIVE) throw new OpenAccessError(400, 'openaccess.general.invalidrequestitem', 'Access levels can be assigned to active badges only.');
  }
}

/* Filters: `A=1 and B="x"`, `or`, `not`, parentheses, = != <> < > <= >= like. */

type Pred = (row: Row) => boolean;

function parseFilter(text: string, spec: TypeSpec): Pred {
  const tokens = text.match(/"[^"]*"|'[^']*'|<>|!=|<=|>=|[=<>()]|[^\s=<>!()"']+/g) ?? [];
  let i = 0;
  const bad = (why: string): OpenAccessError => new OpenAccessError(400, 'openaccess.general.invalidfilter', `The filter is not valid: ${why}.`);
  const peek = (): string | undefined => tokens[i];
  const word = (w: string): boolean => peek()?.toLowerCase() === w && (i++, true);
  const or = (): Pred => {
    let p = and();
    while (word('or')) {
      const [l, r] = [p, and()];
      p = (row) => l(row) || r(row);
    }
    return p;
  };
  const and = (): Pred => {
    let p = not();
    while (word('and')) {
      const [l, r] = [p, not()];
      p = (row) => l(row) && r(row);
    }
    return p;
  };
  const not = (): Pred => {
    if (word('not')) {
      const p = not();
      return (row) => !p(row);
    }
    if (peek() === '(') {
      i++;
      const p = or();
      if (tokens[i++] !== ')') throw bad('missing )');
      return p;
    }
    return cmp();
  };
  const cmp = (): Pred => {
    const name = (tokens[i++] ?? '').toUpperCase();
    if (!spec.props[name]) throw bad(`unknown property ${name}`);
    const op = (tokens[i++] ?? '').toLowerCase();
    const raw = tokens[i++];
    if (raw === undefined || !['=', '!=', '<>', '<', '>', '<=', '>=', 'like'].includes(op)) throw bad(`expected a comparison after ${name}`);
    const quoted = /^["']/.test(raw);
    const value: string | number = quoted ? raw.slice(1, -1) : Number(raw);
    if (!quoted && Number.isNaN(value)) throw bad(`${raw} is neither a number nor a quoted string`);
    return (row) => {
      const v = row[name];
      if (v === null || v === undefined) return op === '!=' || op === '<>';
      const [a, b] = typeof value === 'number' ? [Number(v), value] : [String(v).toLowerCase(), value.toLowerCase()];
      switch (op) {
        case '=': return a === b;
        case '!=': case '<>': return a !== b;
        case '<': return a < b;
        case '>': return a > b;
        case '<=': return a <= b;
        case '>=': return a >= b;
        default: return new RegExp(`^${String(b).replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/%/g, '.*').replace(/_/g, '.')}$`).test(String(a));
      }
    };
  };
  const p = or();
  if (i !== tokens.length) throw bad(`unexpected ${tokens[i]}`);
  return p;
}
