import type { CanonicalStatus, OrderType } from './workorder.js';
import type { Criticality } from './register.js';

/** Which orders, vendors and assets a rule speaks about. An omitted list matches everything. */
export interface RuleMatch {
  readonly vendors?: readonly string[];
  readonly sites?: readonly string[];
  readonly zones?: readonly string[];
  readonly assetClasses?: readonly string[];
  readonly criticality?: readonly Criticality[];
  readonly assets?: readonly string[];
  readonly orderTypes?: readonly OrderType[];
  /** Only orders from these sources (config `sources[].id`). */
  readonly sources?: readonly string[];
}

/** What must hold before a matching rule grants anything. Durations in milliseconds. */
export interface RuleRequire {
  readonly statuses: readonly CanonicalStatus[];
  readonly minApprovals: number;
  /** One distinct registered approver per listed role (a role listed twice needs two people). */
  readonly approverRoles?: readonly string[];
  /**
   * A revision that widens the order after approval grants nothing new until it is approved again.
   * Absent = on: the safe side for rules built outside the loader too.
   */
  readonly reapproveOnWiden?: boolean;
  readonly leadTimeMs: number;
  readonly graceMs: number;
  readonly maxDurationMs: number;
}

export interface NetworkEntitlement {
  readonly type: 'network';
  readonly target: string;
  /** Only these ports of the asset's endpoints; omitted = every port the asset lists. */
  readonly ports?: readonly number[];
}

/** Membership of the technician's account in these groups. */
export interface GroupEntitlement {
  readonly type: 'group';
  readonly target: string;
  readonly groups: readonly string[];
  /** Which of the technician's accounts (vendor register `accounts:` key); default `directory`. */
  readonly account?: string;
}

/** Membership of the technician's account in vault safes. */
export interface PamEntitlement {
  readonly type: 'pam';
  readonly target: string;
  /** These safes; omitted = the asset's `pamTargets`. */
  readonly safes?: readonly string[];
  /** Default `pam`. */
  readonly account?: string;
}

/** Access levels on the technician's badge. */
export interface BadgeEntitlement {
  readonly type: 'badge';
  readonly target: string;
  /** These access levels; omitted = the asset's `badgeAreas`. */
  readonly accessLevels?: readonly string[];
  /** Default `badge`. */
  readonly account?: string;
}

/** A client certificate for the technician, one per order and target. */
export interface CertificateEntitlement {
  readonly type: 'certificate';
  readonly target: string;
  /** The account used as the certificate's common name; default `certificate`, else `<technician>.<vendor>`. */
  readonly account?: string;
}

export type Entitlement = NetworkEntitlement | GroupEntitlement | PamEntitlement | BadgeEntitlement | CertificateEntitlement;

/** The register `accounts:` key each entitlement reads when it names none. */
export const DEFAULT_ACCOUNT: Readonly<Record<Exclude<Entitlement['type'], 'network'>, string>> = {
  group: 'directory',
  pam: 'pam',
  badge: 'badge',
  certificate: 'certificate',
};

export interface Rule {
  readonly id: string;
  readonly description?: string;
  readonly match: RuleMatch;
  readonly require: RuleRequire;
  readonly grant: readonly Entitlement[];
}

export interface Policy {
  readonly name: string;
  /** Where it was loaded from, for messages. */
  readonly file: string;
  readonly description?: string;
  readonly rules: readonly Rule[];
}

/** All loaded policies, in a fixed order (file name, then rule order), so evaluation is deterministic. */
export interface PolicySet {
  readonly policies: readonly Policy[];
}
