import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { AuditLog } from '../../src/audit/audit.js';
import { makeRegister, type Grant } from '../../src/domain/index.js';
import { Reconciler } from '../../src/engine/reconciler.js';
import { silentLogger } from '../../src/log.js';
import { createMetrics, type Metrics } from '../../src/metrics.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import { FortiGateTarget } from '../../src/targets/fortigate.js';
import { FortiGateSim } from '../sims/fortigate.js';
import { order, policySet, rule, tmpDir } from '../helpers/world.js';
import { deadlineSplit, HASTY_MS } from './target-contract.js';

const TOKEN = 'fgt-reliability-token-77aa';
const GROUP = 'WOGATE-PLC1-MODBUS';

// The engine and a real adapter against a simulator that misbehaves the way appliances do: the
// grant shows why it is not done, a revoke is never dropped, an alert is raised at the limit.
describe('reliability: the engine with the FortiGate adapter when the firewall misbehaves', function () {
  this.timeout(30_000);
  let dir: string;
  let store: SqliteStore;
  let sim: FortiGateSim;
  let metrics: Metrics;
  let rec: Reconciler;
  let expectTimeouts: (count: number) => void;
  const clock = { now: new Date() };
  const register = makeRegister(
    [{ id: 'PLC-1', class: 'PLC', criticality: 'critical', site: 'north', zone: 'process', endpoints: [{ address: '10.20.0.10', ports: [502], protocol: 'tcp' }] }],
    [{ id: 'acme', technicians: [{ id: 'jdoe', address: '10.8.0.21' }] }],
  );

  beforeEach(async () => {
    dir = tmpDir();
    store = new SqliteStore(path.join(dir, 'w.db'));
    await store.migrate();
    sim = await FortiGateSim.start({ token: TOKEN });
    sim.addGroup(GROUP);
    metrics = createMetrics();
    clock.now = new Date();
    // Healthy calls get a generous deadline; the one aimed at the hung firewall, the short one under test.
    const split = deadlineSplit((timeoutMs) => new FortiGateTarget({ id: 'fw', baseUrl: sim.url, token: TOKEN, timeoutMs, scopes: [{ address: '10.20.0.10', port: 502, protocol: 'tcp', group: GROUP }] }));
    const fw = split.target;
    expectTimeouts = split.expectTimeouts;
    rec = new Reconciler({
      store, targets: new Map([['fw', fw]]), audit: new AuditLog(store, () => clock.now), log: silentLogger, metrics, clock: () => clock.now, random: () => 0.5,
      world: () => ({ policySet: policySet(rule({ match: { assetClasses: ['PLC'] } })), register }),
      retry: { baseMs: 1000, maxMs: 60_000, alertAfter: 3 }, lookbackMs: 86_400_000,
    });
  });
  afterEach(async () => {
    await store.close();
    await sim.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const only = async (): Promise<Grant> => {
    const [g] = await store.listGrants();
    if (!g) throw new Error('no grant');
    return g;
  };
  /** Moves the clock past the grant's next attempt and runs a pass. */
  const later = async () => {
    const g = await only();
    clock.now = new Date(Math.max(clock.now.getTime(), (g.nextAttemptAt ?? clock.now).getTime()) + 1);
    await rec.reconcile();
  };
  const alerts = async (kind: string) => (await metrics.alerts.get()).values.find((v) => v.labels['kind'] === kind)?.value ?? 0;

  it('a 200 with an error inside leaves the grant pending with the firewall\'s reason, alerts at the limit, and succeeds once the firewall does', async () => {
    await store.upsertOrder(order({ assetIds: ['PLC-1'] }, clock.now), clock.now);
    sim.faults.failNext(20, 'error-in-200');
    await rec.reconcile();
    let g = await only();
    expect(g.state).to.equal('pending');
    expect(g.lastError).to.match(/answered 200 with an error/);
    expect(g.nextAttemptAt!.getTime()).to.be.greaterThan(clock.now.getTime());
    await later();
    await later();
    expect((await only()).attempts).to.equal(3);
    expect(await alerts('provision_failing'), 'alert raised at the retry limit').to.equal(1);
    expect(sim.members(GROUP)).to.not.include('wogate-10.8.0.21');
    sim.faults.clear();
    await later();
    g = await only();
    expect(g.state).to.equal('active');
    expect(g.lastError).to.equal(undefined);
    expect(sim.members(GROUP)).to.include('wogate-10.8.0.21');
  });

  it('a revoke that times out and then meets 429s and 503s stays revoking until the firewall confirms, honouring Retry-After', async () => {
    await store.upsertOrder(order({ assetIds: ['PLC-1'] }, clock.now), clock.now);
    await rec.reconcile();
    expect((await only()).state).to.equal('active');
    await store.upsertOrder(order({ assetIds: ['PLC-1'], status: 'closed', sourceStatus: 'CLOSE', revision: '2' }, clock.now), clock.now);
    sim.faults.hangMs = 2_000;
    sim.faults.failNext(1, 'timeout');
    expectTimeouts(1);
    await rec.reconcile();
    let g = await only();
    expect(g.state).to.equal('revoking');
    expect(g.lastError).to.include(`no answer within ${HASTY_MS} ms`);
    sim.faults.failNext(1, 'rate-limited');
    await later();
    g = await only();
    expect(g.state).to.equal('revoking');
    expect(g.nextAttemptAt!.getTime() - clock.now.getTime(), 'waits the 7 s the firewall asked for').to.be.at.least(7_000);
    sim.faults.failNext(1, 'server-error');
    await later();
    expect((await only()).state).to.equal('revoking');
    expect(sim.members(GROUP), 'still a member while the revoke is unconfirmed').to.include('wogate-10.8.0.21');
    await later();
    expect((await only()).state).to.equal('revoked');
    expect(sim.members(GROUP)).to.not.include('wogate-10.8.0.21');
    const failures = (await store.readAudit(0, 1000)).filter((r) => r.action === 'grant.revoke_failed');
    expect(failures.map((r) => String(r.details['error']))).to.have.length(3);
  });
});
