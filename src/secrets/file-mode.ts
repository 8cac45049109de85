import fs from 'node:fs';
import type { SecretUse } from './prepare.js';

/**
 * Warnings for `file:` secrets that users other than the daemon's may read (any group or other
 * permission bit): one per file, naming the path, its mode and where the config uses it, never the
 * content. A warning and not a refusal: some deployments share a secret through a group on purpose.
 */
export function secretFileWarnings(uses: readonly SecretUse[]): string[] {
  const where = new Map<string, string[]>();
  for (const u of uses) {
    if (!u.ref.startsWith('file:')) continue;
    const p = u.ref.slice(5);
    where.set(p, [...(where.get(p) ?? []), u.where]);
  }
  const out: string[] = [];
  for (const [p, at] of where) {
    let mode: number;
    try {
      mode = fs.statSync(p).mode;
    } catch {
      continue; // resolving the secret reports a file that can't be read, with its error
    }
    if ((mode & 0o077) === 0) continue;
    out.push(`secret file ${p} is readable by ${mode & 0o070 ? 'its group' : ''}${mode & 0o070 && mode & 0o007 ? ' and ' : ''}${mode & 0o007 ? 'other users' : ''} (mode ${(mode & 0o777).toString(8).padStart(4, '0')}; used at ${at.join(', ')}): chmod 600 it`);
  }
  return out;
}
