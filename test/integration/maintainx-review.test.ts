import { expect } from 'chai';
import express from 'express';
import { silentLogger } from '../../src/log.js';
import { MaintainXSource, type MaintainXSourceOptions } from '../../src/sources/maintainx.js';
import type { CallContext, ReviewOrderInput } from '../../src/sources/source.js';
import { configRefusal, loadWithReviewSource } from '../helpers/breakglass.js';
import { sourceFailure } from '../helpers/source-errors.js';
import { listen } from '../sims/faults.js';
import { MaintainXSim, maintainxSimMapping } from '../sims/maintainx.js';

const API_KEY = 'mx-review-key-7e2b41';
const SECRET = 'whsub_review-sim-secret';
const DUE = new Date('2025-03-06T12:00:00.250Z');
const DETAILS = 'Post-event review of break-glass access bg-1.\nJustification: Chlorinator 2 PLC faulted at 07:40.';
const ctx = (): CallContext => ({ now: new Date(), log: silentLogger });

function review(over: Partial<ReviewOrderInput> = {}): ReviewOrderInput {
  return { title: 'Break-glass review bg-1', details: DETAILS, dueAt: DUE, ...over };
}


describe('MaintainX review orders (createReview) against the simulator', function () {
  this.timeout(30_000);
  let sim: MaintainXSim;
  const made: MaintainXSource[] = [];

  const make = (over: Partial<MaintainXSourceOptions> = {}): MaintainXSource => {
    const s = new MaintainXSource({
      id: 'maintainx', baseUrl: sim.url, apiKey: API_KEY, timeoutMs: 10_000, webhook: { secrets: [SECRET] }, ...maintainxSimMapping(),
      review: { locationId: '812', assetId: '55120', categories: ['Break-glass review'] }, ...over,
    });
    made.push(s);
    return s;
  };

  beforeEach(async () => {
    sim = await new MaintainXSim({ apiKey: API_KEY, webhookSecret: SECRET }).start();
  });
  afterEach(async () => {
    for (const s of made.splice(0)) await s.close();
    await sim.close();
  });

  it('opens a HIGH priority work order with the title, the details, the due date and the configured location, asset and categories', async () => {
    const { orderId } = await make().api.createReview(review(), ctx());
    expect(sim.created()).to.deep.equal([orderId]);
    expect(sim.raw(orderId)).to.deep.include({
      title: 'Break-glass review bg-1', description: DETAILS, priority: 'HIGH', status: 'OPEN', dueDate: DUE.toISOString(),
      locationId: 812, assetId: 55120, categories: ['Break-glass review'],
    });
    const post = sim.requests.filter((r) => r.method === 'POST');
    expect(post.map((r) => [r.path, r.query])).to.deep.equal([['/v1/workorders', 'skipWebhook=true']]);
  });

  it('returns the id fetchOrder reads, so the review can be followed until MaintainX marks it done', async () => {
    const source = make();
    const { orderId } = await source.api.createReview(review(), ctx());
    expect(orderId).to.match(/^[1-9][0-9]*$/);
    expect(await source.api.fetchOrder(orderId, ctx())).to.deep.include({ id: orderId, status: 'awaiting_approval', vendorId: '', title: 'Break-glass review bg-1' });
    sim.change(orderId, { status: 'completed' });
    expect((await source.api.fetchOrder(orderId, ctx()))?.status).to.equal('completed');
  });

  it('files the order at breakGlass.reviewSite\'s location over the configured one, and sends no location or asset when none is configured', async () => {
    const atSite = await make().api.createReview(review({ site: '907' }), ctx());
    expect(sim.raw(atSite.orderId)?.locationId).to.equal(907);
    const bare = await make({ review: {} }).api.createReview(review(), ctx());
    expect(sim.raw(bare.orderId)).to.deep.include({ locationId: null, assetId: null, categories: [] });
  });

  it('keeps the title on one line', async () => {
    const { orderId } = await make().api.createReview(review({ title: 'Break-glass\r\nreview\u0000 bg-1' }), ctx());
    expect(sim.raw(orderId)?.title).to.equal('Break-glass  review  bg-1');
  });

  it('reports rate limits, server errors and timeouts as retryable, and no order is opened by them', async () => {
    // Only the call meant to hang has the short deadline; the answered ones have a generous one.
    const source = make();
    const hasty = make({ timeoutMs: 300 });
    for (const how of [429, 500, 503, 'hang'] as const) {
      sim.failNext(1, how);
      expect((await sourceFailure((how === 'hang' ? hasty : source).api.createReview(review(), ctx()))).retryable, String(how)).to.equal(true);
    }
    expect(sim.created()).to.deep.equal([]);
  });

  it('reports a refused request (400, 403) and a rejected key as not retryable', async () => {
    const source = make();
    for (const status of [400, 403]) {
      sim.failNext(1, status);
      const e = await sourceFailure(source.api.createReview(review(), ctx()));
      expect([e.retryable, e.details?.status]).to.deep.equal([false, status]);
    }
    const wrongKey = await sourceFailure(make({ apiKey: 'not-the-key' }).api.createReview(review(), ctx()));
    expect([wrongKey.retryable, wrongKey.details?.status]).to.deep.equal([false, 401]);
    expect(sim.created()).to.deep.equal([]);
  });

  it('does not retry a create MaintainX answered 201 without a usable id, which would open a second order', async () => {
    sim.answerCreatesWithoutId();
    const e = await sourceFailure(make().api.createReview(review(), ctx()));
    expect(e.retryable).to.equal(false);
    expect(e.details).to.include({ code: 'SOURCE_RESPONSE_INVALID', method: 'POST', status: 201 });
    expect(sim.created()).to.have.length(1);
  });

  it('refuses a review location that is not a MaintainX id before calling MaintainX', async () => {
    const e = await sourceFailure(make().api.createReview(review({ site: 'BEDFORD' }), ctx()));
    expect(e.retryable).to.equal(false);
    expect(e.message).to.include('not a MaintainX location id');
    expect(sim.requests).to.deep.equal([]);
  });

  it('puts no API key in any error text, even when an answer echoes the request headers', async () => {
    const app = express();
    app.use((req, res) => void res.status(502).type('text/plain').send(`upstream refused ${req.get('authorization') ?? ''}`));
    const echo = await listen(app);
    try {
      const e = await sourceFailure(make({ baseUrl: `${echo.url}/v1` }).api.createReview(review(), ctx()));
      expect(e.retryable).to.equal(true);
      expect(e.message).to.include('[redacted]').and.not.include(API_KEY);
    } finally {
      await echo.close();
    }
  });
});

describe('MaintainX as breakGlass.reviewSource: config', () => {
  const load = (maintainx: Record<string, unknown>, breakGlass: Record<string, unknown> = {}) =>
    loadWithReviewSource({ id: 'mx', kind: 'maintainx', maintainx: { apiKey: 'env:MX_KEY', webhook: { secrets: ['env:MX_HOOK'] }, ...maintainx } }, breakGlass);

  it('accepts a MaintainX review source with or without a review block, and a numeric review site', () => {
    expect(load({}).breakGlass).to.include({ reviewSource: 'mx' });
    expect(load({ review: { locationId: '812', assetId: '55120', categories: ['Break-glass review'] } }, { reviewSite: '907' }).breakGlass).to.include({ reviewSite: '907' });
  });

  it('refuses a review site that is not a MaintainX location id, and a location id that is not a number', () => {
    expect(configRefusal(() => load({}, { reviewSite: 'BEDFORD' }))).to.include('/breakGlass/reviewSite: "BEDFORD" is not a MaintainX location id');
    expect(configRefusal(() => load({ review: { locationId: 'north' } }))).to.include('/sources/1/maintainx/review/locationId');
  });
});
