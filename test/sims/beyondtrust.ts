import { randomBytes } from 'node:crypto';
import express, { type NextFunction, type Request, type Response } from 'express';
import { Faults, listen } from './faults.js';

/**
 * BeyondTrust Privileged Remote Access (PRA) Configuration API, the part wogate's target drives:
 * OAuth client credentials, users, group policies with members and Jump Group links, Jump Groups.
 *
 * [V] = in BeyondTrust's OpenAPI document `bt-pra-configuration.openapi.yaml` (as shipped in
 * BeyondTrust/terraform-provider-sra) or the PRA docs "API test scenario"; [I] = assumed.
 * - [V] `POST /oauth2/token`, `Authorization: Basic base64(client_id:secret)`, form body
 *   `grant_type=client_credentials`; answer `{access_token, token_type: "Bearer", expires_in: 3600}`.
 *   OAuth errors are `{error, message}` with `error` from a fixed list (invalid_client, ...).
 *   [I] a bad client is 401 `invalid_client`, a wrong grant type 400 `unsupported_grant_type`.
 * - [V] API under `/api/config/v1` with `Authorization: Bearer <token>`; GET and DELETE need
 *   `Accept: application/json`, bodies `Content-Type: application/json`. [I] a missing Accept is 406,
 *   a body that is not JSON 415/400.
 * - [V] 401 also means "unrecognised query string parameter" (GET) or "unrecognised body field"
 *   (POST/PATCH). [I] the body of an API 401 is `{"message": "Access token is invalid"}` (the shape
 *   terraform-provider-sra's own test double uses).
 * - [I] the appliance keeps a bounded number of live tokens per API account and evicts the oldest
 *   (terraform-provider-sra's reauth tests describe this); here 10 by default.
 * - [V] 403 when the API account lacks Configuration API permission; 404 `{message}` for an unknown
 *   id; 422 `{message, errors: {field: [messages]}}` for invalid data; integers must be JSON numbers.
 * - [V] paging: `per_page` (5..100, default 100) and 1-based `current_page`; answers carry `Link`
 *   and `X-BT-Pagination-Current-Page`, `-Per-Page`, `-Last-Page`, `-Total`. [I] out-of-range
 *   values are 422. `maxPerPage` (a test knob, not PRA) shrinks pages to exercise paging.
 * - [V] `GET /user?username=&security_provider_id=&email_address=`: exact, case-insensitive.
 *   `GET /user/{id}`. `GET /group-policy?name=` (exact, case-insensitive), `GET /group-policy/{id}`.
 * - [V] `GET|POST /group-policy/{id}/member`, `GET|DELETE /group-policy/{id}/member/{member_id}`;
 *   a member is `{id, security_provider_id, user_id | distinguished_name | group_name}`; a local or
 *   SAML user needs `security_provider_id` and `user_id`, no `distinguished_name`. POST answers 201;
 *   DELETE 204. [I] the 201 carries no body (the provider discovers the id by re-listing, which is
 *   what this sim forces); a user already in the policy is 422; a user_id from another security
 *   provider is 422.
 * - [V] `POST /group-policy/{id}/provision` (204) "provisions the members". [I] changes made through
 *   the API reach users only when provisioned: `members()` is what the API shows, `effective()` is
 *   what users get. Members added by hand (`addMember`, the /login UI) are effective at once.
 * - [V] `GET /group-policy/{id}/jump-group` (not paged): `{jump_group_id, jump_item_role_id,
 *   jump_policy_id}`. `GET /jump-group` (paged): `{id, name, code_name, comments}`.
 * - Nothing in the API expires a group policy membership; there is no expiry field to simulate.
 *   Vendor groups (`/vendor`, account_expiration in days) and vendor users (POST answers 200 with
 *   no body) are not simulated: the target does not use them (see docs/targets/beyondtrust.md).
 * - [I] PRA has no "200 with an error inside" for these calls; the 'error-in-200' fault answers 200
 *   `{"message": ...}` where a list or nothing was due, as a portal or proxy in front of it might.
 */

export interface BeyondTrustSimOptions {
  readonly clientId?: string;
  readonly clientSecret?: string;
  /** expires_in of a new token, seconds; default 3600 [V]. */
  readonly tokenTtlSeconds?: number;
  /** Live tokens per API account before the oldest is evicted; default 10 [I]. */
  readonly maxTokens?: number;
  /** Largest page the sim serves, whatever per_page asks (test knob); default 100. */
  readonly maxPerPage?: number;
}

export interface SimUser {
  id: number;
  username: string;
  security_provider_id: number;
  public_display_name: string;
  email_address: string;
  enabled: boolean;
}

export interface SimMember {
  id: number;
  security_provider_id: number;
  user_id?: number;
  distinguished_name?: string;
  group_name?: string;
}

export interface SimRequest {
  readonly method: string;
  readonly path: string;
  readonly query: Readonly<Record<string, string>>;
  readonly body: unknown;
  readonly auth: 'basic' | 'bearer' | 'none';
  status?: number;
}

interface SimPolicy {
  id: number;
  name: string;
  perm_access_allowed: boolean;
  access_perm_status: string;
  jumpGroups: number[];
  members: SimMember[];
  effective: SimMember[];
}

interface Override {
  readonly method: string;
  readonly path: RegExp;
  readonly status: number;
  readonly body: string | undefined;
  readonly headers: Readonly<Record<string, string>>;
}

const API = '/api/config/v1';

export const BEYONDTRUST_SIM_DEFAULTS = {
  clientId: 'e52a9aa6fc0508ddf3a40601a736b230a1bebcd1',
  clientSecret: 'sim-client-secret-BU5u0fVEb1qEWuHdBK9AR6q9',
};

export class BeyondTrustSim {
  readonly requests: SimRequest[] = [];
  readonly faults = new Faults((res, status, message) => void res.status(status).json({ message }), (res) => void res.status(200).json({ message: 'Your session has expired. Please log in again.' }));
  readonly clientId: string;
  readonly clientSecret: string;
  /** Tokens handed out, in order; a token request counts even when it fails. */
  tokenRequests = 0;
  /** false: the API account is disabled (token requests 401, live tokens refused). */
  accountEnabled = true;
  /** false: the API account lacks "Allow Access to the Configuration API" (403). */
  permConfiguration = true;
  private readonly tokens = new Map<string, number>();
  private readonly users = new Map<number, SimUser>();
  private readonly policies = new Map<number, SimPolicy>();
  private readonly jumpGroups = new Map<number, { id: number; name: string; code_name: string; comments: string }>();
  private readonly providers = new Map<number, { id: number; type: string; name: string }>([
    [1, { id: 1, type: 'local', name: 'Local' }],
    [2, { id: 2, type: 'ldap', name: 'Corp AD' }],
  ]);
  private readonly overrides: Override[] = [];
  private nextId = { user: 100, policy: 10, member: 5000, jumpGroup: 30 };
  private server!: { url: string; close(): Promise<void> };

  private constructor(private readonly o: BeyondTrustSimOptions) {
    this.clientId = o.clientId ?? BEYONDTRUST_SIM_DEFAULTS.clientId;
    this.clientSecret = o.clientSecret ?? BEYONDTRUST_SIM_DEFAULTS.clientSecret;
  }

  static async start(o: BeyondTrustSimOptions = {}): Promise<BeyondTrustSim> {
    const sim = new BeyondTrustSim(o);
    sim.server = await listen(sim.app());
    return sim;
  }

  /** The site URL (what the target's baseUrl is). */
  get url(): string {
    return this.server.url;
  }

  close(): Promise<void> {
    return this.server.close();
  }

  // --- state, for tests ---

  addUser(username: string, o: { securityProviderId?: number; displayName?: string } = {}): number {
    const id = ++this.nextId.user;
    this.users.set(id, {
      id, username, security_provider_id: o.securityProviderId ?? 1, public_display_name: o.displayName ?? username,
      email_address: `${username.toLowerCase()}@vendor.example`, enabled: true,
    });
    return id;
  }

  /** The id of the user with this exact name in provider 1, created if missing. */
  ensureUser(username: string): number {
    for (const u of this.users.values()) if (u.username === username && u.security_provider_id === 1) return u.id;
    return this.addUser(username);
  }

  userId(username: string, securityProviderId = 1): number | undefined {
    for (const u of this.users.values()) if (u.username.toLowerCase() === username.toLowerCase() && u.security_provider_id === securityProviderId) return u.id;
    return undefined;
  }

  renameUser(id: number, username: string): void {
    const u = this.users.get(id);
    if (!u) throw new Error(`beyondtrust sim: no user ${id}`);
    u.username = username;
  }

  /** A group policy linked to a new Jump Group of the same name (unless `jumpGroup: false`). */
  addGroupPolicy(name: string, o: { jumpGroup?: boolean } = {}): number {
    const id = ++this.nextId.policy;
    const jumpGroups: number[] = [];
    if (o.jumpGroup !== false) {
      const jg = ++this.nextId.jumpGroup;
      this.jumpGroups.set(jg, { id: jg, name: `${name} Jump Items`, code_name: `jg_${jg}`, comments: '' });
      jumpGroups.push(jg);
    }
    this.policies.set(id, { id, name, perm_access_allowed: true, access_perm_status: 'defined', jumpGroups, members: [], effective: [] });
    return id;
  }

  policyId(name: string): number {
    for (const p of this.policies.values()) if (p.name === name) return p.id;
    throw new Error(`beyondtrust sim: no group policy ${name}`);
  }

  deleteGroupPolicy(id: number): void {
    this.policies.delete(id);
  }

  /** A member added by an administrator in /login: listed and effective at once. */
  addMember(policyId: number, m: Omit<SimMember, 'id'>): number {
    const p = this.policy(policyId);
    const member = { id: ++this.nextId.member, ...m };
    p.members.push(member);
    p.effective.push({ ...member });
    return member.id;
  }

  /** What the API lists. */
  members(policyId: number): SimMember[] {
    return this.policy(policyId).members.map((m) => ({ ...m }));
  }

  /** What users actually get: the members as of the last provision (or hand edit). */
  effective(policyId: number): SimMember[] {
    return this.policy(policyId).effective.map((m) => ({ ...m }));
  }

  /** Usernames holding the policy's access right now. */
  effectiveUsers(policyId: number): string[] {
    return this.policy(policyId).effective.flatMap((m) => (m.user_id !== undefined ? [this.users.get(m.user_id)?.username ?? `#${m.user_id}`] : [])).sort();
  }

  /** Every token stops working, as when they expire or the secret is regenerated. */
  expireTokens(): void {
    this.tokens.clear();
  }

  /** The next request matching method and path gets this answer instead (test hook, not PRA). */
  answerNext(method: string, path: RegExp, status: number, body?: unknown, headers: Record<string, string> = {}): void {
    this.overrides.push({ method, path, status, body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body), headers });
  }

  /** Requests to the Configuration API (not the token endpoint), optionally of one method. */
  apiCalls(method?: string): SimRequest[] {
    return this.requests.filter((r) => r.path.startsWith(API) && (method === undefined || r.method === method));
  }

  private policy(id: number): SimPolicy {
    const p = this.policies.get(id);
    if (!p) throw new Error(`beyondtrust sim: no group policy ${id}`);
    return p;
  }

  // --- HTTP ---

  private app(): express.Express {
    const app = express();
    app.disable('x-powered-by');
    app.use(express.text({ type: () => true, limit: '1mb' }));
    app.use((req, res, next) => {
      const raw = typeof req.body === 'string' ? req.body : '';
      let body: unknown = raw;
      if (raw !== '' && (req.headers['content-type'] ?? '').startsWith('application/json')) {
        try {
          body = JSON.parse(raw);
        } catch {
          body = raw;
        }
      }
      const authz = req.headers.authorization ?? '';
      const entry: SimRequest = {
        method: req.method, path: req.path, query: Object.fromEntries(new URLSearchParams(req.url.split('?')[1] ?? '')), body,
        auth: authz.startsWith('Basic ') ? 'basic' : authz.startsWith('Bearer ') ? 'bearer' : 'none',
      };
      this.requests.push(entry);
      res.on('finish', () => (entry.status = res.statusCode));
      const i = this.overrides.findIndex((o) => o.method === req.method && o.path.test(req.path));
      if (i >= 0) {
        const [o] = this.overrides.splice(i, 1);
        res.status(o!.status).set(o!.headers);
        if (o!.body === undefined) return void res.end();
        return void res.type('application/json').send(o!.body);
      }
      next();
    });
    app.use(this.faults.middleware());
    app.post('/oauth2/token', (req, res) => this.token(req, res));
    app.use(API, (req, res, next) => this.auth(req, res, next));
    app.use(API, (req, res, next) => {
      if ((req.method === 'GET' || req.method === 'DELETE') && !(req.headers.accept ?? '').includes('application/json')) {
        return void res.status(406).json({ message: 'The Accept header must be application/json' });
      }
      if (req.method === 'POST' || req.method === 'PATCH') {
        const raw = typeof req.body === 'string' ? req.body : '';
        if (raw !== '') {
          if (!(req.headers['content-type'] ?? '').startsWith('application/json')) return void res.status(415).json({ message: 'Content-Type must be application/json' });
          try {
            req.body = JSON.parse(raw);
          } catch {
            return void res.status(400).json({ message: 'The request body is not valid JSON' });
          }
        } else {
          req.body = undefined;
        }
      }
      next();
    });

    app.get(`${API}/user`, (req, res) => {
      if (!this.query(req, res, ['username', 'security_provider_id', 'email_address'])) return;
      const q = req.query as Record<string, string>;
      const users = [...this.users.values()].filter((u) =>
        (q['username'] === undefined || u.username.toLowerCase() === q['username'].toLowerCase()) &&
        (q['security_provider_id'] === undefined || String(u.security_provider_id) === q['security_provider_id']) &&
        (q['email_address'] === undefined || u.email_address.toLowerCase() === q['email_address'].toLowerCase()));
      this.page(req, res, users.map((u) => this.userJson(u)));
    });
    app.get(`${API}/user/:id`, (req, res) => {
      if (!this.query(req, res, [])) return;
      const u = this.users.get(Number(req.params['id']));
      if (!u) return void this.notFound(res);
      res.json(this.userJson(u));
    });
    app.get(`${API}/group-policy`, (req, res) => {
      if (!this.query(req, res, ['name'])) return;
      const name = (req.query as Record<string, string>)['name'];
      const list = [...this.policies.values()].filter((p) => name === undefined || p.name.toLowerCase() === name.toLowerCase());
      this.page(req, res, list.map((p) => this.policyJson(p)));
    });
    app.get(`${API}/group-policy/:id`, (req, res) => {
      if (!this.query(req, res, [])) return;
      const p = this.policies.get(Number(req.params['id']));
      if (!p) return void this.notFound(res);
      res.json(this.policyJson(p));
    });
    app.get(`${API}/group-policy/:id/jump-group`, (req, res) => {
      if (!this.query(req, res, [], false)) return;
      const p = this.policies.get(Number(req.params['id']));
      if (!p) return void this.notFound(res);
      res.json(p.jumpGroups.map((jump_group_id) => ({ jump_group_id, jump_item_role_id: 0, jump_policy_id: 0 })));
    });
    app.get(`${API}/jump-group`, (req, res) => {
      if (!this.query(req, res, ['name', 'code_name'])) return;
      this.page(req, res, [...this.jumpGroups.values()]);
    });
    app.get(`${API}/group-policy/:id/member`, (req, res) => {
      if (!this.query(req, res, [])) return;
      const p = this.policies.get(Number(req.params['id']));
      if (!p) return void this.notFound(res);
      this.page(req, res, p.members.map((m) => ({ ...m })));
    });
    app.post(`${API}/group-policy/:id/member`, (req, res) => this.addMemberHttp(req, res));
    app.get(`${API}/group-policy/:id/member/:mid`, (req, res) => {
      if (!this.query(req, res, [])) return;
      const m = this.policies.get(Number(req.params['id']))?.members.find((x) => x.id === Number(req.params['mid']));
      if (!m) return void this.notFound(res);
      res.json({ ...m });
    });
    app.delete(`${API}/group-policy/:id/member/:mid`, (req, res) => {
      const p = this.policies.get(Number(req.params['id']));
      const i = p ? p.members.findIndex((x) => x.id === Number(req.params['mid'])) : -1;
      if (!p || i < 0) return void this.notFound(res);
      p.members.splice(i, 1);
      res.status(204).end();
    });
    app.post(`${API}/group-policy/:id/provision`, (req, res) => {
      const p = this.policies.get(Number(req.params['id']));
      if (!p) return void this.notFound(res);
      if (req.body !== undefined) return void this.unknownFields(res, Object.keys(req.body as object));
      p.effective = p.members.map((m) => ({ ...m }));
      res.status(204).end();
    });
    app.use((_req, res) => void res.status(404).json({ message: 'Not Found' }));
    return app;
  }

  private token(req: Request, res: Response): void {
    this.tokenRequests++;
    const authz = req.headers.authorization ?? '';
    const decoded = authz.startsWith('Basic ') ? Buffer.from(authz.slice(6), 'base64').toString('utf8') : '';
    const colon = decoded.indexOf(':');
    const id = colon >= 0 ? decoded.slice(0, colon) : '';
    const secret = colon >= 0 ? decoded.slice(colon + 1) : '';
    if (id !== this.clientId || secret !== this.clientSecret || !this.accountEnabled) {
      return void res.status(401).json({ error: 'invalid_client', message: 'Client authentication failed' });
    }
    if (!(req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded')) {
      return void res.status(400).json({ error: 'invalid_request', message: 'The request must be form-encoded' });
    }
    const form = new URLSearchParams(typeof req.body === 'string' ? req.body : '');
    if (form.get('grant_type') !== 'client_credentials') {
      return void res.status(400).json({ error: 'unsupported_grant_type', message: 'The authorization grant type is not supported' });
    }
    const ttl = this.o.tokenTtlSeconds ?? 3600;
    const token = randomBytes(20).toString('base64url');
    this.tokens.set(token, Date.now() + ttl * 1000);
    while (this.tokens.size > (this.o.maxTokens ?? 10)) this.tokens.delete(this.tokens.keys().next().value as string);
    res.json({ access_token: token, token_type: 'Bearer', expires_in: ttl });
  }

  private auth(req: Request, res: Response, next: NextFunction): void {
    const authz = req.headers.authorization ?? '';
    const token = authz.startsWith('Bearer ') ? authz.slice(7) : '';
    const until = this.tokens.get(token);
    if (until === undefined || until <= Date.now() || !this.accountEnabled) {
      if (until !== undefined && until <= Date.now()) this.tokens.delete(token);
      return void res.status(401).json({ message: 'Access token is invalid' });
    }
    if (!this.permConfiguration) return void res.status(403).json({ message: 'This API account does not have permission to use the Configuration API' });
    next();
  }

  /** Unknown query parameters are a 401 in PRA [V]; per_page and current_page checked when paged. */
  private query(req: Request, res: Response, allowed: string[], paged = true): boolean {
    const names = [...allowed, ...(paged ? ['per_page', 'current_page'] : [])];
    const unknown = Object.keys(req.query).filter((k) => !names.includes(k));
    if (unknown.length > 0) {
      res.status(401).json({ message: `Unrecognized query string parameter(s): ${unknown.join(', ')}` });
      return false;
    }
    return true;
  }

  private page(req: Request, res: Response, items: unknown[]): void {
    const q = req.query as Record<string, string | undefined>;
    const errors: Record<string, string[]> = {};
    const perPage = q['per_page'] === undefined ? 100 : Number(q['per_page']);
    const current = q['current_page'] === undefined ? 1 : Number(q['current_page']);
    if (!Number.isInteger(perPage) || perPage < 5 || perPage > 100) errors['per_page'] = ['The per page must be between 5 and 100.'];
    if (!Number.isInteger(current) || current < 1) errors['current_page'] = ['The current page must be at least 1.'];
    if (Object.keys(errors).length > 0) return void res.status(422).json({ message: 'The given data was invalid.', errors });
    const size = Math.min(perPage, this.o.maxPerPage ?? 100);
    const last = Math.max(1, Math.ceil(items.length / size));
    const link = (n: number, rel: string) => `<${this.url}${req.baseUrl}${req.path}?per_page=${size}&current_page=${n}>; rel="${rel}"`;
    res.set({
      'X-BT-Pagination-Current-Page': String(current),
      'X-BT-Pagination-Per-Page': String(size),
      'X-BT-Pagination-Last-Page': String(last),
      'X-BT-Pagination-Total': String(items.length),
      Link: [link(1, 'first'), ...(current > 1 ? [link(current - 1, 'previous')] : []), ...(current < last ? [link(current + 1, 'next')] : []), link(last, 'last')].join(', '),
    });
    res.json(items.slice((current - 1) * size, current * size));
  }

  private addMemberHttp(req: Request, res: Response): void {
    const p = this.policies.get(Number(req.params['id']));
    if (!p) return void this.notFound(res);
    const body = req.body as unknown;
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      return void res.status(422).json({ message: 'The given data was invalid.', errors: { security_provider_id: ['The security provider id field is required.'] } });
    }
    const b = body as Record<string, unknown>;
    const unknown = Object.keys(b).filter((k) => !['security_provider_id', 'user_id', 'distinguished_name', 'group_name'].includes(k));
    if (unknown.length > 0) return void this.unknownFields(res, unknown);
    const errors: Record<string, string[]> = {};
    const provider = typeof b['security_provider_id'] === 'number' ? this.providers.get(b['security_provider_id']) : undefined;
    if (b['security_provider_id'] === undefined) errors['security_provider_id'] = ['The security provider id field is required.'];
    else if (typeof b['security_provider_id'] !== 'number' || !Number.isInteger(b['security_provider_id'])) errors['security_provider_id'] = ['The security provider id must be an integer.'];
    else if (!provider) errors['security_provider_id'] = ['The selected security provider id is invalid.'];
    const selectors = ['user_id', 'distinguished_name', 'group_name'].filter((k) => b[k] !== undefined);
    if (selectors.length !== 1) errors['user_id'] = ['Exactly one of user_id, distinguished_name or group_name is required.'];
    if (b['user_id'] !== undefined) {
      const user = typeof b['user_id'] === 'number' ? this.users.get(b['user_id']) : undefined;
      if (typeof b['user_id'] !== 'number' || !Number.isInteger(b['user_id'])) errors['user_id'] = ['The user id must be an integer.'];
      else if (!user) errors['user_id'] = ['The selected user id is invalid.'];
      else if (provider && user.security_provider_id !== provider.id) errors['user_id'] = ['The user does not belong to the given security provider.'];
      else if (p.members.some((m) => m.user_id === user.id)) errors['user_id'] = ['The user is already a member of this group policy.'];
    }
    if (b['distinguished_name'] !== undefined && provider?.type !== 'ldap') errors['distinguished_name'] = ['The distinguished name is only allowed for LDAP security providers.'];
    if (Object.keys(errors).length > 0) return void res.status(422).json({ message: 'The given data was invalid.', errors });
    p.members.push({ id: ++this.nextId.member, ...(b as Omit<SimMember, 'id'>) });
    res.status(201).end();
  }

  private unknownFields(res: Response, fields: string[]): void {
    res.status(401).json({ message: `Unrecognized field(s) in the request body: ${fields.join(', ')}` });
  }

  private notFound(res: Response): void {
    res.status(404).json({ message: 'Not Found' });
  }

  private userJson(u: SimUser): Record<string, unknown> {
    return {
      id: u.id, security_provider_id: u.security_provider_id, username: u.username, public_display_name: u.public_display_name,
      email_address: u.email_address, enabled: u.enabled, two_factor_required: false, created_at: '2025-01-06T09:12:44+00:00',
    };
  }

  private policyJson(p: SimPolicy): Record<string, unknown> {
    return { id: p.id, name: p.name, perm_access_allowed: p.perm_access_allowed, access_perm_status: p.access_perm_status, default_jump_item_role_id: 1 };
  }
}
