import { expect } from 'chai';
import { createToken } from '../../src/api/tokens.js';
import { demoOrder } from '../../src/demo/demo.js';
import { startDaemon, until, type TestDaemon } from '../helpers/daemon.js';

const order = (id: string, status: string, rev = new Date()) => demoOrder(id, status, rev, new Date());

// The kill switch on a real daemon: one call takes away everything a vendor holds, new orders
// authorise nothing for them, and it survives a restart of the reconciler's view until lifted.
describe('e2e: the vendor kill switch', function () {
  this.timeout(30_000);
  let t: TestDaemon;
  let token: string;
  beforeEach(async () => {
    t = await startDaemon();
    token = (await createToken(t.daemon.runtime.store, 'ops', ['grants:read', 'grants:revoke', 'explain'], new Date(), { owner: 'olga' })).token;
  });
  afterEach(async () => {
    await t.stop();
  });

  const call = (method: string, path: string, body?: unknown) =>
    fetch(`${t.daemon.url}${path}`, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, ...(body ? { body: JSON.stringify(body) } : {}) });
  const active = async () => (await t.daemon.runtime.store.listGrants({ states: ['active'] })).length;

  it('revokes everything a vendor holds, grants them nothing while suspended, and grants again once reinstated', async () => {
    expect((await t.hook(order('WO-1', 'APPR'))).status).to.equal(202);
    await until(async () => (await active()) === 2, 'two grants active');

    const res = await call('POST', '/v1/vendors/acme-controls/suspend', { reason: 'credential theft reported by the vendor' });
    expect(res.status).to.equal(200);
    expect(((await res.json()) as { stillRevoking: number }).stillRevoking).to.equal(0);
    expect(await active()).to.equal(0);
    expect(t.gateway.open.size, 'the gateway holds nothing').to.equal(0);

    expect((await t.hook(order('WO-2', 'APPR'))).status).to.equal(202);
    await t.daemon.reconciler.reconcile();
    expect(await active(), 'a new order for a suspended vendor grants nothing').to.equal(0);
    const explain = (await (await call('GET', '/v1/explain')).json()) as { denials: { code: string; reason: string }[] };
    expect(explain.denials.map((d) => d.code)).to.include('VENDOR_SUSPENDED');
    const listed = (await (await call('GET', '/v1/vendors/suspended')).json()) as { suspended: { vendorId: string; by: string; reason: string }[] };
    expect(listed.suspended).to.have.length(1);
    expect(listed.suspended[0]).to.include({ vendorId: 'acme-controls', by: 'token:ops', reason: 'credential theft reported by the vendor' });

    // A second person reinstates (docs/decisions/0012-persons-and-tokens.md).
    token = (await createToken(t.daemon.runtime.store, 'ops-2', ['grants:revoke'], new Date(), { owner: 'piotr' })).token;
    expect((await call('POST', '/v1/vendors/acme-controls/reinstate', { reason: 'new credentials issued' })).status).to.equal(200);
    await until(async () => (await active()) === 4, 'both open orders grant again');
    const actions = (await t.daemon.runtime.store.readAudit(0, 10_000)).map((r) => r.action);
    expect(actions).to.include.members(['vendor.suspended', 'vendor.reinstated']);
  });

  it('lets only another person reinstate: not the suspender through a second token, not a token without an owner', async () => {
    expect((await t.hook(order('WO-1', 'APPR'))).status).to.equal(202);
    await until(async () => (await active()) === 2, 'two grants active');
    expect((await call('POST', '/v1/vendors/acme-controls/suspend', { reason: 'credential theft reported by the vendor' })).status).to.equal(200);
    const reinstate = async (bearer: string) => {
      token = bearer;
      const res = await call('POST', '/v1/vendors/acme-controls/reinstate', { reason: 'new credentials issued' });
      return { status: res.status, error: ((await res.json()) as { error?: { code: string; message: string } }).error };
    };
    const store = t.daemon.runtime.store;
    const same = await reinstate((await createToken(store, 'olga-laptop', ['grants:revoke'], new Date(), { owner: 'OLGA' })).token);
    expect(same.status).to.equal(403);
    expect(same.error?.code).to.equal('AUTH_FORBIDDEN');
    expect(same.error?.message).to.contain('second-person rule');
    const nobody = await reinstate((await createToken(store, 'legacy', ['grants:revoke'], new Date())).token);
    expect(nobody.status).to.equal(403);
    expect(nobody.error?.code).to.equal('AUTH_NO_PERSON');
    expect(await active(), 'still suspended').to.equal(0);
    expect((await reinstate((await createToken(store, 'piotr', ['grants:revoke'], new Date(), { owner: 'piotr' })).token)).status).to.equal(200);
    await until(async () => (await active()) === 2, 'the open order grants again');
    const refused = (await store.readAudit(0, 10_000)).filter((r) => r.action === 'auth.refused' && r.subject.includes('reinstate'));
    expect(refused.map((r) => r.details.code)).to.deep.equal(['AUTH_FORBIDDEN', 'AUTH_NO_PERSON']);
  });

  it('does not let the suspender reinstate after suspending again through a token without an owner: a suspension naming no person needs the solo role', async () => {
    expect((await t.hook(order('WO-1', 'APPR'))).status).to.equal(202);
    await until(async () => (await active()) === 2, 'two grants active');
    const store = t.daemon.runtime.store;
    expect((await call('POST', '/v1/vendors/acme-controls/suspend', { reason: 'credential theft reported by the vendor' })).status).to.equal(200);
    // The same operator pulls the switch again with an old token that names nobody.
    token = (await createToken(store, 'legacy', ['grants:revoke'], new Date())).token;
    expect((await call('POST', '/v1/vendors/acme-controls/suspend', { reason: 'again, from the old laptop' })).status).to.equal(200);
    token = (await createToken(store, 'olga-laptop', ['grants:revoke'], new Date(), { owner: 'olga' })).token;
    const res = await call('POST', '/v1/vendors/acme-controls/reinstate', { reason: 'new credentials issued' });
    expect(res.status).to.equal(403);
    const error = ((await res.json()) as { error: { code: string; message: string } }).error;
    expect(error.code).to.equal('AUTH_FORBIDDEN');
    expect(error.message).to.contain('names no person').and.contain('policy-admin');
    await t.daemon.reconciler.reconcile();
    expect(await active(), 'still suspended').to.equal(0);
    expect(t.daemon.runtime.suspensions.list().map((x) => x.vendorId)).to.deep.equal(['acme-controls']);
  });

  it('refuses an unknown vendor (404), a missing reason (400) and a viewer-only token (403)', async () => {
    expect((await call('POST', '/v1/vendors/nobody/suspend', { reason: 'typo check' })).status).to.equal(404);
    expect((await call('POST', '/v1/vendors/acme-controls/suspend', {})).status).to.equal(400);
    expect((await call('POST', '/v1/vendors/acme-controls/reinstate', { reason: 'not suspended' })).status).to.equal(404);
    token = (await createToken(t.daemon.runtime.store, 'viewer', ['grants:read'], new Date())).token;
    expect((await call('POST', '/v1/vendors/acme-controls/suspend', { reason: 'no right to do this' })).status).to.equal(403);
    expect((await t.daemon.runtime.store.readAudit(0, 10_000)).some((r) => r.action === 'vendor.suspended')).to.equal(false);
  });
});
