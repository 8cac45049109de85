import { isIP } from 'node:net';
import { parseDuration, WogateError } from '../domain/index.js';

/**
 * The `ldap:` config block of a `kind: ldap` target, the options it becomes, and the DN handling
 * both need: config values are checked here once, so the adapter can trust them.
 */
export interface LdapTargetOptions {
  readonly id: string;
  /** `ldap://host[:port]` or `ldaps://host[:port]`; nothing after the authority. */
  readonly url: string;
  /** Upgrade an `ldap://` connection with the StartTLS extended operation before binding. */
  readonly startTls?: boolean;
  /** PEM certificate(s) to verify the server with (the config's `caPem`, resolved). Default: Node's CA store. */
  readonly ca?: string;
  /** Allow a clear-text bind to a host that is not loopback. Lab use only. */
  readonly allowPlaintext?: boolean;
  readonly bindDN: string;
  readonly bindPassword: string;
  /** Deadline for each LDAP operation and for the TLS handshake; default 10000. */
  readonly timeoutMs?: number;
  /** Deadline for the TCP (and ldaps TLS) connect; default timeoutMs. */
  readonly connectTimeoutMs?: number;
  /** The vendor OU: only accounts strictly below it are ever added, listed or removed. */
  readonly accountBase: string;
  /** When set, a grant's account is this attribute's value (uid, sAMAccountName) under accountBase; else it is a DN. */
  readonly accountAttribute?: string;
  /** When set, only entries of this objectClass count as accounts (inetOrgPerson, user). */
  readonly accountObjectClass?: string;
  /** Where groups named by cn live; required when `groups` holds names rather than DNs. */
  readonly groupBase?: string;
  /** The only groups wogate will touch: DNs, or cn values under groupBase. */
  readonly groups: readonly string[];
  /** 'member' (groupOfNames, AD group; default) or 'uniqueMember' (groupOfUniqueNames). */
  readonly memberAttribute?: 'member' | 'uniqueMember';
  /** Member kept in a group that would otherwise be empty; default `cn=wogate-placeholder,<group's parent>`. */
  readonly placeholderMember?: string;
  /** Active Directory with the Privileged Access Management feature: add members with a TTL. */
  readonly adTtl?: boolean;
}

// ---------------------------------------------------------------------------------------------
// Distinguished names (RFC 4514)

export interface Ava {
  readonly type: string;
  readonly value: string;
}
/** A parsed DN, most specific RDN first; each RDN holds one or more attribute-value pairs. */
export type Dn = readonly (readonly Ava[])[];

const ATTR_TYPE = /^(?:[A-Za-z][A-Za-z0-9-]*|\d+(?:\.\d+)*)$/;
const SPECIAL = new Set([' ', '"', '#', '+', ',', ';', '<', '=', '>', '\\']);

/** Parses an RFC 4514 string DN; undefined when it is not one (or is the empty root DN). */
export function parseDn(text: string): Dn | undefined {
  if (text.length === 0 || text.length > 4096 || text.includes('\0')) return undefined;
  const rdns: Ava[][] = [];
  let rdn: Ava[] = [];
  let i = 0;
  while (i <= text.length) {
    const eq = text.indexOf('=', i);
    if (eq < 0) return undefined;
    const type = text.slice(i, eq).trim();
    if (!ATTR_TYPE.test(type)) return undefined;
    i = eq + 1;
    while (text[i] === ' ') i++;
    const bytes: number[] = [];
    let trailingSpaces = 0;
    let end: string | undefined;
    for (; i < text.length; i++) {
      const c = text[i] as string;
      if (c === ',' || c === '+' || c === ';') {
        end = c;
        break;
      }
      if (c === '\\') {
        const next = text[i + 1];
        const hex = text.slice(i + 1, i + 3);
        if (/^[0-9A-Fa-f]{2}$/.test(hex)) {
          bytes.push(parseInt(hex, 16));
          i += 2;
        } else if (next !== undefined && SPECIAL.has(next)) {
          bytes.push(...Buffer.from(next));
          i += 1;
        } else return undefined;
        trailingSpaces = 0;
        continue;
      }
      if (c === '"' || c === '<' || c === '>') return undefined;
      trailingSpaces = c === ' ' ? trailingSpaces + 1 : 0;
      bytes.push(...Buffer.from(c));
    }
    // Unescaped trailing spaces are not part of the value.
    const value = Buffer.from(bytes.slice(0, bytes.length - trailingSpaces)).toString('utf8');
    if (value.length === 0) return undefined;
    rdn.push({ type: type.toLowerCase(), value });
    i++;
    if (end !== '+') {
      rdns.push(rdn);
      rdn = [];
    }
    if (end === undefined) break;
  }
  return rdns.length > 0 ? rdns : undefined;
}

/** True when the text holds a C0 control character (NUL, newline, ...): never part of a name wogate handles. */
export function hasControlChars(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) < 0x20) return true;
  return false;
}

/** RFC 4514 escaping of one attribute value. */
export function escapeDnValue(value: string): string {
  let out = value.replace(/[\\",+;<>=\0]/g, (c) => (c === '\0' ? '\\00' : `\\${c}`));
  if (out.startsWith('#') || out.startsWith(' ')) out = `\\${out}`;
  if (out.endsWith(' ')) out = `${out.slice(0, -1)}\\ `;
  return out;
}

/**
 * A comparison key: types and values lower-cased and spaces collapsed, as the caseIgnoreMatch
 * rules of cn, uid, ou, dc and AD's DN matching treat them. Type aliases (CN vs commonName vs
 * 2.5.4.3) are not unified: write DNs with the short names directories return.
 */
export function dnKey(dn: Dn): string {
  return dn
    .map((rdn) =>
      rdn
        .map((a) => `${a.type}=${escapeDnValue(a.value.toLowerCase().replace(/\s+/g, ' ').trim())}`)
        .sort()
        .join('+'),
    )
    .join(',');
}

/** The DN as text again (types lower-cased, values escaped). */
export function formatDn(dn: Dn): string {
  return dn.map((rdn) => rdn.map((a) => `${a.type}=${escapeDnValue(a.value)}`).join('+')).join(',');
}

/** True when `dn` lies strictly below `base`. */
export function isUnder(dn: Dn, base: Dn): boolean {
  return dn.length > base.length && dnKey(dn.slice(dn.length - base.length)) === dnKey(base);
}

// ---------------------------------------------------------------------------------------------
// Config

const duration = { $ref: '#/definitions/duration' };
const dn = { type: 'string', minLength: 3, maxLength: 1024, pattern: '^[^\\u0000-\\u001f]+=[^\\u0000-\\u001f]+$' };
const attribute = { type: 'string', pattern: '^[A-Za-z][A-Za-z0-9-]{0,63}$' };

/** JSON Schema (draft-07) of the `ldap:` block of a `kind: ldap` target. */
export const LDAP_TARGET_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['url', 'bindDN', 'bindPassword', 'accountBase', 'groups'],
  properties: {
    url: { type: 'string', pattern: '^ldaps?://[^/?#\\s]+/?$', description: 'ldaps://dc1.corp.example.com or ldap://host:389 (with startTls)' },
    startTls: { type: 'boolean', description: 'upgrade ldap:// with StartTLS before binding' },
    caPem: { $ref: '#/definitions/secretRef', description: 'file:/path of the PEM CA(s) that sign the directory certificate; default: the system store' },
    allowPlaintext: { type: 'boolean', description: 'permit a clear-text bind to a non-loopback host (lab only)' },
    bindDN: { ...dn, description: 'DN of the service account wogate binds as' },
    bindPassword: { $ref: '#/definitions/secretRef', description: 'its password' },
    timeout: { ...duration, description: 'deadline per LDAP operation and TLS handshake (default 10s)' },
    connectTimeout: { ...duration, description: 'deadline for the TCP/TLS connect (default: timeout)' },
    accountBase: { ...dn, description: 'the vendor OU: only accounts below it are added, listed or removed' },
    accountAttribute: { ...attribute, description: 'account names are this attribute under accountBase (uid, sAMAccountName); omit when accounts are DNs' },
    accountObjectClass: { ...attribute, description: 'only entries of this objectClass are accounts (inetOrgPerson, user)' },
    groupBase: { ...dn, description: 'parent of the groups named by cn in groups' },
    groups: {
      type: 'array',
      minItems: 1,
      maxItems: 200,
      uniqueItems: true,
      items: { type: 'string', minLength: 1, maxLength: 1024 },
      description: 'the only groups wogate manages: DNs, or cn values under groupBase',
    },
    memberAttribute: { enum: ['member', 'uniqueMember'], description: 'member (groupOfNames, AD; default) or uniqueMember (groupOfUniqueNames)' },
    placeholderMember: { ...dn, description: 'member that keeps a groupOfNames valid when its last vendor leaves' },
    adTtl: { type: 'boolean', description: 'Active Directory PAM feature: add members with a TTL that ends at validUntil' },
  },
} as const;

interface LdapBlock {
  url: string;
  startTls?: boolean;
  caPem?: string;
  allowPlaintext?: boolean;
  bindDN: string;
  bindPassword: string;
  timeout?: string;
  connectTimeout?: string;
  accountBase: string;
  accountAttribute?: string;
  accountObjectClass?: string;
  groupBase?: string;
  groups: string[];
  memberAttribute?: 'member' | 'uniqueMember';
  placeholderMember?: string;
  adTtl?: boolean;
}

/** Turns a schema-checked `ldap:` block (secrets resolved, durations as text) into LdapTarget options. */
export function ldapTargetOptions(id: string, block: Readonly<Record<string, unknown>>): LdapTargetOptions {
  const { timeout, connectTimeout, caPem: ca, ...rest } = block as unknown as LdapBlock;
  const where = (field: string): string => `target ${id}: ldap.${field}`;
  const ms = (text: string | undefined, field: string): number | undefined => {
    if (text === undefined) return undefined;
    const v = parseDuration(text, where(field));
    if (v < 100 || v > 300_000) throw new WogateError('CONFIG_INVALID', `${where(field)} must be between 100ms and 5m, got "${text}"`);
    return v;
  };
  if (ca !== undefined && !ca.includes('-----BEGIN CERTIFICATE-----')) throw new WogateError('CONFIG_INVALID', `${where('caPem')} holds no PEM certificate`);
  const timeoutMs = ms(timeout, 'timeout');
  const connectTimeoutMs = ms(connectTimeout, 'connectTimeout');
  const options: LdapTargetOptions = {
    ...rest,
    id,
    ...(ca !== undefined ? { ca } : {}),
    ...(timeoutMs !== undefined ? { timeoutMs } : {}),
    ...(connectTimeoutMs !== undefined ? { connectTimeoutMs } : {}),
  };
  checkLdapOptions(options);
  return options;
}

/** One managed group: how config and grants name it, and its DN. */
export interface ManagedGroup {
  readonly name: string;
  readonly dn: string;
  readonly parsed: Dn;
  readonly placeholder: string;
}

export interface CheckedLdapOptions {
  readonly host: string;
  readonly secure: boolean;
  readonly accountBase: Dn;
  readonly groups: readonly ManagedGroup[];
}

const LOOPBACK = /^(?:127\.\d{1,3}\.\d{1,3}\.\d{1,3}|::1|localhost)$/i;

/**
 * Everything about the options the schema cannot say, each failure naming the field. Run by the
 * options builder and again by the constructor, so a target built in code is held to the same rules.
 */
export function checkLdapOptions(o: LdapTargetOptions): CheckedLdapOptions {
  const bad = (field: string, why: string): WogateError => new WogateError('CONFIG_INVALID', `target ${o.id}: ldap.${field} ${why}`);
  const dnOf = (field: string, text: unknown): Dn => {
    const parsed = typeof text === 'string' ? parseDn(text) : undefined;
    if (!parsed) throw bad(field, `${JSON.stringify(text)} is not a distinguished name (RFC 4514, e.g. ou=vendors,dc=example,dc=com)`);
    return parsed;
  };

  let url: URL;
  try {
    url = new URL(o.url);
  } catch {
    throw bad('url', `${JSON.stringify(o.url)} is not an ldap:// or ldaps:// URL`);
  }
  if ((url.protocol !== 'ldap:' && url.protocol !== 'ldaps:') || !url.hostname || url.username || url.password || url.search || url.hash || (url.pathname !== '' && url.pathname !== '/')) {
    throw bad('url', `${JSON.stringify(o.url)} must be ldap://host[:port] or ldaps://host[:port], nothing more`);
  }
  const secure = url.protocol === 'ldaps:';
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (secure && o.startTls) throw bad('startTls', 'cannot be used with ldaps://, which is TLS from the first byte');
  if (o.ca !== undefined && !secure && !o.startTls) throw bad('caPem', 'only applies to ldaps:// or startTls: true');
  if (!secure && !o.startTls && !o.allowPlaintext && !LOOPBACK.test(host)) {
    throw bad('url', `${o.url} would send the bind password in clear text: use ldaps://, set startTls: true, or (lab only) allowPlaintext: true`);
  }
  for (const [field, v] of [['timeoutMs', o.timeoutMs], ['connectTimeoutMs', o.connectTimeoutMs]] as const) {
    if (v !== undefined && (!Number.isInteger(v) || v <= 0)) throw bad(field, `must be a positive number of milliseconds, got ${String(v)}`);
  }
  const bindDN = dnOf('bindDN', o.bindDN);
  // An empty password is an "unauthenticated bind" (RFC 4513 5.1.2): many servers accept it, as anonymous.
  if (typeof o.bindPassword !== 'string' || o.bindPassword.length === 0) throw bad('bindPassword', 'is empty; an empty password binds anonymously');
  const accountBase = dnOf('accountBase', o.accountBase);
  if (isUnder(bindDN, accountBase)) throw bad('bindDN', 'lies under accountBase: a grant could then add wogate\'s own service account to a group');
  for (const field of ['accountAttribute', 'accountObjectClass'] as const) {
    const v = o[field];
    if (v !== undefined && !/^[A-Za-z][A-Za-z0-9-]{0,63}$/.test(v)) throw bad(field, `${JSON.stringify(v)} is not an attribute name`);
  }
  const memberAttribute = o.memberAttribute ?? 'member';
  if (memberAttribute !== 'member' && memberAttribute !== 'uniqueMember') throw bad('memberAttribute', 'must be member or uniqueMember');
  if (o.adTtl && memberAttribute !== 'member') throw bad('adTtl', 'needs memberAttribute member (Active Directory groups)');
  if (o.groupBase !== undefined) dnOf('groupBase', o.groupBase);
  const placeholder = o.placeholderMember === undefined ? undefined : dnOf('placeholderMember', o.placeholderMember);
  if (placeholder && isUnder(placeholder, accountBase)) throw bad('placeholderMember', 'lies under accountBase, where it would look like a vendor');
  if (placeholder && dnKey(placeholder) === dnKey(bindDN)) throw bad('placeholderMember', 'is the service account: it would gain every managed group');
  if (!Array.isArray(o.groups) || o.groups.length === 0) throw bad('groups', 'must list at least one group: wogate only touches the groups named here');

  const seen = new Set<string>();
  const groups = o.groups.map((name, i): ManagedGroup => {
    if (typeof name !== 'string' || name.trim() !== name || name.length === 0 || hasControlChars(name)) throw bad(`groups[${i}]`, `${JSON.stringify(name)} is not a group name or DN`);
    let dnText: string;
    // A value with an unescaped '=' is a DN; anything else is a cn under groupBase.
    if (/(?:^|[^\\])=/.test(name)) {
      dnOf(`groups[${i}]`, name);
      dnText = name;
    } else {
      if (!o.groupBase) throw bad(`groups[${i}]`, `"${name}" is a name, not a DN: set ldap.groupBase to say where it lives, or write its DN`);
      dnText = `cn=${escapeDnValue(name)},${o.groupBase}`;
    }
    const parsed = dnOf(`groups[${i}]`, dnText);
    if (parsed.length < 2) throw bad(`groups[${i}]`, `"${name}" has no parent entry`);
    const key = dnKey(parsed);
    if (seen.has(key)) throw bad(`groups[${i}]`, `names ${dnText} twice`);
    seen.add(key);
    if (isUnder(parsed, accountBase) || dnKey(parsed) === dnKey(accountBase)) throw bad(`groups[${i}]`, `${dnText} lies under accountBase, among the accounts`);
    const ph = o.placeholderMember ?? `cn=wogate-placeholder,${formatDn(parsed.slice(1))}`;
    const phParsed = dnOf('placeholderMember', ph);
    if (isUnder(phParsed, accountBase)) throw bad('placeholderMember', `default ${ph} for ${dnText} lies under accountBase; set placeholderMember explicitly`);
    return { name, dn: dnText, parsed, placeholder: ph };
  });
  if (isIP(host) === 0 && !/^[A-Za-z0-9.-]+$/.test(host)) throw bad('url', `host ${JSON.stringify(host)} is not a host name or address`);
  return { host, secure, accountBase, groups };
}
