import { WogateError } from '../domain/errors.js';
import type { CanonicalStatus, OrderType } from '../domain/workorder.js';
import { MAINTAINX_NUMBER, MaintainXApi, type MaintainXAssetFields, type MaintainXReviewOptions } from './maintainx-api.js';
import {
  buildMapping, isCompleteOrder, isPlainObject, isTerminal, mapMaintainXOrder, own, toDate, toId,
  type MaintainXApprovalOptions, type MaintainXFieldOptions, type MaintainXMapping,
} from './maintainx-mapping.js';
import {
  BODY_SIGNATURE_HEADER, checkFreshness, DEFAULT_TOLERANCE_SECONDS, deliveryHash, matchesAny, parseSignatureHeader,
  secretKey, URI_SIGNATURE_HEADER,
} from './maintainx-signature.js';
import type { Delivery, Source, SourceEvent, WebhookRequest } from './source.js';

export { DEFAULT_STATUS_MAP, DEFAULT_TYPE_MAP, MAINTAINX_STATUSES } from './maintainx-mapping.js';
export type { MaintainXApprovalOptions, MaintainXFieldOptions } from './maintainx-mapping.js';
export type { MaintainXAssetFields, MaintainXReviewOptions } from './maintainx-api.js';

export const MAINTAINX_DEFAULT_BASE_URL = 'https://api.getmaintainx.com/v1';

export interface MaintainXWebhookOptions {
  /**
   * Subscription secrets as MaintainX shows them (raw strings, already resolved). Several at once:
   * one per subscription (NEW_WORK_ORDER and WORK_ORDER_CHANGE may have different ones) and both
   * the old and the new one while a secret is being rotated.
   */
  readonly secrets: readonly string[];
  /** Allowed clock difference in both directions; default 300 s (MaintainX recommends 5 minutes). */
  readonly toleranceSeconds?: number;
  /** Default 1 MiB. */
  readonly maxBodyBytes?: number;
  /**
   * The exact URL the subscription posts to. When set, `x-maintainx-webhook-uri-signature` is
   * required too and must sign this URL (or, behind a proxy that keeps the path, the received one).
   */
  readonly publicUrl?: string;
}

export interface MaintainXSourceOptions {
  readonly id: string;
  /** Default https://api.getmaintainx.com/v1. */
  readonly baseUrl?: string;
  /** REST API key (resolved secret). */
  readonly apiKey: string;
  /** Only for multi-organization keys (`x-organization-id`). */
  readonly organizationId?: string;
  /** Per request; default 10000. */
  readonly timeoutMs?: number;
  /** `limit` per page, 1 to 200; default 100. */
  readonly pageSize?: number;
  /** Default 8 MiB. */
  readonly maxResponseBytes?: number;
  /** Default 10000 pages per listing. */
  readonly maxPages?: number;
  readonly webhook: MaintainXWebhookOptions;
  /** Merged over DEFAULT_STATUS_MAP. */
  readonly statusMap?: Readonly<Record<string, CanonicalStatus>>;
  /** Merged over DEFAULT_TYPE_MAP. */
  readonly typeMap?: Readonly<Record<string, OrderType>>;
  readonly fields?: MaintainXFieldOptions;
  readonly approval?: MaintainXApprovalOptions;
  readonly assetFields?: MaintainXAssetFields;
  /** Where break-glass review orders are filed, when this source is breakGlass.reviewSource. */
  readonly review?: MaintainXReviewOptions;
}

const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;
const EVENT_TYPE = /^[A-Z][A-Z0-9_]{0,63}$/;
const NUMERIC_ID = /^[0-9]{1,16}$/;
const MAX_URL_LENGTH = 2048;

/**
 * MaintainX: signed webhooks (NEW_WORK_ORDER, WORK_ORDER_CHANGE, ...) as doorbells, the REST API
 * as the truth that is re-read before anything is granted.
 */
export class MaintainXSource implements Source {
  readonly kind = 'maintainx';
  readonly id: string;
  readonly maxBodyBytes: number;
  readonly api: MaintainXApi;
  private readonly mapping: MaintainXMapping;
  private readonly keys: Buffer[];
  private readonly tolerance: number;
  private readonly publicUrl?: { readonly raw: string; readonly url: URL };

  constructor(o: MaintainXSourceOptions) {
    this.id = o.id;
    this.maxBodyBytes = o.webhook.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
    this.tolerance = o.webhook.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
    if (!Number.isFinite(this.tolerance) || this.tolerance < 0) throw new WogateError('CONFIG_INVALID', `source ${o.id}: webhook tolerance must be non-negative`);
    if (o.webhook.secrets.length === 0) throw new WogateError('CONFIG_INVALID', `source ${o.id}: at least one webhook secret is needed`);
    this.keys = o.webhook.secrets.map((s) => secretKey(s));
    if (o.webhook.publicUrl !== undefined) this.publicUrl = { raw: o.webhook.publicUrl, url: publicUrl(o.webhook.publicUrl, o.id) };
    this.mapping = buildMapping(o);
    this.api = new MaintainXApi({
      sourceId: o.id,
      baseUrl: o.baseUrl ?? MAINTAINX_DEFAULT_BASE_URL,
      apiKey: o.apiKey,
      ...(o.organizationId === undefined ? {} : { organizationId: o.organizationId }),
      timeoutMs: o.timeoutMs ?? 10_000,
      pageSize: o.pageSize ?? 100,
      maxResponseBytes: o.maxResponseBytes ?? 8 * 1024 * 1024,
      maxPages: o.maxPages ?? 10_000,
      mapping: this.mapping,
      ...(o.assetFields === undefined ? {} : { assetFields: o.assetFields }),
      ...(o.review === undefined ? {} : { review: o.review }),
    });
  }

  /**
   * Headers, then timestamps, then HMACs. MaintainX sends no delivery id, so the idempotency key is
   * derived from what it signs: `mx:<workOrderId>:<t>:<sha256(t.body)>`. A replayed copy (same t,
   * same body) gets the same key and is refused as a replay; two different events for one order in
   * one second differ in body and are both kept. A retry that MaintainX re-signs with a new `t`
   * (undocumented whether it does) gets a new key: it is processed again, which is harmless
   * because a webhook only makes wogate re-read the order.
   */
  verify(req: WebhookRequest, now: Date): Delivery {
    const body = parseSignatureHeader(header(req, BODY_SIGNATURE_HEADER), BODY_SIGNATURE_HEADER);
    checkFreshness(body, now, this.tolerance, BODY_SIGNATURE_HEADER);
    const uri = this.publicUrl === undefined ? undefined : parseSignatureHeader(header(req, URI_SIGNATURE_HEADER), URI_SIGNATURE_HEADER);
    if (uri) checkFreshness(uri, now, this.tolerance, URI_SIGNATURE_HEADER);
    if (!matchesAny(body, this.keys, [req.rawBody])) {
      throw new WogateError('HOOK_SIGNATURE_INVALID', `no v1 in ${BODY_SIGNATURE_HEADER} matches a configured secret`, { header: BODY_SIGNATURE_HEADER });
    }
    if (uri && !matchesAny(uri, this.keys, this.signedUris(req.url))) {
      throw new WogateError('HOOK_SIGNATURE_INVALID', `no v1 in ${URI_SIGNATURE_HEADER} matches the configured public URL`, { header: URI_SIGNATURE_HEADER });
    }
    const orderId = workOrderIdOf(req.rawBody);
    const hash = deliveryHash(body.tText, req.rawBody).slice(0, 32);
    return { webhookId: `mx:${orderId === undefined ? '' : `${orderId}:`}${body.tText}:${hash}`, eventTime: new Date(body.timestampMs) };
  }

  /**
   * `{type?, orgId, workOrderId, occurredAt, newWorkOrder{…}}`. The order travels along only when
   * the copy is complete enough to stand for the order, or when it ends the order (a revocation
   * is always safe); otherwise the event is a doorbell for `workOrderId`.
   */
  parseEvent(payload: unknown, delivery: Delivery): SourceEvent {
    if (!isPlainObject(payload)) throw new WogateError('HOOK_MAPPING_FAILED', 'payload: expected a JSON object', { field: 'payload', path: '' });
    const rawType = own(payload, 'type');
    const type = typeof rawType === 'string' && EVENT_TYPE.test(rawType) ? rawType : undefined;
    const idValue = own(payload, 'workOrderId');
    if (idValue === undefined || idValue === null) {
      // WORK_REQUEST_STATUS_CHANGE and other non-order events land here: wrong subscription.
      throw new WogateError('HOOK_MAPPING_FAILED', 'id: path "workOrderId" is missing (is this subscription for work order events?)', { field: 'id', path: 'workOrderId' });
    }
    const orderId = toId('id', 'workOrderId', idValue);
    const event: SourceEvent = { orderId, ...(type === undefined ? {} : { type }) };
    const wo = own(payload, 'newWorkOrder');
    if (wo === undefined || wo === null || type === 'WORK_ORDER_DELETE') return event;
    const innerId = own(wo, 'id');
    if (innerId !== undefined && innerId !== null && toId('id', 'newWorkOrder.id', innerId) !== orderId) {
      throw new WogateError('HOOK_MAPPING_FAILED', 'id: "newWorkOrder.id" differs from "workOrderId"', { field: 'id', path: 'newWorkOrder.id' });
    }
    const order = mapMaintainXOrder(this.id, wo, this.mapping, {
      path: 'newWorkOrder',
      id: { value: idValue, path: 'workOrderId' },
      fallbackRevision: occurredAt(payload) ?? delivery.eventTime.toISOString(),
    });
    return isCompleteOrder(wo, this.mapping) || isTerminal(order.status) ? { ...event, order } : event;
  }

  async close(): Promise<void> {
    await this.api.close();
  }

  /** The URI MaintainX signed: the subscription URL, or the received path on the public origin. */
  private signedUris(received: string | undefined): string[] {
    const pub = this.publicUrl;
    if (pub === undefined) return [];
    // As typed into MaintainX, and as a URL parser normalises it (host case, default port, escapes).
    const out = new Set([pub.raw, pub.url.href]);
    if (received !== undefined && received.startsWith('/') && received.length <= MAX_URL_LENGTH) out.add(`${pub.url.origin}${received}`);
    return [...out];
  }
}

function header(req: WebhookRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(',') : v;
}

/** Only for the readable part of the idempotency key; the signature has been checked already. */
function workOrderIdOf(rawBody: Buffer): string | undefined {
  try {
    const id = own(JSON.parse(rawBody.toString('utf8')) as unknown, 'workOrderId');
    const s = typeof id === 'number' && Number.isSafeInteger(id) ? String(id) : typeof id === 'string' ? id : undefined;
    return s !== undefined && NUMERIC_ID.test(s) ? s : undefined;
  } catch {
    return undefined;
  }
}

function occurredAt(payload: Record<string, unknown>): string | undefined {
  try {
    return toDate('revision', 'occurredAt', own(payload, 'occurredAt')).toISOString();
  } catch {
    // Only a fallback revision; the delivery time stands in.
    return undefined;
  }
}

function publicUrl(raw: string, id: string): URL {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new WogateError('CONFIG_INVALID', `source ${id}: webhook.publicUrl is not a URL`);
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new WogateError('CONFIG_INVALID', `source ${id}: webhook.publicUrl must be http or https`);
  if (raw.length > 512) throw new WogateError('CONFIG_INVALID', `source ${id}: webhook.publicUrl is longer than MaintainX's 512-character limit`);
  return u;
}

/**
 * JSON Schema (draft-07) for a `kind: maintainx` source block; merged by the lead into
 * config/schemas/config.schema.json under definitions.source. Durations are resolved to the
 * options' *Ms / *Seconds numbers by the config loader.
 */
export const maintainxSourceSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'kind', 'apiKey', 'webhook'],
  properties: {
    id: { $ref: '#/definitions/id' },
    kind: { const: 'maintainx' },
    baseUrl: { type: 'string', pattern: '^https?://[^?#]+$', description: 'default https://api.getmaintainx.com/v1' },
    apiKey: { $ref: '#/definitions/secretRef' },
    organizationId: { type: 'string', pattern: '^[0-9]{1,15}$', description: 'x-organization-id, only for multi-organization keys' },
    timeout: { $ref: '#/definitions/duration' },
    pageSize: { type: 'integer', minimum: 1, maximum: 200 },
    maxResponseBytes: { type: 'integer', minimum: 65536, maximum: 67108864 },
    webhook: {
      type: 'object',
      additionalProperties: false,
      required: ['secrets'],
      properties: {
        secrets: { type: 'array', minItems: 1, maxItems: 4, items: { $ref: '#/definitions/secretRef' } },
        tolerance: { $ref: '#/definitions/duration' },
        maxBodyBytes: { type: 'integer', minimum: 256, maximum: 10485760 },
        publicUrl: { type: 'string', pattern: '^https?://', maxLength: 512 },
      },
    },
    statusMap: {
      type: 'object',
      additionalProperties: { enum: ['draft', 'awaiting_approval', 'approved', 'in_progress', 'on_hold', 'completed', 'closed', 'cancelled'] },
    },
    typeMap: { type: 'object', additionalProperties: { enum: ['planned', 'corrective', 'emergency'] } },
    fields: {
      type: 'object',
      additionalProperties: false,
      properties: Object.fromEntries(
        ['vendorField', 'techniciansField', 'assetsField', 'siteField', 'windowStartField', 'windowEndField', 'emergencyCategory']
          .map((k) => [k, { type: 'string', minLength: 1, maxLength: 200 }]),
      ),
    },
    approval: {
      type: 'object',
      additionalProperties: false,
      properties: { field: { type: 'string', minLength: 1, maxLength: 200 }, category: { type: 'string', minLength: 1, maxLength: 200 } },
    },
    assetFields: {
      type: 'object',
      additionalProperties: false,
      properties: Object.fromEntries(['class', 'criticality', 'site', 'zone'].map((k) => [k, { type: 'string', minLength: 1, maxLength: 200 }])),
    },
    review: {
      type: 'object',
      additionalProperties: false,
      description: 'break-glass review orders, when this source is breakGlass.reviewSource',
      properties: {
        locationId: { type: 'string', pattern: MAINTAINX_NUMBER.source, description: 'location of review orders; breakGlass.reviewSite wins' },
        assetId: { type: 'string', pattern: MAINTAINX_NUMBER.source },
        categories: { type: 'array', maxItems: 10, uniqueItems: true, items: { type: 'string', minLength: 1, maxLength: 200 } },
      },
    },
  },
} as const;

/**
 * Why this `maintainx:` block can't file break-glass review orders as configured, or undefined:
 * MaintainX's "site" is a location, a number, so breakGlass.reviewSite must be one.
 */
export function maintainxReviewProblem(reviewSite: string | undefined): string | undefined {
  if (reviewSite === undefined || MAINTAINX_NUMBER.test(reviewSite)) return undefined;
  return `/breakGlass/reviewSite: "${reviewSite}" is not a MaintainX location id (a positive integer); leave it unset to use the source's review.locationId`;
}
