import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { expect } from 'chai';
import { recordHash } from '../../src/audit/audit.js';
import { demoOrder } from '../../src/demo/demo.js';
import { exampleConfig, REPO, startDaemon, until, type TestDaemon } from '../helpers/daemon.js';
import { tmpDir } from '../helpers/world.js';

// A daemon writes records from signed webhooks and checkpoints them; then an "attacker" who can
// write the SQLite file (and, in one case, cut the anchor's tail) edits a copy of what it left,
// and the real CLI's `audit verify` must say which check failed.

type Row = { seq: number; at: string; actor: string; action: string; subject: string; details: string; prev_hash: string; hash: string };

// Checkpoints every second while running, and after every 10 records.
const AUDIT = { checkpoints: { every: '1s', everyRecords: 10 } };

function wogate(args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(REPO, 'src/cli/main.ts'), ...args], { cwd: REPO, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** What the daemon left (store, keys, anchor) in a fresh directory, with a config pointing at it. */
function copyOf(from: string): { dir: string; config: string; db: string; anchor: string } {
  const dir = tmpDir();
  for (const f of fs.readdirSync(from)) if (f !== 'wogate.yaml') fs.cpSync(path.join(from, f), path.join(dir, f));
  const config = exampleConfig(dir, (c) => {
    c.audit = AUDIT;
  });
  return { dir, config, db: path.join(dir, 'wogate.db'), anchor: path.join(dir, 'audit-checkpoints.jsonl') };
}

function verifyJson(config: string): { code: number | null; result: { ok: boolean; check?: string; problem?: string; problems?: { check: string }[]; count: number } } {
  const r = wogate(['audit', 'verify', '-c', config, '--json']);
  expect(r.err, r.err).to.equal('');
  return { code: r.code, result: JSON.parse(r.out) as ReturnType<typeof verifyJson>['result'] };
}

/** Today's unkeyed chain, as a script would recompute it: every record from `from` on, and the head moved. */
function rechainWithSha256(db: Database.Database, from: number): void {
  const rows = db.prepare('SELECT * FROM audit WHERE seq >= ? ORDER BY seq').all(from) as Row[];
  let prev = from === 1 ? '0'.repeat(64) : (db.prepare('SELECT hash FROM audit WHERE seq = ?').get(from - 1) as Row).hash;
  const update = db.prepare('UPDATE audit SET prev_hash = ?, hash = ? WHERE seq = ?');
  for (const r of rows) {
    const hash = recordHash(prev, { seq: r.seq, at: r.at, actor: r.actor, action: r.action, subject: r.subject, details: JSON.parse(r.details) as Record<string, unknown> });
    update.run(prev, hash, r.seq);
    prev = hash;
  }
  db.prepare('UPDATE audit_head SET seq = (SELECT max(seq) FROM audit), hash = ?').run(prev);
}

function cutTail(db: Database.Database, n: number): number {
  const max = (db.prepare('SELECT max(seq) m FROM audit').get() as { m: number }).m;
  const keep = max - n;
  db.prepare('DELETE FROM audit WHERE seq > ?').run(keep);
  db.prepare('UPDATE audit_head SET seq = ?, hash = (SELECT hash FROM audit WHERE seq = ?)').run(keep, keep);
  return keep;
}

describe('audit verify against an attacker who can write the database (real daemon, real CLI)', function () {
  this.timeout(180_000);
  let t: TestDaemon;
  let count = 0;
  const made: string[] = [];

  before(async () => {
    t = await startDaemon({ edit: (c) => { c.audit = AUDIT; } });
    for (let i = 1; i <= 35; i++) {
      const res = await t.hook(demoOrder(`WO-${i}`, 'WAPPR', new Date(), new Date()));
      expect(res.status).to.equal(202);
    }
    // An order number no UTF-8 can carry: refused at the edge or stored, the chain must stay verifiable.
    const odd = JSON.stringify(demoOrder('PRB-X', 'WAPPR', new Date(), new Date())).replace('"PRB-X"', '"PRB-\\ud800"');
    expect([202, 400]).to.include((await t.hook(null, { raw: odd })).status);
    await until(async () => ((await t.daemon.runtime.store.auditHead())?.seq ?? 0) >= 71, '71 audit records', 60_000);
    await t.daemon.stop();
    await t.gateway.close();
    const db = new Database(path.join(t.dir, 'wogate.db'), { readonly: true });
    count = (db.prepare('SELECT max(seq) m FROM audit').get() as { m: number }).m;
    db.close();
  });
  after(() => {
    for (const d of [t.dir, ...made]) fs.rmSync(d, { recursive: true, force: true });
  });
  const attacked = (edit: (db: Database.Database, c: ReturnType<typeof copyOf>) => void) => {
    const c = copyOf(t.dir);
    made.push(c.dir);
    const db = new Database(c.db);
    try {
      edit(db, c);
    } finally {
      db.close();
    }
    return c;
  };

  it('passes the log the daemon left, keys and checkpoints outside the store', () => {
    const c = attacked(() => undefined);
    const text = wogate(['audit', 'verify', '-c', c.config]);
    expect(text.code, text.out + text.err).to.equal(0);
    expect(text.out).to.match(new RegExp(`^ok: ${count} record\\(s\\), \\d+ checkpoint\\(s\\)`));
    for (const f of ['audit.key', 'audit-checkpoint.key']) expect(fs.statSync(path.join(c.dir, f)).mode & 0o777, f).to.equal(0o600);
    const lines = fs.readFileSync(c.anchor, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { reason: string });
    expect(lines.at(-1)?.reason).to.equal('shutdown');
    expect(lines.map((l) => l.reason)).to.include.members(['keyed-chain-start', 'start', 'records']);
  });

  it('fails the chain check when a record is changed and every later one re-chained with SHA-256, head moved', () => {
    const c = attacked((db) => {
      db.prepare("UPDATE audit SET actor = 'oidc:someone-else' WHERE seq = 30").run();
      rechainWithSha256(db, 30);
    });
    const { code, result } = verifyJson(c.config);
    expect(code).to.equal(1);
    expect(result).to.deep.include({ ok: false, check: 'chain', seq: 30 });
    const text = wogate(['audit', 'verify', '-c', c.config]);
    expect(text.code).to.equal(1);
    expect(text.out).to.match(/^BROKEN \(check: chain\) at record 30: record 30 was changed/m);
  });

  it('fails the checkpoint checks when the whole log is re-chained with SHA-256 and marked as written before the key', () => {
    const c = attacked((db) => {
      db.prepare("UPDATE audit SET actor = 'oidc:someone-else' WHERE seq = 30").run();
      rechainWithSha256(db, 1);
      db.prepare("UPDATE state SET value = ? WHERE key = 'audit.keyedFrom'").run(String(count + 1));
    });
    const { code, result } = verifyJson(c.config);
    expect(code).to.equal(1);
    expect(result.problems?.map((p) => p.check)).to.include.members(['checkpoint-sequence', 'checkpoint-match']);
  });

  it('fails the chain check when the keyed-chain marker is deleted and the log re-chained with SHA-256, and writes nothing to the anchor', () => {
    const c = attacked((db) => {
      db.prepare("UPDATE audit SET actor = 'oidc:someone-else' WHERE seq = 30").run();
      rechainWithSha256(db, 1);
      db.prepare("DELETE FROM state WHERE key = 'audit.keyedFrom'").run();
    });
    const before = fs.readFileSync(c.anchor, 'utf8');
    const { code, result } = verifyJson(c.config);
    expect(code).to.equal(1);
    expect(result.problems?.map((p) => p.check)).to.include('chain');
    expect(fs.readFileSync(c.anchor, 'utf8'), 'verify must not anchor a head it could not check').to.equal(before);
  });

  it('fails the tail-cut check when the last 40 records are cut and the head moved', () => {
    const c = attacked((db) => void cutTail(db, 40));
    const { code, result } = verifyJson(c.config);
    expect(code).to.equal(1);
    expect(result).to.deep.include({ ok: false, check: 'tail-cut', count: count - 40 });
  });

  it('fails the coverage check when the anchor is also cut after the last checkpoint the attacker could reach', async () => {
    let lastKept = 0;
    const c = attacked((db, files) => {
      const keep = cutTail(db, 40);
      const lines = fs.readFileSync(files.anchor, 'utf8').trim().split('\n');
      const reachable = lines.filter((l) => (JSON.parse(l) as { seq: number }).seq <= keep);
      lastKept = Date.parse((JSON.parse(reachable.at(-1) as string) as { at: string }).at);
      fs.writeFileSync(files.anchor, `${reachable.join('\n')}\n`);
    });
    // A running daemon checkpoints every second; two intervals after the last kept one, its absence shows.
    await until(() => Date.now() > lastKept + 3000, 'two checkpoint intervals to pass');
    const { code, result } = verifyJson(c.config);
    expect(code).to.equal(1);
    expect(result).to.deep.include({ ok: false, check: 'checkpoint-coverage' });
  });

  it('fails the checkpoint sequence check when a checkpoint is deleted from the middle of the anchor', () => {
    const c = attacked((_db, files) => {
      const lines = fs.readFileSync(files.anchor, 'utf8').trim().split('\n');
      lines.splice(2, 1);
      fs.writeFileSync(files.anchor, `${lines.join('\n')}\n`);
    });
    const { code, result } = verifyJson(c.config);
    expect(code).to.equal(1);
    expect(result).to.deep.include({ ok: false, check: 'checkpoint-sequence' });
  });

  it('refuses to run with an audit key file others can read, naming the file', () => {
    const c = attacked(() => undefined);
    fs.chmodSync(path.join(c.dir, 'audit.key'), 0o644);
    const r = wogate(['audit', 'verify', '-c', c.config]);
    expect(r.code).to.not.equal(0);
    expect(r.err).to.include(path.join(c.dir, 'audit.key'));
    expect(r.err).to.match(/mode 644/);
    expect(r.err).to.not.match(/^\s+at /m);
  });
});
