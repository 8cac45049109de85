import { expect } from 'chai';
import fc from 'fast-check';
import nock from 'nock';
import { WogateError } from '../../../src/domain/index.js';
import type { Logger } from '../../../src/log.js';
import { silentLogger } from '../../../src/log.js';
import { compileString, renderUrl, TemplateValueError } from '../../../src/targets/http-template.js';
import { HttpTarget, type HttpTargetOptions } from '../../../src/targets/http.js';
import { entryId, TargetError, type CallContext, type TargetGrant } from '../../../src/targets/target.js';

const BASE = 'http://gw.test';
const CANARY = 'Bearer CANARY-9d1e6b0c-never-print-me';

const grant: TargetGrant = {
  id: 'g-1',
  key: 'cmms:WO-1|jdoe|gw|net:10.8.0.21>10.20.0.10:502/tcp',
  orderKey: 'cmms:WO-1',
  source: 'cmms',
  orderId: 'WO-1',
  vendorId: 'acme',
  technicianId: 'jdoe',
  assetId: 'PLC-1',
  targetId: 'gw',
  resource: { kind: 'network', sourceAddress: '10.8.0.21', address: '10.20.0.10', port: 502, protocol: 'tcp' },
  validFrom: new Date('2026-11-22T09:00:00Z'),
  validUntil: new Date('2026-11-22T11:00:00Z'),
};
/** The id the target names this grant's entry by: the same for every grant opening the resource. */
const ENTRY = entryId('gw', grant.resource);
const ctx: CallContext = { now: new Date('2026-11-22T10:00:00Z'), log: silentLogger };

function target(over: Partial<HttpTargetOptions> = {}): HttpTarget {
  return new HttpTarget({
    id: 'gw',
    baseUrl: BASE,
    headers: { Authorization: CANARY },
    provision: { method: 'PUT', url: '/access/{{entry.id}}', body: { tech: '{{grant.technicianId}}' } },
    revoke: { method: 'DELETE', url: '/access/{{entry.id}}' },
    ...over,
  });
}

/** nock 14 only delivers errors that are Error instances; a plain object leaves the request hanging. */
function netError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

async function failure(p: Promise<unknown>): Promise<TargetError> {
  try {
    await p;
  } catch (e) {
    expect(e).to.be.instanceOf(TargetError);
    return e as TargetError;
  }
  throw new Error('expected the call to fail');
}

function configError(f: () => unknown): WogateError {
  try {
    f();
  } catch (e) {
    expect(e).to.be.instanceOf(WogateError);
    expect((e as WogateError).code).to.equal('CONFIG_INVALID');
    return e as WogateError;
  }
  throw new Error('expected construction to fail');
}

describe('targets/http: generic HTTP target', () => {
  let t: HttpTarget;
  before(() => nock.disableNetConnect());
  after(() => nock.enableNetConnect());
  afterEach(async () => {
    nock.cleanAll();
    await t?.close();
  });

  describe('templating', () => {
    it('percent-encodes substituted values so they stay inside their URL path segment', async () => {
      let seen = '';
      nock(BASE).put((p) => ((seen = p), true)).reply(200, '{}');
      t = target({ provision: { method: 'PUT', url: '/access/{{grant.technicianId}}' } });
      await t.provision({ ...grant, technicianId: 'a b/c?d#e%' }, ctx);
      expect(seen).to.equal('/access/a%20b%2Fc%3Fd%23e%25');
    });

    it('keeps the type of a JSON leaf that is exactly one placeholder and interpolates mixed strings', async () => {
      let body: unknown;
      nock(BASE).put(`/access/${ENTRY}`, (b) => ((body = b), true)).reply(200, '{}');
      t = target({
        provision: {
          method: 'PUT',
          url: '/access/{{entry.id}}',
          body: {
            ttl: '{{grant.ttlSeconds}}', port: '{{ resource.port }}', until: '{{grant.validUntilEpoch}}',
            to: '{{resource.address}}:{{resource.port}}/{{resource.protocol}}', fixed: [true, null, 3], nested: { iso: '{{grant.validUntil}}' },
          },
        },
      });
      await t.provision(grant, ctx);
      expect(body).to.deep.equal({
        ttl: 3600, port: 502, until: 1795345200, to: '10.20.0.10:502/tcp', fixed: [true, null, 3], nested: { iso: '2026-11-22T11:00:00.000Z' },
      });
    });

    it('sends templated headers alongside the target headers', async () => {
      nock(BASE, { reqheaders: { authorization: CANARY, 'x-order': 'WO-1', 'x-tech': 'acme/jdoe' } }).put(`/access/${ENTRY}`).reply(204);
      t = target({ provision: { method: 'PUT', url: '/access/{{entry.id}}', headers: { 'X-Order': '{{grant.orderId}}', 'X-Tech': '{{grant.vendorId}}/{{grant.technicianId}}' } } });
      expect(await t.provision(grant, ctx)).to.deep.equal({ key: ENTRY });
    });

    it('refuses a header value containing CR or LF and sends nothing', async () => {
      const scope = nock(BASE).put(`/access/${ENTRY}`).reply(200, '{}');
      t = target({ provision: { method: 'PUT', url: '/access/{{entry.id}}', headers: { 'X-Tech': '{{grant.technicianId}}' } } });
      const e = await failure(t.provision({ ...grant, technicianId: 'jdoe\r\nX-Admin: yes' }, ctx));
      expect(e.retryable).to.equal(false);
      expect(e.message).to.include('{{grant.technicianId}}').and.include('CR, LF');
      expect(scope.isDone()).to.equal(false);
    });

    it('refuses a value that would make a "." or ".." path segment, or an empty one', async () => {
      t = target({ revoke: { method: 'DELETE', url: '/access/{{grant.technicianId}}' } });
      for (const id of ['..', '.', '']) {
        const e = await failure(t.revoke({ ...grant, technicianId: id }, undefined, ctx));
        expect(e.retryable, id).to.equal(false);
      }
    });

    it('rejects an unknown placeholder at construction, naming the template and the placeholder', () => {
      const e = configError(() => target({ revoke: { method: 'DELETE', url: '/access/{{grant.nope}}' } }));
      expect(e.message).to.include('revoke.url').and.include('"/access/{{grant.nope}}"').and.include('{{grant.nope}}');
      expect(configError(() => target({ provision: { method: 'PUT', url: '/x', body: { a: ['{{grant.idd}}'] } } })).message).to.include('provision.body.a[0]');
      expect(configError(() => target({ provision: { method: 'PUT', url: '/x', headers: { 'X-A': '{{resource.host}}' } } })).message).to.include('provision.headers.X-A');
      configError(() => target({ provision: { method: 'PUT', url: '/x/{{grant.id}' } }));
    });

    it('rejects names that would reach prototypes, in placeholders, paths and body keys', () => {
      for (const url of ['/x/{{__proto__.polluted}}', '/x/{{grant.constructor}}', '/x/{{ref.prototype}}']) {
        expect(configError(() => target({ revoke: { method: 'DELETE', url } })).message).to.match(/forbidden name/);
      }
      configError(() => target({ provision: { method: 'PUT', url: '/x', refFrom: 'data.__proto__.id' } }));
      configError(() => target({ provision: { method: 'PUT', url: '/x', body: JSON.parse('{"__proto__": {"admin": true}}') } }));
      configError(() => target({ provision: { method: 'PUT', url: '/x', body: { constructor: 'x' } } }));
      expect(({} as Record<string, unknown>).polluted).to.equal(undefined);
    });

    it('rejects ref placeholders where no ref can exist, and a full URL that would send credentials elsewhere', () => {
      expect(configError(() => target({ provision: { method: 'PUT', url: '/x/{{ref.key}}' } })).message).to.match(/not available in provision/);
      expect(configError(() => target({ revoke: { method: 'DELETE', url: '/x/{{ref.id}}' } })).message).to.match(/needs refFrom/);
      configError(() => target({ list: { method: 'GET', url: '/x/{{grant.id}}', keyFrom: 'id' } }));
      configError(() => target({ revoke: { method: 'DELETE', url: 'http://evil.test/{{grant.id}}' } }));
      configError(() => target({ baseUrl: 'http://gw.test/?token=x' }));
      configError(() => target({ headers: { Authorization: 'Bearer x\n' } }));
    });

    it('refuses a URL that names one order\'s grant: grants of several orders share one entry', () => {
      for (const name of ['grant.id', 'grant.key', 'grant.orderKey', 'grant.orderId', 'grant.source']) {
        for (const op of ['provision', 'revoke'] as const) {
          const e = configError(() => target({ [op]: { method: op === 'revoke' ? 'DELETE' : 'PUT', url: `/access/{{${name}}}` } }));
          expect(e.message, `${op} ${name}`).to.include(`${op}.url`).and.include('{{entry.id}}');
        }
      }
      // In a body it is information, not the entry's address.
      target({ provision: { method: 'PUT', url: '/access/{{entry.id}}', body: { order: '{{grant.orderKey}}' } } });
    });

    it('names one entry for every grant opening the same resource on a target, and another on another target or resource', () => {
      const other = { ...grant, id: 'g-2', key: 'cmms:WO-2|jdoe|gw|net:10.8.0.21>10.20.0.10:502/tcp', orderKey: 'cmms:WO-2', orderId: 'WO-2' };
      expect(entryId('gw', other.resource)).to.equal(ENTRY).and.match(/^[0-9a-f]{32}$/);
      expect(entryId('gw2', grant.resource)).to.not.equal(ENTRY);
      expect(entryId('gw', { kind: 'network', sourceAddress: '10.8.0.21', address: '10.20.0.10', port: 503, protocol: 'tcp' })).to.not.equal(ENTRY);
    });

    it('keeps every substituted string inside its path segment or query value, on the configured host (property)', () => {
      const path = compileString('/access/{{grant.id}}/end?q={{grant.key}}', 'p', () => undefined);
      fc.assert(
        fc.property(fc.string({ unit: 'binary' }), fc.string({ unit: 'binary', minLength: 1 }), (s, q) => {
          const vals = new Map([['grant.id', s], ['grant.key', q]]);
          if (s === '' || s === '.' || s === '..') {
            expect(() => renderUrl(path, vals, 'p')).to.throw(TemplateValueError);
            return;
          }
          const url = new URL(`${BASE}/api${renderUrl(path, vals, 'p')}`);
          expect(url.host).to.equal('gw.test');
          const segs = url.pathname.split('/');
          expect(segs).to.have.length(5);
          expect(segs.slice(0, 3)).to.deep.equal(['', 'api', 'access']);
          expect(decodeURIComponent(segs[3] ?? '')).to.equal(s);
          expect(segs[4]).to.equal('end');
          expect(url.searchParams.get('q')).to.equal(q);
          expect(url.hash).to.equal('');
        }),
        { numRuns: 500 },
      );
    });

    it('refuses a lone UTF-16 surrogate in a URL value instead of throwing a URIError', () => {
      const path = compileString('/a/{{grant.id}}', 'p', () => undefined);
      expect(() => renderUrl(path, new Map([['grant.id', 'x\ud800']]), 'p')).to.throw(TemplateValueError);
    });
  });

  describe('provision and update', () => {
    it('returns the ref id read from the JSON answer at refFrom', async () => {
      nock(BASE).post('/access').reply(201, { data: { id: 'remote-42' } });
      t = target({ provision: { method: 'POST', url: '/access', body: { grant: '{{grant.id}}' }, refFrom: 'data.id' } });
      expect(await t.provision(grant, ctx)).to.deep.equal({ id: 'remote-42' });
    });

    it('keeps a numeric ref id a number', async () => {
      nock(BASE).post('/access').reply(201, { items: [{ id: 7 }] });
      t = target({ provision: { method: 'POST', url: '/access', refFrom: 'items.0.id' } });
      expect(await t.provision(grant, ctx)).to.deep.equal({ id: 7 });
    });

    it('returns the entry id as ref when no refFrom is configured', async () => {
      nock(BASE).put(`/access/${ENTRY}`).reply(200, 'not json, and nobody needs it');
      t = target();
      expect(await t.provision(grant, ctx)).to.deep.equal({ key: ENTRY });
    });

    it('updates through the stored ref id and keeps it when the answer carries none', async () => {
      nock(BASE).patch('/access/remote-42', { until: '2026-11-22T11:00:00.000Z' }).reply(204);
      t = target({
        provision: { method: 'POST', url: '/access', refFrom: 'id' },
        update: { method: 'PATCH', url: '/access/{{ref.id}}', body: { until: '{{grant.validUntil}}' } },
      });
      expect(await t.update(grant, { id: 'remote-42' }, ctx)).to.deep.equal({ id: 'remote-42' });
    });

    it('updates by provisioning again when no update request is configured', async () => {
      const scope = nock(BASE).put(`/access/${ENTRY}`).reply(200, '{}');
      t = target();
      expect(await t.update(grant, { key: ENTRY }, ctx)).to.deep.equal({ key: ENTRY });
      expect(scope.isDone()).to.equal(true);
    });

    it('fails retryably with TARGET_RESPONSE_INVALID when a 2xx answer is HTML but refFrom needs JSON', async () => {
      nock(BASE).post('/access').reply(200, '<html><body>Proxy login</body></html>', { 'content-type': 'text/html' });
      t = target({ provision: { method: 'POST', url: '/access', refFrom: 'data.id' } });
      const e = await failure(t.provision(grant, ctx));
      expect(e.retryable).to.equal(true);
      expect(e.details).to.include({ code: 'TARGET_RESPONSE_INVALID', status: 200 });
      expect(e.message).to.include('"data.id"').and.include('text/html').and.include('Proxy login');
    });

    it('fails retryably with TARGET_RESPONSE_INVALID when the JSON answer lacks the refFrom value', async () => {
      nock(BASE).post('/access').reply(201, { data: {} });
      t = target({ provision: { method: 'POST', url: '/access', refFrom: 'data.id' } });
      const e = await failure(t.provision(grant, ctx));
      expect(e.retryable).to.equal(true);
      expect(e.details?.code).to.equal('TARGET_RESPONSE_INVALID');
    });
  });

  describe('revoke', () => {
    for (const status of [404, 410]) {
      it(`counts ${status} as already revoked`, async () => {
        nock(BASE).delete(`/access/${ENTRY}`).reply(status, 'gone');
        t = target();
        await t.revoke(grant, undefined, ctx);
      });
    }

    it('is idempotent: revoking twice succeeds both times', async () => {
      nock(BASE).delete(`/access/${ENTRY}`).reply(204).delete(`/access/${ENTRY}`).reply(404);
      t = target();
      await t.revoke(grant, { key: ENTRY }, ctx);
      await t.revoke(grant, { key: ENTRY }, ctx);
    });

    it('uses the configured goneStatus instead of the default', async () => {
      nock(BASE).delete(`/access/${ENTRY}`).reply(404);
      t = target({ revoke: { method: 'DELETE', url: '/access/{{entry.id}}', goneStatus: [409] } });
      expect((await failure(t.revoke(grant, undefined, ctx))).retryable).to.equal(false);
    });

    it('fails as not retryable when it needs a ref id and none was stored', async () => {
      const scope = nock(BASE).delete(/.*/).reply(204);
      t = target({ provision: { method: 'POST', url: '/access', refFrom: 'id' }, revoke: { method: 'DELETE', url: '/access/{{ref.id}}' } });
      const e = await failure(t.revoke(grant, undefined, ctx));
      expect(e.retryable).to.equal(false);
      expect(e.message).to.include('{{ref.id}}');
      expect(scope.isDone()).to.equal(false);
    });
  });

  describe('errors', () => {
    it('honours Retry-After seconds on 429 as retryable with retryAfterMs', async () => {
      nock(BASE).put(`/access/${ENTRY}`).reply(429, 'slow down', { 'Retry-After': '7' });
      t = target();
      const e = await failure(t.provision(grant, ctx));
      expect(e.retryable).to.equal(true);
      expect(e.details).to.include({ status: 429, retryAfterMs: 7000 });
    });

    it('honours a Retry-After HTTP date on 503, measured from the call time', async () => {
      nock(BASE).delete(`/access/${ENTRY}`).reply(503, '', { 'Retry-After': new Date(ctx.now.getTime() + 30_000).toUTCString() });
      t = target();
      const e = await failure(t.revoke(grant, undefined, ctx));
      expect(e.retryable).to.equal(true);
      expect(e.details?.retryAfterMs).to.equal(30_000);
    });

    it('treats 500 as retryable and 400 as not, naming method, path, status and a capped body excerpt', async () => {
      nock(BASE).put(`/access/${ENTRY}`).reply(500, 'x'.repeat(1000)).put(`/access/${ENTRY}`).reply(400, '{"error":"bad window"}');
      t = target();
      const e500 = await failure(t.provision(grant, ctx));
      expect(e500.retryable).to.equal(true);
      expect(e500.message).to.include(`PUT /access/${ENTRY} answered 500`).and.include(`${'x'.repeat(200)}…`).and.not.include('x'.repeat(201));
      const e400 = await failure(t.provision(grant, ctx));
      expect(e400.retryable).to.equal(false);
      expect(e400.message).to.include('answered 400').and.include('bad window');
    });

    it('treats a timeout as retryable', async () => {
      nock(BASE).put(`/access/${ENTRY}`).delay(2000).reply(200, '{}');
      t = target({ timeoutMs: 100 });
      const e = await failure(t.provision(grant, ctx));
      expect(e.retryable).to.equal(true);
      expect(e.message).to.include('no answer within 100 ms');
    });

    it('treats a network error as retryable', async () => {
      nock(BASE).put(`/access/${ENTRY}`).replyWithError(netError('ECONNRESET', 'socket hang up'));
      t = target();
      const e = await failure(t.provision(grant, ctx));
      expect(e.retryable).to.equal(true);
      expect(e.message).to.include('network error');
    });

    it('treats a call aborted by the caller as retryable', async () => {
      nock(BASE).put(`/access/${ENTRY}`).delay(2000).reply(200, '{}');
      t = target();
      const e = await failure(t.provision(grant, { ...ctx, signal: AbortSignal.timeout(50) }));
      expect(e.retryable).to.equal(true);
      expect(e.message).to.include('aborted');
    });

    it('does not follow a redirect', async () => {
      nock(BASE).put(`/access/${ENTRY}`).reply(302, '', { Location: 'http://elsewhere.test/steal' });
      const elsewhere = nock('http://elsewhere.test').put('/steal').reply(200, '{}');
      t = target();
      const e = await failure(t.provision(grant, ctx));
      expect(e.retryable).to.equal(false);
      expect(e.message).to.include('redirects are not followed');
      expect(elsewhere.isDone()).to.equal(false);
    });

    it('fails retryably when the answer exceeds maxResponseBytes', async () => {
      nock(BASE).put(`/access/${ENTRY}`).reply(200, 'y'.repeat(5000));
      t = target({ maxResponseBytes: 1000 });
      const e = await failure(t.provision(grant, ctx));
      expect(e.retryable).to.equal(true);
      expect(e.details?.code).to.equal('TARGET_RESPONSE_INVALID');
    });

    it('never puts header values or the query string into error messages, details or logs', async () => {
      const lines: string[] = [];
      const log: Logger = {
        debug: (m, meta) => lines.push(m + JSON.stringify(meta)),
        info: (m, meta) => lines.push(m + JSON.stringify(meta)),
        warn: (m, meta) => lines.push(m + JSON.stringify(meta)),
        error: (m, meta) => lines.push(m + JSON.stringify(meta)),
        child: () => log,
      };
      nock(BASE, { reqheaders: { authorization: CANARY } })
        .put(`/access/${ENTRY}`).query(true).reply(500, 'upstream down')
        .put(`/access/${ENTRY}`).query(true).replyWithError(netError('ECONNREFUSED', `connect ECONNREFUSED ${BASE}/access/g-1?sig=QUERYSECRET`));
      t = target({ provision: { method: 'PUT', url: '/access/{{entry.id}}?sig=QUERYSECRET', headers: { 'X-Token': CANARY } } });
      const errors = [await failure(t.provision(grant, { ...ctx, log })), await failure(t.provision(grant, { ...ctx, log }))];
      const seen = [...errors.flatMap((e) => [e.message, JSON.stringify(e.details), String(e.stack)]), ...lines].join('\n');
      expect(seen).to.include(`/access/${ENTRY}`);
      expect(seen).to.not.include('CANARY');
      expect(seen).to.not.include('QUERYSECRET');
    });
  });

  describe('list', () => {
    it('returns nothing when no list request is configured (drift detection unavailable)', async () => {
      t = target();
      expect(await t.list(ctx)).to.deep.equal([]);
    });

    it('maps the configured items to entries with key, ref and expiry', async () => {
      nock(BASE).get('/access').reply(200, { items: [{ id: 'r-1', grant: 'k-1', until: '2026-11-22T11:00:00Z' }, { id: 2, grant: 'k-2', until: 1795345200 }] });
      t = target({ list: { method: 'GET', url: '/access', itemsFrom: 'items', refFrom: 'id', keyFrom: 'grant', expiresFrom: 'until' } });
      expect(await t.list(ctx)).to.deep.equal([
        { ref: { id: 'r-1' }, key: 'k-1', expiresAt: new Date('2026-11-22T11:00:00Z') },
        { ref: { id: 2 }, key: 'k-2', expiresAt: new Date('2026-11-22T11:00:00Z') },
      ]);
    });

    it('fails with TARGET_RESPONSE_INVALID when the items are not an array', async () => {
      nock(BASE).get('/access').reply(200, { items: 'nope' });
      t = target({ list: { method: 'GET', url: '/access', itemsFrom: 'items', keyFrom: 'id' } });
      expect((await failure(t.list(ctx))).details?.code).to.equal('TARGET_RESPONSE_INVALID');
    });
  });
});
