import { randomUUID } from 'node:crypto';
import express, { type NextFunction, type Request, type Response } from 'express';
import { Faults, listen } from './faults.js';

/**
 * A FortiGate's REST API v2 (FortiOS 7.x), the part a vendor-access broker uses: firewall
 * address objects, address groups, and config save, per VDOM.
 *
 * [V] documented or seen in public clients (apis.md §6, Ansible fortios, PowerFGT, the Terraform
 * provider's issue logs):
 * - `Authorization: Bearer <token>` (or `?access_token=`), `?vdom=` selects the VDOM.
 * - GET|POST /api/v2/cmdb/firewall/address, GET|PUT|DELETE /api/v2/cmdb/firewall/address/{name};
 *   the same for /api/v2/cmdb/firewall/addrgrp. Address subnets are answered as
 *   "a.b.c.d m.m.m.m" whichever way they were written ("a.b.c.d/32" is accepted).
 * - The envelope {http_method, status: success|error, http_status, vdom, mkey, results, ...};
 *   GET answers `results` as a list, also for one object.
 * - A PUT replaces a table attribute (member) whole; attributes not sent are unchanged.
 * - POST of a name that exists: HTTP 500 with error -5. DELETE of an object a group still uses:
 *   HTTP 500 with error -23. A missing object: 404.
 * - An address group cannot be empty (PowerFGT: "it is not possible don't have member").
 * - `format=a|b` limits the attributes answered; `filter=name=@x` (contains), `name==x`.
 * - POST /api/v2/monitor/system/config/save.
 *
 * [I] assumed here, not confirmed against an appliance:
 * - 401 for a missing or wrong token, answered as a bare envelope; 403 (profile lacks the
 *   permission) likewise. Real appliances may answer 401 with an HTML body.
 * - An unknown VDOM answers 424 (netknife mentions 424 for VDOM problems).
 * - A group member that is no address or group: 424 with error -3; an empty member list: 424
 *   with error -651; more than `maxMembers` (255): 500 with error -4.
 * - "200 with an error inside" (Faults 'error-in-200'): HTTP 200, status "error", error -651.
 * - Names are compared case-sensitively.
 */

export interface SimAddress {
  name: string;
  type: string;
  subnet: string;
  comment: string;
  uuid: string;
}

export interface SimGroup {
  name: string;
  member: string[];
  comment: string;
  uuid: string;
}

interface Vdom {
  addresses: Map<string, SimAddress>;
  groups: Map<string, SimGroup>;
}

export interface SimRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  authorization: string | undefined;
  body: unknown;
}

export interface FortiGateSimOptions {
  readonly token: string;
  /** Default ['root']. */
  readonly vdoms?: readonly string[];
  /** Default 255. */
  readonly maxMembers?: number;
}

const OCTET = '(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
const IPV4 = new RegExp(`^${OCTET}(?:\\.${OCTET}){3}$`);

function maskOf(bits: number): string {
  const n = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
  return [24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.');
}

/** "a.b.c.d/len" or "a.b.c.d m.m.m.m" → FortiOS's own spelling, or undefined. */
function normalizeSubnet(v: unknown): string | undefined {
  if (typeof v !== 'string') return undefined;
  const slash = /^(\S+)\/(\d{1,2})$/.exec(v.trim());
  if (slash && IPV4.test(slash[1] as string) && Number(slash[2]) <= 32) return `${slash[1]} ${maskOf(Number(slash[2]))}`;
  const space = /^(\S+) (\S+)$/.exec(v.trim());
  if (space && IPV4.test(space[1] as string) && IPV4.test(space[2] as string)) return `${space[1]} ${space[2]}`;
  return undefined;
}

export class FortiGateSim {
  readonly requests: SimRequest[] = [];
  readonly faults: Faults;
  token: string;
  /** Calls to config/save that succeeded. */
  saves = 0;
  /** The next this many config/save calls answer 500 without a FortiOS error code (flash busy). */
  failSaves = 0;
  /** When true, every write answers 403, as for an admin profile with read-only firewall access. */
  readOnly = false;
  maxMembers: number;
  private readonly vdoms = new Map<string, Vdom>();
  private readonly overrides: { status: number; body: unknown }[] = [];
  private revision = 1;
  private server!: { url: string; close(): Promise<void> };

  private constructor(o: FortiGateSimOptions) {
    this.token = o.token;
    this.maxMembers = o.maxMembers ?? 255;
    for (const v of o.vdoms ?? ['root']) {
      // Factory defaults every VDOM has: "all" and "none" (0.0.0.0/32, which matches nothing).
      const addresses = new Map<string, SimAddress>();
      addresses.set('all', { name: 'all', type: 'ipmask', subnet: '0.0.0.0 0.0.0.0', comment: '', uuid: randomUUID() });
      addresses.set('none', { name: 'none', type: 'ipmask', subnet: '0.0.0.0 255.255.255.255', comment: '', uuid: randomUUID() });
      this.vdoms.set(v, { addresses, groups: new Map() });
    }
    this.faults = new Faults(
      (res, status) => this.error(res, status),
      (res) => this.error(res, 200, { http_status: 500, error: -651, cli_error: 'Command fail. Return code -651' }),
    );
  }

  static async start(o: FortiGateSimOptions): Promise<FortiGateSim> {
    const sim = new FortiGateSim(o);
    sim.server = await listen(sim.app());
    return sim;
  }

  /** The management origin, as configured in `fortigate.baseUrl`. */
  get url(): string {
    return this.server.url;
  }

  close(): Promise<void> {
    return this.server.close();
  }

  /** What the firewall admin does once: a group (with the placeholder), as a policy's srcaddr. */
  addGroup(name: string, members: readonly string[] = ['none'], vdom = 'root'): void {
    this.vdom(vdom).groups.set(name, { name, member: [...members], comment: '', uuid: randomUUID() });
  }

  /** An address object made by hand. */
  addAddress(name: string, subnet: string, comment = '', vdom = 'root'): void {
    this.vdom(vdom).addresses.set(name, { name, type: 'ipmask', subnet: normalizeSubnet(subnet) ?? subnet, comment, uuid: randomUUID() });
  }

  members(group: string, vdom = 'root'): string[] | undefined {
    const g = this.vdom(vdom).groups.get(group);
    return g ? [...g.member] : undefined;
  }

  address(name: string, vdom = 'root'): SimAddress | undefined {
    const a = this.vdom(vdom).addresses.get(name);
    return a ? { ...a } : undefined;
  }

  addressNames(vdom = 'root'): string[] {
    return [...this.vdom(vdom).addresses.keys()];
  }

  /** The next answer is this, whatever was asked (after auth): for answers of unexpected shape. */
  answerNext(body: unknown, status = 200): void {
    this.overrides.push({ status, body });
  }

  /** Every request received, as "METHOD path". */
  calls(): string[] {
    return this.requests.map((r) => `${r.method} ${r.path}`);
  }

  private vdom(name: string): Vdom {
    const v = this.vdoms.get(name);
    if (!v) throw new Error(`fortigate sim: no VDOM ${name}`);
    return v;
  }

  private base(req: Request, status: number): Record<string, unknown> {
    return { http_method: req.method, revision: String(this.revision), vdom: (req.query['vdom'] as string | undefined) ?? 'root', serial: 'FGVM02TM24000001', version: 'v7.2.8', build: 1639, status: status < 300 ? 'success' : 'error', http_status: status };
  }

  private error(res: Response, status: number, extra: Record<string, unknown> = {}): void {
    res.status(status).json({ ...this.base(res.req, status), status: 'error', ...extra });
  }

  private ok(req: Request, res: Response, extra: Record<string, unknown> = {}): void {
    res.status(200).json({ ...this.base(req, 200), ...extra });
  }

  private app(): express.Express {
    const app = express();
    app.use(express.json({ limit: '1mb' }));
    app.use((req, _res, next) => {
      this.requests.push({
        method: req.method, path: req.path, query: Object.fromEntries(Object.entries(req.query).map(([k, v]) => [k, String(v)])),
        authorization: req.headers.authorization, body: req.body as unknown,
      });
      next();
    });
    app.use(this.faults.middleware());
    // Auth, then VDOM: as FortiOS, a bad token is told apart before anything about the VDOM.
    app.use((req, res, next) => {
      const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
      const token = bearer ?? (typeof req.query['access_token'] === 'string' ? req.query['access_token'] : undefined);
      if (token !== this.token) return this.error(res, 401);
      const vdom = typeof req.query['vdom'] === 'string' ? req.query['vdom'] : 'root';
      if (!this.vdoms.has(vdom)) return this.error(res, 424, { vdom });
      if (this.readOnly && req.method !== 'GET') return this.error(res, 403);
      const override = this.overrides.shift();
      if (override) return void res.status(override.status).type('application/json').send(typeof override.body === 'string' ? override.body : JSON.stringify(override.body));
      res.locals['vdom'] = this.vdom(vdom);
      next();
    });

    const v = (res: Response): Vdom => res.locals['vdom'] as Vdom;
    const list = <T extends { name: string }>(req: Request, res: Response, items: T[], view: (t: T) => Record<string, unknown>, path: string, name: string): void => {
      let out = items.map(view);
      const filter = typeof req.query['filter'] === 'string' ? req.query['filter'] : undefined;
      if (filter) {
        const m = /^(\w[\w-]*)(==|=@|!=)(.*)$/.exec(filter);
        if (!m) return this.error(res, 400, { cli_error: 'invalid filter' });
        const [, key, op, want] = m as unknown as [string, string, string, string];
        out = out.filter((o) => {
          const val = String(o[key] ?? '');
          return op === '==' ? val === want : op === '!=' ? val !== want : val.includes(want);
        });
      }
      const format = typeof req.query['format'] === 'string' ? req.query['format'].split('|') : undefined;
      if (format) out = out.map((o) => Object.fromEntries(Object.entries(o).filter(([k]) => format.includes(k))));
      this.ok(req, res, { path, name, results: out, matched_count: out.length });
    };
    const addressView = (a: SimAddress) => ({ name: a.name, q_origin_key: a.name, uuid: a.uuid, type: a.type, subnet: a.subnet, comment: a.comment, 'associated-interface': '', color: 0 });
    const groupView = (g: SimGroup) => ({ name: g.name, q_origin_key: g.name, uuid: g.uuid, type: 'default', member: g.member.map((m) => ({ name: m, q_origin_key: m })), comment: g.comment, exclude: 'disable', color: 0 });
    const nameOf = (req: Request): string => req.params['name'] as string;
    const bodyOf = (req: Request): Record<string, unknown> => (req.body && typeof req.body === 'object' && !Array.isArray(req.body) ? req.body : {}) as Record<string, unknown>;
    const changed = (req: Request, res: Response, mkey: string, name: string): void => {
      this.revision++;
      this.ok(req, res, { path: 'firewall', name, mkey, revision_changed: true });
    };

    app.get('/api/v2/cmdb/firewall/address', (req, res) => list(req, res, [...v(res).addresses.values()], addressView, 'firewall', 'address'));
    app.get('/api/v2/cmdb/firewall/address/:name', (req, res) => {
      const a = v(res).addresses.get(nameOf(req));
      if (!a) return this.error(res, 404, { path: 'firewall', name: 'address', mkey: nameOf(req) });
      list(req, res, [a], addressView, 'firewall', 'address');
    });
    app.post('/api/v2/cmdb/firewall/address', (req, res) => {
      const b = bodyOf(req);
      const name = b['name'];
      if (typeof name !== 'string' || name === '' || name.length > 79) return this.error(res, 500, { error: -1, cli_error: 'name: invalid length of value' });
      if (v(res).addresses.has(name) || v(res).groups.has(name)) return this.error(res, 500, { error: -5, mkey: name });
      const type = b['type'] ?? 'ipmask';
      if (type !== 'ipmask') return this.error(res, 424, { error: -651, cli_error: 'only ipmask in this simulator' });
      const subnet = normalizeSubnet(b['subnet'] ?? '0.0.0.0 0.0.0.0');
      if (!subnet) return this.error(res, 500, { error: -8, cli_error: 'subnet: invalid IP address' });
      const comment = typeof b['comment'] === 'string' ? b['comment'] : '';
      if (comment.length > 255) return this.error(res, 500, { error: -1, cli_error: 'comment: invalid length of value' });
      v(res).addresses.set(name, { name, type, subnet, comment, uuid: randomUUID() });
      changed(req, res, name, 'address');
    });
    app.put('/api/v2/cmdb/firewall/address/:name', (req, res) => {
      const a = v(res).addresses.get(nameOf(req));
      if (!a) return this.error(res, 404, { path: 'firewall', name: 'address', mkey: nameOf(req) });
      const b = bodyOf(req);
      if (b['subnet'] !== undefined) {
        const subnet = normalizeSubnet(b['subnet']);
        if (!subnet) return this.error(res, 500, { error: -8 });
        a.subnet = subnet;
      }
      if (typeof b['comment'] === 'string') a.comment = b['comment'];
      if (b['type'] !== undefined && b['type'] !== 'ipmask') return this.error(res, 424, { error: -651 });
      changed(req, res, a.name, 'address');
    });
    app.delete('/api/v2/cmdb/firewall/address/:name', (req, res) => {
      const name = nameOf(req);
      if (!v(res).addresses.has(name)) return this.error(res, 404, { path: 'firewall', name: 'address', mkey: name });
      if ([...v(res).groups.values()].some((g) => g.member.includes(name))) return this.error(res, 500, { error: -23, mkey: name });
      v(res).addresses.delete(name);
      changed(req, res, name, 'address');
    });

    const checkMembers = (res: Response, group: string, raw: unknown): string[] | undefined => {
      if (!Array.isArray(raw) || !raw.every((m) => typeof (m as { name?: unknown } | null)?.name === 'string')) {
        this.error(res, 424, { error: -651, cli_error: 'member: expected a list of {name}' });
        return undefined;
      }
      const names = [...new Set(raw.map((m: { name: string }) => m.name))];
      if (names.length === 0) {
        this.error(res, 424, { error: -651, cli_error: 'member: an address group needs at least one member' });
        return undefined;
      }
      if (names.length > this.maxMembers) {
        this.error(res, 500, { error: -4, cli_error: `member: more than ${this.maxMembers} entries` });
        return undefined;
      }
      const unknown = names.find((n) => n === group || (!v(res).addresses.has(n) && !v(res).groups.has(n)));
      if (unknown !== undefined) {
        this.error(res, 424, { error: -3, cli_error: `member: entry not found in datasource: ${unknown}` });
        return undefined;
      }
      return names;
    };
    app.get('/api/v2/cmdb/firewall/addrgrp', (req, res) => list(req, res, [...v(res).groups.values()], groupView, 'firewall', 'addrgrp'));
    app.get('/api/v2/cmdb/firewall/addrgrp/:name', (req, res) => {
      const g = v(res).groups.get(nameOf(req));
      if (!g) return this.error(res, 404, { path: 'firewall', name: 'addrgrp', mkey: nameOf(req) });
      list(req, res, [g], groupView, 'firewall', 'addrgrp');
    });
    app.post('/api/v2/cmdb/firewall/addrgrp', (req, res) => {
      const b = bodyOf(req);
      const name = b['name'];
      if (typeof name !== 'string' || name === '' || name.length > 79) return this.error(res, 500, { error: -1 });
      if (v(res).groups.has(name) || v(res).addresses.has(name)) return this.error(res, 500, { error: -5, mkey: name });
      const member = checkMembers(res, name, b['member']);
      if (!member) return;
      v(res).groups.set(name, { name, member, comment: typeof b['comment'] === 'string' ? b['comment'] : '', uuid: randomUUID() });
      changed(req, res, name, 'addrgrp');
    });
    app.put('/api/v2/cmdb/firewall/addrgrp/:name', (req, res) => {
      const g = v(res).groups.get(nameOf(req));
      if (!g) return this.error(res, 404, { path: 'firewall', name: 'addrgrp', mkey: nameOf(req) });
      const b = bodyOf(req);
      if (b['member'] !== undefined) {
        const member = checkMembers(res, g.name, b['member']);
        if (!member) return;
        g.member = member; // the whole list, as FortiOS does
      }
      if (typeof b['comment'] === 'string') g.comment = b['comment'];
      changed(req, res, g.name, 'addrgrp');
    });
    app.delete('/api/v2/cmdb/firewall/addrgrp/:name', (req, res) => {
      const name = nameOf(req);
      if (!v(res).groups.delete(name)) return this.error(res, 404, { path: 'firewall', name: 'addrgrp', mkey: name });
      changed(req, res, name, 'addrgrp');
    });

    app.post('/api/v2/monitor/system/config/save', (req, res) => {
      if (this.failSaves > 0) {
        this.failSaves--;
        return this.error(res, 500, { cli_error: 'config save failed' });
      }
      this.saves++;
      this.ok(req, res, { path: 'system', name: 'config', action: 'save', results: {} });
    });

    app.use((req: Request, res: Response) => this.error(res, 404, { path: req.path }));
    // express.json's refusals (malformed JSON) in the product's shape.
    app.use((err: { status?: number }, _req: Request, res: Response, _next: NextFunction) => this.error(res, err.status && err.status < 500 ? err.status : 500));
    return app;
  }
}
