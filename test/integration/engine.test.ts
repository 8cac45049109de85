import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { AuditLog } from '../../src/audit/audit.js';
import type { PolicySet, NetworkResource } from '../../src/domain/index.js';
import { freshApprovalsReapprove } from '../../src/domain/index.js';
import { Reconciler } from '../../src/engine/reconciler.js';
import { Scheduler } from '../../src/engine/scheduler.js';
import { silentLogger } from '../../src/log.js';
import { createMetrics } from '../../src/metrics.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import { until } from '../helpers/daemon.js';
import { MemoryTarget } from '../helpers/memory-target.js';
import { order, policySet, register, rule, tmpDir } from '../helpers/world.js';
import { recordingLogger } from './target-contract.js';

interface Harness {
  store: SqliteStore;
  fw: MemoryTarget;
  rec: Reconciler;
  audit: AuditLog;
  clock: { now: Date };
  policies: { set: PolicySet };
}

/** `realTime` for the scheduler tests, which arm real timers; otherwise the test moves `clock.now`. */
function harness(file: string, opts: { alertAfter?: number; realTime?: boolean } = {}): Harness {
  const store = new SqliteStore(file);
  const fw = new MemoryTarget('fw');
  const clock = { now: new Date('2026-11-22T10:00:00Z') };
  const now = opts.realTime ? () => new Date() : () => clock.now;
  const policies = { set: policySet() };
  const audit = new AuditLog(store, now);
  const rec = new Reconciler({
    store, targets: new Map([['fw', fw]]), audit, log: silentLogger, metrics: createMetrics(),
    clock: now, random: () => 0.5, world: () => ({ policySet: policies.set, register }),
    retry: { baseMs: 1000, maxMs: 60_000, alertAfter: opts.alertAfter ?? 3 }, lookbackMs: 86_400_000,
  });
  return { store, fw, rec, audit, clock, policies };
}

describe('engine: reconciler against a real SQLite file', () => {
  let dir: string;
  let h: Harness;
  beforeEach(async () => {
    dir = tmpDir();
    h = harness(path.join(dir, 'w.db'));
    await h.store.migrate();
  });
  afterEach(async () => {
    await h.store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('provisions every technician × asset × allowed port of an approved order, journaled and audited', async () => {
    await h.store.upsertOrder(order({}, h.clock.now), h.clock.now);
    const s = await h.rec.reconcile();
    expect(s).to.include({ provisioned: 2, revoked: 0, failed: 0 });
    const grants = await h.store.listGrants({ states: ['active'] });
    expect(grants.map((g) => `${g.assetId}:${(g.resource as NetworkResource).port}`).sort()).to.deep.equal(['HMI-1:502', 'PLC-1:502']);
    expect([...h.fw.open.keys()].sort()).to.deep.equal(grants.map((g) => g.key).sort());
    expect(await h.store.danglingIntents()).to.have.length(0);
    const audit = await h.store.readAudit(0, 100);
    expect(audit.filter((r) => r.action === 'grant.provisioned')).to.have.length(2);
    expect((await h.audit.verify()).ok).to.equal(true);
  });

  it('is idempotent: a second pass with nothing changed calls no target', async () => {
    await h.store.upsertOrder(order({}, h.clock.now), h.clock.now);
    await h.rec.reconcile();
    const calls = h.fw.calls.length;
    const s = await h.rec.reconcile();
    expect(s).to.include({ provisioned: 0, updated: 0, revoked: 0 });
    expect(h.fw.calls.length).to.equal(calls);
  });

  it('revokes everything when the order is closed, with the policy reason', async () => {
    await h.store.upsertOrder(order({}, h.clock.now), h.clock.now);
    await h.rec.reconcile();
    await h.store.upsertOrder(order({ status: 'closed', sourceStatus: 'CLOSE', revision: '2' }, h.clock.now), h.clock.now);
    const s = await h.rec.reconcile();
    expect(s.revoked).to.equal(2);
    expect(h.fw.open.size).to.equal(0);
    const revoked = await h.store.listGrants({ states: ['revoked'] });
    expect(revoked).to.have.length(2);
    expect(revoked[0]?.revokeReason).to.match(/STATUS_NOT_ALLOWED.*closed/);
  });

  it('revokes the asset dropped from the order and keeps the others', async () => {
    await h.store.upsertOrder(order({}, h.clock.now), h.clock.now);
    await h.rec.reconcile();
    const before = await h.store.listGrants({ states: ['active'] });
    await h.store.upsertOrder(order({ assetIds: ['PLC-1'], revision: '2' }, h.clock.now), h.clock.now);
    const s = await h.rec.reconcile();
    expect(s).to.include({ revoked: 1, provisioned: 0 });
    const after = await h.store.listGrants({ states: ['active'] });
    expect(after.map((g) => g.assetId)).to.deep.equal(['PLC-1']);
    expect(after[0]?.id).to.equal(before.find((g) => g.assetId === 'PLC-1')?.id);
  });

  it('ignores an older revision arriving after a newer one', async () => {
    await h.store.upsertOrder(order({ status: 'closed', revision: '5' }, h.clock.now), h.clock.now);
    expect(await h.store.upsertOrder(order({ status: 'approved', revision: '4' }, h.clock.now), h.clock.now)).to.equal('stale');
    expect((await h.rec.reconcile()).provisioned).to.equal(0);
  });

  it('updates the window in place when the order is extended and approved again', async () => {
    await h.store.upsertOrder(order({}, h.clock.now), h.clock.now);
    await h.rec.reconcile();
    const o = order({}, h.clock.now);
    // A later end without a new approval is held to the approved one (reapproveOnWiden).
    await h.store.upsertOrder({ ...o, window: { start: o.window.start, end: new Date(o.window.end.getTime() + 3_600_000) }, revision: '2' }, h.clock.now);
    expect(await h.rec.reconcile()).to.include({ updated: 0, provisioned: 0, revoked: 0 });
    await h.store.upsertOrder({ ...o, window: { start: o.window.start, end: new Date(o.window.end.getTime() + 3_600_000) }, approvals: [{ by: 'supervisor', at: h.clock.now }], revision: '3' }, h.clock.now, freshApprovalsReapprove(register, h.policies.set));
    const s = await h.rec.reconcile();
    expect(s).to.include({ updated: 2, provisioned: 0, revoked: 0 });
    const g = (await h.store.listGrants({ states: ['active'] }))[0];
    expect(g?.validUntil.getTime()).to.equal(o.window.end.getTime() + 3_600_000);
  });

  it('does not provision before the window opens, and provisions when it does', async () => {
    const later = order({ window: { start: new Date(h.clock.now.getTime() + 600_000), end: new Date(h.clock.now.getTime() + 3_600_000) } }, h.clock.now);
    await h.store.upsertOrder(later, h.clock.now);
    const s1 = await h.rec.reconcile();
    expect(s1.provisioned).to.equal(0);
    expect(s1.nextWakeAt?.toISOString()).to.equal(later.window.start.toISOString());
    h.clock.now = new Date(later.window.start.getTime());
    expect((await h.rec.reconcile()).provisioned).to.equal(2);
  });

  it('revokes at validUntil even while the order stays open', async () => {
    await h.store.upsertOrder(order({}, h.clock.now), h.clock.now);
    const s = await h.rec.reconcile();
    const end = s.nextWakeAt as Date;
    h.clock.now = new Date(end.getTime() - 1);
    expect((await h.rec.reconcile()).revoked).to.equal(0);
    h.clock.now = new Date(end.getTime());
    expect((await h.rec.reconcile()).revoked).to.equal(2);
    expect(h.fw.open.size).to.equal(0);
  });

  it('keeps a failed provision pending with the reason, retries after backoff, and alerts after the limit', async () => {
    h.fw.failNext = 100;
    await h.store.upsertOrder(order({ assetIds: ['PLC-1'] }, h.clock.now), h.clock.now);
    const s1 = await h.rec.reconcile();
    expect(s1.failed).to.equal(1);
    const [g] = await h.store.listGrants({ states: ['pending'] });
    expect(g?.lastError).to.match(/simulated provision failure/);
    expect(g?.nextAttemptAt?.getTime()).to.be.greaterThan(h.clock.now.getTime());
    // Not due yet: nothing is called.
    const calls = h.fw.calls.length;
    await h.rec.reconcile();
    expect(h.fw.calls.length).to.equal(calls);
    for (let i = 0; i < 2; i++) {
      h.clock.now = new Date(h.clock.now.getTime() + 120_000);
      await h.rec.reconcile();
    }
    const alerts = (await h.store.readAudit(0, 1000)).filter((r) => r.action === 'alert.raised');
    expect(alerts).to.have.length(1);
    h.fw.failNext = 0;
    h.clock.now = new Date(h.clock.now.getTime() + 120_000);
    expect((await h.rec.reconcile()).provisioned).to.equal(1);
    const [ok] = await h.store.listGrants({ states: ['active'] });
    expect(ok?.lastError).to.equal(undefined);
  });

  it('never drops a revoke: a failing revoke stays revoking until the target confirms', async () => {
    await h.store.upsertOrder(order({ assetIds: ['PLC-1'] }, h.clock.now), h.clock.now);
    await h.rec.reconcile();
    h.fw.failNext = 3;
    h.fw.failRetryable = false;
    await h.store.upsertOrder(order({ assetIds: ['PLC-1'], status: 'cancelled', revision: '2' }, h.clock.now), h.clock.now);
    for (let i = 0; i < 3; i++) {
      await h.rec.reconcile();
      const [g] = await h.store.listGrants({ states: ['revoking'] });
      expect(g, `attempt ${i + 1}`).to.not.equal(undefined);
      h.clock.now = new Date(h.clock.now.getTime() + 61_000);
    }
    await h.rec.reconcile();
    expect(await h.store.listGrants({ states: ['revoking', 'active'] })).to.have.length(0);
    expect(h.fw.open.size).to.equal(0);
  });

  it('keeps a grant an operator revoked off, although policy still allows it', async () => {
    await h.store.upsertOrder(order({ assetIds: ['PLC-1'] }, h.clock.now), h.clock.now);
    await h.rec.reconcile();
    const [g] = await h.store.listGrants({ states: ['active'] });
    const after = await h.rec.revokeNow(g?.id as string, 'token:soc', 'suspicious session');
    expect(after?.state).to.equal('revoked');
    expect((await h.rec.reconcile()).provisioned).to.equal(0);
    expect(h.fw.open.size).to.equal(0);
    const actions = (await h.store.readAudit(0, 100)).map((r) => r.action);
    expect(actions).to.include('grant.revoke_requested');
  });

  it('a scoped pass acts on the named order only, and decides it as a full pass would', async () => {
    await h.store.upsertOrder(order({ id: 'A', assetIds: ['PLC-1'] }, h.clock.now), h.clock.now);
    await h.store.upsertOrder(order({ id: 'B', assetIds: ['HMI-1'] }, h.clock.now), h.clock.now);
    const s = await h.rec.reconcile(['cmms/A']);
    expect(s).to.include({ provisioned: 1, scoped: true });
    expect((await h.store.listGrants({ states: ['active'] })).map((g) => g.orderId)).to.deep.equal(['A']);
    await h.store.upsertOrder(order({ id: 'A', assetIds: ['PLC-1'], status: 'closed', revision: '2' }, h.clock.now), h.clock.now);
    expect(await h.rec.reconcile(['cmms/A', 'cmms/missing'])).to.include({ revoked: 1, provisioned: 0 });
    expect((await h.rec.reconcile()).provisioned, 'the full pass still finds B').to.equal(1);
  });

  it('revokes grants whose rule was removed from policy on the next pass', async () => {
    await h.store.upsertOrder(order({}, h.clock.now), h.clock.now);
    await h.rec.reconcile();
    h.policies.set = policySet(rule({ match: { assetClasses: ['HMI'] } }));
    const s = await h.rec.reconcile();
    expect(s.revoked).to.equal(1);
    expect((await h.store.listGrants({ states: ['active'] })).map((g) => g.assetId)).to.deep.equal(['HMI-1']);
  });
});

async function kill(child: ReturnType<typeof spawn>): Promise<void> {
  const exited = child.exitCode !== null || child.signalCode !== null;
  const done = exited ? Promise.resolve() : new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await done;
  expect(child.signalCode, 'the child was killed mid-call, not finished').to.equal('SIGKILL');
}

describe('engine: crash between intent and outcome', () => {
  it('replays the journal after a SIGKILL mid-provision and revokes what the closed order no longer allows', async function () {
    this.timeout(30_000);
    const dir = tmpDir();
    const file = path.join(dir, 'w.db');
    const marker = path.join(dir, 'in-call');
    const child = spawn(process.execPath, ['--import', 'tsx', path.resolve('test/helpers/crash-child.ts'), file, marker], { stdio: ['ignore', 'inherit', 'inherit'] });
    const deadline = Date.now() + 20_000;
    while (!fs.existsSync(marker)) {
      if (Date.now() > deadline) throw new Error('child never reached the target call');
      await new Promise((r) => setTimeout(r, 50));
    }
    await kill(child);

    const h = harness(file);
    try {
      await h.store.migrate();
      const dangling = await h.store.danglingIntents();
      expect(dangling).to.have.length(1);
      expect(dangling[0]?.op).to.equal('provision');
      const [pending] = await h.store.listGrants({ states: ['pending'] });
      expect(pending, 'the grant row was written with the intent').to.not.equal(undefined);
      // The provision may have reached the firewall before the crash: the new process must know.
      h.fw.open.set(pending?.key as string, pending as never);
      expect(await h.rec.replayJournal()).to.equal(1);
      expect(await h.store.danglingIntents()).to.have.length(0);
      await h.store.upsertOrder(order({ assetIds: ['PLC-1'], status: 'closed', revision: '2' }, h.clock.now), h.clock.now);
      const s = await h.rec.reconcile();
      expect(s.revoked).to.equal(1);
      expect(h.fw.open.size).to.equal(0);
      expect(h.fw.calls.map((c) => c.op)).to.deep.equal(['revoke']);
      const journal = h.store.raw().prepare('SELECT op, outcome FROM journal ORDER BY id').all();
      expect(journal).to.deep.equal([{ op: 'provision', outcome: 'interrupted' }, { op: 'revoke', outcome: 'ok' }]);
      expect((await h.audit.verify()).ok).to.equal(true);
    } finally {
      await h.store.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('replays the journal and re-provisions (idempotently) when the order is still open', async function () {
    this.timeout(30_000);
    const dir = tmpDir();
    const file = path.join(dir, 'w.db');
    const marker = path.join(dir, 'in-call');
    const child = spawn(process.execPath, ['--import', 'tsx', path.resolve('test/helpers/crash-child.ts'), file, marker], { stdio: ['ignore', 'inherit', 'inherit'] });
    while (!fs.existsSync(marker)) await new Promise((r) => setTimeout(r, 50));
    await kill(child);
    const h = harness(file);
    try {
      await h.store.migrate();
      expect(await h.rec.replayJournal()).to.equal(1);
      const s = await h.rec.reconcile();
      expect(s.provisioned).to.equal(1);
      const grants = await h.store.listGrants();
      expect(grants, 'the same grant row is completed, not a second one').to.have.length(1);
      expect(grants[0]?.state).to.equal('active');
    } finally {
      await h.store.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('engine: expiry scheduler', () => {
  it('keeps the earliest expiry timer when a scoped pass for a later order runs', async function () {
    this.timeout(30_000);
    const dir = tmpDir();
    const h = harness(path.join(dir, 'w.db'), { realTime: true });
    await h.store.migrate();
    const realNow = () => new Date();
    const rec = h.rec;
    const start = new Date();
    // SOON must still be open when the scoped pass runs: 3 s leaves a busy machine room for the set-up.
    const soon = order({ id: 'SOON', assetIds: ['PLC-1'], window: { start: new Date(start.getTime() - 1000), end: new Date(start.getTime() + 3000) } }, start);
    await h.store.upsertOrder(soon, start);
    const sched = new Scheduler({ reconcile: (k) => rec.reconcile(k), clock: realNow, log: silentLogger, fullReconcileMs: 3_600_000 });
    try {
      await sched.start();
      await h.store.upsertOrder(order({ id: 'LATER', assetIds: ['HMI-1'] }, start), start);
      await sched.run('test', ['cmms/LATER']);
      expect(h.fw.open.size).to.equal(2);
      // Only the timer can do it in time: the periodic pass is an hour away.
      await until(() => h.fw.open.size === 1, 'SOON revoked at its end', 15_000);
      expect([...h.fw.open.values()].map((g) => g.orderId)).to.deep.equal(['LATER']);
    } finally {
      sched.stop();
      await h.store.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('revokes a grant by a timer armed for validUntil itself, without waiting for the periodic pass', async function () {
    this.timeout(15_000);
    const dir = tmpDir();
    const h = harness(path.join(dir, 'w.db'), { realTime: true });
    await h.store.migrate();
    const realNow = () => new Date();
    const rec = h.rec;
    const start = new Date();
    const o = order({ assetIds: ['PLC-1'], window: { start: new Date(start.getTime() - 1000), end: new Date(start.getTime() + 1500) } }, start);
    await h.store.upsertOrder(o, start);
    // How late a timer fires is the machine's business (CI is busy); when it is armed for, and that
    // it is the timer and not the hourly pass that revokes, is wogate's. Those are asserted exactly.
    const wakes: (Date | undefined)[] = [];
    const log = recordingLogger();
    const sched = new Scheduler({ reconcile: async () => { const s = await rec.reconcile(); wakes.push(s.nextWakeAt); return s; }, clock: realNow, log, fullReconcileMs: 3_600_000 });
    try {
      await sched.start();
      expect(h.fw.open.size).to.equal(1);
      expect(wakes[0]?.toISOString(), 'the timer is armed for validUntil').to.equal(o.window.end.toISOString());
      await until(() => h.fw.open.size === 0, 'the revoke at validUntil', 10_000);
      const revoke = h.fw.calls.find((c) => c.op === 'revoke');
      expect(revoke, 'revoked').to.not.equal(undefined);
      const lag = (revoke?.at.getTime() ?? 0) - o.window.end.getTime();
      expect(lag, 'never before validUntil').to.be.at.least(0);
      const passes = log.lines.map((l) => JSON.parse(l) as { msg: string; reason?: string; revoked?: number }).filter((l) => l.msg === 'reconciled');
      expect(passes.find((p) => p.revoked === 1)?.reason, 'revoked by the validUntil timer, not the periodic pass').to.equal('timer');
    } finally {
      sched.stop();
      await h.store.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
