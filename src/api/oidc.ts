import { createRemoteJWKSet, decodeJwt, decodeProtectedHeader, errors, jwtVerify, type JWTPayload } from 'jose';
import type { Logger } from '../log.js';
import { highestRole, isRole, type Role } from './roles.js';
import { DEFAULT_PERSON_CLAIM, personFromClaim } from './person.js';

/**
 * Verifies access tokens issued by the organisation's OpenID provider: discovery, JWKS (rotated
 * keys are fetched again when an unknown kid shows up, at most once per cooldown), signature,
 * issuer, audience, expiry, subject; then maps a claim to a wogate role.
 */

/** Asymmetric only: an HS* token would be "signed" with a key the verifier must also hold, and `none` not at all. */
export const ALLOWED_ALGS = ['RS256', 'PS256', 'ES256', 'EdDSA'] as const;

export interface OidcOptions {
  /** Exactly as the provider states it in its discovery document and in every token's `iss`. */
  readonly issuer: string;
  /** The token's `aud` must be or contain this. */
  readonly audience: string;
  /** The claim holding the user's roles or groups: a name, or a dotted path (realm_access.roles). */
  readonly roleClaim: string;
  /** Claim value → wogate role. Values not listed give no role. */
  readonly roles: Readonly<Record<string, Role>>;
  /** The claim naming the person (src/api/person.ts); default sub. */
  readonly personClaim?: string;
  readonly clockToleranceSec: number;
  readonly clock: () => Date;
  readonly log?: Logger;
  /** No JWKS refetch for an unknown kid within this long of the last fetch (jose's default, 30 s). */
  readonly jwksCooldownMs?: number;
  /** Deadline for discovery and JWKS requests. */
  readonly fetchTimeoutMs?: number;
  /** The JWT `typ` header every token must carry (at+jwt for RFC 9068 access tokens); absent = any. */
  readonly requireTyp?: string;
  /** Clients (the token's `azp`, else `client_id`) whose tokens are accepted; absent = any client of the issuer. */
  readonly allowedClients?: readonly string[];
}

/** Who a verified token speaks for. `role` is undefined when no claim value maps to one: such a caller may do nothing. */
export interface OidcIdentity {
  readonly sub: string;
  readonly role: Role | undefined;
  /** personClaim's value, canonical; undefined when missing or not an id (such a caller counts as nobody in two-person rules). */
  readonly person: string | undefined;
}

export type OidcRefusal =
  | 'malformed'
  | 'unsigned'
  | 'alg_not_allowed'
  | 'wrong_issuer'
  | 'wrong_audience'
  | 'expired'
  | 'not_yet_valid'
  | 'unknown_key'
  | 'ambiguous_key'
  | 'bad_signature'
  | 'wrong_type'
  | 'client_not_allowed'
  | 'missing_claim'
  | 'invalid_claim';

/** The token was refused. The message names what was wrong and never quotes the token. */
export class OidcTokenError extends Error {
  override readonly name = 'OidcTokenError';
  readonly code = 'OIDC_TOKEN_INVALID';
  constructor(
    readonly reason: OidcRefusal,
    message: string,
  ) {
    super(message);
  }
}

/** The provider's discovery document or keys could not be read: nothing can be verified right now. */
export class OidcUnavailableError extends Error {
  override readonly name = 'OidcUnavailableError';
  readonly code = 'OIDC_UNAVAILABLE';
}

interface Discovered {
  readonly jwksUri: string;
  readonly jwks: ReturnType<typeof createRemoteJWKSet>;
}

// Large enough for any real token with group claims, small enough that parsing junk costs nothing.
const MAX_TOKEN_CHARS = 16 * 1024;
const JWS_COMPACT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
// A discovery that just failed is not retried for this long, so bearers can't make wogate hammer the provider.
const DISCOVERY_RETRY_MS = 5_000;

export function isLoopbackUrl(u: URL): boolean {
  return u.hostname === 'localhost' || u.hostname === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(u.hostname);
}

export class OidcVerifier {
  private discovered: Promise<Discovered> | undefined;
  private failedAt = -Infinity;
  private lastFailure: OidcUnavailableError | undefined;

  constructor(private readonly o: OidcOptions) {}

  get issuer(): string {
    return this.o.issuer;
  }

  /** Reads the provider's discovery document (once; again after a failure). Safe to call early to warm up. */
  discover(): Promise<Discovered> {
    if (this.discovered) return this.discovered;
    if (this.lastFailure && performance.now() - this.failedAt < DISCOVERY_RETRY_MS) return Promise.reject(this.lastFailure);
    const p = this.fetchDiscovery().catch((e: unknown) => {
      this.discovered = undefined;
      this.failedAt = performance.now();
      this.lastFailure = e instanceof OidcUnavailableError ? e : new OidcUnavailableError(`OIDC discovery failed: ${e instanceof Error ? e.message : String(e)}`);
      throw this.lastFailure;
    });
    this.discovered = p;
    return p;
  }

  private async fetchDiscovery(): Promise<Discovered> {
    const url = `${this.o.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
    let res: Response;
    try {
      res = await fetch(url, { redirect: 'error', headers: { accept: 'application/json' }, signal: AbortSignal.timeout(this.o.fetchTimeoutMs ?? 5_000) });
    } catch (e) {
      throw new OidcUnavailableError(`OIDC discovery at ${url} failed: ${e instanceof Error ? (e.cause instanceof Error ? e.cause.message : e.message) : String(e)}`);
    }
    if (res.status !== 200) throw new OidcUnavailableError(`OIDC discovery at ${url} answered HTTP ${res.status}`);
    const text = await res.text();
    if (text.length > 512 * 1024) throw new OidcUnavailableError(`OIDC discovery at ${url}: document larger than 512 KiB`);
    let doc: { issuer?: unknown; jwks_uri?: unknown };
    try {
      doc = JSON.parse(text) as typeof doc;
    } catch {
      throw new OidcUnavailableError(`OIDC discovery at ${url}: not JSON`);
    }
    // OpenID Connect Discovery 1.0 §4.3: the document must name exactly the issuer it was fetched for.
    if (doc.issuer !== this.o.issuer) throw new OidcUnavailableError(`OIDC discovery at ${url} names issuer ${JSON.stringify(doc.issuer)}, not the configured ${this.o.issuer}`);
    let jwksUri: URL;
    try {
      jwksUri = new URL(String(doc.jwks_uri));
    } catch {
      throw new OidcUnavailableError(`OIDC discovery at ${url}: jwks_uri is missing or not a URL`);
    }
    if (jwksUri.protocol !== 'https:' && !(jwksUri.protocol === 'http:' && isLoopbackUrl(jwksUri))) {
      throw new OidcUnavailableError(`OIDC discovery at ${url}: jwks_uri must be https (plain http only on loopback)`);
    }
    const jwks = createRemoteJWKSet(jwksUri, {
      cooldownDuration: this.o.jwksCooldownMs ?? 30_000,
      timeoutDuration: this.o.fetchTimeoutMs ?? 5_000,
      cacheMaxAge: 10 * 60_000,
    });
    this.o.log?.info('OIDC issuer discovered', { issuer: this.o.issuer, jwksUri: jwksUri.href });
    return { jwksUri: jwksUri.href, jwks };
  }

  /** Throws OidcTokenError for a token to refuse (401), OidcUnavailableError when the provider can't be read. */
  async verify(token: string): Promise<OidcIdentity> {
    if (token.length > MAX_TOKEN_CHARS) throw new OidcTokenError('malformed', `token is longer than ${MAX_TOKEN_CHARS} characters`);
    if (!JWS_COMPACT.test(token)) throw new OidcTokenError('malformed', 'token is not a signed JWT (compact JWS: header.payload.signature)');
    let alg: unknown;
    let unverified: JWTPayload;
    try {
      alg = decodeProtectedHeader(token).alg;
      unverified = decodeJwt(token);
    } catch {
      throw new OidcTokenError('malformed', 'token header or payload is not valid base64url JSON');
    }
    if (alg === 'none' || token.endsWith('.')) throw new OidcTokenError('unsigned', 'token is unsigned (alg "none"); only signed tokens are accepted');
    if (!(ALLOWED_ALGS as readonly unknown[]).includes(alg)) throw new OidcTokenError('alg_not_allowed', `token algorithm is not one of ${ALLOWED_ALGS.join(', ')}`);
    // Refused before any key is fetched: a token from another issuer must not make wogate call its own provider.
    if (unverified.iss !== this.o.issuer) throw new OidcTokenError('wrong_issuer', `token was not issued by the configured issuer ${this.o.issuer}`);

    const { jwks } = await this.discover();
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, jwks, {
        algorithms: [...ALLOWED_ALGS],
        issuer: this.o.issuer,
        audience: this.o.audience,
        clockTolerance: this.o.clockToleranceSec,
        currentDate: this.o.clock(),
        requiredClaims: ['sub', 'exp'],
        ...(this.o.requireTyp ? { typ: this.o.requireTyp } : {}),
      }));
    } catch (e) {
      throw this.refusal(e);
    }
    if (!printableSubject(payload.sub)) {
      throw new OidcTokenError('invalid_claim', 'token "sub" claim must be 1 to 255 printable characters');
    }
    if (this.o.allowedClients) {
      // OpenID Connect names the client in azp, RFC 9068 access tokens in client_id.
      const client = typeof payload.azp === 'string' ? payload.azp : typeof payload.client_id === 'string' ? payload.client_id : undefined;
      if (client === undefined) throw new OidcTokenError('client_not_allowed', 'token names no client (azp or client_id), and auth.oidc.allowedClients requires one');
      if (!this.o.allowedClients.includes(client)) throw new OidcTokenError('client_not_allowed', 'token was issued to a client that is not in auth.oidc.allowedClients');
    }
    return { sub: payload.sub, role: roleFromClaims(payload, this.o), person: personFromClaim(claimAt(payload, this.o.personClaim ?? DEFAULT_PERSON_CLAIM), this.o.personClaim) };
  }

  private refusal(e: unknown): Error {
    if (e instanceof errors.JWTExpired) return new OidcTokenError('expired', 'token has expired');
    if (e instanceof errors.JWTClaimValidationFailed) {
      if (e.claim === 'aud') return new OidcTokenError('wrong_audience', `token audience does not include ${this.o.audience}`);
      if (e.claim === 'iss') return new OidcTokenError('wrong_issuer', `token was not issued by the configured issuer ${this.o.issuer}`);
      if (e.claim === 'nbf') return new OidcTokenError('not_yet_valid', 'token is not valid yet (nbf)');
      if (e.claim === 'typ') return new OidcTokenError('wrong_type', `token's typ header is not ${this.o.requireTyp ?? ''}`);
      if (e.reason === 'missing') return new OidcTokenError('missing_claim', `token has no "${e.claim}" claim`);
      return new OidcTokenError('invalid_claim', `token "${e.claim}" claim is invalid`);
    }
    if (e instanceof errors.JWKSNoMatchingKey) return new OidcTokenError('unknown_key', 'no signing key of the issuer matches the token (unknown kid or key type)');
    if (e instanceof errors.JWSSignatureVerificationFailed) return new OidcTokenError('bad_signature', 'token signature does not verify with the issuer\'s key');
    if (e instanceof errors.JOSEAlgNotAllowed) return new OidcTokenError('alg_not_allowed', `token algorithm is not one of ${ALLOWED_ALGS.join(', ')}`);
    if (e instanceof errors.JWKSMultipleMatchingKeys) return new OidcTokenError('ambiguous_key', 'token names no kid and several of the issuer\'s keys could have signed it');
    if (e instanceof errors.JWSInvalid || e instanceof errors.JWTInvalid || e instanceof errors.JOSENotSupported) return new OidcTokenError('malformed', 'token is not a well-formed signed JWT');
    // Only the provider's side is "unavailable": JWKS timeouts, an unusable JWKS document, HTTP and
    // network failures (a plain JOSEError or a fetch error). Any other verdict of jose is about the token.
    if (e instanceof errors.JOSEError && !(e instanceof errors.JWKSTimeout) && !(e instanceof errors.JWKSInvalid) && e.code !== errors.JOSEError.code) {
      return new OidcTokenError('malformed', 'token is not a well-formed signed JWT');
    }
    const why = e instanceof errors.JWKSTimeout ? 'timed out' : e instanceof Error ? e.message : String(e);
    return new OidcUnavailableError(`the issuer's signing keys could not be read: ${why}`);
  }
}

/** The highest wogate role the claim's values map to (a string or an array of strings); undefined for none. */
export function roleFromClaims(payload: Readonly<Record<string, unknown>>, o: Pick<OidcOptions, 'roleClaim' | 'roles'>): Role | undefined {
  const raw = claimAt(payload, o.roleClaim);
  const values = typeof raw === 'string' ? [raw] : Array.isArray(raw) ? raw.filter((v): v is string => typeof v === 'string') : [];
  const mapped = values.map((v) => (Object.hasOwn(o.roles, v) ? o.roles[v] : undefined)).filter(isRole);
  return highestRole(mapped);
}

/** Whether `sub` can stand in audit actors and log lines: 1 to 255 characters, none of them control characters. */
export function printableSubject(sub: unknown): sub is string {
  return typeof sub === 'string' && sub.length > 0 && sub.length <= 255 && !hasControlChars(sub);
}

// The subject becomes part of audit actors and log lines: no line breaks or escapes smuggled in.
function hasControlChars(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}

/** A claim by its full name first (namespaced claims such as https://example.com/roles hold dots), else by dotted path. */
export function claimAt(payload: Readonly<Record<string, unknown>>, name: string): unknown {
  if (Object.hasOwn(payload, name)) return payload[name];
  let node: unknown = payload;
  for (const seg of name.split('.')) {
    if (!node || typeof node !== 'object' || Array.isArray(node) || !Object.hasOwn(node, seg)) return undefined;
    node = (node as Record<string, unknown>)[seg];
  }
  return node;
}
