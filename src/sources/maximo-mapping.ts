import {
  CANONICAL_STATUSES, CRITICALITIES, ORDER_TYPES, WogateError,
  type Approval, type CanonicalStatus, type Criticality, type OrderType, type WorkOrder,
} from '../domain/index.js';
import { getPath } from './mapping.js';
import type { AssetRecord } from './source.js';
import { canonicalAsset, canonicalOrder, clipText } from './canonical-order.js';

/**
 * Maximo's WOSTATUS internal values (compared through `status_maxvalue`, so a customer's
 * synonyms map like the value behind them). WMATL and WPCOND are approved orders that can't be
 * worked yet, so they hold no access unless a policy allows on_hold.
 */
export const MAXIMO_DEFAULT_STATUS_MAP: Readonly<Record<string, CanonicalStatus>> = {
  WAPPR: 'awaiting_approval',
  APPR: 'approved',
  WSCH: 'approved',
  WMATL: 'on_hold',
  WPCOND: 'on_hold',
  INPRG: 'in_progress',
  COMP: 'completed',
  CLOSE: 'closed',
  CAN: 'cancelled',
  HISTEDIT: 'closed',
};

/** Maximo's stock work types; any other or none becomes `defaultType`. */
export const MAXIMO_DEFAULT_TYPE_MAP: Readonly<Record<string, OrderType>> = {
  PM: 'planned',
  CP: 'planned',
  CM: 'corrective',
  EM: 'emergency',
};

/** ASSET.PRIORITY runs 0 (lowest) to 9 (highest) on most sites; other values are left to the overlay. */
export const MAXIMO_DEFAULT_CRITICALITY_MAP: Readonly<Record<string, Criticality>> = {
  0: 'low', 1: 'low', 2: 'low', 3: 'medium', 4: 'medium', 5: 'high', 6: 'high', 7: 'high', 8: 'critical', 9: 'critical',
};

/** A list of ids read from a child collection (`rel.x{attr}`) or a delimited attribute. */
export interface MaximoListField {
  /** The oslc.select term that brings the data, e.g. `rel.assignment{laborcode}` or `x_techs`. */
  readonly select: string;
  /** The JSON property that holds it in the lean record (the relationship name in lower case). */
  readonly path: string;
  /** In each child object, the attribute holding the id. */
  readonly idField?: string;
  /** When the property is one string, the character(s) between ids. */
  readonly separator?: string;
}

export interface MaximoApprovalField {
  readonly select: string;
  readonly path: string;
  /** Status values (internal or synonym) whose history entries count as approvals. */
  readonly statuses: readonly string[];
}

/** Everything the mapping needs, defaults applied. */
export interface MaximoMapping {
  readonly idFormat: 'site/wonum' | 'wonum';
  readonly statusMap: Readonly<Record<string, CanonicalStatus>>;
  readonly typeMap: Readonly<Record<string, OrderType>>;
  readonly defaultType: OrderType;
  readonly revision: 'rowstamp' | 'changedate';
  readonly vendor: string;
  readonly type: string;
  readonly technicians: MaximoListField;
  readonly approvals?: MaximoApprovalField;
  readonly asset: string;
  readonly multiAssets?: MaximoListField;
  readonly qualifyAssetsBySite: boolean;
  readonly windowStart: readonly string[];
  readonly windowEnd: readonly string[];
}

export interface MaximoAssetMapping {
  readonly classAttribute: string;
  readonly criticalityAttribute: string;
  readonly criticalityMap: Readonly<Record<string, Criticality>>;
  readonly classMap?: Readonly<Record<string, string>>;
  readonly qualifyBySite: boolean;
}

const MAX_ID_LENGTH = 200;
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/;
const ROWSTAMP = /^[0-9]{1,20}$/;
const ISO = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:?\d{2})$/;
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

function fail(field: string, path: string, problem: string): WogateError {
  return new WogateError('HOOK_MAPPING_FAILED', `${field}: ${problem}`, { field, path });
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function kindOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

function quote(s: string): string {
  return JSON.stringify(s.length > 64 ? `${s.slice(0, 64)}…` : s);
}

/**
 * Lower-cases attribute names one level into the record and its child lists. A JSON mapping is
 * often written with the upper-case MIF names (WONUM); the REST API answers in lower case.
 * The copy has no prototype, so no payload key can reach one.
 */
export function lowerKeys(record: Record<string, unknown>): Record<string, unknown> {
  const lower = (o: Record<string, unknown>, deep: boolean): Record<string, unknown> => {
    const out: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
    for (const [k, v] of Object.entries(o)) {
      const key = k.toLowerCase();
      if (FORBIDDEN_KEYS.has(key)) continue;
      if (deep && Array.isArray(v)) out[key] = v.map((x: unknown) => (isObject(x) ? lower(x, false) : x));
      else if (deep && isObject(v)) out[key] = lower(v, false);
      else out[key] = v;
    }
    return out;
  };
  return lower(record, true);
}

function text(field: string, path: string, v: unknown): string {
  let s: string;
  if (typeof v === 'string') s = v.trim();
  else if (typeof v === 'number' && Number.isFinite(v)) s = String(v);
  else throw fail(field, path, `value at "${path}" is ${kindOf(v)}, expected a string`);
  if (s === '') throw fail(field, path, `value at "${path}" is empty`);
  if (s.length > MAX_ID_LENGTH) throw fail(field, path, `value at "${path}" is longer than ${MAX_ID_LENGTH} characters`);
  if (CONTROL_CHARS.test(s)) throw fail(field, path, `value at "${path}" contains control characters`);
  return s;
}

function optionalText(field: string, record: unknown, path: string): string | undefined {
  const v = getPath(record, path);
  if (v === undefined || v === null || v === '') return undefined;
  return text(field, path, v);
}

/** Maximo writes `2025-03-04T08:12:03-05:00`; an instant without an offset would be a guess. */
export function parseMaximoDate(field: string, path: string, v: unknown): Date {
  const m = typeof v === 'string' ? ISO.exec(v.trim()) : null;
  if (!m) throw fail(field, path, `value at "${path}" is not an ISO-8601 date-time with an offset`);
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map((x) => Number(x ?? 0)) as [number, number, number, number, number, number];
  const ms = Number((m[7] ?? '0').padEnd(3, '0').slice(0, 3));
  const zone = m[8] ?? 'Z';
  const digits = zone.replace(':', '');
  const offsetMin = zone === 'Z' ? 0 : (zone.startsWith('-') ? -1 : 1) * (Number(digits.slice(1, 3)) * 60 + Number(digits.slice(3, 5)));
  const local = new Date(Date.UTC(y, mo - 1, d, h, mi, s, ms));
  // Date.UTC rolls 2025-02-30 over into March; a rolled date is not the one Maximo meant.
  // Years below 100 would be read as 19xx by Date.UTC.
  if (y < 1000 || local.getUTCMonth() !== mo - 1 || local.getUTCDate() !== d || h > 23 || mi > 59 || s > 59 || Math.abs(offsetMin) > 18 * 60) {
    throw fail(field, path, `value at "${path}" is not a valid date-time`);
  }
  return new Date(local.getTime() - offsetMin * 60_000);
}

/** The `>=` literal Maximo's oslc.where takes; whole seconds, rounded down so nothing is skipped. */
export function formatMaximoDate(d: Date): string {
  const iso = new Date(Math.floor(d.getTime() / 1000) * 1000).toISOString();
  return `${iso.slice(0, 19)}+00:00`;
}

/** The order's key parts; wogate's order id is `SITEID/WONUM` (or WONUM alone with idFormat wonum). */
export function orderKeyOf(record: Record<string, unknown>, m: Pick<MaximoMapping, 'idFormat'>): { id: string; wonum: string; siteid: string } {
  const wonum = text('id', 'wonum', getPath(record, 'wonum') ?? missing('id', 'wonum'));
  const siteid = text('site', 'siteid', getPath(record, 'siteid') ?? missing('site', 'siteid'));
  if (siteid.includes('/')) throw fail('site', 'siteid', `value at "siteid" contains "/", which wogate uses between site and work order`);
  return { id: m.idFormat === 'wonum' ? wonum : `${siteid}/${wonum}`, wonum, siteid };
}

function missing(field: string, path: string): never {
  throw fail(field, path, `path "${path}" is missing`);
}

/** The status as Maximo's own logic sees it: the internal value, not the customer's synonym. */
function statusOf(record: Record<string, unknown>): { code: string; path: string } {
  const internal = getPath(record, 'status_maxvalue');
  if (typeof internal === 'string' && internal.trim() !== '') return { code: text('status', 'status_maxvalue', internal), path: 'status_maxvalue' };
  return { code: text('status', 'status', getPath(record, 'status') ?? missing('status', 'status')), path: 'status' };
}

function mapStatus(record: Record<string, unknown>, statusMap: Readonly<Record<string, CanonicalStatus>>): [CanonicalStatus, string] {
  const { code, path } = statusOf(record);
  const status = Object.hasOwn(statusMap, code) ? statusMap[code] : undefined;
  if (status === undefined) {
    throw fail('status', path, `Maximo status ${quote(code)} at "${path}" has no mapping in statusMap (known: ${Object.keys(statusMap).join(', ')})`);
  }
  if (!(CANONICAL_STATUSES as readonly string[]).includes(status)) {
    throw new WogateError('CONFIG_INVALID', `statusMap maps ${quote(code)} to an unknown canonical status`);
  }
  return [status, code];
}

/** Ids from a child list (objects with idField, or plain strings) or from one delimited string. */
function listIds(field: string, record: unknown, f: MaximoListField): string[] {
  const value = getPath(record, f.path);
  // Lean JSON leaves out a relationship with no rows, so absent means none.
  if (value === undefined || value === null || value === '') return [];
  const out = new Set<string>();
  if (typeof value === 'string') {
    for (const part of value.split(f.separator ?? ',')) if (part.trim() !== '') out.add(text(field, f.path, part));
    return [...out];
  }
  const items = Array.isArray(value) ? value : [value];
  items.forEach((item: unknown, i) => {
    const itemPath = Array.isArray(value) ? `${f.path}.${i}` : f.path;
    if (isObject(item)) {
      if (f.idField === undefined) throw fail(field, itemPath, `item at "${itemPath}" is an object but no idField is configured`);
      const id = getPath(item, f.idField);
      // A child row without the id (an assignment to a craft, not a person) names no one.
      if (id === undefined || id === null || id === '') return;
      out.add(text(field, `${itemPath}.${f.idField}`, id));
    } else if (item !== null && item !== '') {
      out.add(text(field, itemPath, item));
    }
  });
  return [...out];
}

/** Distinct approvers: who set the order to an approving status, earliest first. */
function mapApprovals(record: Record<string, unknown>, f: MaximoApprovalField): Approval[] {
  const value = getPath(record, f.path);
  if (!Array.isArray(value)) return [];
  const statuses = new Set(f.statuses);
  const byApprover = new Map<string, Approval>();
  value.forEach((entry: unknown, i) => {
    if (!isObject(entry)) return;
    const status = getPath(entry, 'status_maxvalue') ?? getPath(entry, 'status');
    if (typeof status !== 'string' || !statuses.has(status.trim())) return;
    const by = getPath(entry, 'changeby');
    if (by === undefined || by === null || by === '') return;
    const approval: Approval = { by: text('approvals', `${f.path}.${i}.changeby`, by) };
    const at = getPath(entry, 'changedate');
    const withAt = at === undefined || at === null ? approval : { ...approval, at: parseMaximoDate('approvals', `${f.path}.${i}.changedate`, at) };
    const prior = byApprover.get(withAt.by);
    // One person approving twice is one approval; keep the first time they did.
    if (!prior || (withAt.at && prior.at && withAt.at < prior.at)) byApprover.set(withAt.by, withAt);
  });
  return [...byApprover.values()];
}

function firstDate(field: string, record: unknown, paths: readonly string[]): Date | undefined {
  for (const p of paths) {
    const v = getPath(record, p);
    if (v !== undefined && v !== null && v !== '') return parseMaximoDate(field, p, v);
  }
  return undefined;
}

function mapType(record: unknown, m: MaximoMapping): OrderType {
  const raw = getPath(record, m.type);
  if (typeof raw !== 'string') return m.defaultType;
  const code = raw.trim();
  const mapped = Object.hasOwn(m.typeMap, code) ? m.typeMap[code] : undefined;
  return mapped !== undefined && (ORDER_TYPES as readonly string[]).includes(mapped) ? mapped : m.defaultType;
}

function revisionOf(record: Record<string, unknown>, revision: MaximoMapping['revision']): string {
  if (revision === 'changedate') {
    return parseMaximoDate('revision', 'changedate', getPath(record, 'changedate') ?? missing('revision', 'changedate')).toISOString();
  }
  const v = getPath(record, '_rowstamp');
  if (v === undefined || v === null) throw fail('revision', '_rowstamp', 'path "_rowstamp" is missing (set revision: changedate if this Maximo does not send it)');
  const s = typeof v === 'number' && Number.isSafeInteger(v) ? String(v) : v;
  if (typeof s !== 'string' || !ROWSTAMP.test(s.trim())) throw fail('revision', '_rowstamp', 'value at "_rowstamp" is not a decimal number');
  return s.trim();
}

/**
 * Whether a pushed record carries every attribute the order is made of. Only then does the
 * webhook's own account count: a JSON mapping that leaves out the assignments would otherwise
 * read as "no technicians" and take access away that Maximo still grants.
 */
export function isCompleteRecord(record: Record<string, unknown>, m: MaximoMapping): boolean {
  const has = (p: string) => getPath(record, p) !== undefined;
  const revisionPath = m.revision === 'rowstamp' ? '_rowstamp' : 'changedate';
  return (has('status_maxvalue') || has('status')) && has(revisionPath) && has(m.vendor) && has(m.asset)
    && m.windowStart.some(has) && m.windowEnd.some(has) && has(m.technicians.path)
    && (m.approvals === undefined || has(m.approvals.path)) && (m.multiAssets === undefined || has(m.multiAssets.path));
}

/**
 * One lean WORKORDER record (keys lower-cased) → the canonical WorkOrder. Throws
 * HOOK_MAPPING_FAILED naming the field and attribute only when the record can't be read (no
 * wonum/siteid, no revision, a status statusMap doesn't know). What Maximo leaves empty is mapped
 * to what grants least: no vendor is "", no technicians or assets is [], a missing date makes
 * the window empty.
 */
export function mapMaximoRecord(sourceId: string, record: Record<string, unknown>, m: MaximoMapping): WorkOrder {
  const { id, siteid } = orderKeyOf(record, m);
  const [status, sourceStatus] = mapStatus(record, m.statusMap);
  const revision = revisionOf(record, m.revision);
  const vendorId = optionalText('vendorId', record, m.vendor) ?? '';
  const technicianIds = listIds('technicians', record, m.technicians);
  const assetnums = new Set<string>();
  const primary = optionalText('assets', record, m.asset);
  if (primary !== undefined) assetnums.add(primary);
  if (m.multiAssets) for (const a of listIds('assets', record, m.multiAssets)) assetnums.add(a);
  const assetIds = [...assetnums].map((a) => (m.qualifyAssetsBySite ? `${siteid}/${a}` : a));
  const start = firstDate('windowStart', record, m.windowStart);
  const end = firstDate('windowEnd', record, m.windowEnd);
  // Half a window is no window: filling the gap either way could open access nobody scheduled.
  const window = start && end ? { start, end } : { start: start ?? end ?? new Date(0), end: start ?? end ?? new Date(0) };
  const title = optionalTitle(record);
  return canonicalOrder({
    source: sourceId,
    id,
    ...(title === undefined ? {} : { title }),
    site: siteid,
    status,
    sourceStatus,
    vendorId,
    technicianIds,
    assetIds,
    window,
    type: mapType(record, m),
    approvals: m.approvals ? mapApprovals(record, m.approvals) : [],
    revision,
  });
}

function optionalTitle(record: unknown): string | undefined {
  const v = getPath(record, 'description');
  if (typeof v !== 'string') return undefined;
  const s = v.trim();
  return s === '' ? undefined : clipText(s, 500);
}

/** One lean ASSET record → what wogate's register takes from Maximo; unmapped values are left to the overlay. */
export function mapMaximoAsset(record: Record<string, unknown>, a: MaximoAssetMapping): AssetRecord {
  const assetnum = text('asset', 'assetnum', getPath(record, 'assetnum') ?? missing('asset', 'assetnum'));
  const site = optionalText('site', record, 'siteid');
  const id = a.qualifyBySite && site !== undefined ? `${site}/${assetnum}` : assetnum;
  const rawClass = optionalText('class', record, a.classAttribute);
  const cls = rawClass !== undefined && a.classMap && Object.hasOwn(a.classMap, rawClass) ? a.classMap[rawClass] : rawClass;
  const prio = getPath(record, a.criticalityAttribute);
  const prioKey = typeof prio === 'number' || typeof prio === 'string' ? String(prio).trim() : undefined;
  const criticality = prioKey !== undefined && Object.hasOwn(a.criticalityMap, prioKey) ? a.criticalityMap[prioKey] : undefined;
  const name = optionalTitle(record);
  const zone = optionalText('zone', record, 'location');
  return canonicalAsset({
    id,
    ...(name === undefined ? {} : { name }),
    ...(cls === undefined ? {} : { class: cls }),
    ...(criticality !== undefined && (CRITICALITIES as readonly string[]).includes(criticality) ? { criticality } : {}),
    ...(site === undefined ? {} : { site }),
    ...(zone === undefined ? {} : { zone }),
  });
}

/** The oslc.select for work orders: the attributes the mapping reads, children included. */
export function workOrderSelect(m: MaximoMapping): string {
  const attrs = new Set(['wonum', 'siteid', 'workorderid', 'description', 'status', 'statusdate', 'changedate', m.vendor, m.type, m.asset, ...m.windowStart, ...m.windowEnd]);
  const terms = [...attrs, m.technicians.select];
  if (m.approvals) terms.push(m.approvals.select);
  if (m.multiAssets) terms.push(m.multiAssets.select);
  return [...new Set(terms)].join(',');
}

export function assetSelect(a: MaximoAssetMapping): string {
  return [...new Set(['assetnum', 'siteid', 'description', 'location', a.classAttribute, a.criticalityAttribute])].join(',');
}
