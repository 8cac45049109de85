/** A flow through a firewall: the technician's address to one port of the asset. */
export interface NetworkResource {
  readonly kind: 'network';
  readonly sourceAddress: string;
  readonly address: string;
  readonly port: number;
  readonly protocol: 'tcp' | 'udp';
}

/** The technician's account in a group that something else authorises on (a VPN or PAM directory group, a remote-access vendor group). */
export interface GroupResource {
  readonly kind: 'group';
  readonly account: string;
  readonly group: string;
}

/** The technician's account as a member of a vault safe, so they can use the accounts in it. */
export interface PamResource {
  readonly kind: 'pam';
  readonly account: string;
  readonly safe: string;
}

/** An access level on the technician's badge: the doors of the asset's area. */
export interface BadgeResource {
  readonly kind: 'badge';
  readonly badge: string;
  readonly accessLevel: string;
}

/** A client certificate for the technician, valid for the grant's window. */
export interface CertificateResource {
  readonly kind: 'certificate';
  readonly commonName: string;
}

export type Resource = NetworkResource | GroupResource | PamResource | BadgeResource | CertificateResource;
export type ResourceKind = Resource['kind'];
export const RESOURCE_KINDS: readonly ResourceKind[] = ['network', 'group', 'pam', 'badge', 'certificate'];

/** The resource's part of a grant key. Account, group and level names can't hold `|` (the register and policy schemas refuse it). */
export function resourceKey(r: Resource): string {
  switch (r.kind) {
    case 'network':
      return `net:${r.sourceAddress}>${r.address}:${r.port}/${r.protocol}`;
    case 'group':
      return `group:${r.account}>${r.group}`;
    case 'pam':
      return `pam:${r.account}>${r.safe}`;
    case 'badge':
      return `badge:${r.badge}>${r.accessLevel}`;
    case 'certificate':
      return `cert:${r.commonName}`;
  }
}

/** The resource in words, for people: CLI output, audit summaries, CMMS work logs. */
export function describeResource(r: Resource): string {
  switch (r.kind) {
    case 'network':
      return `${r.sourceAddress} -> ${r.address}:${r.port}/${r.protocol}`;
    case 'group':
      return `account ${r.account} in group ${r.group}`;
    case 'pam':
      return `account ${r.account} in safe ${r.safe}`;
    case 'badge':
      return `badge ${r.badge} with access level ${r.accessLevel}`;
    case 'certificate':
      return `client certificate for ${r.commonName}`;
  }
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
