import type { WorkOrder } from '../domain/index.js';

export interface WebhookRequest {
  /** Lower-case header names, as node gives them. */
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly rawBody: Buffer;
}

export interface Delivery {
  /** The idempotency key: a second delivery with the same id is a replay. */
  readonly webhookId: string;
  readonly eventTime: Date;
}

/**
 * One CMMS connection. Verification comes first and alone; mapping turns the verified payload
 * into a canonical WorkOrder (re-reading the order from the CMMS where it has an API).
 */
export interface Source {
  readonly id: string;
  readonly kind: string;
  readonly maxBodyBytes: number;
  /** Throws WogateError HOOK_* when the delivery is not authentic or not fresh. */
  verify(req: WebhookRequest, now: Date): Delivery;
  /** Throws WogateError HOOK_MAPPING_FAILED naming the field when the payload can't be mapped. */
  toWorkOrder(payload: unknown, delivery: Delivery): Promise<WorkOrder>;
}
