import { WogateError } from '../domain/errors.js';
import { CRITICALITIES, type Criticality } from '../domain/register.js';
import {
  CANONICAL_STATUSES, ORDER_TYPES,
  type Approval, type CanonicalStatus, type OrderType, type WorkOrder,
} from '../domain/workorder.js';
import { getPath } from './mapping.js';
import type { AssetRecord } from './source.js';
import { canonicalAsset, canonicalOrder, clipText } from './canonical-order.js';

/**
 * One status rule: it matches when every listed system status and every listed user status is
 * active on the order. Rules are tried in order; the first match decides.
 */
export interface SapStatusRule {
  readonly system?: readonly string[];
  readonly user?: readonly string[];
  readonly status: CanonicalStatus;
}

/**
 * Where approvals come from. SAP keeps no approver list on the order, so each choice is a stand-in:
 * - `release`: a released order (system status `systemStatus`, default REL) counts as one approval,
 *   attributed to LastChangeByUser, the last user who changed the order (the API does not say who released it);
 * - `userStatus`: every listed user status that is active counts as one approval, by `user-status:<CODE>`;
 * - `none`: no approvals (a policy asking for any will deny).
 */
export type SapApprovals =
  | { readonly from: 'release'; readonly systemStatus?: string }
  | { readonly from: 'userStatus'; readonly userStatuses: readonly string[] }
  | { readonly from: 'none' };

export interface SapMappingOptions {
  /** First match wins; replaces DEFAULT_STATUS_RULES entirely when given. */
  readonly statusRules?: readonly SapStatusRule[];
  /** `basic` (MaintOrdBasicStart/EndDateTime, default) or `scheduled` (MaintOrdSchedldBscStrt/EndDateTime). */
  readonly window?: 'basic' | 'scheduled';
  /** Which technical object is the asset id; default `equipment`. */
  readonly assetIdFrom?: 'equipment' | 'functionalLocation' | 'equipmentOrFunctionalLocation';
  /** Also take assets from the order's object list (to_MaintOrderObjectListItem); default false. */
  readonly includeObjectList?: boolean;
  /** Partner function naming the vendor (supplier number); default VN. */
  readonly vendorPartnerFunction?: string;
  /** Partner functions naming technicians; default [VW]. */
  readonly technicianPartnerFunctions?: readonly string[];
  readonly approvals?: SapApprovals;
  /** Header field mapped through typeMap; default MaintenanceOrderType. */
  readonly typeField?: 'MaintenanceOrderType' | 'MaintenanceActivityType' | 'MaintPriority';
  readonly typeMap?: Readonly<Record<string, OrderType>>;
  /** Type of an order whose code typeMap does not know; default corrective. */
  readonly defaultType?: OrderType;
  /** "000217100044" → "217100044" for all-digit ids (orders, equipment, partners); default true. */
  readonly stripLeadingZeros?: boolean;
}

export interface SapAssetOptions {
  /** Entity set of API_EQUIPMENT; default Equipment. */
  readonly entitySet?: string;
  /** Field holding the asset class; default TechnicalObjectType. */
  readonly classField?: string;
  /** Field holding the criticality code; default ABCIndicator. */
  readonly criticalityField?: string;
  /** Criticality code → criticality; default A critical, B high, C medium. */
  readonly criticalityMap?: Readonly<Record<string, Criticality>>;
  /** First non-empty of these fields is the zone; default FunctionalLocationLabelName, FunctionalLocation, AssetLocation. */
  readonly zoneFields?: readonly string[];
}

/**
 * Precedence, highest first: deletion (DLT, DLFL) → cancelled; CLSD → closed; TECO and CNF (final
 * confirmation) → completed; LKD (locked) → on_hold; PCNF (partially confirmed) → in_progress;
 * REL → approved; CRTD → awaiting_approval. A terminal status must win over REL, which stays on
 * the status line of a technically completed order.
 */
export const DEFAULT_STATUS_RULES: readonly SapStatusRule[] = [
  { system: ['DLT'], status: 'cancelled' },
  { system: ['DLFL'], status: 'cancelled' },
  { system: ['CLSD'], status: 'closed' },
  { system: ['TECO'], status: 'completed' },
  { system: ['CNF'], status: 'completed' },
  { system: ['LKD'], status: 'on_hold' },
  { system: ['PCNF'], status: 'in_progress' },
  { system: ['REL'], status: 'approved' },
  { system: ['CRTD'], status: 'awaiting_approval' },
];

/** Customizing differs per system: check these against your order types (transaction OIOA / IMG). */
export const DEFAULT_TYPE_MAP: Readonly<Record<string, OrderType>> = {
  PM01: 'corrective', PM02: 'planned', PM03: 'planned',
  YA01: 'corrective', YA02: 'emergency', YA03: 'planned',
};

export const DEFAULT_CRITICALITY_MAP: Readonly<Record<string, Criticality>> = { A: 'critical', B: 'high', C: 'medium' };
export const DEFAULT_ZONE_FIELDS: readonly string[] = ['FunctionalLocationLabelName', 'FunctionalLocation', 'AssetLocation'];

const MAX_ID_LENGTH = 200;
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/;
const ODATA_DATE = /^\/Date\((-?\d{1,15})(?:[+-]\d{4})?\)\/$/;
const MAX_EPOCH_MS = 8.64e15;
const STATUS_CODE = /^[A-Z0-9]{1,8}$/;
/** Order numbers are CHAR 12; anything else could not be put into an OData key literal safely. */
export const ORDER_ID = /^[A-Za-z0-9_-]{1,12}$/;
// A window that is never open: policy evaluation denies it as WINDOW_INVALID.
const NO_WINDOW = { start: new Date(0), end: new Date(0) };

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

export function mappingError(field: string, path: string, problem: string): WogateError {
  return new WogateError('HOOK_MAPPING_FAILED', `${field}: ${problem}`, { field, path });
}

function quote(s: string): string {
  return JSON.stringify(s.length > 64 ? `${s.slice(0, 64)}…` : s);
}

/** A string field, trimmed; undefined when absent, null, empty or not a string/number. */
export function text(rec: unknown, path: string): string | undefined {
  const v = getPath(rec, path);
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  if (typeof v !== 'string') return undefined;
  const s = v.trim();
  return s === '' ? undefined : s;
}

/** An id that is safe to log, store and compare: bounded, no control characters. */
function cleanId(s: string | undefined): string | undefined {
  if (s === undefined || s.length > MAX_ID_LENGTH || CONTROL_CHARS.test(s)) return undefined;
  return s;
}

export function normalizeId(s: string, strip: boolean): string {
  return strip && /^\d+$/.test(s) ? s.replace(/^0+(?=\d)/, '') : s;
}

/** OData V2 `/Date(ms[+-hhmm])/`: the number is UTC milliseconds, the suffix only says where it was local. */
export function parseODataDate(v: unknown): Date | undefined {
  if (typeof v !== 'string') return undefined;
  const m = ODATA_DATE.exec(v.trim());
  if (!m) return undefined;
  const ms = Number(m[1]);
  if (!Number.isFinite(ms) || ms < 0 || ms > MAX_EPOCH_MS) return undefined;
  return new Date(ms);
}

/**
 * An Edm.DateTimeOffset value in an OData V2 JSON body, the form SAP itself sends (`/Date(ms+0000)/`).
 * Whole seconds: the order timestamps are short UTC timestamps (YYYYMMDDhhmmss).
 */
export function odataDate(d: Date): string {
  return `/Date(${Math.floor(d.getTime() / 1000) * 1000}+0000)/`;
}

/** The OData V2 literal SAP accepts in $filter for Edm.DateTimeOffset. */
export function dateTimeOffsetLiteral(d: Date): string {
  const iso = d.toISOString();
  return `datetimeoffset'${d.getUTCMilliseconds() === 0 ? iso.replace('.000Z', 'Z') : iso}'`;
}

export function statusCodes(line: string | undefined): string[] {
  if (line === undefined) return [];
  return [...new Set(line.toUpperCase().split(/\s+/).filter((c) => STATUS_CODE.test(c)))];
}

function ruleMatches(rule: SapStatusRule, system: ReadonlySet<string>, user: ReadonlySet<string>): boolean {
  const sys = rule.system ?? [];
  const usr = rule.user ?? [];
  // A rule with no condition would swallow every order; the schema refuses it too.
  if (sys.length === 0 && usr.length === 0) return false;
  return sys.every((c) => system.has(c.toUpperCase())) && usr.every((c) => user.has(c.toUpperCase()));
}

export interface SapStatus {
  readonly status: CanonicalStatus;
  readonly sourceStatus: string;
  readonly system: readonly string[];
  readonly user: readonly string[];
}

/** Reads SystemStatusText and UserStatusText through the rules; throws naming the codes when none matches. */
export function mapStatus(rec: unknown, rules: readonly SapStatusRule[]): SapStatus {
  const system = statusCodes(text(rec, 'SystemStatusText'));
  const user = statusCodes(text(rec, 'UserStatusText'));
  const sourceStatus = `${system.join(' ')}${user.length > 0 ? ` / ${user.join(' ')}` : ''}`;
  const sys = new Set(system);
  const usr = new Set(user);
  const rule = rules.find((r) => ruleMatches(r, sys, usr));
  if (!rule) {
    const known = [...new Set(rules.flatMap((r) => [...(r.system ?? []), ...(r.user ?? [])]))].join(', ');
    throw mappingError('status', 'SystemStatusText', `status ${quote(sourceStatus || '(none)')} matches no status rule (codes the rules know: ${known})`);
  }
  if (!(CANONICAL_STATUSES as readonly string[]).includes(rule.status)) {
    throw new WogateError('CONFIG_INVALID', `a status rule maps to unknown canonical status ${quote(String(rule.status))}`);
  }
  return { status: rule.status, sourceStatus, system, user };
}

function results(rec: unknown, nav: string): unknown[] {
  const v = getPath(rec, nav);
  // Expanded navigations come as {results: [...]}; a deferred or absent one holds nothing we can use.
  const items = isPlainObject(v) ? getPath(v, 'results') : v;
  return Array.isArray(items) ? items : [];
}

function partners(rec: unknown, functions: readonly string[], strip: boolean): string[] {
  const wanted = new Set(functions.map((f) => f.toUpperCase()));
  const out = new Set<string>();
  for (const p of results(rec, 'to_MaintenanceOrderPartner')) {
    const fn = text(p, 'PartnerFunction')?.toUpperCase();
    const id = cleanId(text(p, 'MaintenanceOrderPartner'));
    if (fn !== undefined && wanted.has(fn) && id !== undefined) out.add(normalizeId(id, strip));
  }
  return [...out];
}

function assetsOf(rec: unknown, o: SapMappingOptions, strip: boolean): string[] {
  const from = o.assetIdFrom ?? 'equipment';
  const pick = (obj: unknown): string | undefined => {
    const equipment = cleanId(text(obj, 'Equipment'));
    const floc = cleanId(text(obj, 'FunctionalLocation'));
    if (from === 'equipment') return equipment === undefined ? undefined : normalizeId(equipment, strip);
    if (from === 'functionalLocation') return floc;
    return equipment !== undefined ? normalizeId(equipment, strip) : floc;
  };
  const out = new Set<string>();
  const head = pick(rec);
  if (head !== undefined) out.add(head);
  if (o.includeObjectList === true) {
    for (const item of results(rec, 'to_MaintOrderObjectListItem')) {
      const id = pick(item);
      if (id !== undefined) out.add(id);
    }
  }
  return [...out];
}

function approvalsOf(rec: unknown, status: SapStatus, a: SapApprovals): Approval[] {
  if (a.from === 'none') return [];
  if (a.from === 'userStatus') {
    const active = new Set(status.user);
    return [...new Set(a.userStatuses.map((s) => s.toUpperCase()))].filter((s) => active.has(s)).map((s) => ({ by: `user-status:${s}` }));
  }
  const releaseStatus = (a.systemStatus ?? 'REL').toUpperCase();
  const by = cleanId(text(rec, 'LastChangeByUser'));
  return status.system.includes(releaseStatus) && by !== undefined ? [{ by }] : [];
}

function typeOf(rec: unknown, o: SapMappingOptions): OrderType {
  const code = text(rec, o.typeField ?? 'MaintenanceOrderType');
  const map = o.typeMap ?? DEFAULT_TYPE_MAP;
  const mapped = code !== undefined && Object.hasOwn(map, code) ? map[code] : undefined;
  const t = mapped ?? o.defaultType ?? 'corrective';
  if (!(ORDER_TYPES as readonly string[]).includes(t)) throw new WogateError('CONFIG_INVALID', `typeMap maps ${quote(code ?? '')} to an unknown order type`);
  return t;
}

/**
 * Reads one API_MAINTENANCEORDER record (with to_MaintenanceOrderPartner expanded) into the canonical
 * order. Only an order that can't be identified or whose status no rule knows is refused: a missing
 * vendor, technician, asset or window is mapped as empty, and policy denies it with a reason.
 */
export function mapSapOrder(sourceId: string, rec: unknown, o: SapMappingOptions = {}): WorkOrder {
  if (!isPlainObject(rec)) throw mappingError('id', 'MaintenanceOrder', 'the record is not a JSON object');
  const strip = o.stripLeadingZeros ?? true;
  const rawId = text(rec, 'MaintenanceOrder');
  if (rawId === undefined) throw mappingError('id', 'MaintenanceOrder', 'path "MaintenanceOrder" is missing or empty');
  if (!ORDER_ID.test(rawId)) throw mappingError('id', 'MaintenanceOrder', `order number ${quote(rawId)} is not 1 to 12 letters, digits, "-" or "_"`);
  const id = normalizeId(rawId, strip);
  const status = mapStatus(rec, o.statusRules ?? DEFAULT_STATUS_RULES);

  const vendors = partners(rec, [o.vendorPartnerFunction ?? 'VN'], strip);
  // Two vendors on one order is ambiguous; naming neither makes policy deny instead of guessing.
  const vendorId = vendors.length === 1 ? (vendors[0] as string) : '';
  const technicianIds = partners(rec, o.technicianPartnerFunctions ?? ['VW'], strip);

  const [startField, endField] = o.window === 'scheduled'
    ? ['MaintOrdSchedldBscStrtDateTime', 'MaintOrdSchedldBscEndDateTime']
    : ['MaintOrdBasicStartDateTime', 'MaintOrdBasicEndDateTime'];
  const start = parseODataDate(getPath(rec, startField));
  const end = parseODataDate(getPath(rec, endField));
  // Half a window is no window: an open start would reach back to 1970.
  const window = start && end ? { start, end } : NO_WINDOW;

  const changed = parseODataDate(getPath(rec, 'LastChangeDateTime')) ?? parseODataDate(getPath(rec, 'MaintOrderCreationDateTime')) ?? new Date(0);
  const title = text(rec, 'MaintenanceOrderDesc');
  const site = cleanId(text(rec, 'MaintenancePlant') ?? text(rec, 'MaintenancePlanningPlant'));

  return canonicalOrder({
    source: sourceId,
    id,
    ...(title === undefined ? {} : { title: clipText(title, 200) }),
    ...(site === undefined ? {} : { site }),
    status: status.status,
    sourceStatus: status.sourceStatus,
    vendorId,
    technicianIds,
    assetIds: assetsOf(rec, o, strip),
    window,
    type: typeOf(rec, o),
    approvals: approvalsOf(rec, status, o.approvals ?? { from: 'release' }),
    // ISO text sorts with compareRevisions; SAP keeps whole seconds, so two changes in one second share a revision.
    revision: changed.toISOString(),
  });
}

/**
 * One API_EQUIPMENT record → an asset, or undefined for records that are not current (marked
 * for deletion, inactive) or have no usable number.
 */
export function mapSapEquipment(rec: unknown, a: SapAssetOptions = {}, strip = true): AssetRecord | undefined {
  if (!isPlainObject(rec)) return undefined;
  if (getPath(rec, 'EquipmentIsMarkedForDeletion') === true || getPath(rec, 'EquipmentIsInactive') === true) return undefined;
  const raw = cleanId(text(rec, 'Equipment'));
  if (raw === undefined) return undefined;
  const name = text(rec, 'EquipmentName');
  const cls = cleanId(text(rec, a.classField ?? 'TechnicalObjectType'));
  const code = text(rec, a.criticalityField ?? 'ABCIndicator')?.toUpperCase();
  const map = a.criticalityMap ?? DEFAULT_CRITICALITY_MAP;
  const criticality = code !== undefined && Object.hasOwn(map, code) ? map[code] : undefined;
  const site = cleanId(text(rec, 'MaintenancePlant'));
  const zone = (a.zoneFields ?? DEFAULT_ZONE_FIELDS).map((f) => cleanId(text(rec, f))).find((z) => z !== undefined);
  return canonicalAsset({
    id: normalizeId(raw, strip),
    ...(name === undefined ? {} : { name: clipText(name, 200) }),
    ...(cls === undefined ? {} : { class: cls }),
    ...(criticality !== undefined && (CRITICALITIES as readonly string[]).includes(criticality) ? { criticality } : {}),
    ...(site === undefined ? {} : { site }),
    ...(zone === undefined ? {} : { zone }),
  });
}
