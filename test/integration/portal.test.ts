import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import { expect } from 'chai';
import forge from 'node-forge';
import { demoOrder } from '../../src/demo/demo.js';
import type { AuditRecord } from '../../src/store/store.js';
import type { Request as ExpressRequest, Response as ExpressResponse } from 'express';
import fc from 'fast-check';
import { loadConfig } from '../../src/config/config.js';
import { safeReturnTo, provesMfa } from '../../src/portal/login.js';
import { cookieNames, SessionManager } from '../../src/portal/sessions.js';
import { CredentialVault, credentialEntry } from '../../src/portal/vault.js';
import type { Grant } from '../../src/domain/index.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import { exampleConfig, until, type TestDaemon } from '../helpers/daemon.js';
import { CookieJar, type PortalOidcProvider } from '../helpers/oidc-portal.js';
import { startCertificatePortal, type CertificatePortal } from '../helpers/portal-world.js';
import { tmpDir } from '../helpers/world.js';

// The vendor portal against a real OpenID provider (oidc-provider) and a real daemon with a local
// CA certificate target: sign-in by the authorization code flow with PKCE over HTTP with a cookie
// jar, as a browser would, and every refusal the issue names.

function order(id: string, vendor: string, technicians: string[]) {
  const now = new Date();
  const o = demoOrder(id, 'APPR', now, now);
  return { ...o, data: { workOrder: { ...o.data.workOrder, vendor: { id: vendor }, technicians: technicians.map((t) => ({ id: t })), assets: [{ assetnum: 'PLC-CL2-01' }] } } };
}

const CSRF = /name="csrf" value="([^"]+)"/;

describe('vendor portal: OIDC sign-in with MFA, own grants only, one-time credentials', function () {
  this.timeout(60_000);
  let portal: CertificatePortal | undefined;
  let idp: PortalOidcProvider;
  let t: TestDaemon;
  let url: string;
  const grantOf: Record<string, string> = {};

  before(async () => {
    portal = await startCertificatePortal({
      users: { 'tech-jdoe': { mfa: true }, 'tech-rsingh': { mfa: true }, 'tech-mkeller': { mfa: true }, 'tech-nomfa': { mfa: false } },
      vendors: { 'acme-controls': { 'tech-jdoe': '10.8.0.21', 'tech-rsingh': '10.8.0.22' }, 'hydro-analytics': { 'tech-mkeller': '10.8.0.31' } },
      envPrefix: 'PORTAL_TEST',
      edit: (c) => {
        // Many sign-ins from one address in a minute: the login limiter's own tests are in http-hardening.
        c.server.rateLimits.login = { perMinute: 1000 };
      },
    });
    ({ t, idp, url } = portal);
    expect((await t.hook(order('WO-1', 'acme-controls', ['tech-jdoe', 'tech-rsingh']))).status).to.equal(202);
    expect((await t.hook(order('WO-2', 'hydro-analytics', ['tech-mkeller']))).status).to.equal(202);
    await until(async () => (await t.daemon.runtime.store.listGrants({ states: ['active'] })).length === 3, 'three certificate grants active', 20_000);
    for (const g of await t.daemon.runtime.store.listGrants({ states: ['active'] })) grantOf[g.technicianId] = g.id;
  });

  after(async () => {
    await portal?.close();
  });

  const waiting = async (technician: string) => {
    const g = await t.daemon.runtime.store.getGrant(grantOf[technician] as string);
    return t.daemon.runtime.store.portal.credentialStatus(credentialEntry(g as Grant));
  };
  const audit = async (action: string): Promise<AuditRecord[]> => (await t.daemon.runtime.store.readAudit(0, 100_000)).filter((r) => r.action === action);
  /** One entry per refusal: a browser without a session is audited once a window with a count, written by flush(). */
  const refusals = async (reason: string) => {
    await t.daemon.refusals.flush();
    return (await audit('portal.refused')).filter((r) => (r.details as { reason?: string }).reason === reason).flatMap((r) => Array<AuditRecord>(r.details.aggregated ? Number(r.details.count) : 1).fill(r));
  };

  async function signIn(user: string, returnTo?: string): Promise<{ jar: CookieJar; res: Response; html: string; url: string }> {
    idp.loginAs(user);
    const jar = new CookieJar();
    const { res, url: at } = await jar.follow(`${url}/portal/login${returnTo ? `?returnTo=${encodeURIComponent(returnTo)}` : ''}`);
    return { jar, res, html: await res.text(), url: at };
  }

  /** Runs the flow up to the provider's redirect back to the portal, and returns that callback URL unvisited. */
  async function callbackUrl(jar: CookieJar, user: string): Promise<string> {
    idp.loginAs(user);
    const r = await jar.follow(`${url}/portal/login`, (next) => next.pathname === '/portal/callback');
    expect(r.stoppedAt, 'the provider redirected back with a code').to.match(/\/portal\/callback\?code=/);
    return r.stoppedAt as string;
  }

  it('signs a technician in with MFA through the real provider and shows only their own grant', async () => {
    const { jar, res, html, url: at } = await signIn('tech-jdoe');
    expect(res.status).to.equal(200);
    expect(at).to.equal(`${url}/portal`);
    expect(res.headers.get('content-security-policy')).to.equal("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'");
    expect(html).to.include(`data-grant="${grantOf['tech-jdoe']}"`);
    expect(html).to.include('plc-cl2-01').and.include('Collect certificate');
    expect(html).to.not.include(grantOf['tech-rsingh']).and.not.include(grantOf['tech-mkeller']);
    expect(html).to.not.match(/<script/i);
    expect(jar.cookies.has('wogate_portal'), 'loopback http: the documented cookie without __Host-').to.equal(true);
    const signedIn = await audit('portal.signed_in');
    expect(signedIn.at(-1)?.details).to.include({ sub: 'tech-jdoe' });
    expect((signedIn.at(-1)?.details as { amr: string[] }).amr).to.include('otp');
  });

  it('sets the session cookie HttpOnly, SameSite=Lax, Path=/ with a 256-bit random id', async () => {
    idp.loginAs('tech-jdoe');
    const jar = new CookieJar();
    const cb = await callbackUrl(jar, 'tech-jdoe');
    const res = await jar.fetch(cb);
    expect(res.status).to.equal(303);
    const cookie = res.headers.getSetCookie().find((c) => c.startsWith('wogate_portal='));
    expect(cookie).to.match(/^wogate_portal=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Lax; Max-Age=28800$/);
  });

  it('shows a second technician of the same vendor and a technician of another vendor only their own grants', async () => {
    const rsingh = await signIn('tech-rsingh');
    expect(rsingh.html).to.include(grantOf['tech-rsingh']).and.not.include(grantOf['tech-jdoe']).and.not.include(grantOf['tech-mkeller']);
    const mkeller = await signIn('tech-mkeller');
    expect(mkeller.html).to.include(grantOf['tech-mkeller']).and.not.include(grantOf['tech-jdoe']).and.not.include(grantOf['tech-rsingh']);
  });

  it('keeps the waiting credential sealed: no private key in the store in plain text', async () => {
    const db = new Database(path.join(t.dir, 'wogate.db'), { readonly: true });
    try {
      const rows = db.prepare('SELECT grant_id, sealed FROM portal_credentials').all() as { grant_id: string; sealed: string | null }[];
      expect(rows.map((r) => r.grant_id).sort()).to.deep.equal(Object.values(grantOf).sort());
      for (const r of rows) expect(r.sealed).to.match(/^v1\./).and.not.include('PRIVATE KEY');
    } finally {
      db.close();
    }
  });

  it("refuses another technician's grant id as if it did not exist (404, audited) and leaves that credential waiting", async () => {
    const { jar, html } = await signIn('tech-mkeller');
    const csrf = CSRF.exec(html)?.[1] as string;
    const res = await jar.fetch(`${url}/portal/grants/${encodeURIComponent(grantOf['tech-jdoe'] as string)}/credential`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ csrf }).toString() });
    expect(res.status).to.equal(404);
    expect(res.headers.get('content-type')).to.match(/^text\/html/);
    const page = await res.text();
    expect(page).to.include('No such grant').and.not.include('BEGIN');
    expect((await refusals('not_your_grant')).at(-1)?.actor).to.equal('portal:hydro-analytics/tech-mkeller');
    expect(await waiting('tech-jdoe')).to.equal(true);
  });

  it('refuses a credential request without the session CSRF token (403, audited)', async () => {
    const { jar } = await signIn('tech-jdoe');
    const res = await jar.fetch(`${url}/portal/grants/${encodeURIComponent(grantOf['tech-jdoe'] as string)}/credential`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'csrf=forged' });
    expect(res.status).to.equal(403);
    expect(await refusals('csrf')).to.have.length.greaterThan(0);
    expect(await waiting('tech-jdoe')).to.equal(true);
  });

  it('hands the certificate and key over once as PKCS#12 under a one-time passphrase, then answers 410 Gone', async () => {
    const { jar, html } = await signIn('tech-jdoe');
    const csrf = CSRF.exec(html)?.[1] as string;
    const post = () => jar.fetch(`${url}/portal/grants/${encodeURIComponent(grantOf['tech-jdoe'] as string)}/credential`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ csrf }).toString() });
    const res = await post();
    expect(res.status).to.equal(200);
    const page = await res.text();
    const passphrase = /id="passphrase">([a-z2-9-]+)</.exec(page)?.[1] as string;
    expect(passphrase).to.match(/^([a-z2-9]{5}-){4}[a-z2-9]{5}$/);
    const data = /href="data:application\/x-pkcs12;base64,([A-Za-z0-9+/=]+)"/.exec(page)?.[1] as string;
    const p12 = forge.pkcs12.pkcs12FromAsn1(forge.asn1.fromDer(Buffer.from(data, 'base64').toString('binary')), passphrase);
    const cert = p12.getBags({ bagType: forge.pki.oids.certBag as string })[forge.pki.oids.certBag as string]?.[0]?.cert as forge.pki.Certificate;
    const key = p12.getBags({ bagType: forge.pki.oids.pkcs8ShroudedKeyBag as string })[forge.pki.oids.pkcs8ShroudedKeyBag as string]?.[0]?.key as forge.pki.rsa.PrivateKey;
    expect(cert.subject.getField('CN').value).to.equal('tech-jdoe.acme-controls');
    expect((cert.publicKey as forge.pki.rsa.PublicKey).n.equals(key.n), 'the key belongs to the certificate').to.equal(true);
    expect(() => forge.pkcs12.pkcs12FromAsn1(forge.asn1.fromDer(Buffer.from(data, 'base64').toString('binary')), 'wrong-passphrase')).to.throw();
    expect((await audit('portal.credential_collected')).at(-1)).to.deep.include({ actor: 'portal:acme-controls/tech-jdoe', subject: `grant:${grantOf['tech-jdoe']}` });

    const again = await post();
    expect(again.status).to.equal(410);
    expect(await again.text()).to.include('Already collected').and.not.include('x-pkcs12');
    expect(await refusals('already_collected')).to.have.length(1);
    const db = new Database(path.join(t.dir, 'wogate.db'), { readonly: true });
    try {
      expect(db.prepare('SELECT sealed, collected_by FROM portal_credentials WHERE grant_id = ?').get(grantOf['tech-jdoe'])).to.deep.equal({ sealed: null, collected_by: 'portal:acme-controls/tech-jdoe' });
    } finally {
      db.close();
    }
  });

  it('refuses a sign-in without MFA with a 403 page and an audit record, and opens no session', async () => {
    const { jar, res, html } = await signIn('tech-nomfa');
    expect(res.status).to.equal(403);
    expect(html).to.include('Multi-factor sign-in required');
    expect(jar.cookies.has('wogate_portal')).to.equal(false);
    expect((await refusals('mfa_missing')).at(-1)?.details).to.include({ status: 403, subject: 'tech-nomfa' });
    expect((await refusals('mfa_missing')).at(-1)?.details).to.deep.include({ amr: ['pwd'] });
  });

  it('refuses a callback whose state was not started in this browser (400, audited)', async () => {
    const victim = new CookieJar();
    const cb = await callbackUrl(victim, 'tech-jdoe');
    // Another browser with its own sign-in under way receives the first one's callback.
    const attacker = new CookieJar();
    await attacker.follow(`${url}/portal/login`, (next) => next.origin === idp.issuer);
    const res = await attacker.fetch(cb);
    expect(res.status).to.equal(400);
    expect(await res.text()).to.include('state mismatch');
    expect(attacker.cookies.has('wogate_portal')).to.equal(false);
    // And a tampered state in the right browser.
    const tampered = new URL(cb);
    tampered.searchParams.set('state', 'x'.repeat(43));
    expect((await victim.fetch(tampered.href)).status).to.equal(400);
    expect(await refusals('state_mismatch')).to.have.length(2);
  });

  it('refuses a replayed authorization code, both as a repeated callback and at the provider', async () => {
    const jar = new CookieJar();
    const first = await callbackUrl(jar, 'tech-rsingh');
    expect((await jar.fetch(first)).status).to.equal(303);
    // The same callback again: its state is spent.
    const again = await jar.fetch(first);
    expect(again.status).to.equal(400);
    // The old code under a fresh, valid state: the provider refuses it (spent, and bound to the first PKCE verifier).
    const fresh = new URL(await callbackUrl(jar, 'tech-rsingh'));
    const replay = new URL(first);
    replay.searchParams.set('state', fresh.searchParams.get('state') as string);
    const res = await jar.fetch(replay.href);
    expect(res.status).to.equal(400);
    expect(await res.text()).to.include('did not confirm this sign-in');
    expect(await refusals('provider_refused')).to.have.length(1);
  });

  it('answers a bad percent-escape and a form in an unsupported charset with a 4xx page, not a 500', async () => {
    const escape = await fetch(`${url}/portal/grants/%ZZ/credential`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'csrf=x' });
    expect(escape.status).to.equal(400);
    expect(await escape.text()).to.include('percent-encoding').and.not.match(/\n\s+at /);
    const charset = await fetch(`${url}/portal/logout`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded; charset=klingon' }, body: 'csrf=x' });
    expect(charset.status).to.equal(415);
    expect(await refusals('bad_request')).to.have.length.at.least(1);
  });

  it('refuses an open redirect in returnTo (400, audited) and returns to a portal path', async () => {
    for (const evil of ['https://evil.example/portal', '//evil.example/portal', '/\\evil.example', '/portal/../v1/grants', 'javascript:alert(1)']) {
      const res = await fetch(`${url}/portal/login?returnTo=${encodeURIComponent(evil)}`, { redirect: 'manual' });
      expect(res.status, evil).to.equal(400);
      expect(res.headers.get('location'), evil).to.equal(null);
    }
    expect(await refusals('open_redirect')).to.have.length(5);
    const ok = await signIn('tech-mkeller', '/portal?view=all');
    expect(ok.url).to.equal(`${url}/portal?view=all`);
  });

  it('signs out with the CSRF token: the old session cookie no longer opens the portal', async () => {
    const { jar, html } = await signIn('tech-mkeller');
    const csrf = CSRF.exec(html)?.[1] as string;
    const old = jar.cookies.get('wogate_portal') as string;
    const out = await jar.fetch(`${url}/portal/logout`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ csrf }).toString() });
    expect(out.status).to.equal(303);
    const page = await (await fetch(`${url}/portal`, { headers: { cookie: `wogate_portal=${old}` } })).text();
    expect(page).to.include('Sign in').and.not.include(grantOf['tech-mkeller']);
    const post = await fetch(`${url}/portal/grants/${encodeURIComponent(grantOf['tech-mkeller'] as string)}/credential`, { method: 'POST', headers: { cookie: `wogate_portal=${old}`, 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ csrf }).toString() });
    expect(post.status).to.equal(401);
  });
});

describe('vendor portal parts: return addresses, sessions, the credential vault, config', () => {
  it('accepts as returnTo only paths inside the portal on this origin, whatever the input', () => {
    expect(safeReturnTo(undefined)).to.equal('/portal');
    expect(safeReturnTo('/portal/grants?x=1')).to.equal('/portal/grants?x=1');
    for (const bad of ['https://evil.example', '//evil.example', '/\\evil.example', '/portal//evil.example', '/portal/../v1', '/v1/grants', 'portal', '/portal\n', ['/portal']]) {
      expect(safeReturnTo(bad), JSON.stringify(bad)).to.equal(undefined);
    }
    fc.assert(fc.property(fc.string({ maxLength: 80 }), (s) => {
      for (const raw of [s, `/portal${s}`, `/${s}`]) {
        const out = safeReturnTo(raw);
        if (out === undefined) continue;
        const resolved = new URL(out, 'https://wogate.example');
        expect(resolved.origin).to.equal('https://wogate.example');
        expect(resolved.pathname.startsWith('/portal')).to.equal(true);
      }
    }));
  });

  it('proves MFA from amr or a configured acr, and from nothing else', () => {
    const o = { requiredAmr: ['mfa', 'otp'], requiredAcr: ['urn:mfa'] };
    expect(provesMfa({ amr: ['pwd', 'otp'] }, o)).to.equal(true);
    expect(provesMfa({ acr: 'urn:mfa' }, o)).to.equal(true);
    expect(provesMfa({ amr: ['pwd'], acr: 'urn:pwd' }, o)).to.equal(false);
    expect(provesMfa({ amr: 'otp' }, o), 'amr must be an array').to.equal(false);
    expect(provesMfa({ acr: 'urn:mfa' }, { requiredAmr: ['mfa'] }), 'acr counts only when configured').to.equal(false);
  });

  describe('sessions', () => {
    let store: SqliteStore;
    beforeEach(async () => {
      store = new SqliteStore(':memory:');
      await store.migrate();
    });
    afterEach(() => store.close());

    const issue = async (m: SessionManager, at: Date) => {
      const cookies: string[] = [];
      const res = { append: (_h: string, v: string) => cookies.push(v) } as unknown as ExpressResponse;
      await m.create(res, { technicianId: 'tech-jdoe', vendorId: 'acme-controls', subject: 'tech-jdoe' }, at);
      const id = /^__Host-wogate_portal=([^;]+)/.exec(cookies[0] as string)?.[1] as string;
      expect(cookies[0]).to.match(/; Path=\/; HttpOnly; SameSite=Lax; Max-Age=\d+; Secure$/);
      return { headers: { cookie: `__Host-wogate_portal=${id}` } } as unknown as ExpressRequest;
    };

    it('ends a session after 30 idle minutes even within its lifetime', async () => {
      const m = new SessionManager(store.portal, cookieNames(true), 8 * 3_600_000, 30 * 60_000);
      const t0 = new Date('2026-12-01T08:00:00Z');
      const req = await issue(m, t0);
      expect((await m.read(req, new Date(t0.getTime() + 29 * 60_000)))?.technicianId).to.equal('tech-jdoe');
      expect(await m.read(req, new Date(t0.getTime() + 29 * 60_000 + 30 * 60_000))).to.equal(undefined);
      expect(await m.read(req, new Date(t0.getTime() + 30 * 60_000)), 'deleted, not just hidden').to.equal(undefined);
    });

    it('ends a session at its absolute lifetime however active it is', async () => {
      const m = new SessionManager(store.portal, cookieNames(true), 60 * 60_000, 30 * 60_000);
      const t0 = new Date('2026-12-01T08:00:00Z');
      const req = await issue(m, t0);
      for (let min = 20; min < 60; min += 20) expect(await m.read(req, new Date(t0.getTime() + min * 60_000))).to.not.equal(undefined);
      expect(await m.read(req, new Date(t0.getTime() + 60 * 60_000))).to.equal(undefined);
    });

    it('stores only hashes of the session id and CSRF token', async () => {
      const m = new SessionManager(store.portal, cookieNames(true), 3_600_000, 60_000);
      const req = await issue(m, new Date());
      const s = await m.read(req, new Date());
      const id = (req.headers.cookie as string).split('=')[1] as string;
      expect(await store.portal.getSession(id)).to.equal(undefined);
      expect(s?.csrfHash).to.not.equal(s?.csrf);
    });
  });

  it('seals a credential to its grant: the sealed text of one grant does not open as another', async () => {
    const store = new SqliteStore(':memory:');
    await store.migrate();
    try {
      const vault = new CredentialVault(store, randomBytes(32));
      const keys = forge.pki.rsa.generateKeyPair(1024);
      const cert = forge.pki.createCertificate();
      cert.publicKey = keys.publicKey;
      cert.serialNumber = '01';
      cert.validity.notBefore = new Date();
      cert.validity.notAfter = new Date(Date.now() + 3_600_000);
      cert.setSubject([{ name: 'commonName', value: 'tech-jdoe.acme-controls' }]);
      cert.setIssuer([{ name: 'commonName', value: 'test' }]);
      cert.sign(keys.privateKey);
      const credential = { serial: '01', commonName: 'tech-jdoe.acme-controls', notBefore: cert.validity.notBefore, notAfter: cert.validity.notAfter, certificatePem: forge.pki.certificateToPem(cert), privateKeyPem: forge.pki.privateKeyToPem(keys.privateKey), chainPem: '' };
      await vault.putEntry('e-1', 'g-1', credential, new Date());
      await vault.putEntry('e-2', 'g-2', credential, new Date());
      // Someone with write access to the store moves g-1's sealed credential onto g-2.
      store.raw().prepare("UPDATE portal_credentials SET sealed = (SELECT sealed FROM portal_credentials WHERE entry_key = 'e-1') WHERE entry_key = 'e-2'").run();
      await vault.takeEntry('e-2', 'test', new Date()).then(() => expect.fail('opened'), (e: Error) => expect(e.message).to.match(/does not open/));
      const taken = await vault.takeEntry('e-1', 'test', new Date());
      expect(taken.result === 'taken' && taken.credential.privateKeyPem).to.equal(credential.privateKeyPem);
      expect((await vault.takeEntry('e-1', 'test', new Date())).result).to.equal('collected');
    } finally {
      await store.close();
    }
  });

  it('refuses a portal config with a plain-http issuer off loopback, a short key, or an idle timeout beyond the lifetime', () => {
    const dir = tmpDir();
    try {
      const base = { oidc: { issuer: 'https://idp.example', clientId: 'wogate', clientSecret: 'env:X', redirectUri: 'https://wogate.example/portal/callback' }, credentialKey: 'env:K' };
      const load = (portal: unknown) => () => loadConfig(exampleConfig(dir, (c) => { c.portal = portal; }), {});
      expect(load(base)()).to.have.nested.property('portal.oidc.technicianClaim', 'sub');
      expect(load({ ...base, oidc: { ...base.oidc, issuer: 'http://idp.example' } })).to.throw(/\/portal\/oidc\/issuer: must be an https URL/);
      expect(load({ ...base, idleTimeout: '9h' })).to.throw(/\/portal\/idleTimeout/);
      expect(load({ ...base, credentialKey: 'plaintext-key' })).to.throw(/credentialKey/);
      expect(() => CredentialVault.parseKey(randomBytes(16).toString('base64'), 'portal.credentialKey')).to.throw(/32 bytes/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
