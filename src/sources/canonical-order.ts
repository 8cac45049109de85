import { WogateError } from '../domain/errors.js';
import { tryCanonicalId } from '../domain/ids.js';
import type { AssetRecord } from '../domain/register.js';
import { revisionProblem, type Approval, type WorkOrder } from '../domain/workorder.js';

// A lone UTF-16 surrogate: the only thing in a JavaScript string that UTF-8 can't hold.
const LONE_SURROGATE = /\p{Cs}/u;

function refuse(field: string, message: string): WogateError {
  return new WogateError('HOOK_MAPPING_FAILED', message, { field });
}

function canonical(field: string, raw: string): string {
  const r = tryCanonicalId(raw, field);
  if (!r.ok) throw refuse(field, r.error.message);
  return r.id;
}

function wellFormed(field: string, text: string | undefined): void {
  if (text !== undefined && LONE_SURROGATE.test(text)) {
    throw refuse(field, `${field} holds a lone UTF-16 surrogate (not valid Unicode text): it can't be stored or audited as UTF-8`);
  }
}

/**
 * The last step of every source's mapping (generic, Maximo, SAP, MaintainX): the ids of people,
 * vendors and assets in the one canonical form of src/domain/ids.ts, so that `alice`, `Alice` and
 * `ａｌｉｃｅ` are one approver and one technician; every other text checked to survive a UTF-8
 * round trip; the revision checked to be one wogate can order. Anything else is refused with
 * HOOK_MAPPING_FAILED naming the field (`approvals[1].by`), which is a 400 on a webhook and an
 * unreadable record in a poll or re-read. The order's own id and its other text are kept as the
 * source spells them: they are the source's keys, used to read the order back.
 */
export function canonicalOrder(order: WorkOrder): WorkOrder {
  wellFormed('id', order.id);
  wellFormed('title', order.title);
  wellFormed('site', order.site);
  wellFormed('sourceStatus', order.sourceStatus);
  wellFormed('revision', order.revision);
  const badRevision = revisionProblem(order.revision);
  if (badRevision) throw refuse('revision', badRevision);
  // Maximo and SAP map an order without a vendor to '': policy denies it, so it is kept, not refused.
  const vendorId = order.vendorId === '' ? '' : canonical('vendorId', order.vendorId);
  const technicianIds = [...new Set(order.technicianIds.map((t, i) => canonical(`technicians[${i}]`, t)))];
  const assetIds = [...new Set(order.assetIds.map((a, i) => canonical(`assets[${i}]`, a)))];
  // One person approving under two spellings must count once.
  const approvals = new Map<string, Approval>();
  order.approvals.forEach((a, i) => {
    const by = canonical(`approvals[${i}].by`, a.by);
    if (!approvals.has(by)) approvals.set(by, { ...a, by });
  });
  return { ...order, vendorId, technicianIds, assetIds, approvals: [...approvals.values()] };
}

/** At most `max` UTF-16 units of `text`, never cutting a surrogate pair in half (which would leave text UTF-8 can't hold). */
export function clipText(text: string, max: number): string {
  if (text.length <= max) return text;
  const cut = text.slice(0, max);
  return /[\uD800-\uDBFF]$/.test(cut) ? cut.slice(0, -1) : cut;
}

/** An asset record from a CMMS's asset list, keyed by its id in canonical form, as orders name it. */
export function canonicalAsset<R extends AssetRecord>(record: R): R {
  return { ...record, id: canonical('asset id', record.id) };
}

/**
 * An order stored before ids were canonical (decision 11), read again in canonical form: ids
 * that can't be canonical stay as stored (they match nothing in the register), approvers that
 * can't be are dropped (they no longer count). Used once per store, at the first start.
 */
export function canonicalStoredOrder(order: WorkOrder): WorkOrder {
  const id = (raw: string) => {
    const r = tryCanonicalId(raw, 'id');
    return r.ok ? r.id : raw;
  };
  const approvals = new Map<string, Approval>();
  for (const a of order.approvals) {
    const by = tryCanonicalId(a.by, 'approver');
    if (by.ok && !approvals.has(by.id)) approvals.set(by.id, { ...a, by: by.id });
  }
  return {
    ...order,
    vendorId: order.vendorId === '' ? '' : id(order.vendorId),
    technicianIds: [...new Set(order.technicianIds.map(id))],
    assetIds: [...new Set(order.assetIds.map(id))],
    approvals: [...approvals.values()],
  };
}

/**
 * A CMMS's asset records as an older wogate saved them (its last asset sync), ids in canonical form
 * so they merge with the overlay's and a conflict is found without waiting for the next sync. An id
 * that can't be canonical stays as stored: it matches no order.
 */
export function canonicalStoredAssets(records: readonly AssetRecord[]): AssetRecord[] {
  return records.map((r) => {
    const id = tryCanonicalId(r.id, 'asset id');
    return id.ok ? { ...r, id: id.id } : r;
  });
}
