import { createHmac, timingSafeEqual } from 'node:crypto';
import { WogateError } from '../domain/errors.js';

/** Standard Webhooks v1.0.0, symmetric (HMAC-SHA256) scheme. */

const SECRET_PREFIX = 'whsec_';
const MIN_KEY_BYTES = 24;
const MAX_KEY_BYTES = 64;
const DEFAULT_TOLERANCE_SECONDS = 300;
const SHA256_BYTES = 32;
// Fifteen digits keep the value a safe integer; real timestamps have ten.
const TIMESTAMP = /^(0|[1-9][0-9]{0,14})$/;
// Visible ASCII only: node hands header bytes over as latin1, so a non-ASCII id would be signed
// over different bytes by the sender than the ones we would rebuild here.
const MESSAGE_ID = /^[\x21-\x2d\x2f-\x7e]+$/;

/**
 * Decodes canonical standard base64 (padding optional). Buffer.from(s, 'base64') silently skips
 * bad characters and stray bits, so a typo in a secret would otherwise become a different key.
 */
function decodeBase64Strict(s: string): Buffer | undefined {
  if (s.length === 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(s)) return undefined;
  const padded = s.length % 4 === 0 ? s : s + '='.repeat(4 - (s.length % 4));
  if (padded.length % 4 !== 0 || padded.length - s.length > 2) return undefined;
  const bytes = Buffer.from(padded, 'base64');
  return bytes.toString('base64') === padded ? bytes : undefined;
}

/** `whsec_<base64>` or bare base64 → the HMAC key. Messages never echo the secret. */
export function parseSecret(secret: string): Buffer {
  const trimmed = secret.trim();
  const body = trimmed.startsWith(SECRET_PREFIX) ? trimmed.slice(SECRET_PREFIX.length) : trimmed;
  const key = decodeBase64Strict(body);
  if (key === undefined) {
    throw new WogateError('CONFIG_INVALID', 'webhook secret is not valid base64 (expected whsec_<base64>)');
  }
  if (key.length < MIN_KEY_BYTES || key.length > MAX_KEY_BYTES) {
    throw new WogateError(
      'CONFIG_INVALID',
      `webhook secret decodes to ${key.length} bytes; Standard Webhooks secrets are ${MIN_KEY_BYTES} to ${MAX_KEY_BYTES} bytes`,
    );
  }
  return key;
}

export interface VerifyInput {
  headers: { id?: string | undefined; timestamp?: string | undefined; signature?: string | undefined };
  rawBody: Buffer;
  /** Every key that is currently valid; several during rotation. */
  secrets: readonly Buffer[];
  now: Date;
  /** Allowed clock difference in both directions; default 300 s as in the spec. */
  toleranceSeconds?: number;
}

function digest(key: Buffer, id: string, timestamp: string, rawBody: Buffer | string): Buffer {
  return createHmac('sha256', key).update(`${id}.${timestamp}.`).update(rawBody).digest();
}

function present(value: string | undefined, header: string): string {
  // An empty header is what a proxy leaves behind when it strips one; treat it as absent.
  if (value === undefined || value.trim() === '') {
    throw new WogateError('HOOK_HEADER_MISSING', `header ${header} is missing`, { header });
  }
  return value;
}

/**
 * Verifies one delivery and returns its id (the idempotency key) and timestamp.
 *
 * Order: headers, then timestamp and tolerance, then signature, as the reference JS library
 * does. The timestamp is sender-chosen and public, so checking it first leaks nothing, costs no
 * HMAC for a stale replay, and tells an operator "clock skew" rather than "bad signature".
 * The price: HOOK_SIGNATURE_STALE/FUTURE can come from unauthenticated callers, so they must
 * not be read as evidence that the source itself is misbehaving.
 */
export function verifyWebhook(input: VerifyInput): { id: string; timestamp: Date } {
  const id = present(input.headers.id, 'webhook-id');
  const tsText = present(input.headers.timestamp, 'webhook-timestamp');
  const signature = present(input.headers.signature, 'webhook-signature');

  if (!MESSAGE_ID.test(id)) {
    throw new WogateError('HOOK_SIGNATURE_INVALID', 'webhook-id must be visible ASCII without "."');
  }
  if (!TIMESTAMP.test(tsText)) {
    throw new WogateError('HOOK_SIGNATURE_INVALID', 'webhook-timestamp must be an integer number of Unix seconds');
  }

  const tolerance = input.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  // NaN would make both window comparisons false and accept any timestamp.
  if (!Number.isFinite(tolerance) || tolerance < 0) {
    throw new WogateError('CONFIG_INVALID', 'webhook tolerance must be a non-negative number of seconds');
  }
  const ts = Number(tsText);
  const nowSeconds = Math.floor(input.now.getTime() / 1000);
  if (nowSeconds - ts > tolerance) {
    throw new WogateError('HOOK_SIGNATURE_STALE', `webhook-timestamp ${ts} is more than ${tolerance} s in the past`, { timestamp: ts });
  }
  if (ts - nowSeconds > tolerance) {
    throw new WogateError('HOOK_SIGNATURE_FUTURE', `webhook-timestamp ${ts} is more than ${tolerance} s in the future`, { timestamp: ts });
  }

  const candidates: Buffer[] = [];
  for (const entry of signature.split(' ')) {
    const comma = entry.indexOf(',');
    // Other schemes (v1a = ed25519) may share the header; they are someone else's to check.
    if (comma < 0 || entry.slice(0, comma) !== 'v1') continue;
    const bytes = decodeBase64Strict(entry.slice(comma + 1));
    if (bytes?.length === SHA256_BYTES) candidates.push(bytes);
  }

  // Every candidate is compared against every key, with no early exit, so the time taken does
  // not reveal which key or which position matched.
  let matched = false;
  for (const key of input.secrets) {
    const expected = digest(key, id, tsText, input.rawBody);
    for (const candidate of candidates) {
      if (timingSafeEqual(candidate, expected)) matched = true;
    }
  }
  if (!matched) {
    throw new WogateError('HOOK_SIGNATURE_INVALID', 'no v1 entry in webhook-signature matches a configured secret');
  }
  return { id, timestamp: new Date(ts * 1000) };
}

/** `v1,<base64>` for one message; used by the demo CMMS, tests and the bench. */
export function signWebhook(secret: Buffer, id: string, timestamp: number, rawBody: Buffer | string): string {
  // A signature that verifyWebhook would refuse anyway is a caller bug, better caught here.
  if (!MESSAGE_ID.test(id)) throw new WogateError('INTERNAL', 'webhook id must be visible ASCII without "."');
  const tsText = String(timestamp);
  if (!Number.isSafeInteger(timestamp) || !TIMESTAMP.test(tsText)) {
    throw new WogateError('INTERNAL', 'webhook timestamp must be a non-negative integer number of seconds');
  }
  return `v1,${digest(secret, id, tsText, rawBody).toString('base64')}`;
}
