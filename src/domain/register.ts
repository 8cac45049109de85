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
}

export interface Vendor {
  readonly id: string;
  readonly name?: string;
  readonly technicians: readonly Technician[];
}

export interface Register {
  readonly assets: ReadonlyMap<string, Asset>;
  readonly vendors: ReadonlyMap<string, Vendor>;
}

export function makeRegister(assets: readonly Asset[], vendors: readonly Vendor[]): Register {
  return {
    assets: new Map(assets.map((a) => [a.id, a])),
    vendors: new Map(vendors.map((v) => [v.id, v])),
  };
}
