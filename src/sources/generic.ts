import type { WorkOrder } from '../domain/index.js';
import { mapWorkOrder, type SourceMapping } from './mapping.js';
import type { Delivery, Source, WebhookRequest } from './source.js';
import { parseSecret, verifyWebhook } from './standard-webhooks.js';

export interface GenericSourceOptions {
  readonly id: string;
  /** Standard Webhooks secrets (whsec_…), already resolved from their references. Several at once during rotation. */
  readonly secrets: readonly string[];
  readonly toleranceSeconds: number;
  readonly maxBodyBytes: number;
  readonly mapping: SourceMapping;
}

/** Any JSON-speaking CMMS that signs with Standard Webhooks; the payload is the order's state. */
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

  async toWorkOrder(payload: unknown, delivery: Delivery): Promise<WorkOrder> {
    return mapWorkOrder(this.id, payload, this.o.mapping, delivery.eventTime.toISOString());
  }
}

function header(req: WebhookRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(' ') : v;
}
