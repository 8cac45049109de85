import * as client from 'openid-client';
import type { PortalConfig } from '../config/config.js';

/**
 * The portal's side of the OpenID Connect authorization code flow with PKCE (openid-client v6).
 * Discovery happens on first use and is retried on the next sign-in when it failed.
 */

export class PortalLoginError extends Error {
  constructor(readonly reason: 'provider_unavailable' | 'provider_refused' | 'response_invalid', message: string) {
    super(message);
  }
}

export interface BeginLogin {
  readonly url: URL;
  readonly state: string;
  readonly nonce: string;
  readonly codeVerifier: string;
}

export interface LoginClaims {
  readonly sub: string;
  readonly claims: Readonly<Record<string, unknown>>;
}

/** The client a sign-in flow runs as: the vendor portal's, or the staff pages'. */
export interface FlowClient {
  readonly issuer: string;
  readonly clientId: string;
  readonly redirectUri: string;
  readonly requiredAcr?: readonly string[];
  /** Requested beyond openid. */
  readonly scopes?: readonly string[];
}

export class PortalOidc {
  private config: Promise<client.Configuration> | undefined;

  constructor(private readonly o: FlowClient, private readonly clientSecret: string) {}

  private configuration(): Promise<client.Configuration> {
    if (!this.config) {
      const issuer = new URL(this.o.issuer);
      // The config schema allows plain http only for a loopback issuer.
      const insecure = issuer.protocol === 'http:' ? { execute: [client.allowInsecureRequests] } : {};
      this.config = client.discovery(issuer, this.o.clientId, { redirect_uris: [this.o.redirectUri], response_types: ['code'] }, client.ClientSecretBasic(this.clientSecret), insecure);
      this.config.catch(() => {
        this.config = undefined;
      });
    }
    return this.config;
  }

  async begin(): Promise<BeginLogin> {
    let config: client.Configuration;
    try {
      config = await this.configuration();
    } catch (e) {
      throw new PortalLoginError('provider_unavailable', `discovery at ${this.o.issuer} failed: ${e instanceof Error ? e.message : String(e)}`);
    }
    const codeVerifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = client.randomNonce();
    const params: Record<string, string> = {
      redirect_uri: this.o.redirectUri,
      scope: ['openid', ...(this.o.scopes ?? [])].join(' '),
      response_type: 'code',
      code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    };
    if (this.o.requiredAcr) params.acr_values = this.o.requiredAcr.join(' ');
    return { url: client.buildAuthorizationUrl(config, params), state, nonce, codeVerifier };
  }

  /** Redeems the code (the provider checks the PKCE verifier) and verifies the ID token's signature, issuer, audience and nonce. */
  async finish(query: string, checks: { state: string; nonce: string; codeVerifier: string }): Promise<LoginClaims> {
    const config = await this.configuration().catch((e: unknown) => {
      throw new PortalLoginError('provider_unavailable', `discovery at ${this.o.issuer} failed: ${e instanceof Error ? e.message : String(e)}`);
    });
    // The URL the provider redirected to, rebuilt from configuration rather than from the Host header.
    const current = new URL(this.o.redirectUri);
    current.search = query;
    try {
      const tokens = await client.authorizationCodeGrant(config, current, { pkceCodeVerifier: checks.codeVerifier, expectedState: checks.state, expectedNonce: checks.nonce, idTokenExpected: true });
      const claims = tokens.claims();
      if (!claims) throw new PortalLoginError('response_invalid', 'the provider returned no ID token');
      return { sub: claims.sub, claims: claims as Record<string, unknown> };
    } catch (e) {
      if (e instanceof PortalLoginError) throw e;
      if (e instanceof client.AuthorizationResponseError || e instanceof client.ResponseBodyError) {
        throw new PortalLoginError('provider_refused', `the provider refused the sign-in: ${e.error}${e.error_description ? ` (${e.error_description})` : ''}`);
      }
      if (e instanceof TypeError) throw new PortalLoginError('provider_unavailable', `the provider could not be reached: ${e.message}`);
      throw new PortalLoginError('response_invalid', `the provider's response failed validation: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
}

/** MFA is proven by one of requiredAmr in amr, or (when configured) one of requiredAcr as acr. */
export function provesMfa(claims: Readonly<Record<string, unknown>>, o: Pick<PortalConfig['oidc'], 'requiredAmr' | 'requiredAcr'>): boolean {
  const amr = Array.isArray(claims.amr) ? claims.amr.filter((v): v is string => typeof v === 'string') : [];
  if (amr.some((v) => o.requiredAmr.includes(v))) return true;
  return typeof claims.acr === 'string' && (o.requiredAcr?.includes(claims.acr) ?? false);
}

/** A claim by name or dotted path, as a non-empty string of at most 256 characters. */
export function claimText(claims: Readonly<Record<string, unknown>>, path: string): string | undefined {
  let v: unknown = claims;
  for (const seg of path.split('.')) v = v && typeof v === 'object' ? (v as Record<string, unknown>)[seg] : undefined;
  return typeof v === 'string' && v.length > 0 && v.length <= 256 ? v : undefined;
}

/**
 * Where to go after sign-in: only a path inside `base` (/portal or /staff) on this origin. Anything
 * else (an absolute URL, `//host`, a backslash, a scheme, control characters) is an open redirect
 * and is refused.
 */
export function safeReturnTo(raw: unknown, base = '/portal'): string | undefined {
  if (raw === undefined) return base;
  if (typeof raw !== 'string' || raw.length > 512 || !/^\/[a-z]+$/.test(base)) return undefined;
  // eslint-disable-next-line no-control-regex -- control characters are what is refused
  if (!new RegExp(`^${base}(/[A-Za-z0-9._~\\-/]*)?(\\?[A-Za-z0-9._~\\-=&%]*)?$`).test(raw) || raw.includes('//') || /[\u0000-\u001f\\]/.test(raw)) return undefined;
  const u = new URL(raw, 'http://pages.invalid');
  return u.origin === 'http://pages.invalid' && (u.pathname === base || u.pathname.startsWith(`${base}/`)) ? `${u.pathname}${u.search}` : undefined;
}
