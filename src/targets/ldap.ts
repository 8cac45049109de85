import { isIP } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import { AndFilter, Attribute, Change, Client, Control, EqualityFilter, PresenceFilter, ResultCodeError, type Entry, type Filter } from 'ldapts';
import type { Resource, TargetRef } from '../domain/index.js';
import type { EntryRevoker } from '../engine/drift.js';
import { checkLdapOptions, dnKey, hasControlChars, isUnder, parseDn, type CheckedLdapOptions, type Dn, type LdapTargetOptions, type ManagedGroup } from './ldap-config.js';
import { TargetError, type CallContext, type Target, type TargetEntry, type TargetGrant } from './target.js';

export { LDAP_TARGET_SCHEMA, ldapTargetOptions, type LdapTargetOptions } from './ldap-config.js';

/**
 * LDAP / Active Directory target: a grant is the technician's account as a value of a group's
 * member attribute. Only the groups in `groups` are ever modified, and only accounts strictly
 * below `accountBase` are ever added, listed or removed, so no policy typo can put anyone into
 * Domain Admins or take a staff member out of a group.
 *
 * One connection per call, not a pooled client: calls come a few a minute, and a fresh
 * connection costs a handshake and a bind. In return no call ever runs on a half-dead socket or
 * on one that ldapts silently re-opened unauthenticated (its autoRebind does not cover StartTLS),
 * and a call's failure can't leave state behind for the next one.
 *
 * Native expiry only with `adTtl` (Active Directory, Privileged Access Management feature): the
 * member value is `<TTL=seconds>,DN` and the DC drops the link when it runs out. OpenLDAP has no
 * such thing: there wogate's own revoke ends access.
 */

/** LDAP_SERVER_LINK_TTL_OID (MS-ADTS 3.1.1.3.4.1.36): search results carry `<TTL=n>,DN` for expiring links. */
const LINK_TTL_OID = '1.2.840.113556.1.4.2309';
const TTL_VALUE = /^<TTL=(\d{1,10})>,(.+)$/s;
const UID_SUFFIX = /#'[01]*'B$/;
/** AD refuses more than MaxValRange (1500) values per read; ranges beyond this many rounds are not a group. */
const MAX_RANGE_ROUNDS = 2000;

const CODE_NAMES: Readonly<Record<number, string>> = {
  1: 'operationsError', 2: 'protocolError', 3: 'timeLimitExceeded', 4: 'sizeLimitExceeded', 7: 'authMethodNotSupported',
  8: 'strongerAuthRequired', 10: 'referral', 11: 'adminLimitExceeded', 12: 'unavailableCriticalExtension',
  13: 'confidentialityRequired', 16: 'noSuchAttribute', 17: 'undefinedAttributeType', 18: 'inappropriateMatching',
  19: 'constraintViolation', 20: 'attributeOrValueExists', 21: 'invalidAttributeSyntax', 32: 'noSuchObject',
  34: 'invalidDNSyntax', 48: 'inappropriateAuthentication', 49: 'invalidCredentials', 50: 'insufficientAccessRights',
  51: 'busy', 52: 'unavailable', 53: 'unwillingToPerform', 64: 'namingViolation', 65: 'objectClassViolation',
  68: 'entryAlreadyExists', 80: 'other',
};
/** Answers that the same request will get again: configuration, permissions, schema. Everything else is retried. */
const PERMANENT = new Set([2, 7, 8, 10, 12, 13, 16, 17, 18, 19, 20, 21, 32, 34, 48, 49, 50, 53, 64, 65, 68]);
const HINTS: Readonly<Record<number, string>> = {
  8: ' (the server requires TLS: use ldaps:// or startTls)',
  10: ' (wogate does not follow referrals: point url at a server holding the entry)',
  12: ' (the server lacks the LDAP_SERVER_LINK_TTL control: adTtl needs Active Directory)',
  13: ' (the server requires TLS: use ldaps:// or startTls)',
  32: ' (it does not exist, or the service account may not read it)',
  49: ' (check bindDN and bindPassword)',
  50: ' (the service account lacks the permission)',
};
const NET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNABORTED', 'EADDRNOTAVAIL']);

type Reason = 'invalid_input' | 'not_managed' | 'account' | 'directory' | 'tls' | 'timeout' | 'unreachable' | 'response' | 'aborted';

function fail(id: string, reason: Reason, message: string, retryable: boolean, details: Record<string, unknown> = {}): TargetError {
  return new TargetError(id, message, retryable, { reason, ...details });
}

function show(value: unknown): string {
  const s = JSON.stringify(value) ?? String(value);
  return s.length > 120 ? `${s.slice(0, 117)}...` : s;
}

function resultCode(e: unknown): number | undefined {
  return e instanceof ResultCodeError ? e.code : undefined;
}

/** The values of `name` in an entry, whatever case the server spelled the attribute in. */
function values(entry: Entry, name: string): string[] {
  const key = Object.keys(entry).find((k) => k !== 'dn' && k.toLowerCase() === name.toLowerCase());
  const v = key === undefined ? undefined : entry[key];
  if (v === undefined) return [];
  return (Array.isArray(v) ? v : [v]).map((x) => (Buffer.isBuffer(x) ? x.toString('utf8') : x));
}

function deadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: Operation timed out`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/** AD's TTL for a link ending at validUntil: whole seconds, rounded down so it never outlives the grant. */
export function ttlSeconds(validUntil: Date, now: Date): number {
  return Math.floor((validUntil.getTime() - now.getTime()) / 1000);
}

/** The member value that adds `memberDn` with a TTL (the form Get-ADGroup -ShowMemberTimeToLive prints). */
export function ttlMemberValue(memberDn: string, seconds: number): string {
  return `<TTL=${seconds}>,${memberDn}`;
}

/** Splits a member value as read back: the DN, the value to delete it by, and the AD TTL if any. */
export function parseMemberValue(raw: string, now: Date, uniqueMember = false): { member: string; dn: Dn | undefined; expiresAt?: Date } {
  const ttl = TTL_VALUE.exec(raw);
  const member = ttl ? (ttl[2] as string) : raw;
  const dn = parseDn(uniqueMember ? member.replace(UID_SUFFIX, '') : member);
  return { member, dn, ...(ttl ? { expiresAt: new Date(now.getTime() + Number(ttl[1]) * 1000) } : {}) };
}

export class LdapTarget implements Target, EntryRevoker {
  readonly kind = 'ldap';
  readonly resourceKinds = ['group'] as const;
  readonly nativeExpiry: boolean;
  readonly id: string;
  private readonly o: LdapTargetOptions;
  private readonly c: CheckedLdapOptions;
  private readonly attr: 'member' | 'uniqueMember';
  private readonly timeoutMs: number;
  private readonly connectTimeoutMs: number;
  private readonly byName: ReadonlyMap<string, ManagedGroup>;
  private readonly byKey: ReadonlyMap<string, ManagedGroup>;

  constructor(o: LdapTargetOptions) {
    this.c = checkLdapOptions(o);
    this.o = o;
    this.id = o.id;
    this.attr = o.memberAttribute ?? 'member';
    this.nativeExpiry = o.adTtl === true;
    this.timeoutMs = o.timeoutMs ?? 10_000;
    this.connectTimeoutMs = o.connectTimeoutMs ?? this.timeoutMs;
    this.byName = new Map(this.c.groups.map((g) => [g.name, g]));
    this.byKey = new Map(this.c.groups.map((g) => [dnKey(g.parsed), g]));
  }

  /** Checks the service account can bind and read accountBase and every group; an unreachable directory only warns. */
  async init(ctx: CallContext): Promise<void> {
    try {
      await this.session(ctx, 'check the directory', async (client) => {
        for (const [what, base] of [['accountBase', this.o.accountBase], ...this.c.groups.map((g) => [`group ${g.name}`, g.dn])] as const) {
          await this.search(client, base, { scope: 'base', attributes: ['1.1'] }, `read ${what} ${base}`);
        }
      });
    } catch (e) {
      if (!(e instanceof TargetError) || !e.retryable) throw e;
      ctx.log.warn('ldap directory not reachable at start; calls will retry', { error: e.message });
    }
  }

  async provision(grant: TargetGrant, ctx: CallContext): Promise<TargetRef> {
    const { group, account } = this.wanted(grant.resource);
    const remaining = grant.validUntil.getTime() - ctx.now.getTime();
    if (!Number.isFinite(remaining)) throw fail(this.id, 'invalid_input', `validUntil ${show(grant.validUntil)} is not a date`, false);
    const ttl = this.o.adTtl ? ttlSeconds(grant.validUntil, ctx.now) : undefined;
    // The window is over (an update may shorten it into the past): the state to reach is "not a member".
    const over = remaining <= 0 || (ttl !== undefined && ttl < 1);
    return this.session(ctx, `${over ? 'remove' : 'add'} ${account} ${over ? 'from' : 'to'} ${group.dn}`, async (client) => {
      const found = await this.findAccount(client, account, true);
      if (!found) {
        throw fail(this.id, 'account', `account ${show(account)} not found under ${this.o.accountBase}${this.o.accountObjectClass ? ` (objectClass ${this.o.accountObjectClass})` : ''}`, false);
      }
      const ref = { group: group.dn, member: found };
      if (over) {
        await this.removeMember(client, group, found, ctx);
        ctx.log.debug('ldap window already over; not a member', ref);
        return ref;
      }
      await this.addMember(client, group, found, ttl === undefined ? undefined : ttlMemberValue(found, ttl), ctx);
      ctx.log.debug('ldap member added', { ...ref, ...(ttl !== undefined ? { ttlSeconds: ttl } : {}) });
      return ref;
    });
  }

  update(grant: TargetGrant, _ref: TargetRef | undefined, ctx: CallContext): Promise<TargetRef> {
    // Same group, same account: only an AD TTL can change, and provision refreshes it.
    return this.provision(grant, ctx);
  }

  async revoke(grant: TargetGrant, ref: TargetRef | undefined, ctx: CallContext): Promise<void> {
    const r = grant.resource;
    if (r.kind !== 'group') {
      ctx.log.warn('ldap revoke of a resource this target cannot hold; nothing to remove', { kind: r.kind });
      return;
    }
    const group = this.byName.get(r.group);
    if (!group) {
      // A ref means a provision once succeeded here, under a config that managed this group.
      if (typeof ref?.['group'] === 'string') {
        throw fail(this.id, 'not_managed', `group ${show(r.group)} is no longer in ldap.groups, so wogate will not remove ${show(r.account)} from it: remove the membership by hand or add the group back`, false);
      }
      ctx.log.warn('ldap revoke for a group this target does not manage; provision refuses those, so nothing was added', { group: r.group });
      return;
    }
    if (!this.o.accountAttribute && !this.accountDn(r.account)) {
      ctx.log.warn('ldap revoke for an account outside accountBase; provision refuses those, so nothing was added', { account: r.account });
      return;
    }
    await this.session(ctx, `remove ${r.account} from ${group.dn}`, async (client) => {
      // Everything that may name the member: the account as it is now (it may have moved), the DN
      // the grant names, and the DN provision recorded. Only values under accountBase qualify.
      const members = new Map<string, string>();
      const consider = (value: unknown): void => {
        if (typeof value !== 'string') return;
        const dn = parseDn(value.replace(UID_SUFFIX, ''));
        if (dn && isUnder(dn, this.c.accountBase)) members.set(dnKey(dn), value);
      };
      consider(await this.findAccount(client, r.account, false));
      if (!this.o.accountAttribute) consider(r.account);
      if (typeof ref?.['group'] === 'string' && this.sameDn(ref['group'], group.dn)) consider(ref['member']);
      if (members.size === 0) {
        ctx.log.warn('ldap revoke: account not found and no member recorded; nothing to remove', { account: r.account, group: group.dn });
        return;
      }
      for (const member of members.values()) await this.removeMember(client, group, member, ctx);
      ctx.log.debug('ldap member removed', { group: group.dn, members: [...members.values()] });
    });
  }

  async revokeEntry(entry: TargetEntry, ctx: CallContext): Promise<void> {
    const { group: groupDn, member } = entry.ref;
    if (typeof groupDn !== 'string' || typeof member !== 'string') throw fail(this.id, 'invalid_input', `entry ref ${show(entry.ref)} names no group and member`, false);
    const parsedGroup = parseDn(groupDn);
    const group = parsedGroup && this.byKey.get(dnKey(parsedGroup));
    if (!group) throw fail(this.id, 'not_managed', `group ${show(groupDn)} is not one of this target's groups; wogate never touches other groups`, false);
    const dn = parseDn(member.replace(UID_SUFFIX, ''));
    if (!dn || !isUnder(dn, this.c.accountBase)) throw fail(this.id, 'not_managed', `member ${show(member)} is not under accountBase ${this.o.accountBase}; wogate only removes vendor accounts`, false);
    await this.session(ctx, `remove ${member} from ${group.dn}`, (client) => this.removeMember(client, group, member, ctx));
  }

  /** The vendor members of the managed groups, read back; members outside accountBase (staff, the placeholder) are not wogate's. */
  async list(ctx: CallContext): Promise<TargetEntry[]> {
    return this.session(ctx, 'list the managed groups', async (client) => {
      const out: TargetEntry[] = [];
      const accounts = new Map<string, string | undefined>();
      for (const group of this.c.groups) {
        for (const raw of await this.readMembers(client, group)) {
          const m = parseMemberValue(raw, ctx.now, this.attr === 'uniqueMember');
          if (!m.dn) throw fail(this.id, 'response', `group ${group.dn} holds a ${this.attr} value that is not a DN: ${show(raw)}`, true);
          if (!isUnder(m.dn, this.c.accountBase)) continue;
          const key = dnKey(m.dn);
          if (!accounts.has(key)) accounts.set(key, await this.accountOf(client, m.member.replace(UID_SUFFIX, ''), ctx));
          const account = accounts.get(key);
          const resource: Resource | undefined = account === undefined ? undefined : { kind: 'group', account, group: group.name };
          out.push({ ref: { group: group.dn, member: m.member }, ...(resource ? { resource } : {}), ...(m.expiresAt ? { expiresAt: m.expiresAt } : {}) });
        }
      }
      return out;
    });
  }

  async close(): Promise<void> {}

  // -------------------------------------------------------------------------------------------

  private wanted(r: Resource): { group: ManagedGroup; account: string } {
    if (r.kind !== 'group') throw fail(this.id, 'invalid_input', `resource kind ${show(r.kind)} is not group: the ldap target only manages group membership`, false);
    const group = this.byName.get(r.group);
    if (!group) {
      throw fail(this.id, 'not_managed', `group ${show(r.group)} is not one of this target's groups (${this.c.groups.map((g) => g.name).join(', ')}); wogate never touches other groups`, false);
    }
    if (typeof r.account !== 'string' || r.account.length === 0 || r.account.length > 1024 || hasControlChars(r.account)) {
      throw fail(this.id, 'invalid_input', `account ${show(r.account)} is not an account name`, false);
    }
    if (!this.o.accountAttribute && !this.accountDn(r.account)) {
      throw fail(this.id, 'not_managed', `account ${show(r.account)} is not a DN under accountBase ${this.o.accountBase}; wogate only adds vendor accounts`, false);
    }
    return { group, account: r.account };
  }

  private accountDn(account: string): Dn | undefined {
    const dn = parseDn(account);
    return dn && isUnder(dn, this.c.accountBase) ? dn : undefined;
  }

  private sameDn(a: string, b: string): boolean {
    const pa = parseDn(a);
    const pb = parseDn(b);
    return pa !== undefined && pb !== undefined && dnKey(pa) === dnKey(pb);
  }

  private accountFilter(extra?: Filter): Filter {
    const oc = this.o.accountObjectClass
      ? new EqualityFilter({ attribute: 'objectClass', value: this.o.accountObjectClass })
      : new PresenceFilter({ attribute: 'objectClass' });
    return extra ? new AndFilter({ filters: [extra, oc] }) : oc;
  }

  /**
   * The DN of the account a grant names, or undefined when there is none. `strict` (provision)
   * also demands the grant spells it exactly as the directory does: list() reads the directory's
   * spelling back, and drift matches it to grants character for character.
   */
  private async findAccount(client: Client, account: string, strict: boolean): Promise<string | undefined> {
    const attr = this.o.accountAttribute;
    if (!attr) {
      const entries = await this.search(client, account, { scope: 'base', filter: this.accountFilter(), attributes: ['1.1'] }, `read account ${account}`, true);
      const dn = entries[0]?.dn;
      if (dn !== undefined && strict && dn !== account) {
        throw fail(this.id, 'account', `account ${show(account)} is stored as ${show(dn)}: write it exactly so, or list() cannot match it back`, false);
      }
      return dn;
    }
    // An EqualityFilter goes out as BER, never as filter text: a name like "*)(uid=*" matches nothing.
    const filter = this.accountFilter(new EqualityFilter({ attribute: attr, value: account }));
    const entries = await this.search(client, this.o.accountBase, { scope: 'sub', filter, attributes: [attr], sizeLimit: 2 }, `find account ${account} under accountBase ${this.o.accountBase}`);
    if (entries.length === 0) return undefined;
    const [entry] = entries as [Entry];
    if (entries.length > 1) throw fail(this.id, 'account', `account ${show(account)} matches several entries under ${this.o.accountBase}; ${attr} must be unique`, false);
    const dn = parseDn(entry.dn);
    if (!dn || !isUnder(dn, this.c.accountBase)) throw fail(this.id, 'response', `a search under accountBase returned ${show(entry.dn)}, which is not under it`, true);
    const found = values(entry, attr);
    if (strict && (found.length !== 1 || found[0] !== account)) {
      throw fail(this.id, 'account', `account ${show(account)} is ${entry.dn} with ${attr} ${show(found)}: write it exactly as the directory does (one value), or list() cannot match it back`, false);
    }
    return entry.dn;
  }

  /** How the config names the account behind a member DN; undefined when it is gone or not an account. */
  private async accountOf(client: Client, member: string, ctx: CallContext): Promise<string | undefined> {
    const attr = this.o.accountAttribute;
    const [entry] = await this.search(client, member, { scope: 'base', filter: this.accountFilter(), attributes: attr ? [attr] : ['1.1'] }, `read member ${member}`, true);
    if (!entry) {
      ctx.log.warn('ldap group member under accountBase is not an account (deleted, or not of accountObjectClass)', { member });
      return undefined;
    }
    if (!attr) return entry.dn;
    const found = values(entry, attr);
    if (found.length !== 1) ctx.log.warn(`ldap member has ${found.length} values of ${attr}; listed without a resource`, { member });
    return found.length === 1 ? found[0] : undefined;
  }

  private async addMember(client: Client, group: ManagedGroup, dn: string, ttlValue: string | undefined, ctx: CallContext): Promise<void> {
    const change = (operation: 'add' | 'delete', value: string): Change => new Change({ operation, modification: new Attribute({ type: this.attr, values: [value] }) });
    try {
      await client.modify(group.dn, change('add', ttlValue ?? dn));
      return;
    } catch (e) {
      // OpenLDAP answers a duplicate with attributeOrValueExists, Active Directory with entryAlreadyExists.
      if (resultCode(e) !== 20 && resultCode(e) !== 68) {
        throw this.failure(e, ttlValue === undefined ? `add ${dn} to ${group.dn}` : `add ${dn} with a TTL to ${group.dn} (adTtl needs Active Directory with the Privileged Access Management feature)`);
      }
    }
    if (ttlValue === undefined) return;
    // AD keeps one link per member and will not put a TTL on it in place: replace it in one atomic modify.
    ctx.log.debug('ldap member present; replacing its link to set the TTL', { group: group.dn, member: dn });
    try {
      await client.modify(group.dn, [change('delete', dn), change('add', ttlValue)]);
    } catch (e) {
      throw this.failure(e, `refresh the TTL of ${dn} in ${group.dn}`);
    }
  }

  private async removeMember(client: Client, group: ManagedGroup, member: string, ctx: CallContext): Promise<void> {
    const change = (operation: 'add' | 'delete', value: string): Change => new Change({ operation, modification: new Attribute({ type: this.attr, values: [value] }) });
    const gone = (e: unknown): boolean =>
      // noSuchAttribute: not a member. AD says unwillingToPerform, 00000561 (ERROR_MEMBER_NOT_IN_GROUP).
      resultCode(e) === 16 || (resultCode(e) === 53 && /\b0*561:/.test((e as Error).message));
    try {
      await client.modify(group.dn, change('delete', member));
      return;
    } catch (e) {
      if (gone(e)) return;
      if (resultCode(e) !== 65) throw this.failure(e, `remove ${member} from ${group.dn}`);
    }
    // objectClassViolation: groupOfNames (and groupOfUniqueNames) must keep a member, and this is
    // the last. Swap in the placeholder in the same modify, so the vendor is never kept in to
    // satisfy the schema and the group is never empty.
    ctx.log.info('ldap removing the last member; the placeholder takes its place', { group: group.dn, member, placeholder: group.placeholder });
    try {
      await client.modify(group.dn, [change('add', group.placeholder), change('delete', member)]);
      return;
    } catch (e) {
      if (gone(e)) return;
      if (resultCode(e) !== 20 && resultCode(e) !== 68) throw this.failure(e, `remove the last member ${member} from ${group.dn} (placeholder ${group.placeholder})`);
    }
    // The placeholder arrived meanwhile, so this member is no longer the last.
    try {
      await client.modify(group.dn, change('delete', member));
    } catch (e) {
      if (!gone(e)) throw this.failure(e, `remove ${member} from ${group.dn}`);
    }
  }

  /** Every value of the member attribute, following AD's ranged retrieval (member;range=0-1499). */
  private async readMembers(client: Client, group: ManagedGroup): Promise<string[]> {
    const out: string[] = [];
    const controls = this.o.adTtl ? [new Control(LINK_TTL_OID, { critical: true })] : undefined;
    let request: string = this.attr;
    for (let round = 0; round < MAX_RANGE_ROUNDS; round++) {
      const [entry] = await this.search(client, group.dn, { scope: 'base', attributes: [request] }, `read group ${group.dn}`, false, controls);
      if (!entry) throw fail(this.id, 'response', `reading group ${group.dn} returned no entry`, true);
      const keys = Object.keys(entry).filter((k) => k !== 'dn' && k.split(';')[0]?.toLowerCase() === this.attr.toLowerCase());
      if (keys.length === 0) return out;
      if (keys.length > 1) throw fail(this.id, 'response', `reading group ${group.dn} returned ${keys.join(', ')} at once`, true);
      const key = keys[0] as string;
      out.push(...values(entry, key));
      const range = /;range=(\d+)-(\d+|\*)$/i.exec(key);
      if (!range || range[2] === '*') return out;
      request = `${this.attr};range=${Number(range[2]) + 1}-*`;
    }
    throw fail(this.id, 'response', `group ${group.dn} kept returning ranges of ${this.attr} after ${MAX_RANGE_ROUNDS} reads`, true);
  }

  private async search(
    client: Client,
    base: string,
    options: { scope: 'base' | 'sub'; filter?: Filter; attributes: string[]; sizeLimit?: number },
    what: string,
    missingOk = false,
    controls?: Control[],
  ): Promise<Entry[]> {
    try {
      const { searchEntries } = await client.search(
        base,
        { filter: new PresenceFilter({ attribute: 'objectClass' }), derefAliases: 'never', timeLimit: Math.ceil(this.timeoutMs / 1000), ...options },
        controls,
      );
      return searchEntries;
    } catch (e) {
      if (missingOk && resultCode(e) === 32) return [];
      throw this.failure(e, what);
    }
  }

  private tls(): ConnectionOptions {
    const host = this.c.host;
    return { host, minVersion: 'TLSv1.2', rejectUnauthorized: true, ...(isIP(host) ? {} : { servername: host }), ...(this.o.ca ? { ca: [this.o.ca] } : {}) };
  }

  /** Connect, (StartTLS,) bind, run `fn`, unbind. Every failure comes out as a classified TargetError. */
  private async session<T>(ctx: CallContext, what: string, fn: (client: Client) => Promise<T>): Promise<T> {
    if (ctx.signal?.aborted) throw fail(this.id, 'aborted', `${what}: cancelled`, true);
    const client = new Client({
      url: this.o.url,
      timeout: this.timeoutMs,
      connectTimeout: this.connectTimeoutMs,
      strictDN: true,
      // ldapts goes TLS from the first byte whenever tlsOptions are set, so only for ldaps://.
      ...(this.c.secure ? { tlsOptions: this.tls() } : {}),
    });
    const abort = (): void => void client.unbind().catch(() => {});
    ctx.signal?.addEventListener('abort', abort, { once: true });
    try {
      if (this.o.startTls) {
        try {
          await deadline(client.startTLS(this.tls()), this.timeoutMs, 'StartTLS');
        } catch (e) {
          throw this.failure(e, `StartTLS with ${this.o.url}`);
        }
      }
      try {
        await client.bind(this.o.bindDN, this.o.bindPassword);
      } catch (e) {
        throw this.failure(e, `bind as ${this.o.bindDN}`);
      }
      return await fn(client);
    } catch (e) {
      if (ctx.signal?.aborted) throw fail(this.id, 'aborted', `${what}: cancelled`, true);
      throw this.failure(e, what);
    } finally {
      ctx.signal?.removeEventListener('abort', abort);
      await client.unbind().catch(() => {});
    }
  }

  /** Classifies any failure; the bind password is cut out of whatever text the server or the socket produced. */
  private failure(e: unknown, what: string): TargetError {
    if (e instanceof TargetError) return e;
    const secret = this.o.bindPassword;
    const text = (s: string): string => s.split(secret).join('[redacted]').split('\n')[0]?.slice(0, 300) ?? '';
    const code = resultCode(e);
    if (code !== undefined) {
      const name = CODE_NAMES[code] ?? 'result';
      // ldapts appends " Code: 0x20" to the server's diagnostic message, which is often empty.
      const diag = text((e as Error).message.replace(/\s*Code: 0x[0-9a-f]+$/i, '')).trim();
      return fail(this.id, 'directory', `${what}: ${name} (LDAP ${code})${HINTS[code] ?? ''}${diag ? `: ${diag}` : ''}`, !PERMANENT.has(code), { ldapCode: code });
    }
    const err = e as NodeJS.ErrnoException;
    const message = text(err?.message ?? String(e));
    const errno = typeof err?.code === 'string' ? err.code : undefined;
    if ((errno && /CERT|SELF_SIGNED|UNABLE_TO|ERR_TLS|ERR_SSL/.test(errno)) || /certificate|self[- ]signed/i.test(message)) {
      return fail(this.id, 'tls', `${what}: TLS with ${this.o.url} failed: ${errno ?? message}; check the server certificate and ldap.caPem`, false, { errno });
    }
    if (/timed out|timeout/i.test(message) || errno === 'ETIMEDOUT') {
      return fail(this.id, 'timeout', `${what}: no answer from ${this.o.url} within ${/connect/i.test(message) ? this.connectTimeoutMs : this.timeoutMs} ms`, true);
    }
    if (errno && NET_CODES.has(errno)) return fail(this.id, 'unreachable', `${what}: cannot reach ${this.o.url}: ${errno}`, true, { errno });
    if (/Connection closed|Socket error|socket/i.test(message)) return fail(this.id, 'unreachable', `${what}: connection to ${this.o.url} lost: ${message}`, true);
    return fail(this.id, 'response', `${what}: unexpected failure talking to ${this.o.url}: ${message}`, true);
  }
}
