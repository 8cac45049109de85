import { expect } from 'chai';
import fc from 'fast-check';
import {
  approveBreakGlass, breakGlassOrder, closeBreakGlass, newBreakGlassRequest, reviewOverdue,
  type Caller,
  type BreakGlassInput, type BreakGlassPolicy, type BreakGlassRequest,
} from '../../../src/domain/breakglass.js';
import { evaluate, isWogateError, makeRegister, type PolicySet } from '../../../src/domain/index.js';

const M = 60_000;
const H = 60 * M;
const NOW = new Date('2026-03-10T08:00:00Z');
const at = (ms: number) => new Date(NOW.getTime() + ms);
const POLICY: BreakGlassPolicy = { maxDurationMs: 4 * H, reviewDueMs: 48 * H };

const register = makeRegister(
  [{ id: 'PLC-1', class: 'PLC', criticality: 'critical', site: 'north', zone: 'process', endpoints: [{ address: '10.20.0.10', ports: [502], protocol: 'tcp' }] }],
  [{ id: 'acme', name: 'Acme', technicians: [{ id: 'jdoe', address: '10.8.0.5' }] }],
);

const INPUT: BreakGlassInput = {
  vendorId: 'acme', technicianIds: ['jdoe'], assetIds: ['PLC-1'],
  justification: 'Chlorine dosing PLC faulted at 07:40, plant on manual; vendor must reload logic now.',
  durationMinutes: 120,
};

/** `oidc:alice` acting as the person alice; `token:x` held by the person x; null: no person (a token without owner). */
function as(actor: string, person: string | null = actor.slice(actor.indexOf(':') + 1)): Caller {
  return person === null ? { actor } : { actor, person };
}

function request(input: Partial<BreakGlassInput> = {}, requester: Caller = as('oidc:alice')): BreakGlassRequest {
  return newBreakGlassRequest({ ...INPUT, ...input }, requester, POLICY, register, 'bg-1', NOW);
}

function refusal(f: () => unknown): { code: string; message: string } {
  try {
    f();
  } catch (e) {
    if (isWogateError(e)) return { code: e.code, message: e.message };
    throw e;
  }
  throw new Error('expected a refusal');
}

describe('break-glass (domain)', () => {
  describe('request', () => {
    it('accepts a justified request for registered vendor, technicians and assets', () => {
      const r = request();
      expect(r).to.include({ id: 'bg-1', requester: 'oidc:alice', vendorId: 'acme', state: 'requested', requestedDurationMs: 2 * H });
      expect(r.createdAt).to.deep.equal(NOW);
    });

    it('refuses a justification shorter than 20 characters, naming the field', () => {
      const e = refusal(() => request({ justification: 'PLC down, urgent!!!' }));
      expect(e.code).to.equal('BAD_REQUEST');
      expect(e.message).to.contain('justification').and.contain('20');
    });

    it('refuses a missing justification and one of only spaces', () => {
      expect(refusal(() => request({ justification: undefined })).code).to.equal('BAD_REQUEST');
      expect(refusal(() => request({ justification: ' '.repeat(40) })).code).to.equal('BAD_REQUEST');
    });

    it('refuses unknown vendors, technicians of another vendor and unknown assets', () => {
      expect(refusal(() => request({ vendorId: 'evil' })).message).to.contain('vendor "evil"');
      expect(refusal(() => request({ technicianIds: ['mallory'] })).message).to.contain('technician "mallory"');
      expect(refusal(() => request({ assetIds: ['PLC-9'] })).message).to.contain('asset "PLC-9"');
    });

    it('refuses a duration that is not a positive whole number of minutes', () => {
      for (const d of [0, -5, 1.5, '60', undefined]) expect(refusal(() => request({ durationMinutes: d })).code).to.equal('BAD_REQUEST');
    });

    it('is refused outright when no break-glass policy is configured', () => {
      const e = refusal(() => newBreakGlassRequest(INPUT, as('oidc:alice'), undefined, register, 'bg-1', NOW));
      expect(e.code).to.equal('NOT_FOUND');
      expect(e.message).to.contain('disabled');
    });
  });

  describe('two-person rule', () => {
    it('refuses approval by the requester with AUTH_FORBIDDEN', () => {
      const e = refusal(() => approveBreakGlass(request(), as('oidc:alice'), POLICY, at(M)));
      expect(e.code).to.equal('AUTH_FORBIDDEN');
      expect(e.message).to.contain('two-person rule');
    });

    it('compares persons, not credentials: two tokens of one owner, or a token and a sign-in, are one person', () => {
      expect(refusal(() => approveBreakGlass(request({}, as('token:night-1', 'alice')), as('token:night-2', 'alice'), POLICY, at(M))).code).to.equal('AUTH_FORBIDDEN');
      expect(refusal(() => approveBreakGlass(request({}, as('oidc:alice')), as('token:alice-laptop', 'alice'), POLICY, at(M))).message).to.contain('two-person rule');
      // Spellings of one person are one person (src/domain/ids.ts).
      expect(refusal(() => approveBreakGlass(request({}, as('oidc:alice')), as('token:x', 'ＡＬＩＣＥ'), POLICY, at(M))).code).to.equal('AUTH_FORBIDDEN');
    });

    it('refuses a caller without a person (an API token without an owner) to request or approve, with AUTH_NO_PERSON', () => {
      expect(refusal(() => request({}, as('token:legacy', null))).code).to.equal('AUTH_NO_PERSON');
      const e = refusal(() => approveBreakGlass(request(), as('token:legacy', null), POLICY, at(M)));
      expect(e.code).to.equal('AUTH_NO_PERSON');
      expect(e.message).to.contain('--owner');
    });

    it('refuses to approve a request stored without a requesting person (made by an older wogate)', () => {
      const { requesterPerson: _dropped, ...old } = request();
      expect(refusal(() => approveBreakGlass(old, as('oidc:bob'), POLICY, at(M))).code).to.equal('AUTH_FORBIDDEN');
    });

    it('never lets a person approve their own request, whatever the credentials', () => {
      fc.assert(fc.property(fc.string({ minLength: 1, maxLength: 40 }).filter((s) => /^[a-z0-9]+$/i.test(s)), fc.string({ minLength: 1, maxLength: 20 }), fc.string({ minLength: 1, maxLength: 20 }), (who, a, b) => {
        const r = request({}, as(`token:${a}`, who));
        return refusal(() => approveBreakGlass(r, as(`token:${b}`, who.toUpperCase()), POLICY, at(M))).code === 'AUTH_FORBIDDEN';
      }));
    });

    it('lets a second person approve and opens the window now', () => {
      const r = approveBreakGlass(request(), as('oidc:bob'), POLICY, at(5 * M));
      expect(r).to.include({ state: 'approved', approver: 'oidc:bob' });
      expect(r.window).to.deep.equal({ start: at(5 * M), end: at(5 * M + 2 * H) });
    });

    it('refuses to approve a request twice or after it was closed (conflict)', () => {
      const approved = approveBreakGlass(request(), as('oidc:bob'), POLICY, at(M));
      expect(refusal(() => approveBreakGlass(approved, as('oidc:carol'), POLICY, at(2 * M))).code).to.equal('STORE_CONFLICT');
      const withdrawn = closeBreakGlass(request(), 'oidc:alice', 'fixed remotely', at(M));
      expect(refusal(() => approveBreakGlass(withdrawn, as('oidc:bob'), POLICY, at(2 * M))).code).to.equal('STORE_CONFLICT');
    });
  });

  describe('maximum duration', () => {
    it('caps the window at the policy maximum', () => {
      const r = approveBreakGlass(request({ durationMinutes: 24 * 60 }), as('oidc:bob'), POLICY, NOW);
      expect(r.window?.end).to.deep.equal(at(4 * H));
      expect(r.requestedDurationMs).to.equal(24 * H);
    });

    it('never gives a window longer than the policy maximum or the request', () => {
      fc.assert(fc.property(fc.integer({ min: 1, max: 20_000 }), fc.integer({ min: 1, max: 8 * 60 }), (minutes, maxMinutes) => {
        const policy = { ...POLICY, maxDurationMs: maxMinutes * M };
        const r = approveBreakGlass(request({ durationMinutes: minutes }), as('oidc:bob'), policy, NOW);
        const len = (r.window?.end.getTime() ?? 0) - (r.window?.start.getTime() ?? 0);
        return len <= maxMinutes * M && len <= minutes * M && len > 0;
      }));
    });

    it('sets the review due the policy reviewDue after approval', () => {
      const r = approveBreakGlass(request(), as('oidc:bob'), POLICY, NOW);
      expect(r.review).to.deep.include({ state: 'pending', dueAt: at(48 * H) });
      expect(reviewOverdue(r, at(48 * H - 1))).to.equal(false);
      expect(reviewOverdue(r, at(48 * H))).to.equal(true);
      expect(reviewOverdue({ ...r, review: { ...r.review!, state: 'done' } }, at(100 * H))).to.equal(false);
    });
  });

  describe('synthetic work order', () => {
    it('is an approved emergency order with both people as approvals while approved, closed after', () => {
      const approved = approveBreakGlass(request(), as('oidc:bob'), POLICY, NOW);
      const open = breakGlassOrder(approved);
      expect(open).to.deep.include({ source: 'break-glass', id: 'bg-1', status: 'approved', type: 'emergency', revision: '1' });
      expect(open?.approvals.map((a) => a.by)).to.deep.equal(['oidc:alice', 'oidc:bob']);
      const closed = breakGlassOrder(closeBreakGlass(approved, 'oidc:bob', 'done', at(H)));
      expect(closed).to.deep.include({ status: 'closed', revision: '2' });
      expect(breakGlassOrder(request())).to.equal(undefined);
    });

    it('is granted by a rule for emergency orders, and nothing once closed', () => {
      const policySet: PolicySet = { policies: [{ name: 'p', file: 'p.yaml', rules: [{
        id: 'emergency', match: { orderTypes: ['emergency'] },
        require: { statuses: ['approved'], minApprovals: 2, leadTimeMs: 0, graceMs: 0, maxDurationMs: 8 * H },
        grant: [{ type: 'network', target: 'gw', ports: [502] }],
      }] }] };
      const approved = approveBreakGlass(request(), as('oidc:bob'), POLICY, NOW);
      const ev = evaluate([breakGlassOrder(approved)!], register, policySet, at(M));
      expect(ev.grants).to.have.length(1);
      expect(ev.grants[0]?.validUntil).to.deep.equal(at(2 * H));
      const after = evaluate([breakGlassOrder(closeBreakGlass(approved, 'wogate', 'cap', at(2 * M)))!], register, policySet, at(2 * M));
      expect(after.grants).to.have.length(0);
    });
  });
});
