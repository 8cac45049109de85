import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, importJWK, SignJWT, type JWK, type JWTPayload } from 'jose';

/**
 * A real OpenID provider (oidc-provider v9) on 127.0.0.1, for the admin API's bearer tokens.
 *
 * How tokens are minted: every test user is a confidential client of the provider, and a token for
 * it is fetched from the provider's real /token endpoint with the client_credentials grant and a
 * resource indicator (RFC 8707). `features.resourceIndicators.getResourceServerInfo` makes access
 * tokens JWTs (RFC 9068, `typ: at+jwt`) for the resource server: `urn:wogate:api` has audience
 * `wogate-api`, `urn:other:api` has audience `other-api` (a token meant for someone else). The
 * user's claims (role claim and anything else) are added by `extraTokenClaims`; `sub` is the
 * client id. The provider signs with the user's `alg` (RS256 by default; PS256, ES256, EdDSA).
 *
 * Tokens the provider would never mint (expired, another issuer in `iss`) come from `sign()`,
 * which signs with the provider's own current key and kid: everything about them is genuine
 * except the claim under test.
 *
 * Key rotation: `rotateKeys()` swaps in a new provider instance behind the same socket (a restart
 * as far as any client can tell) that signs with a new kid and still publishes the old keys, as a
 * real provider does during a rollover. `rotateKeys({ dropOld: true })` publishes only the new keys.
 */

export type SigningAlg = 'RS256' | 'PS256' | 'ES256' | 'EdDSA';

export interface TestUser {
  /** Extra claims in the user's access tokens, e.g. `{ wogate_roles: ['wogate-operators'] }`. */
  readonly claims?: Record<string, unknown>;
  readonly alg?: SigningAlg;
}

export const WOGATE_RESOURCE = 'urn:wogate:api';
export const WOGATE_AUDIENCE = 'wogate-api';
export const OTHER_RESOURCE = 'urn:other:api';

interface KeyGeneration {
  readonly tag: string;
  /** One private key per algorithm family, as the provider's jwks wants them. */
  readonly keys: Record<SigningAlg, JWK & { kid: string }>;
}

export interface OidcTestProvider {
  readonly issuer: string;
  readonly audience: string;
  /** The kids the provider signs with now (one per algorithm). */
  currentKids(): Record<SigningAlg, string>;
  /** An access token from the provider's /token endpoint for `user` (client_credentials + resource indicator). */
  token(user: string, opts?: { resource?: string }): Promise<string>;
  /** Signs `claims` with the provider's own current key (defaults: this issuer, wogate-api, sub "alice", valid 5 min). */
  sign(claims?: JWTPayload, opts?: { alg?: SigningAlg; omit?: readonly string[]; noKid?: boolean; typ?: string }): Promise<string>;
  /** New signing keys behind the same URL; old ones stay published unless dropOld. */
  rotateKeys(opts?: { dropOld?: boolean }): Promise<void>;
  /** Requests the provider answered, by path (for "no key fetch happened" checks). */
  readonly requests: string[];
  close(): Promise<void>;
}

const ALGS: readonly SigningAlg[] = ['RS256', 'PS256', 'ES256', 'EdDSA'];

async function generation(): Promise<KeyGeneration> {
  const tag = randomBytes(4).toString('hex');
  const keys = {} as Record<SigningAlg, JWK & { kid: string }>;
  for (const alg of ALGS) {
    // PS256 gets its own RSA key: oidc-provider picks a signing key by alg, and a kid per alg keeps tests readable.
    const { privateKey } = await generateKeyPair(alg, { extractable: true, ...(alg === 'EdDSA' ? { crv: 'Ed25519' } : {}) });
    keys[alg] = { ...(await exportJWK(privateKey)), kid: `${alg.toLowerCase()}-${tag}`, alg, use: 'sig' };
  }
  return { tag, keys };
}

interface ProviderModule {
  Provider: new (issuer: string, config: Record<string, unknown>) => { callback(): http.RequestListener };
}

// oidc-provider ships no type declarations; only the constructor and callback() are used here.
async function loadProvider(): Promise<ProviderModule> {
  const name = 'oidc-provider';
  return (await import(name)) as ProviderModule;
}

export async function startOidcProvider(opts: { users: Readonly<Record<string, TestUser>> }): Promise<OidcTestProvider> {
  const { Provider } = await loadProvider();
  const secrets = new Map(Object.keys(opts.users).map((u) => [u, randomBytes(24).toString('base64url')]));
  const requests: string[] = [];
  let handler: http.RequestListener = (_req, res) => res.writeHead(503).end();
  const server = http.createServer((req, res) => {
    requests.push(new URL(req.url ?? '/', 'http://x').pathname);
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  let generations: KeyGeneration[] = [await generation()];
  const current = () => generations[0] as KeyGeneration;

  // The provider's own state (client_credentials token records) for this helper only; it survives
  // rotateKeys() like a real provider's database survives a restart.
  const stored = new Map<string, { payload: Record<string, unknown>; expiresAt?: number }>();
  class Adapter {
    constructor(private readonly model: string) {}
    private key(id: string) {
      return `${this.model}:${id}`;
    }
    async upsert(id: string, payload: Record<string, unknown>, expiresIn?: number) {
      stored.set(this.key(id), { payload, ...(expiresIn ? { expiresAt: Date.now() + expiresIn * 1000 } : {}) });
    }
    async find(id: string) {
      const e = stored.get(this.key(id));
      return e && (!e.expiresAt || e.expiresAt > Date.now()) ? e.payload : undefined;
    }
    async findByUid(uid: string) {
      return [...stored.values()].find((e) => e.payload.uid === uid)?.payload;
    }
    async findByUserCode(code: string) {
      return [...stored.values()].find((e) => e.payload.userCode === code)?.payload;
    }
    async consume(id: string) {
      const e = stored.get(this.key(id));
      if (e) e.payload.consumed = Math.floor(Date.now() / 1000);
    }
    async destroy(id: string) {
      stored.delete(this.key(id));
    }
    async revokeByGrantId(grantId: string) {
      for (const [k, e] of stored) if (e.payload.grantId === grantId) stored.delete(k);
    }
  }

  const build = () =>
    new Provider(issuer, {
      adapter: Adapter,
      jwks: { keys: generations.flatMap((g) => ALGS.map((a) => g.keys[a])) },
      clients: [...secrets].map(([id, secret]) => ({ client_id: id, client_secret: secret, grant_types: ['client_credentials'], redirect_uris: [], response_types: [] })),
      ttl: { ClientCredentials: 300 },
      features: {
        devInteractions: { enabled: false },
        clientCredentials: { enabled: true },
        resourceIndicators: {
          enabled: true,
          defaultResource: () => WOGATE_RESOURCE,
          getResourceServerInfo: (_ctx: unknown, resource: string, client: { clientId: string }) => {
            const audience = resource === WOGATE_RESOURCE ? WOGATE_AUDIENCE : resource === OTHER_RESOURCE ? 'other-api' : undefined;
            if (!audience) throw new Error(`test provider: unknown resource ${resource}`);
            const alg = opts.users[client.clientId]?.alg ?? 'RS256';
            // The first key for an alg in jwks signs: that is the newest generation's.
            return { scope: 'api', audience, accessTokenFormat: 'jwt', accessTokenTTL: 300, jwt: { sign: { alg, kid: current().keys[alg].kid } } };
          },
        },
      },
      extraTokenClaims: (_ctx: unknown, token: { clientId?: string }) => opts.users[token.clientId ?? '']?.claims,
    });
  handler = build().callback();

  return {
    issuer,
    audience: WOGATE_AUDIENCE,
    requests,
    currentKids: () => Object.fromEntries(ALGS.map((a) => [a, current().keys[a].kid])) as Record<SigningAlg, string>,
    async token(user, o = {}) {
      const secret = secrets.get(user);
      if (!secret) throw new Error(`test provider: no user ${user}`);
      const res = await fetch(`${issuer}/token`, {
        method: 'POST',
        headers: { authorization: `Basic ${Buffer.from(`${user}:${secret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'client_credentials', resource: o.resource ?? WOGATE_RESOURCE }).toString(),
      });
      const body = (await res.json()) as { access_token?: string; error?: string; error_description?: string };
      if (res.status !== 200 || !body.access_token) throw new Error(`test provider: token for ${user} refused: ${res.status} ${body.error ?? ''} ${body.error_description ?? ''}`);
      return body.access_token;
    },
    async sign(claims = {}, o = {}) {
      const alg = o.alg ?? 'RS256';
      const jwk = current().keys[alg];
      const now = Math.floor(Date.now() / 1000);
      const payload: JWTPayload = { iss: issuer, aud: WOGATE_AUDIENCE, sub: 'alice', iat: now, exp: now + 300, jti: randomBytes(8).toString('hex'), ...claims };
      for (const k of o.omit ?? []) delete payload[k];
      return new SignJWT(payload).setProtectedHeader({ alg, ...(o.noKid ? {} : { kid: jwk.kid }), typ: o.typ ?? 'at+jwt' }).sign(await importJWK(jwk, alg));
    },
    async rotateKeys(o = {}) {
      const fresh = await generation();
      generations = o.dropOld ? [fresh] : [fresh, ...generations];
      handler = build().callback();
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
