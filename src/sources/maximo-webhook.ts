import { createHash, timingSafeEqual } from 'node:crypto';
import { WogateError } from '../domain/index.js';
import { getPath } from './mapping.js';
import { lowerKeys, parseMaximoDate } from './maximo-mapping.js';
import type { Delivery, WebhookRequest } from './source.js';

/**
 * How Maximo's publish channel authenticates to wogate. Maximo signs nothing: its HTTP endpoint
 * handler sends Basic credentials (USERNAME/PASSWORD) and/or fixed headers (HEADERS), so that is
 * all there is to check. Several entries at once allow rotation.
 */
export interface MaximoWebhookOptions {
  readonly basic?: readonly { readonly username: string; readonly password: string }[];
  readonly header?: { readonly name: string; readonly secrets: readonly string[] };
  /** A message whose creationDateTime (or changedate) is older than this is refused; default 24 h. */
  readonly maxAgeMs?: number;
  /** Clock difference allowed for a message dated in the future; default 5 min. */
  readonly futureToleranceMs?: number;
  /** Default 1 MiB. */
  readonly maxBodyBytes?: number;
}

const DEFAULT_MAX_AGE_MS = 24 * 3_600_000;
const DEFAULT_FUTURE_MS = 300_000;
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9a-z-]+$/;
// Visible ASCII, bounded: the id becomes a key in the inbox and a word in the audit trail.
const MESSAGE_ID = /^[\x21-\x7e]{1,200}$/;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

function sha256(s: string | Buffer): Buffer {
  return createHash('sha256').update(s).digest();
}

/** Compares digests, so the lengths always match and the time taken says nothing about either value. */
function matchesAny(presented: string, expected: readonly Buffer[]): boolean {
  const digest = sha256(Buffer.from(presented, 'utf8'));
  let matched = false;
  for (const e of expected) if (timingSafeEqual(digest, e)) matched = true;
  return matched;
}

function header(req: WebhookRequest, name: string): string | undefined {
  const v = req.headers[name];
  const s = Array.isArray(v) ? v.join(', ') : v;
  return s === undefined || s.trim() === '' ? undefined : s;
}

/** RFC 7617 credentials; anything not canonical base64 is refused, so no two spellings pass as one. */
function basicCredentials(value: string): string | undefined {
  const m = /^basic +(\S+) *$/i.exec(value);
  if (!m || !BASE64.test(m[1] as string) || (m[1] as string).length % 4 !== 0) return undefined;
  const bytes = Buffer.from(m[1] as string, 'base64');
  if (bytes.toString('base64') !== m[1]) return undefined;
  return bytes.toString('utf8');
}

export class MaximoWebhookVerifier {
  private readonly basic: Buffer[];
  private readonly headerName?: string;
  private readonly headerSecrets: Buffer[];
  private readonly maxAgeMs: number;
  private readonly futureMs: number;

  constructor(where: string, o: MaximoWebhookOptions) {
    this.basic = (o.basic ?? []).map((c, i) => {
      if (c.username === '' || c.username.includes(':')) throw new WogateError('CONFIG_INVALID', `${where}: webhook.basic[${i}].username must be non-empty and without ":"`);
      if (c.password.length < 16) throw new WogateError('CONFIG_INVALID', `${where}: webhook.basic[${i}].password is shorter than 16 characters (value not shown)`);
      return sha256(`${c.username}:${c.password}`);
    });
    if (o.header) {
      const name = o.header.name.toLowerCase();
      if (!HEADER_NAME.test(name) || name === 'authorization') throw new WogateError('CONFIG_INVALID', `${where}: webhook.header.name ${JSON.stringify(o.header.name)} is not a usable header name`);
      if (o.header.secrets.length === 0) throw new WogateError('CONFIG_INVALID', `${where}: webhook.header.secrets is empty`);
      o.header.secrets.forEach((s, i) => {
        if (s.trim().length < 24) throw new WogateError('CONFIG_INVALID', `${where}: webhook.header.secrets[${i}] is shorter than 24 characters (value not shown)`);
      });
      this.headerName = name;
    }
    this.headerSecrets = (o.header?.secrets ?? []).map((s) => sha256(s.trim()));
    if (this.basic.length === 0 && this.headerSecrets.length === 0) {
      throw new WogateError('CONFIG_INVALID', `${where}: webhook needs basic credentials or a header secret; Maximo has no other way to prove a message is its own`);
    }
    this.maxAgeMs = o.maxAgeMs ?? DEFAULT_MAX_AGE_MS;
    this.futureMs = o.futureToleranceMs ?? DEFAULT_FUTURE_MS;
  }

  /**
   * Credentials first and alone (constant time over every configured value), then the message's
   * own id and date. Those come from the body, which nothing signs: they can only tell replays
   * and stale redeliveries apart, which is what they are used for.
   */
  verify(req: WebhookRequest, now: Date): Delivery {
    this.authenticate(req);
    let payload: unknown;
    try {
      payload = JSON.parse(req.rawBody.toString('utf8'));
    } catch {
      throw new WogateError('HOOK_BODY_INVALID', 'body is not valid JSON');
    }
    const { envelope, record } = splitMessage(payload);
    const eventTime = messageTime(envelope, record) ?? now;
    const age = now.getTime() - eventTime.getTime();
    if (age > this.maxAgeMs) {
      throw new WogateError('HOOK_SIGNATURE_STALE', `message dated ${eventTime.toISOString()} is older than ${Math.round(this.maxAgeMs / 1000)} s`, { eventTime: eventTime.toISOString() });
    }
    if (-age > this.futureMs) {
      throw new WogateError('HOOK_SIGNATURE_FUTURE', `message dated ${eventTime.toISOString()} is more than ${Math.round(this.futureMs / 1000)} s in the future`, { eventTime: eventTime.toISOString() });
    }
    return { webhookId: messageId(envelope, record, req.rawBody), eventTime };
  }

  private authenticate(req: WebhookRequest): void {
    const auth = this.basic.length > 0 ? header(req, 'authorization') : undefined;
    const custom = this.headerName !== undefined ? header(req, this.headerName) : undefined;
    if (auth === undefined && custom === undefined) {
      const names = [...(this.basic.length > 0 ? ['authorization'] : []), ...(this.headerName ? [this.headerName] : [])];
      throw new WogateError('HOOK_HEADER_MISSING', `header ${names.join(' or ')} is missing`, { header: names.join(' or ') });
    }
    let ok = false;
    if (auth !== undefined) {
      const creds = basicCredentials(auth);
      // Hash something even for a malformed header, so the two cases take the same time.
      if (matchesAny(creds ?? '\u0000', this.basic) && creds !== undefined) ok = true;
    }
    if (custom !== undefined && matchesAny(custom.trim(), this.headerSecrets)) ok = true;
    if (!ok) throw new WogateError('HOOK_SIGNATURE_INVALID', 'the credentials sent do not match any configured for this source');
  }
}

/**
 * The documented message: `{ "header": { messageID, creationDateTime, action }, "workorder": { lean
 * WO } }` (`workorder` may also be a list of exactly one). A flat message (the record itself, with
 * or without messageID/creationDateTime beside its attributes) is read too, since that is what the
 * simplest JSON mapping produces.
 */
export function splitMessage(payload: unknown): { envelope: Record<string, unknown>; record: Record<string, unknown> | undefined } {
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) return { envelope: Object.create(null) as Record<string, unknown>, record: undefined };
  const top = lowerKeys(payload as Record<string, unknown>);
  const head = getPath(top, 'header');
  const envelope = typeof head === 'object' && head !== null && !Array.isArray(head) ? lowerKeys(head as Record<string, unknown>) : top;
  const wo = getPath(top, 'workorder');
  // A mapping that keeps MIF's set wrapper sends a list; Maximo publishes one order per message.
  const one: unknown = Array.isArray(wo) ? (wo.length === 1 ? wo[0] : null) : wo;
  if (one === undefined) return { envelope, record: top };
  const record = typeof one === 'object' && one !== null && !Array.isArray(one) ? lowerKeys(one as Record<string, unknown>) : undefined;
  return { envelope, record };
}

function messageTime(envelope: Record<string, unknown>, record: Record<string, unknown> | undefined): Date | undefined {
  const created = getPath(envelope, 'creationdatetime');
  const changed = record ? getPath(record, 'changedate') : undefined;
  const [value, path] = created !== undefined && created !== null ? [created, 'creationDateTime'] : [changed, 'changedate'];
  if (value === undefined || value === null) return undefined;
  try {
    return parseMaximoDate('eventTime', path, value);
  } catch {
    throw new WogateError('HOOK_BODY_INVALID', `${path} is not an ISO-8601 date-time with an offset`);
  }
}

/**
 * MIF's messageID when the mapping carries it. Otherwise the order, its rowstamp and a digest of
 * the body: a redelivery from Maximo's outbound queue is byte-for-byte the same message, while a
 * change to a child (an assignment) that leaves the rowstamp alone still counts as new.
 */
function messageId(envelope: Record<string, unknown>, record: Record<string, unknown> | undefined, rawBody: Buffer): string {
  const id = getPath(envelope, 'messageid');
  if (typeof id === 'string' && MESSAGE_ID.test(id)) return id;
  if (typeof id === 'number' && Number.isSafeInteger(id)) return String(id);
  const part = (k: string) => {
    const v = record ? getPath(record, k) : undefined;
    const s = typeof v === 'string' || typeof v === 'number' ? String(v) : '';
    return /^[\x21-\x7e]{1,60}$/.test(s) ? s : '-';
  };
  return `maximo:${part('siteid')}/${part('wonum')}@${part('_rowstamp')}:${sha256(rawBody).toString('hex').slice(0, 32)}`;
}
