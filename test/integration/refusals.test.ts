import { expect } from 'chai';
import { createToken } from '../../src/api/tokens.js';
import { RefusalAggregator } from '../../src/api/refusals.js';
import { createMetrics } from '../../src/metrics.js';
import { silentLogger, type Logger } from '../../src/log.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import type { AuditRecord } from '../../src/store/store.js';
import { startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { demoOrder } from '../../src/demo/demo.js';

async function metric(t: TestDaemon, line: string): Promise<number> {
  const text = await (await fetch(`${t.daemon.url}/metrics`)).text();
  const m = text.split('\n').find((l) => l.startsWith(`${line} `));
  return m ? Number(m.split(' ')[1]) : 0;
}

/** Runs `n` calls of `send`, `width` at a time. */
async function flood(n: number, width: number, send: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < n) await send(next++);
  }));
}

const recordsAfter = async (t: TestDaemon, seq: number): Promise<AuditRecord[]> => t.daemon.runtime.store.readAudit(seq, 100_000);
const lastSeq = async (t: TestDaemon): Promise<number> => (await t.daemon.runtime.store.readAudit(0, 1_000_000)).at(-1)?.seq ?? 0;

describe('refusals of unauthenticated callers are aggregated in the audit log', function () {
  this.timeout(180_000);
  let t: TestDaemon;
  const warns: string[] = [];
  const log: Logger = { debug() {}, info() {}, warn: (m) => void warns.push(m), error() {}, child: () => log };
  beforeEach(async () => {
    warns.length = 0;
    // Limits out of the way: the point is what reaches the refusal handlers.
    t = await startDaemon({ log, edit: (c) => (c.server.rateLimits = { hooks: { perMinute: 1_000_000 }, admin: { perMinute: 1_000_000 } }) });
  });
  afterEach(async () => {
    await t.stop();
  });

  it('adds a handful of records for 10,000 refused requests, counts every one, and logs a few warnings', async () => {
    const before = await lastSeq(t);
    await flood(10_000, 16, async (i) => {
      const res = i % 3 === 0
        ? await t.hook({ any: i }, { secret: 'whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=' })
        : i % 3 === 1
          ? await fetch(`${t.daemon.url}/v1/grants`, { headers: { authorization: `Bearer wgt_000000000000_${'A'.repeat(43)}` } })
          : await fetch(`${t.daemon.url}/no/such/page/${i}`);
      await res.arrayBuffer();
    });
    await t.daemon.refusals.flush();
    const added = await recordsAfter(t, before);
    // One record per (address, kind, window): the flood may straddle a window boundary.
    expect(added.length).to.be.within(2, 6);
    const hook = added.filter((r) => r.action === 'hook.refused');
    const auth = added.filter((r) => r.action === 'auth.refused');
    expect(hook.reduce((n, r) => n + Number(r.details.count), 0)).to.equal(3334);
    expect(auth.reduce((n, r) => n + Number(r.details.count), 0)).to.equal(3333);
    expect(hook[0]).to.include({ actor: 'remote:127.0.0.1', subject: 'hook:HOOK_SIGNATURE_INVALID' });
    expect(hook[0]?.details).to.include({ aggregated: true, code: 'HOOK_SIGNATURE_INVALID', status: 401, windowSeconds: 60 });
    expect(Date.parse(String(hook[0]?.details.lastSeen))).to.be.at.least(Date.parse(String(hook[0]?.details.firstSeen)));
    expect(hook[0]?.details.samples).to.be.an('array').with.length.greaterThan(0);
    expect(auth[0]?.details).to.include({ aggregated: true, code: 'AUTH_INVALID', reason: 'unknown_token', status: 401 });
    // The unknown pages went to the metrics only.
    expect(added.some((r) => JSON.stringify(r).includes('/no/such/page'))).to.equal(false);
    expect(await metric(t, 'wogate_refused_total{area="hook",kind="HOOK_SIGNATURE_INVALID"}')).to.equal(3334);
    expect(await metric(t, 'wogate_refused_total{area="auth",kind="unknown_token"}')).to.equal(3333);
    expect(await metric(t, 'wogate_refused_total{area="http",kind="NOT_FOUND"}')).to.equal(3333);
    expect(warns.length).to.be.at.most(6);
    expect((await t.daemon.runtime.audit.verify()).ok).to.equal(true);
  });

  it('aggregates a replayed signed webhook (a replay proves no key) and keeps individual records for a token without the scope', async () => {
    const before = await lastSeq(t);
    const id = 'msg_replayed_once';
    const order = demoOrder('WO-R1', 'APPR', new Date(), new Date());
    expect((await t.hook(order, { id })).status).to.equal(202);
    expect((await t.hook(order, { id })).status).to.equal(409);
    expect((await t.hook(order, { id })).status).to.equal(409);
    const { token } = await createToken(t.daemon.runtime.store, 'reader', ['explain'], new Date());
    for (let i = 0; i < 2; i++) expect((await fetch(`${t.daemon.url}/v1/grants`, { headers: { authorization: `Bearer ${token}` } })).status).to.equal(403);
    for (let i = 0; i < 50; i++) expect((await t.hook(order, { id })).status).to.equal(409);
    await t.daemon.refusals.flush();
    const added = await recordsAfter(t, before);
    const replays = added.filter((r) => r.action === 'hook.refused' && r.details.code === 'HOOK_REPLAY');
    expect(replays).to.have.length(1);
    expect(replays[0]?.details).to.include({ aggregated: true, count: 52, status: 409 });
    const scope = added.filter((r) => r.action === 'auth.refused' && r.details.reason === 'scope');
    expect(scope).to.have.length(2);
    expect(scope[0]?.actor).to.equal('token:reader');
  });

  it('writes the windows still open when the daemon stops', async () => {
    for (let i = 0; i < 3; i++) await (await fetch(`${t.daemon.url}/v1/grants`)).arrayBuffer();
    const file = t.daemon.runtime.config.store.path;
    await t.daemon.stop();
    const store = new SqliteStore(file);
    try {
      const recs = (await store.readAudit(0, 100_000)).filter((r) => r.action === 'auth.refused');
      expect(recs).to.have.length(1);
      expect(recs[0]?.details).to.include({ aggregated: true, reason: 'missing', count: 3 });
    } finally {
      await store.close();
    }
  });
});

describe('RefusalAggregator', () => {
  const setup = (o: { maxBuckets?: number } = {}) => {
    let now = Date.parse('2026-03-01T10:00:00Z');
    const written: { actor: string; subject: string; details: Record<string, unknown> }[] = [];
    const agg = new RefusalAggregator({
      audit: { append: async (e) => void written.push(e) }, log: silentLogger, metrics: createMetrics(), clock: () => new Date(now), windowMs: 60_000, ...o,
    });
    return { agg, written, advance: (ms: number) => (now += ms) };
  };
  const refusal = (remote: string, kind = 'HOOK_SIGNATURE_INVALID') => ({ area: 'hook' as const, remote, kind, status: 401, reason: 'signature does not verify', method: 'POST', path: '/v1/hooks/x' });

  it('writes a window when it closes, with count and first and last seen, and starts a new one', async () => {
    const { agg, written, advance } = setup();
    agg.record(refusal('192.0.2.1'));
    advance(30_000);
    agg.record(refusal('192.0.2.1'));
    await agg.flush(false);
    expect(written).to.have.length(0);
    advance(31_000);
    await agg.flush(false);
    expect(written).to.have.length(1);
    expect(written[0]?.details).to.include({ count: 2, firstSeen: '2026-03-01T10:00:00.000Z', lastSeen: '2026-03-01T10:00:30.000Z' });
    agg.record(refusal('192.0.2.1'));
    await agg.close();
    expect(written).to.have.length(2);
  });

  it('groups IPv6 clients by /56 and folds addresses beyond the bucket limit into one', async () => {
    const { agg, written } = setup({ maxBuckets: 2 });
    agg.record(refusal('2001:db8:0:1::1'));
    agg.record(refusal('2001:db8:0:2::1'));
    for (let i = 0; i < 10; i++) agg.record(refusal(`198.51.100.${i}`));
    await agg.close();
    expect(written.map((w) => [w.actor, w.details.count])).to.deep.equal([['remote:2001:db8::/56', 2], ['remote:198.51.100.0', 1], ['remote:*', 9]]);
  });
});
