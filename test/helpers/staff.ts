import { demoOrder } from '../../src/demo/demo.js';
import { startDaemon, until, type TestDaemon } from './daemon.js';
import { CookieJar, freePort, startPortalProvider, type PortalOidcProvider, type PortalTestUser } from './oidc-portal.js';

/**
 * A daemon with the staff pages (and the vendor portal, to show the two never share a session)
 * signing in at a real OpenID provider (oidc-provider) on loopback, and two open work orders of
 * the demo vendor giving four grants on the demo gateway.
 */
export interface StaffWorld {
  readonly t: TestDaemon;
  readonly idp: PortalOidcProvider;
  /** The daemon's base URL. */
  readonly url: string;
  /** Signs `user` in at /staff through the real provider; the jar holds the session. */
  signIn(user: string, returnTo?: string): Promise<{ jar: CookieJar; res: Response; html: string; url: string }>;
  close(): Promise<void>;
}

export const STAFF_USERS: Readonly<Record<string, PortalTestUser>> = {
  'sec-ana': { mfa: true, claims: { wogate_roles: ['ot-operators'], preferred_username: 'ana' } },
  'sec-ola': { mfa: true, claims: { wogate_roles: ['ot-operators'], preferred_username: 'ola' } },
  'sec-vic': { mfa: true, claims: { wogate_roles: 'ot-viewers', preferred_username: 'vic' } },
  'sec-root': { mfa: true, claims: { wogate_roles: ['ot-viewers', 'ot-admins'], preferred_username: 'root' } },
  'sec-nomfa': { mfa: false, claims: { wogate_roles: ['ot-operators'] } },
  'sec-norole': { mfa: true, claims: { wogate_roles: ['canteen'] } },
  'tech-jdoe': { mfa: true },
};

export const demoHook = (id: string) => {
  const now = new Date();
  return demoOrder(id, 'APPR', now, now);
};

/** `users`: the provider's accounts (read at each sign-in, so a test may change a user's claims later); `clock`: the daemon's. */
export async function startStaffWorld(o: { users?: Record<string, PortalTestUser>; clock?: () => Date } = {}): Promise<StaffWorld> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const idp = await startPortalProvider({ redirectUri: [`${url}/staff/callback`, `${url}/portal/callback`], users: o.users ?? STAFF_USERS, claims: ['wogate_roles', 'preferred_username'] });
  process.env.STAFF_TEST_CLIENT_SECRET = idp.clientSecret;
  process.env.STAFF_TEST_CREDENTIAL_KEY = Buffer.alloc(32, 7).toString('base64');
  const t = await startDaemon({
    ...(o.clock ? { clock: o.clock } : {}),
    edit: (c) => {
      c.server.port = port;
      // Many sign-ins and pages from one address in a minute: the limiters' own tests are in http-hardening.
      c.server.rateLimits = { ...c.server.rateLimits, login: { perMinute: 1000 }, admin: { perMinute: 1000 } };
      c.auth = { oidc: { issuer: idp.issuer, audience: 'wogate-admin', roles: { 'ot-viewers': 'viewer', 'ot-operators': 'operator', 'ot-admins': 'admin' } } };
      c.staff = { oidc: { clientId: idp.clientId, clientSecret: 'env:STAFF_TEST_CLIENT_SECRET', redirectUri: `${url}/staff/callback` } };
      c.portal = { oidc: { issuer: idp.issuer, clientId: idp.clientId, clientSecret: 'env:STAFF_TEST_CLIENT_SECRET', redirectUri: `${url}/portal/callback` }, credentialKey: 'env:STAFF_TEST_CREDENTIAL_KEY' };
    },
  });
  for (const id of ['WO-1', 'WO-2']) if ((await t.hook(demoHook(id))).status !== 202) throw new Error(`hook ${id} refused`);
  await until(async () => (await t.daemon.runtime.store.listGrants({ states: ['active'] })).length === 4, 'four grants active');
  return {
    t,
    idp,
    url,
    async signIn(user, returnTo) {
      idp.loginAs(user);
      const jar = new CookieJar();
      const { res, url: at } = await jar.follow(`${url}/staff/login${returnTo ? `?returnTo=${encodeURIComponent(returnTo)}` : ''}`);
      return { jar, res, html: await res.text(), url: at };
    },
    async close() {
      await t.stop();
      await idp.close();
      delete process.env.STAFF_TEST_CLIENT_SECRET;
      delete process.env.STAFF_TEST_CREDENTIAL_KEY;
    },
  };
}
