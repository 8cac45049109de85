import type { ApproverIndex } from './approvals.js';

export const CRITICALITIES = ['low', 'medium', 'high', 'critical'] as const;
export type Criticality = (typeof CRITICALITIES)[number];

export interface Endpoint {
  readonly address: string;
  readonly ports: readonly number[];
  readonly protocol: 'tcp' | 'udp';
}

export interface Asset {
  readonly id: string;
  readonly name?: string;
  readonly class: string;
  readonly criticality: Criticality;
  readonly site: string;
  readonly zone: string;
  readonly endpoints: readonly Endpoint[];
  readonly badgeAreas?: readonly string[];
  readonly pamTargets?: readonly string[];
  readonly firmware?: string;
}

export interface Technician {
  readonly id: string;
  readonly name?: string;
  /**
   * The address the technician's traffic comes from (the VPN pool address bound to their account).
   * It comes from wogate's own vendor register, never from a CMMS payload: a webhook must not be
   * able to choose which source address gets let through.
   */
  readonly address?: string;
  /**
   * The technician's identities in downstream systems, by name (`directory`, `pam`, `badge`,
   * `remote`, `certificate`, or any name a policy entitlement asks for): the account a group or
   * safe membership is given to, the badge an access level is put on. Also from the register
   * only, for the same reason as the address.
   */
  readonly accounts?: Readonly<Record<string, string>>;
}

export interface Vendor {
  readonly id: string;
  readonly name?: string;
  readonly technicians: readonly Technician[];
}

export interface Register {
  readonly assets: ReadonlyMap<string, Asset>;
  readonly vendors: ReadonlyMap<string, Vendor>;
  /** Assets known but not usable (conflicting or incomplete records), with the reason. */
  readonly withheld?: ReadonlyMap<string, string>;
  /** Assets known only from CMMS asset syncs (not in the overlay), with the sources that reported them. */
  readonly syncedOnly?: ReadonlyMap<string, readonly string[]>;
  /** The approvers register, by every id and alias; absent when none is configured. */
  readonly approvers?: ApproverIndex;
}

export function makeRegister(assets: readonly Asset[], vendors: readonly Vendor[]): Register {
  return {
    assets: new Map(assets.map((a) => [a.id, a])),
    vendors: new Map(vendors.map((v) => [v.id, v])),
  };
}

/** An asset as a CMMS knows it: only the fields it holds; the overlay file adds the rest. */
export type AssetRecord = Partial<Omit<Asset, 'id'>> & { readonly id: string };

export interface AssetConflict {
  readonly assetId: string;
  readonly field: string;
  /** What each side says: 'overlay' or a source id → value. */
  readonly values: Readonly<Record<string, unknown>>;
}

export interface MergedRegister extends Register {
  readonly conflicts: readonly AssetConflict[];
}

const MERGED_FIELDS = ['name', 'class', 'criticality', 'site', 'zone', 'endpoints', 'badgeAreas', 'pamTargets', 'firmware'] as const;
const REQUIRED_FIELDS = ['class', 'criticality', 'site', 'zone'] as const;

/**
 * The asset register: the overlay file merged with what each CMMS holds. A field two sides give
 * different values for is a conflict, and the asset is withheld (its access denied, with the
 * reason) until someone fixes one side: never silently resolved. An asset missing a field policy
 * needs is withheld too.
 */
export function mergeAssets(overlay: readonly Asset[], fromSources: ReadonlyMap<string, readonly AssetRecord[]>, vendors: readonly Vendor[]): MergedRegister {
  const sides = new Map<string, Map<string, AssetRecord>>();
  const add = (side: string, r: AssetRecord) => {
    const m = sides.get(r.id) ?? new Map<string, AssetRecord>();
    m.set(side, r);
    sides.set(r.id, m);
  };
  for (const a of overlay) add('overlay', a);
  for (const [source, records] of fromSources) for (const r of records) add(`source:${source}`, r);

  const assets: Asset[] = [];
  const conflicts: AssetConflict[] = [];
  const withheld = new Map<string, string>();
  const syncedOnly = new Map<string, readonly string[]>();
  for (const [id, bySide] of [...sides.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const merged: Record<string, unknown> = { id };
    for (const field of MERGED_FIELDS) {
      const values: Record<string, unknown> = {};
      for (const [side, r] of bySide) if (r[field] !== undefined) values[side] = r[field];
      const distinct = new Set(Object.values(values).map((v) => JSON.stringify(v)));
      if (distinct.size > 1) conflicts.push({ assetId: id, field, values });
      const first = Object.values(values)[0];
      if (first !== undefined) merged[field] = first;
    }
    if (!bySide.has('overlay')) syncedOnly.set(id, [...bySide.keys()].map((side) => side.slice('source:'.length)).sort());
    const mine = conflicts.filter((c) => c.assetId === id);
    const missing = REQUIRED_FIELDS.filter((f) => merged[f] === undefined);
    if (mine.length > 0) {
      withheld.set(id, `asset "${id}" is withheld: ${mine.map((c) => `${c.field} differs (${Object.entries(c.values).map(([s, v]) => `${s}: ${JSON.stringify(v)}`).join(', ')})`).join('; ')}`);
    } else if (missing.length > 0) {
      withheld.set(id, `asset "${id}" is withheld: no ${missing.join(', ')} from the overlay or any CMMS`);
    } else {
      assets.push({ endpoints: [], ...merged } as unknown as Asset);
    }
  }
  return { ...makeRegister(assets, vendors), withheld, syncedOnly, conflicts };
}

/**
 * Technician ids that appear under more than one vendor, each with the vendors naming it. Ids are
 * unique only inside a vendor; where a sign-in names the technician but not the vendor, such an
 * id would let one vendor's technician act as another's.
 */
export function sharedTechnicianIds(vendors: Iterable<Vendor>): Map<string, string[]> {
  const byTechnician = new Map<string, string[]>();
  for (const v of vendors) for (const t of v.technicians) byTechnician.set(t.id, [...(byTechnician.get(t.id) ?? []), v.id]);
  return new Map([...byTechnician].filter(([, vs]) => vs.length > 1));
}

/** The vendor whose register entry lists `technicianId`, when exactly one does. */
export function vendorOfTechnician(register: Pick<Register, 'vendors'>, technicianId: string): string | undefined {
  const holders = [...register.vendors.values()].filter((v) => v.technicians.some((t) => t.id === technicianId));
  return holders.length === 1 ? holders[0]?.id : undefined;
}
