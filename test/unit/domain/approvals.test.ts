import { expect } from 'chai';
import fc from 'fast-check';
import {
  evaluate, indexApprovers, makeRegister, tallyApprovals, type Approval, type Approver, type PolicySet, type Register, type Vendor, type WorkOrder,
} from '../../../src/domain/index.js';

const NOW = new Date('2026-03-10T08:00:00Z');
const H = 3_600_000;

const vendor: Vendor = { id: 'acme', technicians: [{ id: 'jdoe', address: '10.8.0.21' }, { id: 'asmith', address: '10.8.0.22' }] };
const people: Approver[] = [
  { id: 'ops.lee', roles: ['operations-supervisor'], aliases: ['mlee', 'morgan@plant.example'] },
  { id: 'ops.okafor', roles: ['operations-supervisor'], aliases: [] },
  { id: 'sec.novak', roles: ['security-lead'], aliases: ['anovak'] },
  { id: 'sec.ibarra', roles: ['security-lead', 'operations-supervisor'], aliases: [] },
  // A register entry for someone who also works for the vendor: their alias is a technician's id.
  { id: 'j.doe', roles: ['operations-supervisor'], aliases: ['jdoe'] },
];
const approvers = indexApprovers(people);
const ROLES = ['operations-supervisor', 'security-lead'];

function order(approvals: readonly Approval[], over: Partial<WorkOrder> = {}): WorkOrder {
  return {
    source: 'cmms', id: 'WO-1', status: 'approved', sourceStatus: 'APPR', vendorId: 'acme', technicianIds: ['jdoe'], assetIds: ['PLC-1'],
    window: { start: new Date(NOW.getTime() - H), end: new Date(NOW.getTime() + H) }, type: 'emergency', approvals, revision: '1', ...over,
  };
}

const register: Register = {
  ...makeRegister([{ id: 'PLC-1', class: 'PLC', criticality: 'critical', site: 'north', zone: 'process', endpoints: [{ address: '10.20.0.10', ports: [502], protocol: 'tcp' }] }], [vendor]),
  approvers,
};
const policySet = (require: { minApprovals: number; approverRoles?: string[] }): PolicySet => ({
  policies: [{ name: 'p', file: 'p.yaml', rules: [{ id: 'em', match: {}, require: { statuses: ['approved'], leadTimeMs: 0, graceMs: 0, maxDurationMs: 4 * H, ...require }, grant: [{ type: 'network', target: 'fw' }] }] }],
});

/** Every id that names someone who must never count for this order: the vendor, its technicians, and register people aliased to one. */
const interestedIds = ['acme', 'ACME', 'jdoe', 'JDoe', 'asmith', 'j.doe', 'ｊｄｏｅ'];
const outsiderIds = ['ops.lee', 'MLEE', 'morgan@plant.example', 'ops.okafor', 'sec.novak', 'ANOVAK', 'sec.ibarra', 'unregistered.person', 'Unregistered.Person'];
const approval = (ids: readonly string[]) => fc.constantFrom(...ids).map((by): Approval => ({ by }));

describe('approval counting', () => {
  it('never counts the order\'s vendor or any of its technicians, under any spelling or register alias', () => {
    fc.assert(fc.property(fc.array(approval(outsiderIds), { maxLength: 6 }), fc.array(approval(interestedIds), { minLength: 1, maxLength: 6 }), fc.integer({ min: 0, max: 12 }), (outside, inside, seed) => {
      const mixed = [...outside];
      for (const [i, a] of inside.entries()) mixed.splice((seed + i) % (mixed.length + 1), 0, a);
      for (const roles of [undefined, ROLES]) {
        const clean = tallyApprovals(order(outside), vendor, approvers, roles);
        const dirty = tallyApprovals(order(mixed), vendor, approvers, roles);
        expect(dirty.counted).to.have.members([...clean.counted]);
        expect(dirty.unfilledRoles).to.have.members([...clean.unfilledRoles]);
        expect(dirty.discounted.filter((d) => d.why === 'order_vendor' || d.why === 'order_technician').length).to.be.greaterThan(0);
      }
    }));
  });

  it('counts a person once however many of their ids approved, and never more people than approved', () => {
    fc.assert(fc.property(fc.array(approval(outsiderIds), { maxLength: 12 }), (approvals) => {
      const t = tallyApprovals(order(approvals), vendor, approvers);
      expect(new Set(t.counted).size).to.equal(t.counted.length);
      // ops.lee's three ids, sec.novak's two and the unregistered one's two spellings are one person each.
      expect(t.counted.length).to.be.at.most(5);
      expect(t.counted.length).to.be.at.most(approvals.length);
    }));
  });

  it('does not depend on the order approvals are listed in', () => {
    fc.assert(fc.property(fc.array(approval([...outsiderIds, ...interestedIds]), { maxLength: 8 }).chain((a) => fc.tuple(fc.constant(a), fc.shuffledSubarray(a, { minLength: a.length, maxLength: a.length }))), ([a, b]) => {
      const x = tallyApprovals(order(a), vendor, approvers, ROLES);
      const y = tallyApprovals(order(b), vendor, approvers, ROLES);
      expect(x.counted).to.have.members([...y.counted]);
      expect(x.unfilledRoles.length).to.equal(y.unfilledRoles.length);
    }));
  });

  it('fills each required role with a different registered person, and finds a filling whenever one exists', () => {
    fc.assert(fc.property(fc.array(approval(outsiderIds), { maxLength: 8 }), fc.array(fc.constantFrom(...ROLES), { minLength: 1, maxLength: 4 }), (approvals, roles) => {
      const t = tallyApprovals(order(approvals), vendor, approvers, roles);
      const holders = t.filled.map((f) => f.person);
      expect(new Set(holders).size).to.equal(holders.length);
      for (const f of t.filled) expect(people.find((p) => p.id === f.person)?.roles).to.include(f.role);
      expect(t.filled.length + t.unfilledRoles.length).to.equal(roles.length);
      // Brute force: the largest number of roles distinct counted people can fill.
      const counted = t.counted.map((id) => people.find((p) => p.id === id)).filter((p): p is Approver => p !== undefined);
      const best = (r: number, used: Set<string>): number => {
        if (r === roles.length) return 0;
        let m = best(r + 1, used);
        for (const p of counted) {
          if (used.has(p.id) || !p.roles.includes(roles[r] as string)) continue;
          m = Math.max(m, 1 + best(r + 1, new Set([...used, p.id])));
        }
        return m;
      };
      expect(t.filled.length).to.equal(best(0, new Set()));
    }));
  });

  it('never counts unregistered approvers when the rule names roles', () => {
    const t = tallyApprovals(order([{ by: 'unregistered.person' }, { by: 'sec.novak' }]), vendor, approvers, ROLES);
    expect(t.counted).to.deep.equal(['sec.novak']);
    expect(t.discounted).to.deep.equal([{ by: 'unregistered.person', why: 'not_registered' }]);
  });

  it('lets a person holding two roles fill only one of them', () => {
    const t = tallyApprovals(order([{ by: 'sec.ibarra' }]), vendor, approvers, ROLES);
    expect(t.filled).to.have.length(1);
    expect(t.unfilledRoles).to.have.length(1);
    // ...but with a supervisor beside them, both roles are filled, sec.ibarra as the security lead.
    expect(tallyApprovals(order([{ by: 'sec.ibarra' }, { by: 'ops.okafor' }]), vendor, approvers, ROLES).unfilledRoles).to.deep.equal([]);
  });

  it('denies minApprovals 2 met by one person under two ids, naming who was not counted and why', () => {
    const e = evaluate([order([{ by: 'ops.lee' }, { by: 'MLEE' }, { by: 'jdoe' }])], register, policySet({ minApprovals: 2 }), NOW);
    expect(e.grants).to.deep.equal([]);
    const d = e.denials[0];
    expect(d?.code).to.equal('INSUFFICIENT_APPROVALS');
    expect(d?.reason).to.include('1 distinct approval(s) count (ops.lee)').and.include("jdoe (j.doe): one of the order's own technicians").and.include('mlee (ops.lee): the same person approved more than once');
    expect(d?.details?.discounted).to.deep.equal([{ by: 'mlee', why: 'duplicate', person: 'ops.lee' }, { by: 'jdoe', why: 'order_technician', person: 'j.doe' }]);
  });

  it('grants emergency access approved by a supervisor and a security lead, and not by two supervisors', () => {
    const set = policySet({ minApprovals: 2, approverRoles: ROLES });
    expect(evaluate([order([{ by: 'ops.lee' }, { by: 'anovak' }])], register, set, NOW).grants).to.have.length(1);
    const two = evaluate([order([{ by: 'ops.lee' }, { by: 'ops.okafor' }])], register, set, NOW);
    expect(two.grants).to.deep.equal([]);
    expect(two.denials[0]?.reason).to.include('no distinct approver for role(s) security-lead');
  });
});
