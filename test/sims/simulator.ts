import type { CanonicalStatus, OrderType } from '../../src/domain/index.js';

/**
 * What the shared source contract tests (test/integration/source-contract.ts) need from every CMMS
 * simulator. Each simulator speaks its product's documented API over real HTTP on 127.0.0.1 and
 * maps these canonical terms onto its own (status codes, field names, envelopes).
 */
export interface SimOrderSpec {
  readonly id: string;
  readonly status: CanonicalStatus;
  readonly vendorId: string;
  readonly technicianIds: readonly string[];
  readonly assetIds: readonly string[];
  readonly start: Date;
  readonly end: Date;
  readonly type: OrderType;
  readonly site: string;
  readonly approvers: readonly string[];
  readonly title?: string;
}

export interface CmmsSimulator {
  /** Base URL the adapter is configured with (http://127.0.0.1:<port>/...). */
  readonly url: string;
  /** Creates or replaces an order; bumps its change date / rowstamp; does NOT send a webhook. */
  upsert(order: SimOrderSpec): void;
  /** Changes fields of an existing order (status, assets, window, ...); bumps its change marker; no webhook. */
  change(id: string, patch: Partial<Omit<SimOrderSpec, 'id'>>): void;
  /** Deletes an order (the API then answers "not found" for it). */
  remove(id: string): void;
  /**
   * Sends the product's webhook/outbound message for the order's current state to `hookUrl`,
   * authenticated the product's way (signature, basic auth or header secret). Returns the HTTP status wogate answered.
   */
  notify(id: string, hookUrl: string): Promise<number>;
  /** Notes written back to the order (worklog / long text / comments), oldest first. */
  notes(id: string): readonly string[];
  /** Makes the next `count` API calls fail: an HTTP status (401, 429 with Retry-After, 500, 503), 'html' for an HTML error page, or 'hang'. */
  failNext(count: number, how: number | 'html' | 'hang'): void;
  /** How many API requests it has served, by method and path (no query), for assertions. */
  readonly requests: readonly { method: string; path: string; query: string }[];
  close(): Promise<void>;
}
