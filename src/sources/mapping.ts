import { WogateError } from '../domain/errors.js';
import {
  CANONICAL_STATUSES, ORDER_TYPES,
  type Approval, type CanonicalStatus, type OrderType, type WorkOrder,
} from '../domain/workorder.js';
import { canonicalOrder } from './canonical-order.js';

/** Dotted paths into a CMMS payload (array items by index: `a.0.b`), one per canonical field. */
export interface FieldMapping {
  id: string;
  status: string;
  vendorId: string;
  /** An array of ids, or of objects holding the id at technicianIdField; or a single id. */
  technicians: string;
  technicianIdField?: string;
  assets: string;
  assetIdField?: string;
  /** ISO-8601 with an offset, epoch seconds or milliseconds, or OData V2 `/Date(ms)/`. */
  windowStart: string;
  windowEnd: string;
  title?: string;
  site?: string;
  /** Mapped through typeMap; without this path every order is 'planned'. */
  type?: string;
  /** An array of approver ids, or of objects with approverField (and approvedAtField). */
  approvals?: string;
  approverField?: string;
  approvedAtField?: string;
  /** Change date or rowstamp; without this path the delivery's event time is used. */
  revision?: string;
}

export interface SourceMapping {
  fields: FieldMapping;
  statusMap: Record<string, CanonicalStatus>;
  typeMap?: Record<string, OrderType>;
}

const FORBIDDEN_SEGMENTS = new Set(['__proto__', 'constructor', 'prototype']);
const ARRAY_INDEX = /^(0|[1-9][0-9]*)$/;
const MAX_ID_LENGTH = 200;
// C0, DEL and C1: they break log lines and make look-alike ids.
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/;
// Below this a number is epoch seconds (1e11 s is the year 5138), above it milliseconds.
const EPOCH_SECONDS_LIMIT = 1e11;
const ISO_DATE_TIME =
  /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?(?:([Zz])|([+-])(\d{2}):?(\d{2}))?$/;
// The largest instant a Date can hold.
const MAX_EPOCH_MS = 8.64e15;
const ODATA_DATE = /^\/Date\((-?\d{1,15})(?:[+-]\d{4})?\)\/$/;

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/**
 * Walks own data properties of plain objects and arrays only. Payloads are attacker-shaped and
 * paths are config, so neither an inherited member (`toString`, `__proto__`) nor a getter may
 * ever be reached.
 */
export function getPath(obj: unknown, path: string): unknown {
  let cur: unknown = obj;
  for (const seg of path.split('.')) {
    if (seg === '' || FORBIDDEN_SEGMENTS.has(seg)) return undefined;
    if (Array.isArray(cur)) {
      if (!ARRAY_INDEX.test(seg)) return undefined;
    } else if (!isPlainObject(cur)) {
      return undefined;
    }
    if (!Object.hasOwn(cur, seg)) return undefined;
    const desc = Object.getOwnPropertyDescriptor(cur, seg);
    if (desc === undefined || !('value' in desc)) return undefined;
    cur = desc.value;
  }
  return cur;
}

export function fail(field: string, path: string, problem: string): WogateError {
  return new WogateError('HOOK_MAPPING_FAILED', `${field}: ${problem}`, { field, path });
}

/** Never String() an object: a payload may carry its own `toString` key. */
function kindOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  return `a ${typeof v}`;
}

export function quote(s: string): string {
  return JSON.stringify(s.length > 64 ? `${s.slice(0, 64)}…` : s);
}

export function toId(field: string, path: string, v: unknown): string {
  let s: string;
  if (typeof v === 'string') s = v.trim();
  else if (typeof v === 'number' && Number.isFinite(v)) s = String(v);
  else throw fail(field, path, `value at "${path}" is ${kindOf(v)}, expected a string or number`);
  if (s === '') throw fail(field, path, `value at "${path}" is empty`);
  if (s.length > MAX_ID_LENGTH) throw fail(field, path, `value at "${path}" is longer than ${MAX_ID_LENGTH} characters`);
  if (CONTROL_CHARS.test(s)) throw fail(field, path, `value at "${path}" contains control characters`);
  return s;
}

function required(field: string, payload: unknown, path: string): unknown {
  const v = getPath(payload, path);
  if (v === undefined || v === null) throw fail(field, path, `path "${path}" is missing`);
  return v;
}

function lookup<T>(map: Record<string, T>, key: string): T | undefined {
  return Object.hasOwn(map, key) ? map[key] : undefined;
}

function knownKeys(map: Record<string, unknown>): string {
  const keys = Object.keys(map);
  return keys.length > 20 ? `${keys.slice(0, 20).join(', ')}, …` : keys.join(', ');
}

/**
 * Ids from an array (of ids, or of objects holding one at idField), a single id or a single
 * object. Duplicates collapse so that one technician or asset never becomes two grants.
 */
function idList(field: string, payload: unknown, path: string, idField: string | undefined): string[] {
  const value = getPath(payload, path);
  if (value === undefined) throw fail(field, path, `path "${path}" is missing`);
  // An explicit null is the source saying "none"; an absent path is more likely a config typo.
  if (value === null) return [];
  const items = Array.isArray(value) ? value : [value];
  const out = new Set<string>();
  items.forEach((item: unknown, i) => {
    const itemPath = Array.isArray(value) ? `${path}.${i}` : path;
    if (isPlainObject(item)) {
      if (idField === undefined) throw fail(field, itemPath, `item at "${itemPath}" is an object but no id field is configured for ${field}`);
      const idPath = `${itemPath}.${idField}`;
      const id = getPath(item, idField);
      if (id === undefined || id === null) throw fail(field, idPath, `path "${idPath}" is missing`);
      out.add(toId(field, idPath, id));
    } else {
      out.add(toId(field, itemPath, item));
    }
  });
  return [...out];
}

export function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

function parseIso(s: string): Date | 'no-offset' | undefined {
  const m = ISO_DATE_TIME.exec(s);
  if (!m) return undefined;
  const [, ys, mos, ds, hs, mis, ss, frac, zulu, sign, ohs, oms] = m;
  if (zulu === undefined && sign === undefined) return 'no-offset';
  const [y, mo, d, h, mi, sec] = [ys, mos, ds, hs, mis, ss ?? '0'].map(Number) as [number, number, number, number, number, number];
  const oh = Number(ohs ?? 0);
  const om = Number(oms ?? 0);
  if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > daysInMonth(y, mo)) return undefined;
  if (h > 23 || mi > 59 || sec > 59 || oh > 23 || om > 59) return undefined;
  const ms = frac === undefined ? 0 : Number(frac.padEnd(3, '0').slice(0, 3));
  const offsetMinutes = (sign === '-' ? -1 : 1) * (oh * 60 + om);
  return new Date(Date.UTC(y, mo - 1, d, h, mi, sec, ms) - offsetMinutes * 60_000);
}

function toDate(field: string, path: string, v: unknown): Date {
  let ms: number | undefined;
  if (typeof v === 'number') {
    if (Number.isFinite(v) && v >= 0) ms = v < EPOCH_SECONDS_LIMIT ? v * 1000 : v;
  } else if (typeof v === 'string') {
    const s = v.trim();
    const odata = ODATA_DATE.exec(s);
    if (odata) {
      // SAP's /Date(ms+0000)/ carries UTC milliseconds; the suffix is informational.
      ms = Number(odata[1]);
    } else {
      const parsed = parseIso(s);
      if (parsed === 'no-offset') {
        // Local time of which zone? Guessing would move an access window by hours.
        throw fail(field, path, `value at "${path}" has no timezone offset; send Z or ±hh:mm`);
      }
      ms = parsed?.getTime();
    }
  } else {
    throw fail(field, path, `value at "${path}" is ${kindOf(v)}, expected an ISO-8601 date-time or epoch number`);
  }
  if (ms === undefined || !Number.isFinite(ms) || ms < 0 || ms > MAX_EPOCH_MS) {
    throw fail(field, path, `value at "${path}" is not a valid date-time`);
  }
  return new Date(ms);
}

function optionalText(field: string, payload: unknown, path: string | undefined, asId: boolean): string | undefined {
  if (path === undefined) return undefined;
  const v = getPath(payload, path);
  if (v === undefined || v === null) return undefined;
  if (asId) return toId(field, path, v);
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  if (typeof v !== 'string') throw fail(field, path, `value at "${path}" is ${kindOf(v)}, expected a string`);
  const s = v.trim();
  return s === '' ? undefined : s;
}

function mapStatus(payload: unknown, path: string, statusMap: Record<string, CanonicalStatus>): [CanonicalStatus, string] {
  const sourceStatus = toId('status', path, required('status', payload, path));
  const status = lookup(statusMap, sourceStatus);
  if (status === undefined) {
    throw fail('status', path, `source status ${quote(sourceStatus)} at "${path}" has no mapping in statusMap (known: ${knownKeys(statusMap)})`);
  }
  if (!(CANONICAL_STATUSES as readonly string[]).includes(status)) {
    throw new WogateError('CONFIG_INVALID', `statusMap maps ${quote(sourceStatus)} to an unknown canonical status`);
  }
  return [status, sourceStatus];
}

function mapType(payload: unknown, path: string | undefined, typeMap: Record<string, OrderType> | undefined): OrderType {
  if (path === undefined) return 'planned';
  const raw = toId('type', path, required('type', payload, path));
  const mapped: string | undefined = typeMap === undefined ? raw : lookup(typeMap, raw);
  if (mapped === undefined || !(ORDER_TYPES as readonly string[]).includes(mapped)) {
    const known = typeMap === undefined ? ORDER_TYPES.join(', ') : knownKeys(typeMap);
    throw fail('type', path, `source type ${quote(raw)} at "${path}" has no mapping in typeMap (known: ${known})`);
  }
  return mapped as OrderType;
}

function mapApprovals(payload: unknown, f: FieldMapping): Approval[] {
  if (f.approvals === undefined) return [];
  const path = f.approvals;
  const value = getPath(payload, path);
  // No approvals listed can only ever deny, so absence is not worth refusing the order over.
  if (value === undefined || value === null) return [];
  const items = Array.isArray(value) ? value : [value];
  const byApprover = new Map<string, Approval>();
  items.forEach((item: unknown, i) => {
    const itemPath = Array.isArray(value) ? `${path}.${i}` : path;
    let approval: Approval;
    if (isPlainObject(item)) {
      if (f.approverField === undefined) throw fail('approvals', itemPath, `item at "${itemPath}" is an object but approverField is not configured`);
      const byPath = `${itemPath}.${f.approverField}`;
      const by = getPath(item, f.approverField);
      if (by === undefined || by === null) throw fail('approvals', byPath, `path "${byPath}" is missing`);
      const at = f.approvedAtField === undefined ? undefined : getPath(item, f.approvedAtField);
      const atPath = `${itemPath}.${f.approvedAtField ?? ''}`;
      approval = at === undefined || at === null
        ? { by: toId('approvals', byPath, by) }
        : { by: toId('approvals', byPath, by), at: toDate('approvals', atPath, at) };
    } else {
      approval = { by: toId('approvals', itemPath, item) };
    }
    // A policy that asks for two approvals must not be satisfied by one person approving twice.
    if (!byApprover.has(approval.by)) byApprover.set(approval.by, approval);
  });
  return [...byApprover.values()];
}

/**
 * Maps one CMMS payload onto the canonical WorkOrder, or throws HOOK_MAPPING_FAILED naming the
 * canonical field and the JSON path. Judgements about the content (an end before the start,
 * an unknown asset) belong to the domain's policy evaluation, not here.
 */
export function mapWorkOrder(sourceId: string, payload: unknown, mapping: SourceMapping, fallbackRevision: string): WorkOrder {
  const f = mapping.fields;
  const id = toId('id', f.id, required('id', payload, f.id));
  const [status, sourceStatus] = mapStatus(payload, f.status, mapping.statusMap);
  const vendorId = toId('vendorId', f.vendorId, required('vendorId', payload, f.vendorId));
  const technicianIds = idList('technicians', payload, f.technicians, f.technicianIdField);
  const assetIds = idList('assets', payload, f.assets, f.assetIdField);
  const start = toDate('windowStart', f.windowStart, required('windowStart', payload, f.windowStart));
  const end = toDate('windowEnd', f.windowEnd, required('windowEnd', payload, f.windowEnd));
  const type = mapType(payload, f.type, mapping.typeMap);
  const approvals = mapApprovals(payload, f);
  // A configured revision that is missing is refused rather than replaced by the event time:
  // mixing rowstamps with timestamps would break the ordering that stops stale overwrites.
  const revision = f.revision === undefined ? fallbackRevision : toId('revision', f.revision, required('revision', payload, f.revision));
  const title = optionalText('title', payload, f.title, false);
  const site = optionalText('site', payload, f.site, true);

  return canonicalOrder({
    source: sourceId,
    id,
    ...(title === undefined ? {} : { title }),
    ...(site === undefined ? {} : { site }),
    status,
    sourceStatus,
    vendorId,
    technicianIds,
    assetIds,
    window: { start, end },
    type,
    approvals,
    revision,
  });
}
