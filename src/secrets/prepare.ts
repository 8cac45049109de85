// `vault:` references are read once, when the daemon starts: every distinct KV path fetched once,
// each value kept in memory, and the synchronous resolvers (resolveSecret/resolveSecrets) read from
// that map. A reference that can't be read stops the start with an error naming where it is used
// and the Vault path, never a value.
import { resolveSecret, type Config, type VaultConfig, type VaultValues } from '../config/config.js';
import { WogateError } from '../domain/index.js';
import type { Logger } from '../log.js';
import { parseVaultRef, SECRET_REF } from './reference.js';
import type { VaultAuth, VaultSecretSourceOptions } from './vault.js';

/** What prepareSecrets needs of a Vault client. */
export interface KvReader {
  readKv(path: string): Promise<Readonly<Record<string, unknown>>>;
  close(): Promise<void>;
}

export interface PreparedSecrets {
  /** `vault:` reference → value. */
  readonly vault: VaultValues;
  /** Stops token renewal and lets go of the Vault token. */
  close(): Promise<void>;
}

export interface PrepareOptions {
  readonly env: NodeJS.ProcessEnv;
  readonly log: Logger;
  /** Opens the Vault client (VaultSecretSource.connect in the daemon). */
  readonly connect: (o: VaultSecretSourceOptions) => Promise<KvReader>;
}

export interface SecretUse {
  readonly ref: string;
  /** `<config file>: <JSON pointer>`, the same words resolveSecret uses. */
  readonly where: string;
}

/**
 * Every secret reference the daemon will resolve, with where it is: webhook secrets, API source
 * blocks, and the secretHeaders and blocks of enabled targets (a disabled target is never built).
 */
export function secretUses(config: Config): SecretUse[] {
  const out: SecretUse[] = [];
  const walk = (v: unknown, where: string): void => {
    if (typeof v === 'string') {
      if (SECRET_REF.test(v)) out.push({ ref: v, where });
    } else if (Array.isArray(v)) v.forEach((x, i) => walk(x, `${where}/${i}`));
    else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, `${where}/${k}`);
  };
  config.sources.forEach((s, i) => {
    if (s.kind === 'generic') walk(s.webhook.secrets, `${config.file}: /sources/${i}/webhook/secrets`);
    else walk(s.options, `${config.file}: /sources/${i}/${s.kind}`);
  });
  config.targets.forEach((t, i) => {
    if (!t.enabled) return;
    if (t.kind === 'http') walk(t.http.secretHeaders, `${config.file}: /targets/${i}/http/secretHeaders`);
    else if (t.kind !== 'nftables') walk(t.options, `${config.file}: /targets/${i}/${t.kind}`);
  });
  if (config.portal) {
    walk(config.portal.oidc.clientSecret, `${config.file}: /portal/oidc/clientSecret`);
    walk(config.portal.credentialKey, `${config.file}: /portal/credentialKey`);
  }
  if (config.staff) walk(config.staff.oidc.clientSecret, `${config.file}: /staff/oidc/clientSecret`);
  return out;
}

const NONE: PreparedSecrets = { vault: new Map(), close: async () => undefined };

/**
 * Reads every `vault:` reference in the config (or in `only`, e.g. the audit keys read before the
 * rest); without one, Vault is not contacted at all.
 */
export async function prepareSecrets(config: Config, o: PrepareOptions, only?: readonly SecretUse[]): Promise<PreparedSecrets> {
  const uses = (only ?? secretUses(config)).filter((u) => u.ref.startsWith('vault:'));
  if (uses.length === 0) return NONE;
  for (const u of uses) {
    if (!parseVaultRef(u.ref)) resolveSecret(u.ref, u.where, o.env); // throws the malformed-reference error
  }
  const vc = config.secrets.vault;
  if (!vc) {
    const u = uses[0] as SecretUse;
    throw new WogateError('CONFIG_SECRET_UNRESOLVED', `${u.where}: ${u.ref} reads from Vault, but the config has no secrets.vault block`);
  }
  const where = `${config.file}: /secrets/vault`;
  let client: KvReader;
  try {
    client = await o.connect(clientOptions(vc, where, o));
  } catch (e) {
    if (e instanceof WogateError) throw e;
    throw new WogateError('CONFIG_SECRET_UNRESOLVED', `${where}: ${e instanceof Error ? e.message : String(e)}`);
  }
  const values = new Map<string, string>();
  try {
    const byPath = new Map<string, SecretUse[]>();
    for (const u of uses) {
      const { path } = parseVaultRef(u.ref) as NonNullable<ReturnType<typeof parseVaultRef>>;
      byPath.set(path, [...(byPath.get(path) ?? []), u]);
    }
    for (const [path, list] of byPath) {
      const first = list[0] as SecretUse;
      let data: Readonly<Record<string, unknown>>;
      try {
        data = await client.readKv(path);
      } catch (e) {
        const status = (e as { status?: unknown }).status;
        const why = status === 404 ? `no secret at ${vc.kvMount}/data/${path} (404)` : e instanceof Error ? e.message : String(e);
        throw new WogateError('CONFIG_SECRET_UNRESOLVED', `${first.where}: ${first.ref}: ${why}`);
      }
      for (const u of list) {
        const { key } = parseVaultRef(u.ref) as NonNullable<ReturnType<typeof parseVaultRef>>;
        const v = Object.hasOwn(data, key) ? data[key] : undefined;
        if (v === undefined) throw new WogateError('CONFIG_SECRET_UNRESOLVED', `${u.where}: ${u.ref}: the secret at ${vc.kvMount}/data/${path} has no key "${key}"`);
        if (typeof v !== 'string' || v === '') throw new WogateError('CONFIG_SECRET_UNRESOLVED', `${u.where}: ${u.ref}: key "${key}" of ${vc.kvMount}/data/${path} is not a non-empty string`);
        values.set(u.ref, v);
      }
    }
  } catch (e) {
    await client.close().catch(() => undefined);
    throw e;
  }
  o.log.info('secrets read from Vault', { references: values.size, paths: new Set(uses.map((u) => parseVaultRef(u.ref)?.path)).size });
  return { vault: values, close: () => client.close() };
}

/** The config block with its own credentials resolved (env: or file: only: they are what opens Vault). */
function clientOptions(vc: VaultConfig, where: string, o: PrepareOptions): VaultSecretSourceOptions {
  const auth: VaultAuth = 'token' in vc.auth
    ? { token: resolveSecret(vc.auth.token, `${where}/auth/token`, o.env) }
    : {
        appRole: {
          roleId: resolveSecret(vc.auth.appRole.roleId, `${where}/auth/appRole/roleId`, o.env),
          secretId: resolveSecret(vc.auth.appRole.secretId, `${where}/auth/appRole/secretId`, o.env),
          mount: vc.auth.appRole.mount,
        },
      };
  return {
    address: vc.address,
    ...(vc.namespace ? { namespace: vc.namespace } : {}),
    ...(vc.caPem ? { caPem: resolveSecret(vc.caPem, `${where}/caPem`, o.env) } : {}),
    auth,
    kvMount: vc.kvMount,
    timeoutMs: vc.timeoutMs,
    log: o.log,
  };
}
