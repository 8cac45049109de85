import { randomBytes } from 'node:crypto';
import { isIPv6 } from 'node:net';
import express, { type Request, type Response } from 'express';
import { XMLParser } from 'fast-xml-parser';
import { Faults, listen } from './faults.js';

/**
 * A PAN-OS firewall's XML API, as far as User-ID tag registration goes, over real HTTP.
 *
 * Documented [V] (docs.paloaltonetworks.com "Apply User-ID Mapping and Populate Dynamic Groups",
 * "Get Your API Key", "PAN-OS XML API Error Codes"; pan-os-python, pango and other clients):
 * - one endpoint, `/api/`, parameters in the query or a form body; `type=keygen` (user, password)
 *   answers `<response status="success"><result><key>`; other types take the key in the
 *   `X-PAN-KEY` header or a `key` parameter; optional `vsys` and `target` (Panorama, a serial);
 * - `type=user-id&cmd=<uid-message>` with `<register>`/`<unregister>` entries `ip=` holding
 *   `<tag><member timeout="seconds">`; `timeout` 0 or absent: no expiry; `persistent="0|1"`;
 *   up to 32 tags per address; an entry may be an address, a range `a-b` or a CIDR (10.0+);
 * - answers `<response status="success"><result><uid-response><version>2.0</version><payload>`,
 *   and for failed entries `<response status="error"><msg><line><uid-response>…<entry ip=
 *   message=…/>`; re-registering a tag an address has answers "tag … already exists, ignore"
 *   and unregistering one it lacks "… does not exist, ignore unreg" (the texts clients match);
 * - `type=op` `<show><object><registered-ip><all/>` answers `<result><entry ip from_agent
 *   persistent><tag><member>…</member></tag></entry>…<count>N</count></result>`;
 * - a bad key: HTTP 403 `<response status="error" code="403"><result><msg>Invalid Credential`;
 *   error codes 400/403/1/2-5/…/22.
 *
 * Assumed [I]:
 * - re-registering keeps the old timeout (inferred from "already exists, ignore");
 * - sections of one uid-message are applied in document order (`order: 'register-first'` models
 *   a firewall that registers before it unregisters);
 * - registered-ip members carry `timeout` (as registered) and `remaining` (whole seconds left,
 *   rounded down) attributes when they have a timeout — the real output format is unconfirmed;
 * - the wording of the 32-tag limit, bad-timeout, bad-vsys and bad-target messages, and HTTP 400
 *   for an unparseable cmd; a timeout above 2592000 s is refused per entry.
 * Registrations expire by the simulator's own clock: anything past its expiry is gone.
 */
export interface PanosSimOptions {
  /** A key that is always accepted, like one generated before wogate started. */
  readonly apiKey?: string;
  /** The admin whose keys `type=keygen` hands out. */
  readonly username?: string;
  readonly password?: string;
  readonly clock?: () => Date;
  /** Virtual systems; default ['vsys1'] (also the default when a request names none). */
  readonly vsys?: readonly string[];
  /** Act as Panorama in front of this firewall: calls must name it with `target`. */
  readonly serial?: string;
  readonly maxTimeout?: number;
  readonly maxTagsPerIp?: number;
  readonly order?: 'document' | 'register-first';
}

export interface PanosSimRequest {
  readonly method: string;
  readonly type: string | undefined;
  readonly cmd: string | undefined;
  readonly vsys: string | undefined;
  readonly target: string | undefined;
  /** The X-PAN-KEY header as sent. */
  readonly keyHeader: string | undefined;
  /** Names of the query-string parameters (a key or password there would end up in logs). */
  readonly queryNames: readonly string[];
  /** Names of the form-body parameters. */
  readonly bodyNames: readonly string[];
}

export interface SimRegistration {
  readonly tag: string;
  readonly timeout: number;
  readonly expiresAt?: Date;
  readonly persistent: boolean;
}

interface Reg {
  timeout: number;
  expiresAt?: number;
  persistent: boolean;
}

type Node = Record<string, unknown>;

const OCTET = '(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
const V4 = `${OCTET}(?:\\.${OCTET}){3}`;
const ADDRESS = new RegExp(`^${V4}(?:/(?:3[0-2]|[12]?\\d)|-${V4})?$`);
const PARSER = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@_', parseTagValue: false, parseAttributeValue: false, isArray: (n) => n === 'entry' || n === 'member' });

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function obj(v: unknown): Node | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Node) : undefined;
}

function arr(v: unknown): unknown[] {
  return v === undefined || v === '' ? [] : Array.isArray(v) ? v : [v];
}

function textOf(v: unknown): string {
  return typeof v === 'string' ? v : String(obj(v)?.['#text'] ?? '');
}

export class PanosSim {
  readonly requests: PanosSimRequest[] = [];
  readonly faults: Faults;
  /** What the next 'error-in-200' fault sends with HTTP 200. */
  errorIn200Body = '<response status="error" code="2"><msg><line>Internal error: User-ID daemon is busy</line></msg></response>';
  url = '';
  private readonly keys = new Set<string>();
  private readonly tables = new Map<string, Map<string, Map<string, Reg>>>();
  private readonly clock: () => Date;
  private readonly vsysList: readonly string[];
  private close_: () => Promise<void> = async () => {};

  private constructor(private readonly o: PanosSimOptions) {
    this.clock = o.clock ?? (() => new Date());
    this.vsysList = o.vsys ?? ['vsys1'];
    for (const v of this.vsysList) this.tables.set(v, new Map());
    this.faults = new Faults(
      (res, status, message) => this.error(res, status, String(status), message, 'result'),
      (res) => void res.status(200).type('application/xml').send(this.errorIn200Body),
    );
  }

  static async start(o: PanosSimOptions = {}): Promise<PanosSim> {
    const sim = new PanosSim(o);
    const app = express();
    app.use(express.urlencoded({ extended: false, limit: '5mb' }));
    app.use((req, _res, next) => {
      const p = sim.params(req);
      sim.requests.push({
        method: req.method, type: p['type'], cmd: p['cmd'], vsys: p['vsys'], target: p['target'], keyHeader: req.get('x-pan-key'),
        queryNames: Object.keys(req.query), bodyNames: Object.keys(obj(req.body) ?? {}),
      });
      next();
    });
    app.use(sim.faults.middleware());
    app.all('/api/', (req, res) => sim.handle(req, res));
    app.use((_req: Request, res: Response) => sim.error(res, 404, '400', 'Not found', 'result'));
    const server = await listen(app);
    sim.url = server.url;
    sim.close_ = server.close;
    return sim;
  }

  /** The tags an address holds now (expired ones are gone). */
  registered(ip: string, vsys = 'vsys1'): SimRegistration[] {
    this.purge();
    const tags = this.tables.get(vsys)?.get(ip);
    return [...(tags ?? [])].map(([tag, r]) => ({ tag, timeout: r.timeout, persistent: r.persistent, ...(r.expiresAt !== undefined ? { expiresAt: new Date(r.expiresAt) } : {}) }));
  }

  /** A registration made outside wogate (an admin, another integration). */
  registerByHand(ip: string, tag: string, timeout = 0, vsys = 'vsys1'): void {
    const table = this.tables.get(vsys) as Map<string, Map<string, Reg>>;
    const tags = table.get(ip) ?? new Map<string, Reg>();
    tags.set(tag, this.reg(timeout, true));
    table.set(ip, tags);
  }

  /** Every generated key stops working (key lifetime reached, password changed). */
  expireKeys(): void {
    this.keys.clear();
  }

  /** The uid-messages received, in order. */
  uidMessages(): string[] {
    return this.requests.filter((r) => r.type === 'user-id').map((r) => r.cmd ?? '');
  }

  close(): Promise<void> {
    return this.close_();
  }

  private params(req: Request): Record<string, string | undefined> {
    const out: Record<string, string | undefined> = {};
    for (const [k, v] of Object.entries({ ...(req.query as Node), ...(obj(req.body) ?? {}) })) out[k] = typeof v === 'string' ? v : undefined;
    return out;
  }

  private error(res: Response, http: number, code: string | undefined, message: string, where: 'result' | 'msg'): void {
    const inner = where === 'result' ? `<result><msg>${esc(message)}</msg></result>` : `<msg><line>${esc(message)}</line></msg>`;
    res.status(http).type('application/xml').send(`<response status="error"${code !== undefined ? ` code="${code}"` : ''}>${inner}</response>`);
  }

  private ok(res: Response, result: string): void {
    res.status(200).type('application/xml').send(`<response status="success"><result>${result}</result></response>`);
  }

  private handle(req: Request, res: Response): void {
    const p = this.params(req);
    if (p['type'] === 'keygen') {
      if (this.o.username === undefined || p['user'] !== this.o.username || p['password'] !== this.o.password) return this.error(res, 403, '403', 'Invalid Credential', 'result');
      const key = `LUFRPT${randomBytes(24).toString('base64')}`;
      this.keys.add(key);
      return this.ok(res, `<key>${esc(key)}</key>`);
    }
    const key = req.get('x-pan-key') ?? p['key'];
    if (key === undefined || !(key === this.o.apiKey || this.keys.has(key))) return this.error(res, 403, '403', 'Invalid Credential', 'result');
    if (this.o.serial !== undefined ? p['target'] !== this.o.serial : p['target'] !== undefined) {
      return this.error(res, 200, undefined, `Device ${p['target'] ?? '(none)'} is not a connected managed device`, 'msg');
    }
    const vsys = p['vsys'] ?? this.vsysList[0] ?? 'vsys1';
    const table = this.tables.get(vsys);
    if (!table) return this.error(res, 200, '400', `Invalid vsys ${vsys}`, 'msg');
    if (p['cmd'] === undefined) return this.error(res, 400, '400', 'Missing required parameter: cmd', 'result');
    let doc: Node;
    try {
      doc = PARSER.parse(p['cmd'], true) as Node;
    } catch {
      return this.error(res, 400, '400', 'Malformed command: not XML', 'msg');
    }
    if (p['type'] === 'user-id') return this.userId(res, p['cmd'], doc, table);
    if (p['type'] === 'op') return this.op(res, doc, table);
    return this.error(res, 400, '400', `Invalid request type ${p['type'] ?? '(none)'}`, 'result');
  }

  private userId(res: Response, cmd: string, doc: Node, table: Map<string, Map<string, Reg>>): void {
    const msg = obj(doc['uid-message']);
    const version = textOf(msg?.['version']);
    const payload = msg?.['payload'] === '' ? {} : obj(msg?.['payload']);
    if (!msg || (version !== '1.0' && version !== '2.0') || textOf(msg['type']) !== 'update' || !payload) {
      return this.error(res, 400, '18', 'Malformed command: expected <uid-message> with version, type update and payload', 'msg');
    }
    this.purge();
    const kinds = Object.keys(payload).filter((k) => k === 'register' || k === 'unregister');
    const docOrder = kinds.sort((a, b) => cmd.search(new RegExp(`<${a}[\\s>/]`)) - cmd.search(new RegExp(`<${b}[\\s>/]`)));
    const order = this.o.order === 'register-first' ? [...docOrder].sort((a, b) => (a === b ? 0 : a === 'register' ? -1 : 1)) : docOrder;
    const failed: Record<string, string[]> = { register: [], unregister: [] };
    for (const kind of order) {
      for (const e of arr(obj(payload[kind])?.['entry'])) {
        const entry = obj(e) ?? {};
        const ip = String(entry['@_ip'] ?? '');
        const fail = (message: string): void => void (failed[kind] as string[]).push(`<entry ip="${esc(ip)}" message="${esc(message)}"/>`);
        if (!ADDRESS.test(ip) && !isIPv6(ip)) {
          fail(`Invalid IP address ${ip}`);
          continue;
        }
        for (const m of arr(obj(entry['tag'])?.['member'])) {
          const tag = textOf(m).trim();
          if (tag === '' || tag.length > 127) {
            fail(`Invalid tag name ${tag}`);
            continue;
          }
          if (kind === 'unregister') this.unregisterOne(table, ip, tag, fail);
          else this.registerOne(table, ip, tag, obj(m)?.['@_timeout'], entry['@_persistent'], fail);
        }
      }
    }
    const sections = docOrder.map((k) => `<${k}>${(failed[k] as string[]).join('')}</${k}>`).join('');
    const uid = `<uid-response><version>2.0</version><payload>${sections}</payload></uid-response>`;
    if (Object.values(failed).some((f) => f.length > 0)) return void res.status(200).type('application/xml').send(`<response status="error"><msg><line>${uid}</line></msg></response>`);
    this.ok(res, uid);
  }

  private registerOne(table: Map<string, Map<string, Reg>>, ip: string, tag: string, timeoutAttr: unknown, persistentAttr: unknown, fail: (m: string) => void): void {
    const max = this.o.maxTimeout ?? 2_592_000;
    const timeout = timeoutAttr === undefined ? 0 : Number(timeoutAttr);
    if (!/^\d+$/.test(String(timeoutAttr ?? '0')) || timeout > max) return fail(`Invalid timeout value ${String(timeoutAttr)}: allowed range is 0-${max}`);
    if (persistentAttr !== undefined && persistentAttr !== '0' && persistentAttr !== '1') return fail(`Invalid persistent value ${String(persistentAttr)}`);
    const tags = table.get(ip) ?? new Map<string, Reg>();
    if (tags.has(tag)) return fail(`tag ${tag} already exists, ignore`);
    if (tags.size >= (this.o.maxTagsPerIp ?? 32)) return fail(`Failed to register tag ${tag}: ip ${ip} already has the maximum of ${this.o.maxTagsPerIp ?? 32} tags`);
    tags.set(tag, this.reg(timeout, persistentAttr !== '0'));
    table.set(ip, tags);
  }

  private unregisterOne(table: Map<string, Map<string, Reg>>, ip: string, tag: string, fail: (m: string) => void): void {
    const tags = table.get(ip);
    if (!tags) return fail(`ip ${ip} does not exist, ignore unreg`);
    if (!tags.delete(tag)) return fail(`tag ${tag} does not exist, ignore unreg`);
    if (tags.size === 0) table.delete(ip);
  }

  private op(res: Response, doc: Node, table: Map<string, Map<string, Reg>>): void {
    const q = obj(obj(obj(doc['show'])?.['object'])?.['registered-ip']);
    if (!q) return this.error(res, 200, '17', 'show -> object: unexpected command', 'msg');
    this.purge();
    const ipFilter = q['ip'] === undefined ? undefined : textOf(q['ip']);
    const tagFilter = q['tag'] === undefined ? undefined : String(obj(arr(obj(q['tag'])?.['entry'])[0])?.['@_name'] ?? '');
    if (q['all'] === undefined && ipFilter === undefined && tagFilter === undefined) return this.error(res, 200, '17', 'registered-ip: expected all, ip or tag', 'msg');
    const now = this.clock().getTime();
    const rows: string[] = [];
    for (const [ip, tags] of [...table].sort(([a], [b]) => a.localeCompare(b))) {
      if (ipFilter !== undefined && ip !== ipFilter) continue;
      const members = [...tags]
        .filter(([tag]) => tagFilter === undefined || tag === tagFilter)
        .map(([tag, r]) => (r.expiresAt === undefined ? `<member>${esc(tag)}</member>` : `<member timeout="${r.timeout}" remaining="${Math.max(0, Math.floor((r.expiresAt - now) / 1000))}">${esc(tag)}</member>`));
      if (members.length === 0) continue;
      const persistent = [...tags.values()].some((r) => r.persistent) ? '1' : '0';
      rows.push(`<entry ip="${esc(ip)}" from_agent="0" persistent="${persistent}"><tag>${members.join('')}</tag></entry>`);
    }
    this.ok(res, `${rows.join('')}<count>${rows.length}</count>`);
  }

  private reg(timeout: number, persistent: boolean): Reg {
    return { timeout, persistent, ...(timeout > 0 ? { expiresAt: this.clock().getTime() + timeout * 1000 } : {}) };
  }

  /** Registrations past their timeout are gone, as on the firewall. */
  private purge(): void {
    const now = this.clock().getTime();
    for (const table of this.tables.values()) {
      for (const [ip, tags] of table) {
        for (const [tag, r] of tags) if (r.expiresAt !== undefined && r.expiresAt <= now) tags.delete(tag);
        if (tags.size === 0) table.delete(ip);
      }
    }
  }
}
