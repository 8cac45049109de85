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
}

/** What must hold before a matching rule grants anything. Durations in milliseconds. */
export interface RuleRequire {
  readonly statuses: readonly CanonicalStatus[];
  readonly minApprovals: number;
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
export type Entitlement = NetworkEntitlement;

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
