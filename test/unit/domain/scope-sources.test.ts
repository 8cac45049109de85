import { expect } from 'chai';
import fc from 'fast-check';
import {
  evaluate, freshApprovalsReapprove, indexApprovers, makeRegister, mergeAssets, nextApprovedScope, orderKey, rulesOpenableBy, scopeOf, type PolicySet, type SourceAuthority, type WorkOrder,
} from '../../../src/domain/index.js';

const NOW = new Date('2026-03-10T08:00:00Z');
const H = 3_600_000;
const at = (ms: number) => new Date(NOW.getTime() + ms);

const assets = [
  { id: 'PLC-1', class: 'PLC', criticality: 'high' as const, site: 'north', zone: 'process', endpoints: [{ address: '10.20.0.10', ports: [502], protocol: 'tcp' as const }] },
  { id: 'PLC-2', class: 'PLC', criticality: 'high' as const, site: 'north', zone: 'process', endpoints: [{ address: '10.20.0.11', ports: [502], protocol: 'tcp' as const }] },
  { id: 'PLC-S', class: 'PLC', criticality: 'high' as const, site: 'south', zone: 'process', endpoints: [{ address: '10.21.0.10', ports: [502], protocol: 'tcp' as const }] },
];
const vendors = [
  { id: 'acme', technicians: [{ id: 'jdoe', address: '10.8.0.21' }, { id: 'asmith', address: '10.8.0.22' }] },
  { id: 'other', technicians: [{ id: 'bob', address: '10.8.0.30' }] },
];
const register = makeRegister(assets, vendors);
const policySet: PolicySet = {
  policies: [{ name: 'p', file: 'p.yaml', rules: [
    { id: 'plc', match: { assetClasses: ['PLC'] }, require: { statuses: ['approved', 'in_progress'], minApprovals: 1, leadTimeMs: 0, graceMs: 0, maxDurationMs: 12 * H }, grant: [{ type: 'network', target: 'fw' }] },
  ] }],
};

function order(over: Partial<WorkOrder> = {}): WorkOrder {
  return {
    source: 'a', id: 'WO-1', status: 'approved', sourceStatus: 'APPR', vendorId: 'acme', technicianIds: ['jdoe'], assetIds: ['PLC-1'],
    window: { start: at(-H), end: at(2 * H) }, type: 'planned', approvals: [{ by: 'sup' }], revision: '1', ...over,
  };
}

describe('source authority', () => {
  const sources = new Map<string, SourceAuthority>([
    ['a', { sites: ['north'], vendors: ['acme'], trustAssets: false }],
    ['b', { sites: ['south'], vendors: ['other'], trustAssets: false }],
  ]);

  it('denies an order for a vendor its source is not authorised for (SOURCE_NOT_AUTHORISED), whole order', () => {
    const e = evaluate([order({ source: 'b' })], register, policySet, NOW, { sources });
    expect(e.grants).to.deep.equal([]);
    expect(e.denials).to.have.length(1);
    expect(e.denials[0]).to.include({ code: 'SOURCE_NOT_AUTHORISED' });
    expect(e.denials[0]?.reason).to.include('source "b" is not authorised for vendor "acme"');
  });

  it('denies only the assets at a site outside the source\'s reach and keeps the others', () => {
    const e = evaluate([order({ assetIds: ['PLC-1', 'PLC-S'] })], register, policySet, NOW, { sources });
    expect(e.grants.map((g) => g.assetId)).to.deep.equal(['PLC-1']);
    expect(e.denials.map((d) => [d.assetId, d.code])).to.deep.equal([['PLC-S', 'SOURCE_NOT_AUTHORISED']]);
  });

  it('lets match.sources keep a rule to the sources it names', () => {
    const only: PolicySet = { policies: [{ ...(policySet.policies[0] as PolicySet['policies'][number]), rules: [{ ...(policySet.policies[0]?.rules[0] as PolicySet['policies'][number]['rules'][number]), match: { sources: ['c'] } }] }] };
    expect(evaluate([order()], register, only, NOW, { sources }).denials.map((d) => d.code)).to.deep.equal(['NO_MATCHING_RULE']);
    expect(rulesOpenableBy(only, 'a', sources.get('a'))).to.deep.equal([]);
    expect(rulesOpenableBy(policySet, 'a', sources.get('a'))).to.deep.equal([{ rule: 'p/plc', vendors: ['acme'], sites: ['north'] }]);
  });

  it('grants nothing on an asset known only from a source\'s asset sync unless that source is trusted for assets', () => {
    const merged = mergeAssets(assets, new Map([['a', [{ id: 'PLC-NEW', class: 'PLC', criticality: 'high', site: 'north', zone: 'process', endpoints: [{ address: '10.20.0.99', ports: [502], protocol: 'tcp' }] }]]]), vendors);
    const o = order({ assetIds: ['PLC-NEW', 'PLC-1'] });
    const untrusted = evaluate([o], merged, policySet, NOW, { sources });
    expect(untrusted.grants.map((g) => g.assetId)).to.deep.equal(['PLC-1']);
    expect(untrusted.denials.map((d) => [d.assetId, d.code])).to.deep.equal([['PLC-NEW', 'ASSET_UNTRUSTED']]);
    const trusted = new Map(sources).set('a', { sites: ['north'], vendors: ['acme'], trustAssets: true });
    expect(evaluate([o], merged, policySet, NOW, { sources: trusted }).grants.map((g) => g.assetId)).to.deep.equal(['PLC-1', 'PLC-NEW']);
  });
});

describe('approved scope', () => {
  const base = order({ assetIds: ['PLC-1'], technicianIds: ['jdoe'] });
  const scope = nextApprovedScope(undefined, base);
  const run = (o: WorkOrder) => evaluate([o], register, policySet, NOW, { approvedScopes: new Map(scope ? [[orderKey(o), scope]] : []) });

  it('denies what a revision added after approval and keeps the approved part at its approved end', () => {
    const wider = { ...base, assetIds: ['PLC-1', 'PLC-2'], technicianIds: ['jdoe', 'asmith'], window: { start: base.window.start, end: at(6 * H) }, revision: '2' };
    expect(nextApprovedScope(scope, wider)).to.equal(scope);
    const e = run(wider);
    expect(e.grants.map((g) => [g.technicianId, g.assetId, g.validUntil.toISOString()])).to.deep.equal([['jdoe', 'PLC-1', at(2 * H).toISOString()]]);
    expect(e.denials.map((d) => [d.technicianId, d.assetId, d.code])).to.deep.equal([
      ['jdoe', 'PLC-2', 'SCOPE_WIDENED_AFTER_APPROVAL'], ['asmith', 'PLC-1', 'SCOPE_WIDENED_AFTER_APPROVAL'], ['asmith', 'PLC-2', 'SCOPE_WIDENED_AFTER_APPROVAL'],
    ]);
    expect(e.denials[0]?.reason).to.include('asset "PLC-2" was added after the order was approved');
  });

  it('applies a narrower window at once', () => {
    expect(run({ ...base, window: { start: base.window.start, end: at(H) }, revision: '2' }).grants[0]?.validUntil).to.deep.equal(at(H));
  });

  it('takes a fresh approval that would approve the order new, or a pass back through approval, as approving the wider scope', () => {
    const judge = freshApprovalsReapprove(register, policySet);
    const wider = { ...base, assetIds: ['PLC-1', 'PLC-2'], revision: '2' };
    expect(nextApprovedScope(scope, { ...wider, approvals: [{ by: 'sup' }, { by: 'sup2' }] }, judge)?.assetIds).to.deep.equal(['PLC-1', 'PLC-2']);
    expect(nextApprovedScope(scope, { ...wider, approvals: [{ by: 'sup', at: at(0) }] }, judge)?.assetIds).to.deep.equal(['PLC-1', 'PLC-2']);
    // Without a judge (the store's default) no approval approves a wider scope.
    expect(nextApprovedScope(scope, { ...wider, approvals: [{ by: 'sup' }, { by: 'sup2' }] })).to.equal(scope);
    const sentBack = nextApprovedScope(scope, { ...wider, status: 'awaiting_approval' }, judge);
    expect(sentBack).to.equal(undefined);
    expect(nextApprovedScope(sentBack, wider, judge)?.assetIds).to.deep.equal(['PLC-1', 'PLC-2']);
    // On hold and back is not a new approval.
    expect(nextApprovedScope(nextApprovedScope(scope, { ...wider, status: 'on_hold' }, judge), wider, judge)).to.equal(scope);
  });

  it('approves a wider scope again only with as much fresh approval as every matching rule needs for a new order', () => {
    const strict: PolicySet = { policies: [{ name: 'p', file: 'p.yaml', rules: [
      { id: 'plc', match: { assetClasses: ['PLC'] }, require: { statuses: ['approved'], minApprovals: 2, leadTimeMs: 0, graceMs: 0, maxDurationMs: 12 * H, approverRoles: ['operations-supervisor', 'security-lead'] }, grant: [{ type: 'network', target: 'fw' }] },
    ] }] };
    const people = indexApprovers([
      { id: 'sup', roles: ['operations-supervisor'], aliases: [] },
      { id: 'sup2', roles: ['operations-supervisor'], aliases: [] },
      { id: 'sec', roles: ['security-lead'], aliases: [] },
    ]);
    const judge = freshApprovalsReapprove({ ...register, approvers: people }, strict);
    const wider = { ...base, assetIds: ['PLC-1', 'PLC-2'], revision: '2' };
    const withFresh = (...by: string[]) => nextApprovedScope(scope, { ...wider, approvals: [...base.approvals, ...by.map((b) => ({ by: b }))] }, judge);
    expect(withFresh('sup2'), 'one fresh approval where a new order needs two').to.equal(scope);
    expect(withFresh('mallory', 'eve'), 'approvers outside the register, under a rule naming roles').to.equal(scope);
    expect(withFresh('sup2', 'jdoe'), 'the order\'s own technician').to.equal(scope);
    expect(withFresh('sup2', 'sec')?.assetIds, 'a supervisor and a security lead, fresh').to.deep.equal(['PLC-1', 'PLC-2']);
  });

  it('never grants, without a new approval, anything the approved order did not (property)', () => {
    const ids = (xs: readonly string[]) => fc.subarray([...xs], { minLength: 1 });
    fc.assert(fc.property(ids(['PLC-1', 'PLC-2']), ids(['jdoe', 'asmith']), fc.integer({ min: -3, max: 6 }), (assetIds, technicianIds, endH) => {
      const revised = { ...base, assetIds, technicianIds, window: { start: base.window.start, end: at(endH * H) }, revision: '2' };
      const approved = evaluate([base], register, policySet, NOW).grants;
      for (const g of run(revised).grants) {
        const was = approved.find((a) => a.key === g.key);
        expect(was, g.key).to.not.equal(undefined);
        expect(g.validUntil.getTime()).to.be.at.most((was as (typeof approved)[number]).validUntil.getTime());
      }
    }));
  });

  it('holds nothing back when the rule opts out with reapproveOnWiden: false', () => {
    const optOut: PolicySet = { policies: [{ ...(policySet.policies[0] as PolicySet['policies'][number]), rules: [{ ...(policySet.policies[0]?.rules[0] as PolicySet['policies'][number]['rules'][number]), require: { ...(policySet.policies[0]?.rules[0]?.require as PolicySet['policies'][number]['rules'][number]['require']), reapproveOnWiden: false } }] }] };
    const wider = { ...base, assetIds: ['PLC-1', 'PLC-2'], revision: '2' };
    expect(evaluate([wider], register, optOut, NOW, { approvedScopes: new Map([[orderKey(wider), scopeOf(base)]]) }).grants).to.have.length(2);
  });
});
