import { parseDuration, WogateError } from '../domain/index.js';
import { show } from './text.js';

/**
 * An access level as `accessLevels` and grants name it: its OnGuard NAME (at most 64 characters,
 * OnGuard's limit) or its numeric ID. A name goes into an OpenAccess filter between double quotes,
 * so quotes and backslashes are refused rather than escaped (the filter dialect's escaping is not
 * documented); `env:`/`file:`/`vault:` prefixes are refused because the config loader would read them as
 * secret references.
 */
// eslint-disable-next-line no-control-regex -- control characters are what is refused
export const ACCESS_LEVEL = /^(?!env:|file:|vault:)(?! )[^"\\\u0000-\u001f\u007f]{1,64}(?<! )$/;
/** A numeric OnGuard key (BADGEKEY, ACCESSLEVELID): a positive 32-bit integer. */
export const NUMERIC_KEY = /^[1-9]\d{0,9}$/;
/** A badge ID (the card number): digits without leading zeros, within JSON's exact integers. */
export const BADGE_ID = /^(?:0|[1-9]\d{0,14})$/;

export interface LenelTargetOptions {
  readonly id: string;
  /** OpenAccess up to and including /api/access/onguard/openaccess. */
  readonly baseUrl: string;
  /** Sent as the Application-Id header on every call: the OpenAccess license key of this integration. */
  readonly applicationId: string;
  readonly username: string;
  readonly password: string;
  /** The directory the account logs in through (GET /directories); omitted for an internal OnGuard account. */
  readonly directoryId?: string;
  /**
   * The access levels wogate manages, by NAME or numeric ID. A grant for any other level is
   * refused; every assignment on these levels is wogate's business (list, drift), so they must be
   * levels dedicated to wogate.
   */
  readonly accessLevels: readonly string[];
  /** IANA zone of the OnGuard server's clock: ACTIVATE and DEACTIVATE are its local wall-clock times. */
  readonly timeZone: string;
  /** What a grant's `badge` is: the card number (`id`, default) or OnGuard's BADGEKEY (`key`). */
  readonly badgeBy?: 'id' | 'key';
  /**
   * What OnGuard keeps of ACTIVATE/DEACTIVATE: `minute` (default) sends whole minutes, DEACTIVATE
   * rounded down and ACTIVATE up, so a server that drops or rounds seconds can never extend access.
   * `second` where the server is known to keep seconds.
   */
  readonly resolution?: 'minute' | 'second';
  /** PEM CA bundle trusted for OpenAccess instead of the system store. */
  readonly caPem?: string;
  /** Whole-call deadline; default 10000. OpenAccess itself gives up on a request after 30 s. */
  readonly timeoutMs?: number;
  /** Items per page when listing; default 100. */
  readonly pageSize?: number;
  /** After a refused login, calls fail without trying again for this long (OnGuard locks accounts after a few bad passwords); default 300000. */
  readonly loginBackoffMs?: number;
}

/**
 * JSON Schema (draft-07) of a target's `lenel:` block, for config.schema.json. References
 * `#/definitions/secretRef` and `#/definitions/duration` of the main schema.
 */
export const LENEL_TARGET_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['baseUrl', 'applicationId', 'username', 'password', 'accessLevels', 'timeZone'],
  properties: {
    baseUrl: { type: 'string', pattern: '^https?://[^?#]+$', description: 'OpenAccess address up to and including /api/access/onguard/openaccess' },
    applicationId: { $ref: '#/definitions/secretRef', description: 'the OpenAccess Application-Id (license key) of this integration' },
    username: { type: 'string', minLength: 1, maxLength: 128, description: 'the OnGuard user wogate logs in as' },
    password: { $ref: '#/definitions/secretRef', description: "that user's password" },
    directoryId: { type: 'string', minLength: 1, maxLength: 128, description: 'directory the user logs in through (GET /directories); omit for an internal OnGuard account' },
    accessLevels: {
      type: 'array', minItems: 1, maxItems: 500, uniqueItems: true,
      items: { type: 'string', pattern: ACCESS_LEVEL.source },
      description: 'the access levels wogate manages, by NAME or numeric ID; dedicate them to wogate: assignments on them that no grant backs are drift',
    },
    timeZone: { type: 'string', minLength: 1, maxLength: 64, description: "IANA time zone of the OnGuard server's clock, e.g. America/Chicago (ACTIVATE/DEACTIVATE are its local times)" },
    badgeBy: { enum: ['id', 'key'], description: "what a grant's badge is: the card number (id, default) or OnGuard's BADGEKEY (key)" },
    resolution: { enum: ['minute', 'second'], description: 'what OnGuard keeps of activation times: minute (default; DEACTIVATE rounded down) or second' },
    caPem: { $ref: '#/definitions/secretRef', description: 'file: reference to a PEM CA bundle trusted for OpenAccess instead of the system store' },
    timeout: { $ref: '#/definitions/duration', description: 'deadline for each call to OpenAccess; default 10s' },
    pageSize: { type: 'integer', minimum: 1, maximum: 1000, description: 'items per page when listing assignments; default 100' },
  },
} as const;

function bad(where: string, field: string, problem: string): never {
  throw new WogateError('CONFIG_INVALID', `${where}.${field} ${problem}`);
}

/** True when `tz` is an IANA zone name this Node knows (Intl refuses the others). */
export function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/** Shared by the options builder and the constructor, so a caller that skipped the schema still gets CONFIG_INVALID naming the field. */
export function checkLenelOptions(o: LenelTargetOptions): void {
  const where = `target ${o.id}: lenel`;
  if (typeof o.baseUrl !== 'string' || !/^https?:\/\/[^?#]+$/.test(o.baseUrl)) bad(where, 'baseUrl', 'must be an http(s) URL without query or fragment');
  let path = '';
  try {
    path = new URL(o.baseUrl).pathname;
  } catch {
    bad(where, 'baseUrl', 'is not a URL');
  }
  if (!/\/api\/access\/onguard\/openaccess\/?$/i.test(path)) bad(where, 'baseUrl', 'must end with /api/access/onguard/openaccess');
  // Never show these values: the Application-Id is a license key, the password a password.
  for (const k of ['applicationId', 'password'] as const) {
    if (typeof o[k] !== 'string' || o[k] === '') bad(where, k, 'must resolve to a non-empty value');
    if (/[\r\n\0]/.test(o[k])) bad(where, k, 'contains a line break or NUL (value not shown); check the secret file');
  }
  if (typeof o.username !== 'string' || o.username === '' || /[\r\n\0]/.test(o.username)) bad(where, 'username', 'must be a non-empty user name');
  if (o.directoryId !== undefined && (typeof o.directoryId !== 'string' || o.directoryId === '' || /[\r\n\0]/.test(o.directoryId))) bad(where, 'directoryId', 'must be a directory id from GET /directories');
  if (!Array.isArray(o.accessLevels) || o.accessLevels.length === 0) bad(where, 'accessLevels', 'must name at least one access level');
  const seen = new Map<string, number>();
  o.accessLevels.forEach((l: unknown, i) => {
    if (typeof l !== 'string' || !ACCESS_LEVEL.test(l)) bad(where, `accessLevels[${i}]`, `${show(l)} is not an access level name (1-64 characters, no quotes, backslashes or control characters) or ID`);
    // OnGuard compares names without case: two spellings would be one level managed twice.
    const k = l.toLowerCase();
    if (seen.has(k)) bad(where, `accessLevels[${i}]`, `${show(l)} repeats accessLevels[${seen.get(k)}] (names are case-insensitive)`);
    seen.set(k, i);
  });
  if (typeof o.timeZone !== 'string' || !isTimeZone(o.timeZone)) bad(where, 'timeZone', `${show(o.timeZone)} is not an IANA time zone known to this Node (e.g. America/Chicago)`);
  if (o.badgeBy !== undefined && o.badgeBy !== 'id' && o.badgeBy !== 'key') bad(where, 'badgeBy', `${show(o.badgeBy)} must be id or key`);
  if (o.resolution !== undefined && o.resolution !== 'minute' && o.resolution !== 'second') bad(where, 'resolution', `${show(o.resolution)} must be minute or second`);
  if (o.caPem !== undefined && !/-----BEGIN CERTIFICATE-----/.test(o.caPem)) bad(where, 'caPem', 'does not contain a PEM certificate (-----BEGIN CERTIFICATE-----)');
  if (o.timeoutMs !== undefined && !(Number.isInteger(o.timeoutMs) && o.timeoutMs > 0 && o.timeoutMs <= 600_000)) bad(where, 'timeout', 'must be between 1ms and 10m');
  if (o.pageSize !== undefined && !(Number.isInteger(o.pageSize) && o.pageSize >= 1 && o.pageSize <= 1000)) bad(where, 'pageSize', 'must be an integer from 1 to 1000');
  if (o.loginBackoffMs !== undefined && !(Number.isInteger(o.loginBackoffMs) && o.loginBackoffMs >= 0)) bad(where, 'loginBackoffMs', 'must be a non-negative integer');
}

type Block = Readonly<Record<string, unknown>>;

/**
 * The `lenel:` block (schema-checked, secrets resolved to their values, durations as text) → the
 * constructor's options. Throws CONFIG_INVALID naming the field for anything wrong.
 */
export function lenelTargetOptions(id: string, block: Block): LenelTargetOptions {
  const where = `target ${id}: lenel`;
  const known = new Set(Object.keys(LENEL_TARGET_SCHEMA.properties));
  for (const k of Object.keys(block)) if (!known.has(k)) bad(where, k, 'is not a lenel setting');
  const str = (k: string): string | undefined => {
    const v = block[k];
    if (v === undefined) return undefined;
    if (typeof v !== 'string') bad(where, k, 'must be a string');
    return v;
  };
  const need = (k: string): string => str(k) ?? bad(where, k, 'is required');
  const levels = block['accessLevels'];
  if (!Array.isArray(levels)) bad(where, 'accessLevels', 'must be a list of access level names or IDs');
  const timeout = str('timeout');
  const pageSize = block['pageSize'];
  if (pageSize !== undefined && typeof pageSize !== 'number') bad(where, 'pageSize', 'must be a number');
  const badgeBy = str('badgeBy');
  const resolution = str('resolution');
  const directoryId = str('directoryId');
  const caPem = str('caPem');
  const o: LenelTargetOptions = {
    id,
    baseUrl: need('baseUrl'),
    applicationId: need('applicationId'),
    username: need('username'),
    password: need('password'),
    accessLevels: levels.map((l: unknown, i) => (typeof l === 'string' ? l : bad(where, `accessLevels[${i}]`, `${show(l)} must be a string`))),
    timeZone: need('timeZone'),
    ...(directoryId !== undefined ? { directoryId } : {}),
    ...(badgeBy !== undefined ? { badgeBy: badgeBy as 'id' | 'key' } : {}),
    ...(resolution !== undefined ? { resolution: resolution as 'minute' | 'second' } : {}),
    ...(caPem !== undefined ? { caPem } : {}),
    ...(timeout !== undefined ? { timeoutMs: parseDuration(timeout, `${where}.timeout`) } : {}),
    ...(typeof pageSize === 'number' ? { pageSize } : {}),
  };
  checkLenelOptions(o);
  return o;
}
