import { discountText, tallyApprovals } from './approvals.js';
import { grantKey, type DesiredGrant, type Resource } from './grant.js';
import { DEFAULT_ACCOUNT, type Entitlement, type Policy, type PolicySet, type Rule } from './policy.js';
import type { Asset, Register, Technician, Vendor } from './register.js';
import { clampToApproved, widening, type ApprovedScope } from './scope.js';
import { assetUntrusted, siteOutside, vendorOutside, type SourceAuthorities } from './sources.js';
import { orderKey, type WorkOrder } from './workorder.js';

export type DenyCode =
  | 'NO_MATCHING_RULE'
  | 'STATUS_NOT_ALLOWED'
  | 'INSUFFICIENT_APPROVALS'
  | 'WINDOW_INVALID'
  | 'WINDOW_ENDED'
  | 'VENDOR_UNKNOWN'
  | 'TECHNICIAN_UNKNOWN'
  | 'TECHNICIAN_NO_ADDRESS'
  | 'TECHNICIAN_NO_ACCOUNT'
  | 'ASSET_UNKNOWN'
  | 'ASSET_CONFLICT'
  | 'SITE_MISMATCH'
  | 'NO_ENDPOINT'
  | 'NOTHING_TO_GRANT'
  | 'NO_TECHNICIANS'
  | 'NO_ASSETS'
  | 'SOURCE_STALE'
  | 'VENDOR_SUSPENDED'
  | 'ACCESS_BLOCKED'
  | 'SOURCE_NOT_AUTHORISED'
  | 'ASSET_UNTRUSTED'
  | 'SCOPE_WIDENED_AFTER_APPROVAL';

export interface RuleFailure {
  readonly rule: string;
  readonly code: DenyCode;
  readonly reason: string;
  /** Structured facts behind the reason (who was discounted and why, which roles are unfilled). */
  readonly details?: Readonly<Record<string, unknown>>;
}

/** Why something an order asked for is not granted. */
export interface Denial {
  readonly orderKey: string;
  readonly technicianId?: string;
  readonly assetId?: string;
  readonly code: DenyCode;
  readonly reason: string;
  /** For rules that matched but did not allow it: each one's reason. */
  readonly ruleFailures?: readonly RuleFailure[];
  readonly details?: Readonly<Record<string, unknown>>;
}

/** What evaluation needs besides orders, register and policies; each part optional so older callers keep working. */
export interface EvaluationInputs {
  /** What each source may authorise; a source absent here is unrestricted. */
  readonly sources?: SourceAuthorities;
  /** Each order's scope when last approved, by order key (see scope.ts). */
  readonly approvedScopes?: ReadonlyMap<string, ApprovedScope>;
}

export interface Evaluation {
  readonly grants: readonly DesiredGrant[];
  readonly denials: readonly Denial[];
  /** The earliest future instant at which this evaluation would change by time alone. */
  readonly nextChangeAt?: Date;
}

/**
 * The desired state: (orders, register, policies, now) → the grants that should exist, each with
 * its window and the rule that allowed it, and for everything denied, the reason. Default deny.
 * Pure: same inputs, same output.
 */
export function evaluate(orders: readonly WorkOrder[], register: Register, policySet: PolicySet, now: Date, inputs: EvaluationInputs = {}): Evaluation {
  const grants = new Map<string, DesiredGrant>();
  const denials: Denial[] = [];
  let next = Infinity;
  const t = now.getTime();

  for (const order of orders) {
    const key = orderKey(order);
    const deny = (code: DenyCode, reason: string, extra: Partial<Denial> = {}) =>
      denials.push({ orderKey: key, code, reason, ...extra });

    if (!(order.window.end.getTime() > order.window.start.getTime())) {
      deny('WINDOW_INVALID', `window end ${iso(order.window.end)} is not after start ${iso(order.window.start)}`);
      continue;
    }
    const vendor = register.vendors.get(order.vendorId);
    if (!vendor) {
      deny('VENDOR_UNKNOWN', `vendor "${order.vendorId}" is not in the vendor register`);
      continue;
    }
    const authority = inputs.sources?.get(order.source);
    const outside = vendorOutside(order.source, authority, vendor.id) ?? (order.site !== undefined ? siteOutside(order.source, authority, order.site, 'the order\'s site') : undefined);
    if (outside) {
      deny('SOURCE_NOT_AUTHORISED', outside);
      continue;
    }
    if (order.technicianIds.length === 0) {
      deny('NO_TECHNICIANS', 'the order names no technician');
      continue;
    }
    if (order.assetIds.length === 0) {
      deny('NO_ASSETS', 'the order names no asset');
      continue;
    }

    for (const technicianId of order.technicianIds) {
      const tech = vendor.technicians.find((x) => x.id === technicianId);
      if (!tech) {
        deny('TECHNICIAN_UNKNOWN', `technician "${technicianId}" is not registered for vendor "${vendor.id}"`, { technicianId });
        continue;
      }
      for (const assetId of order.assetIds) {
        const asset = register.assets.get(assetId);
        if (!asset) {
          const held = register.withheld?.get(assetId);
          if (held) deny('ASSET_CONFLICT', held, { technicianId, assetId });
          else deny('ASSET_UNKNOWN', `asset "${assetId}" is not in the asset register`, { technicianId, assetId });
          continue;
        }
        if (order.site !== undefined && asset.site !== order.site) {
          deny('SITE_MISMATCH', `asset "${assetId}" is at site "${asset.site}", the order is for site "${order.site}"`, { technicianId, assetId });
          continue;
        }
        const assetSite = siteOutside(order.source, authority, asset.site, `asset "${assetId}" is there`);
        if (assetSite) {
          deny('SOURCE_NOT_AUTHORISED', assetSite, { technicianId, assetId });
          continue;
        }
        const untrusted = assetUntrusted(assetId, register.syncedOnly?.get(assetId), inputs.sources);
        if (untrusted) {
          deny('ASSET_UNTRUSTED', untrusted, { technicianId, assetId });
          continue;
        }
        const outcome = decide(order, vendor, tech, asset, policySet, t, register, inputs.approvedScopes?.get(key));
        if (outcome.kind === 'deny') {
          denials.push({ orderKey: key, technicianId, assetId, ...outcome.denial });
          continue;
        }
        for (const g of outcome.grants) {
          if (!grants.has(g.key)) grants.set(g.key, g);
          const from = g.validFrom.getTime();
          if (from > t) next = Math.min(next, from);
          next = Math.min(next, g.validUntil.getTime());
        }
      }
    }
  }

  const sorted = [...grants.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return Number.isFinite(next) ? { grants: sorted, denials, nextChangeAt: new Date(next) } : { grants: sorted, denials };
}

type Outcome =
  | { kind: 'grant'; grants: DesiredGrant[] }
  | { kind: 'deny'; denial: Omit<Denial, 'orderKey' | 'technicianId' | 'assetId'> };

function decide(order: WorkOrder, vendor: Vendor, tech: Technician, asset: Asset, policySet: PolicySet, t: number, register: Register, approved: ApprovedScope | undefined): Outcome {
  const failures: RuleFailure[] = [];
  const grants: DesiredGrant[] = [];
  for (const policy of policySet.policies) {
    for (const rule of policy.rules) {
      if (!ruleMatches(rule, order, vendor, asset)) continue;
      const ruleName = `${policy.name}/${rule.id}`;
      // Held to what was approved: the widened part waits for a new approval, the rest keeps its
      // grant, and a window moved later keeps the approved end.
      const status = statusFailure(rule, order);
      if (status) {
        failures.push({ rule: ruleName, ...status });
        continue;
      }
      let held = order;
      if (rule.require.reapproveOnWiden !== false && approved) {
        const wider = widening(approved, vendor.id, tech.id, asset.id);
        const clamped = clampToApproved(order, approved).order;
        if (wider || clamped.window.end.getTime() <= clamped.window.start.getTime()) {
          failures.push({ rule: ruleName, code: 'SCOPE_WIDENED_AFTER_APPROVAL', reason: wider ?? `the window moved outside the approved one (${iso(approved.windowStart)} to ${iso(approved.windowEnd)}) after approval; the order must be approved again` });
          continue;
        }
        held = clamped;
      }
      const failure = checkRequire(rule, held, t, vendor, register);
      if (failure) {
        failures.push({ rule: ruleName, ...failure });
        continue;
      }
      const made = entitle(policy, rule, held, vendor, tech, asset);
      if ('code' in made) failures.push({ rule: ruleName, ...made });
      else grants.push(...made);
    }
  }
  if (grants.length > 0) return { kind: 'grant', grants };
  const first = failures[0];
  if (!first) {
    return { kind: 'deny', denial: { code: 'NO_MATCHING_RULE', reason: `no policy rule allows vendor "${vendor.id}" on asset "${asset.id}" (${asset.class}, ${asset.criticality}, ${asset.site}/${asset.zone}) for a ${order.type} order` } };
  }
  return { kind: 'deny', denial: { code: first.code, reason: `${first.rule}: ${first.reason}`, ruleFailures: failures, ...(first.details ? { details: first.details } : {}) } };
}

/** Whether a rule speaks about this order's vendor and this asset (its `match`). */
export function ruleMatches(rule: Rule, order: WorkOrder, vendor: Vendor, asset: Asset): boolean {
  const m = rule.match;
  return (
    within(m.vendors, vendor.id) &&
    within(m.sites, asset.site) &&
    within(m.zones, asset.zone) &&
    within(m.assetClasses, asset.class) &&
    within(m.criticality, asset.criticality) &&
    within(m.assets, asset.id) &&
    within(m.orderTypes, order.type) &&
    within(m.sources, order.source)
  );
}

function within<T>(list: readonly T[] | undefined, value: T): boolean {
  return list === undefined || list.includes(value);
}

function statusFailure(rule: Rule, order: WorkOrder): Omit<RuleFailure, 'rule'> | undefined {
  const r = rule.require;
  if (r.statuses.includes(order.status)) return undefined;
  return { code: 'STATUS_NOT_ALLOWED', reason: `order status "${order.status}" (source "${order.sourceStatus}") is not one of ${r.statuses.join(', ')}` };
}

/** Everything but the status (checked first, before the approved scope is applied). */
function checkRequire(rule: Rule, order: WorkOrder, t: number, vendor: Vendor, register: Register): Omit<RuleFailure, 'rule'> | undefined {
  const r = rule.require;
  const approvals = approvalFailure(r, order, vendor, register);
  if (approvals) return approvals;
  const { validUntil } = windowFor(rule, order);
  if (validUntil <= t) {
    return { code: 'WINDOW_ENDED', reason: `access window ended at ${iso(new Date(validUntil))}` };
  }
  return undefined;
}

function approvalFailure(r: Rule['require'], order: WorkOrder, vendor: Vendor, register: Register): Omit<RuleFailure, 'rule'> | undefined {
  if (r.minApprovals === 0 && !r.approverRoles) return undefined;
  const tally = tallyApprovals(order, vendor, register.approvers, r.approverRoles);
  if (tally.counted.length >= r.minApprovals && tally.unfilledRoles.length === 0) return undefined;
  const needs = [`${r.minApprovals} distinct approver(s)`, ...(r.approverRoles ? [`one person per role ${r.approverRoles.join(', ')}`] : [])].join(' and ');
  const parts = [`${tally.counted.length} distinct approval(s) count${tally.counted.length ? ` (${tally.counted.join(', ')})` : ''}, the rule requires ${needs}`];
  if (tally.unfilledRoles.length > 0) parts.push(`no distinct approver for role(s) ${tally.unfilledRoles.join(', ')}`);
  if (tally.discounted.length > 0) parts.push(`not counted: ${tally.discounted.map(discountText).join('; ')}`);
  return {
    code: 'INSUFFICIENT_APPROVALS',
    reason: parts.join('; '),
    details: { counted: tally.counted, discounted: tally.discounted, unfilledRoles: tally.unfilledRoles, filled: tally.filled },
  };
}

/** The access window a rule gives an order: lead time before, grace after, capped at the maximum duration. */
export function windowFor(rule: Rule, order: WorkOrder): { validFrom: number; validUntil: number; capped: boolean } {
  const validFrom = order.window.start.getTime() - rule.require.leadTimeMs;
  const natural = order.window.end.getTime() + rule.require.graceMs;
  const cap = validFrom + rule.require.maxDurationMs;
  return { validFrom, validUntil: Math.min(natural, cap), capped: cap < natural };
}

function entitle(policy: Policy, rule: Rule, order: WorkOrder, vendor: Vendor, tech: Technician, asset: Asset): DesiredGrant[] | Omit<RuleFailure, 'rule'> {
  const out: DesiredGrant[] = [];
  const { validFrom, validUntil, capped } = windowFor(rule, order);
  const key = orderKey(order);
  for (const ent of rule.grant) {
    const resources = resourcesFor(ent, vendor, tech, asset);
    if (!Array.isArray(resources)) return resources;
    for (const resource of resources) {
      out.push({
        key: grantKey(key, tech.id, ent.target, resource),
        orderKey: key,
        source: order.source,
        orderId: order.id,
        vendorId: order.vendorId,
        technicianId: tech.id,
        assetId: asset.id,
        targetId: ent.target,
        resource,
        validFrom: new Date(validFrom),
        validUntil: new Date(validUntil),
        rule: `${policy.name}/${rule.id}`,
        capped,
      });
    }
  }
  if (out.length === 0) {
    return rule.grant.every((e) => e.type === 'network')
      ? { code: 'NO_ENDPOINT', reason: `asset "${asset.id}" has no endpoint on the ports the rule allows` }
      : { code: 'NOTHING_TO_GRANT', reason: `the rule's entitlements give nothing for asset "${asset.id}" (no endpoint on the allowed ports, no badge areas or PAM targets listed for it)` };
  }
  return out;
}

/**
 * What one entitlement opens for this technician on this asset. A technician missing the address
 * or account an entitlement needs fails the whole rule, so access is never half-made (a network
 * path without the PAM safe the work depends on) without someone seeing why.
 */
function resourcesFor(ent: Entitlement, vendor: Vendor, tech: Technician, asset: Asset): Resource[] | Omit<RuleFailure, 'rule'> {
  if (ent.type === 'network') {
    if (!tech.address) {
      return { code: 'TECHNICIAN_NO_ADDRESS', reason: `technician "${tech.id}" has no network address in the vendor register` };
    }
    const out: Resource[] = [];
    for (const ep of asset.endpoints) {
      for (const port of ep.ports) {
        if (ent.ports && !ent.ports.includes(port)) continue;
        out.push({ kind: 'network', sourceAddress: tech.address, address: ep.address, port, protocol: ep.protocol });
      }
    }
    return out;
  }
  const accountName = ent.account ?? DEFAULT_ACCOUNT[ent.type];
  const account = tech.accounts?.[accountName];
  if (ent.type === 'certificate') {
    return [{ kind: 'certificate', commonName: account ?? `${tech.id}.${vendor.id}` }];
  }
  if (account === undefined) {
    return { code: 'TECHNICIAN_NO_ACCOUNT', reason: `technician "${tech.id}" has no "${accountName}" account in the vendor register, needed for target "${ent.target}"` };
  }
  switch (ent.type) {
    case 'group':
      return ent.groups.map((group) => ({ kind: 'group', account, group }));
    case 'pam':
      return (ent.safes ?? asset.pamTargets ?? []).map((safe) => ({ kind: 'pam', account, safe }));
    case 'badge':
      return (ent.accessLevels ?? asset.badgeAreas ?? []).map((accessLevel) => ({ kind: 'badge', badge: account, accessLevel }));
  }
}

function iso(d: Date): string {
  // An invalid date must become a denial reason, not an exception that stops every order's evaluation.
  return Number.isNaN(d.getTime()) ? 'an invalid date' : d.toISOString();
}

/**
 * True when `candidate` gives nothing `current` does not: every grant it holds is also in
 * `current`, with a window inside that one. Used to accept a webhook's own account of an order when
 * the CMMS can't be asked: taking access away is safe on any authenticated word, giving it is not.
 */
export function narrows(candidate: Evaluation, current: Evaluation): boolean {
  const now = new Map(current.grants.map((g) => [g.key, g]));
  return candidate.grants.every((g) => {
    const c = now.get(g.key);
    return c !== undefined && g.validFrom.getTime() >= c.validFrom.getTime() && g.validUntil.getTime() <= c.validUntil.getTime();
  });
}
