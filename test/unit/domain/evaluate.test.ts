import { expect } from 'chai';
import fc from 'fast-check';
import {
  CANONICAL_STATUSES,
  evaluate,
  makeRegister,
  ORDER_TYPES,
  plan,
  windowFor,
  type DesiredGrant,
  type Evaluation,
  type Grant,
  type PolicySet,
  type Rule,
  type RuleRequire,
  type NetworkResource,
  type WorkOrder,
} from '../../../src/domain/index.js';

const M = 60_000;
const H = 60 * M;
const NOW = new Date('2026-03-10T08:00:00Z');
const at = (ms: number) => new Date(NOW.getTime() + ms);

const register = makeRegister(
  [
    { id: 'PLC-1', class: 'PLC', criticality: 'critical', site: 'north', zone: 'process', endpoints: [{ address: '10.20.0.10', ports: [502, 44818], protocol: 'tcp' }] },
    { id: 'PLC-2', class: 'PLC', criticality: 'high', site: 'north', zone: 'process', endpoints: [{ address: '10.20.0.11', ports: [502], protocol: 'tcp' }, { address: '10.20.0.12', ports: [161], protocol: 'udp' }] },
    { id: 'HIST-1', class: 'Historian', criticality: 'medium', site: 'north', zone: 'dmz', endpoints: [{ address: '10.20.1.5', ports: [443], protocol: 'tcp' }] },
    { id: 'PLC-S', class: 'PLC', criticality: 'low', site: 'south', zone: 'process', endpoints: [{ address: '10.21.0.10', ports: [502], protocol: 'tcp' }] },
    { id: 'PLC-DARK', class: 'PLC', criticality: 'high', site: 'north', zone: 'process', endpoints: [] },
  ],
  [
    { id: 'acme', technicians: [{ id: 'jdoe', address: '10.8.0.21' }, { id: 'asmith', address: '10.8.0.22' }, { id: 'noaddr' }] },
    { id: 'other', technicians: [{ id: 'bob', address: '10.8.0.30' }] },
  ],
);

function rule(over: Omit<Partial<Rule>, 'require'> & { require?: Partial<RuleRequire> } = {}): Rule {
  const { require: req, ...rest } = over;
  return {
    id: 'plc',
    match: { assetClasses: ['PLC'] },
    grant: [{ type: 'network', target: 'fw', ports: [502] }],
    ...rest,
    require: { statuses: ['approved', 'in_progress'], minApprovals: 1, leadTimeMs: 15 * M, graceMs: 15 * M, maxDurationMs: 12 * H, ...req },
  };
}

function policies(...rules: Rule[]): PolicySet {
  return { policies: [{ name: 'p', file: 'p.yaml', rules: rules.length ? rules : [rule()] }] };
}

function order(over: Partial<WorkOrder> = {}): WorkOrder {
  return {
    source: 'cmms', id: 'WO-1', status: 'approved', sourceStatus: 'APPR', vendorId: 'acme', technicianIds: ['jdoe'], assetIds: ['PLC-1'],
    window: { start: at(-30 * M), end: at(2 * H) }, type: 'planned', approvals: [{ by: 'sup' }], revision: '1', ...over,
  };
}

const run = (o: Partial<WorkOrder> = {}, set: PolicySet = policies(), now = NOW) => evaluate([order(o)], register, set, now);

describe('evaluate', () => {
  it('denies everything when there are no policies (NO_MATCHING_RULE)', () => {
    const e = run({}, { policies: [] });
    expect(e.grants).to.deep.equal([]);
    expect(e.denials).to.have.length(1);
    expect(e.denials[0]).to.include({ orderKey: 'cmms/WO-1', technicianId: 'jdoe', assetId: 'PLC-1', code: 'NO_MATCHING_RULE' });
    expect(e.denials[0]?.reason).to.include('"acme"').and.include('"PLC-1"').and.include('planned');
    expect(e.nextChangeAt).to.equal(undefined);
  });

  it('grants the allowed port from the technician\'s registered address, with lead time and grace', () => {
    const e = run();
    expect(e.denials).to.deep.equal([]);
    expect(e.grants).to.have.length(1);
    const g = e.grants[0] as DesiredGrant;
    expect(g).to.deep.include({ orderKey: 'cmms/WO-1', source: 'cmms', orderId: 'WO-1', vendorId: 'acme', technicianId: 'jdoe', assetId: 'PLC-1', targetId: 'fw', rule: 'p/plc', capped: false });
    expect(g.resource).to.deep.equal({ kind: 'network', sourceAddress: '10.8.0.21', address: '10.20.0.10', port: 502, protocol: 'tcp' });
    expect(g.key).to.equal('cmms/WO-1|jdoe|fw|net:10.8.0.21>10.20.0.10:502/tcp');
    expect(g.validFrom).to.deep.equal(at(-45 * M));
    expect(g.validUntil).to.deep.equal(at(2 * H + 15 * M));
  });

  it('opens every port of every endpoint when the entitlement lists no ports', () => {
    const e = run({ assetIds: ['PLC-2'] }, policies(rule({ grant: [{ type: 'network', target: 'fw' }] })));
    expect(e.grants.map((g) => `${(g.resource as NetworkResource).address}:${(g.resource as NetworkResource).port}/${(g.resource as NetworkResource).protocol}`)).to.deep.equal(['10.20.0.11:502/tcp', '10.20.0.12:161/udp']);
  });

  describe('deny codes', () => {
    const cases: [string, Partial<WorkOrder>, string, Partial<{ technicianId: string; assetId: string }>][] = [
      ['WINDOW_INVALID when the window ends at its start', { window: { start: at(0), end: at(0) } }, 'WINDOW_INVALID', {}],
      ['WINDOW_INVALID when the window ends before it starts', { window: { start: at(H), end: at(0) } }, 'WINDOW_INVALID', {}],
      ['WINDOW_INVALID when a date is not a date', { window: { start: new Date(NaN), end: at(H) } }, 'WINDOW_INVALID', {}],
      ['VENDOR_UNKNOWN for a vendor not in the register', { vendorId: 'nobody' }, 'VENDOR_UNKNOWN', {}],
      ['NO_TECHNICIANS for an order without technicians', { technicianIds: [] }, 'NO_TECHNICIANS', {}],
      ['NO_ASSETS for an order without assets', { assetIds: [] }, 'NO_ASSETS', {}],
      ['TECHNICIAN_UNKNOWN for a technician of another vendor', { technicianIds: ['bob'] }, 'TECHNICIAN_UNKNOWN', { technicianId: 'bob' }],
      ['ASSET_UNKNOWN for an asset not in the register', { assetIds: ['PLC-404'] }, 'ASSET_UNKNOWN', { technicianId: 'jdoe', assetId: 'PLC-404' }],
      ['SITE_MISMATCH when the asset is at another site than the order', { site: 'north', assetIds: ['PLC-S'] }, 'SITE_MISMATCH', { technicianId: 'jdoe', assetId: 'PLC-S' }],
      ['STATUS_NOT_ALLOWED for a closed order', { status: 'closed', sourceStatus: 'CLOSE' }, 'STATUS_NOT_ALLOWED', { technicianId: 'jdoe', assetId: 'PLC-1' }],
      ['INSUFFICIENT_APPROVALS without approvals', { approvals: [] }, 'INSUFFICIENT_APPROVALS', { technicianId: 'jdoe', assetId: 'PLC-1' }],
      ['WINDOW_ENDED once grace has run out', { window: { start: at(-3 * H), end: at(-15 * M) } }, 'WINDOW_ENDED', { technicianId: 'jdoe', assetId: 'PLC-1' }],
      ['TECHNICIAN_NO_ADDRESS for a technician without a VPN address', { technicianIds: ['noaddr'] }, 'TECHNICIAN_NO_ADDRESS', { technicianId: 'noaddr', assetId: 'PLC-1' }],
      ['NO_ENDPOINT for an asset without endpoints', { assetIds: ['PLC-DARK'] }, 'NO_ENDPOINT', { technicianId: 'jdoe', assetId: 'PLC-DARK' }],
    ];
    for (const [what, o, code, ids] of cases) {
      it(what, () => {
        const e = run(o);
        expect(e.grants).to.deep.equal([]);
        expect(e.denials.map((d) => d.code)).to.deep.equal([code]);
        expect(e.denials[0]).to.include({ orderKey: 'cmms/WO-1', ...ids });
        expect(e.denials[0]?.reason).to.be.a('string').and.not.equal('');
      });
    }

    it('NO_ENDPOINT when the asset lists none of the ports the rule allows', () => {
      const e = run({}, policies(rule({ grant: [{ type: 'network', target: 'fw', ports: [22] }] })));
      expect(e.denials.map((d) => d.code)).to.deep.equal(['NO_ENDPOINT']);
    });

    it('NO_MATCHING_RULE when no rule matches the vendor', () => {
      expect(run({ vendorId: 'other', technicianIds: ['bob'] }, policies(rule({ match: { vendors: ['acme'] } }))).denials[0]?.code).to.equal('NO_MATCHING_RULE');
    });

    it('names the source status and the allowed statuses, and lists the failing rule', () => {
      const d = run({ status: 'closed', sourceStatus: 'CLOSE' }).denials[0];
      expect(d?.reason).to.include('p/plc').and.include('"closed"').and.include('CLOSE').and.include('approved, in_progress');
      expect(d?.ruleFailures).to.deep.equal([{ rule: 'p/plc', code: 'STATUS_NOT_ALLOWED', reason: d?.reason.slice('p/plc: '.length) }]);
    });
  });

  it('counts approvals by distinct approver', () => {
    const set = policies(rule({ require: { minApprovals: 2 } }));
    expect(run({ approvals: [{ by: 'ann' }, { by: 'ann' }] }, set).denials[0]?.code).to.equal('INSUFFICIENT_APPROVALS');
    expect(run({ approvals: [{ by: 'ann' }, { by: 'ann' }, { by: 'ben' }] }, set).grants).to.have.length(1);
  });

  it('grants with no approvals when the rule requires none', () => {
    expect(run({ approvals: [] }, policies(rule({ require: { minApprovals: 0 } }))).grants).to.have.length(1);
  });

  describe('window arithmetic', () => {
    it('caps a long order at maxDuration counted from the lead-time start, and says so', () => {
      const e = run({ window: { start: at(-H), end: at(20 * H) } });
      const g = e.grants[0] as DesiredGrant;
      expect(g.validFrom).to.deep.equal(at(-H - 15 * M));
      expect(g.validUntil).to.deep.equal(at(-H - 15 * M + 12 * H));
      expect(g.capped).to.equal(true);
    });

    it('is not capped when window plus lead and grace is exactly maxDuration', () => {
      const r = rule({ require: { leadTimeMs: 30 * M, graceMs: 30 * M, maxDurationMs: 3 * H } });
      const w = windowFor(r, order({ window: { start: at(0), end: at(2 * H) } }));
      expect(w).to.deep.equal({ validFrom: at(-30 * M).getTime(), validUntil: at(2 * H + 30 * M).getTime(), capped: false });
    });

    it('ends exactly at validUntil: denied at that instant, granted a millisecond before', () => {
      const o = { window: { start: at(-2 * H), end: at(-15 * M) } };
      expect(run(o).denials[0]?.code).to.equal('WINDOW_ENDED');
      expect(run(o, policies(), at(-1)).grants).to.have.length(1);
    });

    it('gives a future window, and reports its start as the next change', () => {
      const e = run({ window: { start: at(3 * H), end: at(5 * H) } });
      expect(e.grants[0]?.validFrom).to.deep.equal(at(3 * H - 15 * M));
      expect(e.nextChangeAt).to.deep.equal(at(3 * H - 15 * M));
    });

    it('reports the earliest end as the next change when every window is open', () => {
      const e = evaluate([order(), order({ id: 'WO-2', window: { start: at(-H), end: at(H) } })], register, policies(), NOW);
      expect(e.nextChangeAt).to.deep.equal(at(H + 15 * M));
    });
  });

  it('grants each technician on each asset, each from their own address, sorted by key', () => {
    const e = run({ technicianIds: ['jdoe', 'asmith'], assetIds: ['PLC-1', 'PLC-2'] }, policies(rule({ grant: [{ type: 'network', target: 'fw' }] })));
    expect(e.grants).to.have.length(8);
    expect(e.grants.map((g) => g.key)).to.deep.equal([...e.grants.map((g) => g.key)].sort());
    for (const g of e.grants) expect((g.resource as NetworkResource).sourceAddress).to.equal(g.technicianId === 'jdoe' ? '10.8.0.21' : '10.8.0.22');
  });

  it('grants what it can and denies the rest of an order', () => {
    const e = run({ technicianIds: ['jdoe', 'ghost'], assetIds: ['PLC-1', 'HIST-1'] });
    expect(e.grants.map((g) => `${g.technicianId}@${g.assetId}`)).to.deep.equal(['jdoe@PLC-1']);
    expect(e.denials.map((d) => `${d.code}:${d.technicianId}:${d.assetId ?? ''}`)).to.deep.equal(['NO_MATCHING_RULE:jdoe:HIST-1', 'TECHNICIAN_UNKNOWN:ghost:']);
  });

  describe('matching', () => {
    const cases: [string, Rule['match'], boolean][] = [
      ['vendors', { vendors: ['acme'] }, true], ['vendors', { vendors: ['other'] }, false],
      ['sites', { sites: ['north'] }, true], ['sites', { sites: ['south'] }, false],
      ['zones', { zones: ['process'] }, true], ['zones', { zones: ['dmz'] }, false],
      ['assetClasses', { assetClasses: ['PLC', 'HMI'] }, true], ['assetClasses', { assetClasses: ['HMI'] }, false],
      ['criticality', { criticality: ['critical'] }, true], ['criticality', { criticality: ['low', 'high'] }, false],
      ['assets', { assets: ['PLC-1'] }, true], ['assets', { assets: ['PLC-2'] }, false],
      ['orderTypes', { orderTypes: ['planned'] }, true], ['orderTypes', { orderTypes: ['emergency'] }, false],
      ['nothing (empty match)', {}, true],
    ];
    for (const [what, match, granted] of cases) {
      it(`${granted ? 'matches' : 'does not match'} on ${what} ${JSON.stringify(match)}`, () => {
        const e = run({}, policies(rule({ match })));
        expect(e.grants.length > 0).to.equal(granted);
        if (!granted) expect(e.denials[0]?.code).to.equal('NO_MATCHING_RULE');
      });
    }
  });

  it('grants when any matching rule allows it, however many others fail', () => {
    const strict = rule({ id: 'strict', require: { minApprovals: 3 } });
    expect(run({}, policies(strict, rule({ id: 'lenient' }))).grants[0]?.rule).to.equal('p/lenient');
    const e = run({}, policies(strict, rule({ id: 'started', require: { statuses: ['in_progress'] } })));
    expect(e.denials[0]?.code, 'the first failing rule gives the code').to.equal('INSUFFICIENT_APPROVALS');
    expect(e.denials[0]?.ruleFailures?.map((f) => `${f.rule}:${f.code}`)).to.deep.equal(['p/strict:INSUFFICIENT_APPROVALS', 'p/started:STATUS_NOT_ALLOWED']);
  });

  it('takes the window of the first policy in order when two rules give the same grant', () => {
    const set: PolicySet = {
      policies: [
        { name: 'a', file: 'a.yaml', rules: [rule({ id: 'short', require: { maxDurationMs: H } })] },
        { name: 'b', file: 'b.yaml', rules: [rule({ id: 'long' })] },
      ],
    };
    const e = run({}, set);
    expect(e.grants).to.have.length(1);
    expect(e.grants[0]).to.deep.include({ rule: 'a/short', capped: true });
  });
});

function grant(d: DesiredGrant, over: Partial<Grant> = {}): Grant {
  return { ...d, id: `g-${d.key}`, state: 'active', attempts: 0, createdAt: at(-H), updatedAt: at(-H), ...over };
}

describe('plan', () => {
  const desired = run({ technicianIds: ['jdoe', 'asmith'] });
  const [g1, g2] = desired.grants as [DesiredGrant, DesiredGrant];
  const closed = run({ technicianIds: ['jdoe', 'asmith'], status: 'closed', sourceStatus: 'CLOSE' });

  it('provisions what is desired and not there', () => {
    expect(plan(desired, [], NOW)).to.deep.equal([{ kind: 'provision', desired: g1 }, { kind: 'provision', desired: g2 }]);
  });

  it('does nothing when actual equals desired', () => {
    expect(plan(desired, [grant(g1), grant(g2)], NOW)).to.deep.equal([]);
  });

  it('waits for a future window before provisioning', () => {
    const future = run({ window: { start: at(H), end: at(2 * H) } });
    expect(plan(future, [], NOW)).to.deep.equal([]);
    expect(plan(future, [], at(H - 15 * M)).map((a) => a.kind)).to.deep.equal(['provision']);
  });

  it('revokes what is no longer desired, naming the denial in the reason', () => {
    const actions = plan(closed, [grant(g1)], NOW);
    expect(actions).to.have.length(1);
    expect(actions[0]).to.include({ kind: 'revoke' });
    const reason = (actions[0] as { reason: string }).reason;
    expect(reason).to.match(/^STATUS_NOT_ALLOWED: /).and.include('"closed"');
  });

  it('says why when the order is gone altogether', () => {
    const actions = plan(evaluate([], register, policies(), NOW), [grant(g1)], NOW);
    expect(actions).to.deep.equal([{ kind: 'revoke', grant: grant(g1), reason: 'no longer authorised by the order and policy' }]);
  });

  it('revokes a grant whose window has ended although the order is still open', () => {
    const open = { status: 'in_progress' as const, window: { start: at(-3 * H), end: at(-16 * M) } };
    const ended = grant(run(open, policies(), at(-2 * H)).grants[0] as DesiredGrant);
    expect(ended.validUntil).to.deep.equal(at(-M));
    const actions = plan(run(open), [ended], NOW);
    expect(actions).to.deep.equal([{ kind: 'revoke', grant: ended, reason: `window ended at ${at(-M).toISOString()}` }]);
    // A stale evaluation that still lists it must not keep it either.
    expect(plan(desired, [grant(g1)], g1.validUntil).map((a) => a.kind)).to.deep.equal(['revoke']);
  });

  it('revokes an active grant whose window moved into the future, saying when it starts', () => {
    const later = run({ technicianIds: ['jdoe', 'asmith'], window: { start: at(3 * H), end: at(4 * H) } });
    const actions = plan(later, [grant(g1)], NOW);
    expect((actions[0] as { reason: string }).reason).to.equal(`window starts at ${at(3 * H - 15 * M).toISOString()}`);
  });

  it('updates an active grant whose window changed', () => {
    const longer = run({ technicianIds: ['jdoe', 'asmith'], window: { start: at(-30 * M), end: at(4 * H) } });
    const actions = plan(longer, [grant(g1), grant(g2)], NOW);
    expect(actions.map((a) => a.kind)).to.deep.equal(['update', 'update']);
    expect(actions[0]).to.deep.equal({ kind: 'update', grant: grant(g1), desired: longer.grants[0] });
  });

  it('retries a pending provision only once its nextAttemptAt has passed', () => {
    const pending = grant(g1, { state: 'pending', attempts: 2, nextAttemptAt: at(M) });
    expect(plan(desired, [pending, grant(g2)], NOW)).to.deep.equal([]);
    expect(plan(desired, [pending, grant(g2)], at(M))).to.deep.equal([{ kind: 'provision', desired: g1, existing: pending }]);
    const ready = grant(g1, { state: 'pending', attempts: 1 });
    expect(plan(desired, [ready, grant(g2)], NOW)).to.deep.equal([{ kind: 'provision', desired: g1, existing: ready }]);
  });

  it('keeps retrying a revoke at its own pace, with its original reason, even if policy allows the grant again', () => {
    const revoking = grant(g1, { state: 'revoking', revokeReason: 'revoked by ops: vendor laptop lost', nextAttemptAt: at(M) });
    expect(plan(desired, [revoking, grant(g2)], NOW)).to.deep.equal([]);
    expect(plan(desired, [revoking, grant(g2)], at(M))).to.deep.equal([{ kind: 'revoke', grant: revoking, reason: 'revoked by ops: vendor laptop lost' }]);
  });

  it('ignores revoked grants and provisions anew when the key is desired again', () => {
    expect(plan(desired, [grant(g1, { state: 'revoked' }), grant(g2)], NOW)).to.deep.equal([{ kind: 'provision', desired: g1 }]);
  });

  it('does not provision blocked keys and revokes them if live', () => {
    const blocked = new Set([g1.key]);
    expect(plan(desired, [], NOW, blocked)).to.deep.equal([{ kind: 'provision', desired: g2 }]);
    expect(plan(desired, [grant(g1), grant(g2)], NOW, blocked).map((a) => a.kind)).to.deep.equal(['revoke']);
  });

  it('says a blocked grant was blocked, not that its window is still to come', () => {
    const actions = plan(desired, [grant(g1), grant(g2)], NOW, new Set([g1.key]));
    expect((actions[0] as { reason: string }).reason).to.match(/block/i);
  });

  it('revokes an active grant as soon as it is no longer allowed, even while an earlier update waits out a backoff', () => {
    const backingOff = grant(g1, { attempts: 1, lastError: 'gateway 503', nextAttemptAt: at(5 * M) });
    expect(plan(closed, [backingOff], NOW).map((a) => a.kind)).to.deep.equal(['revoke']);
  });

  it('puts revokes first, then updates, then provisions', () => {
    const mixed: Evaluation = { grants: [{ ...g2, validUntil: at(5 * H) }, { ...g1, key: 'new' }], denials: [] };
    const actions = plan(mixed, [grant(g2), grant(g1)], NOW);
    expect(actions.map((a) => a.kind)).to.deep.equal(['revoke', 'update', 'provision']);
  });
});

describe('evaluate and plan, properties', () => {
  const assetIds = ['PLC-1', 'PLC-2', 'HIST-1', 'PLC-S', 'PLC-DARK', 'PLC-404'];
  const techIds = ['jdoe', 'asmith', 'noaddr', 'bob'];
  const offset = fc.integer({ min: -48 * H, max: 48 * H });
  const arbOrder = fc.record({
    status: fc.constantFrom(...CANONICAL_STATUSES),
    type: fc.constantFrom(...ORDER_TYPES),
    vendorId: fc.constantFrom('acme', 'other', 'nobody'),
    technicianIds: fc.subarray(techIds),
    assetIds: fc.subarray(assetIds),
    site: fc.option(fc.constantFrom('north', 'south'), { nil: undefined }),
    start: offset,
    length: fc.integer({ min: -H, max: 40 * H }),
    approvals: fc.subarray(['ann', 'ben', 'cat', 'ann']),
  }).map((r): WorkOrder => {
    const { start, length, site, approvals, ...rest } = r;
    return { ...rest, id: 'WO', source: 'cmms', sourceStatus: r.status.toUpperCase(), revision: '1', window: { start: at(start), end: at(start + length) }, approvals: approvals.map((by) => ({ by })), ...(site ? { site } : {}) };
  });
  const arbOrders = (n: number) => fc.array(arbOrder, { maxLength: n }).map((os) => os.map((o, i) => ({ ...o, id: `WO-${i}` })));
  const arbRule = fc.record({
    statuses: fc.subarray([...CANONICAL_STATUSES], { minLength: 1 }),
    minApprovals: fc.integer({ min: 0, max: 3 }),
    leadTimeMs: fc.integer({ min: 0, max: 2 * H }),
    graceMs: fc.integer({ min: 0, max: 2 * H }),
    maxDurationMs: fc.integer({ min: 1, max: 24 * H }),
    classes: fc.option(fc.subarray(['PLC', 'Historian'], { minLength: 1 }), { nil: undefined }),
    ports: fc.option(fc.subarray([502, 44818, 161, 443], { minLength: 1 }), { nil: undefined }),
  }).map((r): Rule => ({
    id: 'r',
    match: r.classes ? { assetClasses: r.classes } : {},
    require: { statuses: r.statuses, minApprovals: r.minApprovals, leadTimeMs: r.leadTimeMs, graceMs: r.graceMs, maxDurationMs: r.maxDurationMs },
    grant: [r.ports ? { type: 'network', target: 'fw', ports: r.ports } : { type: 'network', target: 'fw' }],
  }));
  const arbSet = fc.array(arbRule, { maxLength: 3 }).map((rules): PolicySet => ({ policies: [{ name: 'p', file: 'p.yaml', rules: rules.map((r, i) => ({ ...r, id: `r${i}` })) }] }));
  const arbNow = fc.integer({ min: -24 * H, max: 24 * H }).map(at);

  it('is deterministic and never grants outside what the allowing rule says', () => {
    fc.assert(
      fc.property(arbOrders(4), arbSet, arbNow, (orders, set, now) => {
        const e = evaluate(orders, register, set, now);
        expect(evaluate(orders, register, set, now)).to.deep.equal(e);
        for (const g of e.grants) {
          const r = set.policies[0]?.rules.find((x) => `p/${x.id}` === g.rule) as Rule;
          const o = orders.find((x) => x.id === g.orderId) as WorkOrder;
          expect(g.validFrom.getTime()).to.be.lessThan(g.validUntil.getTime());
          expect(g.validUntil.getTime() - g.validFrom.getTime()).to.be.at.most(r.require.maxDurationMs);
          expect(g.validUntil.getTime()).to.be.greaterThan(now.getTime());
          expect(r.require.statuses).to.include(o.status);
          expect(new Set(o.approvals.map((a) => a.by)).size).to.be.at.least(r.require.minApprovals);
          expect((g.resource as NetworkResource).sourceAddress).to.equal(register.vendors.get(o.vendorId)?.technicians.find((t) => t.id === g.technicianId)?.address);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('plans no provision outside its window or for a blocked key, and revokes every live grant that is not due', () => {
    fc.assert(
      fc.property(arbOrders(3), arbSet, arbNow, fc.integer({ min: 0, max: 3 }), (orders, set, now, nBlocked) => {
        const e = evaluate(orders, register, set, now);
        const blocked = new Set(e.grants.slice(0, nBlocked).map((g) => g.key));
        const actual = e.grants.filter((_, i) => i % 2 === 0).map((d) => grant(d));
        const actions = plan(e, actual, now, blocked);
        const t = now.getTime();
        for (const a of actions) {
          if (a.kind === 'provision') {
            expect(blocked.has(a.desired.key)).to.equal(false);
            expect(a.desired.validFrom.getTime()).to.be.at.most(t);
            expect(a.desired.validUntil.getTime()).to.be.greaterThan(t);
          }
        }
        const revoked = new Set(actions.flatMap((a) => (a.kind === 'revoke' ? [a.grant.key] : [])));
        for (const g of actual) {
          const due = g.validFrom.getTime() <= t && t < g.validUntil.getTime() && !blocked.has(g.key);
          expect(revoked.has(g.key)).to.equal(!due);
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('evaluate: group, PAM, badge and certificate entitlements', () => {
  const reg = makeRegister(
    [{ id: 'PLC-1', class: 'PLC', criticality: 'critical', site: 'north', zone: 'process', endpoints: [{ address: '10.20.0.10', ports: [502], protocol: 'tcp' }], badgeAreas: ['North Pump Hall'], pamTargets: ['PLC-North-Vendors'] }],
    [{
      id: 'acme',
      technicians: [
        { id: 'jdoe', address: '10.8.0.21', accounts: { directory: 'uid=jdoe,ou=vendors,dc=plant', pam: 'v-jdoe', badge: '13987', remote: 'acme.jdoe' } },
        { id: 'nobadge', address: '10.8.0.22', accounts: { pam: 'v-nobadge' } },
      ],
    }],
  );
  const all = rule({
    grant: [
      { type: 'network', target: 'fw', ports: [502] },
      { type: 'group', target: 'ad', groups: ['cn=vpn-vendors,ou=groups,dc=plant'] },
      { type: 'group', target: 'pra', groups: ['PLC North'], account: 'remote' },
      { type: 'pam', target: 'vault' },
      { type: 'badge', target: 'doors' },
      { type: 'certificate', target: 'ca' },
    ],
  });
  const ev = (techs: string[], r: Rule = all) => evaluate([order({ technicianIds: techs })], reg, policies(r), NOW);

  it('gives each entitlement its resource from the technician\'s accounts and the asset\'s areas and safes, one window for all', () => {
    const e = ev(['jdoe']);
    expect(e.denials).to.deep.equal([]);
    expect(e.grants.map((g) => [g.targetId, g.resource])).to.deep.equal([
      ['ad', { kind: 'group', account: 'uid=jdoe,ou=vendors,dc=plant', group: 'cn=vpn-vendors,ou=groups,dc=plant' }],
      ['ca', { kind: 'certificate', commonName: 'jdoe.acme' }],
      ['doors', { kind: 'badge', badge: '13987', accessLevel: 'North Pump Hall' }],
      ['fw', { kind: 'network', sourceAddress: '10.8.0.21', address: '10.20.0.10', port: 502, protocol: 'tcp' }],
      ['pra', { kind: 'group', account: 'acme.jdoe', group: 'PLC North' }],
      ['vault', { kind: 'pam', account: 'v-jdoe', safe: 'PLC-North-Vendors' }],
    ]);
    expect(new Set(e.grants.map((g) => `${g.validFrom.toISOString()}..${g.validUntil.toISOString()}`)).size).to.equal(1);
    expect(e.grants.find((g) => g.targetId === 'doors')?.key).to.equal('cmms/WO-1|jdoe|doors|badge:13987>North Pump Hall');
  });

  it('denies the whole rule, naming the account, when the technician lacks one an entitlement needs', () => {
    const e = ev(['nobadge']);
    expect(e.grants).to.deep.equal([]);
    expect(e.denials[0]).to.include({ technicianId: 'nobadge', code: 'TECHNICIAN_NO_ACCOUNT' });
    expect(e.denials[0]?.reason).to.include('"directory" account').and.include('target "ad"');
  });

  it('uses the rule\'s own safes and access levels over the asset\'s', () => {
    const e = ev(['jdoe'], rule({ grant: [{ type: 'pam', target: 'vault', safes: ['Other-Safe'] }, { type: 'badge', target: 'doors', accessLevels: ['Lobby', 'Control Room'] }] }));
    expect(e.grants.map((g) => g.resource)).to.deep.equal([
      { kind: 'badge', badge: '13987', accessLevel: 'Control Room' },
      { kind: 'badge', badge: '13987', accessLevel: 'Lobby' },
      { kind: 'pam', account: 'v-jdoe', safe: 'Other-Safe' },
    ]);
  });

  it('says NOTHING_TO_GRANT when the asset lists no badge areas or safes for a rule that grants only those', () => {
    const bare = makeRegister([{ id: 'PLC-1', class: 'PLC', criticality: 'critical', site: 'north', zone: 'process', endpoints: [] }], [{ id: 'acme', technicians: [{ id: 'jdoe', accounts: { badge: '1', pam: 'v' } }] }]);
    const e = evaluate([order()], bare, policies(rule({ grant: [{ type: 'badge', target: 'doors' }, { type: 'pam', target: 'vault' }] })), NOW);
    expect(e.grants).to.deep.equal([]);
    expect(e.denials[0]).to.include({ code: 'NOTHING_TO_GRANT' });
  });
});
