// The checks of `wogate audit verify` that read the checkpoint anchor; the chain and head checks
// are in AuditLog.verify, which walks the records once and hands over what the checkpoints need.
import { GENESIS } from './canonical.js';
import { lineHash, type AnchorLine, type CheckpointAnchor } from './checkpoints.js';

/**
 * Which check failed. `chain`: a record's keyed hash or link; `head`: the stored head;
 * `checkpoint-signature`: a line of the anchor not signed by the checkpoint key;
 * `checkpoint-sequence`: checkpoints removed, inserted or reordered in the anchor, or the store's
 * keyed-chain start moved; `checkpoint-match`: a record differs from what a checkpoint signed;
 * `tail-cut`: the log is shorter than a checkpoint; `checkpoint-coverage`: checkpoints missing
 * after the last one (the anchor's tail cut, or a process that stopped without a clean shutdown).
 */
export type AuditCheck = 'chain' | 'head' | 'checkpoint-signature' | 'checkpoint-sequence' | 'checkpoint-match' | 'tail-cut' | 'checkpoint-coverage';

export interface VerifyProblem {
  readonly check: AuditCheck;
  /** The record the problem is at (the checkpoint's seq for anchor problems). */
  readonly seq: number;
  readonly problem: string;
}

export interface CheckpointInputs {
  readonly anchor: CheckpointAnchor;
  readonly lines: readonly AnchorLine[];
  /** seq → the record's hash and time, for the seqs the checkpoints name that the chain reached. */
  readonly hashes: ReadonlyMap<number, { readonly hash: string; readonly at: string }>;
  /** Records in the log; undefined when the chain broke (then the tail can't be judged). */
  readonly count: number | undefined;
  readonly keyedFrom: number;
  /** The first record after the last checkpointed seq. */
  readonly firstUncovered: { readonly seq: number; readonly at: string } | undefined;
  readonly now: Date;
}

/** Reported at most this many per verify; the first is the one that matters. */
const MAX_PROBLEMS = 20;

export function verifyCheckpoints(i: CheckpointInputs): VerifyProblem[] {
  const out: VerifyProblem[] = [];
  const add = (check: AuditCheck, seq: number, problem: string) => {
    if (out.length < MAX_PROBLEMS) out.push({ check, seq, problem });
  };
  const file = i.anchor.file;
  let prevText: string | undefined;
  let prevSeq = 0;
  let last: NonNullable<AnchorLine['checkpoint']> | undefined;
  for (const [index, l] of i.lines.entries()) {
    const c = l.checkpoint;
    if (!c) add('checkpoint-signature', 0, `${file} line ${l.line} is not a checkpoint`);
    else if (!i.anchor.signedHere(c)) add('checkpoint-signature', c.seq, `${file} line ${l.line} (checkpoint ${c.n}) is not signed by this wogate's checkpoint key`);
    else {
      if (c.n !== index + 1) add('checkpoint-sequence', c.seq, `${file} line ${l.line} is checkpoint ${c.n} but should be ${index + 1}: checkpoints were removed or inserted`);
      else if (c.prev !== (prevText === undefined ? GENESIS : lineHash(prevText))) add('checkpoint-sequence', c.seq, `checkpoint ${c.n} does not chain to the line before it: the anchor was edited`);
      if (c.seq < prevSeq) add('checkpoint-sequence', c.seq, `checkpoint ${c.n} covers record ${c.seq}, before the previous checkpoint's ${prevSeq}`);
      if (c.keyedFrom !== i.keyedFrom) add('checkpoint-sequence', c.seq, `checkpoint ${c.n} says the keyed chain starts at record ${c.keyedFrom}, the store says ${i.keyedFrom}: the store's marker was changed`);
      const rec = i.hashes.get(c.seq);
      if (i.count !== undefined && c.seq > i.count) {
        add('tail-cut', c.seq, `checkpoint ${c.n} (${c.at}) covers record ${c.seq} but the log ends at record ${i.count}: records were cut off the end`);
      } else if (c.seq === 0 ? c.hash !== GENESIS : rec !== undefined && rec.hash !== c.hash) {
        add('checkpoint-match', c.seq, `record ${c.seq} is not the one checkpoint ${c.n} signed at ${c.at}: it was changed or the chain rewritten`);
      }
      prevSeq = Math.max(prevSeq, c.seq);
      last = c;
    }
    prevText = l.text;
  }
  if (i.count === undefined) return out;
  if (!last) {
    add('checkpoint-coverage', i.count, `no checkpoint in ${file}: the anchor was removed or emptied`);
    return out;
  }
  const { everyMs, everyRecords } = i.anchor.policy;
  // A running writer checkpoints at least every interval; twice that leaves room for a late timer.
  const staleBefore = i.now.getTime() - 2 * everyMs;
  if (last.reason !== 'shutdown' && Date.parse(last.at) < staleBefore) {
    add('checkpoint-coverage', last.seq, `the last checkpoint (${last.n}, ${last.at}) is not a clean shutdown's and is older than two intervals: later checkpoints were removed, or wogate stopped without a clean shutdown (its next start writes one)`);
  }
  if (i.count - last.seq > everyRecords) {
    add('checkpoint-coverage', last.seq + 1, `${i.count - last.seq} records after the last checkpoint (${last.n}), more than audit.checkpoints.everyRecords (${everyRecords}): checkpoints were removed`);
  } else if (i.firstUncovered && Date.parse(i.firstUncovered.at) < staleBefore) {
    add('checkpoint-coverage', i.firstUncovered.seq, `record ${i.firstUncovered.seq} (${i.firstUncovered.at}) is older than two checkpoint intervals and no checkpoint covers it: checkpoints were removed, or wogate stopped without a clean shutdown`);
  }
  return out;
}
