import http from 'node:http';
import zlib from 'node:zlib';
import { expect } from 'chai';
import fc from 'fast-check';
import { createToken } from '../../src/api/tokens.js';
import type { Logger } from '../../src/log.js';
import { startDaemon, type TestDaemon } from '../helpers/daemon.js';

interface Reply {
  status: number;
  type: string;
  body: string;
}

/** A raw request: fetch would refuse some of these paths and encodings before sending them. */
function send(url: string, o: { method: string; path: string; headers?: Record<string, string>; body?: Buffer }): Promise<Reply> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: hostname, port, method: o.method, path: o.path, headers: { ...o.headers, ...(o.body ? { 'content-length': String(o.body.length) } : {}) }, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type'] ?? ''), body }));
    });
    req.on('error', reject);
    req.end(o.body);
  });
}

// Client errors before (and just after) authentication: whatever the shape, a 4xx with wogate's
// JSON error body, and nothing logged as an error with a stack.
describe('fuzz: client errors at the HTTP edge', function () {
  this.timeout(180_000);
  let t: TestDaemon;
  let token: string;
  const errors: string[] = [];
  const log: Logger = { debug() {}, info() {}, warn() {}, error: (m, meta) => void errors.push(`${m} ${JSON.stringify(meta ?? {})}`), child: () => log };
  before(async () => {
    t = await startDaemon({ log, edit: (c) => (c.server.rateLimits = { hooks: { perMinute: 1_000_000 }, admin: { perMinute: 1_000_000 } }) });
    token = (await createToken(t.daemon.runtime.store, 'fuzz', ['admin'], new Date())).token;
  });
  after(async () => {
    await t.stop();
  });
  beforeEach(() => {
    errors.length = 0;
  });

  const expectClientError = (r: Reply, method: string, what: string) => {
    expect(r.status, what).to.be.within(400, 499);
    if (method === 'HEAD') return;
    expect(r.type, what).to.match(/^application\/json/);
    const body = JSON.parse(r.body) as { error?: { code?: unknown; message?: unknown } };
    expect(body.error?.code, what).to.be.a('string').that.matches(/^[A-Z_]+$/);
    expect(body.error?.message, what).to.be.a('string').that.does.not.match(/\n\s+at /);
  };

  const json = Buffer.from('{"data":{"id":"WO-1"}}');
  const shapes: [string, { method: string; path: string; headers?: Record<string, string>; body?: Buffer; auth?: boolean }, number, string][] = [
    ['a hook with Content-Encoding gzip over a body that is not gzip', { method: 'POST', path: '/v1/hooks/demo-cmms', headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' }, body: json }, 400, 'HOOK_BODY_INVALID'],
    ['a hook with Content-Encoding deflate over a body that is not deflate', { method: 'POST', path: '/v1/hooks/demo-cmms', headers: { 'content-type': 'application/json', 'content-encoding': 'deflate' }, body: json }, 400, 'HOOK_BODY_INVALID'],
    ['a hook with Content-Encoding br over a body that is not brotli', { method: 'POST', path: '/v1/hooks/demo-cmms', headers: { 'content-type': 'application/json', 'content-encoding': 'br' }, body: json }, 400, 'HOOK_BODY_INVALID'],
    ['a hook with a bogus Content-Encoding', { method: 'POST', path: '/v1/hooks/demo-cmms', headers: { 'content-type': 'application/json', 'content-encoding': 'bogus' }, body: json }, 415, 'UNSUPPORTED_MEDIA_TYPE'],
    ['a hook whose gzip body inflates past the source limit', { method: 'POST', path: '/v1/hooks/demo-cmms', headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' }, body: zlib.gzipSync(Buffer.alloc(2_000_000, 0x20)) }, 413, 'HOOK_BODY_TOO_LARGE'],
    ['GET /pki/%ZZ/crl', { method: 'GET', path: '/pki/%ZZ/crl' }, 400, 'BAD_REQUEST'],
    ['HEAD /v1/hooks/%E0%A4%A', { method: 'HEAD', path: '/v1/hooks/%E0%A4%A' }, 400, ''],
    ['POST /v1/hooks/%E0%A4%A', { method: 'POST', path: '/v1/hooks/%E0%A4%A', headers: { 'content-type': 'application/json' }, body: json }, 400, 'BAD_REQUEST'],
    ['GET /v1/grants/%ZZ with a token', { method: 'GET', path: '/v1/grants/%ZZ', auth: true }, 400, 'BAD_REQUEST'],
    ['an admin JSON body in an unsupported charset', { method: 'POST', path: '/v1/grants/g-1/revoke', headers: { 'content-type': 'application/json; charset=klingon' }, body: json, auth: true }, 415, 'UNSUPPORTED_MEDIA_TYPE'],
    ['an admin JSON body with Content-Encoding gzip that is not gzip', { method: 'POST', path: '/v1/grants/g-1/revoke', headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' }, body: json, auth: true }, 400, 'BAD_REQUEST'],
    ['an admin JSON body with a bogus Content-Encoding, before authentication', { method: 'POST', path: '/v1/grants/g-1/revoke', headers: { 'content-type': 'application/json', 'content-encoding': 'x-bogus' }, body: json }, 415, 'UNSUPPORTED_MEDIA_TYPE'],
  ];
  for (const [what, req, status, code] of shapes) {
    it(`${what} → ${status}${code ? ` ${code}` : ''}, no error logged`, async () => {
      const r = await send(t.daemon.url, { ...req, headers: { ...req.headers, ...(req.auth ? { authorization: `Bearer ${token}` } : {}) } });
      expectClientError(r, req.method, what);
      expect(r.status).to.equal(status);
      if (code) expect((JSON.parse(r.body) as { error: { code: string } }).error.code).to.equal(code);
      expect(errors).to.deep.equal([]);
    });
  }

  it('never answers random shapes with a 5xx, always with the JSON error body, and logs no error', async () => {
    const escape = fc.oneof(fc.constantFrom('%ZZ', '%', '%E0%A4%A', '%C0%AF', '%FF', '%00', '%2F', '%25', '%u1234'), fc.stringMatching(/^[A-Za-z0-9._~-]{0,12}$/));
    const segment = fc.array(escape, { minLength: 1, maxLength: 3 }).map((a) => a.join(''));
    const path = fc.oneof(
      segment.map((s) => `/v1/hooks/${s}`),
      fc.constant('/v1/hooks/demo-cmms'),
      segment.map((s) => `/v1/grants/${s}`),
      segment.map((s) => `/v1/grants/${s}/revoke`),
      segment.map((s) => `/v1/vendors/${s}/suspend`),
      segment.map((s) => `/pki/${s}/crl`),
      segment.map((s) => `/pki/${s}/ca.pem`),
      segment.map((s) => `/${s}`),
    );
    const encoding = fc.option(fc.oneof(fc.constantFrom('gzip', 'deflate', 'br', 'identity', 'gzip, deflate', 'GZIP', 'zstd'), fc.stringMatching(/^[a-z-]{1,10}$/)), { nil: undefined });
    const charset = fc.option(fc.oneof(fc.constantFrom('utf-8', 'latin1', 'utf-16', 'utf-32', 'klingon', ''), fc.stringMatching(/^[a-z0-9-]{1,10}$/)), { nil: undefined });
    const body = fc.oneof(fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)), fc.json().map((j) => Buffer.from(j)), fc.constant(zlib.gzipSync(json)));
    await fc.assert(
      fc.asyncProperty(fc.record({ method: fc.constantFrom('GET', 'HEAD', 'POST', 'PUT', 'DELETE'), path, encoding, charset, body, auth: fc.boolean() }), async (x) => {
        const headers: Record<string, string> = { 'content-type': `application/json${x.charset !== undefined ? `; charset=${x.charset}` : ''}` };
        if (x.encoding !== undefined) headers['content-encoding'] = x.encoding;
        if (x.auth) headers.authorization = `Bearer ${token}`;
        const r = await send(t.daemon.url, { method: x.method, path: x.path, headers, ...(x.method === 'GET' || x.method === 'HEAD' ? {} : { body: x.body }) });
        const what = JSON.stringify({ ...x, body: x.body.length, auth: x.auth });
        expect(r.status, what).to.be.below(500);
        if (r.status >= 400) expectClientError(r, x.method, what);
      }),
      { numRuns: 300 },
    );
    expect(errors).to.deep.equal([]);
  });
});
