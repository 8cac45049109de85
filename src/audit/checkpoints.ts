// Signed checkpoints of the audit chain, kept outside the store: an append-only file of JSON
// lines (the anchor), each also emitted to the log stream for journald or a SIEM. A checkpoint
// pins (seq, hash) at a time with an Ed25519 signature and chains to the previous checkpoint, so
// a database writer who cuts records or re-chains them, or who removes checkpoints from the
// middle of the file, is caught by `wogate audit verify`.
import { createHash, sign, verify as verifySignature, type KeyObject } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { canonicalJson, GENESIS } from './canonical.js';

/**
 * Why a checkpoint was written. `shutdown` is the last one of a process that stopped cleanly;
 * any other last checkpoint must be recent, or checkpoints were removed (or the process crashed).
 */
export type CheckpointReason = 'keyed-chain-start' | 'start' | 'interval' | 'records' | 'shutdown';

export interface CheckpointBody {
  readonly v: 1;
  /** 1, 2, 3... in the file: a removed checkpoint leaves a gap. */
  readonly n: number;
  readonly seq: number;
  readonly hash: string;
  readonly at: string;
  /** The first keyed record; those before it were written with the unkeyed SHA-256 chain. */
  readonly keyedFrom: number;
  /** SHA-256 of the previous line of the file (GENESIS for the first). */
  readonly prev: string;
  readonly reason: CheckpointReason;
}

export interface Checkpoint extends CheckpointBody {
  /** Ed25519 over canonicalJson(body), base64. */
  readonly sig: string;
}

export interface CheckpointPolicy {
  readonly everyMs: number;
  readonly everyRecords: number;
}

/** One line of the anchor as read back: its text (for the next line's `prev`) and what it says, if it parses. */
export interface AnchorLine {
  readonly line: number;
  readonly text: string;
  readonly checkpoint?: Checkpoint;
}

const REASONS: readonly string[] = ['keyed-chain-start', 'start', 'interval', 'records', 'shutdown'];
const TAIL_BYTES = 64 * 1024;

export function lineHash(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

export class CheckpointAnchor {
  constructor(
    readonly file: string,
    private readonly keys: { readonly signingKey?: KeyObject; readonly publicKey: KeyObject },
    readonly policy: CheckpointPolicy,
    /** Each new checkpoint's line, for the log stream. */
    private readonly emit: (line: string, checkpoint: Checkpoint) => void = () => undefined,
  ) {}

  /** The last line of the file, read from its tail only (the file grows for years). */
  last(): AnchorLine | undefined {
    let fd: number;
    try {
      fd = fs.openSync(this.file, 'r');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
    try {
      const size = fs.fstatSync(fd).size;
      const len = Math.min(size, TAIL_BYTES);
      const buf = Buffer.alloc(len);
      fs.readSync(fd, buf, 0, len, size - len);
      const lines = buf.toString('utf8').split('\n').filter((l) => l !== '');
      const text = lines.at(-1);
      return text === undefined ? undefined : { line: -1, text, ...parsed(text) };
    } finally {
      fs.closeSync(fd);
    }
  }

  /** Every line of the file, in order; [] when there is no file. */
  readAll(): AnchorLine[] {
    let text: string;
    try {
      text = fs.readFileSync(this.file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
    return text.split('\n').flatMap((t, i) => (t === '' ? [] : [{ line: i + 1, text: t, ...parsed(t) }]));
  }

  /** Signs and appends one checkpoint, fsynced, then emits it. */
  write(head: { readonly seq: number; readonly hash: string }, keyedFrom: number, at: Date, reason: CheckpointReason): Checkpoint {
    if (!this.keys.signingKey) throw new Error('this anchor was opened for verification only');
    const last = this.last();
    if (last && !last.checkpoint) throw new Error(`${this.file}: its last line is not a checkpoint; refusing to chain to it`);
    const body: CheckpointBody = { v: 1, n: (last?.checkpoint?.n ?? 0) + 1, seq: head.seq, hash: head.hash, at: at.toISOString(), keyedFrom, prev: last ? lineHash(last.text) : GENESIS, reason };
    const checkpoint: Checkpoint = { ...body, sig: sign(null, Buffer.from(canonicalJson(body)), this.keys.signingKey).toString('base64') };
    const line = canonicalJson(checkpoint);
    const created = !last && !fs.existsSync(this.file);
    if (created) fs.mkdirSync(path.dirname(this.file), { recursive: true, mode: 0o750 });
    const fd = fs.openSync(this.file, 'a', 0o640);
    try {
      fs.writeSync(fd, `${line}\n`);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    if (created) fsyncDir(path.dirname(this.file));
    this.emit(line, checkpoint);
    return checkpoint;
  }

  /** Whether the line's signature is this key's over its body. */
  signedHere(c: Checkpoint): boolean {
    const { sig, ...body } = c;
    try {
      return verifySignature(null, Buffer.from(canonicalJson(body)), this.keys.publicKey, Buffer.from(sig, 'base64'));
    } catch {
      return false;
    }
  }
}

function parsed(text: string): { checkpoint?: Checkpoint } {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return {};
  }
  const c = v as Partial<Checkpoint> | null;
  const ok = !!c && typeof c === 'object' && c.v === 1 && Number.isSafeInteger(c.n) && Number.isSafeInteger(c.seq) && typeof c.hash === 'string'
    && typeof c.at === 'string' && !Number.isNaN(Date.parse(c.at)) && Number.isSafeInteger(c.keyedFrom) && typeof c.prev === 'string'
    && typeof c.reason === 'string' && REASONS.includes(c.reason) && typeof c.sig === 'string';
  if (!ok) return {};
  const { v: ver, n, seq, hash, at, keyedFrom, prev, reason, sig } = c as Checkpoint;
  // Only the known fields: an extra one would be outside the signature.
  return Object.keys(c).length === 9 ? { checkpoint: { v: ver, n, seq, hash, at, keyedFrom, prev, reason, sig } } : {};
}

function fsyncDir(dir: string): void {
  try {
    const fd = fs.openSync(dir, 'r');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    // Not every filesystem lets a directory be fsynced; the file itself was.
  }
}
