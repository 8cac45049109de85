import type { Resource, TargetRef } from '../domain/index.js';
import { silentLogger } from '../log.js';
import {
  checkCyberArkOptions, CYBERARK_PERMISSIONS, DEFAULT_VENDOR_PERMISSIONS, MEMBER_NAME,
  type CyberArkAuthMethod, type CyberArkPermission, type CyberArkTargetOptions,
} from './cyberark-config.js';
import { RestClient, seg, Session, type RestRequest, type RestResponse } from './rest.js';
import { TargetError, type CallContext, type Target, type TargetEntry, type TargetGrant } from './target.js';
import { show } from './text.js';

export { CYBERARK_TARGET_SCHEMA, cyberarkTargetOptions, type CyberArkTargetOptions } from './cyberark-config.js';

/**
 * CyberArk PVWA (Gen2 REST) target: a grant makes the technician's Vault or directory user a
 * member of one of the configured safes, with `membershipExpirationDate` = validUntil (epoch
 * seconds, rounded down), so the Vault stops honouring the membership at validUntil even when
 * wogate is down. Revoking deletes the membership. One membership per (safe, member): a second
 * grant for the same pair refreshes it.
 *
 * Only the configured safes are touched. In them, wogate never grants, lists or removes the
 * predefined members, the Vault's component users, its own service account or `keepMembers`;
 * every other user member is listed for drift, since safe memberships carry no comment to mark
 * wogate's own.
 */

/** Built-in members of every safe and the Vault's component users [I]: never a vendor, never touched. */
const BUILT_IN = /^(?:master|batch|administrator|auditors|operators|backup users|dr users|notification engines|vault admins|psmappusers|pvwaappusers?|pvwagwaccounts|pvwagwusers?|passwordmanager\w*|psmapp_.*|psmgw_.*)$/i;
const TOKEN = /^[\x21-\x7e]{8,4096}$/;

type Reason = 'invalid_input' | 'unmanaged_safe' | 'reserved_member' | 'refused' | 'excess_permissions' | 'response';

interface Member {
  /** The safe as configured (that spelling is used in paths and in list()). */
  readonly safe: string;
  readonly member: string;
}

interface CyberArkError {
  readonly code?: string;
  readonly message?: string;
}

/** CyberArk's `{ErrorCode, ErrorMessage}` (some answers nest more under `Details`). */
function errorOf(body: unknown): CyberArkError | undefined {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return undefined;
  const b = body as Record<string, unknown>;
  if (typeof b['ErrorCode'] !== 'string' && typeof b['ErrorMessage'] !== 'string') return undefined;
  // Only a code-shaped code is quoted as is: anything else in it could be an echoed header.
  const code = typeof b['ErrorCode'] === 'string' && /^[A-Za-z0-9]{1,24}$/.test(b['ErrorCode']) ? b['ErrorCode'] : undefined;
  return {
    ...(code !== undefined ? { code } : {}),
    ...(typeof b['ErrorMessage'] === 'string' ? { message: b['ErrorMessage'] } : {}),
  };
}

function parse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

export class CyberArkTarget implements Target {
  readonly kind = 'cyberark';
  readonly nativeExpiry = true;
  readonly resourceKinds = ['pam'] as const;
  readonly id: string;
  private readonly client: RestClient;
  private readonly session: Session;
  private readonly authMethod: CyberArkAuthMethod;
  private readonly username: string;
  private readonly password: string;
  private readonly safes: ReadonlyMap<string, string>;
  private readonly searchIn: string;
  private readonly granted: ReadonlySet<CyberArkPermission>;
  private readonly keep: ReadonlySet<string>;
  private readonly pageSize: number;
  /** Set when this PVWA refused the memberType filter (older versions); list() then filters itself. */
  private noFilter = false;

  constructor(o: CyberArkTargetOptions) {
    checkCyberArkOptions(o);
    this.id = o.id;
    this.authMethod = o.authMethod ?? 'CyberArk';
    this.username = o.username;
    this.password = o.password;
    this.safes = new Map(o.safes.map((s) => [s.toLowerCase(), s]));
    this.searchIn = o.searchIn ?? 'Vault';
    this.granted = new Set(o.permissions ?? DEFAULT_VENDOR_PERMISSIONS);
    this.keep = new Set((o.keepMembers ?? []).map((m) => m.toLowerCase()));
    this.pageSize = o.pageSize ?? 100;
    this.client = new RestClient({
      targetId: o.id, baseUrl: o.baseUrl, secrets: [o.password],
      ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}),
      ...(o.caPem !== undefined ? { caPem: o.caPem } : {}),
    });
    this.session = new Session(this.client, (ctx) => this.logon(ctx));
  }

  /**
   * Logs on once, so wrong credentials stop the daemon at start. A PVWA that is merely unreachable
   * does not: the other targets must still be able to revoke, and this one logs on at its first call.
   */
  async init(ctx: CallContext): Promise<void> {
    try {
      await this.session.get(ctx);
    } catch (e) {
      if (e instanceof TargetError && e.retryable) {
        ctx.log.warn('cyberark: PVWA not reachable at start; logging on at the first call', { target: this.id, error: e.message });
        return;
      }
      throw e;
    }
  }

  async provision(grant: TargetGrant, ctx: CallContext): Promise<TargetRef> {
    return this.apply(grant, 'add', ctx);
  }

  async update(grant: TargetGrant, _ref: TargetRef | undefined, ctx: CallContext): Promise<TargetRef> {
    return this.apply(grant, 'set', ctx);
  }

  async revoke(grant: TargetGrant, ref: TargetRef | undefined, ctx: CallContext): Promise<void> {
    // provision() refuses all of these before any call, so nothing of them can exist to remove.
    if (grant.resource.kind !== 'pam') return;
    const { account, safe } = grant.resource;
    if (typeof account !== 'string' || !MEMBER_NAME.test(account) || this.reserved(account)) {
      ctx.log.warn('cyberark revoke of a member this target never grants; nothing to remove', { target: this.id, account: show(account) });
      return;
    }
    const configured = typeof safe === 'string' ? this.safes.get(safe.toLowerCase()) : undefined;
    if (configured === undefined) {
      // A ref means this target made the membership: the safe left the config since, and the
      // vendor must still go. Without one, the grant was refused and the member is someone else's.
      const ours = typeof safe === 'string' && typeof ref?.['safe'] === 'string' && typeof ref['member'] === 'string'
        && ref['safe'].toLowerCase() === safe.toLowerCase() && ref['member'].toLowerCase() === account.toLowerCase();
      if (!ours) {
        ctx.log.warn('cyberark revoke for a safe this target does not manage and never provisioned; nothing to remove', { target: this.id, safe: show(safe) });
        return;
      }
      ctx.log.warn('cyberark revoke in a safe no longer in the config; removing the membership wogate made', { target: this.id, safe });
    }
    await this.remove({ safe: configured ?? safe, member: account }, 'revoke', ctx);
  }

  async list(ctx: CallContext): Promise<TargetEntry[]> {
    const out: TargetEntry[] = [];
    for (const safe of this.safes.values()) out.push(...(await this.listSafe(safe, ctx)));
    return out;
  }

  /** Removes a member list() showed (drift): only in a managed safe, never a built-in, kept or predefined member. */
  async revokeEntry(entry: TargetEntry, ctx: CallContext): Promise<void> {
    const { safe, member } = entry.ref;
    const configured = typeof safe === 'string' ? this.safes.get(safe.toLowerCase()) : undefined;
    if (configured === undefined) throw this.fail('unmanaged_safe', `entry safe ${show(safe)} is not one this target manages; not removing it`);
    if (typeof member !== 'string' || !MEMBER_NAME.test(member)) throw this.fail('invalid_input', `entry member ${show(member)} is not a member name`);
    if (this.reserved(member)) throw this.fail('reserved_member', `${member} is a built-in, kept or service member of ${configured}; never removed`);
    // The Vault is asked once more: a member it marks predefined or read-only is never wogate's to remove.
    const res = await this.call(ctx, { op: 'revokeEntry', method: 'GET', path: this.memberPath(configured, member), accept: [404] });
    if (res.status === 404) return;
    const m = this.object(res);
    if (m['isPredefinedUser'] === true || m['isReadOnly'] === true) throw this.fail('reserved_member', `the Vault marks ${member} in ${configured} as predefined or read-only; never removed`);
    await this.remove({ safe: configured, member }, 'revokeEntry', ctx);
  }

  async close(): Promise<void> {
    const token = this.session.clear();
    if (token !== undefined) {
      // Best effort: an abandoned session only times out on the Vault.
      await this.client
        .request({ op: 'logoff', method: 'POST', path: '/API/Auth/Logoff', headers: { Authorization: token }, accept: [401, 403, 404] }, { now: new Date(), log: silentLogger })
        .catch(() => undefined);
    }
    await this.client.close();
  }

  // --- provisioning ---

  private async apply(grant: TargetGrant, first: 'add' | 'set', ctx: CallContext): Promise<TargetRef> {
    const m = this.member(grant.resource);
    const ref = { safe: m.safe, member: m.member };
    const until = Math.floor(grant.validUntil.getTime() / 1000);
    if (!Number.isSafeInteger(until)) throw this.fail('invalid_input', `validUntil ${show(grant.validUntil)} is not a date`);
    if (until * 1000 <= ctx.now.getTime()) {
      // The window is over (an update may shorten it into the past): the state to reach is "no
      // member". The Vault also refuses an expiry in the past.
      await this.remove(m, first === 'add' ? 'provision' : 'update', ctx);
      ctx.log.debug('cyberark window already over; membership absent', { target: this.id, ...ref });
      return ref;
    }
    // Add, or update when it exists (409); update, or add when it is gone (404). A member that
    // keeps appearing and vanishing between the two is someone else racing us: retry later.
    let step = first;
    for (let tries = 0; tries < 3; tries++) {
      const res = step === 'add' ? await this.addMember(m, until, ctx) : await this.setMember(m, until, ctx);
      if (step === 'add' && res.status === 409) step = 'set';
      else if (step === 'set' && res.status === 404) step = 'add';
      else if (res.status >= 200 && res.status < 300) {
        await this.verify(res, m, until, ctx);
        ctx.log.debug('cyberark membership set', { target: this.id, ...ref, membershipExpirationDate: until });
        return ref;
      } else throw this.refusal(res, `${step === 'add' ? 'adding' : 'updating'} ${m.member} in safe ${m.safe}`);
    }
    throw this.fail('response', `the membership of ${m.member} in ${m.safe} kept appearing and disappearing; trying again later`, true);
  }

  private addMember(m: Member, until: number, ctx: CallContext): Promise<RestResponse> {
    return this.call(ctx, {
      op: 'provision', method: 'POST', path: `/api/Safes/${seg(m.safe)}/Members`, accept: [400, 403, 404, 409],
      json: { memberName: m.member, searchIn: this.searchIn, memberType: 'User', membershipExpirationDate: until, permissions: this.permissions() },
    });
  }

  private setMember(m: Member, until: number, ctx: CallContext): Promise<RestResponse> {
    return this.call(ctx, {
      op: 'update', method: 'PUT', path: this.memberPath(m.safe, m.member), accept: [400, 403, 404, 409],
      json: { membershipExpirationDate: until, permissions: this.permissions() },
    });
  }

  /** Every key, false unless configured: an omitted key takes the Vault's default, and retrieveAccounts defaults to true. */
  private permissions(): Record<CyberArkPermission, boolean> {
    return Object.fromEntries(CYBERARK_PERMISSIONS.map((p) => [p, this.granted.has(p)])) as Record<CyberArkPermission, boolean>;
  }

  /**
   * The Vault's answer must show the membership as asked: the expiry that makes it end on its own,
   * and nothing beyond the configured permissions. A membership with more is removed at once.
   */
  private async verify(res: RestResponse, m: Member, until: number, ctx: CallContext): Promise<void> {
    const body = this.object(res);
    const name = body['memberName'];
    if (typeof name !== 'string' || name.toLowerCase() !== m.member.toLowerCase()) {
      throw this.client.invalid(res, `expected the member ${m.member}, got memberName ${show(name)}`);
    }
    if (name !== m.member) {
      ctx.log.warn('cyberark: the Vault spells this member differently; drift compares names exactly, so use its spelling in the register', { target: this.id, account: m.member, vault: name });
    }
    if (body['membershipExpirationDate'] !== until) {
      throw this.client.invalid(res, `the Vault recorded membershipExpirationDate ${show(body['membershipExpirationDate'])}, not ${until}; the membership would not end on its own`);
    }
    const perms = body['permissions'];
    if (perms === null || typeof perms !== 'object') return;
    const excess = Object.entries(perms as Record<string, unknown>).filter(([k, v]) => v === true && !this.granted.has(k as CyberArkPermission)).map(([k]) => k);
    if (excess.length === 0) return;
    let removed = true;
    try {
      await this.remove(m, res.op, ctx);
    } catch {
      removed = false;
    }
    throw this.fail('excess_permissions', `the Vault gave ${m.member} in ${m.safe} more than configured (${excess.join(', ')}); ${removed ? 'the membership was removed' : 'removing it failed, trying again'}`, !removed, { excess });
  }

  private async remove(m: Member, op: string, ctx: CallContext): Promise<void> {
    const res = await this.call(ctx, { op, method: 'DELETE', path: this.memberPath(m.safe, m.member), accept: [400, 403, 404, 409] });
    // 404: the member, or the whole safe, is gone; either way nobody is left to remove.
    if (res.status === 404 || (res.status >= 200 && res.status < 300)) return;
    throw this.refusal(res, `removing ${m.member} from safe ${m.safe}`);
  }

  // --- listing ---

  private async listSafe(safe: string, ctx: CallContext): Promise<TargetEntry[]> {
    const out: TargetEntry[] = [];
    const seen = new Set<string>();
    let offset = 0;
    for (let page = 0; ; page++) {
      const query: Record<string, string> = { offset: String(offset), limit: String(this.pageSize), ...(this.noFilter ? {} : { filter: 'memberType eq User' }) };
      const res = await this.call(ctx, { op: 'list', method: 'GET', path: `/api/Safes/${seg(safe)}/Members`, query, accept: [400, 403, 404] });
      // Only a refusal of the filter itself falls back; any other 400 is a refusal like elsewhere. [I: wording]
      if (res.status === 400 && !this.noFilter && /filter/i.test(res.text)) {
        ctx.log.info('cyberark: PVWA refused the memberType filter; filtering members here', { target: this.id });
        this.noFilter = true;
        return this.listSafe(safe, ctx);
      }
      if (res.status !== 200) throw this.refusal(res, `listing the members of safe ${safe}`);
      const body = this.object(res);
      const value = body['value'];
      const count = body['count'];
      if (!Array.isArray(value) || typeof count !== 'number') throw this.client.invalid(res, 'expected {value: [...], count}');
      let fresh = 0;
      for (const raw of value) {
        const name = (raw as { memberName?: unknown } | null)?.memberName;
        if (typeof name !== 'string') throw this.client.invalid(res, `a member without memberName: ${show(raw)}`);
        if (seen.has(name.toLowerCase())) continue;
        seen.add(name.toLowerCase());
        fresh++;
        const entry = this.entry(safe, raw as Record<string, unknown>, ctx.now);
        if (entry) out.push(entry);
      }
      offset += value.length;
      if (value.length === 0 || offset >= count) return out;
      // A PVWA that ignores offset would hand back page one forever.
      if (fresh === 0 || page > count / Math.max(1, value.length) + 1) throw this.client.invalid(res, `paging did not advance past offset ${offset} of ${count}`);
    }
  }

  private entry(safe: string, m: Record<string, unknown>, now: Date): TargetEntry | undefined {
    const name = m['memberName'] as string;
    if (m['isPredefinedUser'] === true || String(m['memberType'] ?? 'User').toLowerCase() !== 'user' || this.reserved(name)) return undefined;
    const exp = m['membershipExpirationDate'];
    // An expired membership opens nothing: left out, so drift sees a live grant there as missing and restores it.
    if (typeof exp === 'number' && exp > 0 && exp * 1000 <= now.getTime()) return undefined;
    const resource: Resource = { kind: 'pam', account: name, safe };
    const ref = { safe, member: name };
    return typeof exp === 'number' && exp > 0 ? { resource, ref, expiresAt: new Date(exp * 1000) } : { resource, ref };
  }

  // --- session and calls ---

  private async logon(ctx: CallContext): Promise<string> {
    const res = await this.client.request({
      op: 'logon', method: 'POST', path: `/API/auth/${this.authMethod}/Logon`, accept: [400, 401, 403, 409],
      json: { username: this.username, password: this.password, concurrentSession: true },
    }, ctx);
    if (res.status !== 200) {
      // Not retried: the Vault suspends a user after a few failed logons, and a retry loop would get it there.
      throw this.refusal(res, `logon as ${this.username} (${this.authMethod}) refused; check username, password and authMethod`);
    }
    const body = this.client.json(res, 'the session token as a JSON string');
    const err = errorOf(body);
    if (err) throw this.client.refused(res, `${err.code ?? ''} ${err.message ?? ''}`.trim(), true);
    const token = typeof body === 'string' ? body : (body as { CyberArkLogonResult?: unknown } | null)?.CyberArkLogonResult;
    if (typeof token !== 'string' || !TOKEN.test(token)) throw this.client.invalid(res, 'the logon answer is not a session token');
    ctx.log.debug('cyberark logged on', { target: this.id, method: this.authMethod });
    return token;
  }

  /** A call with the session token (sent bare, no "Bearer"); a 401 logs on again once. */
  private async call(ctx: CallContext, req: Omit<RestRequest, 'headers'>): Promise<RestResponse> {
    const res = await this.session.with(ctx, (token) => this.client.request({ ...req, headers: { Authorization: token }, accept: [...(req.accept ?? []), 401] }, ctx));
    if (res.status >= 200 && res.status < 300) {
      // A 2xx that carries CyberArk's error object is not a success.
      const err = res.text.includes('ErrorCode') ? errorOf(parse(res.text)) : undefined;
      if (err) throw this.client.refused(res, `${err.code ?? ''} ${err.message ?? ''}`.trim(), true, { ...(err.code ? { errorCode: err.code } : {}) });
    }
    return res;
  }

  private object(res: RestResponse): Record<string, unknown> {
    const body = this.client.json(res);
    if (body === null || typeof body !== 'object' || Array.isArray(body)) throw this.client.invalid(res, 'expected a JSON object');
    return body as Record<string, unknown>;
  }

  private memberPath(safe: string, member: string): string {
    return `/api/Safes/${seg(safe)}/Members/${seg(member)}`;
  }

  // --- checks and errors ---

  private member(r: Resource): Member {
    if (r.kind !== 'pam') throw this.fail('invalid_input', `resource kind ${show(r.kind)} is not pam: CyberArk only holds safe memberships`);
    if (typeof r.account !== 'string' || !MEMBER_NAME.test(r.account)) throw this.fail('invalid_input', `account ${show(r.account)} is not a CyberArk member name`);
    if (this.reserved(r.account)) throw this.fail('reserved_member', `account ${r.account} is the service account, a built-in or a kept member; wogate never changes it`);
    const safe = typeof r.safe === 'string' ? this.safes.get(r.safe.toLowerCase()) : undefined;
    if (safe === undefined) throw this.fail('unmanaged_safe', `safe ${show(r.safe)} is not one this target manages (${[...this.safes.values()].join(', ')})`);
    // list() reports the configured spelling and drift compares exactly: another spelling would
    // look like one unexpected and one missing membership on every check.
    if (safe !== r.safe) throw this.fail('unmanaged_safe', `safe ${show(r.safe)} must be spelled as configured: ${safe}`);
    return { safe, member: r.account };
  }

  private reserved(name: string): boolean {
    const n = name.toLowerCase();
    return n === this.username.toLowerCase() || this.keep.has(n) || BUILT_IN.test(name);
  }

  private fail(reason: Reason, message: string, retryable = false, details: Record<string, unknown> = {}): TargetError {
    return new TargetError(this.id, message, retryable, { reason, ...details });
  }

  /** A refusal the adapter accepted to read itself (400, 403, 404, 409, a failed logon): not retryable. */
  private refusal(res: RestResponse, what: string): TargetError {
    const err = errorOf(parse(res.text));
    const said = err ? `${err.code ?? ''} ${this.client.excerpt(err.message ?? '')}`.trim() : this.client.excerpt(res.text);
    return new TargetError(this.id, `${what}: ${res.what} answered ${res.status}: ${said}`, false, {
      reason: 'refused', op: res.op, status: res.status, ...(err?.code ? { errorCode: err.code } : {}),
    });
  }
}
