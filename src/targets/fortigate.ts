import { WogateError, type NetworkResource, type TargetRef } from '../domain/index.js';
import { checkScopes, FORTIOS_NAME_PATTERN } from './fortigate-config.js';
import { FortiOsApi, KeyedMutex } from './fortigate-api.js';
import { RestClient, seg } from './rest.js';
import { TargetError, type CallContext, type Target, type TargetEntry, type TargetGrant } from './target.js';
import { show } from './text.js';

export { FORTIGATE_TARGET_SCHEMA, fortigateTargetOptions } from './fortigate-config.js';

/**
 * FortiGate target (FortiOS REST API v2, REST admin token). The firewall admin writes the
 * policies once: each allows srcaddr = one address group to one asset service. wogate only
 * changes the members of those groups: a grant puts the technician's /32 address object
 * (`wogate-<ip>`, made by wogate and marked in its comment) into the group its flow's scope
 * names; a revoke takes it out, and deletes the object once no managed group holds it.
 *
 * A PUT of a group replaces its whole member list, so every change is a read-modify-write,
 * serialized per group (and per address object) inside this process, then read back to confirm.
 * FortiOS holds no expiry on address objects: nativeExpiry is false, and access ends when
 * wogate's scheduler revokes (drift checks catch what a missed revoke would leave).
 */
export interface FortiGateScope {
  /** The asset's IPv4 address. */
  readonly address: string;
  readonly port: number;
  readonly protocol: 'tcp' | 'udp';
  /** The address group the flow's firewall policy takes as srcaddr. */
  readonly group: string;
}

export interface FortiGateTargetOptions {
  readonly id: string;
  /** https://fw:port, without /api/v2. */
  readonly baseUrl: string;
  /** REST API admin token. */
  readonly token: string;
  /** Sent as ?vdom= on every call; omitted, the admin's default VDOM. */
  readonly vdom?: string;
  /** PEM CA for the appliance's own certificate. */
  readonly caPem?: string;
  /** Whole-call deadline; default 10000. */
  readonly timeoutMs?: number;
  readonly maxResponseBytes?: number;
  /** POST /api/v2/monitor/system/config/save after changes (cfg-save manual/revert). */
  readonly saveConfig?: boolean;
  /** Kept in a group instead of leaving it empty, which FortiOS refuses; default 'none'. */
  readonly placeholderMember?: string;
  /** Default 255. */
  readonly maxGroupMembers?: number;
  readonly scopes: readonly FortiGateScope[];
}

const ADDRESS_PREFIX = 'wogate-';
/** Starts the comment of every address object wogate makes; an object without it is never changed. */
export const FORTIGATE_MARKER = 'wogate-managed';
const COMMENT = `${FORTIGATE_MARKER}: vendor technician address, added to and removed from address groups by wogate; do not edit`;
const OCTET = '(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
const IPV4 = new RegExp(`^${OCTET}(?:\\.${OCTET}){3}$`);
const NAME = new RegExp(FORTIOS_NAME_PATTERN);
const VDOM = /^[A-Za-z0-9_.-]{1,31}$/;

type Reason =
  | 'invalid_input' | 'unmapped_flow' | 'config' | 'token_refused' | 'forbidden' | 'not_found' | 'fortios_error'
  | 'group_missing' | 'group_full' | 'not_wogate_object' | 'address_in_use' | 'not_confirmed' | 'not_managed';

interface Flow {
  readonly resource: NetworkResource;
  readonly address: string;
  readonly scope: FortiGateScope | undefined;
}

function flowText(r: { address: unknown; port: unknown; protocol: unknown }): string {
  return `${String(r.address)}:${String(r.port)}/${String(r.protocol)}`;
}

/** "10.1.2.3 255.255.255.255" (how FortiOS answers) or "10.1.2.3/32": the host, when it is exactly one. */
function hostOf(subnet: unknown): string | undefined {
  if (typeof subnet !== 'string') return undefined;
  const m = /^(\S+)(?: 255\.255\.255\.255|\/32)$/.exec(subnet.trim());
  return m?.[1] !== undefined && IPV4.test(m[1]) ? m[1] : undefined;
}

export class FortiGateTarget implements Target {
  readonly kind = 'fortigate';
  /** Address objects and group memberships have no expiry in FortiOS. */
  readonly nativeExpiry = false;
  readonly resourceKinds = ['network'] as const;
  readonly id: string;
  private readonly client: RestClient;
  private readonly token: string;
  private readonly vdom: Readonly<Record<string, string>>;
  private readonly saveConfig: boolean;
  private readonly placeholder: string;
  private readonly maxMembers: number;
  private readonly byFlow = new Map<string, FortiGateScope>();
  private readonly byGroup = new Map<string, FortiGateScope>();
  private readonly locks = new KeyedMutex();
  private readonly api: FortiOsApi;
  /** A change not yet saved (a save failed, or is still to come): the next call saves first. */
  private unsaved = false;

  constructor(o: FortiGateTargetOptions) {
    this.id = o.id;
    const bad = (field: string, problem: string): never => {
      throw new WogateError('CONFIG_INVALID', `target ${o.id}: fortigate.${field} ${problem}`);
    };
    // The token goes into a header: say what is wrong with it, never what it is.
    if (typeof o.token !== 'string' || !/^[\x21-\x7e]{8,}$/.test(o.token)) bad('token', 'must be at least 8 printable characters without spaces (value not shown)');
    if (o.vdom !== undefined && !VDOM.test(o.vdom)) bad('vdom', `${show(o.vdom)} is not a VDOM name`);
    this.placeholder = o.placeholderMember ?? 'none';
    if (!NAME.test(this.placeholder)) bad('placeholderMember', `${show(this.placeholder)} is not a FortiOS object name`);
    if (this.placeholder.startsWith(ADDRESS_PREFIX)) bad('placeholderMember', `must not start with ${ADDRESS_PREFIX}, the prefix of wogate's own objects`);
    this.maxMembers = o.maxGroupMembers ?? 255;
    if (!Number.isInteger(this.maxMembers) || this.maxMembers < 2) bad('maxGroupMembers', 'must be an integer of at least 2');
    const timeoutMs = o.timeoutMs ?? 10_000;
    if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) bad('timeout', 'must be a positive number of milliseconds');
    if (!Array.isArray(o.scopes) || o.scopes.length === 0) bad('scopes', 'must list at least one { address, port, protocol, group }');
    o.scopes.forEach((s, i) => {
      if (!IPV4.test(s.address)) bad(`scopes[${i}].address`, `${show(s.address)} is not a dotted-quad IPv4 address`);
      if (!Number.isInteger(s.port) || s.port < 1 || s.port > 65535) bad(`scopes[${i}].port`, `${show(s.port)} is not a port between 1 and 65535`);
      if (s.protocol !== 'tcp' && s.protocol !== 'udp') bad(`scopes[${i}].protocol`, `${show(s.protocol)} is neither tcp nor udp`);
      if (!NAME.test(s.group)) bad(`scopes[${i}].group`, `${show(s.group)} is not a FortiOS address group name`);
      if (s.group.startsWith(ADDRESS_PREFIX) || s.group === this.placeholder) bad(`scopes[${i}].group`, `${show(s.group)} collides with wogate's address names or the placeholder`);
    });
    checkScopes(o.id, o.scopes);
    for (const s of o.scopes) {
      this.byFlow.set(flowText(s), s);
      this.byGroup.set(s.group, s);
    }
    this.token = o.token;
    this.vdom = o.vdom !== undefined ? { vdom: o.vdom } : {};
    this.saveConfig = o.saveConfig ?? false;
    this.client = new RestClient({
      targetId: o.id, baseUrl: o.baseUrl, where: 'fortigate.baseUrl', timeoutMs, secrets: [o.token],
      ...(o.maxResponseBytes !== undefined ? { maxResponseBytes: o.maxResponseBytes } : {}),
      ...(o.caPem !== undefined ? { caPem: o.caPem } : {}),
    });
    this.api = new FortiOsApi(o.id, this.client, o.token, this.vdom, this.saveConfig);
  }

  /** Checks the token, the VDOM, and that every managed group and the placeholder exist: a deployment error otherwise. */
  async init(ctx: CallContext): Promise<void> {
    const groups = await this.allGroups('init', ctx);
    const missing = [...this.byGroup.keys()].filter((g) => !groups.has(g));
    if (missing.length > 0) {
      throw this.fail('group_missing', `address group(s) ${missing.join(', ')} do not exist${this.api.inVdom()}; create each with member ${this.placeholder} and a policy using it as srcaddr`, false, { groups: missing });
    }
    const placeholder = await this.api.find({ op: 'init', method: 'GET', path: `/cmdb/firewall/address/${seg(this.placeholder)}` }, ctx);
    if (placeholder === undefined) {
      throw this.fail('config', `placeholder address ${this.placeholder} does not exist${this.api.inVdom()}; wogate needs it to keep a group from becoming empty`, false);
    }
    ctx.log.debug('fortigate groups ready', { target: this.id, groups: [...this.byGroup.keys()] });
  }

  provision(grant: TargetGrant, ctx: CallContext): Promise<TargetRef> {
    return this.apply(grant, undefined, ctx);
  }

  update(grant: TargetGrant, ref: TargetRef | undefined, ctx: CallContext): Promise<TargetRef> {
    // Nothing on the FortiGate carries the window: the member stays until wogate revokes it.
    return this.apply(grant, ref, ctx);
  }

  /** Member of the scope's group; out of the group in `ref` if the scope has moved since. */
  private async apply(grant: TargetGrant, prior: TargetRef | undefined, ctx: CallContext): Promise<TargetRef> {
    const flow = this.flow(grant);
    if (flow.scope === undefined) {
      throw this.fail('unmapped_flow', `no scope maps ${flowText(flow.resource)} to an address group; add { address: ${flow.resource.address}, port: ${flow.resource.port}, protocol: ${flow.resource.protocol}, group: ... } under fortigate.scopes`, false, { flow: flowText(flow.resource) });
    }
    const scope = flow.scope;
    const ref: TargetRef = { group: scope.group, address: flow.address };
    if (!(grant.validUntil.getTime() > ctx.now.getTime())) {
      // The window is over (an update can shorten it into the past): the state to reach is "absent".
      await this.revoke(grant, prior, ctx);
      return ref;
    }
    const old = this.priorGroup(prior, flow.address);
    await this.locks.run(`address:${flow.address}`, async () => {
      await this.ensureAddress(flow.address, flow.resource.sourceAddress, ctx);
      await this.locks.run(`group:${scope.group}`, () => this.changeGroup(scope.group, flow.address, 'add', 'provision', ctx));
      if (old !== undefined && old !== scope.group) await this.locks.run(`group:${old}`, () => this.changeGroup(old, flow.address, 'remove', 'update', ctx));
    });
    await this.persist(ctx);
    ctx.log.debug('fortigate member present', { target: this.id, group: scope.group, address: flow.address });
    return ref;
  }

  async revoke(grant: TargetGrant, ref: TargetRef | undefined, ctx: CallContext): Promise<void> {
    if (grant.resource.kind !== 'network') return;
    let flow: Flow;
    try {
      flow = this.flow(grant);
    } catch (e) {
      // provision() refuses the same input before any call, so nothing of it can exist here.
      ctx.log.warn('fortigate revoke of a resource this target cannot hold; nothing to remove', { target: this.id, error: (e as Error).message });
      return;
    }
    // The stored ref names the group the member went into, even if the scope changed since.
    const groups = new Set<string>();
    if (flow.scope) groups.add(flow.scope.group);
    const old = this.priorGroup(ref, flow.address);
    if (old !== undefined) groups.add(old);
    await this.removeAddressFrom(flow.address, [...groups], ctx, () => {
      throw this.fail('unmapped_flow', `no scope maps ${flowText(flow.resource)} and the grant has no stored group, yet address object ${flow.address} exists: remove it from its group by hand, or restore the scope`, false, { flow: flowText(flow.resource) });
    });
  }

  async list(ctx: CallContext): Promise<TargetEntry[]> {
    const groups = await this.allGroups('list', ctx);
    const mine = await this.wogateAddresses(ctx);
    const entries: TargetEntry[] = [];
    for (const [name, scope] of this.byGroup) {
      const members = groups.get(name);
      if (members === undefined) {
        ctx.log.warn('fortigate managed address group is missing', { target: this.id, group: name });
        continue;
      }
      for (const member of members) {
        if (member === this.placeholder) continue;
        const host = mine.get(member);
        if (host !== undefined && member === ADDRESS_PREFIX + host) {
          const resource: NetworkResource = { kind: 'network', sourceAddress: host, address: scope.address, port: scope.port, protocol: scope.protocol };
          entries.push({ resource, ref: { group: name, address: member } });
        } else {
          // Put there by hand (or an object wogate did not make): access drift must see.
          entries.push({ ref: { group: name, member } });
        }
      }
    }
    return entries;
  }

  /**
   * Removes an entry list() reported: a member someone added by hand leaves the group (its
   * object is not wogate's, so it is never deleted); a wogate object leaves it too and is
   * deleted once no managed group holds it. Only managed groups are ever touched.
   */
  async revokeEntry(entry: TargetEntry, ctx: CallContext): Promise<void> {
    const group = entry.ref['group'];
    if (typeof group !== 'string' || !this.byGroup.has(group)) {
      throw this.fail('not_managed', `entry ${show(entry.ref)} is not in an address group this target manages; not touched`, false);
    }
    const address = entry.ref['address'];
    if (typeof address === 'string' && address.startsWith(ADDRESS_PREFIX) && IPV4.test(address.slice(ADDRESS_PREFIX.length))) {
      await this.removeAddressFrom(address, [group], ctx, () => undefined);
      return;
    }
    const member = entry.ref['member'];
    if (typeof member !== 'string' || member === '' || member === this.placeholder) {
      throw this.fail('invalid_input', `entry ${show(entry.ref)} names no member wogate may remove`, false);
    }
    await this.locks.run(`group:${group}`, () => this.changeGroup(group, member, 'remove', 'revoke-entry', ctx));
    await this.persist(ctx);
    ctx.log.info('fortigate hand-added member removed', { target: this.id, group, member });
  }

  async close(): Promise<void> {
    await this.client.close();
  }

  private fail(reason: Reason, message: string, retryable: boolean, details: Record<string, unknown> = {}): TargetError {
    return new TargetError(this.id, message, retryable, { reason, ...details });
  }

  /** The group a stored ref put `address` into, if it is one of wogate's refs for that address. */
  private priorGroup(ref: TargetRef | undefined, address: string): string | undefined {
    const g = ref?.['group'];
    return typeof g === 'string' && ref?.['address'] === address && NAME.test(g) ? g : undefined;
  }

  private flow(grant: TargetGrant): Flow {
    const r = grant.resource;
    if (r.kind !== 'network') throw this.fail('invalid_input', `resource kind ${show(r.kind)} is not network: a FortiGate address group opens network flows only`, false);
    if (!IPV4.test(r.sourceAddress)) throw this.fail('invalid_input', `sourceAddress ${show(r.sourceAddress)} is not a dotted-quad IPv4 address (firewall/address holds IPv4 only)`, false);
    return { resource: r, address: ADDRESS_PREFIX + r.sourceAddress, scope: this.byFlow.get(flowText(r)) };
  }

  /** Takes `address` out of `groups`, then deletes the object once no managed group holds it. */
  private async removeAddressFrom(address: string, groups: readonly string[], ctx: CallContext, noGroup: () => void): Promise<void> {
    await this.locks.run(`address:${address}`, async () => {
      const found = await this.api.find({ op: 'revoke', method: 'GET', path: `/cmdb/firewall/address/${seg(address)}` }, ctx);
      // No object, so no group can hold it (FortiOS refuses members that don't exist).
      if (found === undefined) return;
      const object = this.api.first(found, `address ${address}`);
      if (groups.length === 0) noGroup();
      for (const g of groups) await this.locks.run(`group:${g}`, () => this.changeGroup(g, address, 'remove', 'revoke', ctx));
      await this.deleteIfUnused(address, object, ctx);
    });
    await this.persist(ctx);
    ctx.log.debug('fortigate member absent', { target: this.id, groups, address });
  }

  /** Creates the /32 object, or checks (and repairs) the one wogate made before. */
  private async ensureAddress(name: string, host: string, ctx: CallContext): Promise<void> {
    const path = `/cmdb/firewall/address/${seg(name)}`;
    const want = { name, type: 'ipmask', subnet: `${host} 255.255.255.255`, comment: COMMENT };
    let found = await this.api.find({ op: 'provision', method: 'GET', path }, ctx);
    if (found === undefined) {
      try {
        await this.api.call({ op: 'provision', method: 'POST', path: '/cmdb/firewall/address', json: want }, ctx);
        this.unsaved = true;
        return;
      } catch (e) {
        // Made meanwhile by someone else: look at what is there rather than trust it.
        if (!(e instanceof TargetError && e.details?.['fortiosError'] === -5)) throw e;
        found = await this.api.call({ op: 'provision', method: 'GET', path }, ctx);
      }
    }
    const obj = this.api.first(found, `address ${name}`);
    if (typeof obj['comment'] !== 'string' || !obj['comment'].startsWith(FORTIGATE_MARKER)) {
      throw this.fail('not_wogate_object', `address object ${name} exists but was not made by wogate (its comment lacks "${FORTIGATE_MARKER}"); rename or delete it, wogate will not change it`, false, { address: name });
    }
    if (hostOf(obj['subnet']) !== host || (obj['type'] !== undefined && obj['type'] !== 'ipmask')) {
      ctx.log.warn('fortigate address object was edited outside wogate; restoring it', { target: this.id, address: name, subnet: show(obj['subnet']) });
      await this.api.call({ op: 'provision', method: 'PUT', path, json: { type: 'ipmask', subnet: want.subnet, comment: COMMENT } }, ctx);
      this.unsaved = true;
    }
  }

  /**
   * Read-modify-write of one group's member list (the caller holds the group's lock), then a
   * read-back: FortiOS answers a PUT that changed nothing with success too.
   */
  private async changeGroup(group: string, member: string, how: 'add' | 'remove', op: string, ctx: CallContext): Promise<void> {
    const path = `/cmdb/firewall/addrgrp/${seg(group)}`;
    const before = await this.groupMembers(group, op, ctx);
    if (before === undefined) {
      if (how === 'remove') {
        ctx.log.warn('fortigate address group is missing; nothing to remove from it', { target: this.id, group });
        return;
      }
      throw this.fail('group_missing', `address group ${group} does not exist${this.api.inVdom()}; create it with member ${this.placeholder} and a policy using it as srcaddr`, false, { group });
    }
    if (before.includes(member) === (how === 'add')) return;
    let after: string[];
    if (how === 'add') {
      if (before.length >= this.maxMembers) {
        throw this.fail('group_full', `address group ${group} already holds ${before.length} members, the limit of ${this.maxMembers}; ${member} cannot be added`, false, { group });
      }
      // Another grant's technician may share the group: nothing but `member` changes.
      after = [...before, member];
    } else {
      after = before.filter((m) => m !== member);
      // FortiOS refuses an empty group; the placeholder (0.0.0.0/32) lets nobody in.
      if (after.length === 0) after = [this.placeholder];
    }
    await this.api.call({ op, method: 'PUT', path, json: { member: after.map((name) => ({ name })) } }, ctx);
    this.unsaved = true;
    const check = await this.groupMembers(group, op, ctx);
    if (check === undefined || check.includes(member) !== (how === 'add')) {
      throw this.fail('not_confirmed', `address group ${group} was written but reading it back ${how === 'add' ? 'does not show' : 'still shows'} ${member}; changed concurrently outside wogate?`, true, { group });
    }
    ctx.log.info(`fortigate member ${how === 'add' ? 'added to' : 'removed from'} group`, { target: this.id, group, member, members: check.length });
  }

  private async deleteIfUnused(name: string, object: Record<string, unknown>, ctx: CallContext): Promise<void> {
    // Never delete what wogate did not make, even under a wogate-looking name.
    if (typeof object['comment'] !== 'string' || !object['comment'].startsWith(FORTIGATE_MARKER)) return;
    const groups = await this.allGroups('revoke', ctx);
    const holders = [...this.byGroup.keys()].filter((g) => groups.get(g)?.includes(name));
    if (holders.length > 0) {
      ctx.log.debug('fortigate address object kept: other managed groups hold it', { target: this.id, address: name, groups: holders });
      return;
    }
    try {
      await this.api.find({ op: 'revoke', method: 'DELETE', path: `/cmdb/firewall/address/${seg(name)}` }, ctx);
      this.unsaved = true;
    } catch (e) {
      if (!(e instanceof TargetError && e.details?.['fortiosError'] === -23)) throw e;
      // Something not managed by wogate (a hand-made group or policy) uses it: that may still let the technician in.
      throw this.fail('address_in_use', `removed from the managed groups, but address object ${name} is still used elsewhere on the FortiGate (FortiOS error -23, entry is used): a policy or group not managed by wogate may still let ${name.slice(ADDRESS_PREFIX.length)} in; remove that reference`, false, { address: name, fortiosError: -23 });
    }
  }

  private async groupMembers(group: string, op: string, ctx: CallContext): Promise<string[] | undefined> {
    const a = await this.api.find({ op, method: 'GET', path: `/cmdb/firewall/addrgrp/${seg(group)}` }, ctx);
    return a === undefined ? undefined : this.api.members(a, this.api.first(a, `group ${group}`), group);
  }

  /** Every address group of the VDOM, name → member names, in one call. */
  private async allGroups(op: string, ctx: CallContext): Promise<Map<string, string[]>> {
    const a = await this.api.call({ op, method: 'GET', path: '/cmdb/firewall/addrgrp', query: { format: 'name|member' } }, ctx);
    const out = new Map<string, string[]>();
    for (const g of this.api.results(a)) {
      if (typeof g['name'] !== 'string') throw this.client.invalid(a.res, 'an address group without a name');
      out.set(g['name'], this.api.members(a, g, g['name']));
    }
    return out;
  }

  /** wogate's address objects (marker in the comment, one host), name → host. */
  private async wogateAddresses(ctx: CallContext): Promise<Map<string, string>> {
    const a = await this.api.call({ op: 'list', method: 'GET', path: '/cmdb/firewall/address', query: { filter: `name=@${ADDRESS_PREFIX}`, format: 'name|type|subnet|comment' } }, ctx);
    const out = new Map<string, string>();
    for (const o of this.api.results(a)) {
      const name = o['name'];
      const host = hostOf(o['subnet']);
      // The filter is a server-side convenience; the prefix and marker are checked here.
      if (typeof name === 'string' && name.startsWith(ADDRESS_PREFIX) && host !== undefined && typeof o['comment'] === 'string' && o['comment'].startsWith(FORTIGATE_MARKER)) out.set(name, host);
    }
    return out;
  }

  private async persist(ctx: CallContext): Promise<void> {
    if (!this.saveConfig || !this.unsaved) return;
    // Cleared first: a change made while the save runs sets it again and is saved next time.
    this.unsaved = false;
    try {
      await this.api.call({ op: 'save', method: 'POST', path: '/monitor/system/config/save' }, ctx);
    } catch (e) {
      this.unsaved = true;
      throw e;
    }
  }
}
