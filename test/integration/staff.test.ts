import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import YAML from 'yaml';
import { STAFF_PAGES } from '../../src/api/roles.js';
import { loadConfig } from '../../src/config/config.js';
import type { AuditRecord } from '../../src/store/store.js';
import { exampleConfig } from '../helpers/daemon.js';
import { CookieJar } from '../helpers/oidc-portal.js';
import { demoHook, startStaffWorld, type StaffWorld } from '../helpers/staff.js';
import { tmpDir } from '../helpers/world.js';

// The security staff's pages on a real daemon, signing in at a real OpenID provider with the
// authorization code flow and PKCE, as a browser would (cookie jar, redirects followed).

const CSRF = /name="csrf" value="([^"]+)"/;
const form = (fields: Record<string, string>) => ({ method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields).toString() });
const concrete = (p: string) => p.replace(':id', 'acme-controls');

describe('staff pages: sign-in with MFA and a role, grants, revoke, kill switch, explain', function () {
  this.timeout(60_000);
  let w: StaffWorld;
  before(async () => {
    w = await startStaffWorld();
  });
  after(async () => {
    await w?.close();
  });

  const store = () => w.t.daemon.runtime.store;
  const audit = async (action: string): Promise<AuditRecord[]> => (await store().readAudit(0, 100_000)).filter((r) => r.action === action);
  /** One entry per refusal: a browser without a session is audited once a window with a count, written by flush(). */
  const refusals = async (reason: string) => {
    await w.t.daemon.refusals.flush();
    return (await audit('staff.refused')).filter((r) => (r.details as { reason?: string }).reason === reason).flatMap((r) => Array<AuditRecord>(r.details.aggregated ? Number(r.details.count) : 1).fill(r));
  };
  const active = async () => store().listGrants({ states: ['active'] });

  it('signs an operator in with MFA and shows every live grant with a countdown, under a CSP that allows only its own script', async () => {
    const { jar, res, html, url } = await w.signIn('sec-ana');
    expect(res.status).to.equal(200);
    expect(url).to.equal(`${w.url}/staff`);
    expect(res.headers.get('content-security-policy')).to.equal("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'");
    for (const g of await active()) {
      expect(html).to.include(`data-grant="${g.id}"`);
      expect(html).to.include(`data-until="${g.validUntil.toISOString()}"`);
    }
    expect(html).to.include('<script src="/staff/static/staff.js" defer></script>').and.include('ana (operator)');
    expect(html.match(/<script/g)).to.have.length(1);
    expect(jar.cookies.has('wogate_staff'), 'loopback http: the documented cookie without __Host-').to.equal(true);
    expect(jar.cookies.has('wogate_portal')).to.equal(false);
    const signedIn = (await audit('staff.signed_in')).at(-1);
    expect(signedIn?.actor).to.equal('oidc:sec-ana');
    expect(signedIn?.details).to.include({ role: 'operator', name: 'ana' });
    const js = await jar.fetch(`${w.url}/staff/static/staff.js`);
    expect(js.headers.get('content-type')).to.match(/^text\/javascript/);
  });

  it('refuses a sign-in without a second factor, and one whose claims map to no role (403, audited, no session)', async () => {
    for (const [user, reason] of [['sec-nomfa', 'mfa_missing'], ['sec-norole', 'no_role']] as const) {
      const { jar, res } = await w.signIn(user);
      expect(res.status, user).to.equal(403);
      expect(jar.cookies.has('wogate_staff'), user).to.equal(false);
      expect(await refusals(reason), reason).to.have.length.greaterThan(0);
    }
  });

  describe('the page table', () => {
    it('sends every page to sign-in without a session (GET: redirect back to it; POST: 401), and audits the refused POSTs', async () => {
      const jar = new CookieJar();
      for (const p of STAFF_PAGES) {
        const res = p.method === 'GET' ? await jar.fetch(`${w.url}${concrete(p.path)}`) : await jar.fetch(`${w.url}${concrete(p.path)}`, form({ reason: 'no session here', csrf: 'x' }));
        if (p.method === 'GET') {
          expect(res.status, p.path).to.equal(303);
          expect(res.headers.get('location'), p.path).to.equal(`/staff/login?returnTo=${encodeURIComponent(concrete(p.path))}`);
        } else {
          expect(res.status, p.path).to.equal(401);
        }
      }
      expect((await refusals('not_signed_in')).length).to.be.at.least(STAFF_PAGES.filter((p) => p.method === 'POST').length);
    });

    it('lets a viewer see every page whose API route a viewer may call and refuses the rest (403, audited)', async () => {
      const { jar, html } = await w.signIn('sec-vic');
      const csrf = CSRF.exec(html)?.[1] as string;
      for (const p of STAFF_PAGES) {
        const res = p.method === 'GET' ? await jar.fetch(`${w.url}${concrete(p.path)}`) : await jar.fetch(`${w.url}${concrete(p.path)}`, form({ reason: 'a viewer trying', confirm: 'acme-controls', csrf }));
        const allowed = p.api.minRole === 'viewer';
        // A page the viewer may see answers 200, or for the placeholder grant id its own 404 page; never 403.
        if (allowed && p.path.includes(':id')) {
          expect(res.status, p.path).to.equal(404);
          expect(await res.text(), p.path).to.include('There is no grant &quot;acme-controls&quot;');
        } else if (allowed) expect(res.status, p.path).to.equal(200);
        else expect(res.status, p.path).to.equal(403);
      }
      expect(await active(), 'a viewer changed nothing').to.have.length(4);
      expect((await refusals('role')).filter((r) => r.actor === 'oidc:sec-vic').length).to.equal(STAFF_PAGES.filter((p) => p.api.minRole !== 'viewer').length);
    });

    it('shows a viewer no revoke or kill-switch forms', async () => {
      const { jar } = await w.signIn('sec-vic');
      const g = (await active())[0];
      const page = await (await jar.fetch(`${w.url}/staff/grants/${encodeURIComponent(g?.id ?? '')}`)).text();
      expect(page).to.include('Revoking needs the operator role').and.not.include('/revoke"');
      const vendors = await (await jar.fetch(`${w.url}/staff/vendors`)).text();
      expect(vendors).to.not.include('/suspend"');
    });
  });

  it('escapes what it shows: a filter value with markup comes back as text', async () => {
    const { jar } = await w.signIn('sec-vic');
    const html = await (await jar.fetch(`${w.url}/staff?vendor=${encodeURIComponent('<img src=x onerror=alert(1)>')}`)).text();
    expect(html).to.include('&lt;img src=x onerror=alert(1)&gt;').and.not.include('<img src=x');
  });

  it('refuses an open redirect in returnTo (400) and returns to the staff page asked for', async () => {
    for (const bad of ['//evil.example/staff', 'https://evil.example/', '/portal', '/staff/../portal']) {
      const res = await new CookieJar().fetch(`${w.url}/staff/login?returnTo=${encodeURIComponent(bad)}`);
      expect(res.status, bad).to.equal(400);
    }
    const { url } = await w.signIn('sec-vic', '/staff/vendors');
    expect(url).to.equal(`${w.url}/staff/vendors`);
  });

  it('never takes a vendor portal session for a staff session, nor a staff sign-in at the portal', async () => {
    w.idp.loginAs('tech-jdoe');
    const jar = new CookieJar();
    await jar.follow(`${w.url}/portal/login`);
    expect(jar.cookies.has('wogate_portal')).to.equal(true);
    const res = await jar.fetch(`${w.url}/staff`);
    expect(res.status).to.equal(303);
    expect(res.headers.get('location')).to.match(/^\/staff\/login/);

    // A staff sign-in's redirect back, delivered to the portal's callback: refused.
    w.idp.loginAs('sec-ana');
    const staffJar = new CookieJar();
    const r = await staffJar.follow(`${w.url}/staff/login`, (next) => next.pathname === '/staff/callback');
    const hijacked = await staffJar.fetch((r.stoppedAt as string).replace('/staff/callback', '/portal/callback'));
    expect(hijacked.status).to.equal(400);
    expect(staffJar.cookies.has('wogate_portal')).to.equal(false);
  });

  it('signs out with the CSRF token: the old cookie no longer opens the pages', async () => {
    const { jar, html } = await w.signIn('sec-vic');
    const old = jar.header();
    const res = await jar.fetch(`${w.url}/staff/logout`, form({ csrf: CSRF.exec(html)?.[1] as string }));
    expect(res.status).to.equal(303);
    const replay = await fetch(`${w.url}/staff`, { redirect: 'manual', headers: { cookie: old } });
    expect(replay.status).to.equal(303);
    expect((await audit('staff.signed_out')).at(-1)?.actor).to.equal('oidc:sec-vic');
  });

  it('stores staff sessions apart from the portal\'s, as hashes only', async () => {
    const { jar } = await w.signIn('sec-root');
    const id = jar.cookies.get('wogate_staff') as string;
    const Database = (await import('better-sqlite3')).default;
    const db = new Database(path.join(w.t.dir, 'wogate.db'), { readonly: true });
    try {
      const rows = db.prepare('SELECT * FROM staff_sessions').all() as Record<string, unknown>[];
      expect(rows.length).to.be.greaterThan(0);
      expect(JSON.stringify(rows)).to.not.include(id);
      expect(rows.find((r) => r.subject === 'sec-root')).to.include({ role: 'admin', name: 'root' });
      expect(db.prepare('SELECT count(*) AS n FROM portal_sessions WHERE subject = ?').get('sec-root')).to.deep.equal({ n: 0 });
    } finally {
      db.close();
    }
  });

  // Last: these change what the daemon holds (a revoked grant, a suspension lifted again).
  describe('acting', () => {
    it('revokes one grant from its page: a CSRF-less post changes nothing, the real form revokes it with the role in the audit record', async () => {
      const { jar } = await w.signIn('sec-ana');
      const g = (await active())[0];
      if (!g) throw new Error('no active grant');
      const pageUrl = `${w.url}/staff/grants/${encodeURIComponent(g.id)}`;
      const page = await (await jar.fetch(pageUrl)).text();
      const csrf = CSRF.exec(page)?.[1] as string;
      expect(page).to.include(`action="/staff/grants/${encodeURIComponent(g.id)}/revoke"`);

      const forged = await jar.fetch(`${pageUrl}/revoke`, form({ reason: 'forged from another site' }));
      expect(forged.status).to.equal(403);
      expect((await store().getGrant(g.id))?.state).to.equal('active');
      const short = await jar.fetch(`${pageUrl}/revoke`, form({ reason: 'x', csrf }));
      expect(short.status).to.equal(400);
      expect(await short.text()).to.include('3 to 500 characters');
      expect((await store().getGrant(g.id))?.state).to.equal('active');

      const res = await jar.fetch(`${pageUrl}/revoke`, form({ reason: 'technician left the site early', csrf }));
      expect(res.status).to.equal(303);
      expect(res.headers.get('location')).to.equal(`/staff/grants/${encodeURIComponent(g.id)}?done=revoked`);
      expect((await store().getGrant(g.id))?.state).to.equal('revoked');
      const after = await (await jar.fetch(`${w.url}${res.headers.get('location')}`)).text();
      expect(after).to.include('Revoked').and.include('technician left the site early');
      // WO-1 and WO-2 give the same access: the page says the access stays, and through which order.
      const other = (await active()).find((x) => x.orderKey !== g.orderKey && x.assetId === g.assetId);
      expect(after).to.include('the access remains through order').and.include(`grant ${other?.id}`);
      const rec = (await audit('grant.revoke_requested')).find((r) => r.subject === g.id);
      expect(rec?.actor).to.equal('oidc:sec-ana');
      expect(rec?.details).to.include({ role: 'operator', via: 'staff', reason: 'technician left the site early' });
    });

    it('suspends a vendor only when its id is typed to confirm, revokes everything, and has a second operator reinstate it', async () => {
      const { jar } = await w.signIn('sec-ana');
      const page = await (await jar.fetch(`${w.url}/staff/vendors`)).text();
      const csrf = CSRF.exec(page)?.[1] as string;
      expect(page).to.include('data-vendor="acme-controls"');
      const wrong = await jar.fetch(`${w.url}/staff/vendors/acme-controls/suspend`, form({ reason: 'stolen laptop', confirm: 'acme', csrf }));
      expect(wrong.status).to.equal(400);
      expect(await wrong.text()).to.include('nothing was changed');
      expect(await active()).to.have.length.greaterThan(0);
      expect(w.t.daemon.runtime.suspensions.list()).to.deep.equal([]);

      const res = await jar.fetch(`${w.url}/staff/vendors/acme-controls/suspend`, form({ reason: 'stolen laptop', confirm: 'acme-controls', csrf }));
      expect(res.status).to.equal(303);
      expect(await active()).to.have.length(0);
      expect(w.t.gateway.open.size, 'the gateway holds nothing').to.equal(0);
      const listed = await (await jar.fetch(`${w.url}${res.headers.get('location')}`)).text();
      expect(listed).to.include('acme-controls is suspended').and.include('stolen laptop').and.include('/reinstate"');
      const suspended = (await audit('vendor.suspended')).at(-1);
      expect(suspended?.actor).to.equal('oidc:sec-ana');
      expect(suspended?.details).to.include({ role: 'operator', via: 'staff' });

      const explained = await (await jar.fetch(`${w.url}/staff/explain?order=${encodeURIComponent('demo-cmms/WO-2')}`)).text();
      expect(explained).to.include('VENDOR_SUSPENDED');

      // The operator who pulled the switch can't lift it alone.
      const own = await jar.fetch(`${w.url}/staff/vendors/acme-controls/reinstate`, form({ reason: 'new credentials issued', csrf }));
      expect(own.status).to.equal(403);
      expect(await own.text()).to.include('second-person rule');
      expect(w.t.daemon.runtime.suspensions.list()).to.have.length(1);

      const ola = await w.signIn('sec-ola');
      const olaCsrf = CSRF.exec(await (await ola.jar.fetch(`${w.url}/staff/vendors`)).text())?.[1] as string;
      const back = await ola.jar.fetch(`${w.url}/staff/vendors/acme-controls/reinstate`, form({ reason: 'new credentials issued', csrf: olaCsrf }));
      expect(back.status).to.equal(303);
      expect(w.t.daemon.runtime.suspensions.list()).to.deep.equal([]);
      expect((await audit('vendor.reinstated')).at(-1)?.details).to.include({ role: 'operator', via: 'staff', person: 'sec-ola' });
    });

    it('lets an admin (at least policy-admin) reinstate a suspension they made themselves', async () => {
      const { jar } = await w.signIn('sec-root');
      const csrf = CSRF.exec(await (await jar.fetch(`${w.url}/staff/vendors`)).text())?.[1] as string;
      expect((await jar.fetch(`${w.url}/staff/vendors/acme-controls/suspend`, form({ reason: 'drill', confirm: 'acme-controls', csrf }))).status).to.equal(303);
      expect((await jar.fetch(`${w.url}/staff/vendors/acme-controls/reinstate`, form({ reason: 'drill over', csrf }))).status).to.equal(303);
      expect(w.t.daemon.runtime.suspensions.list()).to.deep.equal([]);
    });

    it('explains a work order: the rule that granted it, and a precise 404 for an order that does not exist', async () => {
      expect((await w.t.hook(demoHook('WO-3'))).status).to.equal(202);
      await w.t.daemon.reconciler.reconcile();
      const { jar } = await w.signIn('sec-vic');
      const html = await (await jar.fetch(`${w.url}/staff/explain?order=${encodeURIComponent('demo-cmms/WO-3')}`)).text();
      expect(html).to.include('Decision at').and.include('<h3>Granted</h3>').and.match(/<td>[^<]+\/[^<]+<\/td><\/tr>/);
      const missing = await jar.fetch(`${w.url}/staff/explain?order=${encodeURIComponent('demo-cmms/NOPE')}`);
      expect(missing.status).to.equal(404);
      expect(await missing.text()).to.include('no work order &quot;demo-cmms/NOPE&quot;');
      const badTime = await jar.fetch(`${w.url}/staff/explain?order=demo-cmms/WO-3&at=yesterday`);
      expect(badTime.status).to.equal(400);
    });

    it('revokes a grant\'s access for all orders from its page: every sharer goes, explain says ACCESS_BLOCKED', async () => {
      const { jar } = await w.signIn('sec-ana');
      const g = (await active())[0];
      if (!g) throw new Error('no active grant');
      const pageUrl = `${w.url}/staff/grants/${encodeURIComponent(g.id)}`;
      const page = await (await jar.fetch(pageUrl)).text();
      expect(page).to.include('Revoke this access for all orders').and.include(`action="/staff/grants/${encodeURIComponent(g.id)}/block-access"`);
      const csrf = CSRF.exec(page)?.[1] as string;
      expect((await jar.fetch(`${pageUrl}/block-access`, form({ reason: 'shared credentials' }))).status, 'no CSRF token').to.equal(403);
      const res = await jar.fetch(`${pageUrl}/block-access`, form({ reason: 'shared credentials seen on the VPN', csrf }));
      expect(res.status).to.equal(303);
      expect(res.headers.get('location')).to.equal(`/staff/grants/${encodeURIComponent(g.id)}?done=blocked`);
      const same = (await active()).filter((x) => x.technicianId === g.technicianId && x.assetId === g.assetId && x.targetId === g.targetId);
      expect(same, 'no order keeps the access').to.deep.equal([]);
      const after = await (await jar.fetch(`${w.url}${res.headers.get('location')}`)).text();
      expect(after).to.include('blocked for all orders').and.include('shared credentials seen on the VPN').and.not.include('/block-access"');
      const explained = await (await jar.fetch(`${w.url}/staff/explain?order=${encodeURIComponent(g.orderKey)}`)).text();
      expect(explained).to.include('ACCESS_BLOCKED');
      const rec = (await audit('access.blocked')).at(-1);
      expect(rec?.details).to.include({ role: 'operator', via: 'staff', reason: 'shared credentials seen on the VPN' });
    });
  });
});

describe('staff pages: config', () => {
  it('refuses staff pages without auth.oidc, naming /staff, and a redirect URI that is not /staff/callback', async () => {
    const dir = tmpDir();
    try {
      const file = exampleConfig(dir, (c) => {
        c.staff = { oidc: { clientId: 'wogate-staff', clientSecret: 'env:X', redirectUri: 'https://wogate.example/staff/callback' } };
      });
      expect(() => loadConfig(file)).to.throw(/\/staff: needs \/auth\/oidc/);
      const c = YAML.parse(fs.readFileSync(file, 'utf8')) as Record<string, Record<string, unknown>>;
      c.auth = { oidc: { issuer: 'https://idp.example', audience: 'wogate', roles: { ops: 'operator' } } };
      (c.staff as { oidc: { redirectUri: string } }).oidc.redirectUri = 'https://wogate.example/portal/callback';
      fs.writeFileSync(file, YAML.stringify(c));
      expect(() => loadConfig(file)).to.throw(/staff\/oidc\/redirectUri/);
      (c.staff as { oidc: { redirectUri: string } }).oidc.redirectUri = 'http://wogate.example/staff/callback';
      fs.writeFileSync(file, YAML.stringify(c));
      expect(() => loadConfig(file)).to.throw(/\/staff\/oidc\/redirectUri: must be an https URL/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
