import { createHash, createHmac, randomBytes } from 'node:crypto';
import type { AuditEntry, AuditHead, AuditRecord, Store } from '../store/store.js';
import type { Logger } from '../log.js';
import { canonicalJson, GENESIS, wellFormed } from './canonical.js';
import type { CheckpointAnchor, CheckpointReason } from './checkpoints.js';
import { verifyCheckpoints, type AuditCheck, type VerifyProblem } from './verify.js';

export { canonicalJson, GENESIS } from './canonical.js';
export type { AuditCheck, VerifyProblem } from './verify.js';

/** Where the store remembers the first keyed record; every checkpoint repeats it, signed. */
export const KEYED_FROM_STATE = 'audit.keyedFrom';

/**
 * A record's hash: HMAC-SHA-256 under the audit key when `key` is given; plain SHA-256 (the chain
 * before keys, kept for records written then) when it is not.
 */
export function recordHash(prevHash: string, r: Omit<AuditRecord, 'hash' | 'prevHash'>, key?: Buffer): string {
  const body = canonicalJson({ seq: r.seq, at: r.at, actor: r.actor, action: r.action, subject: r.subject, details: r.details });
  if (!key) return createHash('sha256').update(prevHash).update('\n').update(body).digest('hex');
  return createHmac('sha256', key).update('wogate-audit-v2\n').update(prevHash).update('\n').update(body).digest('hex');
}

export interface AuditLogOptions {
  /** The HMAC key (from audit.key or its generated file). Absent: a random key for this process only (tests, tools). */
  readonly key?: Buffer;
  /** Signed checkpoints outside the store; absent: none written, none checked. */
  readonly checkpoints?: CheckpointAnchor;
  readonly log?: Logger;
}

/**
 * Append-only, chained under a key the store does not hold: each record's HMAC covers its content
 * and the previous hash, the head (last seq and hash) is kept apart, and signed checkpoints outside
 * the store pin the chain at times. verify() names the check a changed, removed, inserted,
 * reordered or cut-off record, or a removed checkpoint, fails.
 */
export class AuditLog {
  private readonly key: Buffer;
  private readonly anchor: CheckpointAnchor | undefined;
  private readonly log: Logger | undefined;
  private opened?: Promise<number>;
  /** The last checkpoint this process knows of (it re-reads the file's tail before writing). */
  private lastCheckpoint?: { seq: number; at: number };
  private writing: Promise<unknown> = Promise.resolve();
  /** Something this process wrote is not yet covered by a checkpoint. */
  private dirty = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly store: Store,
    private readonly clock: () => Date,
    o: AuditLogOptions = {},
  ) {
    this.key = o.key ?? randomBytes(32);
    this.anchor = o.checkpoints;
    this.log = o.log;
  }

  /**
   * Where the keyed chain starts. The first time a store is opened with a key, records already in
   * it stay SHA-256 and the keyed chain starts after them; a first checkpoint pins that, signed.
   */
  open(): Promise<number> {
    this.opened ??= (async () => {
      const saved = await this.store.getState(KEYED_FROM_STATE);
      const last = this.anchor?.last()?.checkpoint;
      if (last) this.lastCheckpoint = { seq: last.seq, at: Date.parse(last.at) };
      if (saved !== undefined) return Number(saved);
      if (last) {
        // The store lost its marker but the anchor, which the store's writer can't reach, signed
        // where the keyed chain starts: believe the signature, and anchor nothing new over a head
        // that is about to fail verification.
        this.log?.error('audit: the store has no keyed-chain marker although checkpoints exist; using the signed one', { keyedFrom: last.keyedFrom });
        return last.keyedFrom;
      }
      const head = await this.store.auditHead();
      const keyedFrom = (head?.seq ?? 0) + 1;
      await this.store.setState(KEYED_FROM_STATE, String(keyedFrom));
      if (keyedFrom > 1) this.log?.warn(`audit: records 1 to ${keyedFrom - 1} were written before the audit key; they stay SHA-256-chained and the keyed chain starts at ${keyedFrom}`);
      this.dirty = true;
      await this.writeCheckpoint('keyed-chain-start', keyedFrom);
      return keyedFrom;
    })();
    return this.opened;
  }

  async append(entry: AuditEntry): Promise<AuditRecord> {
    await this.open();
    // What is hashed is what the store gives back: well-formed strings, JSON values.
    const clean = wellFormed({ actor: entry.actor, action: entry.action, subject: entry.subject, details: entry.details ?? {} });
    const at = this.clock().toISOString();
    const rec = await this.store.appendAudit(clean, (prev: AuditHead | undefined, seq: number) => {
      const prevHash = prev?.hash ?? GENESIS;
      const base = { seq, at, ...clean };
      return { ...base, prevHash, hash: recordHash(prevHash, base, this.key) };
    });
    this.dirty = true;
    if (this.anchor && rec.seq - (this.lastCheckpoint?.seq ?? 0) >= this.anchor.policy.everyRecords) await this.checkpoint('records');
    return rec;
  }

  /**
   * The daemon's heartbeat: checkpointIfDue on a timer (a real one; the due test reads the
   * injected clock). While it runs this process is the live writer, and verify() writes a due
   * checkpoint first, so a clock moved ahead is not read as checkpoints removed.
   */
  startCheckpoints(): void {
    const anchor = this.anchor;
    if (!anchor || this.timer) return;
    this.timer = setInterval(() => {
      this.checkpointIfDue().catch((e: unknown) => this.log?.error('audit checkpoint failed', { error: e instanceof Error ? e.message : String(e) }));
    }, Math.min(30_000, Math.max(250, anchor.policy.everyMs / 4)));
    this.timer.unref();
  }

  stopCheckpoints(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** A checkpoint when the last one is one interval old. */
  async checkpointIfDue(): Promise<void> {
    if (!this.anchor) return;
    await this.open();
    const last = this.lastCheckpoint?.at ?? 0;
    if (this.clock().getTime() - last >= this.anchor.policy.everyMs) await this.checkpoint('interval');
  }

  /** Signs the current head into the anchor and the log stream. A failure is logged, never thrown at the caller's action. */
  async checkpoint(reason: CheckpointReason): Promise<void> {
    if (!this.anchor) return;
    await this.writeCheckpoint(reason, await this.open());
  }

  /** One at a time, so each checkpoint chains to the one before. */
  private async writeCheckpoint(reason: CheckpointReason, keyedFrom: number): Promise<void> {
    const anchor = this.anchor;
    if (!anchor) return;
    const run = this.writing.then(async () => {
      const head = (await this.store.auditHead()) ?? { seq: 0, hash: GENESIS };
      const now = this.clock();
      try {
        anchor.write(head, keyedFrom, now, reason);
        this.lastCheckpoint = { seq: head.seq, at: now.getTime() };
        this.dirty = false;
      } catch (e) {
        this.log?.error('audit checkpoint could not be written: records since the last one are not anchored', { file: anchor.file, error: e instanceof Error ? e.message : String(e) });
      }
    });
    this.writing = run.catch(() => undefined);
    await run;
  }

  /** The checkpoint of a clean stop, when this process wrote anything since its last one. */
  async close(): Promise<void> {
    if (this.dirty) await this.checkpoint('shutdown');
  }

  async verify(batch = 1000): Promise<VerifyResult> {
    const keyedFrom = await this.open();
    if (this.timer) await this.checkpointIfDue();
    const lines = this.anchor?.readAll() ?? [];
    // The hashes the checkpoints name, collected on the one pass over the records.
    const wanted = new Set(lines.flatMap((l) => (l.checkpoint ? [l.checkpoint.seq] : [])));
    const hashes = new Map<number, { hash: string; at: string }>();
    const problems: VerifyProblem[] = [];
    let expectedSeq = 1;
    let prevHash = GENESIS;
    let after = 0;
    let firstAfter: { seq: number; at: string } | undefined;
    const lastSeq = Math.max(0, ...wanted);
    walk: for (;;) {
      const records = await this.store.readAudit(after, batch);
      for (const r of records) {
        const problem = r.seq !== expectedSeq
          ? (r.seq > expectedSeq ? `record ${expectedSeq} is missing (next is ${r.seq})` : `record ${r.seq} is out of order`)
          : r.prevHash !== prevHash ? `record ${r.seq} does not chain to record ${r.seq - 1} (removed, inserted or reordered)`
            : recordHash(r.prevHash, r, r.seq >= keyedFrom ? this.key : undefined) !== r.hash ? `record ${r.seq} was changed after it was written${r.seq >= keyedFrom ? ' (its keyed hash does not match)' : ''}`
              : undefined;
        if (problem) {
          problems.push({ check: 'chain', seq: r.seq, problem });
          break walk;
        }
        if (wanted.has(r.seq)) hashes.set(r.seq, { hash: r.hash, at: r.at });
        if (r.seq > lastSeq && !firstAfter) firstAfter = { seq: r.seq, at: r.at };
        prevHash = r.hash;
        expectedSeq++;
      }
      if (records.length < batch) break;
      after = expectedSeq - 1;
    }
    const count = expectedSeq - 1;
    const head = await this.store.auditHead();
    if (problems.length === 0 && ((head?.seq ?? 0) !== count || (head && head.hash !== prevHash))) {
      problems.push({ check: 'head', seq: count, problem: `the log ends at record ${count} but its head says ${head?.seq ?? 0}: records were cut off the end or the head was changed` });
    }
    if (this.anchor) {
      problems.push(...verifyCheckpoints({
        anchor: this.anchor, lines, hashes, count: problems.some((p) => p.check === 'chain') ? undefined : count, keyedFrom,
        firstUncovered: firstAfter, now: this.clock(),
      }));
    }
    const summary = { count, unkeyed: Math.min(count, keyedFrom - 1), checkpoints: lines.length };
    const first = problems[0];
    return first ? { ok: false, ...summary, ...first, problems } : { ok: true, ...summary };
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

interface VerifySummary {
  /** Records read in order before the first problem (all of them when none). */
  readonly count: number;
  /** Records chained with SHA-256 only, written before the store had a key. */
  readonly unkeyed: number;
  /** Lines in the checkpoint anchor. */
  readonly checkpoints: number;
}

export type VerifyResult =
  | ({ ok: true } & VerifySummary)
  | ({ ok: false; check: AuditCheck; seq: number; problem: string; problems: VerifyProblem[] } & VerifySummary);
