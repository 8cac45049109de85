import { expect } from 'chai';
import { evaluate, mergeAssets, type Asset } from '../../../src/domain/index.js';
import { order, policySet } from '../../helpers/world.js';

const overlay: Asset[] = [
  { id: 'PLC-1', class: 'PLC', criticality: 'critical', site: 'north', zone: 'process', endpoints: [{ address: '10.20.0.10', ports: [502], protocol: 'tcp' }] },
];
const vendors = [{ id: 'acme', technicians: [{ id: 'jdoe', address: '10.8.0.21' }] }];

describe('asset register: overlay merged with CMMS records', () => {
  it('fills from the CMMS what the overlay leaves out, and the overlay adds endpoints to CMMS assets', () => {
    const r = mergeAssets(
      [overlay[0] as Asset, { id: 'HMI-1', endpoints: [{ address: '10.20.0.20', ports: [502], protocol: 'tcp' }] } as unknown as Asset],
      new Map([['maximo', [{ id: 'PLC-1', firmware: 'v3.40' }, { id: 'HMI-1', class: 'HMI', criticality: 'high' as const, site: 'north', zone: 'process' }]]]),
      vendors,
    );
    expect(r.conflicts).to.deep.equal([]);
    expect(r.assets.get('PLC-1')?.firmware).to.equal('v3.40');
    expect(r.assets.get('HMI-1')?.endpoints[0]?.address).to.equal('10.20.0.20');
  });

  it('reports a conflict, withholds the asset, and evaluation denies it with the reason', () => {
    const r = mergeAssets(overlay, new Map([['maximo', [{ id: 'PLC-1', criticality: 'medium' as const }]]]), vendors);
    expect(r.conflicts).to.deep.equal([{ assetId: 'PLC-1', field: 'criticality', values: { overlay: 'critical', 'source:maximo': 'medium' } }]);
    expect(r.assets.has('PLC-1')).to.equal(false);
    const ev = evaluate([order({ assetIds: ['PLC-1'] })], r, policySet(), new Date());
    expect(ev.grants).to.have.length(0);
    expect(ev.denials[0]?.code).to.equal('ASSET_CONFLICT');
    expect(ev.denials[0]?.reason).to.match(/criticality differs.*overlay: "critical".*source:maximo: "medium"/);
  });

  it('withholds a CMMS-only asset that lacks what policy needs', () => {
    const r = mergeAssets([], new Map([['sap', [{ id: 'EQ-9', class: 'PUMP' }]]]), vendors);
    expect(r.assets.size).to.equal(0);
    expect(r.withheld?.get('EQ-9')).to.match(/no criticality, site, zone/);
  });

  it('two CMMS that agree are not a conflict', () => {
    const r = mergeAssets(overlay, new Map([['a', [{ id: 'PLC-1', site: 'north' }]], ['b', [{ id: 'PLC-1', site: 'north' }]]]), vendors);
    expect(r.conflicts).to.have.length(0);
    expect(r.assets.has('PLC-1')).to.equal(true);
  });
});
