import { WogateError } from '../domain/errors.js';
import {
  CANONICAL_STATUSES, ORDER_TYPES,
  type Approval, type CanonicalStatus, type OrderType, type WorkOrder,
} from '../domain/workorder.js';
import { daysInMonth, fail, isPlainObject, quote, toId } from './mapping.js';
import { canonicalOrder, clipText } from './canonical-order.js';
export { isPlainObject, toId };

/**
 * MaintainX work order → canonical WorkOrder. The same function reads the API's `workOrder` and a
 * webhook's `newWorkOrder`, so both give the same revision (`updatedAt`) for the same state.
 */

/** The work order statuses in MaintainX's OpenAPI document (GET /workorders `statuses` enum). */
export const MAINTAINX_STATUSES = ['OPEN', 'IN_PROGRESS', 'ON_HOLD', 'DONE', 'CANCELED', 'SKIPPED'] as const;

/**
 * MaintainX has no "approved" state. OPEN is therefore awaiting approval unless the configured
 * approval field or category says otherwise (see MaintainXApprovalOptions); an organisation that
 * treats every open order as approved maps OPEN to `approved` explicitly.
 */
export const DEFAULT_STATUS_MAP: Readonly<Record<string, CanonicalStatus>> = {
  OPEN: 'awaiting_approval',
  IN_PROGRESS: 'in_progress',
  ON_HOLD: 'on_hold',
  DONE: 'completed',
  CANCELED: 'cancelled',
  // A skipped occurrence of a recurring order will never be worked.
  SKIPPED: 'cancelled',
};

/** MaintainX `type` (nullable on historical orders, which count as planned). */
export const DEFAULT_TYPE_MAP: Readonly<Record<string, OrderType>> = {
  PREVENTIVE: 'planned',
  REACTIVE: 'corrective',
  OTHER: 'corrective',
  CYCLE_COUNT: 'planned',
};

/**
 * Where the canonical fields come from when MaintainX has no native place for them. Every `…Field`
 * is the exact label of a work-order custom field (the key in `extraFields`); list fields hold ids
 * separated by commas, semicolons or new lines.
 */
export interface MaintainXFieldOptions {
  /** Vendor id as wogate knows it. Default: the order's only entry in `vendorIds`. */
  readonly vendorField?: string;
  /** Technician ids. Default: the assigned users (`assigneeIds`, or USER entries of `assignees`). */
  readonly techniciansField?: string;
  /** More asset ids, added to the native `assetId`. */
  readonly assetsField?: string;
  /** Site id. Default: `locationId`. */
  readonly siteField?: string;
  /** Window start, ISO 8601 with offset. Default: `startDate`. */
  readonly windowStartField?: string;
  /** Window end, ISO 8601 with offset. Default: `dueDate`. */
  readonly windowEndField?: string;
  /** A category whose presence makes the order an emergency, whatever its type. */
  readonly emergencyCategory?: string;
}

/**
 * How approval is expressed. Approvers come from `field` (ids of the people who approved); an
 * order whose status maps to `awaiting_approval` (OPEN by default) counts as `approved` when that
 * field names someone or when the order carries `category`.
 */
export interface MaintainXApprovalOptions {
  readonly field?: string;
  readonly category?: string;
}

export interface MaintainXMapping {
  readonly statusMap: Readonly<Record<string, CanonicalStatus>>;
  readonly typeMap: Readonly<Record<string, OrderType>>;
  readonly fields: MaintainXFieldOptions;
  readonly approval: MaintainXApprovalOptions;
}

/** Where a work order sits in the message, for error paths, and what the message says around it. */
export interface OrderContext {
  /** Dotted path of the work order object: `newWorkOrder`, `workOrder`, `workOrders.3`. */
  readonly path: string;
  /** The order id when it lives outside the object (a webhook's top-level `workOrderId`). */
  readonly id?: { readonly value: unknown; readonly path: string };
  /** Revision when the object has no `updatedAt` (a webhook's `occurredAt`). */
  readonly fallbackRevision?: string;
}

const MAX_TITLE_LENGTH = 500;
// C0, DEL and C1: they break log lines and make look-alike ids.
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/;
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL_CHARS_ALL = /[\u0000-\u001f\u007f-\u009f]/g;
const ISO_DATE_TIME =
  /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?(?:([Zz])|([+-])(\d{2}):?(\d{2}))?$/;
const LIST_SEPARATOR = /[,;\n]/;
const TERMINAL: readonly CanonicalStatus[] = ['completed', 'closed', 'cancelled'];
// Nothing can be granted inside it: it ended before any request can arrive.
const EMPTY_WINDOW = { start: new Date(0), end: new Date(0) } as const;

/** Own data property only: payloads are attacker-shaped and a label may be `__proto__`. */
export function own(obj: unknown, key: string): unknown {
  if (!isPlainObject(obj) || !Object.hasOwn(obj, key)) return undefined;
  const desc = Object.getOwnPropertyDescriptor(obj, key);
  return desc !== undefined && 'value' in desc ? desc.value : undefined;
}

/** Never String() an object: a payload may carry its own `toString` key. */
function kindOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

/** RFC 3339 date-time (what MaintainX's `format: date-time` fields hold). A time without offset is refused: whose local time? */
export function toDate(field: string, path: string, v: unknown): Date {
  if (typeof v !== 'string') throw fail(field, path, `value at "${path}" is ${kindOf(v)}, expected an ISO 8601 date-time`);
  const m = ISO_DATE_TIME.exec(v.trim());
  if (!m) throw fail(field, path, `value at "${path}" is not an ISO 8601 date-time`);
  const [, ys, mos, ds, hs, mis, ss, frac, zulu, sign, ohs, oms] = m;
  if (zulu === undefined && sign === undefined) throw fail(field, path, `value at "${path}" has no timezone offset; send Z or ±hh:mm`);
  const [y, mo, d, h, mi, sec, oh, om] = [ys, mos, ds, hs, mis, ss ?? '0', ohs ?? '0', oms ?? '0'].map(Number) as
    [number, number, number, number, number, number, number, number];
  if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > daysInMonth(y, mo) || h > 23 || mi > 59 || sec > 59 || oh > 23 || om > 59) {
    throw fail(field, path, `value at "${path}" is not a valid date-time`);
  }
  const ms = frac === undefined ? 0 : Number(frac.padEnd(3, '0').slice(0, 3));
  const offsetMinutes = (sign === '-' ? -1 : 1) * (oh * 60 + om);
  return new Date(Date.UTC(y, mo - 1, d, h, mi, sec, ms) - offsetMinutes * 60_000);
}

function lookup<T>(map: Readonly<Record<string, T>>, key: string): T | undefined {
  return Object.hasOwn(map, key) ? map[key] : undefined;
}

function knownKeys(map: Readonly<Record<string, unknown>>): string {
  const keys = Object.keys(map);
  return keys.length > 20 ? `${keys.slice(0, 20).join(', ')}, …` : keys.join(', ');
}

/** A custom field's value: MaintainX sends `extraFields` as label → string. */
function extra(wo: unknown, label: string, base: string): { value: string | undefined; path: string } {
  const path = `${base}.extraFields.${label}`;
  const v = own(own(wo, 'extraFields'), label);
  if (v === undefined || v === null) return { value: undefined, path };
  if (typeof v === 'number' && Number.isFinite(v)) return { value: String(v), path };
  if (typeof v !== 'string') throw fail(label, path, `value at "${path}" is ${kindOf(v)}, expected a string`);
  const s = v.trim();
  return { value: s === '' ? undefined : s, path };
}

function splitIds(field: string, path: string, text: string | undefined): string[] {
  if (text === undefined) return [];
  return text.split(LIST_SEPARATOR).map((s) => s.trim()).filter((s) => s !== '').map((s) => toId(field, path, s));
}

/** Array of ids; null or absent is none. Duplicates collapse so one technician never becomes two grants. */
function idArray(field: string, path: string, v: unknown, pick?: (item: unknown) => unknown): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw fail(field, path, `value at "${path}" is ${kindOf(v)}, expected an array`);
  const out: string[] = [];
  v.forEach((item: unknown, i) => {
    const id = pick ? pick(item) : item;
    if (id !== undefined) out.push(toId(field, `${path}.${i}`, id));
  });
  return out;
}

function categories(wo: unknown, base: string): string[] {
  const v = own(wo, 'categories');
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw fail('categories', `${base}.categories`, `value at "${base}.categories" is ${kindOf(v)}, expected an array`);
  return v.filter((c): c is string => typeof c === 'string').map((c) => c.trim());
}

function mapStatus(wo: unknown, base: string, statusMap: MaintainXMapping['statusMap']): [CanonicalStatus, string] {
  const path = `${base}.status`;
  const raw = own(wo, 'status');
  if (raw === undefined || raw === null) throw fail('status', path, `path "${path}" is missing`);
  const code = toId('status', path, raw);
  const status = lookup(statusMap, code);
  if (status === undefined) {
    throw fail('status', path, `MaintainX status ${quote(code)} at "${path}" has no mapping in statusMap (known: ${knownKeys(statusMap)})`);
  }
  return [status, code];
}

function mapType(wo: unknown, base: string, m: MaintainXMapping, cats: readonly string[]): OrderType {
  if (m.fields.emergencyCategory !== undefined && cats.includes(m.fields.emergencyCategory)) return 'emergency';
  const path = `${base}.type`;
  const raw = own(wo, 'type');
  // MaintainX documents null for historical orders.
  if (raw === undefined || raw === null) return 'planned';
  const code = toId('type', path, raw);
  const type = lookup(m.typeMap, code);
  if (type === undefined) throw fail('type', path, `MaintainX type ${quote(code)} at "${path}" has no mapping in typeMap (known: ${knownKeys(m.typeMap)})`);
  return type;
}

function mapVendor(wo: unknown, base: string, m: MaintainXMapping): string {
  if (m.fields.vendorField !== undefined) {
    const { value, path } = extra(wo, m.fields.vendorField, base);
    return value === undefined ? '' : toId('vendorId', path, value);
  }
  const ids = [...new Set(idArray('vendorId', `${base}.vendorIds`, own(wo, 'vendorIds')))];
  // Several vendors on one order would make "which vendor gets access" a guess. The joined value
  // can match no registered vendor, so such an order grants nothing and `explain` shows why.
  return ids.sort().join('+');
}

function mapTechnicians(wo: unknown, base: string, m: MaintainXMapping): string[] {
  if (m.fields.techniciansField !== undefined) {
    const { value, path } = extra(wo, m.fields.techniciansField, base);
    return [...new Set(splitIds('technicians', path, value))];
  }
  const assigneeIds = own(wo, 'assigneeIds');
  if (assigneeIds !== undefined && assigneeIds !== null) return [...new Set(idArray('technicians', `${base}.assigneeIds`, assigneeIds))];
  // The list endpoint has no assigneeIds; `expand=assignees` gives {type, id} and teams are not people.
  return [...new Set(idArray('technicians', `${base}.assignees`, own(wo, 'assignees'), (a) => (own(a, 'type') === 'USER' ? own(a, 'id') : undefined)))];
}

function mapAssets(wo: unknown, base: string, m: MaintainXMapping): string[] {
  const ids: string[] = [];
  const assetId = own(wo, 'assetId');
  const expanded = own(own(wo, 'asset'), 'id');
  if (assetId !== undefined && assetId !== null) ids.push(toId('assets', `${base}.assetId`, assetId));
  else if (expanded !== undefined && expanded !== null) ids.push(toId('assets', `${base}.asset.id`, expanded));
  if (m.fields.assetsField !== undefined) {
    const { value, path } = extra(wo, m.fields.assetsField, base);
    ids.push(...splitIds('assets', path, value));
  }
  return [...new Set(ids)];
}

function dateFrom(wo: unknown, base: string, label: string | undefined, native: string, field: string): Date | undefined {
  if (label !== undefined) {
    const { value, path } = extra(wo, label, base);
    return value === undefined ? undefined : toDate(field, path, value);
  }
  const v = own(wo, native);
  return v === undefined || v === null ? undefined : toDate(field, `${base}.${native}`, v);
}

function mapApprovals(wo: unknown, base: string, m: MaintainXMapping): Approval[] {
  if (m.approval.field === undefined) return [];
  const { value, path } = extra(wo, m.approval.field, base);
  // One person approving twice must not satisfy a policy that asks for two approvals.
  return [...new Set(splitIds('approvals', path, value))].map((by) => ({ by }));
}

function mapRevision(wo: unknown, base: string, fallback: string | undefined): string {
  const raw = own(wo, 'updatedAt');
  if (raw === undefined || raw === null) {
    if (fallback === undefined) throw fail('revision', `${base}.updatedAt`, `path "${base}.updatedAt" is missing`);
    return fallback;
  }
  // Rendered one way so that equal instants compare equal as text too.
  return toDate('revision', `${base}.updatedAt`, raw).toISOString();
}

/**
 * Maps what can be mapped. Only a record that cannot be read at all (no id, a status or type code
 * with no mapping, a malformed value) throws HOOK_MAPPING_FAILED naming the field and its path; a
 * missing vendor, technician or date is the policy's to deny, so it maps to an empty value or an
 * empty window.
 */
export function mapMaintainXOrder(sourceId: string, wo: unknown, m: MaintainXMapping, at: OrderContext): WorkOrder {
  const base = at.path;
  if (!isPlainObject(wo)) throw fail('workOrder', base, `value at "${base}" is ${kindOf(wo)}, expected an object`);
  const idValue = at.id ? at.id.value : own(wo, 'id');
  const idPath = at.id ? at.id.path : `${base}.id`;
  if (idValue === undefined || idValue === null) throw fail('id', idPath, `path "${idPath}" is missing`);
  const id = toId('id', idPath, idValue);

  const [mappedStatus, sourceStatus] = mapStatus(wo, base, m.statusMap);
  const cats = categories(wo, base);
  const approvals = mapApprovals(wo, base, m);
  const approvedByCategory = m.approval.category !== undefined && cats.includes(m.approval.category);
  const status = mappedStatus === 'awaiting_approval' && (approvals.length > 0 || approvedByCategory) ? 'approved' : mappedStatus;

  const start = dateFrom(wo, base, m.fields.windowStartField, 'startDate', 'windowStart');
  const end = dateFrom(wo, base, m.fields.windowEndField, 'dueDate', 'windowEnd');
  const titleRaw = own(wo, 'title');
  // Free text shown in logs and the portal: control characters would let it forge lines there.
  const titleText = typeof titleRaw === 'string' ? titleRaw.replace(CONTROL_CHARS_ALL, ' ').trim() : '';
  const title = titleText === '' ? undefined : clipText(titleText, MAX_TITLE_LENGTH);
  let site: string | undefined;
  if (m.fields.siteField !== undefined) {
    const { value, path } = extra(wo, m.fields.siteField, base);
    site = value === undefined ? undefined : toId('site', path, value);
  } else {
    const loc = own(wo, 'locationId');
    site = loc === undefined || loc === null ? undefined : toId('site', `${base}.locationId`, loc);
  }

  return canonicalOrder({
    source: sourceId,
    id,
    ...(title === undefined ? {} : { title }),
    ...(site === undefined ? {} : { site }),
    status,
    sourceStatus,
    vendorId: mapVendor(wo, base, m),
    technicianIds: mapTechnicians(wo, base, m),
    assetIds: mapAssets(wo, base, m),
    window: start && end ? { start, end } : EMPTY_WINDOW,
    type: mapType(wo, base, m, cats),
    approvals,
    revision: mapRevision(wo, base, at.fallbackRevision),
  });
}

/**
 * Whether a webhook's `newWorkOrder` carries every field the mapping reads. A partial copy (the
 * payloads seen in the wild omit vendors and assignees) would read as "no vendor" and take access
 * away, so such an event is only a doorbell unless it ends the order.
 */
export function isCompleteOrder(wo: unknown, m: MaintainXMapping): boolean {
  const hasExtra = (label: string | undefined): boolean => label === undefined || isPlainObject(own(wo, 'extraFields'));
  const has = (key: string): boolean => isPlainObject(wo) && Object.hasOwn(wo, key);
  const f = m.fields;
  return has('updatedAt')
    && (f.vendorField !== undefined ? hasExtra(f.vendorField) : has('vendorIds'))
    && (f.techniciansField !== undefined ? hasExtra(f.techniciansField) : has('assigneeIds') || has('assignees'))
    && (f.windowStartField !== undefined ? hasExtra(f.windowStartField) : has('startDate'))
    && (f.windowEndField !== undefined ? hasExtra(f.windowEndField) : has('dueDate'))
    && hasExtra(m.approval.field) && hasExtra(f.assetsField) && hasExtra(f.siteField)
    && (m.approval.category === undefined && f.emergencyCategory === undefined ? true : has('categories'));
}

export function isTerminal(status: CanonicalStatus): boolean {
  return TERMINAL.includes(status);
}

function checkLabel(name: string, label: string | undefined): void {
  if (label === undefined) return;
  if (label.trim() === '' || label !== label.trim() || CONTROL_CHARS.test(label)) {
    throw new WogateError('CONFIG_INVALID', `MaintainX ${name} must be a custom field label without surrounding spaces or control characters`);
  }
}

/** Defaults merged with the configuration (a configured code replaces the default for that code). */
export function buildMapping(o: {
  statusMap?: Readonly<Record<string, CanonicalStatus>> | undefined;
  typeMap?: Readonly<Record<string, OrderType>> | undefined;
  fields?: MaintainXFieldOptions | undefined;
  approval?: MaintainXApprovalOptions | undefined;
}): MaintainXMapping {
  const statusMap = { ...DEFAULT_STATUS_MAP, ...o.statusMap };
  const typeMap = { ...DEFAULT_TYPE_MAP, ...o.typeMap };
  for (const [code, s] of Object.entries(statusMap)) {
    if (!(CANONICAL_STATUSES as readonly string[]).includes(s)) throw new WogateError('CONFIG_INVALID', `MaintainX statusMap maps ${quote(code)} to an unknown canonical status`);
  }
  for (const [code, t] of Object.entries(typeMap)) {
    if (!(ORDER_TYPES as readonly string[]).includes(t)) throw new WogateError('CONFIG_INVALID', `MaintainX typeMap maps ${quote(code)} to an unknown order type`);
  }
  const fields = { ...o.fields };
  const approval = { ...o.approval };
  for (const [k, v] of Object.entries(fields)) checkLabel(`fields.${k}`, v);
  checkLabel('approval.field', approval.field);
  checkLabel('approval.category', approval.category);
  return { statusMap, typeMap, fields, approval };
}
