import type { AddressInfo, Server } from 'node:net';
import { expect } from 'chai';
import express from 'express';
import { WogateError } from '../../src/domain/errors.js';
import { compareRevisions } from '../../src/domain/workorder.js';
import { silentLogger } from '../../src/log.js';
import { MaintainXSource, type MaintainXSourceOptions } from '../../src/sources/maintainx.js';
import { SourceError, type CallContext, type WebhookRequest } from '../../src/sources/source.js';
import { MaintainXSim, maintainxSimMapping } from '../sims/maintainx.js';
import type { SimOrderSpec } from '../sims/simulator.js';

const API_KEY = 'mx-sim-key-5c1d';
const SECRET = 'whsub_3f9a1c-sim-secret';
const ctx = (): CallContext => ({ now: new Date(), log: silentLogger });

function spec(id: string, over: Partial<SimOrderSpec> = {}): SimOrderSpec {
  const start = new Date(Date.now() + 3_600_000);
  return {
    id, status: 'approved', vendorId: 'acme-controls', technicianIds: ['tech-jdoe', 'tech-asmith'], assetIds: ['55120', 'PLC-CL2-01'],
    start, end: new Date(start.getTime() + 4 * 3_600_000), type: 'corrective', site: 'north-wtp', approvers: ['ops-supervisor'],
    title: `Calibrate analyser ${id}`, ...over,
  };
}

async function failure(p: Promise<unknown>): Promise<SourceError> {
  try {
    await p;
  } catch (e) {
    expect(e).to.be.instanceOf(SourceError);
    return e as SourceError;
  }
  expect.fail('expected a SourceError');
}

describe('MaintainX adapter against its simulator', function () {
  this.timeout(30_000);
  let sim: MaintainXSim;
  let source: MaintainXSource;
  let hookUrl = '';
  let received: WebhookRequest | undefined;
  let receiver: Server;
  const extra: MaintainXSource[] = [];

  const make = (over: Partial<MaintainXSourceOptions> = {}): MaintainXSource => {
    const s = new MaintainXSource({
      id: 'maintainx', baseUrl: sim.url, apiKey: API_KEY, pageSize: 100, timeoutMs: 10_000,
      webhook: { secrets: ['retired-secret', SECRET], publicUrl: hookUrl }, ...maintainxSimMapping(), ...over,
    });
    extra.push(s);
    return s;
  };

  before(async () => {
    sim = await new MaintainXSim({ apiKey: API_KEY, webhookSecret: SECRET }).start();
    const app = express();
    app.post('/v1/hooks/maintainx', express.raw({ type: () => true }), (req, res) => {
      received = { headers: req.headers, rawBody: req.body as Buffer, url: req.originalUrl };
      res.status(202).end();
    });
    await new Promise<void>((resolve) => {
      receiver = app.listen(0, '127.0.0.1', () => resolve());
    });
    hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/v1/hooks/maintainx`;
    source = make();
  });

  after(async () => {
    for (const s of extra) await s.close();
    await sim.close();
    await new Promise<void>((resolve) => receiver.close(() => resolve()));
  });

  it('re-reads an order as the canonical work order, and a removed one as gone', async () => {
    sim.upsert(spec('1001', { type: 'emergency' }));
    const o = await source.api.fetchOrder('1001', ctx());
    expect(o).to.deep.include({
      source: 'maintainx', id: '1001', title: 'Calibrate analyser 1001', site: 'north-wtp', status: 'approved', sourceStatus: 'OPEN',
      vendorId: 'acme-controls', technicianIds: ['tech-jdoe', 'tech-asmith'], assetIds: ['55120', 'plc-cl2-01'], type: 'emergency',
      approvals: [{ by: 'ops-supervisor' }],
    });
    expect(o?.revision).to.equal(sim.raw('1001')?.updatedAt);
    sim.remove('1001');
    expect(await source.api.fetchOrder('1001', ctx())).to.equal(undefined);
  });

  it('polls 250 orders over three pages, then only what changed since the cursor', async () => {
    const since = new Date(Date.now() - 1000);
    const ids = Array.from({ length: 250 }, (_, i) => String(2000 + i));
    for (const id of ids) sim.upsert(spec(id, { status: 'in_progress' }));
    const before = sim.requests.length;
    const first = await source.api.poll(undefined, since, ctx());
    expect(first.orders.map((o) => o.id)).to.have.members(ids);
    expect(sim.requests.slice(before).filter((r) => r.path === '/v1/workorders')).to.have.length(3);
    const newest = sim.raw('2249')?.updatedAt;
    expect(first.cursor).to.equal(`mx1:${newest}`);

    for (const id of ['2003', '2100', '2249']) sim.change(id, { status: 'on_hold' });
    const second = await source.api.poll(first.cursor, since, ctx());
    const changed = second.orders.filter((o) => compareRevisions(o.revision, newest!) === 1);
    expect(changed.map((o) => [o.id, o.status])).to.have.deep.members([['2003', 'on_hold'], ['2100', 'on_hold'], ['2249', 'on_hold']]);
    // Anything else is a same-millisecond tie at the old cursor, let through on purpose.
    for (const o of second.orders.filter((x) => !changed.includes(x))) expect(o.revision).to.equal(newest);
    expect(compareRevisions(second.cursor.slice(4), newest!)).to.equal(1);
  });

  it('lists every open order, approved or not, and none that ended', async () => {
    sim.upsert(spec('3001', { status: 'awaiting_approval' }));
    sim.upsert(spec('3002', { status: 'completed' }));
    sim.upsert(spec('3003', { status: 'cancelled' }));
    sim.upsert(spec('3004', { status: 'approved' }));
    const open = new Map((await source.api.listOpen(ctx())).map((o) => [o.id, o.status]));
    expect(open.get('3001')).to.equal('awaiting_approval');
    expect(open.get('3004')).to.equal('approved');
    expect(open.has('3002') || open.has('3003')).to.equal(false);
    expect(open.get('2003')).to.equal('on_hold');
  });

  it('lists assets with the fields the register needs', async () => {
    sim.upsertAsset({ id: '55120', name: 'AHU-3 VFD', class: 'vfd', criticality: 'high', site: 'north-wtp', zone: 'L2-cell-3' });
    sim.upsertAsset({ id: '55121', name: 'Spare pump' });
    expect(await source.api.listAssets!(ctx())).to.deep.equal([
      { id: '55120', name: 'AHU-3 VFD', class: 'vfd', criticality: 'high', site: 'north-wtp', zone: 'L2-cell-3' },
      { id: '55121', name: 'Spare pump' },
    ]);
  });

  it('writes a note back as a comment without changing the revision', async () => {
    sim.upsert(spec('4001'));
    const before = sim.raw('4001')?.updatedAt;
    await source.api.writeBack('4001', 'wogate: network access granted to acme-controls until 14:00Z', ctx());
    expect(sim.notes('4001')).to.deep.equal(['wogate: network access granted to acme-controls until 14:00Z']);
    expect(sim.raw('4001')?.updatedAt).to.equal(before);
  });

  it('verifies what the simulator sends and refuses a tampered copy', async () => {
    sim.upsert(spec('5001', { status: 'in_progress' }));
    expect(await sim.notify('5001', hookUrl)).to.equal(202);
    const req = received!;
    const d = source.verify(req, new Date());
    expect(d.webhookId).to.match(/^mx:5001:\d+:[0-9a-f]{32}$/);
    const ev = source.parseEvent(JSON.parse(req.rawBody.toString('utf8')), d);
    expect(ev.type).to.equal('NEW_WORK_ORDER');
    expect(ev.order?.revision).to.equal((await source.api.fetchOrder('5001', ctx()))?.revision);

    const tampered = Buffer.from(req.rawBody.toString('utf8').replace('"IN_PROGRESS"', '"ON_HOLD"'));
    expect(() => source.verify({ ...req, rawBody: tampered }, new Date())).to.throw(WogateError, /matches a configured secret/);
    const elsewhere = make({ webhook: { secrets: [SECRET], publicUrl: hookUrl.replace('maintainx', 'other') } });
    expect(() => elsewhere.verify({ ...req, url: '/v1/hooks/other' }, new Date())).to.throw(WogateError, /matches the configured public URL/);

    sim.change('5001', { status: 'completed' });
    await sim.notify('5001', hookUrl);
    expect(source.parseEvent(JSON.parse(received!.rawBody.toString('utf8')), source.verify(received!, new Date()))).to.deep.include({ type: 'WORK_ORDER_CHANGE' });
  });

  it('reports a rejected key, rate limiting, an HTML page and a hung call the way the engine retries them', async () => {
    const wrong = make({ apiKey: 'not-the-key' });
    const denied = await failure(wrong.api.fetchOrder('2003', ctx()));
    expect([denied.retryable, denied.details?.status]).to.deep.equal([false, 401]);

    sim.failNext(1, 429);
    const limited = await failure(source.api.fetchOrder('2003', ctx()));
    expect([limited.retryable, limited.details?.retryAfterMs]).to.deep.equal([true, 2000]);

    sim.failNext(1, 'html');
    expect((await failure(source.api.listOpen(ctx()))).details?.code).to.equal('SOURCE_RESPONSE_INVALID');

    sim.failNext(1, 'hang');
    const hung = await failure(make({ timeoutMs: 300 }).api.fetchOrder('2003', ctx()));
    expect(hung.retryable).to.equal(true);

    sim.failNext(1, 503);
    expect((await failure(source.api.poll(undefined, new Date(Date.now() - 60_000), ctx()))).retryable).to.equal(true);
    expect((await source.api.fetchOrder('2003', ctx()))?.status).to.equal('on_hold');
  });
});
