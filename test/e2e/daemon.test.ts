import { expect } from 'chai';
import { createToken } from '../../src/api/tokens.js';
import { demoOrder } from '../../src/demo/demo.js';
import type { SqliteStore } from '../../src/store/sqlite.js';
import { startDaemon, until, type TestDaemon } from '../helpers/daemon.js';

const order = (id: string, status: string, rev = new Date()) => demoOrder(id, status, rev, new Date());

function counts(t: TestDaemon) {
  const db = (t.daemon.runtime.store as SqliteStore).raw();
  return {
    events: (db.prepare('SELECT count(*) n FROM hook_events').get() as { n: number }).n,
    orders: (db.prepare('SELECT count(*) n FROM work_orders').get() as { n: number }).n,
    grants: (db.prepare('SELECT count(*) n FROM grants').get() as { n: number }).n,
  };
}

async function lastAudit(t: TestDaemon) {
  const head = await t.daemon.runtime.store.auditHead();
  return (await t.daemon.runtime.store.readAudit((head?.seq ?? 1) - 1, 1))[0];
}

describe('daemon end to end on loopback (SQLite file, http target over real HTTP)', function () {
  this.timeout(30_000);
  let t: TestDaemon;
  beforeEach(async () => {
    t = await startDaemon();
  });
  afterEach(async () => {
    await t.stop();
  });

  it('provisions an approved order on the target and revokes it when the order is closed', async () => {
    const res = await t.hook(order('WO-100', 'APPR'));
    expect(res.status).to.equal(202);
    await until(async () => (await t.daemon.runtime.store.listGrants({ states: ['active'] })).length === 2, 'two grants active');
    expect(t.gateway.open.size).to.equal(2);
    const grants = await t.daemon.runtime.store.listGrants({ states: ['active'] });
    expect(grants.map((g) => g.assetId).sort()).to.deep.equal(['hmi-flt-01', 'plc-cl2-01'].sort());
    const put = t.gateway.requests.find((r) => r.method === 'PUT');
    expect(put?.body).to.deep.include({ technician: 'tech-jdoe', from: '10.8.0.21' });

    expect((await t.hook(order('WO-100', 'CLOSE', new Date(Date.now() + 1000)))).status).to.equal(202);
    await until(() => t.gateway.open.size === 0, 'gateway emptied');
    await until(async () => (await t.daemon.runtime.store.listGrants({ states: ['revoked'] })).length === 2, 'grants revoked in the store');
    expect((await t.daemon.runtime.audit.verify()).ok).to.equal(true);
  });

  describe('refuses bad webhooks with a JSON error, stores nothing, provisions nothing, audits the refusal', () => {
    const cases: [string, (t: TestDaemon) => Promise<Response>, number, string][] = [
      ['a wrong signature', (t) => t.hook(order('WO-1', 'APPR'), { secret: `whsec_${Buffer.alloc(32, 7).toString('base64')}` }), 401, 'HOOK_SIGNATURE_INVALID'],
      ['a stale timestamp', (t) => t.hook(order('WO-1', 'APPR'), { timestamp: Math.floor(Date.now() / 1000) - 301 }), 401, 'HOOK_SIGNATURE_STALE'],
      ['a future timestamp', (t) => t.hook(order('WO-1', 'APPR'), { timestamp: Math.floor(Date.now() / 1000) + 301 }), 401, 'HOOK_SIGNATURE_FUTURE'],
      ['a missing webhook-signature header', (t) => t.hook(order('WO-1', 'APPR'), { headers: { 'webhook-signature': '' } }), 400, 'HOOK_HEADER_MISSING'],
      ['a body that is not JSON', (t) => t.hook(null, { raw: '{"data": ' }), 400, 'HOOK_BODY_INVALID'],
      ['an unknown status code', (t) => t.hook(order('WO-1', 'WEIRD')), 400, 'HOOK_MAPPING_FAILED'],
      ['a body over the size limit', (t) => t.hook(null, { raw: JSON.stringify({ pad: 'x'.repeat(70_000) }) }), 413, 'HOOK_BODY_TOO_LARGE'],
      ['an unknown source', (t) => t.hook(order('WO-1', 'APPR'), { source: 'nope' }), 404, 'HOOK_SOURCE_UNKNOWN'],
    ];
    for (const [what, send, status, code] of cases) {
      it(`${what} → ${status} ${code}`, async () => {
        const before = counts(t);
        const res = await send(t);
        expect(res.status).to.equal(status);
        expect(res.headers.get('content-type')).to.match(/application\/json/);
        const body = (await res.json()) as { error: { code: string; message: string } };
        expect(body.error.code).to.equal(code);
        expect(JSON.stringify(body)).to.not.match(/at .*\.(ts|js):\d+/);
        expect(counts(t)).to.deep.equal(before);
        expect(t.gateway.requests).to.have.length(0);
        // Unsigned senders are audited once per address, kind and window: written now.
        await t.daemon.refusals.flush();
        const rec = await lastAudit(t);
        expect(rec?.action).to.equal('hook.refused');
        expect(rec?.details).to.include({ status, code });
      });
    }

    it('a replayed webhook-id → 409 HOOK_REPLAY, the order stored once', async () => {
      const id = 'msg_replay_1';
      expect((await t.hook(order('WO-2', 'APPR'), { id })).status).to.equal(202);
      const before = counts(t);
      const res = await t.hook(order('WO-2', 'APPR'), { id });
      expect(res.status).to.equal(409);
      expect(((await res.json()) as { error: { code: string } }).error.code).to.equal('HOOK_REPLAY');
      expect(counts(t).events).to.equal(before.events);
    });
  });

  describe('admin API', () => {
    async function token(scopes: Parameters<typeof createToken>[2]): Promise<string> {
      return (await createToken(t.daemon.runtime.store, 'test', scopes, new Date())).token;
    }
    const get = (path: string, tok?: string) => fetch(`${t.daemon.url}${path}`, { headers: tok ? { authorization: `Bearer ${tok}` } : {} });

    it('refuses every /v1 route without a token (401) and with a wrong one (401)', async () => {
      for (const p of ['/v1/grants', '/v1/explain', '/v1/audit/verify', '/v1/grants/x']) {
        expect((await get(p)).status, p).to.equal(401);
        expect((await get(p, 'wgt_000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA')).status, p).to.equal(401);
      }
      const revoke = await fetch(`${t.daemon.url}/v1/grants/x/revoke`, { method: 'POST' });
      expect(revoke.status).to.equal(401);
      expect(((await revoke.json()) as { error: { code: string } }).error.code).to.equal('AUTH_MISSING');
    });

    it('refuses a token without the route\'s scope (403) and audits it', async () => {
      const tok = await token(['explain']);
      const res = await get('/v1/grants', tok);
      expect(res.status).to.equal(403);
      expect((await lastAudit(t))?.action).to.equal('auth.refused');
    });

    it('refuses expired and revoked tokens', async () => {
      const { token: expired } = await createToken(t.daemon.runtime.store, 'old', ['admin'], new Date(Date.now() - 2000), { expiresAt: new Date(Date.now() - 1000) });
      expect((await get('/v1/grants', expired)).status).to.equal(401);
      const { token: tok, record } = await createToken(t.daemon.runtime.store, 'gone', ['admin'], new Date());
      await t.daemon.runtime.store.revokeToken(record.id, new Date());
      expect((await get('/v1/grants', tok)).status).to.equal(401);
    });

    it('lists grants, explains an order, and revokes a grant that then stays off', async () => {
      await t.hook(order('WO-7', 'APPR'));
      await until(async () => (await t.daemon.runtime.store.listGrants({ states: ['active'] })).length === 2, 'two grants active');
      const tok = await token(['grants:read', 'grants:revoke', 'explain']);
      const list = (await (await get('/v1/grants?state=active', tok)).json()) as { grants: { id: string; assetId: string }[] };
      expect(list.grants).to.have.length(2);
      const explain = (await (await get('/v1/explain?order=demo-cmms/WO-7', tok)).json()) as { grants: unknown[]; denials: unknown[] };
      expect(explain.grants).to.have.length(2);

      const id = list.grants[0]?.id as string;
      const noReason = await fetch(`${t.daemon.url}/v1/grants/${id}/revoke`, { method: 'POST', headers: { authorization: `Bearer ${tok}`, 'content-type': 'application/json' }, body: '{}' });
      expect(noReason.status).to.equal(400);
      const res = await fetch(`${t.daemon.url}/v1/grants/${id}/revoke`, { method: 'POST', headers: { authorization: `Bearer ${tok}`, 'content-type': 'application/json' }, body: JSON.stringify({ reason: 'laptop reported stolen' }) });
      expect(res.status).to.equal(200);
      expect(((await res.json()) as { grant: { state: string } }).grant.state).to.equal('revoked');
      expect(t.gateway.open.size).to.equal(1);
      await t.daemon.reconciler.reconcile();
      expect(t.gateway.open.size, 'policy does not bring it back').to.equal(1);
      const rec = (await t.daemon.runtime.store.readAudit(0, 1000)).find((r) => r.action === 'grant.revoke_requested');
      expect(rec?.actor).to.equal('token:test');
    });

    it('answers unknown routes and bad queries with JSON errors', async () => {
      const tok = await token(['admin']);
      const bad = await get('/v1/grants?state=bogus', tok);
      expect(bad.status).to.equal(400);
      expect(((await bad.json()) as { error: { message: string } }).error.message).to.match(/state/);
      expect((await get('/nope')).status).to.equal(404);
    });
  });

  it('serves health, readiness and metrics without a token', async () => {
    expect((await fetch(`${t.daemon.url}/healthz`)).status).to.equal(200);
    expect((await fetch(`${t.daemon.url}/readyz`)).status).to.equal(200);
    const m = await (await fetch(`${t.daemon.url}/metrics`)).text();
    expect(m).to.match(/wogate_hooks_total/);
    const api = (await (await fetch(`${t.daemon.url}/openapi.json`)).json()) as { paths: Record<string, unknown> };
    expect(Object.keys(api.paths)).to.include.members(['/v1/hooks/{sourceId}', '/v1/grants', '/v1/grants/{id}/revoke', '/v1/explain']);
  });
});
