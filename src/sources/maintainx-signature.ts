import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { WogateError } from '../domain/errors.js';

/**
 * MaintainX webhook signatures, as MaintainX's API documentation describes them:
 * `x-maintainx-webhook-body-signature: t=<timestamp>,v1=<hex>` where v1 is
 * HMAC-SHA256(secret as UTF-8, `<t>.<raw body>`), hex; `x-maintainx-webhook-uri-signature` has the
 * same format over `<t>.<full request URI>`. Only `v1` is a live scheme; other elements are ignored.
 */

export const BODY_SIGNATURE_HEADER = 'x-maintainx-webhook-body-signature';
export const URI_SIGNATURE_HEADER = 'x-maintainx-webhook-uri-signature';
export const DEFAULT_TOLERANCE_SECONDS = 300;

// MaintainX does not document the unit of `t`; values this large are milliseconds (1e12 s is the year 33658).
const MILLISECONDS_FROM = 1e12;
const TIMESTAMP = /^(0|[1-9][0-9]{0,15})$/;
const HEX_SHA256 = /^[0-9a-fA-F]{64}$/;
const MAX_HEADER_LENGTH = 4096;

export interface ParsedSignature {
  /** `t` exactly as sent: the signed string uses these characters, not a re-rendered number. */
  readonly tText: string;
  readonly timestampMs: number;
  readonly candidates: readonly Buffer[];
}

function invalid(message: string, header: string): WogateError {
  return new WogateError('HOOK_SIGNATURE_INVALID', message, { header });
}

/** `t=…,v1=…[,v1=…]`. Never echoes the header: it is attacker-chosen and may be huge. */
export function parseSignatureHeader(value: string | undefined, header: string): ParsedSignature {
  // An empty header is what a proxy leaves behind when it strips one; treat it as absent.
  if (value === undefined || value.trim() === '') {
    throw new WogateError('HOOK_HEADER_MISSING', `header ${header} is missing`, { header });
  }
  if (value.length > MAX_HEADER_LENGTH) throw invalid(`header ${header} is longer than ${MAX_HEADER_LENGTH} characters`, header);
  let tText: string | undefined;
  const candidates: Buffer[] = [];
  for (const element of value.split(',')) {
    const eq = element.indexOf('=');
    if (eq < 0) continue;
    const key = element.slice(0, eq).trim();
    const v = element.slice(eq + 1).trim();
    if (key === 't') {
      // Two timestamps would leave it open which one was signed and which one was checked for age.
      if (tText !== undefined) throw invalid(`header ${header} has more than one t= element`, header);
      tText = v;
    } else if (key === 'v1' && HEX_SHA256.test(v)) {
      candidates.push(Buffer.from(v, 'hex'));
    }
  }
  if (tText === undefined) throw invalid(`header ${header} has no t= element`, header);
  if (!TIMESTAMP.test(tText)) throw invalid(`header ${header}: t must be an integer Unix time`, header);
  if (candidates.length === 0) throw invalid(`header ${header} has no v1= element holding a SHA-256 hex digest`, header);
  const n = Number(tText);
  return { tText, timestampMs: n >= MILLISECONDS_FROM ? n : n * 1000, candidates };
}

/**
 * Tolerance in both directions, as MaintainX recommends (5 minutes). The timestamp is public and
 * checked before any HMAC, so a stale replay costs nothing and an operator reads "clock skew" rather
 * than "bad signature"; such errors can come from anyone and prove nothing about MaintainX.
 */
export function checkFreshness(sig: ParsedSignature, now: Date, toleranceSeconds: number, header: string): void {
  // NaN would make both comparisons false and accept any timestamp.
  if (!Number.isFinite(toleranceSeconds) || toleranceSeconds < 0) {
    throw new WogateError('CONFIG_INVALID', 'webhook tolerance must be a non-negative number of seconds');
  }
  const skewMs = now.getTime() - sig.timestampMs;
  const limitMs = toleranceSeconds * 1000;
  if (skewMs > limitMs) {
    throw new WogateError('HOOK_SIGNATURE_STALE', `${header} timestamp ${sig.tText} is more than ${toleranceSeconds} s in the past`, { header, timestamp: sig.tText });
  }
  if (-skewMs > limitMs) {
    throw new WogateError('HOOK_SIGNATURE_FUTURE', `${header} timestamp ${sig.tText} is more than ${toleranceSeconds} s in the future`, { header, timestamp: sig.tText });
  }
}

function digest(secret: Buffer, tText: string, message: Buffer | string): Buffer {
  return createHmac('sha256', secret).update(`${tText}.`).update(message).digest();
}

/**
 * True when any v1 candidate matches any secret over any of the messages. Every combination is
 * compared, with no early exit, so the time taken does not reveal which key or position matched.
 */
export function matchesAny(sig: ParsedSignature, secrets: readonly Buffer[], messages: readonly (Buffer | string)[]): boolean {
  let matched = false;
  for (const secret of secrets) {
    for (const message of messages) {
      const expected = digest(secret, sig.tText, message);
      for (const candidate of sig.candidates) {
        if (timingSafeEqual(candidate, expected)) matched = true;
      }
    }
  }
  return matched;
}

/** A subscription secret as MaintainX shows it: the raw string is the HMAC key (no base64 step). */
export function secretKey(secret: string): Buffer {
  // Secret files usually end in a newline that was never part of the secret.
  const trimmed = secret.trim();
  if (trimmed === '') throw new WogateError('CONFIG_INVALID', 'MaintainX webhook secret is empty');
  return Buffer.from(trimmed, 'utf8');
}

/** `t=<t>,v1=<hex>` for one message: the simulator, tests and the bench sign with this. */
export function signMaintainX(secret: string, t: number, message: Buffer | string): string {
  const tText = String(t);
  if (!Number.isSafeInteger(t) || !TIMESTAMP.test(tText)) throw new WogateError('INTERNAL', 'MaintainX signature timestamp must be a non-negative integer');
  return `t=${tText},v1=${digest(secretKey(secret), tText, message).toString('hex')}`;
}

/** Hex SHA-256 of `<t>.<body>`: the same delivery re-sent gives the same value, any change another. */
export function deliveryHash(tText: string, rawBody: Buffer): string {
  return createHash('sha256').update(`${tText}.`).update(rawBody).digest('hex');
}
