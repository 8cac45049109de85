// The two keys of the audit log, both held outside the store file: the HMAC key that chains the
// records, and the Ed25519 key that signs checkpoints. Either comes from a secret reference or,
// when the config names none, from a file next to the store generated on first run.
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { WogateError } from '../domain/index.js';

export interface AuditKeys {
  /** HMAC-SHA-256 key of the chain, 32 bytes. */
  readonly chainKey: Buffer;
  readonly signingKey: KeyObject;
  readonly publicKey: KeyObject;
  /** Files written on this run (first run), for the start log line. */
  readonly generated: readonly string[];
}

export interface KeySources {
  /** The resolved `audit.key` secret, or undefined to use `keyFile`. */
  readonly key?: string;
  /** Where `key` is configured (`<config file>: /audit/key`), for error messages. */
  readonly keyWhere?: string;
  readonly keyFile: string;
  /** The resolved `audit.checkpoints.signingKey` secret, or undefined to use `signingKeyFile`. */
  readonly signingKey?: string;
  readonly signingKeyWhere?: string;
  readonly signingKeyFile: string;
}

const HEX_KEY = /^[0-9a-fA-F]{64}$/;

/** Reads (or, on first run, creates) both keys. Refuses a key file others can read, or one of the wrong size or kind. */
export function loadAuditKeys(s: KeySources): AuditKeys {
  const generated: string[] = [];
  const chainText = s.key ?? readOrCreate(s.keyFile, () => `${randomBytes(32).toString('hex')}\n`, generated);
  const where = s.key !== undefined ? (s.keyWhere ?? '/audit/key') : s.keyFile;
  if (!HEX_KEY.test(chainText.trim())) {
    throw new WogateError('AUDIT_KEY_INVALID', `${where}: the audit key must be 64 hex digits (32 bytes, e.g. openssl rand -hex 32)`);
  }
  const chainKey = Buffer.from(chainText.trim(), 'hex');

  const pem = s.signingKey ?? readOrCreate(s.signingKeyFile, () => generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), generated);
  const pemWhere = s.signingKey !== undefined ? (s.signingKeyWhere ?? '/audit/checkpoints/signingKey') : s.signingKeyFile;
  let signingKey: KeyObject;
  try {
    signingKey = createPrivateKey(pem);
  } catch {
    throw new WogateError('AUDIT_KEY_INVALID', `${pemWhere}: the checkpoint signing key is not a PKCS#8 PEM private key`);
  }
  if (signingKey.asymmetricKeyType !== 'ed25519') {
    throw new WogateError('AUDIT_KEY_INVALID', `${pemWhere}: the checkpoint signing key must be Ed25519 (got ${signingKey.asymmetricKeyType ?? 'unknown'})`);
  }
  const publicKey = createPublicKey(signingKey);
  if (s.signingKey === undefined) writePublicKey(`${s.signingKeyFile.replace(/\.key$/, '')}.pub`, publicKey, generated);
  return { chainKey, signingKey, publicKey, generated };
}

/** A key file: created 0600 with `make()` when absent; refused when group or others may read it. */
function readOrCreate(file: string, make: () => string, generated: string[]): string {
  let st: fs.Stats | undefined;
  try {
    st = fs.statSync(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new WogateError('AUDIT_KEY_INVALID', `${file}: cannot read key file: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  if (!st) {
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o750 });
    // 'wx': never overwrite a key another process created a moment ago.
    try {
      fs.writeFileSync(file, make(), { mode: 0o600, flag: 'wx' });
      generated.push(file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new WogateError('AUDIT_KEY_INVALID', `${file}: cannot create key file: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
    }
    st = fs.statSync(file);
  }
  if (!st.isFile()) throw new WogateError('AUDIT_KEY_INVALID', `${file}: is not a regular file`);
  if ((st.mode & 0o077) !== 0) {
    throw new WogateError('AUDIT_KEY_INVALID', `${file}: mode ${(st.mode & 0o777).toString(8)} lets others read the key; chmod 600 it (and consider it disclosed)`);
  }
  if (st.size > 4096) throw new WogateError('AUDIT_KEY_INVALID', `${file}: ${st.size} bytes is not a key file`);
  return fs.readFileSync(file, 'utf8');
}

/** The half a verifier needs, kept current with the private key. */
function writePublicKey(file: string, key: KeyObject, generated: string[]): void {
  const pem = key.export({ type: 'spki', format: 'pem' }).toString();
  let current: string | undefined;
  try {
    current = fs.readFileSync(file, 'utf8');
  } catch {
    current = undefined;
  }
  if (current === pem) return;
  fs.writeFileSync(file, pem, { mode: 0o644 });
  generated.push(file);
}
