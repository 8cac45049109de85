import { expect } from 'chai';
import fc from 'fast-check';
import { canonicalId, InvalidIdError, sameId, tryCanonicalId } from '../../../src/domain/ids.js';
import { compareRevisions, revisionKind } from '../../../src/domain/workorder.js';

const FORMAT = /\p{Cf}/u;
const CONTROL = /\p{Cc}/u;
const LONE = /\p{Cs}/u;

/** Any string, including lone surrogates and every plane. */
const anyString = fc.string({ unit: 'binary', maxLength: 40 });
/** Strings that can be ids (no format, control or lone surrogate characters, something left after trimming). */
const idLike = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 30 }).filter((s) => tryCanonicalId(s, 'x').ok);
/** Format characters: zero-width, bidi controls, soft hyphen, BOM, word joiner, tags. */
const formatChar = fc.constantFrom('\u200b', '\u200c', '\u200d', '\u200e', '\u200f', '\u202a', '\u202e', '\u2066', '\u2069', '\u00ad', '\ufeff', '\u2060', '\u{e0041}');

describe('domain/ids: one canonical form for ids', () => {
  it('is idempotent: canonical(canonical(x)) == canonical(x) (property)', () => {
    fc.assert(fc.property(anyString, (s) => {
      const once = tryCanonicalId(s, 'x');
      if (!once.ok) return;
      expect(canonicalId(once.id, 'x')).to.equal(once.id);
    }), { numRuns: 2000 });
  });

  it('collapses case and width variants onto one id (property)', () => {
    fc.assert(fc.property(idLike, (s) => {
      const id = canonicalId(s, 'x');
      expect(canonicalId(s.toUpperCase(), 'x')).to.equal(id);
      expect(canonicalId(s.toLowerCase(), 'x')).to.equal(id);
      expect(sameId(s, s.toUpperCase())).to.equal(true);
    }), { numRuns: 1000 });
    // Fullwidth, ligature, compatibility digits, long s and sharp s.
    for (const [a, b] of [['ａｌｉｃｅ', 'alice'], ['Alice', 'alice'], ['ALICE', 'alice'], ['ﬁeld', 'field'], ['tech-①', 'tech-1'], ['ſam', 'sam'], ['STRASSE', 'straße'], ['Ⅻ', 'xii']]) {
      expect(canonicalId(a, 'x'), `${a} = ${b}`).to.equal(canonicalId(b, 'x'));
    }
  });

  it('refuses any string holding a format character, naming the field, the code point and its position (property)', () => {
    fc.assert(fc.property(fc.string({ maxLength: 10 }), formatChar, fc.string({ maxLength: 10 }), (before, f, after) => {
      const r = tryCanonicalId(`${before}${f}${after}`, 'approvals[1].by');
      expect(r.ok).to.equal(false);
      if (r.ok) return;
      expect(r.error).to.be.instanceOf(InvalidIdError);
      expect(r.error.field).to.equal('approvals[1].by');
      expect(r.error.message).to.match(/^approvals\[1\]\.by holds/);
    }), { numRuns: 1000 });
    expect(() => canonicalId('alice\u200b', 'approvals[1].by')).to.throw('approvals[1].by holds an invisible format character (U+200B at position 5)');
    fc.assert(fc.property(anyString, (s) => {
      if (FORMAT.test(s)) expect(tryCanonicalId(s, 'x').ok).to.equal(false);
    }), { numRuns: 2000 });
  });

  it('refuses lone surrogates, paired or not with other text (property)', () => {
    const lone = fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c));
    fc.assert(fc.property(fc.string({ maxLength: 10 }), lone, fc.string({ maxLength: 10 }), (a, l, b) => {
      const s = `${a}${l}${b}`;
      if (!LONE.test(s)) return; // the half happened to pair with a neighbour
      const r = tryCanonicalId(s, 'id');
      expect(r.ok).to.equal(false);
      if (!r.ok) expect(r.error.problem).to.equal('ill_formed');
    }), { numRuns: 1000 });
    expect(tryCanonicalId('PRB-\ud800', 'id').ok).to.equal(false);
    expect(canonicalId('tech-😀', 'id')).to.equal('tech-😀');
  });

  it('gives well-formed NFKC text that survives UTF-8, without control or format characters, or a refusal (property)', () => {
    fc.assert(fc.property(anyString, (s) => {
      const r = tryCanonicalId(s, 'x');
      if (!r.ok) {
        expect(r.error).to.be.instanceOf(InvalidIdError);
        return;
      }
      expect(LONE.test(r.id)).to.equal(false);
      expect(r.id.normalize('NFKC')).to.equal(r.id);
      expect(Buffer.from(r.id, 'utf8').toString('utf8')).to.equal(r.id);
      expect(FORMAT.test(r.id) || CONTROL.test(r.id)).to.equal(false);
      expect(r.id).to.equal(r.id.trim()).and.not.equal('');
    }), { numRuns: 3000 });
  });
});

describe('domain/workorder: revisions', () => {
  it('orders numbers exactly (beyond 2^53) and timestamps by instant, whatever their offset', () => {
    expect(compareRevisions('9007199254740993', '9007199254740992')).to.equal(1);
    expect(compareRevisions('10', '9')).to.equal(1);
    expect(compareRevisions('1.5', '1.25')).to.equal(1);
    expect(compareRevisions('007', '7')).to.equal(0);
    expect(compareRevisions('2026-01-01T10:00:00+02:00', '2026-01-01T09:00:00Z')).to.equal(-1);
    expect(compareRevisions('2026-01-01T08:00:00.000Z', '2026-01-01T10:00:00+02:00')).to.equal(0);
  });

  it('compares nothing that is not a finite number or an ISO timestamp with an offset, nor a number with a time', () => {
    for (const bad of ['Infinity', '-Infinity', 'NaN', '1e400', '', ' ', 'v2', 'abc', '0x10', '2026-01-01T00:00:00', '2026-02-30T00:00:00Z', '5 ']) {
      expect(compareRevisions(bad, '5'), JSON.stringify(bad)).to.equal(bad === '5 ' ? 0 : undefined);
    }
    expect(revisionKind('Infinity')).to.equal(undefined);
    expect(compareRevisions('5', '2026-01-01T00:00:00Z')).to.equal(undefined);
  });

  it('is a total order within each kind: antisymmetric and transitive (property)', () => {
    const rev = fc.oneof(
      fc.bigInt({ min: 0n, max: 10n ** 20n }).map(String),
      fc.double({ noNaN: true, noDefaultInfinity: true }).map(String),
      fc.date({ min: new Date('1971-01-01Z'), max: new Date('2999-01-01Z'), noInvalidDate: true }).map((d) => d.toISOString()),
    );
    fc.assert(fc.property(rev, rev, rev, (a, b, c) => {
      const ab = compareRevisions(a, b);
      const ba = compareRevisions(b, a);
      if (ab === undefined) {
        expect(ba).to.equal(undefined);
        return;
      }
      expect(ba).to.equal(-ab || 0);
      const bc = compareRevisions(b, c);
      if (ab <= 0 && bc !== undefined && bc <= 0) expect(compareRevisions(a, c)).to.be.at.most(0);
    }), { numRuns: 2000 });
  });
});
