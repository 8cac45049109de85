import { createHash } from 'node:crypto';
import type { AuditEntry, AuditHead, AuditRecord, Store } from '../store/store.js';

/** The hash the first record chains to. */
export const GENESIS = '0'.repeat(64);

/** JSON with object keys sorted at every depth, so the same record always hashes the same. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

export function recordHash(prevHash: string, r: Omit<AuditRecord, 'hash' | 'prevHash'>): string {
  const body = canonicalJson({ seq: r.seq, at: r.at, actor: r.actor, action: r.action, subject: r.subject, details: r.details });
  return createHash('sha256').update(prevHash).update('\n').update(body).digest('hex');
}

/**
 * Append-only, hash-chained: each record's hash covers its content and the previous hash, and the
 * head (last seq and hash) is kept apart, so a changed, removed, inserted, reordered or cut-off
 * record shows up in verify().
 */
export class AuditLog {
  constructor(
    private readonly store: Store,
    private readonly clock: () => Date,
  ) {}

  async append(entry: AuditEntry): Promise<AuditRecord> {
    // Round-trip through JSON so what is hashed is exactly what is stored and read back.
    const details = JSON.parse(JSON.stringify(entry.details ?? {})) as Record<string, unknown>;
    const at = this.clock().toISOString();
    return this.store.appendAudit({ ...entry, details }, (prev: AuditHead | undefined, seq: number) => {
      const prevHash = prev?.hash ?? GENESIS;
      const base = { seq, at, actor: entry.actor, action: entry.action, subject: entry.subject, details };
      return { ...base, prevHash, hash: recordHash(prevHash, base) };
    });
  }

  async verify(batch = 1000): Promise<VerifyResult> {
    let expectedSeq = 1;
    let prevHash = GENESIS;
    let after = 0;
    for (;;) {
      const records = await this.store.readAudit(after, batch);
      for (const r of records) {
        if (r.seq !== expectedSeq) {
          return broken(r.seq, r.seq > expectedSeq ? `record ${expectedSeq} is missing (next is ${r.seq})` : `record ${r.seq} is out of order`);
        }
        if (r.prevHash !== prevHash) return broken(r.seq, `record ${r.seq} does not chain to record ${r.seq - 1} (removed, inserted or reordered)`);
        if (recordHash(r.prevHash, r) !== r.hash) return broken(r.seq, `record ${r.seq} was changed after it was written`);
        prevHash = r.hash;
        expectedSeq++;
      }
      if (records.length < batch) break;
      after = expectedSeq - 1;
    }
    const count = expectedSeq - 1;
    const head = await this.store.auditHead();
    if ((head?.seq ?? 0) !== count || (head && head.hash !== prevHash)) {
      return broken(count, `the log ends at record ${count} but its head says ${head?.seq ?? 0}: records were cut off the end or the head was changed`);
    }
    return { ok: true, count };
  }
}

/**
 * Who acted, beyond the actor id: the role a person held (`oidc:<sub>` actors) and where the
 * request came from. Merged into the audit record's details of operator actions.
 */
export interface ActorContext {
  readonly role?: string;
  /** `api` (admin API) or `staff` (the staff pages). */
  readonly via?: 'api' | 'staff';
  /** The person behind the credential (src/api/person.ts), canonical; what the two-person rules compare. */
  readonly person?: string;
}

export type VerifyResult = { ok: true; count: number } | { ok: false; seq: number; problem: string };

function broken(seq: number, problem: string): VerifyResult {
  return { ok: false, seq, problem };
}
