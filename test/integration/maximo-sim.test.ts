import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import express from 'express';
import { WogateError } from '../../src/domain/index.js';
import { silentLogger } from '../../src/log.js';
import { MaximoSource, type MaximoSourceOptions } from '../../src/sources/maximo.js';
import { SourceError, type CallContext, type WebhookRequest } from '../../src/sources/source.js';
import { MAXIMO_SIM_DEFAULTS, MaximoSim, type MaximoSimOptions } from '../sims/maximo.js';
import type { SimOrderSpec } from '../sims/simulator.js';
import { sourceContract } from './source-contract.js';

const T0 = new Date('2026-11-22T08:00:00Z');

function spec(over: Partial<SimOrderSpec> = {}): SimOrderSpec {
  return {
    id: 'WO-1001', status: 'approved', vendorId: 'acme', technicianIds: ['jdoe', 'asmith'], assetIds: ['PLC-1', 'HMI-1'],
    start: new Date('2026-11-22T09:00:00Z'), end: new Date('2026-11-22T17:00:00Z'), type: 'corrective', site: 'NORTH', approvers: ['SUPER1', 'MGR2'],
    title: 'Replace PLC-1 I/O card', ...over,
  };
}

function adapter(sim: MaximoSim, over: Partial<MaximoSourceOptions> = {}): MaximoSource {
  const auth = sim.hookAuth;
  return new MaximoSource({
    id: 'mx', baseUrl: sim.url, apiKey: sim.apiKey, pageSize: 100, pollOverlapMs: 0, timeoutMs: 10_000,
    webhook: auth.kind === 'basic' ? { basic: [{ username: auth.username, password: auth.password }] } : { header: { name: auth.name, secrets: [auth.secret] } },
    ...over,
  });
}

/** A stand-in for wogate's hook route that keeps what arrived, byte for byte. */
async function receiver(): Promise<{ url: string; got: WebhookRequest[]; close: () => Promise<void> }> {
  const got: WebhookRequest[] = [];
  const app = express();
  app.post('/hook', express.raw({ type: () => true }), (req, res) => {
    got.push({ headers: { ...req.headers }, rawBody: req.body as Buffer });
    res.status(202).end();
  });
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    got,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

describe('Maximo adapter against the Maximo simulator', function () {
  this.timeout(20_000);
  let sim: MaximoSim;
  let mx: MaximoSource;
  let clock: { now: Date };
  const ctx = (): CallContext => ({ now: clock.now, log: silentLogger });

  async function start(o: MaximoSimOptions = {}, over: Partial<MaximoSourceOptions> = {}): Promise<void> {
    clock = { now: T0 };
    sim = await MaximoSim.start({ clock: () => clock.now, ...o });
    mx = adapter(sim, over);
  }

  afterEach(async () => {
    mx?.close();
    await sim?.close();
  });

  it('re-reads an order by SITEID/WONUM into the canonical work order', async () => {
    await start();
    sim.upsert(spec());
    const o = await mx.api.fetchOrder('NORTH/WO-1001', ctx());
    expect(o).to.deep.include({
      source: 'mx', id: 'NORTH/WO-1001', title: 'Replace PLC-1 I/O card', site: 'NORTH', status: 'approved', sourceStatus: 'APPR',
      vendorId: 'acme', type: 'corrective',
    });
    expect(o?.technicianIds).to.deep.equal(['jdoe', 'asmith']);
    expect(o?.assetIds).to.deep.equal(['plc-1', 'hmi-1']);
    expect(o?.window).to.deep.equal({ start: spec().start, end: spec().end });
    expect(o?.approvals.map((a) => a.by)).to.deep.equal(['super1', 'mgr2']);
    expect(o?.revision).to.match(/^\d+$/);
    expect(await mx.api.fetchOrder('NORTH/WO-404', ctx())).to.equal(undefined);
    sim.remove('WO-1001');
    expect(await mx.api.fetchOrder('NORTH/WO-1001', ctx())).to.equal(undefined);
    expect(sim.requests.every((r) => r.path === '/maximo/api/os/mxapiwodetail')).to.equal(true);
  });

  it('maps a status through its internal value when the site shows a synonym, on a 7.6 /maximo/oslc base', async () => {
    await start({ synonyms: { APPR: 'APPRVD', INPRG: 'WORKING' }, basePath: '/maximo/oslc' });
    sim.upsert(spec({ status: 'in_progress' }));
    const o = await mx.api.fetchOrder('NORTH/WO-1001', ctx());
    expect(o).to.deep.include({ status: 'in_progress', sourceStatus: 'INPRG' });
    expect(o?.approvals.map((a) => a.by)).to.deep.equal(['super1', 'mgr2']);
  });

  it('polls 250 orders over three pages, and then only what changed since the cursor', async () => {
    await start();
    for (let i = 0; i < 250; i++) {
      clock.now = new Date(T0.getTime() + i * 1000);
      sim.upsert(spec({ id: `WO-${3000 + i}` }));
    }
    const first = await mx.api.poll(undefined, new Date(T0.getTime() - 86_400_000), ctx());
    expect(first.orders).to.have.length(250);
    expect(new Set(first.orders.map((o) => o.id)).size).to.equal(250);
    expect(sim.requests.map((r) => new URLSearchParams(r.query).get('pageno'))).to.deep.equal(['1', '2', '3']);
    expect(first.cursor).to.equal(`changedate:${new Date(T0.getTime() + 249_000).toISOString()}`);

    clock.now = new Date(T0.getTime() + 600_000);
    const revisions = new Map(first.orders.map((o) => [o.id, o.revision]));
    for (const id of ['WO-3005', 'WO-3100', 'WO-3200']) sim.change(id, { status: 'in_progress' });
    const second = await mx.api.poll(first.cursor, T0, ctx());
    const changed = second.orders.filter((o) => o.status === 'in_progress').map((o) => o.id).sort();
    expect(changed).to.deep.equal(['NORTH/WO-3005', 'NORTH/WO-3100', 'NORTH/WO-3200']);
    for (const o of second.orders.filter((x) => x.status === 'in_progress')) expect(Number(o.revision)).to.be.greaterThan(Number(revisions.get(o.id)));
    // >= re-reads the order saved in the cursor's own second; nothing older comes back.
    expect(second.orders.map((o) => o.id).filter((id) => !changed.includes(id))).to.deep.equal(['NORTH/WO-3249']);
    expect(second.cursor).to.equal(`changedate:${clock.now.toISOString()}`);

    const third = await mx.api.poll(second.cursor, T0, ctx());
    expect(third.orders.map((o) => o.id).sort()).to.deep.equal(changed);
    expect(third.cursor).to.equal(second.cursor);
  });

  it('fails a poll whose second page fails, leaving the caller\'s cursor where it was', async () => {
    await start();
    for (let i = 0; i < 150; i++) sim.upsert(spec({ id: `WO-${5000 + i}` }));
    sim.failAfter(1, 503);
    const e = await mx.api.poll(undefined, new Date(T0.getTime() - 3_600_000), ctx()).then(() => undefined, (x: unknown) => x);
    expect(e).to.be.instanceOf(SourceError);
    expect((e as SourceError).retryable).to.equal(true);
    expect((e as SourceError).details).to.deep.include({ status: 503, retryAfterMs: 7000 });
    expect(sim.requests.map((r) => new URLSearchParams(r.query).get('pageno'))).to.deep.equal(['1', '2']);
  });

  it('lists every order that can still hold access, across pages', async () => {
    await start({}, { pageSize: 2 });
    const statuses = ['awaiting_approval', 'approved', 'in_progress', 'on_hold', 'completed', 'closed', 'cancelled'] as const;
    statuses.forEach((status, i) => sim.upsert(spec({ id: `WO-${7000 + i}`, status })));
    const open = await mx.api.listOpen(ctx());
    expect(open.map((o) => `${o.id}:${o.status}`).sort()).to.deep.equal([
      'NORTH/WO-7000:awaiting_approval', 'NORTH/WO-7001:approved', 'NORTH/WO-7002:in_progress', 'NORTH/WO-7003:on_hold',
    ]);
    // CLOSE and CAN are in history and never leave Maximo; COMP is read and dropped here.
    expect(sim.requests).to.have.length(3);
  });

  it('lists assets with class, criticality, site and location', async () => {
    await start();
    sim.putAsset({ assetnum: 'PLC-1', siteid: 'NORTH', description: 'Line 1 PLC', location: 'NORTH-L1', assettype: 'PLC', priority: 9 });
    sim.putAsset({ assetnum: 'PMP-7', siteid: 'SOUTH', description: 'Feed pump', location: 'SOUTH-P', assettype: 'PUMP', priority: 3 });
    expect(await mx.api.listAssets(ctx())).to.deep.equal([
      { id: 'plc-1', name: 'Line 1 PLC', class: 'PLC', criticality: 'critical', site: 'NORTH', zone: 'NORTH-L1' },
      { id: 'pmp-7', name: 'Feed pump', class: 'PUMP', criticality: 'medium', site: 'SOUTH', zone: 'SOUTH-P' },
    ]);
  });

  it('writes notes back as worklog entries and keeps the older ones', async () => {
    await start();
    sim.upsert(spec());
    await mx.api.writeBack('NORTH/WO-1001', 'wogate access trail:\naccess GRANTED: jdoe -> PLC-1', ctx());
    await mx.api.writeBack('NORTH/WO-1001', 'wogate access trail:\naccess ENDED: jdoe -> PLC-1', ctx());
    expect(sim.notes('WO-1001')).to.deep.equal(['wogate access trail:\naccess GRANTED: jdoe -> PLC-1', 'wogate access trail:\naccess ENDED: jdoe -> PLC-1']);
  });

  it('reports Maximo\'s failures the way the engine retries them', async () => {
    await start();
    sim.upsert(spec());
    const fails = async () => mx.api.fetchOrder('NORTH/WO-1001', ctx()).then(() => expect.fail('expected a failure'), (e: unknown) => e as SourceError);
    sim.failNext(1, 401);
    expect((await fails()).retryable).to.equal(false);
    sim.failNext(1, 429);
    expect((await fails()).details).to.deep.include({ retryAfterMs: 7000 });
    sim.failNext(1, 'html');
    expect((await fails()).details).to.deep.include({ code: 'SOURCE_RESPONSE_INVALID' });
    // Only the call meant to hang has the short deadline; the answered ones above have a generous one.
    const hasty = adapter(sim, { timeoutMs: 300 });
    sim.failNext(1, 'hang');
    const hung = await hasty.api.fetchOrder('NORTH/WO-1001', ctx()).then(() => expect.fail('expected a failure'), (e: unknown) => e as SourceError);
    hasty.close();
    expect(hung.message).to.include('no answer within 300 ms');
    const wrongKey = new MaximoSource({ ...adapterOptions(sim), apiKey: 'not-the-key-0000' });
    const e = await wrongKey.api.fetchOrder('NORTH/WO-1001', ctx()).then(() => undefined, (x: unknown) => x as SourceError);
    wrongKey.close();
    expect(e?.message).to.include('401').and.include('BMXAA7901E');
    expect(await mx.api.fetchOrder('NORTH/WO-1001', ctx())).to.have.property('status', 'approved');
  });

  for (const hookAuth of [MAXIMO_SIM_DEFAULTS.hookAuth, { kind: 'header' as const, name: 'X-Wogate-Token', secret: 'sim-header-secret-3b0e5f1a9c7d' }]) {
    it(`verifies what the publish channel sends (${hookAuth.kind}) and refuses a tampered copy`, async () => {
      await start({ hookAuth });
      sim.upsert(spec());
      const rx = await receiver();
      try {
        expect(await sim.notify('WO-1001', rx.url)).to.equal(202);
        const got = rx.got[0] as WebhookRequest;
        const d = mx.verify(got, clock.now);
        expect(d.webhookId).to.match(/^\d+\.\d+$/);
        expect(d.eventTime).to.deep.equal(clock.now);
        const ev = mx.parseEvent(JSON.parse(got.rawBody.toString('utf8')), d);
        expect(ev.orderId).to.equal('NORTH/WO-1001');
        expect(ev.order).to.deep.equal(await mx.api.fetchOrder('NORTH/WO-1001', ctx()));

        const name = hookAuth.kind === 'basic' ? 'authorization' : 'x-wogate-token';
        const value = String(got.headers[name]);
        const tampered: WebhookRequest = { ...got, headers: { ...got.headers, [name]: `${value.slice(0, -3)}${value.slice(-3) === 'AAA' ? 'BBB' : 'AAA'}` } };
        expect(() => mx.verify(tampered, clock.now)).to.throw(WogateError).with.property('code', 'HOOK_SIGNATURE_INVALID');
        const stripped: WebhookRequest = { ...got, headers: { 'content-type': 'application/json' } };
        expect(() => mx.verify(stripped, clock.now)).to.throw(WogateError).with.property('code', 'HOOK_HEADER_MISSING');
        clock.now = new Date(clock.now.getTime() + 2 * 86_400_000);
        expect(() => mx.verify(got, clock.now)).to.throw(WogateError).with.property('code', 'HOOK_SIGNATURE_STALE');
      } finally {
        await rx.close();
      }
    });
  }
});

function adapterOptions(sim: MaximoSim): MaximoSourceOptions {
  const a = MAXIMO_SIM_DEFAULTS.hookAuth as { username: string; password: string };
  return { id: 'mx', baseUrl: sim.url, apiKey: sim.apiKey, timeoutMs: 10_000, webhook: { basic: [{ username: a.username, password: a.password }] } };
}

// The engine-level contract every adapter meets. Its orders are named by WONUM alone, as on a
// Maximo whose work order numbers are unique across sites (idFormat: wonum).
const contractSources: MaximoSource[] = [];
sourceContract('maximo', () => MaximoSim.start(), (sim) => {
  const s = adapter(sim as MaximoSim, { idFormat: 'wonum', pollOverlapMs: 120_000 });
  contractSources.push(s);
  return s;
});
after(() => {
  for (const s of contractSources.splice(0)) s.close();
});
