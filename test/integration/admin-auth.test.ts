import { generateKeyPair, SignJWT } from 'jose';
import fs from 'node:fs';
import { Writable } from 'node:stream';
import { expect } from 'chai';
import express from 'express';
import { OidcTokenError, OidcUnavailableError, OidcVerifier, type OidcOptions } from '../../src/api/oidc.js';
import { OPENAPI } from '../../src/api/openapi.js';
import { bearerRoutes, checkRouteTable, GUARDS, ROLES, ROUTES, roleAtLeast, type BearerRoute, type Role } from '../../src/api/roles.js';
import { createToken, SCOPES, type Scope } from '../../src/api/tokens.js';
import { demoOrder } from '../../src/demo/demo.js';
import { createLogger } from '../../src/log.js';
import { loadConfig } from '../../src/config/config.js';
import { exampleConfig, startDaemon, until, type TestDaemon } from '../helpers/daemon.js';
import { tmpDir } from '../helpers/world.js';
import { OTHER_RESOURCE, startOidcProvider, WOGATE_AUDIENCE, type OidcTestProvider, type TestUser } from '../helpers/oidc.js';

// Claim values as an organisation's provider would send them (groups), mapped in config to wogate roles.
const ROLE_MAP: Record<string, Role> = { 'wogate-viewers': 'viewer', 'wogate-operators': 'operator', 'wogate-policy': 'policy-admin', 'wogate-admins': 'admin' };
const USER_OF: Record<Role, string> = { viewer: 'vic-viewer', operator: 'olga-operator', 'policy-admin': 'pat-policy', admin: 'ada-admin' };
const USERS: Record<string, TestUser> = {
  'vic-viewer': { claims: { wogate_roles: ['wogate-viewers'] } },
  // A single string, not an array; and PS256.
  'olga-operator': { claims: { wogate_roles: 'wogate-operators' }, alg: 'PS256' },
  'pat-policy': { claims: { wogate_roles: ['wogate-policy', 'wogate-viewers'] }, alg: 'ES256' },
  // Several values: the highest mapped role wins; unmapped ones are ignored. EdDSA.
  'ada-admin': { claims: { wogate_roles: ['unrelated-group', 'wogate-viewers', 'wogate-admins'] }, alg: 'EdDSA' },
  'nora-norole': { claims: { wogate_roles: ['unrelated-group'] } },
  'noel-noclaim': {},
};

type Fetched = { status: number; text: string; code?: string; message?: string; wwwAuthenticate: string | null };

const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');

describe('admin API authentication: OIDC bearer tokens, roles, and the route table', function () {
  this.timeout(60_000);
  let idp: OidcTestProvider;
  let otherIdp: OidcTestProvider;
  let t: TestDaemon;
  const logLines: string[] = [];
  /** Every bearer any test presented, so none may show up in a response, log line or audit record. */
  const presented = new Set<string>();
  const tokens: Record<string, string> = {};

  const call = async (method: string, path: string, bearer?: string, body?: unknown): Promise<Fetched> => {
    if (bearer) presented.add(bearer);
    const res = await fetch(`${t.daemon.url}${path}`, {
      method,
      headers: { ...(bearer ? { authorization: `Bearer ${bearer}` } : {}), ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    let error: { code?: string; message?: string } = {};
    try {
      error = (JSON.parse(text) as { error?: typeof error }).error ?? {};
    } catch {
      // not JSON: the assertions on status say what was wrong
    }
    for (const b of presented) expect(text, `${method} ${path} response quotes a bearer`).not.to.include(b);
    return { status: res.status, text, ...(error.code ? { code: error.code } : {}), ...(error.message ? { message: error.message } : {}), wwwAuthenticate: res.headers.get('www-authenticate') };
  };
  const concrete = (p: string) => p.replace(/:[A-Za-z]+/g, 'g-does-not-exist');
  // A body each POST can read; the access block names its access by a grant that does not exist (404).
  const bodyFor = (rule: BearerRoute) => ({ reason: 'walking the route table', ...(rule.path === '/v1/access/revoke' ? { grantId: 'g-does-not-exist' } : {}) });
  const hit = (rule: BearerRoute, bearer?: string) => call(rule.method, concrete(rule.path), bearer, rule.method === 'POST' ? bodyFor(rule) : undefined);

  before(async () => {
    idp = await startOidcProvider({ users: USERS });
    otherIdp = await startOidcProvider({ users: { 'ada-admin': USERS['ada-admin'] as TestUser } });
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        logLines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
        cb();
      },
    });
    t = await startDaemon({
      log: createLogger({ level: 'debug', format: 'json' }, sink),
      edit: (c) => {
        c.auth = { oidc: { issuer: idp.issuer, audience: WOGATE_AUDIENCE, roleClaim: 'wogate_roles', roles: ROLE_MAP, clockTolerance: '5s' } };
        // The walk sends a few hundred requests; the per-address admin limit is not what is under test.
        c.server.rateLimits = { ...(c.server.rateLimits ?? {}), admin: { perMinute: 1_000_000 } };
      },
    });
    for (const [role, user] of Object.entries(USER_OF)) tokens[role] = await idp.token(user);
    tokens.norole = await idp.token('nora-norole');
    tokens.noclaim = await idp.token('noel-noclaim');
    // Genuine tokens from the right provider, for another resource server.
    tokens.wrongAudience = await idp.token('ada-admin', { resource: OTHER_RESOURCE });
    // Genuine tokens from another (real) provider: same user, same claims, another issuer.
    tokens.wrongIssuer = await otherIdp.token('ada-admin');
    // Signed with the provider's own key and kid; only the claim under test is off.
    const now = Math.floor(Date.now() / 1000);
    tokens.expired = await idp.sign({ sub: 'ada-admin', wogate_roles: ['wogate-admins'], iat: now - 3600, exp: now - 600 });
    tokens.notYetValid = await idp.sign({ sub: 'ada-admin', wogate_roles: ['wogate-admins'], nbf: now + 600 });
    tokens.issuerSpoofedWithRealKey = await idp.sign({ sub: 'ada-admin', wogate_roles: ['wogate-admins'], iss: `${idp.issuer}/evil` });
    tokens.noSub = await idp.sign({ wogate_roles: ['wogate-admins'] }, { omit: ['sub'] });
    tokens.noExp = await idp.sign({ sub: 'ada-admin', wogate_roles: ['wogate-admins'] }, { omit: ['exp'] });
    const claims = { iss: idp.issuer, aud: WOGATE_AUDIENCE, sub: 'ada-admin', wogate_roles: ['wogate-admins'], iat: now, exp: now + 300 };
    tokens.algNone = `${b64({ alg: 'none', typ: 'at+jwt' })}.${b64(claims)}.`;
    // The provider's real kid, signed with a key an attacker made.
    const { privateKey: attackerKey } = await generateKeyPair('RS256');
    tokens.forged = await new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: idp.currentKids().RS256, typ: 'at+jwt' }).sign(attackerKey);
    // HS256 "signed" with something public (the classic RS/HS key-confusion attack).
    tokens.hs256 = await new SignJWT(claims).setProtectedHeader({ alg: 'HS256', kid: idp.currentKids().RS256 }).sign(new TextEncoder().encode(idp.issuer.padEnd(32, '.')));
    // A real signature over different claims, glued onto escalated claims.
    const real = tokens.viewer as string;
    const [h, , s] = real.split('.');
    tokens.tampered = `${h}.${b64({ ...claims, sub: 'vic-viewer' })}.${s}`;
  });

  after(async () => {
    await t?.stop();
    await idp?.close();
    await otherIdp?.close();
  });

  describe('every bearer route in the table', () => {
    for (const rule of bearerRoutes()) {
      describe(`${rule.method} ${rule.path} (at least ${rule.minRole}; API token scope ${rule.scope})`, () => {
        it('refuses a request without a token with 401 AUTH_MISSING', async () => {
          const r = await hit(rule);
          expect(r.status).to.equal(401);
          expect(r.code).to.equal('AUTH_MISSING');
          expect(r.wwwAuthenticate).to.equal('Bearer realm="wogate"');
        });

        const invalid: [string, string, RegExp][] = [
          ['expired', 'expired', /expired/],
          ['for another audience', 'wrongAudience', /audience does not include wogate-api/],
          ['from another issuer', 'wrongIssuer', /not issued by the configured issuer/],
          ['with the real key but a spoofed issuer', 'issuerSpoofedWithRealKey', /not issued by the configured issuer/],
          ['not valid yet', 'notYetValid', /not valid yet/],
          ['with alg none', 'algNone', /unsigned/],
          ['with a forged signature under the provider\'s kid', 'forged', /signature does not verify/],
          ['HS256-signed (key confusion)', 'hs256', /algorithm is not one of/],
          ['with claims changed after signing', 'tampered', /signature does not verify/],
          ['without a subject', 'noSub', /"sub" claim/],
          ['without an expiry', 'noExp', /"exp" claim/],
        ];
        for (const [what, key, message] of invalid) {
          it(`refuses a token ${what} with 401 AUTH_INVALID and says why`, async () => {
            const r = await hit(rule, tokens[key]);
            expect(r.status, r.text).to.equal(401);
            expect(r.code).to.equal('AUTH_INVALID');
            expect(r.message).to.match(message);
            expect(r.wwwAuthenticate).to.equal('Bearer realm="wogate", error="invalid_token"');
          });
        }

        it('refuses garbage and wrong schemes with 401', async () => {
          expect((await hit(rule, 'not-a-jwt')).status).to.equal(401);
          expect((await hit(rule, 'a.b.c')).status).to.equal(401);
          const basic = await fetch(`${t.daemon.url}${concrete(rule.path)}`, { method: rule.method, headers: { authorization: 'Basic dXNlcjpwYXNz' } });
          expect(basic.status).to.equal(401);
        });

        const lower = ROLES.filter((r) => !roleAtLeast(r, rule.minRole));
        it(`refuses a valid token whose role is too low (${lower.length ? lower.join(', ') : 'none below viewer'}) or unmapped with 403`, async () => {
          for (const role of lower) {
            const r = await hit(rule, tokens[role]);
            expect(r.status, `${role}: ${r.text}`).to.equal(403);
            expect(r.code).to.equal('AUTH_FORBIDDEN');
            expect(r.message).to.include(`needs the ${rule.minRole} role`);
            expect(r.wwwAuthenticate).to.equal('Bearer realm="wogate", error="insufficient_scope"');
          }
          for (const key of ['norole', 'noclaim']) {
            const r = await hit(rule, tokens[key]);
            expect(r.status, `${key}: ${r.text}`).to.equal(403);
            expect(r.message).to.match(/no value mapped to a wogate role/);
          }
        });

        it(`lets ${rule.minRole} and every higher role through`, async () => {
          for (const role of ROLES.filter((r) => roleAtLeast(r, rule.minRole))) {
            const r = await hit(rule, tokens[role]);
            expect(r.status, `${role}: ${r.text}`).to.be.oneOf([200, 404]);
          }
        });

        it(`admits a wgt_ API token with scope ${rule.scope} or admin, and refuses other scopes with 403`, async () => {
          const own = (await createToken(t.daemon.runtime.store, 'integration', [rule.scope], new Date())).token;
          const admin = (await createToken(t.daemon.runtime.store, 'integration-admin', ['admin'], new Date())).token;
          const others = SCOPES.filter((s): s is Scope => s !== rule.scope && s !== 'admin');
          const other = (await createToken(t.daemon.runtime.store, 'integration-other', others, new Date())).token;
          expect((await hit(rule, own)).status).to.be.oneOf([200, 404]);
          expect((await hit(rule, admin)).status).to.be.oneOf([200, 404]);
          const r = await hit(rule, other);
          expect(r.status).to.equal(403);
          expect(r.message).to.include(`"${rule.scope}" scope`);
        });
      });
    }
  });

  it('audits each refusal with the actor, the reason and the route, never the token (unauthenticated ones once a window, with a count)', async () => {
    const rule = ROUTES.find((r) => r.path === '/v1/grants/:id/revoke') as BearerRoute;
    await hit(rule, tokens.expired);
    await hit(rule, tokens.viewer);
    await call('GET', '/v1/grants', tokens.wrongAudience);
    await call('GET', '/v1/grants');
    for (const key of ['wrongIssuer', 'algNone', 'forged', 'hs256', 'norole', 'notYetValid', 'noSub']) await call('GET', '/v1/explain', tokens[key]);
    await call('GET', '/v1/explain', (await createToken(t.daemon.runtime.store, 'reader', ['grants:read'], new Date())).token);
    await t.daemon.refusals.flush();
    const records = await t.daemon.runtime.store.readAudit(0, 100_000);
    const refused = records.filter((r) => r.action === 'auth.refused');
    const expired = refused.findLast((r) => r.details.reason === 'expired');
    expect(expired?.actor).to.equal('remote:127.0.0.1');
    expect(expired?.subject).to.equal('auth:expired');
    expect(expired?.details).to.include({ aggregated: true, status: 401, code: 'AUTH_INVALID' });
    expect(expired?.details.samples).to.deep.include({ reason: 'token has expired', method: 'POST', path: '/v1/grants/g-does-not-exist/revoke' });
    const tooLow = refused.findLast((r) => r.details.reason === 'role');
    expect(tooLow?.actor).to.equal('oidc:vic-viewer');
    expect(tooLow?.details).to.include({ status: 403, code: 'AUTH_FORBIDDEN', route: 'POST /v1/grants/:id/revoke' });
    expect((refused.findLast((r) => r.details.reason === 'wrong_audience')?.details.samples as { path: string }[]).map((s) => s.path)).to.include('/v1/grants');
    for (const reason of ['missing', 'wrong_issuer', 'unsigned', 'bad_signature', 'alg_not_allowed', 'no_role', 'scope', 'not_yet_valid', 'missing_claim']) {
      expect(refused.some((r) => r.details.reason === reason), `an audit record with reason ${reason}`).to.equal(true);
    }
    expect((await t.daemon.runtime.audit.verify()).ok).to.equal(true);
  });

  it('records the signed-in operator as oidc:<sub> with their role on a revoke, and the grant stays off', async () => {
    await t.hook(demoOrder('WO-OIDC-1', 'APPR', new Date(), new Date()));
    await until(async () => (await t.daemon.runtime.store.listGrants({ states: ['active'], orderKey: 'demo-cmms/WO-OIDC-1' })).length > 0, 'a grant for WO-OIDC-1');
    const [g] = await t.daemon.runtime.store.listGrants({ states: ['active'], orderKey: 'demo-cmms/WO-OIDC-1' });
    const list = await call('GET', '/v1/grants?order=demo-cmms/WO-OIDC-1', tokens.viewer);
    expect(list.status).to.equal(200);
    expect(list.text).to.include(g?.id);
    const res = await call('POST', `/v1/grants/${g?.id}/revoke`, tokens.operator, { reason: 'technician left site early' });
    expect(res.status, res.text).to.equal(200);
    expect((JSON.parse(res.text) as { grant: { state: string } }).grant.state).to.equal('revoked');
    const rec = (await t.daemon.runtime.store.readAudit(0, 100_000)).find((r) => r.action === 'grant.revoke_requested' && r.subject === g?.id);
    expect(rec?.actor).to.equal('oidc:olga-operator');
    expect(rec?.details).to.include({ role: 'operator', via: 'api' });
  });

  it('refuses an OIDC token with 401 "OIDC is not configured" when auth.oidc is absent, and still takes wgt_ tokens', async () => {
    const plain = await startDaemon({ edit: (c) => delete c.auth });
    try {
      const res = await fetch(`${plain.daemon.url}/v1/grants`, { headers: { authorization: `Bearer ${tokens.admin}` } });
      expect(res.status).to.equal(401);
      const body = (await res.json()) as { error: { code: string; message: string } };
      expect(body.error.message).to.match(/OIDC is not configured/);
      const wgt = (await createToken(plain.daemon.runtime.store, 'ci', ['grants:read'], new Date())).token;
      presented.add(wgt);
      expect((await fetch(`${plain.daemon.url}/v1/grants`, { headers: { authorization: `Bearer ${wgt}` } })).status).to.equal(200);
    } finally {
      await plain.stop();
    }
  });

  it('answers 503 AUTH_UNAVAILABLE (audited) when the provider cannot be reached, and grants nothing', async () => {
    const dead = await startDaemon({ edit: (c) => (c.auth = { oidc: { issuer: 'http://127.0.0.1:1', audience: WOGATE_AUDIENCE, roles: ROLE_MAP } }) });
    try {
      const token = await idp.sign({ iss: 'http://127.0.0.1:1', sub: 'ada-admin', wogate_roles: ['wogate-admins'] });
      presented.add(token);
      const res = await fetch(`${dead.daemon.url}/v1/grants`, { headers: { authorization: `Bearer ${token}` } });
      expect(res.status).to.equal(503);
      const text = await res.text();
      expect(text).to.not.include(token);
      expect((JSON.parse(text) as { error: { code: string } }).error.code).to.equal('AUTH_UNAVAILABLE');
      await dead.daemon.refusals.flush();
      const rec = (await dead.daemon.runtime.store.readAudit(0, 10_000)).findLast((r) => r.action === 'auth.refused');
      expect(rec?.details).to.include({ status: 503, reason: 'provider_unavailable', count: 1 });
    } finally {
      await dead.stop();
    }
  });

  it('declares every route of the table in the OpenAPI document with both bearer schemes', () => {
    const paths = OPENAPI.paths as Record<string, Record<string, { security?: unknown[]; 'x-wogate-min-role'?: string }>>;
    for (const r of ROUTES) {
      const op = paths[r.path.replace(/:([A-Za-z]+)/g, '{$1}')]?.[r.method.toLowerCase()];
      expect(op, `${r.method} ${r.path} in /openapi.json`).to.not.equal(undefined);
      if (r.auth === 'bearer') {
        expect(op?.security).to.deep.equal([{ apiToken: [] }, { oidc: [] }]);
        expect(op?.['x-wogate-min-role']).to.equal(r.minRole);
      }
    }
  });

  it('shows no bearer in any log line or audit record', async () => {
    expect(presented.size).to.be.greaterThan(10);
    const audit = JSON.stringify(await t.daemon.runtime.store.readAudit(0, 100_000));
    expect(logLines.some((l) => l.includes('admin API request refused')), 'refusals are logged').to.equal(true);
    for (const b of presented) {
      // The signature part alone would be enough to find the token again: look for it too.
      const parts = [b, ...b.split('.').filter((p) => p.length >= 16)];
      for (const p of parts) {
        expect(logLines.find((l) => l.includes(p)), 'a log line quotes a bearer').to.equal(undefined);
        expect(audit.includes(p), 'the audit log quotes a bearer').to.equal(false);
      }
    }
  });
});

describe('the route table guards the app at start', () => {
  const guarded = (rule: BearerRoute) => Object.assign((_q: unknown, _s: unknown, n: () => void) => n(), { [GUARDS]: rule });

  it('refuses a router with a /v1 route that is not in the table', () => {
    const v1 = express.Router();
    v1.get('/secret-thing', (_q, s) => void s.end());
    expect(() => checkRouteTable([{ prefix: '/v1', router: v1 }])).to.throw(/GET \/v1\/secret-thing is not in the route table/);
  });

  it('refuses a table route declared without its guard', () => {
    const v1 = express.Router();
    v1.get('/grants', (_q, s) => void s.end());
    expect(() => checkRouteTable([{ prefix: '/v1', router: v1 }])).to.throw(/GET \/v1\/grants is not guarded/);
  });

  it('refuses a table entry with no route behind it', () => {
    const v1 = express.Router();
    const rule = bearerRoutes()[0] as BearerRoute;
    v1.get(rule.path.slice(3), guarded(rule), (_q, s) => void s.end());
    expect(() => checkRouteTable([{ prefix: '/v1', router: v1 }])).to.throw(/route table entries without a route/);
  });
});

describe('OIDC verifier against the real provider', function () {
  this.timeout(30_000);
  let idp: OidcTestProvider;
  before(async () => {
    idp = await startOidcProvider({
      users: {
        kc: { claims: { realm_access: { roles: ['offline_access', 'wogate-operators'] } } },
        auth0: { claims: { 'https://wogate.example/roles': ['wogate-admins'] } },
        ops: { claims: { wogate_roles: ['wogate-operators'] } },
      },
    });
  });
  after(async () => idp?.close());

  const verifier = (o: Partial<OidcOptions> = {}) =>
    new OidcVerifier({ issuer: idp.issuer, audience: WOGATE_AUDIENCE, roleClaim: 'wogate_roles', roles: ROLE_MAP, clockToleranceSec: 5, clock: () => new Date(), ...o });

  it('reads roles from a dotted claim path (Keycloak realm_access.roles)', async () => {
    const id = await verifier({ roleClaim: 'realm_access.roles' }).verify(await idp.token('kc'));
    expect(id).to.deep.equal({ sub: 'kc', role: 'operator', person: 'kc' });
  });

  it('reads roles from a namespaced claim whose name holds dots (Auth0 style)', async () => {
    const id = await verifier({ roleClaim: 'https://wogate.example/roles' }).verify(await idp.token('auth0'));
    expect(id).to.deep.equal({ sub: 'auth0', role: 'admin', person: 'auth0' });
  });

  it('does not map a claim value through the object prototype', async () => {
    const v = verifier({ roles: { 'wogate-operators': 'operator' } });
    const id = await v.verify(await idp.sign({ sub: 'x', wogate_roles: ['toString', 'constructor', '__proto__'] }));
    expect(id.role).to.equal(undefined);
  });

  it('refuses a subject with control characters (it would end up in audit actors and log lines)', async () => {
    const e = await verifier().verify(await idp.sign({ sub: 'mallory\nactor: admin' })).catch((x: unknown) => x);
    expect(e).to.be.instanceOf(OidcTokenError).with.property('reason', 'invalid_claim');
  });

  it('uses the clock it is given, with the configured tolerance, for exp and nbf', async () => {
    const token = await idp.token('ops');
    const exp = (JSON.parse(Buffer.from(token.split('.')[1] as string, 'base64url').toString()) as { exp: number }).exp;
    await verifier({ clock: () => new Date((exp + 4) * 1000) }).verify(token);
    const late = await verifier({ clock: () => new Date((exp + 6) * 1000) }).verify(token).catch((e: unknown) => e);
    expect(late).to.be.instanceOf(OidcTokenError).with.property('reason', 'expired');
  });

  it('picks up a rotated signing key without a restart, and keeps accepting the old key while it is published', async () => {
    const v = verifier({ jwksCooldownMs: 0 });
    const before = await idp.token('ops');
    expect((await v.verify(before)).sub).to.equal('ops');
    const oldKid = idp.currentKids().RS256;
    await idp.rotateKeys();
    expect(idp.currentKids().RS256).to.not.equal(oldKid);
    const after = await idp.token('ops');
    expect(JSON.parse(Buffer.from(after.split('.')[0] as string, 'base64url').toString())).to.include({ kid: idp.currentKids().RS256 });
    expect((await v.verify(after)).role).to.equal('operator');
    expect((await v.verify(before)).role, 'old key still published').to.equal('operator');
    await idp.rotateKeys({ dropOld: true });
    await v.verify(await idp.token('ops'));
    const dropped = await v.verify(before).catch((e: unknown) => e);
    expect(dropped).to.be.instanceOf(OidcTokenError).with.property('reason', 'unknown_key');
  });

  it('does not fetch the provider\'s keys for a token that names another issuer', async () => {
    const v = verifier();
    const n = idp.requests.length;
    const e = await v.verify(await idp.sign({ iss: 'https://elsewhere.example' })).catch((x: unknown) => x);
    expect(e).to.be.instanceOf(OidcTokenError).with.property('reason', 'wrong_issuer');
    expect(idp.requests.slice(n)).to.deep.equal([]);
  });

  it('reports an unreachable provider as unavailable, not as a bad token', async () => {
    const v = verifier({ issuer: 'http://127.0.0.1:1', fetchTimeoutMs: 2000 });
    const e = await v.verify(await idp.sign({ iss: 'http://127.0.0.1:1' })).catch((x: unknown) => x);
    expect(e).to.be.instanceOf(OidcUnavailableError);
  });

  it('refuses a discovery document that names another issuer', async () => {
    const v = verifier({ issuer: `${idp.issuer}/` });
    const e = await v.discover().catch((x: unknown) => x);
    expect(e).to.be.instanceOf(OidcUnavailableError);
    expect((e as Error).message).to.match(/names issuer/);
  });
});

describe('config: auth.oidc', () => {
  let dir: string;
  beforeEach(() => {
    dir = tmpDir();
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));
  const load = (oidc: Record<string, unknown>) => loadConfig(exampleConfig(dir, (c) => (c.auth = { oidc })));
  const base = { issuer: 'https://login.example.com/realms/plant', audience: WOGATE_AUDIENCE, roles: { 'wogate-admins': 'admin' } };

  it('reads issuer, audience, role claim, person claim, role map and clock tolerance, with defaults', () => {
    expect(load(base).auth.oidc).to.deep.equal({ ...base, roleClaim: 'wogate_roles', personClaim: 'sub', clockToleranceSec: 30 });
    expect(load({ ...base, personClaim: 'preferred_username' }).auth.oidc).to.include({ personClaim: 'preferred_username' });
    expect(load({ ...base, roleClaim: 'realm_access.roles', clockTolerance: '10s' }).auth.oidc).to.include({ roleClaim: 'realm_access.roles', clockToleranceSec: 10 });
  });

  it('refuses a plain-http issuer off loopback, a role that does not exist, a tolerance over 5m, and a missing audience', () => {
    expect(() => load({ ...base, issuer: 'http://login.example.com' })).to.throw(/\/auth\/oidc\/issuer: must be an https URL/);
    expect(() => load({ ...base, roles: { 'wogate-admins': 'root' } })).to.throw(/\/auth\/oidc\/roles\/wogate-admins: must be one of: viewer, operator, policy-admin, admin/);
    expect(() => load({ ...base, clockTolerance: '10m' })).to.throw(/clockTolerance: at most 5m/);
    expect(() => load({ issuer: base.issuer, roles: base.roles })).to.throw(/\/auth\/oidc\/audience: is required/);
  });
});
