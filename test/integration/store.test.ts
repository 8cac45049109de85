import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import Database from 'better-sqlite3';
import { SQLITE_MIGRATIONS } from '../../src/store/sqlite-migrations.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import { order, tmpDir } from '../helpers/world.js';

describe('store: SQLite file', () => {
  let dir: string;
  let file: string;
  let store: SqliteStore;
  beforeEach(async () => {
    dir = tmpDir();
    file = path.join(dir, 'nested', 's.db');
    store = new SqliteStore(file);
    await store.migrate();
  });
  afterEach(async () => {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('creates the file readable by its owner only, in WAL mode', () => {
    expect(fs.statSync(file).mode & 0o777).to.equal(0o600);
    expect(store.raw().pragma('journal_mode', { simple: true })).to.equal('wal');
  });

  it('applies migrations once and refuses a store written by a newer wogate', async () => {
    expect(await store.migrate()).to.equal(0);
    store.raw().prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'future', 'x')").run();
    try {
      await store.migrate();
      expect.fail('migrate should refuse');
    } catch (e) {
      expect((e as Error).message).to.match(/schema version 999, newer/);
    }
  });

  it('keeps tokens made before owners existed (migration 7): they list without owner or last use', async () => {
    const old = path.join(dir, 'v6.db');
    const db = new Database(old);
    db.exec('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)');
    for (const m of SQLITE_MIGRATIONS.filter((x) => x.version <= 6)) {
      db.exec(m.sql);
      db.prepare('INSERT INTO schema_migrations VALUES (?, ?, ?)').run(m.version, m.name, 'x');
    }
    db.prepare("INSERT INTO api_tokens (id, name, hash, scopes, created_at) VALUES ('0123456789ab', 'old', 'ff', '[\"admin\"]', 1)").run();
    db.close();
    const s = new SqliteStore(old);
    try {
      expect(await s.migrate()).to.equal(SQLITE_MIGRATIONS.filter((x) => x.version > 6).length);
      const [t] = await s.listTokens();
      expect(t).to.deep.include({ id: '0123456789ab', name: 'old', scopes: ['admin'] });
      expect(t).not.to.have.any.keys('owner', 'lastUsedAt');
    } finally {
      await s.close();
    }
  });

  it('records a token\'s last use at most once per granularity, and rotates only live tokens', async () => {
    const at = (ms: number) => new Date(Date.UTC(2026, 0, 1) + ms);
    await store.createToken({ id: 'aaaaaaaaaaaa', name: 'n', hash: '00', scopes: [], createdAt: at(0), owner: 'alice' });
    await store.touchToken('aaaaaaaaaaaa', at(1_000), at(1_000 - 60_000));
    await store.touchToken('aaaaaaaaaaaa', at(30_000), at(30_000 - 60_000));
    expect((await store.getToken('aaaaaaaaaaaa'))?.lastUsedAt).to.deep.equal(at(1_000));
    await store.touchToken('aaaaaaaaaaaa', at(61_001), at(61_001 - 60_000));
    expect((await store.getToken('aaaaaaaaaaaa'))?.lastUsedAt).to.deep.equal(at(61_001));
    expect(await store.rotateToken('aaaaaaaaaaaa', '11')).to.equal(true);
    expect(await store.getToken('aaaaaaaaaaaa')).to.include({ hash: '11', owner: 'alice' });
    await store.revokeToken('aaaaaaaaaaaa', at(70_000));
    expect(await store.rotateToken('aaaaaaaaaaaa', '22')).to.equal(false);
    expect(await store.rotateToken('bbbbbbbbbbbb', '22')).to.equal(false);
  });

  it('stores a webhook delivery once and reports the second as a duplicate', async () => {
    const e = { source: 's', webhookId: 'msg_1', receivedAt: new Date(), eventTime: new Date(), body: '{}' };
    expect((await store.recordHookEvent(e)).result).to.equal('stored');
    expect((await store.recordHookEvent(e)).result).to.equal('duplicate');
    expect((await store.recordHookEvent({ ...e, source: 'other' })).result, 'ids are per source').to.equal('stored');
    expect(await store.pendingHookEvents(10)).to.have.length(2);
  });

  it('prunes only finished deliveries older than the cut-off', async () => {
    const old = new Date('2026-01-01T00:00:00Z');
    const a = await store.recordHookEvent({ source: 's', webhookId: 'a', receivedAt: old, eventTime: old, body: '{}' });
    await store.recordHookEvent({ source: 's', webhookId: 'b', receivedAt: old, eventTime: old, body: '{}' });
    if (a.result === 'stored') await store.finishHookEvent(a.seq, 'processed');
    expect(await store.pruneHookEvents(new Date('2026-02-01T00:00:00Z'))).to.equal(1);
    expect((await store.pendingHookEvents(10)).map((e) => e.webhookId)).to.deep.equal(['b']);
  });

  it('reads back the approved scope of each order asked for, a few orders or a full pass\'s worth', async () => {
    const now = new Date('2026-11-22T10:00:00Z');
    for (let i = 0; i < 100; i++) await store.upsertOrder(order({ id: `WO-${i}`, assetIds: [`plc-${i}`] }, now), now);
    await store.upsertOrder(order({ id: 'WO-draft', status: 'draft' }, now), now);
    const few = await store.approvedScopes(['cmms/WO-3', 'cmms/WO-7', 'cmms/WO-draft', 'cmms/unknown']);
    expect([...few.keys()]).to.deep.equal(['cmms/WO-3', 'cmms/WO-7']);
    expect(few.get('cmms/WO-7')?.assetIds).to.deep.equal(['plc-7']);
    const all = await store.approvedScopes([...Array.from({ length: 100 }, (_, i) => `cmms/WO-${i}`), 'cmms/WO-draft']);
    expect(all.size).to.equal(100);
    expect(all.get('cmms/WO-42')?.assetIds).to.deep.equal(['plc-42']);
    expect(all.has('cmms/WO-draft')).to.equal(false);
    const some = await store.approvedScopes(Array.from({ length: 80 }, (_, i) => `cmms/WO-${i}`));
    expect(some.size, 'only the orders asked for').to.equal(80);
  });

  it('round-trips a work order and orders revisions numerically and by time', async () => {
    const now = new Date('2026-11-22T10:00:00Z');
    expect(await store.upsertOrder(order({ revision: '9' }, now), now)).to.equal('inserted');
    expect(await store.upsertOrder(order({ revision: '9' }, now), now)).to.equal('unchanged');
    expect(await store.upsertOrder(order({ revision: '10', status: 'in_progress' }, now), now)).to.equal('updated');
    expect(await store.upsertOrder(order({ revision: '8' }, now), now)).to.equal('stale');
    const back = await store.getOrder('cmms', 'WO-1');
    expect(back?.status).to.equal('in_progress');
    expect(back?.window.start).to.be.instanceOf(Date);
    expect(back?.window.start.getTime()).to.equal(order({}, now).window.start.getTime());
    expect(await store.upsertOrder(order({ id: 'WO-2', revision: '2026-11-22T10:00:00.000Z' }, now), now)).to.equal('inserted');
    expect(await store.upsertOrder(order({ id: 'WO-2', revision: '2026-11-22T09:59:59.000Z' }, now), now)).to.equal('stale');
  });

  it('lists only orders whose window ends after the cut-off', async () => {
    const now = new Date('2026-11-22T10:00:00Z');
    await store.upsertOrder(order({ id: 'old', window: { start: new Date('2026-11-01T00:00:00Z'), end: new Date('2026-11-02T00:00:00Z') } }, now), now);
    await store.upsertOrder(order({ id: 'new' }, now), now);
    expect((await store.listOrders(new Date('2026-11-20T00:00:00Z'))).map((o) => o.id)).to.deep.equal(['new']);
  });

  it('allows one live grant per key but keeps revoked ones as history', async () => {
    const now = new Date();
    const base = { key: 'k', orderKey: 'cmms/WO-1', source: 'cmms', orderId: 'WO-1', vendorId: 'acme', technicianId: 'jdoe', assetId: 'PLC-1', targetId: 'fw', resource: { kind: 'network' as const, sourceAddress: '10.8.0.21', address: '10.20.0.10', port: 502, protocol: 'tcp' as const }, validFrom: now, validUntil: new Date(now.getTime() + 1000), rule: 'p/r', capped: false, attempts: 0, createdAt: now, updatedAt: now };
    await store.saveGrant({ ...base, id: 'g1', state: 'revoked' });
    await store.saveGrant({ ...base, id: 'g2', state: 'active' });
    try {
      await store.saveGrant({ ...base, id: 'g3', state: 'pending' });
      expect.fail('a second live grant with the same key must be refused');
    } catch (e) {
      expect((e as Error).message).to.match(/UNIQUE/);
    }
    const g = await store.getGrant('g2');
    expect(g?.validUntil).to.be.instanceOf(Date);
    expect(g?.resource).to.deep.equal(base.resource);
  });
});
