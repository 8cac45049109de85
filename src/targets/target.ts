import { createHash } from 'node:crypto';
import type { Grant, Resource, ResourceKind, TargetRef } from '../domain/index.js';
import { resourceKey, WogateError } from '../domain/index.js';
import type { Logger } from '../log.js';

export interface CallContext {
  readonly now: Date;
  readonly log: Logger;
  readonly signal?: AbortSignal;
}

/** What a target sees of a grant: everything needed to make it, find it again and undo it. */
export type TargetGrant = Pick<
  Grant,
  'id' | 'key' | 'orderKey' | 'source' | 'orderId' | 'vendorId' | 'technicianId' | 'assetId' | 'targetId' | 'resource' | 'validFrom' | 'validUntil'
>;

/**
 * An entry a target currently holds, for drift checks. `resource` is what it opens, when the
 * target can read that back (a group member, a safe member, a badge's access level): drift
 * matches entries to live grants by it. `key` is the grant key, when the target can store one.
 * Several grants (two orders for the same technician and asset) can share one entry; the engine
 * gives the target the latest end among them, so a target holds one entry per resource.
 */
export interface TargetEntry {
  readonly resource?: Resource;
  readonly key?: string;
  readonly ref: TargetRef;
  readonly expiresAt?: Date;
}

/**
 * One downstream system wogate provisions. Every call is idempotent: provisioning what exists
 * refreshes it, revoking what is gone succeeds. A revoke must work from the grant alone, because
 * after a crash the target's reference may never have been recorded.
 */
export interface Target {
  readonly id: string;
  readonly kind: string;
  /** True when the target itself ends access at validUntil, so access ends even if wogate is down. */
  readonly nativeExpiry: boolean;
  /** The kinds of resource it can hold; a policy granting another kind on it is refused at load. */
  readonly resourceKinds: readonly ResourceKind[];
  /** Prepare the target (tables, sessions); called once at start. */
  init(ctx: CallContext): Promise<void>;
  provision(grant: TargetGrant, ctx: CallContext): Promise<TargetRef>;
  /** Change the window of something provisioned; returns the new reference. */
  update(grant: TargetGrant, ref: TargetRef | undefined, ctx: CallContext): Promise<TargetRef>;
  revoke(grant: TargetGrant, ref: TargetRef | undefined, ctx: CallContext): Promise<void>;
  list(ctx: CallContext): Promise<TargetEntry[]>;
  /** False when list() can't see what the target holds (it returns []): drift checks skip it rather than call every grant missing. */
  readonly canList?: boolean;
  close(): Promise<void>;
}

/** A failed target call. `retryable` is false for answers that retrying cannot change (400, 403, bad config). */
export class TargetError extends WogateError {
  constructor(
    readonly targetId: string,
    message: string,
    readonly retryable: boolean,
    details?: Record<string, unknown>,
  ) {
    super('TARGET_CALL_FAILED', `target ${targetId}: ${message}`, details);
  }
}

/**
 * A target that issues certificates publishes its CA certificate and CRL, so VPN concentrators and
 * HMIs that check vendor certificates can fetch the revocation list (public data, served without
 * authentication).
 */
export interface CertificatePublisher {
  caCertificatePem(): Promise<string>;
  crl(): Promise<{ readonly der: Buffer; readonly pem: string }>;
}

/**
 * The stable id of the entry a resource gets on a target, the same for every grant opening it
 * (docs/decisions/0005): 32 hex digits, for targets whose entries wogate names itself (the http
 * target's {{entry.id}}).
 */
export function entryId(targetId: string, resource: Resource): string {
  return createHash('sha256').update(`${targetId}\n${resourceKey(resource)}`).digest('hex').slice(0, 32);
}

export function publishesCertificates(t: Target): t is Target & CertificatePublisher {
  const p = t as Partial<CertificatePublisher>;
  return typeof p.caCertificatePem === 'function' && typeof p.crl === 'function';
}
