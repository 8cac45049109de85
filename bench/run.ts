// Benchmarks that print figures; nothing here asserts a time.
//   (a) verified webhook deliveries stored per second by wogate's hook route, next to a bare
//       express endpoint doing only the HMAC check, in the same run, as a ratio;
//   (b) p50/p99 from a "close" webhook accepted (202) to its grants' revoke confirmed, with
//       10,000 active grants.
// Usage: npm run bench [-- --seconds 5 --grants 10000 --samples 200]
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { createApp } from '../src/api/app.js';
import { AuditLog } from '../src/audit/audit.js';
import { makeRegister, type Asset, type PolicySet } from '../src/domain/index.js';
import { Intake } from '../src/engine/intake.js';
import { Reconciler } from '../src/engine/reconciler.js';
import { Scheduler } from '../src/engine/scheduler.js';
import { silentLogger } from '../src/log.js';
import { createMetrics } from '../src/metrics.js';
import { GenericSource } from '../src/sources/generic.js';
import { signWebhook, parseSecret } from '../src/sources/standard-webhooks.js';
import { SqliteStore } from '../src/store/sqlite.js';
import { MemoryTarget } from '../test/helpers/memory-target.js';

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(String(process.argv[i]).replace(/^--/, ''), String(process.argv[i + 1]));
const SECONDS = Number(args.get('seconds') ?? 5);
const GRANTS = Number(args.get('grants') ?? 10_000);
const SAMPLES = Number(args.get('samples') ?? 200);
const CONCURRENCY = Number(args.get('concurrency') ?? 32);

const SECRET = `whsec_${randomBytes(32).toString('base64')}`;
const KEY = parseSecret(SECRET);
const ASSETS_PER_ORDER = 4;
// The bench measures throughput, not the per-client limits (a single loopback client would hit them at once).
const UNLIMITED = { hooks: { perMinute: 1e9 }, admin: { perMinute: 1e9 }, login: { perMinute: 1e9 } };

const mapping = {
  fields: {
    id: 'data.id', status: 'data.status', vendorId: 'data.vendor', technicians: 'data.technicians', assets: 'data.assets',
    windowStart: 'data.start', windowEnd: 'data.end', approvals: 'data.approvals', revision: 'data.revision',
  },
  statusMap: { APPR: 'approved', CLOSE: 'closed' },
} as const;

function orderBody(id: string, status: string, revision: number, assets: string[], now: number): string {
  return JSON.stringify({
    type: 'workorder.changed',
    data: { id, status, vendor: 'acme', technicians: ['t1'], assets, start: new Date(now - 60_000).toISOString(), end: new Date(now + 8 * 3_600_000).toISOString(), approvals: ['sup'], revision: String(revision) },
  });
}

function signed(body: string): Record<string, string> {
  const id = `msg_${randomBytes(12).toString('hex')}`;
  const ts = Math.floor(Date.now() / 1000);
  return { 'content-type': 'application/json', 'webhook-id': id, 'webhook-timestamp': String(ts), 'webhook-signature': signWebhook(KEY, id, ts, body) };
}

const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
function post(url: string, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', agent, headers: signed(body) }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function load(url: string, makeBody: (i: number) => string): Promise<{ rps: number; ok: number; bad: number }> {
  const end = Date.now() + SECONDS * 1000;
  let ok = 0;
  let bad = 0;
  let i = 0;
  const worker = async () => {
    while (Date.now() < end) {
      const status = await post(url, makeBody(i++));
      if (status === 202 || status === 200) ok++;
      else bad++;
    }
  };
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  return { rps: ok / secs, ok, bad };
}

function listen(app: express.Express): Promise<{ url: string; close(): Promise<void> }> {
  return new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () =>
      resolve({ url: `http://127.0.0.1:${(s.address() as AddressInfo).port}`, close: () => new Promise((r) => { s.closeAllConnections(); s.close(() => r()); }) }));
  });
}

/** The baseline: read the body, check the Standard Webhooks HMAC, answer. Nothing else. */
function bareApp(): express.Express {
  const app = express();
  app.post('/hook', express.raw({ type: () => true, limit: 65536 }), (req, res) => {
    const id = String(req.headers['webhook-id']);
    const ts = String(req.headers['webhook-timestamp']);
    const expected = createHmac('sha256', KEY).update(`${id}.${ts}.`).update(req.body as Buffer).digest();
    const ok = String(req.headers['webhook-signature']).split(' ').some((s) => {
      const sig = Buffer.from(s.slice(3), 'base64');
      return sig.length === expected.length && timingSafeEqual(sig, expected);
    });
    res.status(ok ? 202 : 401).json({ ok });
  });
  return app;
}

function world(orders: number): { policySet: PolicySet; register: ReturnType<typeof makeRegister> } {
  const assets: Asset[] = [];
  // Register ids in canonical form, as the register loader makes them (orders name them A<n>; the mapping folds them).
  for (let i = 0; i < orders * ASSETS_PER_ORDER; i++) {
    assets.push({ id: `a${i}`, class: 'PLC', criticality: 'high', site: 's', zone: 'z', endpoints: [{ address: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, ports: [502], protocol: 'tcp' }] });
  }
  const register = makeRegister(assets, [{ id: 'acme', technicians: [{ id: 't1', address: '10.8.0.21' }] }]);
  const policySet: PolicySet = {
    policies: [{ name: 'bench', file: 'bench', rules: [{ id: 'r', match: {}, require: { statuses: ['approved'], minApprovals: 1, leadTimeMs: 0, graceMs: 0, maxDurationMs: 86_400_000 }, grant: [{ type: 'network', target: 'fw' }] }] }],
  };
  return { policySet, register };
}

async function daemon(dir: string, orders: number, scoped = true) {
  const store = new SqliteStore(path.join(dir, 'bench.db'));
  await store.migrate();
  const fw = new MemoryTarget('fw');
  const metrics = createMetrics();
  const clock = () => new Date();
  const audit = new AuditLog(store, clock);
  const w = world(orders);
  const source = new GenericSource({ id: 'cmms', secrets: [SECRET], toleranceSeconds: 300, maxBodyBytes: 65536, mapping: mapping as never });
  const sources = new Map([['cmms', source]]);
  const reconciler = new Reconciler({ store, targets: new Map([['fw', fw]]), audit, log: silentLogger, metrics, clock, random: Math.random, world: () => w, retry: { baseMs: 1000, maxMs: 60_000, alertAfter: 5 }, lookbackMs: 86_400_000 });
  const scheduler = new Scheduler({ reconcile: (keys) => reconciler.reconcile(keys), clock, log: silentLogger, fullReconcileMs: 3_600_000, debounceMs: 0 });
  const intake = new Intake({ store, sources, audit, log: silentLogger, metrics, clock, random: Math.random, world: () => w, onChange: (keys) => scheduler.trigger('change', scoped ? keys : undefined) });
  const app = createApp({ store, sources, reconciler, audit, log: silentLogger, metrics, clock, world: () => w, onHookStored: () => void intake.drain(), notReady: async () => null, rateLimits: UNLIMITED });
  return { store, fw, reconciler, scheduler, intake, app };
}

async function closeToRevoke(dir: string, orders: number, scopedPasses: boolean, samples: number) {
  const e = await daemon(dir, orders, scopedPasses);
  const now = Date.now();
  const source = new GenericSource({ id: 'cmms', secrets: [SECRET], toleranceSeconds: 300, maxBodyBytes: 65536, mapping: mapping as never });
  for (let o = 0; o < orders; o++) {
    const assets = Array.from({ length: ASSETS_PER_ORDER }, (_, k) => `A${o * ASSETS_PER_ORDER + k}`);
    const { order } = source.parseEvent(JSON.parse(orderBody(`WO-${o}`, 'APPR', 1, assets, now)), { webhookId: `seed-${o}`, eventTime: new Date() });
    if (!order) throw new Error('generic source events carry the order');
    await e.store.upsertOrder(order, new Date());
  }
  await e.scheduler.start();
  const active = (await e.store.listGrants({ states: ['active'] })).length;
  const t0 = process.hrtime.bigint();
  await e.reconciler.reconcile();
  const fullPassMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const server = await listen(e.app);
  const lat: number[] = [];
  for (let o = 0; o < Math.min(samples, orders); o++) {
    const key = `cmms/WO-${o}`;
    const assets = Array.from({ length: ASSETS_PER_ORDER }, (_, k) => `A${o * ASSETS_PER_ORDER + k}`);
    const status = await post(`${server.url}/v1/hooks/cmms`, orderBody(`WO-${o}`, 'CLOSE', 2, assets, now));
    const accepted = process.hrtime.bigint();
    if (status !== 202) throw new Error(`close webhook answered ${status}`);
    while ((await e.store.listGrants({ orderKey: key, states: ['active', 'revoking'] })).length > 0) await new Promise((r) => setImmediate(r));
    lat.push(Number(process.hrtime.bigint() - accepted) / 1e6);
  }
  lat.sort((a, b) => a - b);
  e.scheduler.stop();
  await server.close();
  await e.store.close();
  return { lat, active, fullPassMs };
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

async function main() {
  console.log(`wogate bench on ${os.cpus().length} cpu(s), node ${process.version}; ${SECONDS}s per throughput run, concurrency ${CONCURRENCY}`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wogate-bench-'));
  try {
    // (a) intake throughput. wogate's drain is off here: this measures verify + map + store + 202.
    const bare = await listen(bareApp());
    const d = await daemon(dir, 1);
    const noDrainApp = createApp({ store: d.store, sources: new Map([['cmms', new GenericSource({ id: 'cmms', secrets: [SECRET], toleranceSeconds: 300, maxBodyBytes: 65536, mapping: mapping as never })]]), reconciler: d.reconciler, audit: new AuditLog(d.store, () => new Date()), log: silentLogger, metrics: createMetrics(), clock: () => new Date(), world: () => world(1), onHookStored: () => undefined, notReady: async () => null, rateLimits: UNLIMITED });
    const wg = await listen(noDrainApp);
    const body = (i: number) => orderBody(`WO-${i}`, 'APPR', 1, ['A0'], Date.now());
    await load(`${bare.url}/hook`, body); // warm-up
    const base = await load(`${bare.url}/hook`, body);
    const ours = await load(`${wg.url}/v1/hooks/cmms`, body);
    console.log(`\n(a) webhook intake, ${SECONDS}s each`);
    console.log(`  bare express + HMAC check : ${base.rps.toFixed(0)} req/s (${base.bad} non-2xx)`);
    console.log(`  wogate verified + stored  : ${ours.rps.toFixed(0)} req/s (${ours.bad} non-2xx)`);
    console.log(`  ratio wogate / bare       : ${(ours.rps / base.rps).toFixed(2)}`);
    await wg.close();
    await bare.close();
    await d.store.close();

    // (b) close → revoke latency with GRANTS active grants: scoped passes (what the daemon does),
    // then the same with every event triggering a full pass, as the baseline.
    const orders = Math.ceil(GRANTS / ASSETS_PER_ORDER);
    const scoped = await closeToRevoke(fs.mkdtempSync(path.join(dir, 'b-')), orders, true, SAMPLES);
    const full = await closeToRevoke(fs.mkdtempSync(path.join(dir, 'c-')), orders, false, Math.min(SAMPLES, 50));
    console.log(`\n(b) close webhook 202 → revoke confirmed, ${scoped.active} active grants (${orders} orders)`);
    console.log(`  scoped pass (daemon)      : p50 ${pct(scoped.lat, 50).toFixed(1)} ms, p99 ${pct(scoped.lat, 99).toFixed(1)} ms, max ${(scoped.lat.at(-1) ?? NaN).toFixed(1)} ms (${scoped.lat.length} samples)`);
    console.log(`  full pass per event       : p50 ${pct(full.lat, 50).toFixed(1)} ms, p99 ${pct(full.lat, 99).toFixed(1)} ms (${full.lat.length} samples)`);
    console.log(`  ratio full / scoped (p50) : ${(pct(full.lat, 50) / pct(scoped.lat, 50)).toFixed(0)}x`);
    console.log(`  one periodic full pass over everything: ${scoped.fullPassMs.toFixed(1)} ms`);
  } finally {
    agent.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

await main();
