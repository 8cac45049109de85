/**
 * One canonical form for every identifier that arrives from outside (a CMMS, an IdP, a register
 * file, an operator): vendor, technician, asset, approver, owner. Two spellings of one person
 * (`alice`, `Alice`, `ａｌｉｃｅ`, `alice\u200b`) must never count as two, so ids are compared only
 * in this form, and a string that could hide a difference is refused instead of guessed at.
 *
 * The form: NFKC, then case-folded, then NFKC again (folding can un-normalise), with surrounding
 * white space trimmed. JavaScript has no full case folding; upper-then-lower case is used instead.
 * It folds ß to ss, ſ to s and ς to σ as Unicode's full folding does, and also merges the Turkish
 * dotless ı with i, which folding keeps apart: for ids, merging more is the safe side.
 *
 * Refused (with the field named): strings that are not well-formed UTF-16 (a lone surrogate can't
 * be stored as UTF-8, so it would not survive a round trip through the store or the audit chain),
 * format characters (\p{Cf}: zero-width, bidi controls, soft hyphen, BOM), control characters
 * (\p{Cc}), and strings empty after trimming.
 */

export type IdProblem = 'not_a_string' | 'empty' | 'ill_formed' | 'format_character' | 'control_character';

export class InvalidIdError extends Error {
  override readonly name = 'InvalidIdError';
  constructor(
    readonly field: string,
    readonly problem: IdProblem,
    message: string,
  ) {
    super(message);
  }
}

const FORMAT = /\p{Cf}/u;
const CONTROL = /\p{Cc}/u;
// Any surrogate half not paired: the `u` flag makes a paired surrogate one code point, so only lone halves match.
const LONE_SURROGATE = /\p{Cs}/u;

/** Why `raw` can't be an id, or undefined when it can. `field` names it in the message (`assets[2]`, `approvals[0].by`). */
export function idProblem(raw: unknown, field: string): InvalidIdError | undefined {
  if (typeof raw !== 'string') return new InvalidIdError(field, 'not_a_string', `${field} must be a string, got ${raw === null ? 'null' : typeof raw}`);
  if (LONE_SURROGATE.test(raw)) return new InvalidIdError(field, 'ill_formed', `${field} holds a lone UTF-16 surrogate (not valid Unicode text)`);
  const at = (re: RegExp) => {
    const m = re.exec(raw);
    return m ? `U+${(m[0].codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0')} at position ${m.index}` : undefined;
  };
  const format = at(FORMAT);
  if (format) return new InvalidIdError(field, 'format_character', `${field} holds an invisible format character (${format}); ids may not contain zero-width, bidi or other format characters`);
  const control = at(CONTROL);
  if (control) return new InvalidIdError(field, 'control_character', `${field} holds a control character (${control})`);
  if (fold(raw) === '') return new InvalidIdError(field, 'empty', `${field} is empty`);
  return undefined;
}

/** The canonical form of an id; throws InvalidIdError naming `field` when it can't be one. */
export function canonicalId(raw: unknown, field: string): string {
  const r = tryCanonicalId(raw, field);
  if (!r.ok) throw r.error;
  return r.id;
}

/** The canonical form, or the problem: for callers collecting every error at once. */
export function tryCanonicalId(raw: unknown, field: string): { ok: true; id: string } | { ok: false; error: InvalidIdError } {
  if (typeof raw === 'string') {
    const known = folded.get(raw);
    if (known !== undefined) return { ok: true, id: known };
  }
  const error = idProblem(raw, field);
  if (error) return { ok: false, error };
  const id = fold(raw as string);
  remember(raw as string, id);
  return { ok: true, id };
}

// Evaluation compares the same few thousand ids over and over (approvers per rule, scopes per
// grant); NFKC and folding each time was a fifth of a full pass. Pure: a string's form never
// changes, so a cache of good ids is only a cache. Bounded: cleared when full.
const folded = new Map<string, string>();
const FOLDED_MAX = 50_000;
function remember(raw: string, id: string): void {
  if (folded.size >= FOLDED_MAX) folded.clear();
  folded.set(raw, id);
}

/** True when both are ids and name the same thing. */
export function sameId(a: string, b: string): boolean {
  const ca = tryCanonicalId(a, 'id');
  const cb = tryCanonicalId(b, 'id');
  return ca.ok && cb.ok && ca.id === cb.id;
}

function fold(s: string): string {
  return s.normalize('NFKC').toUpperCase().toLowerCase().normalize('NFKC').trim();
}
