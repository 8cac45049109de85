import { isIPv6 } from 'node:net';
import { XMLParser } from 'fast-xml-parser';
import { WogateError, type Resource, type TargetRef } from '../domain/index.js';
import { PANOS_MAX_TAG_TIMEOUT_S, PANOS_TAG_PATTERN } from './panos-config.js';
import { RestClient, type RestResponse } from './rest.js';
import { TargetError, type CallContext, type Target, type TargetEntry, type TargetGrant } from './target.js';
import { show } from './text.js';

export { PANOS_TARGET_SCHEMA, panosTargetOptions } from './panos-config.js';

/**
 * PAN-OS target: a grant registers the technician's address with the tag of the asset flow it
 * opens (User-ID API, `type=user-id`), with a tag timeout ending at validUntil, so the firewall
 * drops the address from the dynamic address group at the end even if wogate is down. The admin
 * owns the address groups and the security rules; wogate only registers and unregisters tags,
 * and only the tags named in `scopes`. Registrations are not persistent (`persistent="0"`): a
 * reboot clears them and drift reconciliation registers the live ones again.
 */
export interface PanosScope {
  readonly address: string;
  readonly port: number;
  readonly protocol: 'tcp' | 'udp';
  /** The tag the flow's dynamic address group matches; unique across scopes. */
  readonly tag: string;
}

export interface PanosTargetOptions {
  readonly id: string;
  /** Management origin of the firewall, or of Panorama with `target`; `/api/` is appended. */
  readonly baseUrl: string;
  /** A static API key; or `username` and `password`, for which wogate generates one (and again if it is refused). */
  readonly apiKey?: string;
  readonly username?: string;
  readonly password?: string;
  readonly vsys?: string;
  /** Serial of the managed firewall when baseUrl is Panorama. */
  readonly target?: string;
  readonly caPem?: string;
  /** Deadline of one call; default 10000. */
  readonly timeoutMs?: number;
  /** Default 16 MiB: the whole registered-ip table comes back in one answer. */
  readonly maxResponseBytes?: number;
  readonly scopes: readonly PanosScope[];
  /** Every scope tag starts with it; default 'wogate-'. */
  readonly tagPrefix?: string;
  /** Longest timeout sent; default and maximum 2592000 (30 days). */
  readonly maxTagTimeoutSeconds?: number;
}

type Node = Record<string, unknown>;
type Reason = 'invalid_input' | 'unmapped' | 'unmanaged_tag' | 'panos_error' | 'uid_entry_error' | 'timeout_not_refreshed' | 'forbidden';

const OCTET = '(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
const IPV4_TEXT = `${OCTET}(?:\\.${OCTET}){3}`;
/** Dotted quad, no leading zeros: the only technician address a grant may carry. */
const IPV4 = new RegExp(`^${IPV4_TEXT}$`);
/** What someone else may have registered by hand with a wogate tag (10.0+: ranges and CIDRs), for drift removal. */
const REGISTERED_V4 = new RegExp(`^${IPV4_TEXT}(?:/(?:3[0-2]|[12]?\\d)|-${IPV4_TEXT})?$`);
const IPV6_CHARS = /^[0-9A-Fa-f:.]+(?:\/(?:12[0-8]|1[01]\d|\d\d?))?$/;
const TAG = new RegExp(PANOS_TAG_PATTERN);

const LIST_CMD = '<show><object><registered-ip><all/></registered-ip></object></show>';
/** Per-entry answers that mean the state is already what was asked [V: pan-os-python ignores exactly these]. */
const ALREADY_REGISTERED = /already exists, ignore/i;
const NOT_REGISTERED = /does not exist, ignore unreg/i;
/** Wording of a refusal that a later attempt may not meet; anything else is left to an operator. [I] */
const TRANSIENT = /\b(?:busy|try again|timed out|temporar(?:y|ily)|not ready|in progress|unavailable|too many)/i;
/** XML API error codes: 2-5, 11 and 21 internal errors, 22 session timed out [V: "PAN-OS XML API Error Codes"]. */
const RETRYABLE_CODES = new Set(['2', '3', '4', '5', '11', '21', '22']);
const INVALID_CREDENTIAL = /invalid credential/i;

const PARSER = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  parseTagValue: false,
  parseAttributeValue: false,
  // Entities are left as written: nothing wogate compares (addresses, its own tags) can hold one.
  processEntities: false,
  isArray: (name) => name === 'entry' || name === 'member' || name === 'line',
});

function fail(id: string, reason: Reason, message: string, retryable = false, details: Record<string, unknown> = {}): TargetError {
  return new TargetError(id, message, retryable, { reason, ...details });
}

function xmlEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

function obj(v: unknown): Node | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Node) : undefined;
}

function list(v: unknown): unknown[] {
  return v === undefined || v === '' ? [] : Array.isArray(v) ? v : [v];
}

function textOf(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  const t = obj(v)?.['#text'];
  return typeof t === 'string' ? t : undefined;
}

/** The words of an error answer (msg, line, result/msg), without the uid-response it may carry. */
function words(node: unknown, out: string[] = []): string[] {
  if (typeof node === 'string') {
    if (node.trim() !== '') out.push(node.trim());
  } else if (Array.isArray(node)) {
    for (const n of node) words(n, out);
  } else {
    for (const [k, v] of Object.entries(obj(node) ?? {})) if (k !== 'uid-response' && !k.startsWith('@_')) words(v, out);
  }
  return out;
}

/** `<register>`/`<unregister>` sections, one entry per address, all tags of that address in it. */
function section(kind: 'register' | 'unregister', pairs: readonly { ip: string; tag: string }[], timeout?: number): string {
  const byIp = new Map<string, string[]>();
  for (const p of pairs) byIp.set(p.ip, [...(byIp.get(p.ip) ?? []), p.tag]);
  const entries = [...byIp].map(([ip, tags]) => {
    const members = tags.map((t) => `<member${timeout !== undefined ? ` timeout="${timeout}"` : ''}>${xmlEscape(t)}</member>`).join('');
    return `<entry ip="${xmlEscape(ip)}"${kind === 'register' ? ' persistent="0"' : ''}><tag>${members}</tag></entry>`;
  });
  return `<${kind}>${entries.join('')}</${kind}>`;
}

interface Answer {
  readonly res: RestResponse;
  readonly ok: boolean;
  readonly code?: string;
  readonly root: Node;
}

export class PanosTarget implements Target {
  readonly kind = 'panos';
  readonly nativeExpiry = true;
  readonly resourceKinds = ['network'] as const;
  readonly id: string;
  private readonly client: RestClient;
  private readonly byFlow = new Map<string, PanosScope>();
  private readonly byTag = new Map<string, PanosScope>();
  private readonly tagPrefix: string;
  private readonly maxTimeout: number;
  private readonly where: Readonly<Record<string, string>>;
  private readonly staticKey: string | undefined;
  private readonly login: { readonly user: string; readonly password: string } | undefined;
  private key: string | undefined;
  private keying: Promise<string> | undefined;

  constructor(o: PanosTargetOptions) {
    this.id = o.id;
    const bad = (what: string): never => {
      throw new WogateError('CONFIG_INVALID', `target ${o.id}: panos.${what}`);
    };
    if ((o.apiKey === undefined) === (o.username === undefined || o.password === undefined)) bad('apiKey: give either apiKey or username and password');
    this.staticKey = o.apiKey;
    this.login = o.apiKey === undefined ? { user: o.username as string, password: o.password as string } : undefined;
    this.tagPrefix = o.tagPrefix ?? 'wogate-';
    this.maxTimeout = o.maxTagTimeoutSeconds ?? PANOS_MAX_TAG_TIMEOUT_S;
    if (!Number.isInteger(this.maxTimeout) || this.maxTimeout < 1 || this.maxTimeout > PANOS_MAX_TAG_TIMEOUT_S) bad(`maxTagTimeout must be 1 to ${PANOS_MAX_TAG_TIMEOUT_S} whole seconds`);
    if (o.scopes.length === 0) bad('scopes must list at least one scope');
    o.scopes.forEach((s, i) => {
      const flow = `${s.address}:${s.port}/${s.protocol}`;
      if (!IPV4.test(s.address) || !Number.isInteger(s.port) || s.port < 1 || s.port > 65535 || (s.protocol !== 'tcp' && s.protocol !== 'udp')) bad(`scopes[${i}] ${show(s)} is not an IPv4 address, port and tcp/udp`);
      if (!TAG.test(s.tag) || !s.tag.startsWith(this.tagPrefix)) bad(`scopes[${i}].tag ${show(s.tag)} must match ${PANOS_TAG_PATTERN} and start with "${this.tagPrefix}"`);
      if (this.byTag.has(s.tag) || this.byFlow.has(flow)) bad(`scopes[${i}] repeats a tag or a flow of another scope`);
      this.byTag.set(s.tag, s);
      this.byFlow.set(flow, s);
    });
    this.where = { ...(o.vsys !== undefined ? { vsys: o.vsys } : {}), ...(o.target !== undefined ? { target: o.target } : {}) };
    this.client = new RestClient({
      targetId: o.id,
      baseUrl: o.baseUrl,
      where: 'panos.baseUrl',
      ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}),
      maxResponseBytes: o.maxResponseBytes ?? 16 * 1024 * 1024,
      ...(o.caPem !== undefined ? { caPem: o.caPem } : {}),
      secrets: [o.apiKey, o.password].filter((s): s is string => s !== undefined),
    });
  }

  async init(ctx: CallContext): Promise<void> {
    // Reading the table proves the address, the certificate, the key and the role in one call. A
    // firewall that is merely unreachable must not keep wogate (and every other target's revokes) down.
    try {
      await this.list(ctx);
    } catch (e) {
      if (!(e instanceof TargetError) || !e.retryable) throw e;
      ctx.log.warn('panos firewall not reachable at start; calls will be retried', { target: this.id, error: e.message });
    }
  }

  async provision(grant: TargetGrant, ctx: CallContext): Promise<TargetRef> {
    const { ip, scope } = this.flow(grant.resource);
    const tag = scope.tag;
    const remainingMs = grant.validUntil.getTime() - ctx.now.getTime();
    if (!Number.isFinite(remainingMs)) throw fail(this.id, 'invalid_input', `validUntil ${show(grant.validUntil)} is not a date`);
    // Whole seconds, rounded down: the firewall never holds the tag past validUntil.
    const seconds = Math.floor(remainingMs / 1000);
    if (seconds < 1) {
      // timeout="0" would mean "never expires": the window is over, so the state to reach is "no tag".
      await this.unregister([{ ip, tag }], 'provision', ctx);
      ctx.log.debug('panos window already over; tag absent', { ip, tag });
      return { ip, tag };
    }
    const timeout = Math.min(seconds, this.maxTimeout);
    if (timeout < seconds) {
      ctx.log.warn('panos window longer than the longest tag timeout; the tag lapses early unless wogate registers it again', { ip, tag, timeout, validUntil: grant.validUntil.toISOString() });
    }
    const reg = section('register', [{ ip, tag }], timeout);
    if ((await this.userId('provision', reg, ctx)).alreadyRegistered) {
      // The firewall ignores a tag the address already has ("already exists, ignore") and keeps the
      // old timeout [I]: unregister and register in one message, so the new timeout applies with no gap.
      const swap = await this.userId('provision', section('unregister', [{ ip, tag }]) + reg, ctx);
      // Still "already exists": this firewall applied the register before the unregister [I], which
      // has now removed the tag; register it on its own.
      if (swap.alreadyRegistered && (await this.userId('provision', reg, ctx)).alreadyRegistered) {
        throw fail(this.id, 'timeout_not_refreshed', `tag ${tag} on ${ip} stays registered with its old timeout after an unregister`, true);
      }
    }
    ctx.log.debug('panos tag registered', { ip, tag, timeout });
    return { ip, tag };
  }

  update(grant: TargetGrant, _ref: TargetRef | undefined, ctx: CallContext): Promise<TargetRef> {
    // The entry is the (address, tag) pair the resource names; only its timeout moves.
    return this.provision(grant, ctx);
  }

  async revoke(grant: TargetGrant, ref: TargetRef | undefined, ctx: CallContext): Promise<void> {
    const pairs: { ip: string; tag: string }[] = [];
    try {
      const { ip, scope } = this.flow(grant.resource);
      pairs.push({ ip, tag: scope.tag });
    } catch (e) {
      ctx.log.debug('panos revoke: the grant maps to no tag today', { error: (e as Error).message });
    }
    // A scope removed or retagged since provisioning: the stored ref still names what wogate registered.
    const [rip, rtag] = [ref?.['ip'], ref?.['tag']];
    if (typeof rip === 'string' && IPV4.test(rip) && typeof rtag === 'string' && TAG.test(rtag) && rtag.startsWith(this.tagPrefix) && !pairs.some((p) => p.ip === rip && p.tag === rtag)) {
      pairs.push({ ip: rip, tag: rtag });
    }
    if (pairs.length === 0) {
      ctx.log.warn('panos revoke of a grant this target cannot have registered; nothing to remove', { grant: grant.id });
      return;
    }
    await this.unregister(pairs, 'revoke', ctx);
    ctx.log.debug('panos tag unregistered', { pairs });
  }

  /** Drift removal of an entry list() returned: only ever a tag named in scopes. */
  async revokeEntry(entry: TargetEntry, ctx: CallContext): Promise<void> {
    const { ip, tag } = entry.ref;
    if (typeof tag !== 'string' || !this.byTag.has(tag)) throw fail(this.id, 'unmanaged_tag', `tag ${show(tag)} is not one of this target's scopes; wogate leaves it alone`);
    if (typeof ip !== 'string' || !(REGISTERED_V4.test(ip) || (IPV6_CHARS.test(ip) && isIPv6(ip.split('/')[0] as string)))) {
      throw fail(this.id, 'invalid_input', `registered address ${show(ip)} is not an IPv4/IPv6 address, range or CIDR`);
    }
    await this.unregister([{ ip, tag }], 'revokeEntry', ctx);
  }

  async list(ctx: CallContext): Promise<TargetEntry[]> {
    const a = await this.call('list', { type: 'op', cmd: LIST_CMD }, ctx);
    if (!a.ok) throw this.refusal(a);
    if (a.root['result'] === undefined) throw this.client.invalid(a.res, 'success without a <result>');
    const result = obj(a.root['result']) ?? {};
    if (JSON.stringify(result['msg'] ?? '').includes('outfile')) throw this.client.invalid(a.res, 'the table was written to a file (PAN-OS before 8.0), not returned');
    const rows = list(result['entry']);
    const count = textOf(result['count']);
    // A cut-short table would read as "grants missing" and every one would be registered again.
    if (count !== undefined && Number(count) !== rows.length) throw this.client.invalid(a.res, `count says ${count} entries but ${rows.length} came back`);
    const out: TargetEntry[] = [];
    for (const row of rows) {
      const ip = obj(row)?.['@_ip'];
      if (typeof ip !== 'string' || ip === '') throw this.client.invalid(a.res, `registered-ip entry without an ip: ${show(row)}`);
      for (const m of list(obj(obj(row)?.['tag'])?.['member'])) {
        const tag = textOf(m)?.trim();
        const scope = tag === undefined ? undefined : this.byTag.get(tag);
        if (tag === undefined || scope === undefined) continue;
        // [I] `remaining` (seconds left) on the member; absent from the firewall's answer, expiresAt is unknown.
        const remaining = Number(obj(m)?.['@_remaining']);
        out.push({
          resource: { kind: 'network', sourceAddress: ip, address: scope.address, port: scope.port, protocol: scope.protocol },
          ref: { ip, tag },
          ...(obj(m)?.['@_remaining'] !== undefined && Number.isInteger(remaining) && remaining >= 0 ? { expiresAt: new Date(ctx.now.getTime() + remaining * 1000) } : {}),
        });
      }
    }
    return out;
  }

  async close(): Promise<void> {
    await this.client.close();
  }

  private flow(r: Resource): { ip: string; scope: PanosScope } {
    if (r.kind !== 'network') throw fail(this.id, 'invalid_input', `resource kind ${show(r.kind)} is not network: PAN-OS tags open network flows`);
    if (typeof r.sourceAddress !== 'string' || !IPV4.test(r.sourceAddress)) {
      throw fail(this.id, 'invalid_input', `sourceAddress ${show(r.sourceAddress)} is not a dotted-quad IPv4 address`);
    }
    const scope = this.byFlow.get(`${r.address}:${r.port}/${r.protocol}`);
    if (!scope) throw fail(this.id, 'unmapped', `no scope maps ${`${String(r.address)}:${String(r.port)}/${String(r.protocol)}`.slice(0, 80)} to a tag; add one under panos.scopes`);
    return { ip: r.sourceAddress, scope };
  }

  private async unregister(pairs: readonly { ip: string; tag: string }[], op: string, ctx: CallContext): Promise<void> {
    await this.userId(op, section('unregister', pairs), ctx);
  }

  /** Sends a uid-message; per-entry refusals become errors, except "already so" answers. */
  private async userId(op: string, payload: string, ctx: CallContext): Promise<{ alreadyRegistered: boolean }> {
    const cmd = `<uid-message><version>1.0</version><type>update</type><payload>${payload}</payload></uid-message>`;
    const a = await this.call(op, { type: 'user-id', cmd }, ctx);
    const uid = this.uidResponse(a);
    if (uid === undefined) {
      if (a.ok) throw this.client.invalid(a.res, 'success without a <uid-response>');
      throw this.refusal(a);
    }
    let alreadyRegistered = false;
    let explained = 0;
    const problems: string[] = [];
    for (const [kind, body] of Object.entries(obj(uid['payload']) ?? {})) {
      for (const e of list(obj(body)?.['entry'])) {
        const msg = String(obj(e)?.['@_message'] ?? '').trim();
        if (msg === '') continue;
        explained++;
        if (kind === 'unregister' && NOT_REGISTERED.test(msg)) continue;
        if (kind === 'register' && ALREADY_REGISTERED.test(msg)) alreadyRegistered = true;
        else problems.push(`${kind} ${String(obj(e)?.['@_ip'] ?? '?')}: ${msg}`);
      }
    }
    if (problems.length > 0) {
      const text = problems.join('; ').slice(0, 500);
      throw this.client.refused(a.res, text, TRANSIENT.test(text), { reason: 'uid_entry_error' satisfies Reason });
    }
    if (!a.ok && explained === 0) throw this.client.invalid(a.res, `status error, and the uid-response names no entry: ${words(a.root).join('; ').slice(0, 200) || 'no message'}`);
    return { alreadyRegistered };
  }

  private uidResponse(a: Answer): Node | undefined {
    const inResult = obj(obj(a.root['result'])?.['uid-response']);
    if (inResult) return inResult;
    for (const line of list(obj(a.root['msg'])?.['line'])) {
      const u = obj(obj(line)?.['uid-response']);
      if (u) return u;
    }
    return undefined;
  }

  /** `status="error"` without per-entry detail: retryable for internal-error codes and transient wording. */
  private refusal(a: Answer): TargetError {
    const text = words(a.root).join('; ').slice(0, 500) || 'no message';
    const retryable = (a.code !== undefined && RETRYABLE_CODES.has(a.code)) || TRANSIENT.test(text);
    return this.client.refused(a.res, `${a.code !== undefined ? `code ${a.code}: ` : ''}${text}`, retryable, {
      reason: 'panos_error' satisfies Reason, ...(a.code !== undefined ? { panosCode: a.code } : {}),
    });
  }

  /** One API call with the key in X-PAN-KEY (never the URL); a refused generated key is regenerated once. */
  private async call(op: string, params: Readonly<Record<string, string>>, ctx: CallContext): Promise<Answer> {
    const send = (key: string): Promise<RestResponse> =>
      this.client.request({ op, method: 'POST', path: '/api/', form: { ...params, ...this.where }, headers: { 'X-PAN-KEY': key, accept: 'application/xml' }, accept: [403] }, ctx);
    const key = await this.apiKey(ctx);
    let res = await send(key);
    if (res.status === 403 && this.login !== undefined && INVALID_CREDENTIAL.test(res.text)) {
      ctx.log.info('panos API key refused (expired or revoked); generating a new one', { target: this.id });
      if (this.key === key) this.key = undefined;
      res = await send(await this.apiKey(ctx));
      if (res.status === 403) throw fail(this.id, 'forbidden', `${res.what} answered 403 right after a new API key was generated: ${this.client.excerpt(res.text)}`, false, { op, status: 403 });
    }
    if (res.status === 403) throw fail(this.id, 'forbidden', `${res.what} answered 403 (key or admin role refused): ${this.client.excerpt(res.text)}`, false, { op, status: 403 });
    return this.answer(res);
  }

  private apiKey(ctx: CallContext): Promise<string> {
    if (this.staticKey !== undefined) return Promise.resolve(this.staticKey);
    if (this.key !== undefined) return Promise.resolve(this.key);
    this.keying ??= this.keygen(ctx)
      .then((k) => (this.key = k))
      .finally(() => {
        this.keying = undefined;
      });
    return this.keying;
  }

  private async keygen(ctx: CallContext): Promise<string> {
    const { user, password } = this.login as { user: string; password: string };
    // POST body, not the query string: a password in a URL ends up in access logs.
    const res = await this.client.request({ op: 'login', method: 'POST', path: '/api/', form: { type: 'keygen', user, password }, headers: { accept: 'application/xml' }, accept: [403] }, ctx);
    const raw = /<key>([^<]+)<\/key>/.exec(res.text)?.[1]?.trim();
    if (raw !== undefined) this.client.addSecret(raw); // before anything can quote the answer
    if (res.status === 403) throw fail(this.id, 'forbidden', `${res.what} (API key generation for ${show(user)}) answered 403: ${this.client.excerpt(res.text)}`, false, { op: 'login', status: 403 });
    const a = this.answer(res);
    if (!a.ok) {
      const e = this.refusal(a);
      throw fail(this.id, 'forbidden', `API key generation for ${show(user)} refused: ${e.message.slice(`target ${this.id}: `.length)}`, e.retryable, { op: 'login', status: res.status });
    }
    const key = textOf(obj(a.root['result'])?.['key'])?.trim();
    if (!key) throw this.client.invalid(res, 'keygen succeeded without a <key>');
    this.client.addSecret(key);
    return key;
  }

  private answer(res: RestResponse): Answer {
    if (/<!(?:DOCTYPE|ENTITY)/i.test(res.text)) throw this.client.invalid(res, 'expected a PAN-OS <response>, got a document with a DOCTYPE');
    let doc: unknown;
    try {
      doc = PARSER.parse(res.text, true);
    } catch {
      throw this.client.invalid(res, `expected XML, got ${res.text.trim() === '' ? 'an empty body' : 'something that does not parse as XML'}`);
    }
    const root = obj(obj(doc)?.['response']);
    const status = root?.['@_status'];
    if (!root || (status !== 'success' && status !== 'error')) throw this.client.invalid(res, 'expected <response status="success|error">');
    const code = root['@_code'];
    return { res, ok: status === 'success', root, ...(typeof code === 'string' ? { code } : {}) };
  }
}
