import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { inspect } from 'node:util';
import { expect } from 'chai';
import nock from 'nock';
import YAML from 'yaml';
import { buildTargets } from '../../src/cli/runtime.js';
import { loadConfig, resolveSecret, type Config } from '../../src/config/config.js';
import { validateWith } from '../../src/config/schema.js';
import { isWogateError } from '../../src/domain/index.js';
import type { Logger } from '../../src/log.js';
import { prepareSecrets, secretUses } from '../../src/secrets/prepare.js';
import { realTimers, VaultCallError, VaultSecretSource, type Timers, type VaultSecretSourceOptions } from '../../src/secrets/vault.js';
import { openPortal } from '../../src/portal/index.js';
import { openStaff } from '../../src/staff/index.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import { exampleConfig, REPO } from '../helpers/daemon.js';
import { tmpDir } from '../helpers/world.js';

const VAULT = 'https://vault.nock.test:8200';
const ROLE_ID = 'role-id-7c1e2b0a-canary';
const SECRET_ID = 'secret-id-3f9d61aa-canary';
const TOKEN = 'hvs.login-token-canary-51d2';
const TOKEN2 = 'hvs.second-token-canary-a07e';
const STATIC_TOKEN = 'hvs.static-token-canary-9b44';
const CMMS_KEY = 'cmms-api-key-canary-0e6f';
const HOOK_SECRET = 'whsec_hook-secret-canary-77ab';
const CANARIES = [ROLE_ID, SECRET_ID, TOKEN, TOKEN2, STATIC_TOKEN, CMMS_KEY, HOOK_SECRET];

/** Every call, with its meta printed the way a console transport or a crash dump would see it. */
function recordingLogger(lines: string[], bound: Record<string, unknown> = {}): Logger {
  const rec = (level: string) => (msg: string, meta?: Record<string, unknown>) => {
    lines.push(`${level} ${msg} ${inspect({ ...bound, ...meta }, { depth: 20, showHidden: true })}`);
  };
  return { debug: rec('debug'), info: rec('info'), warn: rec('warn'), error: rec('error'), child: (meta) => recordingLogger(lines, { ...bound, ...meta }) };
}

/** Timers the test fires by hand: a renewal due in 40 minutes happens now, and the test sees when it was due. */
class ManualTimers implements Timers {
  readonly pending: { fn: () => Promise<void>; ms: number }[] = [];
  set(fn: () => Promise<void>, ms: number): unknown {
    const t = { fn, ms };
    this.pending.push(t);
    return t;
  }
  clear(handle: unknown): void {
    const i = this.pending.indexOf(handle as (typeof this.pending)[number]);
    if (i >= 0) this.pending.splice(i, 1);
  }
  /** Runs the one pending timer to completion. */
  async fire(): Promise<void> {
    expect(this.pending, 'exactly one timer pending').to.have.length(1);
    const t = this.pending.shift() as (typeof this.pending)[number];
    await t.fn();
  }
}

const login = (token: string, lease = 3600, renewable = true) => ({ auth: { client_token: token, accessor: 'acc', policies: ['wogate'], lease_duration: lease, renewable } });
const kv = (data: Record<string, unknown>) => ({ data: { data, metadata: { version: 3 } } });

describe('Vault secrets: AppRole, KV v2 and token renewal against the Vault HTTP API (nock)', () => {
  let lines: string[];
  let timers: ManualTimers;
  let sources: VaultSecretSource[];
  let unmatched: string[];
  const onNoMatch = (req: { method?: string; hostname?: string; path?: string; options?: { host?: string } }) => unmatched.push(`${req.method} ${req.hostname ?? req.options?.host ?? '?'} ${req.path}`);

  const connect = async (over: Partial<VaultSecretSourceOptions> = {}) => {
    const v = await VaultSecretSource.connect({
      address: VAULT,
      auth: { appRole: { roleId: ROLE_ID, secretId: SECRET_ID } },
      kvMount: 'secret',
      timeoutMs: 2000,
      log: recordingLogger(lines),
      timers,
      now: () => Date.parse('2026-03-01T00:00:00Z'),
      ...over,
    });
    sources.push(v);
    return v;
  };

  before(() => {
    nock.disableNetConnect();
    nock.emitter.on('no match', onNoMatch);
  });
  after(() => {
    nock.emitter.removeListener('no match', onNoMatch);
    nock.enableNetConnect();
  });
  beforeEach(() => {
    lines = [];
    timers = new ManualTimers();
    sources = [];
    unmatched = [];
  });
  afterEach(async function () {
    // Close quietly: a revoke-self nobody mocked must not fail the next test.
    nock.cleanAll();
    nock(VAULT).persist().post('/v1/auth/token/revoke-self').reply(204);
    for (const v of sources) await v.close();
    nock.cleanAll();
    if (this.currentTest?.state === 'passed') {
      const leaked = CANARIES.filter((c) => lines.some((l) => l.includes(c)));
      expect(leaked, `secrets in the log:\n${lines.join('\n')}`).to.deep.equal([]);
    }
  });

  it('logs in with AppRole (role_id and secret_id in the body, no token header) and reads KV v2 with the token it got', async () => {
    const loginScope = nock(VAULT, { badheaders: ['x-vault-token'] }).post('/v1/auth/approle/login', { role_id: ROLE_ID, secret_id: SECRET_ID }).reply(200, login(TOKEN));
    const read = nock(VAULT, { reqheaders: { 'x-vault-token': TOKEN } }).get('/v1/secret/data/plant/cmms').reply(200, kv({ apiKey: CMMS_KEY, user: 'svc-wogate' }));
    const v = await connect();
    expect(await v.readKv('plant/cmms')).to.deep.equal({ apiKey: CMMS_KEY, user: 'svc-wogate' });
    expect(loginScope.isDone() && read.isDone()).to.equal(true);
  });

  it('logs in at a custom AppRole mount and reads from a custom KV mount', async () => {
    nock(VAULT).post('/v1/auth/ot-approle/login', { role_id: ROLE_ID, secret_id: SECRET_ID }).reply(200, login(TOKEN));
    const read = nock(VAULT, { reqheaders: { 'x-vault-token': TOKEN } }).get('/v1/kv-ot/data/cmms').reply(200, kv({ k: 'v' }));
    const v = await connect({ auth: { appRole: { roleId: ROLE_ID, secretId: SECRET_ID, mount: 'ot-approle' } }, kvMount: 'kv-ot' });
    await v.readKv('cmms');
    expect(read.isDone()).to.equal(true);
  });

  it('sends the configured namespace as X-Vault-Namespace on the login and on every read', async () => {
    const scope = nock(VAULT, { reqheaders: { 'x-vault-namespace': 'ot/water' } })
      .post('/v1/auth/approle/login').reply(200, login(TOKEN))
      .get('/v1/secret/data/plant/cmms').reply(200, kv({ apiKey: CMMS_KEY }));
    const v = await connect({ namespace: 'ot/water' });
    await v.readKv('plant/cmms');
    expect(scope.isDone()).to.equal(true);
  });

  it('with a configured token: checks it with lookup-self and sends it as X-Vault-Token, and never revokes it at close', async () => {
    const scope = nock(VAULT, { reqheaders: { 'x-vault-token': STATIC_TOKEN } })
      .get('/v1/auth/token/lookup-self').reply(200, { data: { ttl: 0, renewable: false, policies: ['wogate'] } })
      .get('/v1/secret/data/plant/cmms').reply(200, kv({ apiKey: CMMS_KEY }));
    const v = await connect({ auth: { token: STATIC_TOKEN } });
    expect((await v.readKv('plant/cmms')).apiKey).to.equal(CMMS_KEY);
    expect(scope.isDone()).to.equal(true);
    expect(timers.pending, 'a token without a TTL needs no renewal').to.have.length(0);
    const revoke = nock(VAULT).post('/v1/auth/token/revoke-self').reply(204);
    await v.close();
    expect(revoke.isDone(), 'the operator\'s token is not ours to revoke').to.equal(false);
  });

  it('renews the token at two thirds of its lease, and again at two thirds of the renewed lease', async () => {
    nock(VAULT).post('/v1/auth/approle/login').reply(200, login(TOKEN, 3600));
    await connect();
    expect(timers.pending.map((t) => t.ms)).to.deep.equal([2_400_000]);
    const renew = nock(VAULT, { reqheaders: { 'x-vault-token': TOKEN } }).post('/v1/auth/token/renew-self').reply(200, login(TOKEN, 3600));
    await timers.fire();
    expect(renew.isDone()).to.equal(true);
    expect(timers.pending.map((t) => t.ms)).to.deep.equal([2_400_000]);
    expect(lines.some((l) => l.startsWith('info vault: token renewed'))).to.equal(true);
  });

  it('renews a configured renewable token found by lookup-self', async () => {
    nock(VAULT).get('/v1/auth/token/lookup-self').reply(200, { data: { ttl: 900, creation_ttl: 1800, renewable: true } });
    await connect({ auth: { token: STATIC_TOKEN } });
    expect(timers.pending.map((t) => t.ms)).to.deep.equal([600_000]);
    const renew = nock(VAULT, { reqheaders: { 'x-vault-token': STATIC_TOKEN } }).post('/v1/auth/token/renew-self').reply(200, login(STATIC_TOKEN, 1800));
    await timers.fire();
    expect(renew.isDone()).to.equal(true);
    expect(timers.pending.map((t) => t.ms)).to.deep.equal([1_200_000]);
  });

  it('logs in again with AppRole when Vault refuses the renewal (403), and reads with the new token', async () => {
    nock(VAULT).post('/v1/auth/approle/login').reply(200, login(TOKEN));
    const v = await connect();
    nock(VAULT).post('/v1/auth/token/renew-self').reply(403, { errors: ['permission denied'] });
    const relogin = nock(VAULT, { badheaders: ['x-vault-token'] }).post('/v1/auth/approle/login', { role_id: ROLE_ID, secret_id: SECRET_ID }).reply(200, login(TOKEN2));
    await timers.fire();
    expect(relogin.isDone()).to.equal(true);
    const read = nock(VAULT, { reqheaders: { 'x-vault-token': TOKEN2 } }).get('/v1/secret/data/plant/cmms').reply(200, kv({ apiKey: CMMS_KEY }));
    await v.readKv('plant/cmms');
    expect(read.isDone()).to.equal(true);
    expect(lines.some((l) => l.includes('token renewal failed; logging in again') && l.includes('Vault answered 403: permission denied'))).to.equal(true);
  });

  it('logs in again instead of renewing once the renewal comes back capped by the max TTL', async () => {
    nock(VAULT).post('/v1/auth/approle/login').reply(200, login(TOKEN, 3600));
    await connect();
    nock(VAULT).post('/v1/auth/token/renew-self').reply(200, login(TOKEN, 1200));
    await timers.fire();
    expect(timers.pending.map((t) => t.ms), 'two thirds of what is left').to.deep.equal([800_000]);
    const relogin = nock(VAULT).post('/v1/auth/approle/login').reply(200, login(TOKEN2, 3600));
    await timers.fire();
    expect(relogin.isDone(), 'the capped token is replaced, not renewed').to.equal(true);
    expect(timers.pending.map((t) => t.ms)).to.deep.equal([2_400_000]);
  });

  it('keeps trying the AppRole login with growing waits while Vault is down', async () => {
    nock(VAULT).post('/v1/auth/approle/login').reply(200, login(TOKEN, 3600));
    await connect();
    nock(VAULT).post('/v1/auth/token/renew-self').reply(503, { errors: ['Vault is sealed'] });
    nock(VAULT).post('/v1/auth/approle/login').reply(503, { errors: ['Vault is sealed'] });
    await timers.fire();
    expect(timers.pending.map((t) => t.ms)).to.deep.equal([5000]);
    nock(VAULT).post('/v1/auth/approle/login').reply(503, { errors: ['Vault is sealed'] });
    await timers.fire();
    expect(timers.pending.map((t) => t.ms)).to.deep.equal([10_000]);
    const ok = nock(VAULT).post('/v1/auth/approle/login').reply(200, login(TOKEN2, 3600));
    await timers.fire();
    expect(ok.isDone()).to.equal(true);
    expect(timers.pending.map((t) => t.ms)).to.deep.equal([2_400_000]);
  });

  it('retries a failed renewal of a configured token while it has time left, and stops when Vault refuses the token', async () => {
    nock(VAULT).get('/v1/auth/token/lookup-self').reply(200, { data: { ttl: 900, creation_ttl: 900, renewable: true } });
    await connect({ auth: { token: STATIC_TOKEN } });
    nock(VAULT).post('/v1/auth/token/renew-self').reply(503, { errors: ['Vault is sealed'] });
    await timers.fire();
    expect(timers.pending.map((t) => t.ms), 'a minute, well inside the 15 minutes left').to.deep.equal([60_000]);
    nock(VAULT).post('/v1/auth/token/renew-self').reply(403, { errors: ['permission denied'] });
    await timers.fire();
    expect(timers.pending).to.have.length(0);
    expect(lines.some((l) => l.startsWith('error vault: the token was refused on renewal'))).to.equal(true);
  });

  it('says when a configured token that cannot be renewed will end, and schedules nothing', async () => {
    nock(VAULT).get('/v1/auth/token/lookup-self').reply(200, { data: { ttl: 600, renewable: false } });
    await connect({ auth: { token: STATIC_TOKEN } });
    expect(timers.pending).to.have.length(0);
    expect(lines.some((l) => l.startsWith("warn vault: the token can't be renewed any further and ends at 2026-03-01T00:10:00.000Z"))).to.equal(true);
  });

  it('close() stops the renewal timer and revokes the AppRole token it logged in for', async () => {
    nock(VAULT).post('/v1/auth/approle/login').reply(200, login(TOKEN));
    const v = await connect();
    expect(timers.pending).to.have.length(1);
    const revoke = nock(VAULT, { reqheaders: { 'x-vault-token': TOKEN } }).post('/v1/auth/token/revoke-self').reply(204);
    await v.close();
    expect(revoke.isDone()).to.equal(true);
    expect(timers.pending).to.have.length(0);
    try {
      await v.readKv('plant/cmms');
      expect.fail('read after close');
    } catch (e) {
      expect((e as Error).message).to.match(/closed/);
    }
  });

  it('real timers are unref\'d: a pending renewal does not keep the process alive', () => {
    const t = realTimers.set(async () => undefined, 60_000) as NodeJS.Timeout;
    expect(t.hasRef()).to.equal(false);
    realTimers.clear(t);
  });

  describe('the environment has no say', () => {
    const saved: Record<string, string | undefined> = {};
    const ENV = { VAULT_ADDR: 'https://env-vault.nock.test:8200', VAULT_TOKEN: 'hvs.env-token-canary', VAULT_NAMESPACE: 'env-ns', VAULT_PREFIX: '/env-prefix', VAULT_SKIP_VERIFY: '1' };
    beforeEach(() => {
      for (const [k, v] of Object.entries(ENV)) {
        saved[k] = process.env[k];
        process.env[k] = v;
      }
    });
    afterEach(() => {
      for (const k of Object.keys(ENV)) {
        if (saved[k] === undefined) delete process.env[k];
        else process.env[k] = saved[k];
      }
    });

    it('ignores VAULT_ADDR, VAULT_TOKEN, VAULT_NAMESPACE and VAULT_PREFIX: nothing goes to the env address, no env token or namespace is sent', async () => {
      const envVault = nock(ENV.VAULT_ADDR).post(/.*/).reply(200, login('hvs.from-env')).get(/.*/).reply(200, kv({ apiKey: 'from-env' }));
      const scope = nock(VAULT, { badheaders: ['x-vault-token', 'x-vault-namespace'] }).post('/v1/auth/approle/login').reply(200, login(TOKEN));
      const read = nock(VAULT, { reqheaders: { 'x-vault-token': TOKEN }, badheaders: ['x-vault-namespace'] }).get('/v1/secret/data/plant/cmms').reply(200, kv({ apiKey: CMMS_KEY }));
      const v = await connect();
      expect((await v.readKv('plant/cmms')).apiKey).to.equal(CMMS_KEY);
      expect(scope.isDone() && read.isDone()).to.equal(true);
      expect(envVault.pendingMocks(), 'no request reached the VAULT_ADDR address').to.have.length(2);
      expect(unmatched).to.deep.equal([]);
    });

    it('ignores VAULT_TOKEN for token auth too: the configured token is the one sent', async () => {
      const scope = nock(VAULT, { reqheaders: { 'x-vault-token': STATIC_TOKEN } }).get('/v1/auth/token/lookup-self').reply(200, { data: { ttl: 0 } });
      await connect({ auth: { token: STATIC_TOKEN } });
      expect(scope.isDone()).to.equal(true);
    });

    it('DEBUG=node-vault prints nothing: the AppRole secret_id never reaches stderr', async () => {
      const requireCjs = createRequire(import.meta.url);
      const debug = requireCjs('debug') as { enable(ns: string): void; disable(): string };
      const written: string[] = [];
      const write = process.stderr.write.bind(process.stderr);
      debug.enable('node-vault');
      process.stderr.write = ((chunk: string | Uint8Array) => {
        written.push(String(chunk));
        return true;
      }) as typeof process.stderr.write;
      try {
        nock(VAULT).post('/v1/auth/approle/login').reply(200, login(TOKEN));
        await connect();
      } finally {
        process.stderr.write = write;
        debug.disable();
      }
      expect(written.filter((w) => w.includes(SECRET_ID) || w.includes(TOKEN))).to.deep.equal([]);
    });
  });

  describe('TLS is always verified (a real HTTPS server on loopback with a self-signed certificate)', () => {
    let dir: string;
    let server: https.Server;
    let address: string;
    let certPem: string;
    let requests: string[];
    const saved = process.env.VAULT_SKIP_VERIFY;

    before(function () {
      this.timeout(20_000);
      dir = tmpDir('wogate-vault-tls-');
      execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=vault.test',
        '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')], { stdio: 'ignore' });
      certPem = fs.readFileSync(path.join(dir, 'cert.pem'), 'utf8');
    });
    beforeEach(async () => {
      requests = [];
      nock.enableNetConnect('127.0.0.1');
      server = https.createServer({ key: fs.readFileSync(path.join(dir, 'key.pem')), cert: certPem }, (req, res) => {
        requests.push(`${req.method} ${req.url}`);
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify(login(TOKEN)));
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
      address = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
      process.env.VAULT_SKIP_VERIFY = '1';
    });
    afterEach(async () => {
      if (saved === undefined) delete process.env.VAULT_SKIP_VERIFY;
      else process.env.VAULT_SKIP_VERIFY = saved;
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      nock.disableNetConnect();
    });
    after(() => fs.rmSync(dir, { recursive: true, force: true }));

    it('refuses a certificate it does not trust even with VAULT_SKIP_VERIFY=1, and sends no request over it', async () => {
      try {
        await connect({ address });
        expect.fail('connected to an untrusted Vault');
      } catch (e) {
        expect(e).to.be.instanceOf(VaultCallError);
        expect((e as Error).message).to.match(/POST \/v1\/auth\/approle\/login: Vault's TLS certificate is not trusted \([A-Z_]+\); set secrets.vault.caPem/);
      }
      expect(requests).to.deep.equal([]);
    });

    it('trusts the certificate given as caPem', async () => {
      const v = await connect({ address, caPem: certPem });
      expect(requests).to.deep.equal(['POST /v1/auth/approle/login']);
      sources.splice(sources.indexOf(v), 1);
      await v.close();
    });
  });

  describe('no secret in an error message', () => {
    it('a login refused with a body that echoes the secret_id says what failed with the secret_id cut out', async () => {
      nock(VAULT).post('/v1/auth/approle/login').reply(400, { errors: [`invalid secret id ${SECRET_ID} for role ${ROLE_ID}`] });
      const err = await connect().then(() => undefined, (e: unknown) => e as Error);
      expect(err?.message).to.equal('AppRole login at auth/approle: Vault answered 400: invalid secret id [redacted] for role [redacted]');
    });

    it('a read refused with a body that echoes the token does not carry the token', async () => {
      nock(VAULT).post('/v1/auth/approle/login').reply(200, login(TOKEN));
      const v = await connect();
      nock(VAULT).get('/v1/secret/data/plant/cmms').reply(500, { errors: [`backend failed for token ${TOKEN}`] });
      const err = await v.readKv('plant/cmms').then(() => undefined, (e: unknown) => e as Error);
      expect(err?.message).to.equal('read secret/data/plant/cmms: Vault answered 500: backend failed for token [redacted]');
      expect(inspect(err, { depth: 20, showHidden: true })).not.to.include(TOKEN);
    });

    it('an unreachable Vault is a message naming the call, not the library error with its headers', async () => {
      nock(VAULT).post('/v1/auth/approle/login').replyWithError(Object.assign(new Error('connect ECONNREFUSED 10.1.2.3:8200'), { code: 'ECONNREFUSED' }));
      const err = await connect().then(() => undefined, (e: unknown) => e as Error);
      expect(err?.message).to.equal('AppRole login at auth/approle: POST /v1/auth/approle/login: network error ECONNREFUSED');
      expect(inspect(err, { depth: 20, showHidden: true })).not.to.include(SECRET_ID);
    });
  });

  describe('vault: references in the config, read once at start', () => {
    let dir: string;
    beforeEach(() => {
      dir = tmpDir('wogate-vault-cfg-');
    });
    afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

    const env = { ...process.env, ROLE_ID, SECRET_ID };
    const withVault = (edit: (c: Record<string, any>) => void = () => undefined) => // eslint-disable-line @typescript-eslint/no-explicit-any
      loadConfig(exampleConfig(dir, (c) => {
        c.secrets = { vault: { address: VAULT, auth: { appRole: { roleId: 'env:ROLE_ID', secretId: 'env:SECRET_ID' } } } };
        c.sources[0].webhook.secrets = ['vault:wogate/hooks#demo-cmms'];
        c.targets[0].http.secretHeaders = { Authorization: 'vault:wogate/gateway#authorization', 'X-Api-Key': 'vault:wogate/gateway#apiKey' };
        edit(c);
      }), env);
    const prepare = (config: Config) => prepareSecrets(config, { env, log: recordingLogger(lines), connect: async (o) => {
      const v = await VaultSecretSource.connect({ ...o, timers });
      sources.push(v);
      return v;
    } });

    it('fetches each distinct path once and hands every reference its value', async () => {
      const config = withVault();
      nock(VAULT).post('/v1/auth/approle/login', { role_id: ROLE_ID, secret_id: SECRET_ID }).reply(200, login(TOKEN));
      // Each interceptor answers once: a second read of the same path would find none and fail.
      nock(VAULT, { reqheaders: { 'x-vault-token': TOKEN } })
        .get('/v1/secret/data/wogate/hooks').reply(200, kv({ 'demo-cmms': HOOK_SECRET }))
        .get('/v1/secret/data/wogate/gateway').reply(200, kv({ authorization: `Bearer ${TOKEN2}`, apiKey: CMMS_KEY }));
      const prepared = await prepare(config);
      expect([...prepared.vault.entries()]).to.have.deep.members([
        ['vault:wogate/hooks#demo-cmms', HOOK_SECRET],
        ['vault:wogate/gateway#authorization', `Bearer ${TOKEN2}`],
        ['vault:wogate/gateway#apiKey', CMMS_KEY],
      ]);
      expect(unmatched).to.deep.equal([]);
      expect(resolveSecret('vault:wogate/gateway#apiKey', 'x', env, prepared.vault)).to.equal(CMMS_KEY);
      expect(buildTargets(config, env, prepared.vault).get('demo-gateway')).to.not.equal(undefined);
    });

    it('reads the portal\'s and the staff pages\' client secrets and the credential key from Vault, and the pages open with them', async () => {
      const key = Buffer.alloc(32, 9).toString('base64');
      const config = withVault((c) => {
        c.sources[0].webhook.secrets = ['env:HOOK'];
        c.targets[0].http.secretHeaders = {};
        c.auth = { oidc: { issuer: 'https://idp.example', audience: 'wogate', roles: { ops: 'operator' } } };
        c.portal = { oidc: { issuer: 'https://idp.example', clientId: 'portal', clientSecret: 'vault:wogate/pages#portal', redirectUri: 'https://wogate.example/portal/callback' }, credentialKey: 'vault:wogate/pages#credentialKey' };
        c.staff = { oidc: { clientId: 'staff', clientSecret: 'vault:wogate/pages#staff', redirectUri: 'https://wogate.example/staff/callback' } };
      });
      nock(VAULT).post('/v1/auth/approle/login', { role_id: ROLE_ID, secret_id: SECRET_ID }).reply(200, login(TOKEN));
      nock(VAULT, { reqheaders: { 'x-vault-token': TOKEN } }).get('/v1/secret/data/wogate/pages').reply(200, kv({ portal: 'portal-client-secret', staff: 'staff-client-secret', credentialKey: key }));
      const prepared = await prepare(config);
      expect([...prepared.vault.keys()]).to.have.members(['vault:wogate/pages#portal', 'vault:wogate/pages#credentialKey', 'vault:wogate/pages#staff']);
      const store = new SqliteStore(path.join(dir, 'pages.db'));
      try {
        await store.migrate();
        expect(openPortal(config, store, () => new Date(), env, prepared.vault)).to.not.equal(undefined);
        expect(openStaff(config, store, env, prepared.vault)).to.not.equal(undefined);
      } finally {
        await store.close();
      }
      expect(unmatched).to.deep.equal([]);
    });

    it('contacts no Vault when no reference needs it', async () => {
      const config = withVault((c) => {
        c.sources[0].webhook.secrets = ['env:HOOK'];
        c.targets[0].http.secretHeaders = {};
      });
      const prepared = await prepare(config);
      expect(prepared.vault.size).to.equal(0);
      expect(unmatched).to.deep.equal([]);
    });

    it('a path Vault does not have (404) refuses the start, naming the config location and the Vault path', async () => {
      const config = withVault();
      nock(VAULT).post('/v1/auth/approle/login').reply(200, login(TOKEN));
      nock(VAULT).get('/v1/secret/data/wogate/hooks').reply(404, { errors: [] });
      const err = await prepare(config).then(() => undefined, (e: unknown) => e);
      expect(isWogateError(err, 'CONFIG_SECRET_UNRESOLVED')).to.equal(true);
      expect((err as Error).message).to.equal(`${config.file}: /sources/0/webhook/secrets/0: vault:wogate/hooks#demo-cmms: no secret at secret/data/wogate/hooks (404)`);
      expect(timers.pending, 'the client was closed').to.have.length(0);
    });

    it('a key the secret does not have refuses the start, naming the reference and never a value', async () => {
      const config = withVault();
      nock(VAULT).post('/v1/auth/approle/login').reply(200, login(TOKEN));
      nock(VAULT).get('/v1/secret/data/wogate/hooks').reply(200, kv({ 'demo-cmms': HOOK_SECRET }));
      nock(VAULT).get('/v1/secret/data/wogate/gateway').reply(200, kv({ authorization: `Bearer ${TOKEN2}`, apikey: CMMS_KEY }));
      const err = await prepare(config).then(() => undefined, (e: unknown) => e as Error);
      expect(isWogateError(err, 'CONFIG_SECRET_UNRESOLVED')).to.equal(true);
      expect(err?.message).to.equal(`${config.file}: /targets/0/http/secretHeaders/X-Api-Key: vault:wogate/gateway#apiKey: the secret at secret/data/wogate/gateway has no key "apiKey"`);
      for (const c of CANARIES) expect(err?.message).not.to.include(c);
    });

    it('a value that is not a string refuses the start without showing it', async () => {
      const config = withVault();
      nock(VAULT).post('/v1/auth/approle/login').reply(200, login(TOKEN));
      nock(VAULT).get('/v1/secret/data/wogate/hooks').reply(200, kv({ 'demo-cmms': { nested: HOOK_SECRET } }));
      const err = await prepare(config).then(() => undefined, (e: unknown) => e as Error);
      expect(err?.message).to.equal(`${config.file}: /sources/0/webhook/secrets/0: vault:wogate/hooks#demo-cmms: key "demo-cmms" of secret/data/wogate/hooks is not a non-empty string`);
    });

    it('a refused AppRole login refuses the start, naming secrets.vault', async () => {
      const config = withVault();
      nock(VAULT).post('/v1/auth/approle/login').reply(400, { errors: ['invalid role or secret ID'] });
      const err = await prepare(config).then(() => undefined, (e: unknown) => e as Error);
      expect(isWogateError(err, 'CONFIG_SECRET_UNRESOLVED')).to.equal(true);
      expect(err?.message).to.equal(`${config.file}: /secrets/vault: AppRole login at auth/approle: Vault answered 400: invalid role or secret ID`);
    });

    it('a vault: reference without a secrets.vault block refuses the start, naming where it is used', async () => {
      const config = withVault((c) => delete c.secrets);
      const err = await prepare(config).then(() => undefined, (e: unknown) => e as Error);
      expect(err?.message).to.equal(`${config.file}: /sources/0/webhook/secrets/0: vault:wogate/hooks#demo-cmms reads from Vault, but the config has no secrets.vault block`);
    });

    it('a command that builds targets without reading Vault first gets a clear error, not the reference as a header value', () => {
      const config = withVault();
      expect(() => buildTargets(config, env)).to.throw(/\/targets\/0\/http\/secretHeaders\/Authorization: vault:wogate\/gateway#authorization was not read from Vault/);
    });

    it('lists the secret references of enabled targets only', () => {
      const config = withVault((c) => {
        c.targets[0].enabled = false;
      });
      expect(secretUses(config).map((u) => u.where.split(': ')[1])).to.deep.equal(['/sources/0/webhook/secrets/0']);
      expect(secretUses(withVault()).map((u) => u.where.split(': ')[1])).to.deep.equal(['/sources/0/webhook/secrets/0', '/targets/0/http/secretHeaders/Authorization', '/targets/0/http/secretHeaders/X-Api-Key']);
    });

    it('resolves relative file: references of the Vault block against the config directory and keeps every field explicit', () => {
      const config = withVault((c) => {
        c.secrets.vault = { address: VAULT, namespace: 'ot/water', caPem: 'file:./vault-ca.pem', auth: { token: 'file:secrets/vault-token' }, kvMount: 'kv-ot', timeout: '3s' };
      });
      expect(config.secrets.vault).to.deep.equal({
        address: VAULT, namespace: 'ot/water', caPem: `file:${path.join(dir, 'vault-ca.pem')}`, auth: { token: `file:${path.join(dir, 'secrets/vault-token')}` }, kvMount: 'kv-ot', timeoutMs: 3000,
      });
      expect(withVault().secrets.vault).to.deep.include({ kvMount: 'secret', timeoutMs: 10_000, auth: { appRole: { roleId: 'env:ROLE_ID', secretId: 'env:SECRET_ID', mount: 'approle' } } });
    });

    it('refuses a plain-http Vault address off loopback, and accepts a Vault Agent on loopback', () => {
      expect(() => withVault((c) => { c.secrets.vault.address = 'http://vault.plant.example:8200'; })).to.throw(/\/secrets\/vault\/address: must be https/);
      expect(withVault((c) => { c.secrets.vault.address = 'http://127.0.0.1:8100'; }).secrets.vault?.address).to.equal('http://127.0.0.1:8100');
    });

    it('refuses vault: for the credentials that open Vault, and both token and appRole at once', () => {
      expect(() => withVault((c) => { c.secrets.vault.auth = { token: 'vault:wogate/self#token' }; })).to.throw(/secrets\/vault\/auth/);
      expect(() => withVault((c) => { c.secrets.vault.auth = { token: 'env:T', appRole: { roleId: 'env:R', secretId: 'env:S' } }; })).to.throw(/secrets\/vault\/auth/);
    });
  });

  it('the secrets block in docs/secrets.md is valid config', () => {
    const text = fs.readFileSync(path.join(REPO, 'docs/secrets.md'), 'utf8');
    const blocks = [...text.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1] as string).filter((b) => b.startsWith('secrets:'));
    expect(blocks).to.have.length(1);
    const { secrets } = YAML.parse(blocks[0] as string) as { secrets: unknown };
    validateWith('config.schema.json', { store: { kind: 'sqlite' }, policies: { dir: 'p' }, register: { assets: 'a', vendors: 'v' }, secrets }, 'docs/secrets.md', 'CONFIG_INVALID');
  });

  describe('config.schema.json secretRef', () => {
    const check = (ref: string) => {
      const config = { store: { kind: 'sqlite' }, policies: { dir: 'p' }, register: { assets: 'a', vendors: 'v' }, sources: [{ id: 's', kind: 'generic', webhook: { secrets: [ref] }, mapping: { fields: {}, statusMap: {} } }] };
      try {
        validateWith('config.schema.json', config, 'test', 'CONFIG_INVALID');
        return true;
      } catch (e) {
        if (!/secrets\/0/.test((e as Error).message)) return true; // some other part of the sample is what failed
        return false;
      }
    };
    it('accepts env:, file: and vault:<path>#<key>', () => {
      for (const ok of ['env:HOOK_SECRET', 'file:/etc/wogate/hook', 'vault:wogate/hooks#demo', 'vault:a#b', 'vault:plant-1/cmms.v2/x_y#api-key']) expect(check(ok), ok).to.equal(true);
    });
    it('refuses a vault: reference without a key, with an empty segment, or with . or .. segments', () => {
      for (const bad of ['vault:wogate/hooks', 'vault:#k', 'vault:/abs#k', 'vault:a//b#k', 'vault:../x#k', 'vault:a/../b#k', 'vault:a/.#k', 'vault:a#', 'vault:a#k#j', 'vault:a b#k']) expect(check(bad), bad).to.equal(false);
    });
  });
});
