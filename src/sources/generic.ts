import { mapWorkOrder, type SourceMapping } from './mapping.js';
import type { Delivery, Source, SourceEvent, WebhookRequest } from './source.js';
import { parseSecret, verifyWebhook } from './standard-webhooks.js';

export interface GenericSourceOptions {
  readonly id: string;
  /** Standard Webhooks secrets (whsec_…), already resolved from their references. Several at once during rotation. */
  readonly secrets: readonly string[];
  readonly toleranceSeconds: number;
  readonly maxBodyBytes: number;
  readonly mapping: SourceMapping;
}

/** Any JSON-speaking CMMS that signs with Standard Webhooks; the payload is the order's state (no API to re-read). */
export class GenericSource implements Source {
  readonly kind = 'generic';
  readonly id: string;
  readonly maxBodyBytes: number;
  private readonly keys: Buffer[];

  constructor(private readonly o: GenericSourceOptions) {
    this.id = o.id;
    this.maxBodyBytes = o.maxBodyBytes;
    this.keys = o.secrets.map((s) => parseSecret(s));
  }

  verify(req: WebhookRequest, now: Date): Delivery {
    const { id, timestamp } = verifyWebhook({
      headers: { id: header(req, 'webhook-id'), timestamp: header(req, 'webhook-timestamp'), signature: header(req, 'webhook-signature') },
      rawBody: req.rawBody,
      secrets: this.keys,
      now,
      toleranceSeconds: this.o.toleranceSeconds,
    });
    return { webhookId: id, eventTime: timestamp };
  }

  parseEvent(payload: unknown, delivery: Delivery): SourceEvent {
    const order = mapWorkOrder(this.id, payload, this.o.mapping, delivery.eventTime.toISOString());
    return { orderId: order.id, order };
  }
}

function header(req: WebhookRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(' ') : v;
}
