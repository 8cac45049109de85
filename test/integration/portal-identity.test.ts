import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { demoOrder } from '../../src/demo/demo.js';
import { sha256 } from '../../src/portal/sessions.js';
import { credentialEntry } from '../../src/portal/vault.js';
import type { Grant } from '../../src/domain/index.js';
import type { SqliteStore } from '../../src/store/sqlite.js';
import { until, type TestDaemon } from '../helpers/daemon.js';
import { CookieJar, type PortalOidcProvider } from '../helpers/oidc-portal.js';
import { startCertificatePortal, type CertificatePortal } from '../helpers/portal-world.js';
import { WogateError } from '../../src/domain/errors.js';

// Technician ids are unique only inside a vendor: a portal session is bound to (vendor,
// technician), against a real OpenID provider and a real daemon with a local-CA certificate target.

function order(id: string, vendor: string, technicians: string[]) {
  const now = new Date();
  const o = demoOrder(id, 'APPR', now, now);
  return { ...o, data: { workOrder: { ...o.data.workOrder, vendor: { id: vendor }, technicians: technicians.map((t) => ({ id: t })), assets: [{ assetnum: 'PLC-CL2-01' }] } } };
}

const CSRF = /name="csrf" value="([^"]+)"/;
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

async function signIn(idp: PortalOidcProvider, url: string, user: string): Promise<{ jar: CookieJar; html: string; status: number }> {
  idp.loginAs(user);
  const jar = new CookieJar();
  const { res } = await jar.follow(`${url}/portal/login`);
  return { jar, html: await res.text(), status: res.status };
}

describe('vendor portal: a session is bound to (vendor, technician)', function () {
  this.timeout(60_000);

  it('refuses to start when a technician id is listed under two vendors and portal.oidc.vendorClaim is unset, naming the id and both vendors', async () => {
    let started: CertificatePortal | undefined;
    let error: unknown;
    try {
      started = await startCertificatePortal({
        users: { 'tech-jdoe': { mfa: true } },
        vendors: { 'acme-controls': { 'tech-jdoe': '10.8.0.21' }, 'hydro-analytics': { 'Tech-JDoe': '10.8.0.31' } },
        envPrefix: 'PORTAL_AMBIGUOUS',
      });
    } catch (e) {
      error = e;
    } finally {
      await started?.close();
    }
    expect(started, 'the daemon must not start').to.equal(undefined);
    expect(error).to.be.instanceOf(WogateError);
    expect((error as WogateError).code).to.equal('REGISTER_INVALID');
    expect((error as WogateError).message).to.include('technician id "tech-jdoe" is listed under vendors "acme-controls" and "hydro-analytics"').and.include('portal.oidc.vendorClaim');
  });

  describe('with the vendor from the register (no vendorClaim)', () => {
    let portal: CertificatePortal;
    let t: TestDaemon;
    before(async () => {
      portal = await startCertificatePortal({
        users: { 'tech-jdoe': { mfa: true }, 'Tech-MKeller': { mfa: true }, 'tech-nobody': { mfa: true } },
        vendors: { 'acme-controls': { 'tech-jdoe': '10.8.0.21' }, 'hydro-analytics': { 'tech-mkeller': '10.8.0.31' } },
        envPrefix: 'PORTAL_REGISTER_VENDOR',
        edit: (c) => {
          c.server.rateLimits.login = { perMinute: 1000 };
        },
      });
      t = portal.t;
      expect((await t.hook(order('WO-1', 'acme-controls', ['tech-jdoe']))).status).to.equal(202);
      expect((await t.hook(order('WO-2', 'hydro-analytics', ['tech-mkeller']))).status).to.equal(202);
      await until(async () => (await t.daemon.runtime.store.listGrants({ states: ['active'] })).length === 2, 'two certificate grants active', 20_000);
    });
    after(async () => {
      await portal?.close();
    });

    it('binds the session to the vendor whose register entry lists the technician, whatever case the subject is in', async () => {
      const { html } = await signIn(portal.idp, portal.url, 'Tech-MKeller');
      const mine = await t.daemon.runtime.store.listGrants({ states: ['active'], vendorId: 'hydro-analytics' });
      expect(html).to.include(`data-grant="${mine[0]?.id}"`);
      const signedIn = (await t.daemon.runtime.store.readAudit(0, 100_000)).filter((r) => r.action === 'portal.signed_in').at(-1);
      expect(signedIn?.details).to.include({ sub: 'Tech-MKeller', vendorId: 'hydro-analytics' });
    });

    it('refuses a sign-in whose technician id no vendor lists (403)', async () => {
      const { html, status } = await signIn(portal.idp, portal.url, 'tech-nobody');
      expect(status).to.equal(403);
      expect(html).to.include('not in the plant');
    });

    it('ends a session stored before sessions were bound to a vendor: its cookie opens nothing', async () => {
      const id = randomBytes(32).toString('base64url');
      const db = (t.daemon.runtime.store as SqliteStore).raw();
      const now = Date.now();
      db.prepare('INSERT INTO portal_sessions (id_hash, technician_id, vendor_id, subject, csrf_hash, created_at, last_seen_at, expires_at) VALUES (?, ?, NULL, ?, ?, ?, ?, ?)')
        .run(sha256(id), 'tech-jdoe', 'tech-jdoe', sha256('csrf'), now, now, now + 3_600_000);
      const page = await (await fetch(`${portal.url}/portal`, { headers: { cookie: `wogate_portal=${id}` } })).text();
      expect(page).to.include('Sign in').and.not.include('data-grant=');
      expect(db.prepare('SELECT count(*) n FROM portal_sessions WHERE id_hash = ?').get(sha256(id))).to.deep.equal({ n: 0 });
    });
  });

  describe('with a vendor claim, and one technician id under two vendors', () => {
    let portal: CertificatePortal;
    let t: TestDaemon;
    let victimGrant: Grant;
    before(async () => {
      portal = await startCertificatePortal({
        // A federated provider: each vendor's people keep their own technician ids, and the vendor claim says whose they are.
        users: {
          'acme-account-1': { mfa: true, claims: { technician: 'tech-jdoe', vendor: 'acme-controls' } },
          'hydro-account-7': { mfa: true, claims: { technician: 'tech-jdoe', vendor: 'hydro-analytics' } },
        },
        claims: ['technician'],
        vendors: { 'acme-controls': { 'tech-jdoe': '10.8.0.21' }, 'hydro-analytics': { 'tech-jdoe': '10.8.0.31' } },
        envPrefix: 'PORTAL_VENDOR_CLAIM',
        edit: (c) => {
          c.server.rateLimits.login = { perMinute: 1000 };
          c.portal.oidc.technicianClaim = 'technician';
          c.portal.oidc.vendorClaim = 'vendor';
        },
      });
      t = portal.t;
      expect((await t.hook(order('WO-1', 'acme-controls', ['tech-jdoe']))).status).to.equal(202);
      await until(async () => (await t.daemon.runtime.store.listGrants({ states: ['active'] })).length === 1, 'the acme technician\'s grant active', 20_000);
      victimGrant = (await t.daemon.runtime.store.listGrants({ states: ['active'] }))[0] as Grant;
      await until(async () => (await t.daemon.runtime.store.portal.credentialStatus(credentialEntry(victimGrant))) === true, 'the certificate waiting', 20_000);
    });
    after(async () => {
      await portal?.close();
    });

    it("shows the other vendor's technician of the same id no grant, refuses their collection (404), and the owner still collects", async () => {
      const attacker = await signIn(portal.idp, portal.url, 'hydro-account-7');
      expect(attacker.status).to.equal(200);
      expect(attacker.html).to.include('You have no access granted right now').and.not.include(victimGrant.id);
      const csrf = CSRF.exec(attacker.html)?.[1] as string;
      const steal = await attacker.jar.fetch(`${portal.url}/portal/grants/${encodeURIComponent(victimGrant.id)}/credential`, { method: 'POST', headers: FORM, body: new URLSearchParams({ csrf }).toString() });
      expect(steal.status).to.equal(404);
      expect(await steal.text()).to.not.include('passphrase');
      expect(await t.daemon.runtime.store.portal.credentialStatus(credentialEntry(victimGrant)), 'still waiting for its owner').to.equal(true);

      const owner = await signIn(portal.idp, portal.url, 'acme-account-1');
      expect(owner.html).to.include(`data-grant="${victimGrant.id}"`);
      const ownerCsrf = CSRF.exec(owner.html)?.[1] as string;
      const collect = await owner.jar.fetch(`${portal.url}/portal/grants/${encodeURIComponent(victimGrant.id)}/credential`, { method: 'POST', headers: FORM, body: new URLSearchParams({ csrf: ownerCsrf }).toString() });
      expect(collect.status).to.equal(200);
      expect(await collect.text()).to.match(/id="passphrase">[a-z2-9-]+</);
    });
  });

  it('refuses a SIGHUP reload that lists a technician id under two vendors, naming both, and keeps the last good register', async () => {
    const portal = await startCertificatePortal({
      users: { 'tech-jdoe': { mfa: true } },
      vendors: { 'acme-controls': { 'tech-jdoe': '10.8.0.21' }, 'hydro-analytics': { 'tech-mkeller': '10.8.0.31' } },
      envPrefix: 'PORTAL_RELOAD',
    });
    try {
      const vendorsFile = path.join(portal.files, 'vendors.yaml');
      fs.writeFileSync(vendorsFile, fs.readFileSync(vendorsFile, 'utf8').replace('tech-mkeller', 'TECH-JDOE'));
      portal.t.daemon.reload();
      const refusals = async () => (await portal.t.daemon.runtime.store.readAudit(0, 100_000)).filter((r) => r.action === 'policy.reload_refused');
      await until(async () => (await refusals()).length > 0, 'the reload refused');
      const refusedReload = await refusals();
      expect(refusedReload).to.have.length(1);
      expect((refusedReload[0]?.details as { error: string }).error).to.include('technician id "tech-jdoe" is listed under vendors "acme-controls" and "hydro-analytics"');
      expect(portal.t.daemon.runtime.world().register.vendors.get('hydro-analytics')?.technicians.map((x) => x.id)).to.deep.equal(['tech-mkeller']);
    } finally {
      await portal.close();
    }
  });
});
