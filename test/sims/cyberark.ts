import { randomBytes } from 'node:crypto';
import express, { type NextFunction, type Request, type Response } from 'express';
import { Faults, listen } from './faults.js';

/**
 * CyberArk PVWA's Gen2 REST API, the part a safe-membership broker uses, over real HTTP.
 *
 * Documented or seen in public clients [V]:
 * - `POST /PasswordVault/API/auth/{CyberArk|LDAP|RADIUS|Windows}/Logon` with
 *   `{username, password, concurrentSession}`; 200 with the token as a bare JSON string, sent back
 *   as `Authorization: <token>` with no "Bearer". `POST /API/Auth/Logoff`.
 * - Wrong credentials: 403 `{"ErrorCode":"ITATS004E","ErrorMessage":"Authentication failure for User [x]."}`;
 *   an unknown or expired session token: 401 `PASWS006E`.
 * - `GET|POST /api/Safes/{safeUrlId}/Members`, `GET|PUT|DELETE …/Members/{memberName}`. Lists are
 *   `{value: [...], count}` paged with `offset`/`limit` (default 25), `filter=memberType eq user`
 *   (`AND`-joined, also `membershipExpired`, `includePredefinedUsers`).
 * - Add body `{memberName, searchIn, memberType, membershipExpirationDate (epoch seconds), permissions{...}}`;
 *   permission keys as listed in apis.md; permissions left out of an add default to useAccounts,
 *   retrieveAccounts, listAccounts, viewAuditLog and viewSafeMembers (psPAS documentation).
 * - Member objects carry safeUrlId, safeName, safeNumber, memberId, memberName, memberType,
 *   membershipExpirationDate, isExpiredMembershipEnable, isPredefinedUser, isReadOnly, permissions.
 * - Adding an existing member: 409 ("... is already a member of safe ..."); a missing safe: 404
 *   SFWS0007 "... has been deleted or does not exist."; errors `{ErrorCode, ErrorMessage[, Details]}`.
 *
 * Assumed [I]:
 * - Error codes SFWS0012E (already a member), SFWS0009E (member not found), PASWS167E (invalid
 *   parameters), SFWS0010E (predefined member), CAWS00001E (a 200 carrying an error, via a proxy).
 * - Names compare without case; a member keeps the spelling it was added with.
 * - membershipExpirationDate is null when unset; an expiry at or before now, or after 9999-12-31,
 *   or not an integer, is a 400. An expired member stays listed with isExpiredMembershipEnable true
 *   and opens nothing (`hasAccess`).
 * - PUT replaces the permissions (a key left out becomes false); predefined members can't be changed
 *   or removed (400 SFWS0010E); limit above 1000 is a 400.
 * - Sessions end after `sessionIdleMs` without a call; a logon without concurrentSession ends the
 *   user's other sessions.
 * - Predefined members of every safe: Master, Batch, Administrator (users) and Backup Users,
 *   DR Users, Operators, Auditors, Notification Engines (groups); listed unless
 *   `includePredefinedUsers eq false`.
 */

export const CYBERARK_PERMISSION_KEYS = [
  'useAccounts', 'retrieveAccounts', 'listAccounts', 'addAccounts', 'updateAccountContent', 'updateAccountProperties',
  'initiateCPMAccountManagementOperations', 'specifyNextAccountContent', 'renameAccounts', 'deleteAccounts', 'unlockAccounts',
  'manageSafe', 'manageSafeMembers', 'backupSafe', 'viewAuditLog', 'viewSafeMembers', 'accessWithoutConfirmation',
  'createFolders', 'deleteFolders', 'moveAccountsAndFolders', 'requestsAuthorizationLevel1', 'requestsAuthorizationLevel2',
] as const;
type Permissions = Record<(typeof CYBERARK_PERMISSION_KEYS)[number], boolean>;

const ADD_DEFAULTS = new Set(['useAccounts', 'retrieveAccounts', 'listAccounts', 'viewAuditLog', 'viewSafeMembers']);
const PREDEFINED: readonly [string, 'User' | 'Group'][] = [
  ['Master', 'User'], ['Batch', 'User'], ['Administrator', 'User'], ['Backup Users', 'Group'], ['DR Users', 'Group'],
  ['Operators', 'Group'], ['Auditors', 'Group'], ['Notification Engines', 'Group'],
];
const METHODS = ['cyberark', 'ldap', 'radius', 'windows'];
const MAX_EPOCH = 253_402_300_799;

export interface SimMember {
  memberId: string;
  memberName: string;
  memberType: 'User' | 'Group';
  searchIn: string;
  membershipExpirationDate: number | null;
  isPredefinedUser: boolean;
  permissions: Permissions;
}

interface SimSafe {
  name: string;
  number: number;
  members: SimMember[];
}

export interface CyberArkSimAccount {
  readonly method: 'CyberArk' | 'LDAP' | 'RADIUS' | 'Windows';
  readonly username: string;
  readonly password: string;
}

export interface CyberArkSimOptions {
  readonly accounts: readonly CyberArkSimAccount[];
  readonly safes: readonly string[];
  /** Users the Vault knows, by searchIn; absent: any name exists. */
  readonly directory?: Readonly<Record<string, readonly string[]>>;
  /** A session unused this long ends; default 20 minutes. */
  readonly sessionIdleMs?: number;
  /** Error answers quote the request's Authorization header and body, as a debug page might. */
  readonly echoOnError?: boolean;
  readonly clock?: () => Date;
}

export interface SimCall {
  readonly method: string;
  readonly path: string;
  readonly query: Record<string, unknown>;
  readonly body: unknown;
  readonly authorization: string | undefined;
  readonly status: number;
}

function allFalse(): Permissions {
  return Object.fromEntries(CYBERARK_PERMISSION_KEYS.map((k) => [k, false])) as Permissions;
}

export class CyberArkSim {
  readonly faults: Faults;
  readonly calls: SimCall[] = [];
  /** Successful logons, per username. */
  readonly logons = new Map<string, number>();
  private readonly safes = new Map<string, SimSafe>();
  private readonly sessions = new Map<string, { user: string; lastUsed: number }>();
  private readonly clock: () => Date;
  private readonly answers: ((req: Request, res: Response) => void)[] = [];
  private nextId = 1;
  private server?: { url: string; close(): Promise<void> };

  private constructor(private readonly o: CyberArkSimOptions) {
    this.clock = o.clock ?? (() => new Date());
    for (const s of o.safes) this.addSafe(s);
    this.faults = new Faults(
      (res, status, message) => this.error(res, status, status === 429 ? 'PASWS429E' : status >= 500 ? 'CAWS00001E' : 'PASWS167E', message),
      (res) => void res.status(200).json({ ErrorCode: 'CAWS00001E', ErrorMessage: 'The connection to the Vault was interrupted.' }),
    );
  }

  static async start(o: CyberArkSimOptions): Promise<CyberArkSim> {
    const sim = new CyberArkSim(o);
    sim.server = await listen(sim.app());
    return sim;
  }

  /** …/PasswordVault, what the adapter's baseUrl is. */
  get url(): string {
    return `${this.server!.url}/PasswordVault`;
  }

  async close(): Promise<void> {
    await this.server?.close();
  }

  addSafe(name: string): void {
    const members = PREDEFINED.map(([n, t]): SimMember => ({
      memberId: String(this.nextId++), memberName: n, memberType: t, searchIn: 'Vault', membershipExpirationDate: null, isPredefinedUser: true,
      permissions: Object.fromEntries(CYBERARK_PERMISSION_KEYS.map((k) => [k, n !== 'Auditors' || k.startsWith('view') || k === 'listAccounts'])) as Permissions,
    }));
    this.safes.set(name.toLowerCase(), { name, number: this.safes.size + 2, members });
  }

  /** A member as a person would add one in the PVWA UI (no API call, no fault). */
  addMemberByHand(safe: string, m: Partial<SimMember> & { memberName: string }): void {
    this.safe(safe)!.members.push({
      memberId: String(this.nextId++), memberType: 'User', searchIn: 'Vault', membershipExpirationDate: null, isPredefinedUser: false,
      permissions: allFalse(), ...m,
    });
  }

  /** Removes a member as a person would in the PVWA UI. */
  removeMemberByHand(safe: string, name: string): void {
    const s = this.safe(safe);
    if (s) s.members = s.members.filter((m) => m.memberName.toLowerCase() !== name.toLowerCase());
  }

  member(safe: string, name: string): SimMember | undefined {
    return this.safe(safe)?.members.find((m) => m.memberName.toLowerCase() === name.toLowerCase());
  }

  members(safe: string): readonly SimMember[] {
    return this.safe(safe)?.members ?? [];
  }

  /** Whether the membership opens the safe now: present, not expired, and allowed to use accounts. */
  hasAccess(safe: string, name: string): boolean {
    const m = this.member(safe, name);
    if (!m || (m.membershipExpirationDate !== null && m.membershipExpirationDate * 1000 <= this.clock().getTime())) return false;
    return m.permissions.useAccounts || m.permissions.retrieveAccounts;
  }

  /** The next `count` authenticated calls get this answer instead (a proxy's page, a changed API). */
  answerNext(count: number, answer: (req: Request, res: Response) => void): void {
    for (let i = 0; i < count; i++) this.answers.push(answer);
  }

  /** Ends every session, as a PVWA restart or an administrator would. */
  expireSessions(): void {
    this.sessions.clear();
  }

  get activeSessions(): number {
    return this.sessions.size;
  }

  private safe(name: string): SimSafe | undefined {
    return this.safes.get(name.toLowerCase());
  }

  private error(res: Response, status: number, code: string, message: string): void {
    const req = res.req;
    const echo = this.o.echoOnError ? { Details: [{ authorization: req.headers.authorization, body: req.body as unknown }] } : {};
    res.status(status).json({ ErrorCode: code, ErrorMessage: message, ...echo });
  }

  private json(res: Response, status: number, body: unknown): void {
    res.status(status).type('application/json').send(JSON.stringify(body));
  }

  private view(s: SimSafe, m: SimMember): Record<string, unknown> {
    const expired = m.membershipExpirationDate !== null && m.membershipExpirationDate * 1000 <= this.clock().getTime();
    return {
      safeUrlId: encodeURIComponent(s.name), safeName: s.name, safeNumber: s.number, memberId: m.memberId, memberName: m.memberName,
      memberType: m.memberType, membershipExpirationDate: m.membershipExpirationDate, isExpiredMembershipEnable: expired,
      isPredefinedUser: m.isPredefinedUser, isReadOnly: m.isPredefinedUser, permissions: { ...m.permissions },
    };
  }

  /** Checks an expiry and a permissions object; returns the problem, or undefined. */
  private invalid(body: Record<string, unknown>, adding: boolean): string | undefined {
    const exp = body['membershipExpirationDate'];
    if (exp !== undefined && exp !== null) {
      if (typeof exp !== 'number' || !Number.isInteger(exp)) return 'membershipExpirationDate must be a whole number of seconds';
      if (exp * 1000 <= this.clock().getTime()) return 'membershipExpirationDate is in the past';
      if (exp > MAX_EPOCH) return 'membershipExpirationDate is out of range';
    }
    const p = body['permissions'];
    if (p !== undefined) {
      if (p === null || typeof p !== 'object' || Array.isArray(p)) return 'permissions must be an object';
      for (const [k, v] of Object.entries(p)) {
        if (!(CYBERARK_PERMISSION_KEYS as readonly string[]).includes(k)) return `unknown permission ${k}`;
        if (typeof v !== 'boolean') return `permission ${k} must be true or false`;
      }
    }
    if (adding) {
      if (typeof body['memberName'] !== 'string' || body['memberName'].trim() === '') return 'memberName is required';
      const t = body['memberType'];
      if (t !== undefined && (typeof t !== 'string' || !['user', 'group'].includes(t.toLowerCase()))) return 'memberType must be User or Group';
    }
    return undefined;
  }

  private app(): express.Express {
    const app = express();
    app.use(express.json({ strict: false }));
    app.use((req, res, next) => {
      res.on('finish', () => this.calls.push({
        method: req.method, path: req.path, query: { ...req.query }, body: req.body as unknown,
        authorization: req.headers.authorization, status: res.statusCode,
      }));
      next();
    });
    app.use(this.faults.middleware());
    const v = '/PasswordVault';

    app.post(`${v}/API/auth/:method/Logon`, (req, res) => {
      const method = req.params.method.toLowerCase();
      const b = (req.body ?? {}) as Record<string, unknown>;
      if (!METHODS.includes(method)) return this.error(res, 404, 'PASWS039E', 'Unknown authentication method.');
      if (typeof b['username'] !== 'string' || typeof b['password'] !== 'string') return this.error(res, 400, 'PASWS167E', 'There are some invalid parameters');
      const account = this.o.accounts.find((a) => a.method.toLowerCase() === method && a.username.toLowerCase() === (b['username'] as string).toLowerCase());
      if (!account || account.password !== b['password']) return this.error(res, 403, 'ITATS004E', `Authentication failure for User [${b['username']}].`);
      if (b['concurrentSession'] !== true) {
        for (const [t, s] of this.sessions) if (s.user === account.username) this.sessions.delete(t);
      }
      const token = randomBytes(48).toString('base64');
      this.sessions.set(token, { user: account.username, lastUsed: this.clock().getTime() });
      this.logons.set(account.username, (this.logons.get(account.username) ?? 0) + 1);
      this.json(res, 200, token);
    });

    // Everything else needs a live session: the token bare in Authorization.
    app.use((req: Request, res: Response, next: NextFunction) => {
      const token = req.headers.authorization ?? '';
      const s = this.sessions.get(token);
      const now = this.clock().getTime();
      if (!s || now - s.lastUsed > (this.o.sessionIdleMs ?? 20 * 60_000)) {
        this.sessions.delete(token);
        return this.error(res, 401, 'PASWS006E', 'Your session has expired. Please log in again.');
      }
      s.lastUsed = now;
      const answer = this.answers.shift();
      if (answer) return answer(req, res);
      next();
    });

    app.post(`${v}/API/Auth/Logoff`, (req, res) => {
      this.sessions.delete(req.headers.authorization ?? '');
      this.json(res, 200, {});
    });

    const safeOr404 = (req: Request, res: Response): SimSafe | undefined => {
      const s = this.safe(String(req.params['safe']));
      if (!s) this.error(res, 404, 'SFWS0007', `Safe ${String(req.params['safe'])} has been deleted or does not exist.`);
      return s;
    };

    app.get(`${v}/api/Safes/:safe/Members`, (req, res) => {
      const s = safeOr404(req, res);
      if (!s) return;
      const offset = Number(req.query['offset'] ?? 0);
      const limit = Number(req.query['limit'] ?? 25);
      if (!Number.isInteger(offset) || offset < 0 || !Number.isInteger(limit) || limit < 1 || limit > 1000) return this.error(res, 400, 'PASWS167E', 'There are some invalid parameters');
      let members = s.members;
      const filter = req.query['filter'];
      if (filter !== undefined) {
        for (const part of String(filter).split(/\s+AND\s+/i)) {
          const m = /^\s*(memberType|membershipExpired|includePredefinedUsers)\s+eq\s+(\S+)\s*$/i.exec(part);
          if (!m) return this.error(res, 400, 'PASWS167E', `There are some invalid parameters: filter [${part}]`);
          const [, key = '', value = ''] = m;
          const val = value.toLowerCase();
          const now = this.clock().getTime();
          if (key.toLowerCase() === 'membertype') members = members.filter((x) => x.memberType.toLowerCase() === val);
          else if (key.toLowerCase() === 'membershipexpired') members = members.filter((x) => (x.membershipExpirationDate !== null && x.membershipExpirationDate * 1000 <= now) === (val === 'true'));
          else if (val === 'false') members = members.filter((x) => !x.isPredefinedUser);
        }
      }
      this.json(res, 200, { value: members.slice(offset, offset + limit).map((m) => this.view(s, m)), count: members.length });
    });

    app.post(`${v}/api/Safes/:safe/Members`, (req, res) => {
      const s = safeOr404(req, res);
      if (!s) return;
      const b = (req.body ?? {}) as Record<string, unknown>;
      const problem = typeof req.body === 'object' && req.body !== null ? this.invalid(b, true) : 'a JSON object is required';
      if (problem) return this.error(res, 400, 'PASWS167E', `There are some invalid parameters: ${problem}`);
      const name = b['memberName'] as string;
      if (s.members.some((m) => m.memberName.toLowerCase() === name.toLowerCase())) {
        return this.error(res, 409, 'SFWS0012E', `${name} is already a member of safe ${s.name}.`);
      }
      const searchIn = typeof b['searchIn'] === 'string' ? b['searchIn'] : 'Vault';
      const known = this.o.directory?.[searchIn];
      if (this.o.directory && !known?.some((u) => u.toLowerCase() === name.toLowerCase())) {
        return this.error(res, 404, 'SFWS0009E', `User or Group [${name}] was not found in [${searchIn}].`);
      }
      const permissions = allFalse();
      const given = (b['permissions'] ?? {}) as Record<string, boolean>;
      for (const k of CYBERARK_PERMISSION_KEYS) permissions[k] = given[k] ?? ADD_DEFAULTS.has(k);
      const exp = b['membershipExpirationDate'];
      const m: SimMember = {
        memberId: String(this.nextId++), memberName: name, memberType: String(b['memberType'] ?? 'User').toLowerCase() === 'group' ? 'Group' : 'User',
        searchIn, membershipExpirationDate: typeof exp === 'number' ? exp : null, isPredefinedUser: false, permissions,
      };
      s.members.push(m);
      this.json(res, 201, this.view(s, m));
    });

    const memberOr404 = (s: SimSafe, req: Request, res: Response): SimMember | undefined => {
      const name = String(req.params['member']);
      const m = s.members.find((x) => x.memberName.toLowerCase() === name.toLowerCase());
      if (!m) this.error(res, 404, 'SFWS0009E', `Member [${name}] was not found in safe [${s.name}].`);
      return m;
    };

    app.get(`${v}/api/Safes/:safe/Members/:member`, (req, res) => {
      const s = safeOr404(req, res);
      const m = s && memberOr404(s, req, res);
      if (s && m) this.json(res, 200, this.view(s, m));
    });

    app.put(`${v}/api/Safes/:safe/Members/:member`, (req, res) => {
      const s = safeOr404(req, res);
      const m = s && memberOr404(s, req, res);
      if (!s || !m) return;
      if (m.isPredefinedUser) return this.error(res, 400, 'SFWS0010E', `Predefined member [${m.memberName}] cannot be updated.`);
      const b = (req.body ?? {}) as Record<string, unknown>;
      const problem = typeof req.body === 'object' && req.body !== null ? this.invalid(b, false) : 'a JSON object is required';
      if (problem) return this.error(res, 400, 'PASWS167E', `There are some invalid parameters: ${problem}`);
      if ('membershipExpirationDate' in b) m.membershipExpirationDate = typeof b['membershipExpirationDate'] === 'number' ? b['membershipExpirationDate'] : null;
      if (b['permissions'] !== undefined) m.permissions = { ...allFalse(), ...(b['permissions'] as Partial<Permissions>) };
      this.json(res, 200, this.view(s, m));
    });

    app.delete(`${v}/api/Safes/:safe/Members/:member`, (req, res) => {
      const s = safeOr404(req, res);
      const m = s && memberOr404(s, req, res);
      if (!s || !m) return;
      if (m.isPredefinedUser) return this.error(res, 400, 'SFWS0010E', `Predefined member [${m.memberName}] cannot be removed.`);
      s.members.splice(s.members.indexOf(m), 1);
      res.status(204).end();
    });

    return app;
  }
}
