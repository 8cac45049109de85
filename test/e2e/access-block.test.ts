import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { createToken } from '../../src/api/tokens.js';
import { demoOrder } from '../../src/demo/demo.js';
import type { Grant } from '../../src/domain/index.js';
import { REPO, startDaemon, until, type TestDaemon } from '../helpers/daemon.js';

const order = (id: string, status: string, rev = new Date()) => demoOrder(id, status, rev, new Date());

interface Holder { grant: string; order: string; state: string }

// Two open orders give tech-jdoe the same two accesses on the http target: the gateway holds one
// entry per access, shared by both orders' grants (docs/decisions/0005). "Revoke now" on one grant
// must say the access stays; blocking the access must take it away for every order.
describe('e2e: revoking a shared access on a real daemon', function () {
  this.timeout(30_000);
  let t: TestDaemon;
  let token: string;
  let admin: string;
  beforeEach(async () => {
    t = await startDaemon();
    token = (await createToken(t.daemon.runtime.store, 'ops', ['grants:read', 'grants:revoke', 'explain'], new Date())).token;
    admin = (await createToken(t.daemon.runtime.store, 'lead', ['admin'], new Date())).token;
  });
  afterEach(async () => {
    await t.stop();
  });

  const call = async (method: string, path: string, body?: unknown, bearer = token) => {
    const res = await fetch(`${t.daemon.url}${path}`, { method, headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' }, ...(body ? { body: JSON.stringify(body) } : {}) });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const active = () => t.daemon.runtime.store.listGrants({ states: ['active'] });

  async function twoOrders(): Promise<{ mine: Grant; other: Grant }> {
    expect((await t.hook(order('WO-1', 'APPR'))).status).to.equal(202);
    expect((await t.hook(order('WO-2', 'APPR'))).status).to.equal(202);
    await until(async () => (await active()).length === 4, 'both orders give both accesses');
    expect(t.gateway.open.size, 'one gateway entry per access, shared by the orders').to.equal(2);
    const grants = await active();
    const mine = grants.find((g) => g.orderKey === 'demo-cmms/WO-1') as Grant;
    const other = grants.find((g) => g.orderKey === 'demo-cmms/WO-2' && g.assetId === mine.assetId) as Grant;
    return { mine, other };
  }

  it('answers a revoke whose entry stays alive with the grants and orders that keep it', async () => {
    const { mine, other } = await twoOrders();
    const res = await call('POST', `/v1/grants/${mine.id}/revoke`, { reason: 'technician left the site' });
    expect(res.status).to.equal(200);
    expect((res.body.grant as Grant).state).to.equal('revoked');
    expect(res.body.stillHeldBy as Holder[], 'the answer names the grant that keeps the access').to.deep.equal([
      { grant: other.id, order: 'demo-cmms/WO-2', technician: other.technicianId, state: 'active', validUntil: other.validUntil.toISOString() },
    ]);
    expect(t.gateway.open.size, 'the shared entry stays for the other order').to.equal(2);
  });

  it('blocks the access for every order until lifted: the entry goes and a third order grants nothing of it', async () => {
    const { mine, other } = await twoOrders();
    const res = await call('POST', '/v1/access/revoke', { grantId: mine.id, reason: 'suspected credential sharing' });
    expect(res.status).to.equal(200);
    const block = res.body.block as { id: string; technicianId: string; targetId: string };
    expect(block).to.include({ technicianId: mine.technicianId, targetId: mine.targetId });
    expect((res.body.revoked as Holder[]).map((h) => [h.grant, h.state]).sort()).to.deep.equal([[mine.id, 'revoked'], [other.id, 'revoked']].sort());
    expect(res.body.stillHeldBy).to.deep.equal([]);
    expect(t.gateway.open.size, 'the blocked access is gone from the gateway').to.equal(1);

    expect((await t.hook(order('WO-3', 'APPR'))).status).to.equal(202);
    await until(async () => (await active()).some((g) => g.orderKey === 'demo-cmms/WO-3'), 'the third order\'s other access');
    await t.daemon.reconciler.reconcile();
    const live = await active();
    expect(live.filter((g) => g.assetId === mine.assetId), 'no order gives the blocked access').to.deep.equal([]);
    expect(t.gateway.open.size).to.equal(1);
    const explain = await call('GET', '/v1/explain?order=demo-cmms/WO-3');
    const denials = explain.body.denials as { code: string; assetId?: string; reason: string }[];
    expect(denials.find((d) => d.code === 'ACCESS_BLOCKED')).to.include({ assetId: mine.assetId });
    expect((await call('GET', '/v1/access/blocks')).body.blocks).to.have.length(1);

    expect((await call('POST', `/v1/access/${block.id}/lift`, { reason: 'vendor rotated credentials' })).status, 'an operator may not lift it').to.equal(403);
    const lifted = await call('POST', `/v1/access/${block.id}/lift`, { reason: 'vendor rotated credentials' }, admin);
    expect(lifted.status).to.equal(200);
    await until(async () => t.gateway.open.size === 2, 'the access comes back through the open orders');
    await until(async () => (await active()).filter((g) => g.assetId === mine.assetId).length === 3, 'all three orders give the access again');
    const actions = (await t.daemon.runtime.store.readAudit(0, 10_000)).map((r) => r.action);
    expect(actions).to.include.members(['access.blocked', 'access.block_lifted']);
  });

  it('the CLI says the access remains through the other order, then blocks the access for all orders and lifts it', async () => {
    const { mine, other } = await twoOrders();
    // Async: the recording gateway answers from this process, so it must not be blocked while the CLI runs.
    const wogate = async (...args: string[]) => {
      const r = await promisify(execFile)(process.execPath, ['--import', 'tsx', path.join(REPO, 'src/cli/main.ts'), ...args, '-c', path.join(t.dir, 'wogate.yaml')], { cwd: REPO, env: { ...process.env, TEST_HOOK_SECRET: t.secret } });
      return r.stdout;
    };
    const revoked = await wogate('grants', 'revoke', mine.id, '--reason', 'technician left the site');
    expect(revoked).to.include(`revoked ${mine.id}`).and.include(`access remains through order demo-cmms/WO-2 (grant ${other.id}`);
    expect(t.gateway.open.size).to.equal(2);
    const blocked = await wogate('access', 'block', '--grant', mine.id, '--reason', 'shared credentials');
    expect(blocked).to.match(/^blocked tech-jdoe on demo-gateway .* for all orders \(block [0-9a-f-]{36}\)/m).and.include(`grant ${other.id} of order demo-cmms/WO-2: revoked`);
    expect(t.gateway.open.size, 'the CLI took the shared entry away').to.equal(1);
    const id = /\(block ([0-9a-f-]{36})\)/.exec(blocked)?.[1] as string;
    expect(await wogate('access', 'list')).to.include(id).and.include('shared credentials');
    expect(await wogate('explain', '--order', 'demo-cmms/WO-2')).to.match(/DENY {2}demo-cmms\/WO-2 tech-jdoe -> \S+: ACCESS_BLOCKED: /);
    expect(await wogate('access', 'lift', id, '--reason', 'credentials rotated')).to.include(`lifted block ${id}`);
    expect(await wogate('access', 'list')).to.include('no access is blocked');
    await t.daemon.reconciler.reconcile();
    expect(t.gateway.open.size, 'WO-2 gives the access again once lifted').to.equal(2);
  }).timeout(180_000); // six CLI runs, each compiling through tsx on a busy machine

  it('CLI explain decides as the daemon does: a suspended vendor\'s order says VENDOR_SUSPENDED', async () => {
    await twoOrders();
    expect((await call('POST', '/v1/vendors/acme-controls/suspend', { reason: 'incident under review' }, admin)).status).to.equal(200);
    const r = await promisify(execFile)(process.execPath, ['--import', 'tsx', path.join(REPO, 'src/cli/main.ts'), 'explain', '--order', 'demo-cmms/WO-1', '-c', path.join(t.dir, 'wogate.yaml')], { cwd: REPO, env: { ...process.env, TEST_HOOK_SECRET: t.secret } });
    expect(r.stdout).to.match(/VENDOR_SUSPENDED: vendor "acme-controls" is suspended/).and.not.match(/^ *GRANT/m);
  }).timeout(60_000);

  it('refuses a block without a reason or an access (400), of an unknown grant (404), twice (400), and a viewer token (403)', async () => {
    const { mine } = await twoOrders();
    expect((await call('POST', '/v1/access/revoke', { grantId: mine.id })).status).to.equal(400);
    expect((await call('POST', '/v1/access/revoke', { reason: 'no access named' })).body.error).to.include({ code: 'BAD_REQUEST' });
    expect((await call('POST', '/v1/access/revoke', { targetId: 'demo-gateway', technicianId: 'tech-jdoe', resourceKey: 'nonsense', reason: 'bad key' })).status).to.equal(400);
    expect((await call('POST', '/v1/access/revoke', { grantId: 'nope', reason: 'typo check' })).status).to.equal(404);
    expect((await call('POST', '/v1/access/nope/lift', { reason: 'typo check' }, admin)).status).to.equal(404);
    const viewer = (await createToken(t.daemon.runtime.store, 'viewer', ['grants:read'], new Date())).token;
    expect((await call('POST', '/v1/access/revoke', { grantId: mine.id, reason: 'no right to do this' }, viewer)).status).to.equal(403);
    expect((await call('POST', '/v1/access/revoke', { grantId: mine.id, reason: 'first' })).status).to.equal(200);
    expect((await call('POST', '/v1/access/revoke', { grantId: mine.id, reason: 'second' })).status).to.equal(400);
    expect(t.gateway.open.size, 'refused requests changed nothing; the one block took one access').to.equal(1);
  });
});
