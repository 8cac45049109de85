import { expect } from 'chai';
import express from 'express';
import { silentLogger } from '../../src/log.js';
import { basicAuthorization } from '../../src/sources/sap-webhook.js';
import { SapSource } from '../../src/sources/sap.js';
import type { CallContext, ReviewOrderInput } from '../../src/sources/source.js';
import { configRefusal, loadWithReviewSource } from '../helpers/breakglass.js';
import { sourceFailure } from '../helpers/source-errors.js';
import { listen } from '../sims/faults.js';
import { SapSim, SIM_SERVICE, simSourceOptions } from '../sims/sap.js';

const T0 = Date.parse('2025-03-04T12:00:00Z');
const H = 3_600_000;
const REQUEST_ID = 'bg-0f4c2a9e-6d1b-4f0e-9a53-2c7e8b1d4f60';
const DETAILS = [
  `Post-event review of break-glass access ${REQUEST_ID}.`,
  'Vendor acme-controls; technicians tech-jdoe; assets PLC-CL2-01.',
  'Justification: Chlorinator 2 PLC faulted at 07:40; dosing is on manual.',
].join('\n');

function review(over: Partial<ReviewOrderInput> = {}): ReviewOrderInput {
  return { title: `Break-glass review ${REQUEST_ID}`, details: DETAILS, dueAt: new Date(T0 + 48 * H + 750), ...over };
}


describe('SAP review orders (createReview) against the S/4HANA simulator', () => {
  let sim: SapSim;
  let source: SapSource;
  const ctx = (now = T0): CallContext => ({ now: new Date(now), log: silentLogger });

  async function setup(over: Parameters<typeof simSourceOptions>[1] = {}): Promise<void> {
    sim = await new SapSim({ clock: () => new Date(T0) }).start();
    source = new SapSource(simSourceOptions(sim, { plants: ['1710'], review: { orderType: 'YA01' }, ...over }));
  }

  afterEach(async () => {
    await source?.close();
    await sim?.close();
  });

  it('opens an order of the configured type at the plant, cut to 40 characters, with the details as long text and the due date as basic finish', async () => {
    await setup();
    const { orderId } = await source.api.createReview(review(), ctx());
    expect(orderId).to.equal('4100001');
    expect(sim.created()).to.deep.equal([orderId]);
    const record = sim.record(orderId) as Record<string, unknown>;
    expect(record).to.include({
      MaintenanceOrderType: 'YA01', MaintenancePlanningPlant: '1710', MaintenancePlant: '1710', SystemStatusText: 'CRTD NMAT',
      MaintOrdBasicStartDateTime: `/Date(${T0}+0000)/`,
      // Whole seconds: the 750 ms of the due date are dropped.
      MaintOrdBasicEndDateTime: `/Date(${T0 + 48 * H}+0000)/`,
    });
    const desc = String(record.MaintenanceOrderDesc);
    expect(desc).to.have.length(40);
    expect(desc).to.equal(`Break-glass review ${REQUEST_ID.slice(0, 20)}…`);
    expect(sim.notes(orderId)).to.deep.equal([DETAILS]);
  });

  it('returns the id fetchOrder reads, so the review can be followed until SAP completes it', async () => {
    await setup();
    const { orderId } = await source.api.createReview(review(), ctx());
    const open = await source.api.fetchOrder(orderId, ctx());
    expect(open).to.deep.include({ id: orderId, status: 'awaiting_approval', site: '1710', vendorId: '', technicianIds: [], assetIds: [] });
    expect(open?.window.end).to.deep.equal(new Date(T0 + 48 * H));
    sim.change(orderId, { status: 'completed' });
    expect((await source.api.fetchOrder(orderId, ctx()))?.status).to.equal('completed');
  });

  it('takes the plant from breakGlass.reviewSite over the configured one, and sends the planning plant and priority when configured', async () => {
    await setup({ review: { orderType: 'PM01', plant: '1010', planningPlant: '1000', priority: '1' } });
    const atSite = await source.api.createReview(review({ site: '1710' }), ctx());
    expect(sim.record(atSite.orderId)).to.include({ MaintenanceOrderType: 'PM01', MaintenancePlant: '1710', MaintenancePlanningPlant: '1000', MaintPriority: '1' });
    const configured = await source.api.createReview(review(), ctx());
    expect(sim.record(configured.orderId)).to.include({ MaintenancePlant: '1010', MaintenancePlanningPlant: '1000' });
  });

  it('starts a review opened after its due date at the due date, so SAP does not refuse a finish before the start', async () => {
    await setup();
    const { orderId } = await source.api.createReview(review({ dueAt: new Date(T0 - H) }), ctx());
    expect(sim.record(orderId)).to.include({ MaintOrdBasicStartDateTime: `/Date(${T0 - H}+0000)/`, MaintOrdBasicEndDateTime: `/Date(${T0 - H}+0000)/` });
  });

  it('keeps the title on one line and the details free of control characters other than line breaks', async () => {
    await setup();
    const { orderId } = await source.api.createReview(review({ title: 'Review\r\nbg-1\u0007', details: 'line 1\r\nline 2\u0000\rline 3' }), ctx());
    expect(sim.record(orderId)?.MaintenanceOrderDesc).to.equal('Review  bg-1');
    expect(sim.notes(orderId)).to.deep.equal(['line 1\nline 2 \nline 3']);
  });

  it('fetches a CSRF token before the POST, and a new one once when SAP answers that the session expired', async () => {
    await setup();
    await source.api.createReview(review(), ctx());
    sim.expireCsrf();
    await source.api.createReview(review(), ctx());
    const calls = sim.requests.map((r) => `${r.method} ${r.path.replace(SIM_SERVICE, '')}`);
    expect(calls).to.deep.equal(['GET /', 'POST /MaintenanceOrder', 'POST /MaintenanceOrder', 'GET /', 'POST /MaintenanceOrder']);
    expect(sim.created()).to.have.length(2);
  });

  it('simulator: refuses a create without a CSRF token with 403 "x-csrf-token: Required", as S/4HANA does', async () => {
    await setup();
    const res = await fetch(`${sim.url}${SIM_SERVICE}/MaintenanceOrder`, {
      method: 'POST',
      headers: { authorization: basicAuthorization(sim.username, sim.password), 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({ MaintenanceOrderType: 'YA01', MaintenanceOrderDesc: 'x', MaintenancePlanningPlant: '1710' }),
    });
    expect(res.status).to.equal(403);
    expect(res.headers.get('x-csrf-token')).to.equal('Required');
    expect(sim.created()).to.deep.equal([]);
  });

  it('reports rate limits, server errors and timeouts as retryable, and no order is opened by them', async () => {
    await setup();
    await source.api.createReview(review(), ctx());
    // Only the call meant to hang has the short deadline; the answered ones have a generous one.
    const hasty = new SapSource(simSourceOptions(sim, { plants: ['1710'], review: { orderType: 'YA01' }, timeoutMs: 300 }));
    for (const how of [429, 500, 503, 'hang'] as const) {
      sim.failNext(1, how);
      const e = await sourceFailure((how === 'hang' ? hasty : source).api.createReview(review(), ctx()));
      expect(e.retryable, String(how)).to.equal(true);
    }
    await hasty.close();
    expect(sim.created()).to.have.length(1);
  });

  it('reports what retrying cannot change as not retryable: an order type SAP does not know (400), no authorisation (403)', async () => {
    await setup({ review: { orderType: 'ZZ99' } });
    const unknownType = await sourceFailure(source.api.createReview(review(), ctx()));
    expect(unknownType.retryable).to.equal(false);
    expect(unknownType.details).to.include({ method: 'POST', status: 400 });
    expect(unknownType.message).to.include('Order type ZZ99 is not defined');
    await source.close();
    source = new SapSource(simSourceOptions(sim, { plants: ['1710'], review: { orderType: 'YA01' } }));
    sim.failNext(1, 403, 1);
    const forbidden = await sourceFailure(source.api.createReview(review(), ctx()));
    expect(forbidden.retryable).to.equal(false);
    expect(forbidden.details?.status).to.equal(403);
    expect(sim.created()).to.deep.equal([]);
  });

  it('does not retry a create SAP answered 2xx without a usable order number, which would open a second order', async () => {
    await setup();
    sim.answerCreatesWithoutId();
    const noId = await sourceFailure(source.api.createReview(review(), ctx()));
    expect(noId.retryable).to.equal(false);
    expect(noId.details).to.include({ code: 'SOURCE_RESPONSE_INVALID', status: 201 });
    expect(sim.created()).to.have.length(1);
    // A 2xx whose body is not even JSON (a proxy's page) counts the same.
    sim.failNext(1, 'html');
    expect((await sourceFailure(source.api.createReview(review(), ctx()))).retryable).to.equal(false);
  });

  it('refuses before calling SAP when no order type or no plant is configured', async () => {
    await setup({ review: {} });
    const noType = await sourceFailure(source.api.createReview(review(), ctx()));
    expect(noType.retryable).to.equal(false);
    expect(noType.message).to.include('review.orderType');
    await source.close();
    source = new SapSource(simSourceOptions(sim, { plants: [], review: { orderType: 'YA01' } }));
    expect((await sourceFailure(source.api.createReview(review(), ctx()))).message).to.include('no plant');
    expect((await sourceFailure(source.api.createReview(review({ site: 'BEDFORD' }), ctx()))).message).to.include('not an SAP plant');
    expect(sim.requests).to.deep.equal([]);
  });

  it('puts no credential in any error text, even when the gateway echoes the request headers', async () => {
    const password = 'S3cret-sap-password-91';
    const app = express();
    app.use((req, res) => {
      if (req.method === 'GET') return void res.set('x-csrf-token', 'tok-1').json({ d: {} });
      // A gateway error page that quotes what it received.
      res.status(500).json({ error: { code: 'ECHO', message: { value: `authorization=${req.get('authorization') ?? ''} password=${password}` } } });
    });
    const echo = await listen(app);
    const src = new SapSource({
      id: 'sap', baseUrl: echo.url, auth: { type: 'basic', username: 'WOGATE_COMM', password },
      webhook: { auth: { type: 'basic', credentials: [{ username: 'event-mesh', password: 'em-password-0042' }] } }, plants: ['1710'], review: { orderType: 'YA01' },
    });
    try {
      const e = await sourceFailure(src.api.createReview(review(), ctx()));
      expect(e.retryable).to.equal(true);
      expect(e.message).to.include('[redacted]');
      expect(e.message).not.to.include(password);
      expect(e.message).not.to.include(basicAuthorization('WOGATE_COMM', password).slice('Basic '.length));
    } finally {
      await src.close();
      await echo.close();
    }
  });
});

describe('SAP as breakGlass.reviewSource: config', () => {
  const load = (sap: Record<string, unknown>, breakGlass: Record<string, unknown> = {}) => loadWithReviewSource({
    id: 's4', kind: 'sap',
    sap: { baseUrl: 'https://s4.example.com', auth: { type: 'basic', username: 'WOGATE_COMM', password: 'env:SAP_PW' }, webhook: { auth: { type: 'bearer', tokens: ['env:SAP_EM'] } }, ...sap },
  }, breakGlass);

  it('accepts an SAP review source with an order type and a plant', () => {
    expect(load({ plants: ['1710'], review: { orderType: 'YA01' } }).breakGlass).to.include({ reviewSource: 's4' });
    expect(load({ review: { orderType: 'PM01', plant: '1010' } }).breakGlass).to.include({ reviewSource: 's4' });
  });

  it('refuses at load an SAP review source without review.orderType, naming the field', () => {
    expect(configRefusal(() => load({ plants: ['1710'] }))).to.match(/\/sources\/1\/sap\/review\/orderType: required when this source is \/breakGlass\/reviewSource/);
  });

  it('refuses at load an SAP review source with no plant, and a review site that is not an SAP plant', () => {
    const none = configRefusal(() => load({ review: { orderType: 'YA01' } }));
    expect(none).to.include('/breakGlass/reviewSite: SAP needs a plant').and.include('/sources/1/sap/review/plant').and.include('/sources/1/sap/plants');
    expect(configRefusal(() => load({ plants: ['1710'], review: { orderType: 'YA01' } }, { reviewSite: 'BEDFORD' }))).to.include('/breakGlass/reviewSite: "BEDFORD" is not an SAP plant');
  });

  it('refuses a review order type that is not an SAP key, by the schema', () => {
    expect(configRefusal(() => load({ plants: ['1710'], review: { orderType: 'PM-01' } }))).to.include('/sources/1/sap/review/orderType');
  });
});
