import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import express from 'express';
import { CANONICAL_STATUSES, WogateError, type CanonicalStatus } from '../../src/domain/index.js';
import { silentLogger } from '../../src/log.js';
import { basicAuthorization } from '../../src/sources/sap-webhook.js';
import { SapSource } from '../../src/sources/sap.js';
import { SourceError, type CallContext, type WebhookRequest } from '../../src/sources/source.js';
import { SapSim, simSourceOptions } from '../sims/sap.js';
import type { SimOrderSpec } from '../sims/simulator.js';

const T0 = Date.parse('2025-03-04T12:00:00Z');

function spec(id: string, over: Partial<SimOrderSpec> = {}): SimOrderSpec {
  return {
    id,
    status: 'approved',
    vendorId: '17300001',
    technicianIds: ['JDOE', 'ASMITH'],
    assetIds: ['217100044', '217100045'],
    start: new Date(T0 + 3_600_000),
    end: new Date(T0 + 5 * 3_600_000),
    type: 'corrective',
    site: '1710',
    approvers: ['PLANNER7'],
    title: `Burner service ${id}`,
    ...over,
  };
}

async function failure(p: Promise<unknown>): Promise<SourceError> {
  try {
    await p;
  } catch (e) {
    expect(e).to.be.instanceOf(SourceError);
    return e as SourceError;
  }
  throw new Error('expected the call to fail');
}

describe('SAP source against the S/4HANA simulator (real HTTP)', () => {
  let now = T0;
  let sim: SapSim;
  let source: SapSource;
  const ctx = (): CallContext => ({ now: new Date(now), log: silentLogger });

  async function setup(simOver: ConstructorParameters<typeof SapSim>[0] = {}, srcOver: Parameters<typeof simSourceOptions>[1] = {}): Promise<void> {
    sim = await new SapSim({ clock: () => new Date(now), ...simOver }).start();
    source = new SapSource(simSourceOptions(sim, srcOver));
  }

  beforeEach(() => {
    now = T0;
  });
  afterEach(async () => {
    await source?.close();
    await sim?.close();
  });

  it('re-reads an order in every canonical status and maps it back to what was put in', async () => {
    await setup();
    for (const status of CANONICAL_STATUSES) sim.upsert(spec(`WO-${status.slice(0, 6)}`, { status }));
    for (const status of CANONICAL_STATUSES) {
      const o = await source.api.fetchOrder(`WO-${status.slice(0, 6)}`, ctx());
      expect(o, status).to.deep.include({
        source: 'sap', id: `WO-${status.slice(0, 6)}`, status, vendorId: '17300001', technicianIds: ['jdoe', 'asmith'],
        assetIds: ['217100044', '217100045'], type: 'corrective', site: '1710', title: `Burner service WO-${status.slice(0, 6)}`,
        revision: new Date(T0).toISOString(),
      });
      expect(o?.window).to.deep.equal({ start: new Date(T0 + 3_600_000), end: new Date(T0 + 5 * 3_600_000) });
      // A released order is the one approval SAP records; the simulator's releaser is the first approver.
      const released: CanonicalStatus[] = ['approved', 'in_progress', 'on_hold'];
      expect(o?.approvals).to.deep.equal(released.includes(status) ? [{ by: 'planner7' }] : []);
    }
    sim.remove('WO-approv');
    expect(await source.api.fetchOrder('WO-approv', ctx())).to.equal(undefined);
  });

  it('polls 250 orders in pages of 100, advances the cursor, then returns the 3 that changed', async () => {
    await setup();
    for (let i = 0; i < 250; i++) {
      now = T0 + i * 1000;
      sim.upsert(spec(String(4000000 + i)));
    }
    now = T0 + 300_000;
    const first = await source.api.poll(undefined, new Date(T0 - 60_000), ctx());
    expect(new Set(first.orders.map((o) => o.id)).size).to.equal(250);
    expect(first.cursor).to.equal(new Date(T0 + 249_000).toISOString());
    expect(sim.requests.filter((r) => r.path.endsWith('/MaintenanceOrder'))).to.have.length(3);

    now = T0 + 400_000;
    for (const id of ['4000007', '4000100', '4000201']) sim.change(id, { status: 'completed' });
    const second = await source.api.poll(first.cursor, new Date(0), ctx());
    const changed = second.orders.filter((o) => o.status === 'completed').map((o) => o.id).sort();
    expect(changed).to.deep.equal(['4000007', '4000100', '4000201']);
    // ">=" lets the order at the cursor's own second through again; wogate dedupes it by revision.
    expect(second.orders.filter((o) => o.status !== 'completed').map((o) => o.id)).to.deep.equal(['4000249']);
    expect(second.cursor).to.equal(new Date(T0 + 400_000).toISOString());
  });

  it('reads every order when hundreds share one second and the server pages by d.__next', async () => {
    await setup({ serverPageSize: 40 });
    for (let i = 0; i < 250; i++) sim.upsert(spec(String(999 + i)));
    const res = await source.api.poll(undefined, new Date(T0 - 1000), ctx());
    expect(new Set(res.orders.map((o) => o.id)).size).to.equal(250);
    expect(sim.requests.some((r) => r.query.includes('%24skiptoken') || r.query.includes('$skiptoken'))).to.equal(true);
  });

  it('lists the orders that could hold access, all pages, and leaves out settled ones and long-ended windows', async () => {
    await setup({}, { pageSize: 3 });
    const statuses: CanonicalStatus[] = ['draft', 'awaiting_approval', 'approved', 'in_progress', 'on_hold', 'completed', 'closed', 'cancelled'];
    statuses.forEach((status, i) => sim.upsert(spec(String(100 + i), { status })));
    sim.upsert(spec('200', { end: new Date(T0 - 90 * 86_400_000), start: new Date(T0 - 91 * 86_400_000) }));
    const open = await source.api.listOpen(ctx());
    expect(open.map((o) => [o.id, o.status])).to.deep.equal([['101', 'awaiting_approval'], ['102', 'approved'], ['103', 'in_progress'], ['104', 'on_hold']]);
  });

  it('lists the equipment register with class, criticality, site and zone', async () => {
    await setup({}, { pageSize: 2 });
    sim.putEquipment({ id: '217100044', name: 'Burner PLC', objectType: 'PLC', abc: 'A', plant: '1710', functionalLocation: '1710-SPA-UTIL-BLR1' });
    sim.putEquipment({ id: '217100045', name: 'Burner HMI', objectType: 'HMI', abc: 'B', plant: '1710', functionalLocation: '1710-SPA-UTIL-BLR1' });
    sim.putEquipment({ id: '217100046', deleted: true });
    sim.putEquipment({ id: '217100045', objectType: 'OLD', validTo: new Date('2020-01-01T00:00:00Z') });
    const assets = await source.api.listAssets(ctx());
    expect(assets).to.deep.equal([
      { id: '217100044', name: 'Burner PLC', class: 'PLC', criticality: 'critical', site: '1710', zone: '1710-SPA-UTIL-BLR1' },
      { id: '217100045', name: 'Burner HMI', class: 'HMI', criticality: 'high', site: '1710', zone: '1710-SPA-UTIL-BLR1' },
    ]);
  });

  it('writes notes to the long text (POST, then PATCH) and survives an expired CSRF session', async () => {
    await setup();
    sim.upsert(spec('4001873'));
    await source.api.writeBack('4001873', 'wogate: network access granted to JDOE on 217100044', ctx());
    await source.api.writeBack('4001873', 'wogate: access revoked', ctx());
    sim.expireCsrf();
    await source.api.writeBack('4001873', 'wogate: closed', ctx());
    expect(sim.notes('4001873')).to.deep.equal(['wogate: network access granted to JDOE on 217100044', 'wogate: access revoked', 'wogate: closed']);
    expect(sim.requests.filter((r) => r.path.endsWith('API_MAINTENANCEORDER/'))).to.have.length(2);
    const e = await failure(source.api.writeBack('9999999', 'x', ctx()));
    expect(e.retryable).to.equal(false);
  });

  it('signs in with OAuth client credentials and keeps the token while it lives', async () => {
    sim = await new SapSim({ clock: () => new Date(now), oauth: { clientId: 'sb-wogate!b1', clientSecret: 'oauth-secret-1' } }).start();
    source = new SapSource(simSourceOptions(sim, { auth: { type: 'oauth2', tokenUrl: sim.tokenUrl, clientId: 'sb-wogate!b1', clientSecret: 'oauth-secret-1' } }));
    sim.upsert(spec('1'));
    expect((await source.api.fetchOrder('1', ctx()))?.id).to.equal('1');
    expect((await source.api.fetchOrder('1', ctx()))?.id).to.equal('1');
    expect(sim.requests.filter((r) => r.path === '/oauth/token')).to.have.length(1);
  });

  it('is refused with wrong credentials or without the API key, as not retryable and without echoing the password', async () => {
    await setup({ apiKey: 'hub-key-1' }, { auth: { type: 'basic', username: 'WOGATE_COMM', password: 'wrong-password-77' }, apiKey: 'hub-key-1' });
    sim.upsert(spec('1'));
    const e = await failure(source.api.fetchOrder('1', ctx()));
    expect(e.retryable).to.equal(false);
    expect(e.details?.status).to.equal(401);
    expect(e.message).not.to.include('wrong-password-77');
    await source.close();
    source = new SapSource(simSourceOptions(sim));
    expect((await failure(source.api.fetchOrder('1', ctx()))).message).to.include('401');
    await source.close();
    source = new SapSource(simSourceOptions(sim, { apiKey: 'hub-key-1' }));
    expect((await source.api.fetchOrder('1', ctx()))?.id).to.equal('1');
  });

  it('classifies injected failures: 401 final, 503 retryable with Retry-After, an HTML page invalid, a hang a timeout', async () => {
    await setup();
    sim.upsert(spec('1'));
    sim.failNext(1, 401);
    expect((await failure(source.api.fetchOrder('1', ctx()))).retryable).to.equal(false);
    sim.failNext(1, 503);
    const busy = await failure(source.api.fetchOrder('1', ctx()));
    expect(busy.retryable).to.equal(true);
    expect(busy.details?.retryAfterMs).to.equal(2000);
    sim.failNext(1, 'html');
    expect((await failure(source.api.fetchOrder('1', ctx()))).details?.code).to.equal('SOURCE_RESPONSE_INVALID');
    // Only the call meant to hang has the short deadline; the answered ones have a generous one.
    const hasty = new SapSource(simSourceOptions(sim, { timeoutMs: 300 }));
    sim.failNext(1, 'hang');
    const hung = await failure(hasty.api.fetchOrder('1', ctx()));
    await hasty.close();
    expect(hung.message).to.include('no answer within 300 ms');
    expect((await source.api.fetchOrder('1', ctx()))?.id).to.equal('1');
  });

  it('fails a poll whose second page fails, and the retry from the same cursor reads everything', async () => {
    await setup();
    for (let i = 0; i < 150; i++) sim.upsert(spec(String(5000 + i)));
    const cursor = new Date(T0 - 1000).toISOString();
    sim.failNext(1, 500, 1);
    const e = await failure(source.api.poll(cursor, new Date(0), ctx()));
    expect(e.retryable).to.equal(true);
    const again = await source.api.poll(cursor, new Date(0), ctx());
    expect(new Set(again.orders.map((o) => o.id)).size).to.equal(150);
  });

  it('verifies what Event Mesh sends and refuses an altered credential or a late replay', async () => {
    await setup();
    sim.upsert(spec('4001873', { status: 'completed' }));
    const got: WebhookRequest[] = [];
    const app = express();
    app.post('/v1/hooks/sap', express.raw({ type: () => true }), (req, res) => {
      got.push({ headers: req.headers, rawBody: req.body as Buffer });
      res.status(202).end();
    });
    const server: Server = await new Promise((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/hooks/sap`;
      expect(await sim.notify('4001873', url)).to.equal(202);
      const req = got[0] as WebhookRequest;
      const delivery = source.verify(req, new Date(now + 2000));
      const sent = sim.sentEvents.at(-1) as { id: string };
      expect(delivery).to.deep.equal({ webhookId: sent.id, eventTime: new Date(now) });
      expect(source.parseEvent(JSON.parse(req.rawBody.toString('utf8')) as unknown, delivery)).to.deep.equal({ orderId: '4001873', type: 'SetToTechCompleted' });
      const altered = { ...req, headers: { ...req.headers, authorization: basicAuthorization(sim.webhookUser.username, `${sim.webhookUser.password}x`) } };
      expect(() => source.verify(altered, new Date(now + 2000))).to.throw(WogateError).with.property('code', 'HOOK_SIGNATURE_INVALID');
      expect(() => source.verify(req, new Date(now + 301_000))).to.throw(WogateError).with.property('code', 'HOOK_SIGNATURE_STALE');
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
