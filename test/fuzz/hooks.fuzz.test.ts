import { expect } from 'chai';
import fc from 'fast-check';
import type { SqliteStore } from '../../src/store/sqlite.js';
import { startDaemon, type TestDaemon } from '../helpers/daemon.js';

// Hostile input at the one unauthenticated write route: whatever arrives, the answer is a 4xx
// with a JSON error, nothing is stored, and nothing is provisioned.
describe('fuzz: webhook route', function () {
  this.timeout(120_000);
  let t: TestDaemon;
  before(async () => {
    t = await startDaemon();
  });
  after(async () => {
    await t.stop();
  });

  const headerValue = fc.oneof(fc.string({ maxLength: 120 }), fc.constant(''), fc.constantFrom('v1,', 'v1,AAAA', 'v1a,xyz', '1614265330', '-1', '9'.repeat(30)));
  const printable = (s: string) => s.replace(/[^\x20-\x7e]/g, '');

  it('answers arbitrary unsigned or mis-signed deliveries with a 4xx JSON error and stores nothing', async () => {
    const db = (t.daemon.runtime.store as SqliteStore).raw();
    const count = () => (db.prepare('SELECT count(*) n FROM hook_events').get() as { n: number }).n;
    const before = count();
    await fc.assert(
      fc.asyncProperty(fc.record({ id: headerValue, ts: headerValue, sig: headerValue, body: fc.oneof(fc.string({ maxLength: 400 }), fc.json({ maxDepth: 3 })) }), async (x) => {
        const res = await fetch(`${t.daemon.url}/v1/hooks/demo-cmms`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'webhook-id': printable(x.id), 'webhook-timestamp': printable(x.ts), 'webhook-signature': printable(x.sig) },
          body: x.body,
        });
        expect(res.status).to.be.within(400, 499);
        const body = (await res.json()) as { error: { code: string; message: string } };
        expect(body.error.code).to.match(/^HOOK_/);
        expect(body.error.message).to.not.match(/\n\s+at /);
      }),
      { numRuns: 150 },
    );
    expect(count()).to.equal(before);
    expect(t.gateway.requests).to.have.length(0);
  });

  it('answers correctly signed but arbitrary JSON with 202 only when it maps to an order, never 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(fc.jsonValue({ maxDepth: 4 }), async (payload) => {
        const res = await t.hook(payload);
        expect(res.status).to.be.oneOf([202, 400]);
      }),
      { numRuns: 150 },
    );
  });
});
