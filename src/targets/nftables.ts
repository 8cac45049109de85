import { spawn } from 'node:child_process';
import { isIPv6 } from 'node:net';
import type { Resource, TargetRef } from '../domain/index.js';
import { TargetError, type CallContext, type Target, type TargetEntry, type TargetGrant } from './target.js';
import { show } from './text.js';

/**
 * nftables target: one set of `vendor . asset . protocol . port` elements, each carrying its own
 * timeout, so the kernel ends access at validUntil even when wogate is down. The protocol is part
 * of the key (`inet_proto`) so one set serves tcp and udp, and a tcp grant never opens udp.
 * Timeouts are rendered to the millisecond rather than rounded up to seconds, so access does not
 * outlive validUntil by a rounding.
 *
 * The chain matches the set on every packet a vendor sends, and lets replies back only while the
 * same element exists. There is no blanket `ct state established accept` for vendor traffic: a
 * revoke or an expiry therefore cuts sessions that are already open, in both directions, without
 * needing conntrack tooling. Nothing else from or to the vendor sources passes (no ICMP either:
 * a "related" ICMP error stays allowed as long as the conntrack entry lives, days after a revoke,
 * and can carry data). Traffic from other sources is left to the chain policy.
 */
export interface NftablesTargetOptions {
  readonly id: string;
  /** A table of wogate's own, e.g. 'wogate'. It is never deleted, so elements outlive wogate. */
  readonly table: string;
  readonly family?: 'inet';
  /** Default 'vendor_access'. */
  readonly set?: string;
  /** Default 'forward'. */
  readonly chain?: string;
  /**
   * Default 'forward' (wogate's host routes vendor traffic). With 'input' the vendor's packets to
   * this host are gated, but replies leave through the output hook and are not.
   */
  readonly hook?: 'forward' | 'input';
  /**
   * What the chain does with traffic no rule decides. Default 'accept': wogate governs only
   * vendorSources and managedPorts. 'drop' makes this chain the firewall for the whole hook.
   */
  readonly policy?: 'drop' | 'accept';
  /** CIDRs vendors connect from (e.g. the VPN pool): default-deny both ways except granted flows. IPv6 pools are denied outright. */
  readonly vendorSources?: readonly string[];
  /** Ports nobody may reach without a grant, whatever the source. */
  readonly managedPorts?: readonly { readonly protocol: 'tcp' | 'udp'; readonly port: number }[];
  /** Path to nft; default 'nft'. */
  readonly nft?: string;
  /** Run nft as `ip netns exec <netns> nft` (a host managing a namespace; tests). */
  readonly netns?: string;
  /** Deadline per nft call; default 10000. */
  readonly timeoutMs?: number;
}

const NAME = /^[A-Za-z][A-Za-z0-9_]{0,63}$/;
const NETNS = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;
const OCTET = '(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
/** Dotted quad, no leading zeros: nothing an nft parser or inet_pton could read two ways. */
const IPV4 = new RegExp(`^${OCTET}(?:\\.${OCTET}){3}$`);
/** isIPv6 alone accepts zone ids ("fe80::1%eth0"), which would reach the nft script verbatim. */
const IPV6_CHARS = /^[0-9A-Fa-f:.]+$/;
/** nft rejects longer timeouts ("value too large"); no work order should need more. */
const MAX_TIMEOUT_MS = 3650 * 24 * 3600 * 1000;
const MAX_STDOUT = 64 * 1024 * 1024;
/** nft's own wording when the table or set is gone; `ip netns exec` says it differently. */
const NFT_ENOENT = /^(?:\S+:\d+:[\d-]+: )?Error: (?:Could not process rule: )?No such file or directory/m;

type Reason = 'invalid_input' | 'ipv6_unsupported' | 'window_too_long' | 'config' | 'nft_failed' | 'nft_output';

function fail(id: string, reason: Reason, message: string, retryable = false, details: Record<string, unknown> = {}): TargetError {
  return new TargetError(id, message, retryable, { reason, ...details });
}

function ipv4(id: string, what: string, value: unknown): string {
  if (typeof value === 'string' && IPV4.test(value)) return value;
  if (typeof value === 'string' && IPV6_CHARS.test(value) && isIPv6(value)) {
    throw fail(id, 'ipv6_unsupported', `${what} ${show(value)} is IPv6; the nftables target handles IPv4 only`);
  }
  throw fail(id, 'invalid_input', `${what} ${show(value)} is not a dotted-quad IPv4 address`);
}

function port(id: string, what: string, value: unknown): number {
  if (typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= 65535) return value;
  throw fail(id, 'invalid_input', `${what} ${show(value)} is not a port between 1 and 65535`);
}

function protocol(id: string, value: unknown): 'tcp' | 'udp' {
  if (value === 'tcp' || value === 'udp') return value;
  throw fail(id, 'invalid_input', `protocol ${show(value)} is neither tcp nor udp`);
}

/** Returns the CIDR with host bits cleared (IPv4) or as given (IPv6, after the same strict check). */
function cidr(id: string, value: unknown): { v: 4 | 6; text: string } {
  const [addr, bits, extra] = typeof value === 'string' ? value.split('/') : [];
  if (addr !== undefined && extra === undefined && IPV4.test(addr) && (bits === undefined || /^(?:[12]?\d|3[0-2])$/.test(bits))) {
    const len = bits === undefined ? 32 : Number(bits);
    const n = addr.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
    const net = len === 0 ? 0 : (n & (~0 << (32 - len))) >>> 0;
    return { v: 4, text: `${[24, 16, 8, 0].map((s) => (net >>> s) & 255).join('.')}/${len}` };
  }
  if (addr !== undefined && extra === undefined && IPV6_CHARS.test(addr) && isIPv6(addr) && (bits === undefined || /^(?:\d\d?|1[01]\d|12[0-8])$/.test(bits))) {
    return { v: 6, text: `${addr}/${bits ?? 128}` };
  }
  throw fail(id, 'config', `vendorSources entry ${show(value)} is not an IPv4 or IPv6 CIDR`);
}

/** nft reads `NsNms`; one big `Nms` overflows its parser. Never `0s`: that means "no timeout". */
function nftDuration(ms: number): string {
  const s = Math.floor(ms / 1000);
  const rest = ms % 1000;
  if (s === 0) return `${rest}ms`;
  return rest === 0 ? `${s}s` : `${s}s${rest}ms`;
}

export class NftablesTarget implements Target {
  readonly kind = 'nftables';
  readonly nativeExpiry = true;
  readonly resourceKinds = ['network'] as const;
  readonly id: string;
  private readonly where: string;
  private readonly setArgs: readonly string[];
  private readonly setRef: string;
  private readonly script: string;
  private readonly command: readonly string[];
  private readonly timeoutMs: number;

  constructor(o: NftablesTargetOptions) {
    this.id = o.id;
    const names = { table: o.table, set: o.set ?? 'vendor_access', chain: o.chain ?? 'forward' };
    for (const [what, name] of Object.entries(names)) {
      if (!NAME.test(name)) throw fail(o.id, 'config', `${what} name ${show(name)} must match ${String(NAME)}`);
    }
    if ((o.family ?? 'inet') !== 'inet') throw fail(o.id, 'config', `family ${show(o.family)} is not supported; use inet`);
    const hook = o.hook ?? 'forward';
    const policy = o.policy ?? 'accept';
    if (hook !== 'forward' && hook !== 'input') throw fail(o.id, 'config', `hook ${show(hook)} must be forward or input`);
    if (policy !== 'accept' && policy !== 'drop') throw fail(o.id, 'config', `policy ${show(policy)} must be accept or drop`);
    if (o.netns !== undefined && !NETNS.test(o.netns)) throw fail(o.id, 'config', `netns ${show(o.netns)} is not a namespace name`);
    const sources = (o.vendorSources ?? []).map((c) => cidr(o.id, c));
    const ports = (o.managedPorts ?? []).map((p) => `${protocol(o.id, p.protocol)} . ${port(o.id, 'managed port', p.port)}`);
    if (policy === 'accept' && sources.length === 0 && ports.length === 0) {
      // Every packet would be accepted anyway, and a grant would change nothing: refuse to pretend.
      throw fail(o.id, 'config', 'with policy accept, set vendorSources and/or managedPorts, otherwise this target denies nothing');
    }

    const { table, set, chain } = names;
    this.where = `inet ${table}`;
    this.setArgs = ['inet', table, set];
    this.setRef = this.setArgs.join(' ');
    this.timeoutMs = o.timeoutMs ?? 10_000;
    if (!Number.isInteger(this.timeoutMs) || this.timeoutMs <= 0) throw fail(o.id, 'config', `timeoutMs ${show(o.timeoutMs)} must be a positive integer`);
    const nft = o.nft ?? 'nft';
    this.command = o.netns === undefined ? [nft] : ['ip', 'netns', 'exec', o.netns, nft];

    const rule = (r: string): string => `add rule ${this.where} ${chain} ${r}`;
    const v4 = sources.filter((s) => s.v === 4).map((s) => s.text);
    const v6 = sources.filter((s) => s.v === 6).map((s) => s.text);
    this.script = [
      `add table ${this.where}`,
      // `add set` keeps an existing set and its elements: grants survive a restart.
      `add set ${this.setRef} { type ipv4_addr . ipv4_addr . inet_proto . inet_service; flags timeout; }`,
      `add chain ${this.where} ${chain} { type filter hook ${hook} priority 0; policy ${policy}; }`,
      // Flush and re-add in the same transaction: no restart ever sees an empty or doubled chain.
      `flush chain ${this.where} ${chain}`,
      rule(`ip saddr . ip daddr . meta l4proto . th dport @${set} accept`),
      rule(`ct state established ct direction reply ip daddr . ip saddr . meta l4proto . th sport @${set} accept`),
      ...(v4.length ? [rule(`ip saddr { ${v4.join(', ')} } drop`), rule(`ip daddr { ${v4.join(', ')} } drop`)] : []),
      ...(v6.length ? [rule(`ip6 saddr { ${v6.join(', ')} } drop`), rule(`ip6 daddr { ${v6.join(', ')} } drop`)] : []),
      ...(ports.length ? [rule(`meta l4proto . th dport { ${ports.join(', ')} } drop`)] : []),
      '',
    ].join('\n');
  }

  /** The nft script init() applies; shown by tools and tests. */
  get ruleset(): string {
    return this.script;
  }

  async init(ctx: CallContext): Promise<void> {
    await this.nft(['-f', '-'], ctx, this.script);
    ctx.log.debug('nftables table ready', { table: this.where });
  }

  async provision(grant: TargetGrant, ctx: CallContext): Promise<TargetRef> {
    const element = this.element(grant.resource);
    const remaining = grant.validUntil.getTime() - ctx.now.getTime();
    if (!Number.isFinite(remaining)) throw fail(this.id, 'invalid_input', `validUntil ${show(grant.validUntil)} is not a date`);
    if (remaining > MAX_TIMEOUT_MS) {
      throw fail(this.id, 'window_too_long', `window ends ${grant.validUntil.toISOString()}, more than 3650 days away; nft cannot hold that timeout`);
    }
    if (remaining <= 0) {
      // The window is over: the state to reach is "no element" (an update may have shortened an
      // open window into the past), so remove rather than refuse and leave the old element.
      await this.remove(element, ctx);
      ctx.log.debug('nftables window already over; element absent', { element });
      return { element };
    }
    // A timeout can't be changed in place: add (no-op if present), delete, add with the new
    // timeout, all in one transaction so the flow never sees a gap.
    await this.apply(
      [
        `add element ${this.setRef} { ${element} }`,
        `delete element ${this.setRef} { ${element} }`,
        `add element ${this.setRef} { ${element} timeout ${nftDuration(remaining)} }`,
      ],
      ctx,
    );
    ctx.log.debug('nftables element added', { element, timeoutMs: remaining });
    return { element };
  }

  update(grant: TargetGrant, _ref: TargetRef | undefined, ctx: CallContext): Promise<TargetRef> {
    // The resource is part of the grant key, so the element is the same; only the timeout moves.
    return this.provision(grant, ctx);
  }

  async revoke(grant: TargetGrant, _ref: TargetRef | undefined, ctx: CallContext): Promise<void> {
    let element: string;
    try {
      element = this.element(grant.resource);
    } catch (e) {
      // provision() rejects the same input before nft, so no such element can exist: done.
      ctx.log.warn('nftables revoke of a resource this target cannot hold; nothing to remove', { error: (e as Error).message });
      return;
    }
    await this.remove(element, ctx);
    ctx.log.debug('nftables element removed', { element });
  }

  async list(ctx: CallContext): Promise<TargetEntry[]> {
    const out = await this.withTable(() => this.nft(['-j', 'list', 'set', ...this.setArgs], ctx), ctx);
    return this.parseList(out, ctx.now);
  }

  async close(): Promise<void> {}

  private element(r: Resource): string {
    if (r.kind !== 'network') throw fail(this.id, 'invalid_input', `resource kind ${show(r.kind)} is not network: nftables only opens network flows`);
    const src = ipv4(this.id, 'sourceAddress', r.sourceAddress);
    const dst = ipv4(this.id, 'address', r.address);
    return `${src} . ${dst} . ${protocol(this.id, r.protocol)} . ${port(this.id, 'port', r.port)}`;
  }

  /** Deleting a missing element fails in nft 1.0.6 (no `destroy` before 1.0.8); adding it first makes the delete always succeed. */
  private remove(element: string, ctx: CallContext): Promise<void> {
    return this.apply([`add element ${this.setRef} { ${element} }`, `delete element ${this.setRef} { ${element} }`], ctx);
  }

  private async apply(lines: string[], ctx: CallContext): Promise<void> {
    await this.withTable(() => this.nft(['-f', '-'], ctx, `${lines.join('\n')}\n`), ctx);
  }

  /**
   * The element scripts never fail with ENOENT on the element itself, so ENOENT means the table or
   * set is gone (`nft flush ruleset`, a firewall reload). Then the deny rules are gone too: put
   * everything back before carrying on, rather than leave vendor traffic ungoverned.
   */
  private async withTable<T>(call: () => Promise<T>, ctx: CallContext): Promise<T> {
    try {
      return await call();
    } catch (e) {
      if (!(e instanceof TargetError) || !NFT_ENOENT.test(String(e.details?.['stderr'] ?? ''))) throw e;
      ctx.log.warn('nftables table or set was removed outside wogate; recreating it', { table: this.where });
      await this.init(ctx);
      return call();
    }
  }

  private parseList(out: string, now: Date): TargetEntry[] {
    const bad = (why: string): TargetError => fail(this.id, 'nft_output', `unexpected nft -j output: ${why}`, true);
    let doc: unknown;
    try {
      doc = JSON.parse(out);
    } catch {
      throw bad('not JSON');
    }
    const items = (doc as { nftables?: unknown }).nftables;
    if (!Array.isArray(items)) throw bad('no nftables array');
    const set = items.map((i: { set?: { elem?: unknown } }) => i.set).find((s) => s !== undefined);
    if (set === undefined) throw bad('no set object');
    if (set.elem === undefined) return [];
    if (!Array.isArray(set.elem)) throw bad('elem is not an array');
    return set.elem.map((raw: unknown): TargetEntry => {
      // Elements with a timeout come wrapped as {elem: {val, timeout, expires}}; plain ones are the value itself.
      const wrapped = (raw as { elem?: { val?: unknown; expires?: unknown } }).elem;
      const val = (wrapped ? wrapped.val : raw) as { concat?: unknown } | undefined;
      if (!Array.isArray(val?.concat) || val.concat.length !== 4) throw bad(`element ${show(raw)} is not a 4-part concatenation`);
      const element = val.concat.map(String).join(' . ');
      const [src, dst, proto, port] = val.concat as unknown[];
      const resource: Resource | undefined =
        typeof src === 'string' && typeof dst === 'string' && (proto === 'tcp' || proto === 'udp') && typeof port === 'number'
          ? { kind: 'network', sourceAddress: src, address: dst, port, protocol: proto }
          : undefined;
      // nft -j reports whole seconds, rounded down: expiresAt may be up to 1 s early, never late.
      const expires = wrapped?.expires;
      return {
        ref: { element },
        ...(resource ? { resource } : {}),
        ...(typeof expires === 'number' ? { expiresAt: new Date(now.getTime() + expires * 1000) } : {}),
      };
    });
  }

  private nft(args: string[], ctx: CallContext, input?: string): Promise<string> {
    const [cmd = 'nft', ...pre] = this.command;
    const argv = [...pre, ...args];
    return new Promise((resolve, reject) => {
      let settled = false;
      const done = (e: TargetError | undefined, out = ''): void => {
        if (settled) return;
        settled = true;
        if (e) reject(e);
        else resolve(out);
      };
      const child = spawn(cmd, argv, {
        stdio: ['pipe', 'pipe', 'pipe'],
        timeout: this.timeoutMs,
        killSignal: 'SIGKILL',
        ...(ctx.signal ? { signal: ctx.signal } : {}),
      });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let outBytes = 0;
      child.stdout.on('data', (b: Buffer) => {
        outBytes += b.length;
        if (outBytes > MAX_STDOUT) child.kill('SIGKILL');
        else out.push(b);
      });
      child.stderr.on('data', (b: Buffer) => err.push(b));
      child.stdin.on('error', () => {}); // nft may exit before reading; its exit status tells why
      child.on('error', (e: NodeJS.ErrnoException) => {
        // A missing binary or namespace tool is configuration; retrying won't install it.
        const missing = e.code === 'ENOENT' || e.code === 'EACCES';
        done(fail(this.id, 'nft_failed', `cannot run ${cmd}: ${e.message}`, !missing, { command: [cmd, ...argv] }));
      });
      child.on('close', (code, signal) => {
        const stderr = Buffer.concat(err).toString('utf8').slice(0, 8192);
        if (code === 0) return done(undefined, Buffer.concat(out).toString('utf8'));
        const what = signal
          ? `killed by ${signal} (timeout ${this.timeoutMs} ms or output over ${MAX_STDOUT} bytes)`
          : stderr.trim() || `exit status ${String(code)}`;
        // No CAP_NET_ADMIN, or no nft inside the namespace (`ip netns exec` reports it): every retry fails the same way.
        const hopeless = /Operation not permitted|^exec of ".*" failed/m.test(stderr);
        done(fail(this.id, 'nft_failed', `nft ${args.join(' ')} failed: ${what}`, !hopeless, { stderr, exitCode: code, command: [cmd, ...argv], ...(input ? { script: input } : {}) }));
      });
      child.stdin.end(input ?? '');
    });
  }
}
