import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import fc from 'fast-check';
import { AuditLog } from '../../src/audit/audit.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import { tmpDir } from '../helpers/world.js';

// Any UTF-16 code unit (so lone surrogates and stray pairs) mixed with any code point.
const unit = fc.oneof(fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }));
const text = fc.string({ unit, maxLength: 40 });
const details = fc.dictionary(text, fc.oneof(text, fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.array(text, { maxLength: 3 }), fc.dictionary(text, text, { maxKeys: 3 })), { maxKeys: 5 });

const wellFormed = (s: string) => (s as string & { toWellFormed(): string }).toWellFormed();

describe('audit: any string round-trips through append and verify on a SQLite file', () => {
  let dir: string;
  let store: SqliteStore;
  let audit: AuditLog;
  before(async () => {
    dir = tmpDir();
    store = new SqliteStore(path.join(dir, 'a.db'));
    await store.migrate();
    audit = new AuditLog(store, () => new Date());
  });
  after(async () => {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('stores what it hashed: verify stays intact and strings read back well-formed', async () => {
    await fc.assert(
      fc.asyncProperty(text, text, text, details, async (actor, action, subject, d) => {
        const rec = await audit.append({ actor, action, subject, details: d });
        const [back] = await store.readAudit(rec.seq - 1, 1);
        expect(back).to.deep.equal(rec);
        expect(back?.actor).to.equal(wellFormed(actor));
        expect(back?.subject).to.equal(wellFormed(subject));
        const r = await audit.verify();
        expect(r, JSON.stringify(r)).to.deep.include({ ok: true, count: rec.seq });
      }),
      { numRuns: 150 },
    );
  });
});
