import { randomBytes } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';

/**
 * A real OpenID provider (oidc-provider v9) on 127.0.0.1 for the vendor portal's sign-in: one
 * confidential client using the authorization code flow with PKCE (required), and a minimal
 * interaction that signs in whoever `loginAs()` named last, with or without a second factor.
 *
 * The interaction stands in for the provider's login form: GET /interaction/:uid finishes the
 * login prompt with `{ accountId, amr, acr }` (amr ["pwd", "otp"] with MFA, ["pwd"] without) and
 * the consent prompt by granting the openid scope, exactly as a real deployment's pages would
 * call interactionFinished(). Everything else (authorization endpoint, PKCE check, code
 * redemption and single use, ID token signing) is the provider's own.
 */

export interface PortalTestUser {
  readonly mfa: boolean;
  /** Extra claims in the ID token (e.g. a vendor claim). */
  readonly claims?: Record<string, unknown>;
}

export interface PortalOidcProvider {
  readonly issuer: string;
  readonly clientId: string;
  readonly clientSecret: string;
  /** The next interaction signs in this user. */
  loginAs(user: string): void;
  close(): Promise<void>;
}

interface ProviderInstance {
  callback(): http.RequestListener;
  interactionDetails(req: http.IncomingMessage, res: http.ServerResponse): Promise<{ prompt: { name: string }; params: Record<string, unknown>; session?: { accountId?: string } }>;
  interactionFinished(req: http.IncomingMessage, res: http.ServerResponse, result: Record<string, unknown>, opts?: { mergeWithLastSubmission?: boolean }): Promise<void>;
  Grant: new (o: { accountId: string; clientId: string }) => { addOIDCScope(scope: string): void; save(): Promise<string> };
}

// oidc-provider ships no type declarations; only what is used here is typed above.
async function loadProvider(): Promise<new (issuer: string, config: Record<string, unknown>) => ProviderInstance> {
  const name = 'oidc-provider';
  return ((await import(name)) as { Provider: new (issuer: string, config: Record<string, unknown>) => ProviderInstance }).Provider;
}

/**
 * `redirectUri`: one, or several (the portal's and the staff pages' callbacks on one client).
 * `claims`: claim names, beyond sub, vendor, acr and amr, that the ID token may carry (e.g. a role claim).
 */
export async function startPortalProvider(opts: { redirectUri: string | readonly string[]; users: Readonly<Record<string, PortalTestUser>>; claims?: readonly string[] }): Promise<PortalOidcProvider> {
  const Provider = await loadProvider();
  const clientId = 'wogate-portal';
  const clientSecret = randomBytes(24).toString('base64url');
  let current: string | undefined;
  let listener: http.RequestListener = (_req, res) => res.writeHead(503).end();
  // The provider is built once the server's port (its issuer) is known.
  const built: { provider?: ProviderInstance } = {};
  const server = http.createServer((req, res) => {
    if (built.provider && req.url?.startsWith('/interaction/')) {
      void interact(built.provider, req, res).catch((e: unknown) => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' }).end(`test provider interaction failed: ${String(e)}`);
      });
      return;
    }
    listener(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  async function interact(p: ProviderInstance, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const details = await p.interactionDetails(req, res);
    if (details.prompt.name === 'login') {
      const user = current ? opts.users[current] : undefined;
      if (!current || !user) throw new Error('test provider: loginAs() names no known user');
      await p.interactionFinished(req, res, { login: { accountId: current, amr: user.mfa ? ['pwd', 'otp'] : ['pwd'], acr: user.mfa ? 'urn:test:mfa' : 'urn:test:pwd' } }, { mergeWithLastSubmission: false });
      return;
    }
    const grant = new p.Grant({ accountId: String(details.session?.accountId), clientId: String(details.params.client_id) });
    grant.addOIDCScope('openid');
    await p.interactionFinished(req, res, { consent: { grantId: await grant.save() } }, { mergeWithLastSubmission: true });
  }

  const provider = new Provider(issuer, {
    clients: [{ client_id: clientId, client_secret: clientSecret, redirect_uris: typeof opts.redirectUri === 'string' ? [opts.redirectUri] : [...opts.redirectUri], grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'client_secret_basic' }],
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    pkce: { required: () => true },
    interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}` },
    features: { devInteractions: { enabled: false } },
    // Claims go into the ID token itself, as the portal reads them from there.
    conformIdTokenClaims: false,
    // amr and acr listed under openid: this provider's claim filter passes only what a scope names.
    claims: { acr: null, amr: null, auth_time: null, sid: null, iss: null, openid: ['sub', 'vendor', 'acr', 'amr', 'auth_time', ...(opts.claims ?? [])] },
    findAccount: (_ctx: unknown, id: string) => (opts.users[id] ? { accountId: id, claims: () => ({ sub: id, ...opts.users[id]?.claims }) } : undefined),
  });
  built.provider = provider;
  listener = provider.callback();

  return {
    issuer,
    clientId,
    clientSecret,
    loginAs(user) {
      current = user;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * A browser's cookie handling, enough for one host: cookies by name (the portal and the provider
 * run on different ports of 127.0.0.1, and cookies ignore ports), expiry by Max-Age=0 only.
 */
export class CookieJar {
  readonly cookies = new Map<string, string>();

  header(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  store(res: Response): void {
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const i = (pair ?? '').indexOf('=');
      if (i <= 0) continue;
      const name = (pair as string).slice(0, i).trim();
      const value = (pair as string).slice(i + 1).trim();
      const expired = attrs.some((a) => /^\s*max-age=0\s*$/i.test(a)) || attrs.some((a) => /^\s*expires=/i.test(a) && Date.parse(a.split('=')[1] ?? '') < Date.now());
      if (expired || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  async fetch(url: string, init: RequestInit = {}): Promise<Response> {
    const res = await fetch(url, { ...init, redirect: 'manual', headers: { ...(init.headers as Record<string, string> | undefined), ...(this.cookies.size ? { cookie: this.header() } : {}) } });
    this.store(res);
    return res;
  }

  /** Follows redirects like a browser (GET after 302/303) until a page that is not a redirect, or until `stopAt` matches the next URL. */
  async follow(url: string, stopAt?: (next: URL) => boolean): Promise<{ res: Response; url: string; stoppedAt?: string }> {
    let at = url;
    for (let i = 0; i < 20; i++) {
      const res = await this.fetch(at);
      const loc = res.headers.get('location');
      if (res.status < 300 || res.status >= 400 || !loc) return { res, url: at };
      const next = new URL(loc, at);
      if (stopAt?.(next)) return { res, url: at, stoppedAt: next.href };
      at = next.href;
    }
    throw new Error(`too many redirects from ${url}`);
  }
}

/** A free port on loopback, for a daemon whose URL must be known before it starts (the redirect URI registered at the provider). */
export async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}
