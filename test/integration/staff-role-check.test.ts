import { expect } from 'chai';
import type { PortalTestUser } from '../helpers/oidc-portal.js';
import { STAFF_USERS, startStaffWorld, type StaffWorld } from '../helpers/staff.js';

// A staff session believes the role it read from the provider for 5 minutes at most: then it signs
// in again through the provider (silently while the provider's session lasts), so a demotion at
// the provider takes effect. The daemon's clock is moved; the provider is the real oidc-provider.
describe('staff pages: the role is re-read from the provider every 5 minutes', function () {
  this.timeout(60_000);
  let w: StaffWorld;
  let offset = 0;
  const users: Record<string, PortalTestUser> = structuredClone(STAFF_USERS) as Record<string, PortalTestUser>;
  const demote = (user: string, roles: string[]) => {
    users[user] = { ...(users[user] as PortalTestUser), claims: { ...users[user]?.claims, wogate_roles: roles } };
  };

  before(async () => {
    w = await startStaffWorld({ users, clock: () => new Date(Date.now() + offset) });
  });
  after(async () => w?.close());
  afterEach(() => {
    offset = 0;
  });

  it('keeps the session within 5 minutes, then re-reads the role: an operator demoted to viewer loses the kill switch', async () => {
    users['sec-ana'] = structuredClone(STAFF_USERS['sec-ana']) as PortalTestUser;
    const { jar } = await w.signIn('sec-ana');
    expect((await jar.fetch(`${w.url}/staff/vendors`)).status).to.equal(200);
    demote('sec-ana', ['ot-viewers']);
    offset = 4 * 60_000;
    const early = await jar.fetch(`${w.url}/staff/vendors`);
    expect(early.status, 'the role is still believed').to.equal(200);
    expect(await early.text()).to.include('/suspend"');

    offset = 5 * 60_000;
    const due = await jar.fetch(`${w.url}/staff/vendors`);
    expect(due.status).to.equal(303);
    expect(due.headers.get('location')).to.equal(`/staff/login?returnTo=${encodeURIComponent('/staff/vendors')}`);
    // A form sent on a session that is due changes nothing.
    const post = await jar.fetch(`${w.url}/staff/vendors/acme-controls/suspend`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'reason=stale&confirm=acme-controls&csrf=x' });
    expect(post.status).to.equal(401);
    expect(w.t.daemon.runtime.suspensions.list()).to.deep.equal([]);

    w.idp.loginAs('sec-ana');
    const { res, url } = await jar.follow(`${w.url}/staff/vendors`);
    expect(url).to.equal(`${w.url}/staff/vendors`);
    const html = await res.text();
    expect(res.status).to.equal(200);
    expect(html).to.include('ana (viewer)').and.not.include('/suspend"');
    const renewed = (await w.t.daemon.runtime.store.readAudit(0, 100_000)).filter((r) => r.action === 'staff.signed_in').at(-1);
    expect(renewed?.details).to.include({ role: 'viewer', renewed: true });
  });

  it('ends the session when the provider no longer maps the user to any role', async () => {
    users['sec-ola'] = structuredClone(STAFF_USERS['sec-ola']) as PortalTestUser;
    const { jar } = await w.signIn('sec-ola');
    expect((await jar.fetch(`${w.url}/staff`)).status).to.equal(200);
    demote('sec-ola', ['canteen']);
    offset = 6 * 60_000;
    w.idp.loginAs('sec-ola');
    const { res } = await jar.follow(`${w.url}/staff`);
    expect(res.status).to.equal(403);
    expect(await res.text()).to.include('maps to a wogate role');
    // The old session is gone: without signing in again nothing opens, whatever the clock.
    offset = 0;
    const after = await jar.fetch(`${w.url}/staff`);
    expect(after.status).to.equal(303);
    expect(after.headers.get('location')).to.match(/^\/staff\/login/);
  });
});
