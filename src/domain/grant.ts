/** What a grant opens. Network is the first kind; badge, PAM and certificate resources follow. */
export interface NetworkResource {
  readonly kind: 'network';
  readonly sourceAddress: string;
  readonly address: string;
  readonly port: number;
  readonly protocol: 'tcp' | 'udp';
}
export type Resource = NetworkResource;

export function resourceKey(r: Resource): string {
  return `net:${r.sourceAddress}>${r.address}:${r.port}/${r.protocol}`;
}

/** One unit of access that policy says should exist. */
export interface DesiredGrant {
  /** Natural key: order, technician, target and resource. Same inputs, same key. */
  readonly key: string;
  readonly orderKey: string;
  readonly source: string;
  readonly orderId: string;
  readonly vendorId: string;
  readonly technicianId: string;
  readonly assetId: string;
  readonly targetId: string;
  readonly resource: Resource;
  readonly validFrom: Date;
  readonly validUntil: Date;
  /** `policyName/ruleId` of the rule that allowed it. */
  readonly rule: string;
  /** True when the policy's maximum duration shortened the order's window. */
  readonly capped: boolean;
}

export function grantKey(orderKey: string, technicianId: string, targetId: string, resource: Resource): string {
  return `${orderKey}|${technicianId}|${targetId}|${resourceKey(resource)}`;
}

/**
 * pending: provision intended, not yet confirmed by the target.
 * active: the target confirmed it.
 * revoking: revoke intended, not yet confirmed. A revoke is never dropped: it stays here until it succeeds.
 * revoked: the target confirmed it is gone (or it never existed there).
 */
export type GrantState = 'pending' | 'active' | 'revoking' | 'revoked';

/** Whatever the target needs to find and undo what it made (element handle, object id, ...). */
export type TargetRef = Readonly<Record<string, string | number | boolean>>;

export interface Grant extends DesiredGrant {
  readonly id: string;
  readonly state: GrantState;
  readonly attempts: number;
  readonly lastError?: string;
  readonly nextAttemptAt?: Date;
  readonly targetRef?: TargetRef;
  readonly revokeReason?: string;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

export function isLive(g: Grant): boolean {
  return g.state !== 'revoked';
}
