// Runs a reconcile pass whose target call never returns, after telling the parent (via a marker
// file) that the call has started; the parent then SIGKILLs this process. The journal intent is on
// disk, the outcome never is: the state a power cut or OOM kill leaves behind.
import fs from 'node:fs';
import { AuditLog } from '../../src/audit/audit.js';
import { Reconciler } from '../../src/engine/reconciler.js';
import { silentLogger } from '../../src/log.js';
import { createMetrics } from '../../src/metrics.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import { MemoryTarget } from './memory-target.js';
import { order, policySet, register } from './world.js';

const [file, marker] = process.argv.slice(2) as [string, string];
const now = new Date('2026-11-22T10:00:00Z');
const store = new SqliteStore(file);
await store.migrate();
await store.upsertOrder(order({ assetIds: ['PLC-1'] }, now), now);
const fw = new MemoryTarget('fw');
fw.beforeCall = () => {
  fs.writeFileSync(marker, 'x');
  // Hang with a live event loop, as a slow firewall call would, until the parent kills us.
  setInterval(() => undefined, 1000);
  return new Promise(() => {});
};
const rec = new Reconciler({
  store, targets: new Map([['fw', fw]]), audit: new AuditLog(store, () => now), log: silentLogger, metrics: createMetrics(),
  clock: () => now, random: () => 0.5, world: () => ({ policySet: policySet(), register }), retry: { baseMs: 1000, maxMs: 60_000, alertAfter: 3 }, lookbackMs: 86_400_000,
});
await rec.reconcile();
