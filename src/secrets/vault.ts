// HashiCorp Vault as a source of secrets: AppRole or token login, KV version 2 reads, and a token
// kept alive by renewal (or a fresh AppRole login) until close(). node-vault does the Vault API;
// everything it would take from the environment (VAULT_ADDR, VAULT_TOKEN, VAULT_NAMESPACE,
// VAULT_PREFIX, VAULT_SKIP_VERIFY, DEBUG=node-vault) is pinned here, and its HTTP layer is
// replaced (see vault-transport.ts).
import NodeVault from 'node-vault';
import { excerpt } from '../http-safety.js';
import type { Logger } from '../log.js';
import { vaultAddressProblemText } from './address.js';
import { VAULT_REF } from './reference.js';
import { vaultTransport, VaultTransportError, type VaultTransport } from './vault-transport.js';

export type VaultAuth =
  | { readonly token: string }
  | { readonly appRole: { readonly roleId: string; readonly secretId: string; readonly mount?: string } };

/** Schedules the renewal timer; tests pass one they fire by hand. The callback never rejects. */
export interface Timers {
  set(fn: () => Promise<void>, ms: number): unknown;
  clear(handle: unknown): void;
}

/** Real timers, unref'd: a pending renewal never keeps the process alive. */
export const realTimers: Timers = {
  set(fn, ms) {
    const t = setTimeout(() => void fn(), ms);
    t.unref();
    return t;
  },
  clear(handle) {
    clearTimeout(handle as NodeJS.Timeout);
  },
};

export interface VaultSecretSourceOptions {
  /** https, or http to a Vault Agent on loopback. */
  readonly address: string;
  readonly namespace?: string;
  /** PEM bundle trusted for Vault's TLS certificate instead of the system store. */
  readonly caPem?: string;
  /** Resolved values, not references. */
  readonly auth: VaultAuth;
  /** Where the KV version 2 engine is mounted. */
  readonly kvMount: string;
  readonly timeoutMs: number;
  readonly log: Logger;
  readonly timers?: Timers;
  readonly now?: () => number;
}

/** A Vault call that failed; `status` when Vault answered. The message never holds a token or a secret. */
export class VaultCallError extends Error {
  override readonly name = 'VaultCallError';
  readonly code = 'VAULT_CALL_FAILED';
  constructor(message: string, readonly status?: number) {
    super(message);
  }
}

const SEGMENT = /^[A-Za-z0-9_-]+$/;
/** A KV path inside the mount, as a `vault:` reference may name it. */
export function isKvPath(p: string): boolean {
  return VAULT_REF.test(`vault:${p}#k`);
}

type Client = NodeVault.client & { pathPrefix: string; namespace: string };

export class VaultSecretSource {
  private readonly client: Client;
  private readonly transport: VaultTransport;
  private readonly timers: Timers;
  private readonly now: () => number;
  private readonly log: Logger;
  private readonly secrets: string[] = [];
  private token: string | undefined;
  /** The lease a fresh token gets; a renewal answering less has hit the token's max TTL. */
  private baseLeaseSeconds = 0;
  private expiresAt = Number.POSITIVE_INFINITY;
  private timer: unknown;
  private loginFailures = 0;
  private closed = false;

  private constructor(private readonly o: VaultSecretSourceOptions) {
    const problem = vaultAddressProblemText(o.address);
    if (problem) throw new VaultCallError(`secrets.vault: address ${problem}`);
    if (!o.kvMount.split('/').every((s) => SEGMENT.test(s))) throw new VaultCallError(`secrets.vault: kvMount "${o.kvMount}" is not a mount path`);
    if ('appRole' in o.auth && o.auth.appRole.mount !== undefined && !o.auth.appRole.mount.split('/').every((s) => SEGMENT.test(s))) {
      throw new VaultCallError(`secrets.vault: appRole mount "${o.auth.appRole.mount}" is not a mount path`);
    }
    this.timers = o.timers ?? realTimers;
    this.now = o.now ?? Date.now;
    this.log = o.log;
    this.transport = vaultTransport({ timeoutMs: o.timeoutMs, ...(o.caPem ? { caPem: o.caPem } : {}) });
    if ('token' in o.auth) this.remember(o.auth.token);
    else {
      this.remember(o.auth.appRole.roleId);
      this.remember(o.auth.appRole.secretId);
    }
    const options: NodeVault.VaultOptions & { rpDefaults: Record<string, unknown> } = {
      apiVersion: 'v1',
      endpoint: o.address,
      pathPrefix: '',
      ...(o.namespace ? { namespace: o.namespace } : {}),
      ...('token' in o.auth ? { token: o.auth.token } : {}),
      'request-promise': this.transport,
      // Both are ignored by the transport above, which verifies always; set anyway so no code path
      // inside node-vault sees TLS verification as off.
      rpDefaults: { strictSSL: true },
      requestOptions: { strictSSL: true, timeout: o.timeoutMs },
      // node-vault's debug output (DEBUG=node-vault) prints request bodies: the AppRole secret_id.
      debug: () => undefined,
      noCustomHTTPVerbs: true,
    };
    this.client = NodeVault(options) as Client;
    // node-vault reads VAULT_ADDR, VAULT_TOKEN, VAULT_NAMESPACE and VAULT_PREFIX for any option that
    // is empty; each is set again here from the config alone.
    this.client.endpoint = o.address.replace(/\/+$/, '');
    this.client.apiVersion = 'v1';
    this.client.pathPrefix = '';
    this.client.namespace = o.namespace ?? '';
    this.client.token = 'token' in o.auth ? o.auth.token : '';
    this.token = 'token' in o.auth ? o.auth.token : undefined;
  }

  /** Logs in (AppRole) or checks the token (token auth), and schedules the renewal. */
  static async connect(o: VaultSecretSourceOptions): Promise<VaultSecretSource> {
    const v = new VaultSecretSource(o);
    try {
      if ('appRole' in o.auth) await v.login();
      else await v.lookupSelf();
    } catch (e) {
      await v.close();
      throw e;
    }
    return v;
  }

  /** The `data.data` object of a KV version 2 secret. */
  async readKv(path: string): Promise<Readonly<Record<string, unknown>>> {
    if (!isKvPath(path)) throw new VaultCallError(`"${path}" is not a KV path (segments of letters, digits, _ . -)`);
    const where = `${this.o.kvMount}/data/${path}`;
    const body = await this.withToken(`read ${where}`, () => this.client.read(where) as Promise<unknown>);
    const data = (body as { data?: { data?: unknown } } | undefined)?.data?.data;
    if (!data || typeof data !== 'object' || Array.isArray(data)) {
      throw new VaultCallError(`read ${where}: the answer has no data.data object (is ${this.o.kvMount} a KV version 2 mount?)`);
    }
    for (const v of Object.values(data)) if (typeof v === 'string') this.remember(v);
    return data as Record<string, unknown>;
  }

  /** Stops renewal and revokes a token this source logged in for; a token it was given is left alone. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.cancelTimer();
    if ('appRole' in this.o.auth && this.token !== undefined) {
      try {
        await this.client.tokenRevokeSelf();
      } catch (e) {
        this.log.warn('vault: revoking the AppRole token at stop failed; it ends with its TTL', { error: this.safeError('revoke the token (auth/token/revoke-self)', e).message });
      }
    }
    this.token = undefined;
    this.client.token = '';
    this.transport.destroy();
  }

  private async login(): Promise<void> {
    const a = (this.o.auth as Extract<VaultAuth, { appRole: unknown }>).appRole;
    const mount = a.mount ?? 'approle';
    // A login carries no token: not the one being replaced, and never one from the environment.
    this.client.token = '';
    const body = await this.call(`AppRole login at auth/${mount}`, () =>
      this.client.approleLogin({ role_id: a.roleId, secret_id: a.secretId, ...(mount !== 'approle' ? { mount_point: mount } : {}) }) as Promise<unknown>,
    );
    const auth = (body as { auth?: { client_token?: unknown; lease_duration?: unknown; renewable?: unknown } } | undefined)?.auth;
    if (typeof auth?.client_token !== 'string' || auth.client_token === '') throw new VaultCallError(`AppRole login at auth/${mount}: the answer has no auth.client_token`);
    this.remember(auth.client_token);
    this.token = auth.client_token;
    this.client.token = auth.client_token;
    const lease = seconds(auth.lease_duration);
    this.baseLeaseSeconds = lease;
    this.loginFailures = 0;
    this.log.info('vault: logged in with AppRole', { leaseSeconds: lease, renewable: auth.renewable === true });
    this.schedule(lease, auth.renewable === true);
  }

  private async lookupSelf(): Promise<void> {
    const body = await this.call('look up the token (auth/token/lookup-self)', () => this.client.tokenLookupSelf() as Promise<unknown>);
    const data = (body as { data?: { ttl?: unknown; creation_ttl?: unknown; renewable?: unknown } } | undefined)?.data;
    const ttl = seconds(data?.ttl);
    this.baseLeaseSeconds = seconds(data?.creation_ttl) || ttl;
    this.log.info('vault: token accepted', { ttlSeconds: ttl, renewable: data?.renewable === true });
    this.schedule(ttl, data?.renewable === true);
  }

  /**
   * The next step for a token with `lease` seconds left: renew at two thirds if it can be renewed
   * and has not reached its max TTL; otherwise log in again at two thirds (AppRole), or say when it ends.
   */
  private schedule(lease: number, renewable: boolean, atMax = false): void {
    this.cancelTimer();
    if (this.closed) return;
    if (lease <= 0) {
      this.expiresAt = Number.POSITIVE_INFINITY;
      return;
    }
    this.expiresAt = this.now() + lease * 1000;
    const at = Math.floor((lease * 1000 * 2) / 3);
    if (renewable && !atMax) this.timer = this.timers.set(() => this.renew(), at);
    else if ('appRole' in this.o.auth) this.timer = this.timers.set(() => this.relogin(), at);
    else {
      this.log.warn(`vault: the token can't be renewed any further and ends at ${new Date(this.expiresAt).toISOString()}; secrets already read stay in use, but give wogate a new token before then to read Vault again`);
    }
  }

  private async renew(): Promise<void> {
    this.timer = undefined;
    if (this.closed) return;
    try {
      const body = await this.call('renew the token (auth/token/renew-self)', () => this.client.tokenRenewSelf() as Promise<unknown>);
      const auth = (body as { auth?: { lease_duration?: unknown; renewable?: unknown } } | undefined)?.auth;
      const lease = seconds(auth?.lease_duration);
      // Vault caps a renewal at the token's max TTL: a lease shorter than a fresh token's can't grow again.
      const atMax = this.baseLeaseSeconds > 0 && lease < this.baseLeaseSeconds;
      this.log.info('vault: token renewed', { leaseSeconds: lease, ...(atMax ? { atMaxTtl: true } : {}) });
      this.schedule(lease, auth?.renewable === true, atMax);
    } catch (e) {
      if ('appRole' in this.o.auth) {
        this.log.warn('vault: token renewal failed; logging in again with AppRole', { error: messageOf(e) });
        await this.relogin();
        return;
      }
      const left = this.expiresAt - this.now();
      if (e instanceof VaultCallError && e.status === 403) {
        this.log.error('vault: the token was refused on renewal (revoked or expired); secrets already read stay in use, but Vault can\'t be read again until wogate has a valid token', { error: messageOf(e) });
      } else if (left > 2000) {
        const retry = Math.min(60_000, Math.floor(left / 2));
        this.log.warn('vault: token renewal failed; retrying', { error: messageOf(e), retryInMs: retry });
        this.timer = this.timers.set(() => this.renew(), retry);
      } else {
        this.log.error('vault: token renewal failed and the token has expired', { error: messageOf(e) });
      }
    }
  }

  private async relogin(): Promise<void> {
    this.timer = undefined;
    if (this.closed) return;
    try {
      await this.login();
    } catch (e) {
      this.loginFailures++;
      const retry = Math.min(300_000, 5000 * 2 ** Math.min(this.loginFailures - 1, 10));
      this.log.error('vault: AppRole login failed; retrying', { error: messageOf(e), retryInMs: retry });
      if (!this.closed) this.timer = this.timers.set(() => this.relogin(), retry);
    }
  }

  /** A read with the current token; an AppRole token Vault no longer accepts is replaced once. */
  private async withToken<T>(op: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await this.call(op, fn);
    } catch (e) {
      if (!(e instanceof VaultCallError && e.status === 403 && 'appRole' in this.o.auth)) throw e;
      this.log.info('vault: the token was refused; logging in again with AppRole', { op });
      await this.login();
      return this.call(op, fn);
    }
  }

  /** Runs one node-vault call; whatever fails becomes a VaultCallError with a message safe to log. */
  private async call<T>(op: string, fn: () => Promise<T>): Promise<T> {
    if (this.closed) throw new VaultCallError(`${op}: the Vault client is closed`);
    try {
      return await fn();
    } catch (e) {
      throw this.safeError(op, e);
    }
  }

  private safeError(op: string, e: unknown): VaultCallError {
    if (e instanceof VaultTransportError) return new VaultCallError(`${op}: ${e.message}`);
    const response = (e as { response?: { statusCode?: unknown; body?: unknown } } | null)?.response;
    if (response && typeof response.statusCode === 'number') {
      const errors = (response.body as { errors?: unknown } | undefined)?.errors;
      const said = Array.isArray(errors) ? errors.filter((x): x is string => typeof x === 'string').join('; ') : '';
      const text = said.trim() === '' ? '' : `: ${excerpt(said.replace(/\s+/g, ' ').trim(), this.secrets)}`;
      return new VaultCallError(`${op}: Vault answered ${response.statusCode}${text}`, response.statusCode);
    }
    // node-vault's own argument check (tv4) or anything unforeseen: its message, with any secret cut out.
    return new VaultCallError(`${op}: ${excerpt(e instanceof Error ? e.message : String(e), this.secrets)}`);
  }

  private remember(value: string): void {
    if (value.trim() !== '' && !this.secrets.includes(value)) this.secrets.push(value);
  }

  private cancelTimer(): void {
    if (this.timer !== undefined) this.timers.clear(this.timer);
    this.timer = undefined;
  }
}

function seconds(v: unknown): number {
  const n = typeof v === 'number' ? v : typeof v === 'string' ? Number(v) : NaN;
  return Number.isFinite(n) && n > 0 ? Math.floor(n) : 0;
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
