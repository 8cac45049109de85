import { createHash, timingSafeEqual } from 'node:crypto';
import { WogateError } from '../domain/errors.js';
import type { Delivery, WebhookRequest } from './source.js';

/**
 * How SAP Event Mesh authenticates its webhook call to wogate. Event Mesh signs nothing, so the
 * credential is all there is: Basic (user and password set on the webhook subscription) or a bearer
 * token configured on both sides. Several entries at once allow rotation without a gap.
 */
export type SapWebhookAuth =
  | { readonly type: 'basic'; readonly credentials: readonly { readonly username: string; readonly password: string }[] }
  | { readonly type: 'bearer'; readonly tokens: readonly string[] };

export interface SapWebhookOptions {
  readonly auth: SapWebhookAuth;
  /** How old an event's `time` may be; default 300 s. */
  readonly toleranceSeconds?: number;
  /** How far in the future an event's `time` may be (clock skew); default 60 s. */
  readonly clockSkewSeconds?: number;
}

const DEFAULT_TOLERANCE_SECONDS = 300;
const DEFAULT_CLOCK_SKEW_SECONDS = 60;
const MAX_EVENT_ID = 256;
// Visible ASCII: the id becomes the replay key, a log field and an audit subject.
const EVENT_ID = /^[\x21-\x7e]+$/;
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})$/;

function sha256(s: string | Buffer): Buffer {
  return createHash('sha256').update(s).digest();
}

/** The token part of the expected Authorization headers, hashed so every comparison has equal length. */
export function expectedTokens(auth: SapWebhookAuth): { scheme: 'basic' | 'bearer'; digests: Buffer[] } {
  if (auth.type === 'basic') {
    if (auth.credentials.length === 0) throw new WogateError('CONFIG_INVALID', 'webhook basic auth needs at least one credential');
    return {
      scheme: 'basic',
      digests: auth.credentials.map((c) => {
        if (c.username === '' || c.password === '' || c.username.includes(':')) {
          throw new WogateError('CONFIG_INVALID', 'webhook basic auth: username must be non-empty without ":" and password non-empty');
        }
        return sha256(Buffer.from(`${c.username}:${c.password}`, 'utf8').toString('base64'));
      }),
    };
  }
  if (auth.tokens.length === 0 || auth.tokens.some((t) => t.trim().length < 16)) {
    throw new WogateError('CONFIG_INVALID', 'webhook bearer auth needs tokens of at least 16 characters');
  }
  return { scheme: 'bearer', digests: auth.tokens.map((t) => sha256(t.trim())) };
}

function header(req: WebhookRequest, name: string): string | undefined {
  const v = req.headers[name];
  const s = Array.isArray(v) ? v.join(', ') : v;
  return s === undefined || s.trim() === '' ? undefined : s.trim();
}

/**
 * Checks the Authorization header against every configured credential with no early exit, so the
 * time taken says nothing about which one matched or how much of it. The token is compared as sent
 * (canonical base64 for Basic): a re-encoded variant of the same password is refused, not decoded.
 */
function authenticate(req: WebhookRequest, expected: { scheme: 'basic' | 'bearer'; digests: Buffer[] }): void {
  const value = header(req, 'authorization');
  if (value === undefined) throw new WogateError('HOOK_HEADER_MISSING', 'header authorization is missing', { header: 'authorization' });
  const space = value.indexOf(' ');
  const scheme = space < 0 ? value : value.slice(0, space);
  const token = space < 0 ? '' : value.slice(space + 1).trim();
  if (scheme.toLowerCase() !== expected.scheme) {
    throw new WogateError('HOOK_SIGNATURE_INVALID', `authorization must use the ${expected.scheme === 'basic' ? 'Basic' : 'Bearer'} scheme`);
  }
  const presented = sha256(Buffer.from(token, 'utf8'));
  let matched = false;
  for (const d of expected.digests) {
    if (timingSafeEqual(presented, d)) matched = true;
  }
  if (!matched || token === '') throw new WogateError('HOOK_SIGNATURE_INVALID', 'authorization does not match a configured webhook credential');
}

function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

export function parseRfc3339(s: string): Date | undefined {
  const m = RFC3339.exec(s);
  if (!m) return undefined;
  const [y, mo, d, h, mi, sec] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  if (mo < 1 || mo > 12 || d < 1 || d > daysInMonth(y, mo) || h > 23 || mi > 59 || sec > 60) return undefined;
  const t = Date.parse(s.toUpperCase());
  return Number.isFinite(t) ? new Date(t) : undefined;
}

interface Envelope {
  readonly id: unknown;
  readonly time: unknown;
  readonly specversion: unknown;
}

/**
 * CloudEvents attributes, binary mode (ce-* headers, body is the data) or structured mode (the body
 * is the whole event). Which one is told by the ce-id header, as the HTTP binding says.
 */
function envelope(req: WebhookRequest): Envelope {
  const ceId = header(req, 'ce-id');
  if (ceId !== undefined) return { id: ceId, time: header(req, 'ce-time'), specversion: header(req, 'ce-specversion') };
  let body: unknown;
  try {
    body = JSON.parse(req.rawBody.toString('utf8'));
  } catch {
    throw new WogateError('HOOK_BODY_INVALID', 'body is not a JSON CloudEvent (and no ce-id header says binary mode)');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new WogateError('HOOK_BODY_INVALID', 'body is not a JSON object');
  const own = (k: string): unknown => (Object.hasOwn(body, k) ? (body as Record<string, unknown>)[k] : undefined);
  return { id: own('id'), time: own('time'), specversion: own('specversion') };
}

/**
 * Authenticates an Event Mesh webhook call and reads its CloudEvents id and time: the id is the
 * replay key (Event Mesh keeps it across redeliveries), the time decides freshness. Authentication
 * comes first so that an unauthenticated caller learns nothing about what else is checked.
 */
export function verifySapWebhook(
  req: WebhookRequest,
  now: Date,
  expected: { scheme: 'basic' | 'bearer'; digests: Buffer[] },
  o: Pick<SapWebhookOptions, 'toleranceSeconds' | 'clockSkewSeconds'>,
): Delivery {
  authenticate(req, expected);
  const ev = envelope(req);
  if (ev.specversion !== undefined && ev.specversion !== '1.0') throw new WogateError('HOOK_BODY_INVALID', 'CloudEvents specversion must be "1.0"');
  if (ev.id === undefined || ev.id === null || ev.id === '') throw new WogateError('HOOK_HEADER_MISSING', 'CloudEvents attribute id is missing', { header: 'id' });
  if (typeof ev.id !== 'string' || ev.id.length > MAX_EVENT_ID || !EVENT_ID.test(ev.id)) {
    throw new WogateError('HOOK_BODY_INVALID', `CloudEvents id must be 1 to ${MAX_EVENT_ID} visible ASCII characters`);
  }
  if (ev.time === undefined || ev.time === null || ev.time === '') {
    throw new WogateError('HOOK_HEADER_MISSING', 'CloudEvents attribute time is missing; without it freshness cannot be checked', { header: 'time' });
  }
  const time = typeof ev.time === 'string' ? parseRfc3339(ev.time) : undefined;
  if (!time) throw new WogateError('HOOK_BODY_INVALID', 'CloudEvents time is not an RFC 3339 timestamp with an offset');

  const tolerance = o.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  const skew = o.clockSkewSeconds ?? DEFAULT_CLOCK_SKEW_SECONDS;
  if (!(tolerance >= 0) || !(skew >= 0)) throw new WogateError('CONFIG_INVALID', 'webhook tolerance and clock skew must be non-negative numbers of seconds');
  const ageMs = now.getTime() - time.getTime();
  if (ageMs > tolerance * 1000) {
    throw new WogateError('HOOK_SIGNATURE_STALE', `event time ${time.toISOString()} is more than ${tolerance} s in the past`, { time: time.toISOString() });
  }
  if (-ageMs > skew * 1000) {
    throw new WogateError('HOOK_SIGNATURE_FUTURE', `event time ${time.toISOString()} is more than ${skew} s in the future`, { time: time.toISOString() });
  }
  return { webhookId: ev.id, eventTime: time };
}

/** The Authorization header value Event Mesh sends for Basic credentials; for the simulator and tests. */
export function basicAuthorization(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`, 'utf8').toString('base64')}`;
}
