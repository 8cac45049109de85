import { WogateError, type AssetRecord, type WorkOrder } from '../domain/index.js';
import type { Logger } from '../log.js';

export interface WebhookRequest {
  /** Lower-case header names, as node gives them. */
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly rawBody: Buffer;
  /** The request's path and query as received (some CMMS sign the URI too). */
  readonly url?: string;
}

export interface Delivery {
  /** The idempotency key: a second delivery with the same id is a replay. */
  readonly webhookId: string;
  readonly eventTime: Date;
}

/**
 * What a verified webhook says. A doorbell names the order; it may also carry the order's state
 * (`order`), which wogate uses only when the source has no API, or to take access away when the
 * API can't be read (a revocation is always safe, a grant never is).
 */
export interface SourceEvent {
  readonly orderId: string;
  readonly order?: WorkOrder;
  /** The source's own event name (WORK_ORDER_CHANGE, SetToTechCompleted, ...), for the audit trail. */
  readonly type?: string;
}

export interface CallContext {
  readonly now: Date;
  readonly log: Logger;
  readonly signal?: AbortSignal;
  /**
   * Listings (poll, listOpen) report a record they can't read here and go on without it, so one
   * record with, say, an unknown status code can't stall a whole source. Without it they throw.
   */
  readonly onUnreadable?: (record: { readonly id: string | undefined; readonly error: WogateError }) => void;
}

/** Maps one record of a listing; an unreadable one goes to ctx.onUnreadable and is skipped (undefined). */
export function mapListed<T>(ctx: CallContext, id: () => string | undefined, map: () => T): T | undefined {
  try {
    return map();
  } catch (e) {
    const unreadable = e instanceof WogateError && (e.code === 'HOOK_MAPPING_FAILED' || (e.code === 'SOURCE_CALL_FAILED' && e.details?.code === 'SOURCE_RESPONSE_INVALID'));
    if (!ctx.onUnreadable || !unreadable) throw e;
    let key: string | undefined;
    try {
      key = id();
    } catch {
      key = undefined;
    }
    ctx.onUnreadable({ id: key, error: e });
    return undefined;
  }
}

/** One page of changes since a cursor. The cursor is opaque to wogate and persisted between runs. */
export interface PollResult {
  readonly orders: readonly WorkOrder[];
  readonly cursor: string;
}

/**
 * The CMMS's API, where it has one. Every read returns canonical WorkOrders; every failure throws
 * SourceError naming the source and the request (never its credentials).
 */
export interface SourceApi {
  /** Re-reads one order. `undefined` when the CMMS says it does not exist (deleted). */
  fetchOrder(id: string, ctx: CallContext): Promise<WorkOrder | undefined>;
  /** Orders changed since `cursor` (all pages); `undefined` cursor = start from `since`. */
  poll(cursor: string | undefined, since: Date, ctx: CallContext): Promise<PollResult>;
  /** Every order in a status that could hold access (the full resync's view of "open"). */
  listOpen(ctx: CallContext): Promise<WorkOrder[]>;
  /** Assets the CMMS holds (class, criticality, site, location, ...), if it holds them. */
  listAssets?(ctx: CallContext): Promise<AssetRecord[]>;
  /** Adds a short note to the order's log (Maximo worklog, SAP long text, MaintainX comment). */
  writeBack(orderId: string, note: string, ctx: CallContext): Promise<void>;
  /**
   * Opens a new work order asking for a post-event review (of break-glass access), due at
   * `input.dueAt`; returns its id as fetchOrder reads it. Not idempotent: the caller records the
   * id before anything else, and retries only when the call failed.
   */
  createReview?(input: ReviewOrderInput, ctx: CallContext): Promise<{ readonly orderId: string }>;
}

export interface ReviewOrderInput {
  /** One line, shown as the order's description. */
  readonly title: string;
  /** The whole text: who, what, when, why. */
  readonly details: string;
  readonly dueAt: Date;
  /** The CMMS site to open it at, where the CMMS needs one. */
  readonly site?: string;
}

export type { AssetRecord };

/**
 * One CMMS connection. Verification comes first and alone; then the payload is read into an event.
 */
export interface Source {
  readonly id: string;
  readonly kind: string;
  readonly maxBodyBytes: number;
  /** Throws WogateError HOOK_* when the delivery is not authentic or not fresh. */
  verify(req: WebhookRequest, now: Date): Delivery;
  /** Throws WogateError HOOK_MAPPING_FAILED naming the field when the payload can't be read. */
  parseEvent(payload: unknown, delivery: Delivery): SourceEvent;
  readonly api?: SourceApi;
  /** Releases connections (keep-alive agents); called on shutdown. */
  close?(): void | Promise<void>;
}

/**
 * A failed CMMS call. The message names the source and the request (method, path without query)
 * and never carries credentials. `retryable` is false for answers retrying cannot change (401, 403, 404 on a collection).
 */
export class SourceError extends WogateError {
  constructor(
    readonly sourceId: string,
    message: string,
    readonly retryable: boolean,
    details?: Record<string, unknown>,
  ) {
    super('SOURCE_CALL_FAILED', `source ${sourceId}: ${message}`, details);
  }
}
