import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import https from 'node:https';
import path from 'node:path';
import tls from 'node:tls';
import { promisify } from 'node:util';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import express from 'express';
import { loginLimiter } from '../../src/api/limits.js';
import type { AuditLog } from '../../src/audit/audit.js';
import { serve } from '../../src/cli/serve.js';
import { loadConfig } from '../../src/config/config.js';
import { isWogateError, type WogateError } from '../../src/domain/index.js';
import type { Logger } from '../../src/log.js';
import { createMetrics } from '../../src/metrics.js';
import type { AuditEntry } from '../../src/store/store.js';
import { exampleConfig, startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { tmpDir } from '../helpers/world.js';

const run = promisify(execFile);
const HOOK_SECRET = 'whsec_dGVzdHRlc3R0ZXN0dGVzdHRlc3R0ZXN0dGVzdHRlc3Q=';

interface Cert {
  readonly cert: string;
  readonly key: string;
  readonly fingerprint256: string;
}

/** A self-signed RSA certificate for 127.0.0.1, made by openssl. */
async function makeCert(dir: string, name: string): Promise<Cert> {
  const cert = path.join(dir, `${name}.pem`);
  const key = path.join(dir, `${name}.key`);
  await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', `/CN=wogate-${name}`, '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost']);
  fs.chmodSync(key, 0o600);
  return { cert, key, fingerprint256: new X509Certificate(fs.readFileSync(cert)).fingerprint256 };
}

type Handshake = { ok: true; protocol: string | null; fingerprint256: string; cipher: string } | { ok: false; code: string };

/** One TLS handshake against the daemon, trusting only `ca`. */
function handshake(url: string, ca: string[], opts: tls.ConnectionOptions = {}): Promise<Handshake> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = tls.connect({ host: hostname, port: Number(port), ca: ca.map((f) => fs.readFileSync(f)), ...opts }, () => {
      resolve({ ok: true, protocol: socket.getProtocol(), fingerprint256: socket.getPeerCertificate().fingerprint256, cipher: socket.getCipher().name });
      socket.end();
    });
    socket.on('error', (e: NodeJS.ErrnoException) => resolve({ ok: false, code: e.code ?? e.message }));
  });
}

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A plain node request (fetch can't be given a CA), over HTTP or HTTPS. */
function request(url: string, o: { method?: string; headers?: Record<string, string>; body?: string; ca?: string } = {}): Promise<Reply> {
  const lib = url.startsWith('https:') ? https : http;
  return new Promise((resolve, reject) => {
    const req = lib.request(url, { method: o.method ?? 'GET', headers: o.headers, agent: false, ...(o.ca ? { ca: fs.readFileSync(o.ca) } : {}) }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(o.body);
  });
}

function jsonError(r: Reply): { code: string; message: string } {
  expect(r.headers['content-type']).to.match(/^application\/json/);
  return (JSON.parse(r.body) as { error: { code: string; message: string } }).error;
}

/** serve() with the example config edited; resolves to the error it refused with. */
async function refusal(dir: string, edit: NonNullable<Parameters<typeof exampleConfig>[1]>): Promise<WogateError> {
  const file = exampleConfig(dir, (c) => {
    c.sources[0].webhook.secrets = ['env:TEST_HOOK_SECRET'];
    edit(c);
  });
  try {
    const d = await serve({ configFile: file, env: { ...process.env, TEST_HOOK_SECRET: HOOK_SECRET }, log: quiet() });
    await d.stop();
  } catch (e) {
    if (isWogateError(e)) return e;
    throw e;
  }
  throw new Error('the daemon started');
}

function quiet(lines: string[] = []): Logger {
  const log: Logger = {
    debug() {},
    info() {},
    warn: (m) => void lines.push(`warn ${m}`),
    error: (m, meta) => void lines.push(`error ${m} ${JSON.stringify(meta ?? {})}`),
    child: () => log,
  };
  return log;
}

async function auditOf(t: TestDaemon, action: string) {
  return (await t.daemon.runtime.store.readAudit(0, 10_000)).filter((r) => r.action === action);
}

async function metric(t: TestDaemon, line: string): Promise<number> {
  const text = await (await fetch(`${t.daemon.url}/metrics`)).text();
  const m = text.split('\n').find((l) => l.startsWith(`${line} `));
  return m ? Number(m.split(' ')[1]) : 0;
}

const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

function expectSecurityHeaders(r: Reply, what: string): void {
  for (const [k, v] of Object.entries(SECURITY_HEADERS)) expect(r.headers[k], `${what}: ${k}`).to.equal(v);
  expect(r.headers['content-security-policy'], `${what}: CSP`).to.match(/^default-src 'none'/);
  expect(r.headers['permissions-policy'], `${what}: Permissions-Policy`).to.include('camera=()');
  expect(r.headers['cache-control'], `${what}: Cache-Control`).to.equal('no-store');
}

describe('HTTP hardening', function () {
  this.timeout(60_000);
  let certs: string;
  let a: Cert;
  let b: Cert;
  before(async () => {
    certs = tmpDir('wogate-tls-');
    [a, b] = await Promise.all([makeCert(certs, 'a'), makeCert(certs, 'b')]);
  });
  after(() => fs.rmSync(certs, { recursive: true, force: true }));

  describe('HTTPS listener', () => {
    let t: TestDaemon;
    let live: { cert: string; key: string };
    before(async () => {
      live = { cert: path.join(certs, 'live.pem'), key: path.join(certs, 'live.key') };
      fs.copyFileSync(a.cert, live.cert);
      fs.copyFileSync(a.key, live.key);
      t = await startDaemon({ edit: (c) => (c.server.tls = { cert: `file:${live.cert}`, key: `file:${live.key}` }) });
    });
    after(async () => {
      await t.stop();
    });

    it('reports an https:// URL and answers over TLS with HSTS and the other security headers', async () => {
      expect(t.daemon.url).to.match(/^https:\/\/127\.0\.0\.1:\d+$/);
      const r = await request(`${t.daemon.url}/healthz`, { ca: a.cert });
      expect(r.status).to.equal(200);
      expect(r.headers['strict-transport-security']).to.equal('max-age=31536000; includeSubDomains');
      expectSecurityHeaders(r, 'GET /healthz over TLS');
      const started = await auditOf(t, 'daemon.started');
      expect(started.at(-1)?.details.tls).to.include({ fingerprint256: a.fingerprint256 });
    });

    it('refuses a TLS 1.1 handshake with a protocol-version alert and accepts TLS 1.2', async () => {
      // SECLEVEL=0 lets this client offer TLS 1.1 at all, so the refusal is the server's.
      const old = await handshake(t.daemon.url, [a.cert], { minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' });
      expect(old).to.deep.equal({ ok: false, code: 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION' });
      const v12 = await handshake(t.daemon.url, [a.cert], { maxVersion: 'TLSv1.2' });
      expect(v12).to.include({ ok: true, protocol: 'TLSv1.2', fingerprint256: a.fingerprint256 });
      expect((v12 as { cipher: string }).cipher).to.match(/^ECDHE-RSA-(AES\d+-GCM|CHACHA20-POLY1305)/);
      const v13 = await handshake(t.daemon.url, [a.cert]);
      expect(v13).to.include({ ok: true, protocol: 'TLSv1.3' });
    });

    it('refuses TLS 1.2 cipher suites without forward secrecy or AEAD', async () => {
      for (const cipher of ['AES128-GCM-SHA256', 'ECDHE-RSA-AES128-SHA256', 'AES256-SHA']) {
        const r = await handshake(t.daemon.url, [a.cert], { maxVersion: 'TLSv1.2', ciphers: `${cipher}@SECLEVEL=0` });
        expect(r.ok, cipher).to.equal(false);
      }
    });

    it('swaps to the renewed certificate on reload: a new connection sees the new one', async () => {
      fs.copyFileSync(b.cert, live.cert);
      fs.copyFileSync(b.key, live.key);
      t.daemon.reload();
      const r = await handshake(t.daemon.url, [b.cert]);
      expect(r).to.include({ ok: true, fingerprint256: b.fingerprint256 });
      const reloaded = await auditOf(t, 'tls.reloaded');
      expect(reloaded.at(-1)?.details).to.include({ fingerprint256: b.fingerprint256 });
      // The protocol floor survives the swap.
      const old = await handshake(t.daemon.url, [b.cert], { minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' });
      expect(old).to.deep.equal({ ok: false, code: 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION' });
    });

    it('keeps the current certificate when the renewed key does not match it, and audits why without the key', async () => {
      const current = await handshake(t.daemon.url, [a.cert, b.cert]);
      expect(current.ok).to.equal(true);
      const other = current.ok && current.fingerprint256 === a.fingerprint256 ? b : a;
      fs.copyFileSync(other.cert, live.cert); // the key file stays the old one: a half-done renewal
      t.daemon.reload();
      const after = await handshake(t.daemon.url, [a.cert, b.cert]);
      expect(after).to.include({ ok: true, fingerprint256: (current as { fingerprint256: string }).fingerprint256 });
      const refused = await auditOf(t, 'tls.reload_refused');
      const msg = String(refused.at(-1)?.details.error);
      expect(msg).to.include(live.key).and.include('does not belong to the certificate');
      expect(msg).to.not.include('PRIVATE KEY');
    });
  });

  describe('HTTPS with minVersion TLSv1.3', () => {
    it('refuses a TLS 1.2 handshake', async () => {
      const t = await startDaemon({ edit: (c) => (c.server.tls = { cert: `file:${a.cert}`, key: `file:${a.key}`, minVersion: 'TLSv1.3' }) });
      try {
        expect(await handshake(t.daemon.url, [a.cert], { maxVersion: 'TLSv1.2' })).to.deep.equal({ ok: false, code: 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION' });
        expect(await handshake(t.daemon.url, [a.cert])).to.include({ ok: true, protocol: 'TLSv1.3' });
      } finally {
        await t.stop();
      }
    });
  });

  describe('refusing to start', () => {
    let dir: string;
    beforeEach(() => {
      dir = tmpDir();
    });
    afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

    it('refuses plain HTTP on a non-loopback address', async () => {
      const e = await refusal(dir, (c) => (c.server.host = '0.0.0.0'));
      expect(e.code).to.equal('CONFIG_INVALID');
      expect(e.message).to.include('/server/host').and.include('"0.0.0.0" is not a loopback address').and.include('server.tls');
    });

    it('starts plain HTTP on a non-loopback address only with allowPlaintext, and warns loudly', async () => {
      const lines: string[] = [];
      const file = exampleConfig(dir, (c) => {
        c.sources[0].webhook.secrets = ['env:TEST_HOOK_SECRET'];
        c.server.host = '0.0.0.0';
        c.server.allowPlaintext = true;
      });
      const d = await serve({ configFile: file, env: { ...process.env, TEST_HOOK_SECRET: HOOK_SECRET }, log: quiet(lines) });
      await d.stop();
      expect(d.url).to.match(/^http:\/\/0\.0\.0\.0:/);
      expect(lines.some((l) => l.startsWith('warn PLAINTEXT HTTP on 0.0.0.0'))).to.equal(true);
    });

    it('refuses a key file that is not a private key, naming the file and not its content', async () => {
      const bad = path.join(dir, 'bad.key');
      fs.writeFileSync(bad, '-----BEGIN PRIVATE KEY-----\nTm90IGEga2V5IGF0IGFsbA==\n-----END PRIVATE KEY-----\n', { mode: 0o600 });
      const e = await refusal(dir, (c) => (c.server.tls = { cert: `file:${a.cert}`, key: `file:${bad}` }));
      expect(e.code).to.equal('CONFIG_INVALID');
      expect(e.message).to.include('/server/tls/key').and.include(bad).and.include('does not hold an unencrypted PEM private key');
      expect(e.message).to.not.include('Tm90IGEga2V5');
    });

    it("refuses a key that doesn't belong to the certificate", async () => {
      const e = await refusal(dir, (c) => (c.server.tls = { cert: `file:${a.cert}`, key: `file:${b.key}` }));
      expect(e.code).to.equal('CONFIG_INVALID');
      expect(e.message).to.include(`the private key in ${b.key} does not belong to the certificate in ${a.cert}`);
    });

    it('refuses a certificate file that does not parse, naming it', async () => {
      const bad = path.join(dir, 'bad.pem');
      fs.writeFileSync(bad, '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
      const e = await refusal(dir, (c) => (c.server.tls = { cert: `file:${bad}`, key: `file:${a.key}` }));
      expect(e.code).to.equal('CONFIG_INVALID');
      expect(e.message).to.include('/server/tls/cert').and.include(`certificate 1 in ${bad} does not parse`);
    });

    it('refuses a missing key file as an unresolved secret', async () => {
      const e = await refusal(dir, (c) => (c.server.tls = { cert: `file:${a.cert}`, key: `file:${path.join(dir, 'nope.key')}` }));
      expect(e.code).to.equal('CONFIG_SECRET_UNRESOLVED');
      expect(e.message).to.include('/server/tls/key').and.include('nope.key').and.include('ENOENT');
    });

    it('refuses TLS versions below 1.2, an inline or vault: key, and a trustProxy entry that is not an address', () => {
      const low = exampleConfig(dir, (c) => (c.server.tls = { cert: `file:${a.cert}`, key: `file:${a.key}`, minVersion: 'TLSv1.1' }));
      expect(() => loadConfig(low)).to.throw(/\/server\/tls\/minVersion/);
      for (const key of [fs.readFileSync(a.key, 'utf8'), 'vault:tls/wogate#key']) {
        const inline = exampleConfig(dir, (c) => (c.server.tls = { cert: `file:${a.cert}`, key }));
        expect(() => loadConfig(inline)).to.throw(/\/server\/tls\/key/).with.property('message').that.does.not.include('PRIVATE KEY');
      }
      const proxy = exampleConfig(dir, (c) => (c.server.trustProxy = ['10.0.0.0/33']));
      expect(() => loadConfig(proxy)).to.throw(/\/server\/trustProxy\/0: "10.0.0.0\/33" is not an IP address/);
      const open = exampleConfig(dir, (c) => (c.server.trustProxy = true));
      expect(() => loadConfig(open)).to.throw(/\/server\/trustProxy/);
    });
  });

  describe('headers and size limits over plain HTTP on loopback', () => {
    let t: TestDaemon;
    before(async () => {
      t = await startDaemon();
    });
    after(async () => {
      await t.stop();
    });

    it('sends the security headers on 200, 404, 401 and 400 responses, and no HSTS without TLS', async () => {
      const replies: [string, Reply, number][] = [
        ['GET /healthz', await request(`${t.daemon.url}/healthz`), 200],
        ['GET /nope', await request(`${t.daemon.url}/nope`), 404],
        ['GET /v1/grants without a token', await request(`${t.daemon.url}/v1/grants`), 401],
        ['POST an unsigned hook', await request(`${t.daemon.url}/v1/hooks/demo-cmms`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' }), 400],
      ];
      for (const [what, r, status] of replies) {
        expect(r.status, what).to.equal(status);
        expectSecurityHeaders(r, what);
        expect(r.headers['strict-transport-security'], what).to.equal(undefined);
      }
      expect(jsonError(replies[1]![1]).code).to.equal('NOT_FOUND');
    });

    it('lets the public PKI routes be loaded cross-origin', async () => {
      const r = await request(`${t.daemon.url}/pki/none/ca.pem`);
      expect(r.status).to.equal(404);
      expect(r.headers['cross-origin-resource-policy']).to.equal('cross-origin');
    });

    it('answers an admin body over 16 kB with 413 JSON, before reading it as a request', async () => {
      const body = JSON.stringify({ reason: 'x'.repeat(17 * 1024) });
      const r = await request(`${t.daemon.url}/v1/grants/g-1/revoke`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      expect(r.status).to.equal(413);
      expect(jsonError(r)).to.deep.equal({ code: 'BODY_TOO_LARGE', message: 'request body is larger than the 16384 bytes this API accepts' });
      expectSecurityHeaders(r, '413');
    });

    it('answers a request whose headers exceed 16 kB with 431', async () => {
      // A raw socket: the bytes go straight to the server (no HTTP client, and no nock passthrough,
      // which every test file shares once any of them imports nock).
      const { hostname, port } = new URL(t.daemon.url);
      const status = await new Promise<string>((resolve, reject) => {
        const sock = net.connect({ host: hostname, port: Number(port) }, () => {
          sock.write(`GET /healthz HTTP/1.1\r\nHost: ${hostname}\r\nX-Filler: ${'a'.repeat(17 * 1024)}\r\nConnection: close\r\n\r\n`);
        });
        let got = '';
        sock.setEncoding('utf8');
        sock.setTimeout(10_000, () => sock.destroy(new Error('no answer within 10 s')));
        sock.on('data', (c: string) => (got += c));
        sock.on('close', () => resolve(got.split('\r\n', 1)[0] ?? ''));
        sock.on('error', (e: NodeJS.ErrnoException) => (e.code === 'ECONNRESET' || e.code === 'EPIPE' ? undefined : reject(e)));
      });
      expect(status).to.match(/^HTTP\/1\.1 431 /);
    });
  });

  describe('rate limits', () => {
    let t: TestDaemon;
    beforeEach(async () => {
      t = await startDaemon({ edit: (c) => (c.server.rateLimits = { hooks: { perMinute: 5 }, admin: { perMinute: 3 } }) });
    });
    afterEach(async () => {
      await t.stop();
    });

    const hook = (headers: Record<string, string> = {}) =>
      request(`${t.daemon.url}/v1/hooks/demo-cmms`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: '{}' });

    it('answers hooks over the limit with 429 JSON and Retry-After, counts each and audits the burst once', async () => {
      const statuses: number[] = [];
      let limited: Reply | undefined;
      for (let i = 0; i < 12; i++) {
        const r = await hook();
        statuses.push(r.status);
        if (r.status === 429) limited = r;
      }
      expect(statuses).to.deep.equal([400, 400, 400, 400, 400, 429, 429, 429, 429, 429, 429, 429]);
      const r = limited as Reply;
      expect(jsonError(r).code).to.equal('RATE_LIMITED');
      expect(jsonError(r).message).to.include('more than 5 hooks requests a minute');
      expect(Number(r.headers['retry-after'])).to.be.within(1, 60);
      expectSecurityHeaders(r, '429');
      expect(await metric(t, 'wogate_rate_limited_total{route="hooks"}')).to.equal(7);
      const audits = await auditOf(t, 'api.rate_limited');
      expect(audits).to.have.length(1);
      expect(audits[0]).to.include({ actor: 'remote:127.0.0.1', subject: 'hooks' });
      // Only the deliveries under the limit reached the signature check; unsigned, they are audited as one burst.
      await t.daemon.refusals.flush();
      const refused = await auditOf(t, 'hook.refused');
      expect(refused.map((r) => r.details.count)).to.deep.equal([5]);
    });

    it('limits the admin API separately from hooks, before authentication', async () => {
      const statuses: number[] = [];
      for (let i = 0; i < 6; i++) statuses.push((await request(`${t.daemon.url}/v1/grants`)).status);
      expect(statuses).to.deep.equal([401, 401, 401, 429, 429, 429]);
      expect((await hook()).status).to.equal(400);
      expect(await metric(t, 'wogate_rate_limited_total{route="admin"}')).to.equal(3);
      expect(await auditOf(t, 'api.rate_limited')).to.have.length(1);
      // The refusals under the limit reached the auth layer (one aggregated record); the ones over it did not.
      await t.daemon.refusals.flush();
      expect((await auditOf(t, 'auth.refused')).map((r) => r.details.count)).to.deep.equal([3]);
    });

    it('counts the staff pages against the admin limit, before any session is looked at', async () => {
      await t.stop();
      t = await startDaemon({
        edit: (c) => {
          c.server.rateLimits = { admin: { perMinute: 3 } };
          c.auth = { oidc: { issuer: 'http://127.0.0.1:9/idp', audience: 'wogate', roles: { ops: 'operator' } } };
          c.staff = { oidc: { clientId: 'staff', clientSecret: 'env:TEST_HOOK_SECRET', redirectUri: 'http://127.0.0.1:9/staff/callback' } };
        },
      });
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) statuses.push((await request(`${t.daemon.url}/staff`)).status);
      expect(statuses).to.deep.equal([303, 303, 303, 429, 429]);
      expect(await metric(t, 'wogate_rate_limited_total{route="admin"}')).to.equal(2);
    });

    it('ignores X-Forwarded-For when no proxy is trusted, so a client cannot pick its own key', async () => {
      const statuses: number[] = [];
      for (let i = 0; i < 7; i++) statuses.push((await hook({ 'x-forwarded-for': `203.0.113.${i}` })).status);
      expect(statuses.slice(5)).to.deep.equal([429, 429]);
    });
  });

  describe('login limiter (for the vendor portal)', () => {
    it('allows 10 sign-in requests a minute per address by default, then answers 429 and audits once', async () => {
      const audited: AuditEntry[] = [];
      const deps = { metrics: createMetrics(), log: quiet(), audit: { append: async (e: AuditEntry) => void audited.push(e) } as unknown as AuditLog };
      const app = express();
      app.post('/login', loginLimiter(deps), (_req, res) => void res.json({ ok: true }));
      const server = await new Promise<http.Server>((resolve) => {
        const s = app.listen(0, '127.0.0.1', () => resolve(s));
      });
      try {
        const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/login`;
        const statuses: number[] = [];
        for (let i = 0; i < 13; i++) statuses.push((await request(url, { method: 'POST' })).status);
        expect(statuses).to.deep.equal([...Array<number>(10).fill(200), 429, 429, 429]);
        expect(audited).to.have.length(1);
        expect(audited[0]).to.include({ action: 'api.rate_limited', subject: 'login' });
        expect((await deps.metrics.rateLimited.get()).values).to.deep.equal([{ value: 3, labels: { route: 'login' } }]);
      } finally {
        server.closeAllConnections();
        await new Promise((r) => server.close(r));
      }
    });
  });

  describe('rate limits behind a trusted proxy', () => {
    it('keys on the address the trusted proxy forwards', async () => {
      const t = await startDaemon({ edit: (c) => {
        c.server.rateLimits = { hooks: { perMinute: 2 } };
        c.server.trustProxy = ['loopback'];
      } });
      try {
        const hook = (client: string) => request(`${t.daemon.url}/v1/hooks/demo-cmms`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-forwarded-for': client }, body: '{}' });
        const first: number[] = [];
        for (let i = 0; i < 3; i++) first.push((await hook('203.0.113.7')).status);
        expect(first).to.deep.equal([400, 400, 429]);
        expect((await hook('203.0.113.8')).status).to.equal(400);
        const audits = await auditOf(t, 'api.rate_limited');
        expect(audits.map((r) => r.actor)).to.deep.equal(['remote:203.0.113.7']);
        // The proxy terminated TLS and says so: HSTS goes out.
        const viaTls = await request(`${t.daemon.url}/healthz`, { headers: { 'x-forwarded-proto': 'https' } });
        expect(viaTls.headers['strict-transport-security']).to.equal('max-age=31536000; includeSubDomains');
      } finally {
        await t.stop();
      }
    });
  });
});
