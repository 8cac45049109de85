import { SapApi, type SapApiOptions } from './sap-api.js';
import { mappingError, normalizeId, ORDER_ID, text } from './sap-mapping.js';
import { expectedTokens, verifySapWebhook, type SapWebhookOptions } from './sap-webhook.js';
import { getPath } from './mapping.js';
import type { Delivery, Source, SourceEvent, WebhookRequest } from './source.js';

export { SAP_SOURCE_SCHEMA, sapSourceOptions } from './sap-schema.js';
export type { SapReviewOptions } from './sap-api.js';
export type { SapAuth } from './sap-client.js';
export type { SapApprovals, SapAssetOptions, SapMappingOptions, SapStatusRule } from './sap-mapping.js';
export type { SapWebhookAuth, SapWebhookOptions } from './sap-webhook.js';
export { DEFAULT_STATUS_RULES, DEFAULT_TYPE_MAP, DEFAULT_CRITICALITY_MAP } from './sap-mapping.js';

/**
 * The `kind: sap` source, with every secret already resolved from its reference: the connection to
 * API_MAINTENANCEORDER / API_EQUIPMENT (baseUrl, auth, sapClient, paging, plants, mapping, assets,
 * writeBack, break-glass review orders) and the Event Mesh webhook (credentials and freshness).
 */
export interface SapSourceOptions extends Omit<SapApiOptions, 'sourceId'> {
  readonly id: string;
  readonly webhook: SapWebhookOptions & { readonly maxBodyBytes?: number };
}

const EVENT_TYPE_PREFIX = 'sap.s4.beh.maintenanceorder.';

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/**
 * SAP S/4HANA Plant Maintenance. Events from SAP Event Mesh are doorbells: their data holds only
 * MaintenanceOrder and MaintenanceOrderType, so every event is followed by a read of the order
 * over OData, which alone decides what the order says.
 */
export class SapSource implements Source {
  readonly kind = 'sap';
  readonly id: string;
  readonly maxBodyBytes: number;
  readonly api: SapApi;
  private readonly expected: ReturnType<typeof expectedTokens>;

  constructor(private readonly o: SapSourceOptions) {
    this.id = o.id;
    this.maxBodyBytes = o.webhook.maxBodyBytes ?? 65_536;
    this.expected = expectedTokens(o.webhook.auth);
    const { id, webhook: _webhook, ...api } = o;
    this.api = new SapApi({ ...api, sourceId: id });
  }

  verify(req: WebhookRequest, now: Date): Delivery {
    return verifySapWebhook(req, now, this.expected, this.o.webhook);
  }

  /**
   * Structured mode: the body is the CloudEvent and the order is at data.MaintenanceOrder. Binary
   * mode: the body is the data itself (the event type travelled in the ce-type header).
   */
  parseEvent(payload: unknown, _delivery: Delivery): SourceEvent {
    const structured = isPlainObject(payload) && (Object.hasOwn(payload, 'specversion') || Object.hasOwn(payload, 'data'));
    const data = structured ? getPath(payload, 'data') : payload;
    const base = structured ? 'data.' : '';
    const type = structured ? getPath(payload, 'type') : undefined;
    if (type !== undefined && (typeof type !== 'string' || !type.startsWith(EVENT_TYPE_PREFIX))) {
      const shown = typeof type === 'string' ? JSON.stringify(type.slice(0, 80)) : 'not a string';
      throw mappingError('type', 'type', `event type ${shown} is not a maintenance order event (${EVENT_TYPE_PREFIX}*)`);
    }
    if (!isPlainObject(data)) throw mappingError('id', `${base}MaintenanceOrder`, `${structured ? 'data' : 'the body'} is not a JSON object`);
    const raw = text(data, 'MaintenanceOrder');
    if (raw === undefined) throw mappingError('id', `${base}MaintenanceOrder`, `path "${base}MaintenanceOrder" is missing or empty`);
    if (!ORDER_ID.test(raw)) throw mappingError('id', `${base}MaintenanceOrder`, 'order number is not 1 to 12 letters, digits, "-" or "_"');
    const orderId = normalizeId(raw, this.o.mapping?.stripLeadingZeros ?? true);
    // sap.s4.beh.maintenanceorder.v1.MaintenanceOrder.<Event>.v1 → <Event>
    const event = typeof type === 'string' ? type.split('.')[6] : undefined;
    return { orderId, ...(event ? { type: event.slice(0, 64) } : {}) };
  }

  async close(): Promise<void> {
    await this.api.close();
  }
}
