// What the audit chain hashes: one canonical text per record, made only of well-formed Unicode so
// that the bytes stored (UTF-8 in SQLite) read back as exactly the string that was hashed.

/** The hash the first record chains to (and the first checkpoint's `prev`). */
export const GENESIS = '0'.repeat(64);

/** JSON with object keys sorted at every depth, so the same record always hashes the same. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

/**
 * The value with every string (object keys too) made well-formed: a lone surrogate, which UTF-8
 * can't carry and SQLite would store as bytes that read back differently, becomes U+FFFD. Also a
 * JSON round trip, so what is hashed is what JSON storage gives back (no undefined, -0, Dates).
 */
export function wellFormed<T>(value: T): T {
  const text = JSON.stringify(value ?? null, (_k, v: unknown) => {
    if (typeof v === 'string') return toWellFormed(v);
    if (v && typeof v === 'object' && !Array.isArray(v)) return Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([k, x]) => [toWellFormed(k), x]));
    return v;
  });
  return JSON.parse(text) as T;
}

function toWellFormed(s: string): string {
  // String.prototype.toWellFormed (Node 20) is outside the ES2023 lib this project compiles against.
  return (s as string & { toWellFormed(): string }).toWellFormed();
}
