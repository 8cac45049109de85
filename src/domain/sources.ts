import { sameId } from './ids.js';
import type { PolicySet } from './policy.js';

/**
 * What one source may authorise (config `sources[].authorises`, `trustAssets`). A signed payload
 * proves which source sent it, not that this source has any say over that vendor or site: a
 * generic source's payload is the order itself, so its reach is declared, not assumed.
 */
export interface SourceAuthority {
  /** Sites its orders may open access at; absent = any. Canonical. */
  readonly sites?: readonly string[];
  /** Vendors its orders may name; absent = any. Canonical. */
  readonly vendors?: readonly string[];
  /** True when the assets this source syncs may grant access without being in the overlay. */
  readonly trustAssets: boolean;
}

export type SourceAuthorities = ReadonlyMap<string, SourceAuthority>;

/** Why this source may not name this vendor; undefined when it may. */
export function vendorOutside(sourceId: string, authority: SourceAuthority | undefined, vendorId: string): string | undefined {
  if (!authority?.vendors || authority.vendors.some((v) => sameId(v, vendorId))) return undefined;
  return `source "${sourceId}" is not authorised for vendor "${vendorId}" (it may authorise: ${authority.vendors.join(', ')})`;
}

/** Why this source may not open access at this site; undefined when it may. */
export function siteOutside(sourceId: string, authority: SourceAuthority | undefined, site: string, what: string): string | undefined {
  // Sites are compared in canonical form too: the overlay and a CMMS may spell one site differently.
  if (!authority?.sites || authority.sites.some((v) => sameId(v, site))) return undefined;
  return `source "${sourceId}" is not authorised for site "${site}" (${what}; it may authorise: ${authority.sites.join(', ')})`;
}

/**
 * Why an asset known only from CMMS syncs can't be used; undefined when it can. A CMMS can add any
 * record to its own asset table, so a synced asset opens access only when the overlay lists it or a
 * source that reported it is trusted for assets.
 */
export function assetUntrusted(assetId: string, reportedBy: readonly string[] | undefined, authorities: SourceAuthorities | undefined): string | undefined {
  if (!reportedBy) return undefined;
  if (reportedBy.some((s) => authorities?.get(s)?.trustAssets === true)) return undefined;
  return `asset "${assetId}" is known only from the asset sync of ${reportedBy.map((s) => `"${s}"`).join(', ')}, which ${reportedBy.length > 1 ? 'are' : 'is'} not trusted for assets (trustAssets); list it in the asset overlay or trust the source`;
}

/** A rule one source can open, and for which of the rule's vendors and sites (undefined = any). */
export interface OpenableRule {
  readonly rule: string;
  readonly vendors?: readonly string[];
  readonly sites?: readonly string[];
}

/**
 * The rules an order from this source could open at all: the rule accepts the source
 * (match.sources), and the rule's vendors and sites overlap what the source may authorise.
 * Other requirements (status, approvals, assets) are the order's business, not the source's.
 */
export function rulesOpenableBy(policySet: PolicySet, sourceId: string, authority: SourceAuthority | undefined): OpenableRule[] {
  const out: OpenableRule[] = [];
  for (const policy of policySet.policies) {
    for (const rule of policy.rules) {
      if (rule.match.sources && !rule.match.sources.includes(sourceId)) continue;
      const vendors = overlap(rule.match.vendors, authority?.vendors);
      const sites = overlap(rule.match.sites, authority?.sites);
      if (vendors?.length === 0 || sites?.length === 0) continue;
      out.push({ rule: `${policy.name}/${rule.id}`, ...(vendors ? { vendors } : {}), ...(sites ? { sites } : {}) });
    }
  }
  return out;
}

function overlap(ruleList: readonly string[] | undefined, allowed: readonly string[] | undefined): readonly string[] | undefined {
  if (!ruleList) return allowed;
  if (!allowed) return ruleList;
  return ruleList.filter((v) => allowed.some((a) => sameId(a, v)));
}
