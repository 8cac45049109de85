import { expect } from 'chai';
import { BREAK_GLASS_JUSTIFICATION, startBreakGlassDaemon, type BreakGlassDaemon } from '../helpers/breakglass.js';
import { until } from '../helpers/daemon.js';
import { MaintainXSim } from '../sims/maintainx.js';
import { SapSim } from '../sims/sap.js';

const H = 3_600_000;
// Rare schedules: the daemon's own first resync is the only poll; the review is followed by pollReview.
const POLL = { incremental: '0 0 1 1 *', fullResync: '0 0 1 1 *' };

/**
 * Break-glass on a real daemon (request by one operator, approval by another) with SAP S/4HANA,
 * then MaintainX, as breakGlass.reviewSource: the review order appears in the simulator due at the
 * configured time, and closing it there ends the review.
 */
describe('break-glass review orders in SAP and MaintainX, through a real daemon', function () {
  this.timeout(60_000);

  /** A daemon with `source` (its secrets in `env`) as breakGlass.reviewSource, reviews due 48h after approval. */
  const boot = (source: Record<string, unknown> & { id: string }, env: Record<string, string>): Promise<BreakGlassDaemon> => startBreakGlassDaemon({
    env,
    edit: (c) => {
      c.sources.push({ ...source, poll: POLL });
      c.breakGlass = { maxDuration: '1h', reviewDue: '48h', reviewSource: source.id };
    },
  });
  const stop = async (bg: BreakGlassDaemon | undefined, sim: { close(): Promise<void> } | undefined): Promise<void> => {
    await bg?.stop();
    await sim?.close();
  };

  async function openedReview(bg: BreakGlassDaemon, id: string): Promise<{ orderId: string; dueAt: Date }> {
    await until(async () => (await bg.stored(id)).review?.state === 'open', 'the review order to be opened');
    const r = await bg.stored(id);
    expect(r.review?.dueAt.getTime()).to.equal((r.approvedAt as Date).getTime() + 48 * H);
    const opened = (await bg.audit()).find((a) => a.action === 'breakglass.review_opened' && a.subject === id);
    expect(opened?.details).to.include({ orderId: r.review?.orderId });
    return { orderId: r.review?.orderId as string, dueAt: r.review?.dueAt as Date };
  }

  async function closesWith(bg: BreakGlassDaemon, id: string, close: () => void): Promise<void> {
    // Still open in the CMMS: the review stays open.
    await bg.daemon.breakGlass.tick();
    expect((await bg.stored(id)).review?.state).to.equal('open');
    close();
    await bg.daemon.breakGlass.tick();
    expect((await bg.stored(id)).review?.state).to.equal('done');
    const closed = (await bg.audit()).find((a) => a.action === 'breakglass.review_closed' && a.subject === id);
    expect(closed?.details).to.include({ status: 'completed', late: false });
  }

  describe('SAP S/4HANA as review source', () => {
    let sim: SapSim;
    let bg: BreakGlassDaemon;

    before(async () => {
      sim = await new SapSim().start();
      bg = await boot({
        id: 's4', kind: 'sap',
        sap: {
          baseUrl: sim.url, sapClient: '100', plants: ['1710'],
          auth: { type: 'basic', username: sim.username, password: 'env:TEST_SAP_PASSWORD' },
          webhook: { auth: { type: 'basic', credentials: [{ username: sim.webhookUser.username, password: 'env:TEST_SAP_EM_PASSWORD' }] } },
          review: { orderType: 'YA01' },
        },
      }, { TEST_SAP_PASSWORD: sim.password, TEST_SAP_EM_PASSWORD: sim.webhookUser.password });
    });
    after(() => stop(bg, sim));

    it('opens a YA01 order at the source\'s plant when a second operator approves, due reviewDue after approval, and ends the review when SAP completes it', async () => {
      const id = await bg.requestApproved();
      const { orderId, dueAt } = await openedReview(bg, id);
      expect(sim.created()).to.deep.equal([orderId]);
      const record = sim.record(orderId) as Record<string, unknown>;
      expect(record).to.include({
        MaintenanceOrderType: 'YA01', MaintenancePlant: '1710', MaintenancePlanningPlant: '1710',
        MaintOrdBasicEndDateTime: `/Date(${Math.floor(dueAt.getTime() / 1000) * 1000}+0000)/`,
      });
      expect(String(record.MaintenanceOrderDesc)).to.match(/^Break-glass review bg-/).and.have.length.at.most(40);
      expect(sim.notes(orderId).join('\n')).to.contain(id).and.contain(BREAK_GLASS_JUSTIFICATION);
      await closesWith(bg, id, () => sim.change(orderId, { status: 'completed' }));
    });
  });

  describe('MaintainX as review source', () => {
    const apiKey = 'mx-e2e-key-51f0c2';
    let sim: MaintainXSim;
    let bg: BreakGlassDaemon;

    before(async () => {
      sim = await new MaintainXSim({ apiKey, webhookSecret: 'mx-e2e-hook-secret' }).start();
      bg = await boot({
        id: 'mx', kind: 'maintainx',
        maintainx: { baseUrl: sim.url, apiKey: 'env:TEST_MX_KEY', webhook: { secrets: ['env:TEST_MX_HOOK'] }, review: { locationId: '812', categories: ['Break-glass review'] } },
      }, { TEST_MX_KEY: apiKey, TEST_MX_HOOK: 'mx-e2e-hook-secret' });
    });
    after(() => stop(bg, sim));

    it('opens a HIGH priority work order at the configured location when a second operator approves, due reviewDue after approval, and ends the review when it is done', async () => {
      const id = await bg.requestApproved();
      const { orderId, dueAt } = await openedReview(bg, id);
      expect(sim.created()).to.deep.equal([orderId]);
      expect(sim.raw(orderId)).to.deep.include({ priority: 'HIGH', status: 'OPEN', dueDate: dueAt.toISOString(), locationId: 812, categories: ['Break-glass review'] });
      expect(sim.raw(orderId)?.title).to.equal(`Break-glass review ${id}`);
      expect(sim.raw(orderId)?.description).to.contain(BREAK_GLASS_JUSTIFICATION);
      await closesWith(bg, id, () => sim.change(orderId, { status: 'completed' }));
    });
  });
});
