import fs from 'node:fs';
import path from 'node:path';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { createApp } from '../../src/api/app.js';
import { AuditLog } from '../../src/audit/audit.js';
import { Intake } from '../../src/engine/intake.js';
import { SourcePoller } from '../../src/engine/poller.js';
import { Reconciler } from '../../src/engine/reconciler.js';
import { WriteBack } from '../../src/engine/writeback.js';
import { silentLogger } from '../../src/log.js';
import { createMetrics } from '../../src/metrics.js';
import type { Source, SourceApi } from '../../src/sources/source.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import { MemoryTarget } from '../helpers/memory-target.js';
import { canonicalRegister as register, policySet, tmpDir } from '../helpers/world.js';
import type { CmmsSimulator, SimOrderSpec } from '../sims/simulator.js';

/**
 * The behaviour every CMMS adapter must show through the real engine: its simulator over real
 * HTTP, webhooks through wogate's hook route, a SQLite store, the reconciler and a fake target.
 */
export function sourceContract(name: string, makeSim: () => Promise<CmmsSimulator>, makeSource: (sim: CmmsSimulator) => Source & { api: SourceApi }): void {
  describe(`source contract: ${name}`, function () {
    this.timeout(30_000);
    let sim: CmmsSimulator;
    let source: Source & { api: SourceApi };
    let dir: string;
    let store: SqliteStore;
    let fw: MemoryTarget;
    let rec: Reconciler;
    let intake: Intake;
    let writeBack: WriteBack;
    let server: Server;
    let hookUrl: string;
    let audit: AuditLog;
    const metrics = createMetrics();

    const spec = (over: Partial<SimOrderSpec> = {}): SimOrderSpec => ({
      id: '1001', status: 'awaiting_approval', vendorId: 'acme', technicianIds: ['jdoe'], assetIds: ['PLC-1', 'HMI-1'],
      start: new Date(Date.now() - 60_000), end: new Date(Date.now() + 4 * 3_600_000), type: 'planned', site: 'north', approvers: ['supervisor'], title: 'contract test', ...over,
    });

    function poller(): SourcePoller {
      return new SourcePoller({
        source, intake, store, audit, log: silentLogger, metrics, clock: () => new Date(), incremental: '*/5 * * * *', fullResync: '0 * * * *',
        initialLookbackMs: 86_400_000, staleAfterMs: 3_600_000, failClosed: false, onStale: () => undefined, onChange: () => undefined,
      });
    }

    /** The CMMS sends its webhook; wogate stores it, re-reads the order, reconciles. */
    async function ring(id: string): Promise<void> {
      expect(await sim.notify(id, hookUrl), 'wogate answers the webhook 202').to.equal(202);
      await intake.drain();
      await rec.reconcile();
    }

    // What access the grants give (two orders can share one entry on the target, so count grants).
    const open = async () => (await store.listGrants({ states: ['active'] })).map((g) => `${g.orderId}:${g.assetId}`).sort();

    beforeEach(async () => {
      sim = await makeSim();
      source = makeSource(sim);
      dir = tmpDir();
      store = new SqliteStore(path.join(dir, 'w.db'));
      await store.migrate();
      audit = new AuditLog(store, () => new Date());
      fw = new MemoryTarget('fw');
      const sources = new Map([[source.id, source as Source]]);
      writeBack = new WriteBack({ sources, audit, log: silentLogger, metrics, random: () => 0, batchMs: 5, attempts: 1 });
      const world = () => ({ policySet: policySet(), register });
      rec = new Reconciler({
        store, targets: new Map([['fw', fw]]), audit, log: silentLogger, metrics, clock: () => new Date(), random: () => 0.5, world,
        retry: { baseMs: 1000, maxMs: 60_000, alertAfter: 3 }, lookbackMs: 86_400_000, onGrantChange: (g, c) => writeBack.record(g, c),
      });
      intake = new Intake({ store, sources, audit, log: silentLogger, metrics, clock: () => new Date(), random: () => 0, world, onChange: () => undefined, rereadAttempts: 2 });
      const app = createApp({ store, sources, reconciler: rec, audit, log: silentLogger, metrics, clock: () => new Date(), world, onHookStored: () => undefined, notReady: async () => null });
      server = await new Promise((resolve) => {
        const s = app.listen(0, '127.0.0.1', () => resolve(s));
      });
      hookUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/hooks/${source.id}`;
    });

    afterEach(async () => {
      intake.stop();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      await sim.close();
      await store.close();
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it('create: an order awaiting approval grants nothing', async () => {
      sim.upsert(spec());
      await ring('1001');
      expect(await open()).to.deep.equal([]);
      expect((await store.getOrder(source.id, '1001'))?.status).to.equal('awaiting_approval');
    });

    it('approve: access to both assets, and the trail is written back to the order', async () => {
      sim.upsert(spec({ status: 'approved' }));
      await ring('1001');
      expect(await open()).to.deep.equal(['1001:hmi-1', '1001:plc-1']);
      await writeBack.flush();
      expect(sim.notes('1001').join('\n')).to.match(/access GRANTED: jdoe -> plc-1 \(network access\) on fw/);
      // The CMMS has many readers: by default the trail names the access, not the addresses it opens.
      expect(sim.notes('1001').join('\n')).not.to.match(/\b\d{1,3}(\.\d{1,3}){3}\b/);
    });

    it('change scope: dropping an asset revokes just that one', async () => {
      sim.upsert(spec({ status: 'approved' }));
      await ring('1001');
      sim.change('1001', { assetIds: ['PLC-1'] });
      await ring('1001');
      expect(await open()).to.deep.equal(['1001:plc-1']);
    });

    it('close: everything revoked, and the trail says so', async () => {
      sim.upsert(spec({ status: 'in_progress' }));
      await ring('1001');
      sim.change('1001', { status: 'closed' });
      await ring('1001');
      expect(await open()).to.deep.equal([]);
      await writeBack.flush();
      expect(sim.notes('1001').join('\n')).to.match(/access ENDED/);
    });

    it('cancel: everything revoked', async () => {
      sim.upsert(spec({ status: 'approved' }));
      await ring('1001');
      sim.change('1001', { status: 'cancelled' });
      await ring('1001');
      expect(await open()).to.deep.equal([]);
    });

    it('missed event: the full resync finds the order closed without a webhook', async () => {
      sim.upsert(spec({ status: 'approved' }));
      await ring('1001');
      sim.change('1001', { status: 'closed' });
      await poller().resync();
      await rec.reconcile();
      expect(await open()).to.deep.equal([]);
    });

    it('cursor: polling picks up changes, and a restarted poller reads only what changed since', async () => {
      sim.upsert(spec({ id: '2001', status: 'approved' }));
      sim.upsert(spec({ id: '2002', status: 'approved', assetIds: ['HMI-1'] }));
      expect(await poller().pollOnce()).to.be.at.least(2);
      await rec.reconcile();
      expect(await open()).to.deep.equal(['2001:hmi-1', '2001:plc-1', '2002:hmi-1']);
      const cursor = await store.getState(`cursor:${source.id}`);
      expect(cursor, 'cursor persisted').to.be.a('string').and.not.equal('');
      sim.change('2002', { status: 'completed' });
      const p2 = poller(); // as after a restart: only the store carries the cursor
      await p2.pollOnce();
      await rec.reconcile();
      expect(await open()).to.deep.equal(['2001:hmi-1', '2001:plc-1']);
    });

    it('a webhook whose signature or credentials are wrong is refused and stores nothing', async () => {
      sim.upsert(spec({ status: 'approved' }));
      const res = await fetch(hookUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"forged":true}' });
      expect(res.status).to.be.oneOf([400, 401]);
      expect(await store.pendingHookEvents(10)).to.have.length(0);
    });
  });
}
