import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { AuditLog } from '../../src/audit/audit.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import { tmpDir } from '../helpers/world.js';

describe('audit: hash-chained log in a SQLite file', () => {
  let dir: string;
  let store: SqliteStore;
  let audit: AuditLog;
  const key = randomBytes(32);
  beforeEach(async () => {
    dir = tmpDir();
    store = new SqliteStore(path.join(dir, 'a.db'));
    await store.migrate();
    let t = Date.parse('2026-11-22T10:00:00Z');
    audit = new AuditLog(store, () => new Date((t += 1000)), { key });
    for (let i = 1; i <= 5; i++) await audit.append({ actor: 'wogate', action: 'grant.provisioned', subject: `g${i}`, details: { n: i, nested: { b: 2, a: 1 } } });
  });
  afterEach(async () => {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('verifies an untouched log', async () => {
    expect(await audit.verify()).to.deep.include({ ok: true, count: 5, unkeyed: 0 });
  });

  it('detects a changed record', async () => {
    store.raw().prepare("UPDATE audit SET details = json_set(details, '$.n', 99) WHERE seq = 3").run();
    const r = await audit.verify();
    expect(r).to.deep.include({ ok: false, seq: 3 });
    expect(r.ok ? '' : r.problem).to.match(/changed/);
  });

  it('detects a changed actor even when the hash is left alone', async () => {
    store.raw().prepare("UPDATE audit SET actor = 'someone-else' WHERE seq = 2").run();
    expect(await audit.verify()).to.deep.include({ ok: false, seq: 2 });
  });

  it('detects a removed record in the middle', async () => {
    store.raw().prepare('DELETE FROM audit WHERE seq = 2').run();
    const r = await audit.verify();
    expect(r.ok).to.equal(false);
    expect(r.ok ? '' : r.problem).to.match(/record 2 is missing/);
  });

  it('detects records cut off the end', async () => {
    store.raw().prepare('DELETE FROM audit WHERE seq >= 4').run();
    const r = await audit.verify();
    expect(r.ok).to.equal(false);
    expect(r.ok ? '' : r.problem).to.match(/cut off the end/);
  });

  it('detects reordered records, even with sequence numbers swapped back', async () => {
    const db = store.raw();
    const rows = db.prepare('SELECT * FROM audit WHERE seq IN (2, 3) ORDER BY seq').all() as Record<string, unknown>[];
    db.transaction(() => {
      db.prepare('DELETE FROM audit WHERE seq IN (2, 3)').run();
      const ins = db.prepare('INSERT INTO audit (seq, at, actor, action, subject, details, prev_hash, hash) VALUES (@seq, @at, @actor, @action, @subject, @details, @prev_hash, @hash)');
      ins.run({ ...rows[1], seq: 2 });
      ins.run({ ...rows[0], seq: 3 });
    })();
    const r = await audit.verify();
    expect(r).to.deep.include({ ok: false, seq: 2 });
  });

  it('detects a forged record re-hashed on its own with the key, because the next one no longer chains', async () => {
    const db = store.raw();
    const { recordHash } = await import('../../src/audit/audit.js');
    const r3 = (await store.readAudit(2, 1))[0];
    if (!r3) throw new Error('no record 3');
    const forged = { ...r3, subject: 'nothing-to-see' };
    db.prepare('UPDATE audit SET subject = ?, hash = ? WHERE seq = 3').run(forged.subject, recordHash(r3.prevHash, forged, key));
    const r = await audit.verify();
    expect(r).to.deep.include({ ok: false, seq: 4 });
  });

  it('keeps chaining across a reopen of the file', async () => {
    await store.close();
    store = new SqliteStore(path.join(dir, 'a.db'));
    audit = new AuditLog(store, () => new Date(), { key });
    await audit.append({ actor: 'operator', action: 'token.created', subject: 't1', details: {} });
    expect(await audit.verify()).to.deep.include({ ok: true, count: 6 });
  });
});
