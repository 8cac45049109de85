import { parseDuration, WogateError } from '../domain/index.js';
import { checkHttpUrl } from '../http-safety.js';

/** What the BeyondTrust PRA target is built from; see docs/targets/beyondtrust.md. */
export interface BeyondTrustTargetOptions {
  readonly id: string;
  /** The PRA site, e.g. https://access.example.com (the token is at /oauth2/token, the API under /api/config/v1). */
  readonly baseUrl: string;
  /** OAuth client id of the API account. */
  readonly clientId: string;
  /** OAuth client secret of the API account. */
  readonly clientSecret: string;
  /**
   * The group policies wogate manages, by exact name. A grant's `group` must be one of them; wogate
   * adds and removes members of these policies only, and never touches any other policy.
   */
  readonly groups: readonly string[];
  /** Look users up and add them only in this security provider (needed when a username exists in several). */
  readonly securityProviderId?: number;
  /** Deadline per HTTP call; default 10000. */
  readonly timeoutMs?: number;
  /** A token is fetched again this long before PRA says it expires; default 60000. */
  readonly tokenRefreshMarginMs?: number;
  /** PEM bundle to trust for an appliance with a private CA. */
  readonly caPem?: string;
}

export const BEYONDTRUST_TARGET_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['baseUrl', 'clientId', 'clientSecret', 'groups'],
  properties: {
    baseUrl: {
      type: 'string',
      pattern: '^https?://[^?#]+$',
      description: 'the PRA site URL (https://access.example.com); the token is fetched from /oauth2/token and the API is /api/config/v1 under it',
    },
    clientId: {
      type: 'string',
      minLength: 1,
      maxLength: 128,
      pattern: '^[^\\s:]+$',
      description: 'OAuth client id of the PRA API account (Management > API Configuration)',
    },
    clientSecret: { $ref: '#/definitions/secretRef', description: 'OAuth client secret of the PRA API account' },
    groups: {
      type: 'array',
      minItems: 1,
      maxItems: 500,
      uniqueItems: true,
      items: { type: 'string', minLength: 1, maxLength: 255 },
      description: 'exact names of the group policies wogate manages (one per jump group to open); a grant naming any other group is refused',
    },
    securityProviderId: {
      type: 'integer',
      minimum: 1,
      maximum: 2147483647,
      description: 'only look technicians up in, and add them from, this security provider (its id in PRA)',
    },
    timeout: { $ref: '#/definitions/duration', description: 'deadline for each call to PRA; default 10s' },
    tokenRefreshMargin: { $ref: '#/definitions/duration', description: 'fetch a new OAuth token this long before the current one expires; default 60s' },
    caPem: { $ref: '#/definitions/secretRef', description: 'file:/path of a PEM CA bundle that signed the appliance certificate, trusted instead of the system store' },
  },
} as const;

// eslint-disable-next-line no-control-regex -- control characters are what it refuses
const GROUP_NAME = /^[^\u0000-\u001f\u007f]+$/;

function invalid(id: string, field: string, problem: string): WogateError {
  return new WogateError('CONFIG_INVALID', `target ${id}: beyondtrust.${field} ${problem}`);
}

/** Turns a schema-checked `beyondtrust:` block (secrets resolved, durations as text) into constructor options. */
export function beyondtrustTargetOptions(id: string, block: Readonly<Record<string, unknown>>): BeyondTrustTargetOptions {
  const str = (field: string): string => {
    const v = block[field];
    if (typeof v !== 'string' || v.trim() === '') throw invalid(id, field, 'is required and must be a non-empty string');
    return v;
  };
  const baseUrl = str('baseUrl');
  const url = checkHttpUrl(baseUrl, `target ${id}: beyondtrust.baseUrl`);
  if (url.pathname !== '/' && url.pathname !== '') {
    throw invalid(id, 'baseUrl', `must be the site URL without a path (got path ${JSON.stringify(url.pathname)}); /api/config/v1 is added by wogate`);
  }
  const clientId = str('clientId');
  if (/[\s:]/.test(clientId)) throw invalid(id, 'clientId', 'must not contain whitespace or ":" (it goes into HTTP Basic authentication)');
  const clientSecret = str('clientSecret');

  const raw = block['groups'];
  if (!Array.isArray(raw) || raw.length === 0) throw invalid(id, 'groups', 'must list at least one group policy name');
  const seen = new Map<string, string>();
  const groups: string[] = [];
  for (const [i, g] of raw.entries()) {
    if (typeof g !== 'string' || g.trim() !== g || g === '' || !GROUP_NAME.test(g)) {
      throw invalid(id, `groups[${i}]`, `${JSON.stringify(g)} must be a group policy name without surrounding spaces or control characters`);
    }
    // PRA matches names case-insensitively: two spellings would be one policy managed twice.
    const folded = g.toLowerCase();
    const prior = seen.get(folded);
    if (prior !== undefined) throw invalid(id, `groups[${i}]`, `${JSON.stringify(g)} is the same group policy as ${JSON.stringify(prior)} (PRA compares names case-insensitively)`);
    seen.set(folded, g);
    groups.push(g);
  }

  const provider = block['securityProviderId'];
  if (provider !== undefined && (typeof provider !== 'number' || !Number.isInteger(provider) || provider < 1 || provider > 2147483647)) {
    throw invalid(id, 'securityProviderId', 'must be a positive integer (the id of a PRA security provider)');
  }

  const duration = (field: string, def: number, min: number, max: number): number => {
    const v = block[field];
    if (v === undefined) return def;
    if (typeof v !== 'string' && typeof v !== 'number') throw invalid(id, field, 'must be a duration such as 10s');
    const ms = parseDuration(v, `target ${id}: beyondtrust.${field}`);
    if (ms < min || ms > max) throw invalid(id, field, `must be between ${min / 1000}s and ${max / 1000}s`);
    return ms;
  };
  const timeoutMs = duration('timeout', 10_000, 100, 120_000);
  const tokenRefreshMarginMs = duration('tokenRefreshMargin', 60_000, 0, 1_800_000);

  const caPem = block['caPem'];
  if (caPem !== undefined && (typeof caPem !== 'string' || !caPem.includes('-----BEGIN CERTIFICATE-----'))) throw invalid(id, 'caPem', 'holds no PEM certificate (-----BEGIN CERTIFICATE-----)');

  return {
    id, baseUrl, clientId, clientSecret, groups, timeoutMs, tokenRefreshMarginMs,
    ...(provider !== undefined ? { securityProviderId: provider as number } : {}),
    ...(caPem !== undefined ? { caPem } : {}),
  };
}
