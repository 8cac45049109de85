import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import { expect } from 'chai';
import fc from 'fast-check';
import { parse as parseYaml } from 'yaml';
import type { Resource } from '../../src/domain/index.js';
import {
  activateAt, deactivateAt, instantsOf, LENEL_TARGET_SCHEMA, LenelTarget, lenelTargetOptions, onGuardTime, parseOnGuardTime, wallClock, type LenelTargetOptions,
} from '../../src/targets/lenel.js';
import { TargetError, type CallContext, type TargetGrant } from '../../src/targets/target.js';
import { LenelSim, type LenelSimOptions } from '../sims/lenel.js';
import { deadlineSplit, PATIENT_MS, recordingLogger, sampleGrant, targetContract } from './target-contract.js';
import { configRefusal } from '../helpers/refusal.js';

const TZ = 'America/New_York';
const PUMP = 'WOGATE Pump House';
const CHLORINE = 'WOGATE Chlorine Room';
const SECRET = 'lenel-test-s3cret-password';

function badgeResource(n: number, accessLevel = PUMP): Resource {
  return { kind: 'badge', badge: String(700_000 + n), accessLevel };
}

interface World {
  sim: LenelSim;
  /** `target`, patient; `make` builds another with a given deadline (the contract's timeout fault). */
  target: LenelTarget;
  make(timeoutMs: number): LenelTarget;
  levels: { pump: number; chlorine: number; other: number };
  /** A grant; a sampled badge (no `resource` given) is added to the simulator, active. */
  grant(o?: Partial<TargetGrant>): TargetGrant;
  close(): Promise<void>;
}

async function world(secret: string, o: { sim?: Partial<LenelSimOptions>; target?: Partial<LenelTargetOptions> } = {}): Promise<World> {
  const sim = await LenelSim.start({ applicationId: `app-${secret}`, password: secret, directoryId: 'id-1', timeZone: TZ, ...o.sim });
  sim.faults.hangMs = 5_000;
  const levels = { pump: sim.addAccessLevel(PUMP), chlorine: sim.addAccessLevel(CHLORINE), other: sim.addAccessLevel('Main Lobby') };
  const make = (timeoutMs: number) => new LenelTarget({
    id: 'badges', baseUrl: sim.url, applicationId: `app-${secret}`, username: 'wogate-svc', password: secret, directoryId: 'id-1',
    accessLevels: [PUMP, CHLORINE], timeZone: TZ, timeoutMs, ...o.target,
  });
  const target = make(PATIENT_MS);
  const known = new Set<string>();
  return {
    sim, target, levels, make,
    grant: (g = {}) => {
      const made = sampleGrant('badges', g, new Date(), (n) => badgeResource(n));
      if (g.resource === undefined && made.resource.kind === 'badge' && !known.has(made.resource.badge)) {
        known.add(made.resource.badge);
        sim.addBadge({ id: Number(made.resource.badge) });
      }
      return made;
    },
    close: async () => {
      await target.close();
      await sim.close();
    },
  };
}

targetContract('LenelTarget against the OpenAccess simulator', async ({ secret }) => {
  // Seconds kept on both sides: the contract checks the native expiry to within 2 s.
  const w = await world(secret, { target: { resolution: 'second' } });
  const split = deadlineSplit(w.make);
  return {
    target: split.target,
    makeGrant: (o) => w.grant(o),
    failNext: (count, how) => {
      if (how === 'timeout') split.expectTimeouts(count);
      w.sim.faults.failNext(count, how);
    },
    cleanup: async () => {
      await split.target.close();
      await w.close();
    },
  };
});

async function failure(call: () => Promise<unknown>): Promise<TargetError> {
  const e = await call().then(() => undefined, (err: unknown) => err);
  expect(e, 'the call fails with a TargetError').to.be.instanceOf(TargetError);
  return e as TargetError;
}

describe('LenelTarget against the OpenAccess simulator', function () {
  this.timeout(20_000);
  let w: World;
  let log: ReturnType<typeof recordingLogger>;
  // The fixed windows below lie in 2029-2030, ahead of the real clock; sampled ones are around it.
  const now = new Date();
  const ctx = (at = now): CallContext => ({ now: at, log });

  beforeEach(async () => {
    log = recordingLogger();
    w = await world(SECRET);
    await w.target.init(ctx());
  });

  afterEach(async () => {
    await w.close();
    for (const line of log.lines) expect(line).not.to.contain(SECRET);
  });

  const writes = () => w.sim.requests.filter((r) => r.method !== 'GET' && r.path === '/instances');

  describe('the calls OnGuard receives', () => {
    it('posts the assignment with ACTIVATE/DEACTIVATE as local time and offset, DEACTIVATE rounded down to the minute and ACTIVATE up', async () => {
      const g = w.grant({ validFrom: new Date('2030-07-01T12:00:10.500Z'), validUntil: new Date('2030-07-01T22:00:45.900Z') });
      const ref = await w.target.provision(g, ctx());
      const badgeKey = ref['badgeKey'] as number;
      expect(writes()).to.deep.equal([{
        method: 'POST', path: '/instances', query: { version: '1.0' },
        body: { type_name: 'Lnl_AccessLevelAssignment', property_value_map: { BADGEKEY: badgeKey, ACCESSLEVELID: w.levels.pump, ACTIVATE: '2030-07-01T08:01:00-04:00', DEACTIVATE: '2030-07-01T18:00:00-04:00' } },
      }]);
      expect(w.sim.requests.every((r) => r.query['version'] === '1.0'), 'every call has ?version=1.0').to.equal(true);
      expect(w.sim.assignment(badgeKey, w.levels.pump)).to.deep.equal({ ACTIVATE: '2030-07-01T08:01:00', DEACTIVATE: '2030-07-01T18:00:00' });
      const [entry] = (await w.target.list(ctx())).filter((e) => e.ref['badgeKey'] === badgeKey);
      expect(entry?.expiresAt?.toISOString()).to.equal('2030-07-01T22:00:00.000Z');
    });

    it('with resolution second, DEACTIVATE is validUntil to the second in winter time', async () => {
      await w.close();
      w = await world(SECRET, { target: { resolution: 'second' } });
      const g = w.grant({ validFrom: new Date('2029-12-31T10:00:00Z'), validUntil: new Date('2030-01-15T23:30:45.700Z') });
      const ref = await w.target.provision(g, ctx());
      const body = writes()[0]?.body as { property_value_map: Record<string, unknown> };
      expect(body.property_value_map['DEACTIVATE']).to.equal('2030-01-15T18:30:45-05:00');
      expect(w.sim.assignment(ref['badgeKey'] as number, w.levels.pump)?.DEACTIVATE).to.equal('2030-01-15T18:30:45');
    });

    it('updates an existing assignment in place with PUT and keeps one entry', async () => {
      const g = w.grant({ validFrom: new Date('2030-03-01T12:00:00Z'), validUntil: new Date('2030-03-01T20:00:00Z') });
      const ref = await w.target.provision(g, ctx());
      const ref2 = await w.target.update({ ...g, validUntil: new Date('2030-03-02T20:00:00Z') }, ref, ctx());
      expect(ref2).to.deep.equal(ref);
      expect(writes().map((r) => r.method)).to.deep.equal(['POST', 'PUT']);
      expect(w.sim.assignment(ref['badgeKey'] as number, w.levels.pump)?.DEACTIVATE).to.equal('2030-03-02T15:00:00');
      expect(w.sim.assignmentCount()).to.equal(1);
    });

    it('a later provision for the same badge and level from another grant refreshes the same assignment', async () => {
      const g = w.grant({ validUntil: new Date('2030-03-01T20:00:00Z') });
      const sibling = w.grant({ resource: g.resource, orderId: 'WO-other', validUntil: new Date('2030-03-03T20:00:00Z') });
      await w.target.provision(g, ctx());
      await w.target.provision(sibling, ctx());
      expect(w.sim.assignmentCount()).to.equal(1);
      const entries = await w.target.list(ctx());
      expect(entries.map((e) => e.expiresAt?.toISOString())).to.deep.equal(['2030-03-03T20:00:00.000Z']);
    });

    it('an assignment made between the lookup and the create is updated instead', async () => {
      const badgeKey = w.sim.addBadge({ id: 6060 });
      w.sim.assign(badgeKey, w.levels.pump, null, null); // by hand, permanent
      const page = (items: unknown[]) => ({ page_number: 1, page_size: 100, total_pages: items.length ? 1 : 0, total_items: items.length, count: items.length, item_list: items, version: '1.0' });
      // OnGuard answers the badge lookup, then (as if just before the hand-made assignment) an empty assignment lookup.
      w.sim.answerNext(200, page([{ property_value_map: { BADGEKEY: badgeKey, ID: 6060, STATUS: 1 } }]), 'GET');
      w.sim.answerNext(200, page([]), 'GET');
      await w.target.provision(w.grant({ resource: { kind: 'badge', badge: '6060', accessLevel: PUMP }, validUntil: new Date('2030-02-01T12:00:00Z') }), ctx());
      expect(writes().map((r) => r.method)).to.deep.equal(['POST', 'PUT']);
      expect(w.sim.assignment(badgeKey, w.levels.pump)?.DEACTIVATE).to.equal('2030-02-01T07:00:00');
    });

    it('a window that is already over leaves no assignment', async () => {
      const g = w.grant({ validUntil: new Date('2030-03-01T20:00:00Z') });
      await w.target.provision(g, ctx());
      await w.target.update({ ...g, validUntil: new Date('2029-12-31T23:00:00Z') }, undefined, ctx(new Date('2030-01-01T00:00:00Z')));
      expect(w.sim.assignmentCount()).to.equal(0);
      expect(writes().map((r) => r.method)).to.deep.equal(['POST', 'DELETE']);
    });

    it('revoke deletes by both keys, and revoking what is gone succeeds without a delete', async () => {
      const g = w.grant();
      const ref = await w.target.provision(g, ctx());
      await w.target.revoke(g, undefined, ctx());
      await w.target.revoke(g, ref, ctx());
      const deletes = writes().filter((r) => r.method === 'DELETE');
      expect(deletes.map((r) => r.body)).to.deep.equal([{ type_name: 'Lnl_AccessLevelAssignment', property_value_map: { BADGEKEY: ref['badgeKey'], ACCESSLEVELID: w.levels.pump } }]);
    });

    it('logs out on close', async () => {
      await w.target.close();
      expect(w.sim.logouts).to.equal(1);
      expect(w.sim.sessions.size).to.equal(0);
    });
  });

  describe('daylight saving', () => {
    it('a DEACTIVATE in the repeated autumn hour is moved before it, so it can never be read an hour later', async () => {
      // 2030-11-03 01:30 EDT (05:30Z): "01:30" also means 01:30 EST (06:30Z).
      const first = w.grant({ validUntil: new Date('2030-11-03T05:30:00Z') });
      const second = w.grant({ validUntil: new Date('2030-11-03T06:30:00Z') });
      await w.target.provision(first, ctx());
      await w.target.provision(second, ctx());
      const sent = writes().map((r) => (r.body as { property_value_map: Record<string, unknown> }).property_value_map['DEACTIVATE']);
      expect(sent).to.deep.equal(['2030-11-03T00:59:00-04:00', '2030-11-03T01:30:00-05:00']);
      for (const e of await w.target.list(ctx())) expect(e.expiresAt!.getTime()).to.be.at.most(Date.parse('2030-11-03T06:30:00Z'));
    });

    it('a DEACTIVATE right after the spring gap is written in summer time', async () => {
      const g = w.grant({ validUntil: new Date('2030-03-10T07:00:30Z') });
      await w.target.provision(g, ctx());
      const body = writes()[0]?.body as { property_value_map: Record<string, unknown> };
      expect(body.property_value_map['DEACTIVATE']).to.equal('2030-03-10T03:00:00-04:00');
    });

    it('reads bare local times (no offset) back in the configured zone', async () => {
      await w.close();
      w = await world(SECRET, { sim: { renderOffsets: false } });
      const g = w.grant({ validUntil: new Date('2030-07-04T16:45:00Z') });
      await w.target.provision(g, ctx());
      const [entry] = await w.target.list(ctx());
      expect(entry?.expiresAt?.toISOString()).to.equal('2030-07-04T16:45:00.000Z');
    });

    it('local-time rules hold for any instant in zones with odd offsets and DST', () => {
      const zones = ['America/New_York', 'Europe/London', 'Australia/Lord_Howe', 'Asia/Kolkata', 'America/Santiago', 'Pacific/Chatham', 'UTC'];
      const from = Date.parse('2020-01-01T00:00:00Z');
      const to = Date.parse('2036-01-01T00:00:00Z');
      fc.assert(
        fc.property(fc.integer({ min: from, max: to }), fc.constantFrom(...zones), fc.constantFrom(1000, 60_000), (t, tz, unit) => {
          const until = deactivateAt(t, tz, unit);
          const start = activateAt(t, tz, unit);
          const untilReadings = instantsOf(wallClock(until, tz), tz);
          const startReadings = instantsOf(wallClock(start, tz), tz);
          expect(until % unit).to.equal(0);
          expect(untilReadings.every((x) => x <= t), 'every reading of DEACTIVATE is at most validUntil').to.equal(true);
          expect(startReadings.every((x) => x >= t), 'every reading of ACTIVATE is at least validFrom').to.equal(true);
          expect(t - until, 'DEACTIVATE is at most an hour and a unit early').to.be.below(3_600_000 + unit);
          expect(start - t).to.be.below(3_600_000 + unit);
          expect(parseOnGuardTime(onGuardTime(until, tz), tz)).to.equal(until);
          expect(parseOnGuardTime(onGuardTime(until, tz).slice(0, 19), tz), 'a bare local time reads back as its latest instant').to.equal(untilReadings[untilReadings.length - 1]);
        }),
        { numRuns: 400 },
      );
    });
  });

  describe('sessions and login', () => {
    it('an expired session (401) logs in once more and the call goes through', async () => {
      await w.target.provision(w.grant(), ctx());
      expect(w.sim.logins).to.equal(1);
      w.sim.expireSessions();
      await w.target.provision(w.grant(), ctx());
      expect(w.sim.logins).to.equal(2);
      expect(w.sim.requests.filter((r) => r.path === '/authentication').length).to.equal(2);
    });

    it('a refused login fails as not retryable and is not tried again for a while, so the account is not locked', async () => {
      await w.close();
      w = await world(SECRET, { target: { password: 'wrong-password' } });
      const e = await failure(() => w.target.init(ctx()));
      expect(e.retryable).to.equal(false);
      expect(e.message).to.contain('wogate-svc').and.to.contain('refused');
      const again = await failure(() => w.target.provision(w.grant(), ctx(new Date(now.getTime() + 60_000))));
      expect(again.retryable).to.equal(false);
      expect(again.message).to.contain('not trying again before');
      expect(w.sim.requests.filter((r) => r.path === '/authentication').length, 'one login attempt only').to.equal(1);
      await w.target.init(ctx(new Date(now.getTime() + 301_000))).catch(() => undefined);
      expect(w.sim.requests.filter((r) => r.path === '/authentication').length, 'tried again after the back-off').to.equal(2);
    });

    it('an unlicensed Application-Id is refused at start with the reason', async () => {
      await w.close();
      w = await world(SECRET, { target: { applicationId: 'not-licensed' } });
      const e = await failure(() => w.target.init(ctx()));
      expect(e.retryable).to.equal(false);
      expect(e.message).to.contain('Application-Id is refused');
    });

    it('when refreshing the levels fails, the last known ones serve and the revoke goes through', async () => {
      const g = w.grant();
      await w.target.provision(g, ctx());
      const later = new Date(now.getTime() + 16 * 60_000);
      w.sim.faults.failNext(1, 'server-error'); // the level refresh
      await w.target.revoke(g, undefined, ctx(later));
      expect(w.sim.assignmentCount()).to.equal(0);
      expect(log.lines.some((l) => l.includes('using the last known ones'))).to.equal(true);
    });

    it('OnGuard down at start is only a warning; the levels are resolved on first use', async () => {
      await w.close();
      w = await world(SECRET);
      w.sim.faults.failNext(1, 'server-error');
      await w.target.init(ctx());
      expect(log.lines.some((l) => l.includes('not reachable at start'))).to.equal(true);
      await w.target.provision(w.grant(), ctx());
      expect(w.sim.assignmentCount()).to.equal(1);
    });
  });

  describe('errors', () => {
    it('an error inside a 200 is a failure, retryable or not by its code, and nothing is assumed written', async () => {
      w.sim.faults.failNext(1, 'error-in-200');
      const e = await failure(() => w.target.provision(w.grant(), ctx()));
      expect(e.retryable).to.equal(true);
      expect(e.message).to.contain('answered 200 with an error').and.to.contain('openaccess.general.internalerror');
      w.sim.answerNext(200, { error: { code: 'openaccess.general.invalidrequestitem', message: 'The property DEACTIVATE did not exist or contained an invalid value.' }, version: '1.0' }, 'POST');
      const refused = await failure(() => w.target.provision(w.grant(), ctx()));
      expect(refused.retryable).to.equal(false);
      expect(refused.details?.['openAccessCode']).to.equal('openaccess.general.invalidrequestitem');
      expect(w.sim.assignmentCount()).to.equal(0);
    });

    it('an answer of an unexpected shape leaves a retryable error with the reason', async () => {
      w.sim.answerNext(200, { total_items: 1, items: [] }, 'GET');
      const e = await failure(() => w.target.provision(w.grant(), ctx()));
      expect(e.retryable).to.equal(true);
      expect(e.details?.['code']).to.equal('TARGET_RESPONSE_INVALID');
      expect(e.message).to.contain('item_list');
      w.sim.answerNext(200, '<html><body>Gateway login</body></html>', 'GET');
      const html = await failure(() => w.target.list(ctx()));
      expect(html.retryable).to.equal(true);
      expect(html.message).to.contain('not JSON');
    });

    it('a list answer holding another level than asked is refused rather than acted on', async () => {
      w.sim.answerNext(200, { page_number: 1, page_size: 100, total_pages: 1, total_items: 1, count: 1, item_list: [{ property_value_map: { BADGEKEY: 1, ACCESSLEVELID: w.levels.other } }], type_name: 'Lnl_AccessLevelAssignment', version: '1.0' }, 'GET');
      const e = await failure(() => w.target.list(ctx()));
      expect(e.retryable).to.equal(true);
      expect(e.message).to.contain(`listed for access level ${w.levels.pump}`);
    });
  });

  describe('badges', () => {
    it('refuses an inactive badge as not retryable and writes nothing', async () => {
      const g = w.grant();
      const badgeKey = w.sim.addBadge({ id: 123_456, status: 4 });
      const e = await failure(() => w.target.provision({ ...g, resource: { kind: 'badge', badge: '123456', accessLevel: PUMP } }, ctx()));
      expect(e.retryable).to.equal(false);
      expect(e.message).to.contain('badge ID 123456 is not active').and.to.contain('STATUS 4');
      expect(writes()).to.have.length(0);
      w.sim.setBadgeStatus(badgeKey, 1);
      await w.target.provision({ ...g, resource: { kind: 'badge', badge: '123456', accessLevel: PUMP } }, ctx());
      expect(w.sim.assignment(badgeKey, w.levels.pump)).to.not.equal(undefined);
    });

    it('a reissued card: provision uses the active badge, revoke clears every badge with that card number', async () => {
      const old = w.sim.addBadge({ id: 555, status: 3 });
      const current = w.sim.addBadge({ id: 555 });
      w.sim.assign(old, w.levels.pump, null, '2030-05-01T00:00:00');
      const g = w.grant({ resource: { kind: 'badge', badge: '555', accessLevel: PUMP } });
      const ref = await w.target.provision(g, ctx());
      expect(ref['badgeKey']).to.equal(current);
      await w.target.revoke(g, undefined, ctx());
      expect(w.sim.assignmentCount()).to.equal(0);
    });

    it('refuses an unknown badge and a malformed one, and revoking them succeeds', async () => {
      const unknown = w.grant({ resource: { kind: 'badge', badge: '999999999', accessLevel: PUMP } });
      expect((await failure(() => w.target.provision(unknown, ctx()))).message).to.contain('no badge with badge ID 999999999');
      const malformed = w.grant({ resource: { kind: 'badge', badge: '00123', accessLevel: PUMP } });
      const e = await failure(() => w.target.provision(malformed, ctx()));
      expect(e.retryable).to.equal(false);
      expect(e.message).to.contain('no leading zeros');
      await w.target.revoke(unknown, undefined, ctx());
      await w.target.revoke(malformed, undefined, ctx());
    });

    it('with badgeBy key, the grant names the BADGEKEY and list() reports it', async () => {
      await w.close();
      w = await world(SECRET, { target: { badgeBy: 'key' } });
      const badgeKey = w.sim.addBadge({ id: 4242 });
      const g = w.grant({ resource: { kind: 'badge', badge: String(badgeKey), accessLevel: CHLORINE } });
      await w.target.provision(g, ctx());
      const [entry] = await w.target.list(ctx());
      expect(entry?.resource).to.deep.equal({ kind: 'badge', badge: String(badgeKey), accessLevel: CHLORINE });
    });
  });

  describe('ownership and drift', () => {
    it('an assignment added by hand on a managed level shows in list() and revokeEntry removes it', async () => {
      const badgeKey = w.sim.addBadge({ id: 8080 });
      w.sim.assign(badgeKey, w.levels.chlorine, '2029-06-01T08:00:00', null);
      w.sim.assign(badgeKey, w.levels.other, null, null); // not a managed level: never listed
      const entries = await w.target.list(ctx());
      expect(entries).to.deep.equal([{ ref: { badgeKey, accessLevelId: w.levels.chlorine }, resource: { kind: 'badge', badge: '8080', accessLevel: CHLORINE } }]);
      const [entry] = entries;
      await w.target.revokeEntry(entry!, ctx());
      await w.target.revokeEntry(entry!, ctx());
      expect(await w.target.list(ctx())).to.deep.equal([]);
      expect(w.sim.assignment(badgeKey, w.levels.other), 'the unmanaged level is untouched').to.not.equal(undefined);
    });

    it('never touches a level outside accessLevels', async () => {
      const badgeKey = w.sim.addBadge({ id: 9090 });
      const g = w.grant({ resource: { kind: 'badge', badge: '9090', accessLevel: 'Main Lobby' } });
      const e = await failure(() => w.target.provision(g, ctx()));
      expect(e.retryable).to.equal(false);
      expect(e.message).to.contain('not one this target manages');
      await w.target.revoke(g, undefined, ctx()); // the badge lacks it: nothing to do
      w.sim.assign(badgeKey, w.levels.other, null, null);
      const left = await failure(() => w.target.revoke(g, undefined, ctx()));
      expect(left.retryable).to.equal(false);
      expect(left.message).to.contain('does not manage');
      const entry = await failure(() => w.target.revokeEntry({ ref: { badgeKey, accessLevelId: w.levels.other } }, ctx()));
      expect(entry.retryable).to.equal(false);
      expect(w.sim.assignment(badgeKey, w.levels.other)).to.not.equal(undefined);
    });
  });

  describe('fail closed on what OnGuard stored', () => {
    it('removes the assignment again when the server stores a later DEACTIVATE than validUntil (wrong timeZone)', async () => {
      await w.close();
      // The server runs on Chicago time and reads only the wall clock; wogate was told New York.
      w = await world(SECRET, { sim: { timeZone: 'America/Chicago', ignoreOffsets: true } });
      const g = w.grant({ validUntil: new Date('2030-07-01T23:00:00Z') });
      const e = await failure(() => w.target.provision(g, ctx()));
      expect(e.retryable).to.equal(false);
      expect(e.message).to.contain('later than validUntil').and.to.contain('check timeZone').and.to.contain('removed the assignment');
      expect(w.sim.assignmentCount()).to.equal(0);
    });

    it('removes the assignment again when the server rounds seconds up past validUntil', async () => {
      await w.close();
      w = await world(SECRET, { sim: { secondsKept: 'nearest-minute' }, target: { resolution: 'second' } });
      const e = await failure(() => w.target.provision(w.grant({ validUntil: new Date('2030-07-01T23:00:45Z') }), ctx()));
      expect(e.message).to.contain('later than validUntil');
      expect(w.sim.assignmentCount()).to.equal(0);
      // With the default minute resolution the same server is fine.
      await w.close();
      w = await world(SECRET, { sim: { secondsKept: 'nearest-minute' } });
      await w.target.provision(w.grant({ validUntil: new Date('2030-07-01T23:00:45Z') }), ctx());
      expect(w.sim.assignmentCount()).to.equal(1);
    });
  });

  describe('config', () => {
    const block = {
      baseUrl: 'https://onguard.example/api/access/onguard/openaccess', applicationId: 'app', username: 'wogate-svc', password: 'pw',
      accessLevels: [PUMP], timeZone: 'America/Chicago', timeout: '5s',
    };

    it('builds options from a config block', () => {
      expect(lenelTargetOptions('badges', block)).to.deep.include({ id: 'badges', timeoutMs: 5000, accessLevels: [PUMP], timeZone: 'America/Chicago' });
    });

    for (const [field, value, words] of [
      ['timeZone', 'Mars/Olympus_Mons', 'lenel.timeZone'],
      ['baseUrl', 'https://onguard.example/api', 'lenel.baseUrl'],
      ['accessLevels', [PUMP, PUMP.toUpperCase()], 'lenel.accessLevels[1]'],
      ['accessLevels', ['Say "hi"'], 'lenel.accessLevels[0]'],
      ['badgeBy', 'cardholder', 'lenel.badgeBy'],
      ['timeout', 'soon', 'lenel.timeout'],
      ['colour', 'blue', 'lenel.colour'],
    ] as const) {
      it(`rejects a bad ${field} with a message naming the field`, () => {
        const message = configRefusal(() => lenelTargetOptions('badges', { ...block, [field]: value }));
        expect(message).to.contain(`target badges: ${words}`);
        expect(message).to.not.contain('pw');
      });
    }

    it('the schema compiles strictly and the example in docs/targets/lenel.md validates against it', () => {
      const ajv = new Ajv({ allErrors: true, strict: true, strictRequired: false });
      const validate = ajv.compile({
        definitions: { secretRef: { type: 'string', pattern: '^(env:[A-Za-z_][A-Za-z0-9_]*|file:.+)$' }, duration: { type: 'string', pattern: '^([0-9]+(ms|s|m|h|d))+$' } },
        ...LENEL_TARGET_SCHEMA,
      });
      const doc = fs.readFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)), '../../docs/targets/lenel.md'), 'utf8');
      const yaml = /```yaml\n([\s\S]*?)```/.exec(doc)?.[1] ?? '';
      const example = (parseYaml(yaml) as { targets: { kind: string; lenel: unknown }[] }).targets[0];
      expect(example?.kind).to.equal('lenel');
      expect(validate(example?.lenel), JSON.stringify(validate.errors)).to.equal(true);
      expect(validate({ ...(example?.lenel as object), password: 'inline-password' }), 'an inline password is refused').to.equal(false);
    });
  });
});
