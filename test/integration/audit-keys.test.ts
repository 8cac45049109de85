import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { openRuntime } from '../../src/cli/runtime.js';
import { isWogateError } from '../../src/domain/index.js';
import { silentLogger } from '../../src/log.js';
import { exampleConfig } from '../helpers/daemon.js';
import { tmpDir } from '../helpers/world.js';

const KEY = 'ab'.repeat(32);

describe('audit keys: from a secret reference or generated outside the store file', () => {
  let dir: string;
  beforeEach(() => {
    dir = tmpDir();
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('keys the chain with audit.key from the environment, and another key fails the chain check', async () => {
    const file = exampleConfig(dir, (c) => {
      c.audit = { key: 'env:TEST_AUDIT_KEY' };
    });
    const rt = await openRuntime({ configFile: file, env: { TEST_AUDIT_KEY: KEY }, log: silentLogger });
    await rt.audit.append({ actor: 'cli:test', action: 'token.created', subject: 't1', details: {} });
    expect(await rt.audit.verify()).to.deep.include({ ok: true, count: 1 });
    await rt.store.close();
    expect(fs.existsSync(path.join(dir, 'audit.key'))).to.equal(false);

    const other = await openRuntime({ configFile: file, env: { TEST_AUDIT_KEY: 'cd'.repeat(32) }, log: silentLogger });
    try {
      expect(await other.audit.verify()).to.deep.include({ ok: false, check: 'chain', seq: 1 });
    } finally {
      await other.store.close();
    }
  });

  it('refuses an audit.key that is not 64 hex digits, naming the config file and field, never the value', async () => {
    const file = exampleConfig(dir, (c) => {
      c.audit = { key: 'env:TEST_AUDIT_KEY' };
    });
    const err = await openRuntime({ configFile: file, env: { TEST_AUDIT_KEY: 'short-secret' }, log: silentLogger }).then(() => undefined, (e: unknown) => e);
    expect(isWogateError(err, 'AUDIT_KEY_INVALID'), String(err)).to.equal(true);
    expect((err as Error).message).to.include(`${file}: /audit/key`);
    expect((err as Error).message).to.not.include('short-secret');
  });

  it('refuses a generated key file of the wrong size', async () => {
    const file = exampleConfig(dir);
    fs.writeFileSync(path.join(dir, 'audit.key'), 'abcd\n', { mode: 0o600 });
    const err = await openRuntime({ configFile: file, log: silentLogger }).then(() => undefined, (e: unknown) => e);
    expect(isWogateError(err, 'AUDIT_KEY_INVALID'), String(err)).to.equal(true);
    expect((err as Error).message).to.include(path.join(dir, 'audit.key'));
  });

  it('starts the keyed chain after records written before the key and pins them in a signed checkpoint', async () => {
    const file = exampleConfig(dir);
    const rt = await openRuntime({ configFile: file, log: silentLogger });
    // As an older wogate left it: two SHA-256 records, no marker.
    const { recordHash, GENESIS } = await import('../../src/audit/audit.js');
    const db = (rt.store as unknown as { raw(): import('better-sqlite3').Database }).raw();
    db.prepare("DELETE FROM state WHERE key = 'audit.keyedFrom'").run();
    let prev = GENESIS;
    for (const seq of [1, 2]) {
      const r = { seq, at: new Date().toISOString(), actor: 'wogate', action: 'daemon.started', subject: 'x', details: {} };
      const hash = recordHash(prev, r);
      db.prepare('INSERT INTO audit (seq, at, actor, action, subject, details, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)').run(seq, r.at, r.actor, r.action, r.subject, '{}', prev, hash);
      db.prepare('INSERT INTO audit_head (id, seq, hash) VALUES (1, ?, ?) ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash').run(seq, hash);
      prev = hash;
    }
    fs.rmSync(path.join(dir, 'audit-checkpoints.jsonl'));
    await rt.store.close();

    const next = await openRuntime({ configFile: file, log: silentLogger });
    try {
      await next.audit.append({ actor: 'cli:test', action: 'token.created', subject: 't1', details: {} });
      expect(await next.audit.verify()).to.deep.include({ ok: true, count: 3, unkeyed: 2 });
      const first = JSON.parse(fs.readFileSync(path.join(dir, 'audit-checkpoints.jsonl'), 'utf8').split('\n')[0] as string) as Record<string, unknown>;
      expect(first).to.deep.include({ n: 1, seq: 2, hash: prev, keyedFrom: 3, reason: 'keyed-chain-start' });
    } finally {
      await next.store.close();
    }
  });
});
