import { expect } from 'chai';
import { grantKey, RESOURCE_KINDS, type Resource, type TargetRef } from '../../src/domain/index.js';
import { entryMatches } from '../../src/engine/drift.js';
import type { Logger } from '../../src/log.js';
import { TargetError, type CallContext, type Target, type TargetEntry, type TargetGrant } from '../../src/targets/target.js';

/**
 * Ways a setup can make the next calls fail, named by what the remote did; an HTTP setup answers
 * rate-limited with 429 (and Retry-After), server-error with 5xx, bad-request with 400, forbidden with 403.
 */
export type FailureMode = 'timeout' | 'rate-limited' | 'server-error' | 'bad-request' | 'forbidden';
const RETRYABLE: Readonly<Record<FailureMode, boolean>> = {
  timeout: true, 'rate-limited': true, 'server-error': true, 'bad-request': false, forbidden: false,
};

export interface TargetSetup {
  readonly target: Target;
  /** A grant for this target, different from every other one this setup has made (key, resource). */
  makeGrant(overrides?: Partial<TargetGrant>): TargetGrant;
  cleanup(): Promise<void>;
  /** Makes the next `count` calls to the remote fail as `how`. */
  failNext?(count: number, how: FailureMode): void;
  /** The modes failNext can produce; default all. */
  readonly failureModes?: readonly FailureMode[];
}

/** The deadline of every call a test does not mean to time out: generous, so a busy machine never turns a healthy call into a timeout. */
export const PATIENT_MS = 10_000;
/** The deadline of a call aimed at a remote that will never answer: only this deadline is under test, so nothing races it. */
export const HASTY_MS = 500;

/**
 * One target built twice, with a patient and a hasty deadline: calls go to the patient one,
 * except those a 'timeout' fault was queued for (`expectTimeouts`), which go to the hasty one.
 * Each fault must hang the first request of its call, as the simulators' and slapd's do.
 */
export function deadlineSplit(make: (timeoutMs: number) => Target): { target: Target; expectTimeouts(count: number): void } {
  const patient = make(PATIENT_MS);
  const hasty = make(HASTY_MS);
  let timeouts = 0;
  const pick = (): Target => {
    if (timeouts === 0) return patient;
    timeouts--;
    return hasty;
  };
  return {
    target: {
      id: patient.id,
      kind: patient.kind,
      nativeExpiry: patient.nativeExpiry,
      resourceKinds: patient.resourceKinds,
      // Only the patient one: every call the hasty one gets is meant to find no answer, and its
      // init would be a healthy call under the short deadline.
      init: (ctx) => patient.init(ctx),
      provision: (g, ctx) => pick().provision(g, ctx),
      update: (g, ref, ctx) => pick().update(g, ref, ctx),
      revoke: (g, ref, ctx) => pick().revoke(g, ref, ctx),
      list: (ctx) => pick().list(ctx),
      close: async () => {
        await patient.close();
        await hasty.close();
      },
    },
    expectTimeouts: (count) => {
      timeouts += count;
    },
  };
}

/**
 * The setup of a target tested against a simulator of its remote: grants through `makeGrant`,
 * failures through the simulator's fault injection, and both closed at cleanup. `make` builds the
 * target with a given call deadline (see deadlineSplit).
 */
export function simulatedSetup(
  make: (timeoutMs: number) => Target,
  sim: { readonly faults: { failNext(count: number, how: FailureMode): void }; close(): Promise<void> },
  makeGrant: (overrides?: Partial<TargetGrant>) => TargetGrant,
): TargetSetup {
  const { target, expectTimeouts } = deadlineSplit(make);
  return {
    target,
    makeGrant,
    failNext: (count, how) => {
      if (how === 'timeout') expectTimeouts(count);
      sim.faults.failNext(count, how);
    },
    cleanup: async () => {
      await target.close();
      await sim.close();
    },
  };
}

export interface SetupContext {
  /** A canary credential: configure the target with it wherever it takes one. It must never show up in an error or a log line. */
  readonly secret: string;
}

/** A Logger that keeps every line, child loggers included, for asserting on what was written. */
export function recordingLogger(lines: string[] = [], base: Record<string, unknown> = {}): Logger & { lines: string[] } {
  const at = (level: string) => (msg: string, meta?: Record<string, unknown>) => {
    lines.push(JSON.stringify({ level, msg, ...base, ...meta }));
  };
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), child: (meta) => recordingLogger(lines, { ...base, ...meta }) };
}

let serial = 0;

/** A network resource unique to `n`: its own technician address and port. */
export function networkResource(n: number): Resource {
  return { kind: 'network', sourceAddress: `10.77.1.${(n % 250) + 2}`, address: '10.77.2.2', port: 1000 + n, protocol: 'tcp' };
}

/**
 * A plausible grant for `targetId`; each call gets its own technician and, through `resource`
 * (default: a network flow with its own address and port), its own resource, so no two share a
 * key or an entry. The key is computed from the resource, as evaluate() does.
 */
export function sampleGrant(targetId: string, overrides: Partial<TargetGrant> = {}, now = new Date(), resource: (n: number) => Resource = networkResource): TargetGrant {
  const n = ++serial;
  const orderKey = overrides.orderKey ?? `cmms:WO-${n}`;
  const technicianId = overrides.technicianId ?? `tech${n}`;
  const r = overrides.resource ?? resource(n);
  const base: TargetGrant = {
    id: `g-${process.pid}-${n}`, key: grantKey(orderKey, technicianId, targetId, r), orderKey, source: 'cmms', orderId: `WO-${n}`,
    vendorId: 'acme', technicianId, assetId: 'PLC-1', targetId, resource: r,
    validFrom: new Date(now.getTime() - 60_000), validUntil: new Date(now.getTime() + 3_600_000),
  };
  return { ...base, ...overrides };
}

/** A resource of each kind, for checking that a target refuses the kinds it does not hold. */
const OTHER_KIND: Readonly<Record<Resource['kind'], Resource>> = {
  network: { kind: 'network', sourceAddress: '10.77.9.9', address: '10.77.9.10', port: 9, protocol: 'tcp' },
  group: { kind: 'group', account: 'contract-account', group: 'contract-group' },
  pam: { kind: 'pam', account: 'contract-account', safe: 'contract-safe' },
  badge: { kind: 'badge', badge: '999999', accessLevel: 'contract-level' },
  certificate: { kind: 'certificate', commonName: 'contract.acme' },
};

/**
 * The behaviour every Target must show, whatever system it drives: idempotent calls, a list()
 * that tells the truth (drift detection depends on it), a native expiry that matches validUntil,
 * errors classified for the retry loop, and no credential in any error or log line.
 */
export interface ContractOptions {
  /**
   * The target has no remote that can fail (the local CA writes files): say where its own
   * failures are tested instead. The failure-classification tests are then not part of its contract.
   */
  readonly noRemote?: string;
}

export function targetContract(name: string, setup: (ctx: SetupContext) => Promise<TargetSetup>, options: ContractOptions = {}): void {
  describe(`target contract: ${name}`, function () {
    this.timeout(30_000);
    const secret = `canary-${Math.random().toString(36).slice(2)}-s3cret`;
    let s: TargetSetup;
    let log: ReturnType<typeof recordingLogger>;
    const ctx = (): CallContext => ({ now: new Date(), log });

    const matching = (entries: TargetEntry[], g: TargetGrant, ref: TargetRef | undefined) => entries.filter((e) => entryMatches(e, { key: g.key, targetId: g.targetId, targetRef: ref, resource: g.resource }));

    async function failure(call: () => Promise<unknown>): Promise<TargetError> {
      const e = await call().then(() => undefined, (err: unknown) => err);
      expect(e, 'the call fails').to.be.instanceOf(TargetError);
      return e as TargetError;
    }

    function expectNoSecret(what: string, text: string): void {
      expect(text.includes(secret), `${what} contains the target's credential: ${text}`).to.equal(false);
    }

    beforeEach(async () => {
      log = recordingLogger();
      s = await setup({ secret });
      await s.target.init(ctx());
    });

    afterEach(async () => {
      await s.cleanup();
      for (const line of log.lines) expectNoSecret('a log line', line);
    });

    it('provisions idempotently: provisioning twice leaves one entry in list()', async () => {
      const g = s.makeGrant();
      const ref1 = await s.target.provision(g, ctx());
      const ref2 = await s.target.provision(g, ctx());
      const entries = await s.target.list(ctx());
      expect(matching(entries, g, ref2)).to.have.length(1);
      expect(matching(entries, g, ref1)).to.have.length(1);
    });

    it('list() contains what was provisioned and stops containing it once revoked', async () => {
      const kept = s.makeGrant();
      const g = s.makeGrant();
      const keptRef = await s.target.provision(kept, ctx());
      const ref = await s.target.provision(g, ctx());
      expect(matching(await s.target.list(ctx()), g, ref), 'listed after provision').to.have.length(1);
      await s.target.revoke(g, ref, ctx());
      const after = await s.target.list(ctx());
      expect(matching(after, g, ref), 'not listed after revoke').to.have.length(0);
      expect(matching(after, kept, keptRef), 'the other grant is untouched').to.have.length(1);
    });

    it('revokes idempotently: revoking twice succeeds and leaves nothing', async () => {
      const g = s.makeGrant();
      const ref = await s.target.provision(g, ctx());
      await s.target.revoke(g, ref, ctx());
      await s.target.revoke(g, ref, ctx());
      expect(matching(await s.target.list(ctx()), g, ref)).to.have.length(0);
    });

    it('revoking a grant that was never provisioned succeeds, with or without a ref', async () => {
      const g = s.makeGrant();
      await s.target.revoke(g, undefined, ctx());
      await s.target.revoke(s.makeGrant(), { key: 'never-made', id: 'never-made' }, ctx());
    });

    it('revokes from the grant alone when the ref was lost (a crash before it was stored)', async () => {
      const g = s.makeGrant();
      const ref = await s.target.provision(g, ctx());
      await s.target.revoke(g, undefined, ctx());
      expect(matching(await s.target.list(ctx()), g, ref)).to.have.length(0);
    });

    it('update moves the window and keeps a single entry', async () => {
      const g = s.makeGrant();
      const ref = await s.target.provision(g, ctx());
      const longer = { ...g, validUntil: new Date(g.validUntil.getTime() + 30 * 60_000) };
      const ref2 = await s.target.update(longer, ref, ctx());
      const found = matching(await s.target.list(ctx()), longer, ref2);
      expect(found).to.have.length(1);
      const expiresAt = found[0]?.expiresAt;
      if (s.target.nativeExpiry || expiresAt) {
        expect(expiresAt, 'the entry carries the new end').to.be.instanceOf(Date);
        expect(Math.abs(expiresAt!.getTime() - longer.validUntil.getTime())).to.be.below(2_000);
      }
      await s.target.revoke(longer, ref2, ctx());
      expect(matching(await s.target.list(ctx()), longer, ref2)).to.have.length(0);
    });

    it('list() never reports an entry outliving validUntil; with native expiry, each ends within 2 s of it', async () => {
      const g = s.makeGrant({ validUntil: new Date(Date.now() + 90 * 60_000 + 321) });
      const ref = await s.target.provision(g, ctx());
      const [entry] = matching(await s.target.list(ctx()), g, ref);
      expect(entry, 'listed').to.not.equal(undefined);
      if (entry?.expiresAt) expect(entry.expiresAt.getTime(), 'never later than the window').to.be.at.most(g.validUntil.getTime() + 1_000);
      if (!s.target.nativeExpiry) return;
      expect(entry?.expiresAt, 'expiresAt present').to.be.instanceOf(Date);
      expect(Math.abs(entry!.expiresAt!.getTime() - g.validUntil.getTime())).to.be.below(2_000);
    });

    if (!options.noRemote) {
      it('classifies each failure the remote can be made to produce: timeouts, 429 (with its wait) and 5xx retryable, 400 and 403 not', async () => {
        expect(s.failNext, 'a target with a remote wires failNext into the contract').to.be.a('function');
        const modes = s.failureModes ?? (Object.keys(RETRYABLE) as FailureMode[]);
        expect(modes.length, 'at least one failure mode').to.be.greaterThan(0);
        for (const mode of modes) {
          const g = s.makeGrant();
          s.failNext!(1, mode);
          const e = await failure(() => s.target.provision(g, ctx()));
          expect(e.retryable, `${mode}: ${e.message}`).to.equal(RETRYABLE[mode]);
          expect(e.targetId).to.equal(s.target.id);
          if (mode === 'rate-limited') expect(e.details?.['retryAfterMs'], 'retryAfterMs').to.be.a('number').and.at.least(0);
          expectNoSecret('the error', `${e.message} ${JSON.stringify(e.details ?? {})} ${e.stack ?? ''}`);
          // The failure was the remote's, not sticky state: the same call then succeeds.
          const ref = await s.target.provision(g, ctx());
          expect(matching(await s.target.list(ctx()), g, ref), `${mode}: provisioned after the failure`).to.have.length(1);
        }
      });
    }

    it('refuses a kind of resource it does not hold, as not retryable, and revoking one succeeds', async () => {
      const others = RESOURCE_KINDS.filter((k) => !s.target.resourceKinds.includes(k));
      expect(others.length, 'every target holds fewer kinds than exist').to.be.greaterThan(0);
      for (const kind of others) {
        const g = s.makeGrant({ resource: OTHER_KIND[kind] });
        const e = await failure(() => s.target.provision(g, ctx()));
        expect(e.retryable, `${kind}: ${e.message}`).to.equal(false);
        await s.target.revoke(g, undefined, ctx());
      }
    });

    if (options.noRemote) return;
    it('errors never contain the credential, whichever call fails', async () => {
      expect(s.failNext, 'a target with a remote wires failNext into the contract').to.be.a('function');
      const modes = s.failureModes ?? (Object.keys(RETRYABLE) as FailureMode[]);
      const g = s.makeGrant();
      const ref = await s.target.provision(g, ctx());
      const calls: (() => Promise<unknown>)[] = [
        () => s.target.provision(g, ctx()),
        () => s.target.update(g, ref, ctx()),
        () => s.target.revoke(g, ref, ctx()),
        () => s.target.list(ctx()),
      ];
      for (const mode of modes) {
        for (const call of calls) {
          s.failNext!(1, mode);
          const e = await failure(call);
          expectNoSecret(`the ${mode} error`, `${e.message} ${JSON.stringify(e.details ?? {})} ${e.stack ?? ''}`);
        }
      }
    });
  });
}
