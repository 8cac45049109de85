import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { inspect } from 'node:util';
import { expect } from 'chai';
import express from 'express';
import nock from 'nock';
import { createToken } from '../../src/api/tokens.js';
import { demoOrder } from '../../src/demo/demo.js';
import type { Logger } from '../../src/log.js';
import { startDaemon, until, type TestDaemon } from '../helpers/daemon.js';
import { CookieJar, freePort, startPortalProvider, type PortalOidcProvider } from '../helpers/oidc-portal.js';
import { tmpDir } from '../helpers/world.js';

// A canary is a secret value nobody would write by accident: if one shows up in a log line, an audit
// record, the SQLite file or an HTTP answer, a secret leaked, and the test names the place.

const rand = () => randomBytes(6).toString('hex');
const VAULT = 'https://vault.canary.test:8200';

/** Every call, with its meta printed the way a console transport or a crash dump would see it (Error internals included). */
function recordingLogger(lines: string[], bound: Record<string, unknown> = {}): Logger {
  const rec = (level: string) => (msg: string, meta?: Record<string, unknown>) => {
    lines.push(`${level} ${msg} ${inspect({ ...bound, ...meta }, { depth: 20, showHidden: true, breakLength: Infinity })}`);
  };
  return { debug: rec('debug'), info: rec('info'), warn: rec('warn'), error: rec('error'), child: (meta) => recordingLogger(lines, { ...bound, ...meta }) };
}

/** The remote of the http target: refuses the first provisions with an error page that echoes the credentials it was sent. */
async function echoingGateway(failFirst: number) {
  const seen: { method: string; authorization?: string; key?: string }[] = [];
  const open = new Set<string>();
  let failures = 0;
  const app = express();
  app.use(express.json());
  app.use((req, _res, next) => {
    seen.push({ method: req.method, ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}), ...(typeof req.headers['x-gateway-key'] === 'string' ? { key: req.headers['x-gateway-key'] } : {}) });
    next();
  });
  app.put('/access/:id', (req, res) => {
    if (failures < failFirst) {
      failures++;
      // What a misconfigured reverse proxy's debug page does: print the request headers back.
      res.status(502).type('application/json').send(JSON.stringify({ error: 'upstream refused', echo: { authorization: req.headers.authorization, 'x-gateway-key': req.headers['x-gateway-key'] } }));
      return;
    }
    open.add(String(req.params.id));
    res.json({ id: req.params.id });
  });
  app.delete('/access/:id', (req, res) => {
    res.status(open.delete(String(req.params.id)) ? 204 : 404).end();
  });
  app.get('/access', (_req, res) => {
    res.json({ items: [...open].map((id) => ({ id })) });
  });
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    open,
    failures: () => failures,
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

describe('canary secrets: no secret in any log line, audit record, HTTP answer or the SQLite file', function () {
  this.timeout(60_000);

  // The webhook secret comes from Vault, the gateway's bearer token from the environment, its API key from a file.
  const hookKeyText = `canary-hook-${rand()}-${rand()}`;
  const hookSecret = `whsec_${Buffer.from(hookKeyText).toString('base64')}`;
  const gatewayToken = `canary-gwtoken-${rand()}`;
  const gatewayKey = `canary-gwkey-${rand()}`;
  const roleId = `canary-roleid-${rand()}`;
  const secretId = `canary-secretid-${rand()}`;
  const vaultToken = `hvs.canary-vaulttoken-${rand()}`;
  // The staff pages' and the portal's client secret (one client at the test provider) and the portal's credential key.
  const credentialKey = randomBytes(32).toString('base64');
  const ENV: Record<string, string> = { CANARY_GATEWAY_AUTH: `Bearer ${gatewayToken}`, CANARY_VAULT_ROLE_ID: roleId, CANARY_VAULT_SECRET_ID: secretId, CANARY_CREDENTIAL_KEY: credentialKey };
  let idp: PortalOidcProvider;
  // Sessions and CSRF tokens the pages handed out: they belong in their own cookie and form, nowhere else.
  const sessions: string[] = [];

  let t: TestDaemon;
  let gateway: Awaited<ReturnType<typeof echoingGateway>>;
  const lines: string[] = [];
  const answers: string[] = [];
  let auditText = '';
  let dbBytes: Buffer[] = [];
  let apiToken = '';
  let apiSecret = '';
  let wrongToken = '';
  let tokenHash = '';
  let vaultScope: nock.Scope;

  before(async () => {
    Object.assign(process.env, ENV);
    nock.disableNetConnect();
    nock.enableNetConnect('127.0.0.1');
    vaultScope = nock(VAULT)
      .post('/v1/auth/approle/login', { role_id: roleId, secret_id: secretId }).reply(200, { auth: { client_token: vaultToken, lease_duration: 3600, renewable: true } })
      .get('/v1/secret/data/wogate/hooks').matchHeader('x-vault-token', vaultToken).reply(200, { data: { data: { 'demo-cmms': hookSecret }, metadata: { version: 1 } } })
      .post('/v1/auth/token/revoke-self').matchHeader('x-vault-token', vaultToken).reply(204);
    gateway = await echoingGateway(2);
    const port = await freePort();
    const pages = `http://127.0.0.1:${port}`;
    idp = await startPortalProvider({
      redirectUri: [`${pages}/staff/callback`, `${pages}/portal/callback`],
      users: { 'sec-ana': { mfa: true, claims: { wogate_roles: ['ot-operators'] } }, 'tech-jdoe': { mfa: true } },
      claims: ['wogate_roles'],
    });
    ENV.CANARY_PAGES_CLIENT_SECRET = idp.clientSecret;
    process.env.CANARY_PAGES_CLIENT_SECRET = idp.clientSecret;
    const keyFile = path.join(tmpDir('wogate-canary-key-'), 'gateway.key');
    fs.writeFileSync(keyFile, `${gatewayKey}\n`, { mode: 0o600 });

    t = await startDaemon({
      log: recordingLogger(lines),
      edit: (c) => {
        c.engine.retry = { base: '100ms', max: '300ms', alertAfter: 2 };
        c.secrets = { vault: { address: VAULT, auth: { appRole: { roleId: 'env:CANARY_VAULT_ROLE_ID', secretId: 'env:CANARY_VAULT_SECRET_ID' } } } };
        c.sources[0].webhook.secrets = ['vault:wogate/hooks#demo-cmms'];
        c.targets[0].http.baseUrl = gateway.url;
        c.targets[0].http.secretHeaders = { Authorization: 'env:CANARY_GATEWAY_AUTH', 'X-Gateway-Key': `file:${keyFile}` };
        c.server.port = port;
        c.auth = { oidc: { issuer: idp.issuer, audience: 'wogate-admin', roles: { 'ot-operators': 'operator' } } };
        c.staff = { oidc: { clientId: idp.clientId, clientSecret: 'env:CANARY_PAGES_CLIENT_SECRET', redirectUri: `${pages}/staff/callback` } };
        c.portal = { oidc: { issuer: idp.issuer, clientId: idp.clientId, clientSecret: 'env:CANARY_PAGES_CLIENT_SECRET', redirectUri: `${pages}/portal/callback` }, credentialKey: 'env:CANARY_CREDENTIAL_KEY' };
      },
    });
    const store = t.daemon.runtime.store;
    const keep = async (res: Response) => {
      answers.push(`${res.status} ${JSON.stringify([...res.headers])} ${await res.text()}`);
      return res;
    };

    // An accepted webhook: the provisions fail twice on the echoing remote, then succeed.
    const now = new Date();
    expect((await keep(await t.hook(demoOrder('WO-CANARY', 'APPR', now, now), { secret: hookSecret }))).status).to.equal(202);
    await until(async () => (await store.listGrants({ states: ['active'] })).length === 2, 'both grants active after the remote stopped refusing');
    expect(gateway.failures()).to.equal(2);

    // Refused webhooks: a wrong secret, a stale timestamp, a replay.
    const other = `whsec_${Buffer.from(`canary-wrong-${rand()}-${rand()}`).toString('base64')}`;
    expect((await keep(await t.hook(demoOrder('WO-CANARY-2', 'APPR', now, now), { secret: other }))).status).to.equal(401);
    expect((await keep(await t.hook(demoOrder('WO-CANARY-2', 'APPR', now, now), { secret: hookSecret, timestamp: Math.floor(Date.now() / 1000) - 3600 }))).status).to.equal(401);
    expect((await keep(await t.hook(demoOrder('WO-CANARY-3', 'WAPPR', now, now), { secret: hookSecret, id: 'msg_canary_replay' }))).status).to.equal(202);
    expect((await keep(await t.hook(demoOrder('WO-CANARY-3', 'WAPPR', now, now), { secret: hookSecret, id: 'msg_canary_replay' }))).status).to.equal(409);

    // The admin API: the right token, a wrong one, a malformed one, a Basic header.
    const created = await createToken(store, 'canary-integration', ['grants:read'], new Date());
    apiToken = created.token;
    apiSecret = apiToken.split('_').slice(2).join('_');
    tokenHash = (await store.getToken(created.record.id))?.hash ?? '';
    const api = (auth: string) => fetch(`${t.daemon.url}/v1/grants`, { headers: { authorization: auth } }).then(keep);
    expect((await api(`Bearer ${apiToken}`)).status).to.equal(200);
    wrongToken = `wgt_${created.record.id}_canary-wrongsecret-${'A'.repeat(43 - 'canary-wrongsecret-'.length)}`;
    expect((await api(`Bearer ${wrongToken}`)).status).to.equal(401);
    expect((await api(`Bearer canary-notatoken-${rand()}`)).status).to.equal(401);
    expect((await api(`Basic ${Buffer.from(`admin:${gatewayToken}`).toString('base64')}`)).status).to.equal(401);

    // A staff member and a technician sign in through the real provider; the operator revokes a grant from the staff pages.
    for (const [user, base] of [['sec-ana', 'staff'], ['tech-jdoe', 'portal']] as const) {
      idp.loginAs(user);
      const jar = new CookieJar();
      const { res } = await jar.follow(`${pages}/${base}/login`);
      const html = await res.text();
      expect(res.status, `${user} signed in`).to.equal(200);
      sessions.push(jar.cookies.get(`wogate_${base}`) as string, /name="csrf" value="([^"]+)"/.exec(html)?.[1] as string);
      if (base === 'staff') {
        const [g] = await store.listGrants({ states: ['active'] });
        const csrf = sessions.at(-1) as string;
        const revoked = await jar.fetch(`${pages}/staff/grants/${encodeURIComponent(g?.id ?? '')}/revoke`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ csrf, reason: 'canary: revoked from the staff pages' }).toString() });
        expect(revoked.status).to.equal(303);
        // Refused and audited. (Its page is not kept: it carries the session's own CSRF token in its sign-out form, as it should.)
        const forged = await jar.fetch(`${pages}/staff/grants/${encodeURIComponent(g?.id ?? '')}/revoke`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'csrf=forged&reason=forged' });
        expect(forged.status).to.equal(403);
      }
    }
    expect(sessions.every((v) => typeof v === 'string' && v.length >= 43), 'two session ids and two CSRF tokens').to.equal(true);

    // Closing the order revokes both grants on the remote.
    expect((await keep(await t.hook(demoOrder('WO-CANARY', 'CLOSE', new Date(Date.now() + 1000), now), { secret: hookSecret }))).status).to.equal(202);
    await until(() => gateway.open.size === 0, 'both entries revoked on the remote');
    await keep(await fetch(`${t.daemon.url}/metrics`));
    await keep(await fetch(`${t.daemon.url}/readyz`));

    await t.daemon.refusals.flush(); // unauthenticated refusals are written once a window
    auditText = JSON.stringify(await store.readAudit(0, 100_000));
    await t.daemon.stop();
    dbBytes = fs.readdirSync(t.dir).filter((f) => f.startsWith('wogate.db')).map((f) => fs.readFileSync(path.join(t.dir, f)));
    fs.rmSync(path.dirname(keyFile), { recursive: true, force: true });
  });

  after(async () => {
    await t?.stop();
    await gateway?.close();
    await idp?.close();
    nock.cleanAll();
    nock.enableNetConnect();
    for (const k of Object.keys(ENV)) delete process.env[k];
  });

  /** Each secret as written, and base64-encoded (a Basic header, a serialised buffer). */
  const canaries = (): Record<string, string[]> => {
    const forms = (v: string) => [v, Buffer.from(v).toString('base64')];
    return {
      'webhook secret': [hookSecret, hookSecret.slice('whsec_'.length), hookKeyText],
      'gateway bearer token': forms(gatewayToken),
      'gateway API key (file:)': forms(gatewayKey),
      'Vault AppRole role_id': forms(roleId),
      'Vault AppRole secret_id': forms(secretId),
      'Vault token': forms(vaultToken),
      'API token': [apiToken, apiSecret],
      'presented wrong API token': [wrongToken, wrongToken.split('_').slice(2).join('_')],
      'pages client secret': forms(idp.clientSecret),
      'portal credential key': [credentialKey, Buffer.from(credentialKey, 'base64').toString('hex')],
      'session id or CSRF token': sessions,
    };
  };
  const leaks = (where: string, text: (needle: string) => boolean): string[] =>
    Object.entries(canaries()).flatMap(([name, forms]) => forms.filter((f) => f !== '' && text(f)).map(() => `${name} in ${where}`));

  it('drove every path it meant to: Vault read at start, echoed credentials redacted, refusals recorded', () => {
    expect(vaultScope.isDone(), 'login, KV read and revoke-self at stop all happened').to.equal(true);
    expect(gateway.seen.filter((r) => r.method === 'PUT').every((r) => r.authorization === `Bearer ${gatewayToken}` && r.key === gatewayKey), 'the remote got the real credentials').to.equal(true);
    // The remote's error page reached wogate's log and audit, with both credentials cut out of it.
    expect(auditText).to.include('grant.provision_failed');
    expect(auditText).to.include('answered 502: {\\"error\\":\\"upstream refused\\",\\"echo\\":{\\"authorization\\":\\"[redacted]\\",\\"x-gateway-key\\":\\"[redacted]\\"}}');
    expect(lines.some((l) => l.startsWith('warn grant provision failed') && l.includes('"authorization":"[redacted]"'))).to.equal(true);
    expect(auditText).to.include('hook.refused');
    expect(auditText).to.match(/"(api|auth)\.refused"/);
    expect(lines.some((l) => l.includes('secrets read from Vault'))).to.equal(true);
    expect(dbBytes.length).to.be.greaterThan(0);
  });

  it('no canary in any log line', () => {
    expect(lines.length).to.be.greaterThan(20);
    expect(leaks('the log', (c) => lines.some((l) => l.includes(c)))).to.deep.equal([]);
  });

  it('no canary in any audit record', () => {
    expect(leaks('the audit log', (c) => auditText.includes(c))).to.deep.equal([]);
  });

  it('no canary in any HTTP answer wogate gave', () => {
    expect(leaks('an HTTP answer', (c) => answers.some((a) => a.includes(c)))).to.deep.equal([]);
  });

  it('no canary in the bytes of the SQLite database, its WAL or shared-memory file', () => {
    expect(leaks('the SQLite files', (c) => dbBytes.some((b) => b.includes(Buffer.from(c, 'utf8'))))).to.deep.equal([]);
  });

  it('stores the API token as a SHA-256 hash, not the token', () => {
    expect(tokenHash).to.match(/^[0-9a-f]{64}$/);
    expect(tokenHash).to.not.equal(apiSecret);
    expect(tokenHash).to.equal(createHash('sha256').update(apiSecret).digest('hex'));
  });
});
