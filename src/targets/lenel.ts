import type { BadgeResource, TargetRef } from '../domain/index.js';
import { silentLogger } from '../log.js';
import { ACCESS_LEVEL, BADGE_ID, checkLenelOptions, NUMERIC_KEY, type LenelTargetOptions } from './lenel-config.js';
import { RestClient, Session, type RestResponse } from './rest.js';
import { TargetError, type CallContext, type Target, type TargetEntry, type TargetGrant } from './target.js';

export { LENEL_TARGET_SCHEMA, lenelTargetOptions, type LenelTargetOptions } from './lenel-config.js';
import { activateAt, deactivateAt, onGuardTime, parseOnGuardTime } from './lenel-time.js';
import { show } from './text.js';
export { activateAt, deactivateAt, instantsOf, onGuardTime, parseOnGuardTime, wallClock } from './lenel-time.js';

/* OpenAccess. */

const BADGE = 'Lnl_Badge';
const LEVEL = 'Lnl_AccessLevel';
const ASSIGNMENT = 'Lnl_AccessLevelAssignment';
/** Lnl_Badge STATUS of an active badge; every other status (lost, returned, suspended...) opens no door. [V: OpenAccess sample output] */
const ACTIVE = 1;
const APP_ID_REFUSED = 'openaccess.general.invalidapplicationid';
/** An error code about the session (expired, logged out, unknown token): log in again. [I: the code's exact name] */
const SESSION_CODE = /session/i;
/** Error codes inside a 2xx that retrying cannot change. */
const FINAL_CODE = /invalid|permission|denied|licen[cs]e|notsupported/i;
const LEVEL_CACHE_MS = 15 * 60_000;
const MAX_PAGES = 10_000;

type Props = Readonly<Record<string, unknown>>;
type Reason = 'invalid_input' | 'unmanaged_level' | 'badge' | 'config' | 'login' | 'verify';

function isProps(v: unknown): v is Props {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A property by name, whatever its case: OpenAccess answers `BadgeKey` and `BADGEKEY` alike. [V] */
function prop(p: Props, name: string): unknown {
  for (const k of Object.keys(p)) if (k.toUpperCase() === name) return p[k];
  return undefined;
}

function intProp(p: Props, name: string): number | undefined {
  const v = prop(p, name);
  if (typeof v === 'number' && Number.isSafeInteger(v)) return v;
  if (typeof v === 'string' && /^-?\d{1,15}$/.test(v.trim())) return Number(v);
  return undefined;
}

function errorOf(res: RestResponse): { code: string; message: string } | undefined {
  let body: unknown;
  try {
    body = JSON.parse(res.text);
  } catch {
    return undefined;
  }
  const e = isProps(body) ? body['error'] : undefined;
  if (!isProps(e) || typeof e['code'] !== 'string') return undefined;
  return { code: e['code'], message: typeof e['message'] === 'string' ? e['message'] : '' };
}

interface Levels {
  readonly at: number;
  /** ACCESSLEVELID → the entry of accessLevels that names it. */
  readonly configured: ReadonlyMap<number, string>;
  /** Lower-cased accessLevels entry, and lower-cased OnGuard NAME, → ACCESSLEVELID. */
  readonly byName: ReadonlyMap<string, number>;
}

interface Window {
  readonly from: number;
  readonly until: number;
  readonly activate: string;
  readonly deactivate: string;
}

/**
 * Lenel OnGuard through OpenAccess: a grant is an Lnl_AccessLevelAssignment (badge, access level)
 * with ACTIVATE/DEACTIVATE, so OnGuard ends access at validUntil even when wogate is down.
 *
 * An assignment has no field for a marker, so ownership is by access level: wogate touches only
 * the levels in `accessLevels`, and everything on them is its business (list() shows every
 * assignment on them; drift removes what no grant backs when the target is authoritative). Each
 * write is read back, and an assignment OnGuard stored ending later than validUntil (a wrong
 * timeZone, a server that rounds up) or starting before validFrom is removed again: fail closed.
 */
export class LenelTarget implements Target {
  readonly kind = 'lenel';
  readonly nativeExpiry = true;
  readonly resourceKinds = ['badge'] as const;
  readonly id: string;
  private readonly client: RestClient;
  private readonly session: Session;
  private readonly badgeBy: 'id' | 'key';
  private readonly unitMs: number;
  private readonly pageSize: number;
  private readonly loginBackoffMs: number;
  private levels: Levels | undefined;
  private levelsPending: Promise<Levels> | undefined;
  private loginRefused: { readonly at: number; readonly until: number; readonly why: string } | undefined;

  constructor(private readonly o: LenelTargetOptions) {
    checkLenelOptions(o);
    this.id = o.id;
    this.badgeBy = o.badgeBy ?? 'id';
    this.unitMs = (o.resolution ?? 'minute') === 'second' ? 1000 : 60_000;
    this.pageSize = o.pageSize ?? 100;
    this.loginBackoffMs = o.loginBackoffMs ?? 300_000;
    this.client = new RestClient({
      targetId: o.id, baseUrl: o.baseUrl, secrets: [o.password, o.applicationId],
      ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}), ...(o.caPem !== undefined ? { caPem: o.caPem } : {}),
    });
    this.session = new Session(this.client, (ctx) => this.login(ctx));
  }

  /** Logs in and resolves the managed access levels. Unreachable OnGuard is not fatal (resolved on first use); a refused login or an unknown level is. */
  async init(ctx: CallContext): Promise<void> {
    try {
      const l = await this.managed(ctx);
      ctx.log.debug('lenel access levels resolved', { levels: Object.fromEntries([...l.configured].map(([id, name]) => [name, id])) });
    } catch (e) {
      if (!(e instanceof TargetError) || !e.retryable) throw e;
      ctx.log.warn('OpenAccess not reachable at start; access levels are resolved on first use', { error: e.message });
    }
  }

  async provision(grant: TargetGrant, ctx: CallContext): Promise<TargetRef> {
    const r = this.resource(grant);
    const levelId = await this.grantLevel(r, ctx);
    if (levelId === undefined) {
      const names = [...new Set((await this.managed(ctx)).configured.values())].join(', ');
      throw this.fail('unmanaged_level', `access level ${show(r.accessLevel)} is not one this target manages (accessLevels: ${names})`);
    }
    const w = this.window(grant, ctx.now);
    if (!w) {
      // The window is over (an update can shorten an open one into the past): the state to reach is "no assignment".
      for (const key of await this.badgeKeys(r.badge, ctx)) await this.remove(key, levelId, 'provision', ctx);
      ctx.log.debug('lenel window already over; assignment absent', { badge: r.badge, accessLevelId: levelId });
      return { badge: r.badge, accessLevelId: levelId };
    }
    const badgeKey = await this.activeBadge(r.badge, ctx);
    const values = { BADGEKEY: badgeKey, ACCESSLEVELID: levelId, ACTIVATE: w.activate, DEACTIVATE: w.deactivate };
    const body = { type_name: ASSIGNMENT, property_value_map: values };
    let existing = (await this.assignment(badgeKey, levelId, 'provision', ctx)) !== undefined;
    if (!existing) {
      try {
        this.checkCreated(await this.call(ctx, { op: 'provision', method: 'POST', path: '/instances', json: body }), badgeKey, levelId);
      } catch (e) {
        // Made meanwhile (by hand, or a create that answered late): update it instead.
        existing = e instanceof TargetError && !e.retryable && (await this.assignment(badgeKey, levelId, 'provision', ctx)) !== undefined;
        if (!existing) throw e;
      }
    }
    if (existing) await this.call(ctx, { op: 'provision', method: 'PUT', path: '/instances', json: body });
    await this.verify(grant, badgeKey, levelId, w, ctx);
    ctx.log.debug(`lenel assignment ${existing ? 'updated' : 'added'}`, { badgeKey, accessLevelId: levelId, activate: w.activate, deactivate: w.deactivate });
    return { badgeKey, accessLevelId: levelId };
  }

  update(grant: TargetGrant, _ref: TargetRef | undefined, ctx: CallContext): Promise<TargetRef> {
    // The resource is part of the grant key: the same assignment, a new window.
    return this.provision(grant, ctx);
  }

  async revoke(grant: TargetGrant, _ref: TargetRef | undefined, ctx: CallContext): Promise<void> {
    if (grant.resource.kind !== 'badge') return; // provision refuses other kinds: nothing of one exists here
    let r: BadgeResource;
    try {
      r = this.resource(grant);
    } catch (e) {
      ctx.log.warn('lenel revoke of a resource this target cannot hold; nothing to remove', { error: (e as Error).message });
      return;
    }
    const levelId = await this.grantLevel(r, ctx);
    const keys = await this.badgeKeys(r.badge, ctx);
    if (levelId === undefined) return this.unmanaged(r, keys, ctx);
    for (const key of keys) await this.remove(key, levelId, 'revoke', ctx);
    ctx.log.debug('lenel assignment removed', { badge: r.badge, badgeKeys: keys, accessLevelId: levelId });
  }

  /** Removes an assignment list() showed on a managed level (drift removal); gone already is success. */
  async revokeEntry(entry: TargetEntry, ctx: CallContext): Promise<void> {
    const key = entry.ref['badgeKey'];
    const levelId = entry.ref['accessLevelId'];
    if (typeof key !== 'number' || !NUMERIC_KEY.test(String(key)) || typeof levelId !== 'number' || !NUMERIC_KEY.test(String(levelId))) {
      throw this.fail('invalid_input', `entry ref ${show(entry.ref)} is not a lenel assignment ref {badgeKey, accessLevelId}`);
    }
    if (!(await this.managed(ctx)).configured.has(levelId)) throw this.fail('unmanaged_level', `access level ${levelId} is not one this target manages; wogate removes nothing from it`);
    await this.remove(key, levelId, 'revoke-entry', ctx);
  }

  /** Every assignment on the managed levels, wogate's or not; DEACTIVATE null (permanent) is listed without expiresAt. */
  async list(ctx: CallContext): Promise<TargetEntry[]> {
    const levels = await this.managed(ctx);
    const ids = new Map<number, string | undefined>();
    const out: TargetEntry[] = [];
    for (const [levelId, accessLevel] of levels.configured) {
      for (const row of await this.instances(ASSIGNMENT, `ACCESSLEVELID=${levelId}`, 'list', ctx)) {
        const badgeKey = intProp(row, 'BADGEKEY');
        // A server that ignored the filter would hand over other levels' assignments: refuse to act on them.
        if (badgeKey === undefined || intProp(row, 'ACCESSLEVELID') !== levelId) throw this.invalid('list', `an assignment listed for access level ${levelId} reads ${show(row)}`);
        const deactivate = prop(row, 'DEACTIVATE');
        const expires = typeof deactivate === 'string' && deactivate !== '' ? parseOnGuardTime(deactivate, this.o.timeZone) : undefined;
        if (deactivate !== null && deactivate !== undefined && deactivate !== '' && expires === undefined) throw this.invalid('list', `DEACTIVATE ${show(deactivate)} of badge ${badgeKey} is not a date-time`);
        let badge: string | undefined = String(badgeKey);
        if (this.badgeBy === 'id') {
          if (!ids.has(badgeKey)) ids.set(badgeKey, await this.badgeIdOf(badgeKey, ctx));
          badge = ids.get(badgeKey);
        }
        out.push({
          ref: { badgeKey, accessLevelId: levelId },
          ...(badge !== undefined ? { resource: { kind: 'badge', badge, accessLevel } } : {}),
          ...(expires !== undefined ? { expiresAt: new Date(expires) } : {}),
        });
      }
    }
    return out;
  }

  async close(): Promise<void> {
    const token = this.session.clear();
    if (token !== undefined) {
      await this.client
        .request({ op: 'logout', method: 'DELETE', path: '/authentication', query: { version: '1.0' }, headers: { 'Application-Id': this.o.applicationId, 'Session-Token': token } }, { now: new Date(), log: silentLogger })
        .catch(() => undefined); // the session ends on its own; nothing to do about a failed logout
    }
    await this.client.close();
  }

  private fail(reason: Reason, message: string, retryable = false, details: Record<string, unknown> = {}): TargetError {
    return new TargetError(this.id, message, retryable, { reason, ...details });
  }

  private invalid(op: string, what: string): TargetError {
    return new TargetError(this.id, `OpenAccess answered something unexpected: ${what}`, true, { code: 'TARGET_RESPONSE_INVALID', op });
  }

  private resource(grant: TargetGrant): BadgeResource {
    const r = grant.resource;
    if (r.kind !== 'badge') throw this.fail('invalid_input', `resource kind ${show(r.kind)} is not badge: the Lenel target assigns access levels to badges`, false, { code: 'RESOURCE_KIND_UNSUPPORTED' });
    const ok = this.badgeBy === 'key' ? NUMERIC_KEY.test(r.badge) : BADGE_ID.test(r.badge);
    if (!ok) throw this.fail('invalid_input', `badge ${show(r.badge)} is not ${this.badgeBy === 'key' ? 'a BADGEKEY (a positive integer)' : 'a badge ID (the card number: digits, no leading zeros)'}`);
    if (!ACCESS_LEVEL.test(r.accessLevel)) throw this.fail('invalid_input', `access level ${show(r.accessLevel)} is not an access level name or ID`);
    return r;
  }

  /** ACTIVATE/DEACTIVATE for the grant, or undefined when nothing of the window is left. */
  private window(grant: TargetGrant, now: Date): Window | undefined {
    const tz = this.o.timeZone;
    const validFrom = grant.validFrom.getTime();
    const validUntil = grant.validUntil.getTime();
    if (!Number.isFinite(validFrom) || !Number.isFinite(validUntil)) throw this.fail('invalid_input', `window ${show(grant.validFrom)}..${show(grant.validUntil)} is not a pair of dates`);
    const until = deactivateAt(validUntil, tz, this.unitMs);
    const from = activateAt(validFrom, tz, this.unitMs);
    if (until <= now.getTime() || until <= from) return undefined;
    return { from, until, activate: onGuardTime(from, tz), deactivate: onGuardTime(until, tz) };
  }

  /** The managed level a grant names (as configured, by ID or by OnGuard NAME), or undefined. */
  private async grantLevel(r: BadgeResource, ctx: CallContext): Promise<number | undefined> {
    const levels = await this.managed(ctx);
    const id = NUMERIC_KEY.test(r.accessLevel) && levels.configured.has(Number(r.accessLevel)) ? Number(r.accessLevel) : levels.byName.get(r.accessLevel.toLowerCase());
    if (id !== undefined && levels.configured.get(id) !== r.accessLevel) {
      // list() reports the level as configured; drift matches resources exactly, so it would not recognise this grant's entry.
      ctx.log.warn('lenel grant names an access level differently from accessLevels; drift will not match it', { grant: r.accessLevel, configured: levels.configured.get(id) });
    }
    return id;
  }

  private async managed(ctx: CallContext): Promise<Levels> {
    const cached = this.levels;
    if (cached && ctx.now.getTime() - cached.at < LEVEL_CACHE_MS) return cached;
    try {
      this.levelsPending ??= this.resolveLevels(ctx).finally(() => {
        this.levelsPending = undefined;
      });
      this.levels = await this.levelsPending;
      return this.levels;
    } catch (e) {
      // Neither an outage nor a level renamed or removed in OnGuard may stop revokes on the others:
      // the last known levels serve, and the refresh is tried again in a minute, not on every call.
      if (!cached || !(e instanceof TargetError)) throw e;
      ctx.log[e.retryable ? 'warn' : 'error']('lenel access levels could not be refreshed; using the last known ones', { error: e.message });
      this.levels = { ...cached, at: ctx.now.getTime() - LEVEL_CACHE_MS + 60_000 };
      return cached;
    }
  }

  private async resolveLevels(ctx: CallContext): Promise<Levels> {
    const configured = new Map<number, string>();
    const byName = new Map<string, number>();
    for (const entry of this.o.accessLevels) {
      const numeric = NUMERIC_KEY.test(entry);
      const rows = await this.instances(LEVEL, numeric ? `ID=${entry}` : `NAME="${entry}"`, 'lookup-level', ctx);
      const match = rows.filter((l) => (numeric ? intProp(l, 'ID') === Number(entry) : String(prop(l, 'NAME') ?? '').toLowerCase() === entry.toLowerCase()));
      if (match.length === 0) throw this.fail('config', `access level ${show(entry)} (accessLevels) does not exist in OnGuard`);
      if (match.length > 1) throw this.fail('config', `access level name ${show(entry)} (accessLevels) matches ${match.length} levels in OnGuard; name it by ID`);
      const id = intProp(match[0] as Props, 'ID');
      if (id === undefined) throw this.invalid('lookup-level', `access level ${show(entry)} has no numeric ID`);
      const twice = configured.get(id);
      if (twice !== undefined) throw this.fail('config', `accessLevels ${show(twice)} and ${show(entry)} are the same OnGuard access level (ID ${id})`);
      configured.set(id, entry);
      byName.set(entry.toLowerCase(), id);
      const name = prop(match[0] as Props, 'NAME');
      if (typeof name === 'string' && !byName.has(name.toLowerCase())) byName.set(name.toLowerCase(), id);
    }
    return { at: ctx.now.getTime(), configured, byName };
  }

  /** The BADGEKEY of the one active badge the grant names; refuses (not retryable) a missing, inactive or ambiguous badge. */
  private async activeBadge(badge: string, ctx: CallContext): Promise<number> {
    const found = await this.badges(badge, ctx);
    const what = this.badgeBy === 'key' ? `BADGEKEY ${badge}` : `badge ID ${badge}`;
    if (found.length === 0) throw this.fail('badge', `OnGuard has no badge with ${what}`);
    const active = found.filter((b) => b.status === ACTIVE);
    if (active.length === 0) {
      // An inactive badge (lost, returned, suspended) opens nothing; giving it access would arm it for whoever reactivates or holds it.
      throw this.fail('badge', `${what} is not active in OnGuard (STATUS ${found.map((b) => b.status ?? '?').join(', ')}); wogate adds access only to an active badge: reactivate it in OnGuard if that is right, and the grant is retried`);
    }
    if (active.length > 1) throw this.fail('badge', `${active.length} active badges carry ${what} (BADGEKEYs ${active.map((b) => b.key).join(', ')}); name the badge by BADGEKEY (badgeBy: key)`);
    return (active[0] as { key: number }).key;
  }

  /** Every badge the grant may have been given access on: its BADGEKEY, or every badge (any status) with its card number. */
  private async badgeKeys(badge: string, ctx: CallContext): Promise<number[]> {
    if (this.badgeBy === 'key') return [Number(badge)];
    return (await this.badges(badge, ctx)).map((b) => b.key);
  }

  private async badges(badge: string, ctx: CallContext): Promise<{ key: number; status: number | undefined }[]> {
    const field = this.badgeBy === 'key' ? 'BADGEKEY' : 'ID';
    const rows = await this.instances(BADGE, `${field}=${badge}`, 'lookup-badge', ctx);
    return rows
      .filter((b) => intProp(b, field) === Number(badge)) // never act on a badge the filter should have excluded
      .map((b) => {
        const key = intProp(b, 'BADGEKEY');
        if (key === undefined) throw this.invalid('lookup-badge', `badge ${show(b)} has no BADGEKEY`);
        return { key, status: intProp(b, 'STATUS') };
      });
  }

  private async badgeIdOf(badgeKey: number, ctx: CallContext): Promise<string | undefined> {
    const rows = await this.instances(BADGE, `BADGEKEY=${badgeKey}`, 'lookup-badge', ctx);
    const id = rows.filter((b) => intProp(b, 'BADGEKEY') === badgeKey).map((b) => intProp(b, 'ID'))[0];
    return id === undefined ? undefined : String(id);
  }

  private async assignment(badgeKey: number, levelId: number, op: string, ctx: CallContext): Promise<Props | undefined> {
    const rows = await this.instances(ASSIGNMENT, `BADGEKEY=${badgeKey} and ACCESSLEVELID=${levelId}`, op, ctx);
    return rows.find((a) => intProp(a, 'BADGEKEY') === badgeKey && intProp(a, 'ACCESSLEVELID') === levelId);
  }

  /** Deletes the assignment if there is one. What OnGuard answers for a missing one is not documented, so it is looked up first and again after a failed delete. */
  private async remove(badgeKey: number, levelId: number, op: string, ctx: CallContext): Promise<void> {
    if (!(await this.assignment(badgeKey, levelId, op, ctx))) return;
    try {
      await this.call(ctx, { op, method: 'DELETE', path: '/instances', json: { type_name: ASSIGNMENT, property_value_map: { BADGEKEY: badgeKey, ACCESSLEVELID: levelId } } });
    } catch (e) {
      if (await this.assignment(badgeKey, levelId, op, ctx).catch(() => true)) throw e;
    }
  }

  /** A revoke naming a level outside accessLevels: fine if the badge lacks it; if it has it, wogate leaves it and says so. */
  private async unmanaged(r: BadgeResource, keys: number[], ctx: CallContext): Promise<void> {
    if (keys.length === 0) return;
    const numeric = NUMERIC_KEY.test(r.accessLevel);
    const rows = await this.instances(LEVEL, numeric ? `ID=${r.accessLevel}` : `NAME="${r.accessLevel}"`, 'lookup-level', ctx);
    const ids = rows
      .filter((l) => (numeric ? intProp(l, 'ID') === Number(r.accessLevel) : String(prop(l, 'NAME') ?? '').toLowerCase() === r.accessLevel.toLowerCase()))
      .map((l) => intProp(l, 'ID'))
      .filter((id): id is number => id !== undefined);
    for (const id of ids) {
      for (const key of keys) {
        if (await this.assignment(key, id, 'revoke', ctx)) {
          throw this.fail('unmanaged_level', `badge ${r.badge} has access level ${show(r.accessLevel)}, which this target does not manage (not in accessLevels): wogate leaves it; remove it in OnGuard or add the level back to accessLevels`);
        }
      }
    }
  }

  private checkCreated(res: RestResponse, badgeKey: number, levelId: number): void {
    const body = this.client.json(res);
    const made = isProps(body) ? body['property_value_map'] : undefined;
    if (!isProps(made)) throw this.client.invalid(res, 'expected the new assignment in property_value_map');
    const key = intProp(made, 'BADGEKEY');
    const level = intProp(made, 'ACCESSLEVELID');
    if ((key !== undefined && key !== badgeKey) || (level !== undefined && level !== levelId)) {
      throw this.client.invalid(res, `the new assignment is badge ${show(key)} / level ${show(level)}, not ${badgeKey} / ${levelId}`);
    }
  }

  /**
   * Reads the assignment back: OnGuard must hold a DEACTIVATE no later than validUntil and, for a
   * window still ahead, an ACTIVATE no earlier than validFrom. Otherwise (wrong timeZone, a server
   * that rounds or drops the time) the assignment is removed again and the grant fails: better a
   * technician without a door than a door open past the work order.
   */
  private async verify(grant: TargetGrant, badgeKey: number, levelId: number, w: Window, ctx: CallContext): Promise<void> {
    const tz = this.o.timeZone;
    const stored = await this.assignment(badgeKey, levelId, 'verify', ctx);
    if (!stored) throw this.invalid('verify', `assignment of access level ${levelId} to badge ${badgeKey} is not there right after it was written`);
    const text = (name: string): string | undefined => {
      const v = prop(stored, name);
      return typeof v === 'string' && v !== '' ? v : undefined;
    };
    const deactivate = text('DEACTIVATE');
    const activate = text('ACTIVATE');
    const until = deactivate === undefined ? undefined : parseOnGuardTime(deactivate, tz);
    const from = activate === undefined ? undefined : parseOnGuardTime(activate, tz);
    let problem: string | undefined;
    let retryable = false;
    if (deactivate === undefined) problem = `kept no DEACTIVATE for ${w.deactivate} (the assignment would never end)`;
    else if (until === undefined) [problem, retryable] = [`answers DEACTIVATE ${show(deactivate)}, which is not a date-time`, true];
    else if (until > grant.validUntil.getTime()) problem = `holds DEACTIVATE ${deactivate} (${new Date(until).toISOString()}) for ${w.deactivate}, later than validUntil ${grant.validUntil.toISOString()}: check timeZone (the OnGuard server's zone) and resolution`;
    else if (grant.validFrom.getTime() > ctx.now.getTime() && (from === undefined || from < grant.validFrom.getTime())) {
      problem = `holds ACTIVATE ${show(activate ?? null)} for ${w.activate}, before validFrom ${grant.validFrom.toISOString()}: check timeZone (the OnGuard server's zone)`;
    }
    if (problem === undefined) {
      if (until !== undefined && until < w.until - 60_000) ctx.log.warn('OnGuard ends the assignment earlier than sent; check the lenel timeZone', { badgeKey, accessLevelId: levelId, sent: w.deactivate, stored: deactivate });
      return;
    }
    let undo = 'removed the assignment rather than leave it open';
    try {
      await this.remove(badgeKey, levelId, 'verify', ctx);
    } catch (e) {
      undo = `removing the assignment failed too (${(e as Error).message}); wogate's own revoke will retry it`;
    }
    throw this.fail('verify', `OnGuard ${problem}; ${undo}`, retryable, { badgeKey, accessLevelId: levelId });
  }

  /** Every item of a paged GET /instances, property maps only. */
  private async instances(type: string, filter: string, op: string, ctx: CallContext): Promise<Props[]> {
    const out: Props[] = [];
    for (let page = 1; ; page++) {
      const res = await this.call(ctx, { op, method: 'GET', path: '/instances', query: { type_name: type, filter, page_number: String(page), page_size: String(this.pageSize) } });
      const body = this.client.json(res);
      const items = isProps(body) ? body['item_list'] : undefined;
      if (!Array.isArray(items)) throw this.client.invalid(res, `expected a page of ${type} with item_list`);
      for (const [i, item] of items.entries()) {
        const map = isProps(item) ? item['property_value_map'] : undefined;
        if (!isProps(map)) throw this.client.invalid(res, `item_list[${i}] has no property_value_map`);
        out.push(map);
      }
      const total = isProps(body) ? body['total_pages'] : undefined;
      if (typeof total !== 'number' || !Number.isInteger(total) || total < 0) throw this.client.invalid(res, 'expected total_pages');
      if (page >= total || items.length === 0) return out;
      if (page >= MAX_PAGES) throw this.client.invalid(res, `more than ${MAX_PAGES} pages of ${type}`);
    }
  }

  /**
   * One OpenAccess call with the session, `?version=1.0`, the Application-Id; an error about the
   * session, whatever its status, logs in again once. Errors inside a 2xx are refusals too.
   */
  private async call(ctx: CallContext, req: { op: string; method: 'GET' | 'POST' | 'PUT' | 'DELETE'; path: string; query?: Record<string, string>; json?: unknown }): Promise<RestResponse> {
    const res = await this.session.with(ctx, async (token) => {
      const r = await this.client.request({
        ...req, query: { ...req.query, version: '1.0' }, headers: { 'Application-Id': this.o.applicationId, 'Session-Token': token }, accept: [400, 401, 403, 404, 409],
      }, ctx);
      return r.status !== 401 && SESSION_CODE.test(errorOf(r)?.code ?? '') ? { ...r, status: 401 } : r;
    });
    const e = errorOf(res);
    if (res.status >= 200 && res.status < 300) {
      if (!e) return res;
      throw this.client.refused(res, `${e.code}: ${this.client.excerpt(e.message)}`, !FINAL_CODE.test(e.code), { openAccessCode: e.code });
    }
    // 404 with OpenAccess's own error: the instance went away meanwhile, a fresh attempt re-reads. Without it: a wrong baseUrl.
    const retryable = res.status === 409 || (res.status === 404 && e !== undefined);
    const why = e ? `${e.code}: ${this.client.excerpt(e.message)}` : this.client.excerpt(res.text);
    throw new TargetError(this.id, `${res.what} answered ${res.status}: ${why}`, retryable, { op: res.op, status: res.status, ...(e ? { openAccessCode: e.code } : {}) });
  }

  private async login(ctx: CallContext): Promise<string> {
    const now = ctx.now.getTime();
    const refused = this.loginRefused;
    if (refused && now < refused.until) {
      throw this.fail('login', `login was refused at ${new Date(refused.at).toISOString()} (${refused.why}); not trying again before ${new Date(refused.until).toISOString()} so OnGuard does not lock the account`, false, { op: 'login' });
    }
    const res = await this.client.request({
      op: 'login', method: 'POST', path: '/authentication', query: { version: '1.0' }, headers: { 'Application-Id': this.o.applicationId },
      json: { user_name: this.o.username, password: this.o.password, ...(this.o.directoryId !== undefined ? { directory_id: this.o.directoryId } : {}) },
      accept: [400, 401, 403],
    }, ctx);
    const e = errorOf(res);
    if (res.status >= 400 || e) {
      const why = e?.code === APP_ID_REFUSED
        ? 'the Application-Id is refused (not licensed for OpenAccess)'
        : res.status === 401 || res.status === 403 ? `user ${show(this.o.username)} is refused` : 'the login failed';
      // Only a 401 counts towards OnGuard's lockout; a 400/403 or an error inside a 200 does not.
      if (res.status === 401) this.loginRefused = { at: now, until: now + this.loginBackoffMs, why };
      const retryable = res.status < 400 && e !== undefined && !FINAL_CODE.test(e.code);
      throw this.fail('login', `${res.what} answered ${res.status}: ${why}${e ? ` (${e.code}: ${this.client.excerpt(e.message)})` : ''}`, retryable, { op: 'login', status: res.status });
    }
    const body = this.client.json(res);
    const token = isProps(body) ? body['session_token'] : undefined;
    if (typeof token !== 'string' || token.trim() === '') throw this.client.invalid(res, 'expected a session_token');
    this.loginRefused = undefined;
    ctx.log.debug('lenel logged in', { user: this.o.username });
    return token;
  }
}
