import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import cron from 'node-cron';
import { parseDuration, WogateError, type CanonicalStatus, type OrderType, type ResourceKind } from '../domain/index.js';
import type { Role } from '../api/roles.js';
import type { FieldMapping } from '../sources/mapping.js';
import { maintainxReviewProblem } from '../sources/maintainx.js';
import { sapReviewProblem } from '../sources/sap-schema.js';
import { parseYaml, parseYamlText, validateWith } from './schema.js';
import { BREAK_GLASS_LIMITS, BREAK_GLASS_SOURCE } from '../domain/breakglass.js';
import { parseVaultRef, SECRET_REF } from '../secrets/reference.js';
import { tryCanonicalId } from '../domain/ids.js';
import { vaultAddressProblemText } from '../secrets/address.js';

/** What a source may authorise (domain SourceAuthority), from `sources[].authorises` and `trustAssets`. */
export interface SourceReach {
  /** Absent = any site and vendor (allowed for API sources only, and warned about). */
  readonly authorises?: { readonly sites?: readonly string[]; readonly vendors?: readonly string[] };
  readonly trustAssets: boolean;
}

export interface GenericSourceConfig extends SourceReach {
  readonly id: string;
  readonly kind: 'generic';
  readonly webhook: { readonly secrets: readonly string[]; readonly toleranceSeconds: number; readonly maxBodyBytes: number };
  readonly mapping: { readonly fields: FieldMapping; readonly statusMap: Record<string, CanonicalStatus>; readonly typeMap?: Record<string, OrderType> };
}

export interface PollConfig {
  readonly incremental: string;
  readonly fullResync: string;
  readonly initialLookbackMs: number;
  readonly staleAfterMs: number;
  readonly failClosed: boolean;
  readonly assets: boolean;
}

/** A CMMS with its own adapter and API. `options` is the adapter's block, secrets still as references. */
export interface ApiSourceConfig extends SourceReach {
  readonly id: string;
  readonly kind: ApiSourceKind;
  readonly options: Readonly<Record<string, unknown>>;
  readonly poll: PollConfig;
}

export const API_SOURCE_KINDS = ['maximo', 'sap', 'maintainx'] as const;
export type ApiSourceKind = (typeof API_SOURCE_KINDS)[number];

export type SourceConfig = GenericSourceConfig | ApiSourceConfig;

export interface HttpRequestConfig {
  readonly method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  readonly url: string;
  readonly headers?: Record<string, string>;
  readonly body?: unknown;
  readonly okStatus?: number[];
  readonly goneStatus?: number[];
  readonly refFrom?: string;
  readonly itemsFrom?: string;
  readonly keyFrom?: string;
  readonly expiresFrom?: string;
}

export interface HttpTargetConfig {
  readonly id: string;
  readonly kind: 'http';
  readonly enabled: boolean;
  readonly http: {
    readonly baseUrl: string;
    readonly timeoutMs: number;
    readonly headers: Record<string, string>;
    /** Header name → secret reference, resolved at start. */
    readonly secretHeaders: Record<string, string>;
    readonly nativeExpiry: boolean;
    readonly resourceKinds?: readonly ResourceKind[];
    readonly maxResponseBytes?: number;
    readonly provision: HttpRequestConfig;
    readonly update?: HttpRequestConfig;
    readonly revoke: HttpRequestConfig;
    readonly list?: HttpRequestConfig;
  };
}

export interface NftablesTargetConfig {
  readonly id: string;
  readonly kind: 'nftables';
  readonly enabled: boolean;
  readonly nftables: {
    readonly table: string;
    readonly set?: string;
    readonly chain?: string;
    readonly hook?: 'forward' | 'input';
    readonly vendorSources: readonly string[];
    readonly managedPorts?: readonly { readonly protocol: 'tcp' | 'udp'; readonly port: number }[];
    readonly policy?: 'accept' | 'drop';
    readonly netns?: string;
    readonly nft?: string;
    readonly timeoutMs?: number;
  };
}

/** Targets with their own adapter; each reads its `<kind>:` block through its options builder. */
export const ADAPTER_TARGET_KINDS = ['ldap', 'fortigate', 'panos', 'cyberark', 'beyondtrust', 'lenel', 'certificate'] as const;
export type AdapterTargetKind = (typeof ADAPTER_TARGET_KINDS)[number];

/** A target with its own adapter. `options` is its block, secrets still as references, relative file paths made absolute. */
export interface AdapterTargetConfig {
  readonly id: string;
  readonly kind: AdapterTargetKind;
  readonly enabled: boolean;
  readonly authoritative: boolean;
  readonly options: Readonly<Record<string, unknown>>;
}

export type TargetConfig = (HttpTargetConfig | NftablesTargetConfig | AdapterTargetConfig) & {
  /** Drift removal: what the target holds that wogate did not grant is taken away, not only reported. */
  readonly authoritative: boolean;
};

/** The kinds of resource each kind of target holds: a policy granting another kind on it is refused at load. */
const TARGET_RESOURCE_KINDS: Readonly<Record<Exclude<TargetConfig['kind'], 'http'>, readonly ResourceKind[]>> = {
  nftables: ['network'],
  fortigate: ['network'],
  panos: ['network'],
  ldap: ['group'],
  beyondtrust: ['group'],
  cyberark: ['pam'],
  lenel: ['badge'],
  certificate: ['certificate'],
};

export function resourceKindsOf(t: TargetConfig): readonly ResourceKind[] {
  return t.kind === 'http' ? (t.http.resourceKinds ?? ['network']) : TARGET_RESOURCE_KINDS[t.kind];
}

/** Every configured target with the resource kinds it holds, for checking policies against. */
export function targetHolds(config: Config): Map<string, readonly ResourceKind[]> {
  return new Map(config.targets.map((t) => [t.id, resourceKindsOf(t)]));
}

export interface ServerTlsConfig {
  /** file:PATH (absolute) of the PEM certificate, leaf first. */
  readonly cert: string;
  /** Secret reference (env:NAME or absolute file:PATH) of the PEM private key. */
  readonly key: string;
  /** file:PATH (absolute) of intermediate CA certificates sent with the certificate. */
  readonly ca?: string;
  readonly minVersion: 'TLSv1.2' | 'TLSv1.3';
}

export interface RateLimitsConfig {
  readonly hooks: { readonly perMinute: number };
  readonly admin: { readonly perMinute: number };
  readonly login: { readonly perMinute: number };
}

export interface ServerConfig {
  readonly host: string;
  readonly port: number;
  /** HTTPS when set; plain HTTP otherwise (loopback only, unless allowPlaintext). */
  readonly tls?: ServerTlsConfig;
  readonly allowPlaintext: boolean;
  /** Reverse proxies whose X-Forwarded-For is believed (addresses, CIDRs, express presets), or false. */
  readonly trustProxy: false | readonly string[];
  readonly rateLimits: RateLimitsConfig;
  /** /metrics on a listener of its own (and not on the main one); absent = on the main listener. */
  readonly metrics?: { readonly host: string; readonly port: number };
}

/** Admin API sign-in with access tokens from the organisation's OpenID provider. */
export interface OidcConfig {
  readonly issuer: string;
  readonly audience: string;
  /** Claim name or dotted path holding role/group values. */
  readonly roleClaim: string;
  /** Claim value → wogate role. */
  readonly roles: Readonly<Record<string, Role>>;
  /** Claim naming the person (src/api/person.ts), compared with token owners by the two-person rules. */
  readonly personClaim: string;
  readonly clockToleranceSec: number;
  /** The JWT typ header every token must carry (at+jwt); absent = not checked. */
  readonly requireTyp?: string;
  /** Clients (azp, else client_id) whose tokens are accepted; absent = any client of the issuer. */
  readonly allowedClients?: readonly string[];
}

/** The client a set of pages (the vendor portal, the staff pages) signs people in with: authorization code flow with PKCE. */
export interface SignInClientConfig {
  readonly issuer: string;
  readonly clientId: string;
  /** Secret reference. */
  readonly clientSecret: string;
  readonly redirectUri: string;
  /** One of these in the ID token's amr proves MFA. */
  readonly requiredAmr: readonly string[];
  /** One of these as the ID token's acr also proves MFA; requested as acr_values. */
  readonly requiredAcr?: readonly string[];
}

/** The vendor portal (docs/portal.md). Secrets stay references here; the daemon resolves them at start. */
export interface PortalConfig {
  readonly oidc: SignInClientConfig & {
    readonly technicianClaim: string;
    readonly vendorClaim?: string;
  };
  /** Secret reference to the AES-256-GCM key for credentials waiting to be collected. */
  readonly credentialKey: string;
  readonly sessionLifetimeMs: number;
  readonly idleTimeoutMs: number;
}

/**
 * The security staff's pages (docs/staff.md). They sign in at the provider of `auth.oidc` with
 * their own client (`oidc.issuer` is auth.oidc's); their role comes from auth.oidc's role claim
 * and mapping, read from the ID token.
 */
export interface StaffConfig {
  readonly oidc: SignInClientConfig & {
    /** Scopes requested beyond openid (e.g. the one that puts group claims in the ID token). */
    readonly scopes: readonly string[];
  };
  readonly roleClaim: string;
  readonly roles: Readonly<Record<string, Role>>;
  /** auth.oidc.personClaim, read from the ID token. */
  readonly personClaim: string;
  readonly sessionLifetimeMs: number;
  readonly idleTimeoutMs: number;
}

export interface Config {
  /** The file it came from; relative paths inside it are resolved against its directory. */
  readonly file: string;
  /** Without `oidc`, only scoped wgt_ API tokens open the admin API. */
  readonly auth: { readonly oidc?: OidcConfig };
  /** The vendor portal; absent = no /portal routes. */
  readonly portal?: PortalConfig;
  /** The security staff's pages; absent = no /staff routes. */
  readonly staff?: StaffConfig;
  readonly server: ServerConfig;
  readonly store: { readonly kind: 'sqlite'; readonly path: string };
  readonly audit: AuditConfig;
  readonly log: { readonly level: 'error' | 'warn' | 'info' | 'debug'; readonly format: 'text' | 'json' };
  readonly policies: { readonly dir: string };
  readonly register: { readonly assets: string; readonly vendors: string; readonly approvers?: string };
  readonly engine: {
    readonly fullReconcileMs: number;
    readonly lookbackMs: number;
    readonly retry: { readonly baseMs: number; readonly maxMs: number; readonly alertAfter: number };
    /** node-cron expression for drift checks; undefined = off. */
    readonly drift?: string;
    /** What the access trail written back to the work order shows (src/engine/writeback.ts). */
    readonly writeBack: { readonly detail: 'summary' | 'full' };
  };
  readonly sources: readonly SourceConfig[];
  readonly targets: readonly TargetConfig[];
  readonly demo: { readonly enabled: boolean; readonly source?: string; readonly target?: string; readonly cmms: 'generic' | 'maximo'; readonly closeAfterMs: number };
  /** Where `vault:` references are read from; absent when the config has no secrets.vault block. */
  readonly secrets: { readonly vault?: VaultConfig };
  /** Emergency access with the two-person rule; absent = break-glass is refused. */
  readonly breakGlass?: BreakGlassConfig;
}

/** The audit chain's key and its signed checkpoints; both keys live outside the store file (docs/audit.md). */
export interface AuditConfig {
  /** Secret reference to the HMAC key; absent = `keyFile`, generated on first run. */
  readonly key?: string;
  /** Where the key is kept when `key` is absent: next to the store file. */
  readonly keyFile: string;
  readonly checkpoints: {
    readonly file: string;
    /** Secret reference to the Ed25519 private key (PKCS#8 PEM); absent = `signingKeyFile`, generated on first run. */
    readonly signingKey?: string;
    readonly signingKeyFile: string;
    readonly everyMs: number;
    readonly everyRecords: number;
  };
}

const SCHEMA = 'config.schema.json';

function isAdapterTargetKind(kind: string): kind is AdapterTargetKind {
  return (ADAPTER_TARGET_KINDS as readonly string[]).includes(kind);
}

/**
 * Reads, overrides from the environment, validates and normalises the config file. Any problem
 * throws CONFIG_INVALID naming the file, the JSON path and what was expected.
 */
export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): Config {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new WogateError('CONFIG_INVALID', `${file}: cannot read config file: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, { file });
  }
  const { data, locate } = parseYaml(text, file, 'CONFIG_INVALID');
  const raw = (data ?? {}) as Record<string, unknown>;
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new WogateError('CONFIG_INVALID', `${file}: the top level must be a mapping`, { file });
  applyEnvOverrides(raw, env, file);
  validateWith(SCHEMA, raw, file, 'CONFIG_INVALID', locate);
  return normalise(raw as unknown as RawConfig, path.resolve(file));
}

/**
 * WOGATE_<PATH> overrides one key: path segments joined by "__", matched case-insensitively
 * against the keys the file uses (WOGATE_SERVER__PORT=9090, WOGATE_STORE__PATH=/var/lib/wogate/wogate.db).
 * Values are read as YAML scalars, so numbers and booleans keep their type.
 */
export function applyEnvOverrides(raw: Record<string, unknown>, env: NodeJS.ProcessEnv, file: string): void {
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith('WOGATE_') || value === undefined || name === 'WOGATE_CONFIG') continue;
    const segments = name.slice('WOGATE_'.length).split('__').map((s) => s.toLowerCase());
    let node: Record<string, unknown> = raw;
    for (let i = 0; i < segments.length; i++) {
      const seg = segments[i] as string;
      const key = Object.keys(node).find((k) => k.toLowerCase() === seg.replace(/_/g, '')) ?? camel(seg);
      if (key === '__proto__' || key === 'constructor' || key === 'prototype' || key === '') {
        throw new WogateError('CONFIG_INVALID', `${name}: "${seg}" is not a config key`, { file });
      }
      if (i === segments.length - 1) {
        node[key] = parseYamlText(value, `${name} (environment)`, 'CONFIG_INVALID');
        break;
      }
      const next = node[key];
      if (next === undefined) node[key] = {};
      else if (typeof next !== 'object' || next === null || Array.isArray(next)) {
        throw new WogateError('CONFIG_INVALID', `${name}: "${key}" in ${file} is not a section that can be overridden`, { file });
      }
      node = node[key] as Record<string, unknown>;
    }
  }
}

function camel(s: string): string {
  return s.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase());
}

type RawConfig = {
  server?: {
    host?: string;
    port?: number;
    tls?: { cert: string; key: string; ca?: string; minVersion?: ServerTlsConfig['minVersion'] };
    allowPlaintext?: boolean;
    trustProxy?: false | string[];
    rateLimits?: { [K in keyof RateLimitsConfig]?: { perMinute: number } };
    metrics?: { listen: string; allowNonLoopback?: boolean };
  };
  store: { kind: 'sqlite'; path?: string };
  audit?: { key?: string; checkpoints?: { file?: string; signingKey?: string; every?: string; everyRecords?: number } };
  log?: { level?: Config['log']['level']; format?: Config['log']['format'] };
  policies: { dir: string };
  register: { assets: string; vendors: string; approvers?: string };
  engine?: { fullReconcile?: string; lookback?: string; retry?: { base?: string; max?: string; alertAfter?: number }; drift?: string | false; writeBack?: { detail?: 'summary' | 'full' } };
  sources?: (Record<string, unknown> & { id: string; kind: 'generic' | ApiSourceKind; authorises?: { sites?: string[]; vendors?: string[] }; trustAssets?: boolean; webhook?: { secrets: string[]; tolerance?: string; maxBodyBytes?: number }; mapping?: GenericSourceConfig['mapping']; poll?: RawPoll })[];
  targets?: (Record<string, unknown> & { id: string; kind: TargetConfig['kind']; enabled?: boolean; authoritative?: boolean })[];
  secrets?: { vault?: RawVault };
  demo?: { enabled?: boolean; source?: string; target?: string; cmms?: 'generic' | 'maximo'; closeAfter?: string };
  auth?: { oidc?: { issuer: string; audience: string; roleClaim?: string; personClaim?: string; roles: Record<string, Role>; clockTolerance?: string; requireTyp?: string; allowedClients?: string[] } };
  breakGlass?: { maxDuration: string; reviewDue: string; reviewSource?: string; reviewSite?: string };
  portal?: RawPortal;
  staff?: RawStaff;
};

type RawStaff = {
  oidc: { clientId: string; clientSecret: string; redirectUri: string; requiredAmr?: string[]; requiredAcr?: string[]; scopes?: string[] };
  sessionLifetime?: string;
  idleTimeout?: string;
};

type RawPortal = {
  oidc: { issuer: string; clientId: string; clientSecret: string; redirectUri: string; requiredAmr?: string[]; requiredAcr?: string[]; technicianClaim?: string; vendorClaim?: string };
  credentialKey: string;
  sessionLifetime?: string;
  idleTimeout?: string;
};

type RawPoll = { incremental?: string; fullResync?: string; initialLookback?: string; staleAfter?: string; failClosed?: boolean; assets?: boolean };

type RawHttp = Omit<HttpTargetConfig['http'], 'timeoutMs' | 'headers' | 'secretHeaders' | 'nativeExpiry'> & {
  timeout?: string;
  headers?: Record<string, string>;
  secretHeaders?: Record<string, string>;
  nativeExpiry?: boolean;
};

function normalise(raw: RawConfig, file: string): Config {
  const dir = path.dirname(file);
  const at = (p: string) => path.resolve(dir, p);
  const ref = (r: string) => (r.startsWith('file:') ? `file:${at(r.slice(5))}` : r);
  const dur = (v: string | undefined, dflt: string, where: string) => parseDuration(v ?? dflt, `${file}: ${where}`);

  const seen = new Set<string>();
  const unique = (kind: string, id: string, i: number) => {
    if (seen.has(`${kind}:${id}`)) throw new WogateError('CONFIG_INVALID', `${file}: /${kind}/${i}/id: "${id}" is used twice`, { file });
    seen.add(`${kind}:${id}`);
  };

  const sources: SourceConfig[] = (raw.sources ?? []).map((s, i): SourceConfig => {
    unique('sources', s.id, i);
    const reach = sourceReach(s, `${file}: /sources/${i}`, file);
    if (s.kind !== 'generic') {
      const p = s.poll ?? {};
      for (const [name, expr] of [['incremental', p.incremental], ['fullResync', p.fullResync]] as const) {
        if (expr !== undefined && !cron.validate(expr)) throw new WogateError('CONFIG_INVALID', `${file}: /sources/${i}/poll/${name}: "${expr}" is not a cron expression (e.g. "*/2 * * * *")`, { file });
      }
      return {
        id: s.id,
        kind: s.kind,
        ...reach,
        options: resolvePaths((s[s.kind] ?? {}) as Record<string, unknown>, at),
        poll: {
          incremental: p.incremental ?? '*/2 * * * *',
          fullResync: p.fullResync ?? '0 * * * *',
          initialLookbackMs: dur(p.initialLookback, '1d', `/sources/${i}/poll/initialLookback`),
          staleAfterMs: dur(p.staleAfter, '30m', `/sources/${i}/poll/staleAfter`),
          failClosed: p.failClosed ?? false,
          assets: p.assets ?? false,
        },
      };
    }
    const webhook = s.webhook as NonNullable<typeof s.webhook>;
    const tolerance = dur(webhook.tolerance, '5m', `/sources/${i}/webhook/tolerance`);
    // Replay protection remembers delivery ids for a day; a longer tolerance would outlive that memory.
    if (tolerance < 1000 || tolerance > 3_600_000) {
      throw new WogateError('CONFIG_INVALID', `${file}: /sources/${i}/webhook/tolerance: must be between 1s and 1h (got ${webhook.tolerance})`, { file });
    }
    return {
      id: s.id,
      kind: 'generic',
      ...reach,
      webhook: {
        secrets: webhook.secrets.map(ref),
        toleranceSeconds: tolerance / 1000,
        maxBodyBytes: webhook.maxBodyBytes ?? 64 * 1024,
      },
      mapping: s.mapping as GenericSourceConfig['mapping'],
    };
  });

  const targets: TargetConfig[] = (raw.targets ?? []).map((t, i): TargetConfig => {
    unique('targets', t.id, i);
    const enabled = t.enabled ?? true;
    const authoritative = t.authoritative ?? false;
    if (isAdapterTargetKind(t.kind)) {
      return { id: t.id, kind: t.kind, enabled, authoritative, options: resolvePaths((t[t.kind] ?? {}) as Record<string, unknown>, at) };
    }
    if (t.kind === 'http') {
      const { timeout, headers, secretHeaders, nativeExpiry, ...rest } = t.http as RawHttp;
      return {
        id: t.id,
        kind: 'http',
        enabled,
        authoritative,
        http: {
          ...rest,
          timeoutMs: dur(timeout, '10s', `/targets/${i}/http/timeout`),
          headers: headers ?? {},
          secretHeaders: Object.fromEntries(Object.entries(secretHeaders ?? {}).map(([k, r]) => [k, ref(r)])),
          nativeExpiry: nativeExpiry ?? false,
        },
      };
    }
    const { timeout, ...nft } = t.nftables as NftablesTargetConfig['nftables'] & { timeout?: string };
    return { id: t.id, kind: 'nftables', enabled, authoritative, nftables: { ...nft, ...(timeout ? { timeoutMs: dur(timeout, '10s', `/targets/${i}/nftables/timeout`) } : {}) } };
  });

  // Drift checks are on by default: hand-added access is found even by an operator who never read this far.
  const drift = raw.engine?.drift === false ? undefined : (raw.engine?.drift ?? '*/10 * * * *');
  if (drift !== undefined && !cron.validate(drift)) throw new WogateError('CONFIG_INVALID', `${file}: /engine/drift: "${drift}" is not a cron expression (e.g. "*/10 * * * *"), or false to turn drift checks off`, { file });

  const demoSource = raw.demo?.source;
  if (raw.demo?.enabled && (!demoSource || !sources.some((s) => s.id === demoSource))) {
    throw new WogateError('CONFIG_INVALID', `${file}: /demo/source: must name one of the configured sources (got ${JSON.stringify(demoSource)})`, { file });
  }

  const demoTarget = raw.demo?.target;
  if (raw.demo?.enabled && demoTarget && !targets.some((t) => t.id === demoTarget && t.kind === 'http')) {
    throw new WogateError('CONFIG_INVALID', `${file}: /demo/target: "${demoTarget}" is not a configured http target`, { file });
  }

  const storePath = at(raw.store.path ?? '../var/wogate.db');
  return {
    file,
    server: serverConfig(raw.server ?? {}, file, ref),
    store: { kind: 'sqlite', path: storePath },
    audit: auditConfig(raw.audit ?? {}, path.dirname(storePath), file, at, ref),
    log: { level: raw.log?.level ?? 'info', format: raw.log?.format ?? 'text' },
    policies: { dir: at(raw.policies.dir) },
    register: { assets: at(raw.register.assets), vendors: at(raw.register.vendors), ...(raw.register.approvers !== undefined ? { approvers: at(raw.register.approvers) } : {}) },
    engine: {
      fullReconcileMs: dur(raw.engine?.fullReconcile, '60s', '/engine/fullReconcile'),
      lookbackMs: dur(raw.engine?.lookback, '2d', '/engine/lookback'),
      retry: {
        baseMs: dur(raw.engine?.retry?.base, '1s', '/engine/retry/base'),
        maxMs: dur(raw.engine?.retry?.max, '5m', '/engine/retry/max'),
        alertAfter: raw.engine?.retry?.alertAfter ?? 5,
      },
      ...(drift ? { drift } : {}),
      writeBack: { detail: raw.engine?.writeBack?.detail ?? 'summary' },
    },
    sources,
    targets,
    secrets: raw.secrets?.vault ? { vault: vaultConfig(raw.secrets.vault, file, ref) } : {},
    demo: {
      enabled: raw.demo?.enabled ?? false,
      ...(demoSource ? { source: demoSource } : {}),
      ...(raw.demo?.target ? { target: raw.demo.target } : {}),
      cmms: raw.demo?.cmms ?? 'generic',
      closeAfterMs: dur(raw.demo?.closeAfter, '20s', '/demo/closeAfter'),
    },
    auth: raw.auth?.oidc ? { oidc: oidcConfig(raw.auth.oidc, file) } : {},
    ...(raw.breakGlass ? { breakGlass: breakGlassConfig(raw.breakGlass, sources, file) } : {}),
    ...(raw.portal ? { portal: portalConfig(raw.portal, file) } : {}),
    ...(raw.staff ? { staff: staffConfig(raw.staff, raw.auth?.oidc, file) } : {}),
  };
}

/** Keys and the anchor default to files next to the store file: outside it, so a writer of the database alone can't reach them. */
function auditConfig(raw: NonNullable<RawConfig['audit']>, storeDir: string, file: string, at: (p: string) => string, ref: (r: string) => string): AuditConfig {
  const cp = raw.checkpoints ?? {};
  const every = cp.every ?? '5m';
  const everyMs = parseDuration(every, `${file}: /audit/checkpoints/every`);
  if (everyMs < 1000 || everyMs > 86_400_000) throw new WogateError('CONFIG_INVALID', `${file}: /audit/checkpoints/every: must be between 1s and 1d (got ${every})`, { file });
  return {
    ...(raw.key ? { key: ref(raw.key) } : {}),
    keyFile: path.join(storeDir, 'audit.key'),
    checkpoints: {
      file: cp.file ? at(cp.file) : path.join(storeDir, 'audit-checkpoints.jsonl'),
      ...(cp.signingKey ? { signingKey: ref(cp.signingKey) } : {}),
      signingKeyFile: path.join(storeDir, 'audit-checkpoint.key'),
      everyMs,
      everyRecords: cp.everyRecords ?? 1000,
    },
  };
}

/** Issuers and redirect URIs carry codes and tokens: https, or plain http on loopback only. */
function checkFlowUrl(value: string, pointer: string, file: string): void {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw new WogateError('CONFIG_INVALID', `${file}: ${pointer}: "${value}" is not a URL`, { file });
  }
  if (u.protocol !== 'https:' && !(u.protocol === 'http:' && isLoopbackHost(u.hostname.replace(/^\[|\]$/g, '')))) {
    throw new WogateError('CONFIG_INVALID', `${file}: ${pointer}: must be an https URL (plain http only on loopback), got ${value}`, { file });
  }
}

/** Session lifetime (default 8h, at most 12h) and idle timeout (no longer than the lifetime) of signed-in pages. */
function sessionTimes(raw: { sessionLifetime?: string; idleTimeout?: string }, idleDefault: string, section: string, file: string): { sessionLifetimeMs: number; idleTimeoutMs: number } {
  const lifetime = parseDuration(raw.sessionLifetime ?? '8h', `${file}: /${section}/sessionLifetime`);
  if (lifetime > 12 * 3_600_000) throw new WogateError('CONFIG_INVALID', `${file}: /${section}/sessionLifetime: at most 12h (got ${raw.sessionLifetime})`, { file });
  const idle = parseDuration(raw.idleTimeout ?? idleDefault, `${file}: /${section}/idleTimeout`);
  if (idle > lifetime) throw new WogateError('CONFIG_INVALID', `${file}: /${section}/idleTimeout: longer than the session lifetime (${raw.idleTimeout})`, { file });
  return { sessionLifetimeMs: lifetime, idleTimeoutMs: idle };
}

const DEFAULT_MFA_AMR = ['mfa', 'otp', 'hwk', 'swk'];

function signInClient(issuer: string, o: { clientId: string; clientSecret: string; redirectUri: string; requiredAmr?: string[]; requiredAcr?: string[] }): SignInClientConfig {
  return {
    issuer, clientId: o.clientId, clientSecret: o.clientSecret, redirectUri: o.redirectUri,
    requiredAmr: [...(o.requiredAmr ?? DEFAULT_MFA_AMR)],
    ...(o.requiredAcr ? { requiredAcr: [...o.requiredAcr] } : {}),
  };
}

function portalConfig(raw: RawPortal, file: string): PortalConfig {
  checkFlowUrl(raw.oidc.issuer, '/portal/oidc/issuer', file);
  checkFlowUrl(raw.oidc.redirectUri, '/portal/oidc/redirectUri', file);
  const times = sessionTimes(raw, '30m', 'portal', file);
  const o = raw.oidc;
  return {
    oidc: {
      ...signInClient(o.issuer, o),
      technicianClaim: o.technicianClaim ?? 'sub',
      ...(o.vendorClaim ? { vendorClaim: o.vendorClaim } : {}),
    },
    credentialKey: raw.credentialKey,
    ...times,
  };
}

/** Staff sign in at auth.oidc's provider and get auth.oidc's roles: without it there is nobody to map. */
function staffConfig(raw: RawStaff, auth: NonNullable<RawConfig['auth']>['oidc'], file: string): StaffConfig {
  if (!auth) throw new WogateError('CONFIG_INVALID', `${file}: /staff: needs /auth/oidc, the provider and role mapping staff sign in with`, { file });
  checkFlowUrl(raw.oidc.redirectUri, '/staff/oidc/redirectUri', file);
  const o = raw.oidc;
  return {
    oidc: {
      ...signInClient(auth.issuer, o),
      scopes: [...(o.scopes ?? [])],
    },
    roleClaim: auth.roleClaim ?? 'wogate_roles',
    roles: { ...auth.roles },
    personClaim: auth.personClaim ?? 'sub',
    ...sessionTimes(raw, '15m', 'staff', file),
  };
}

/** `authorises` ids in the one canonical form the domain compares in; an id that can't be one is refused, naming it. */
function sourceReach(s: { authorises?: { sites?: string[]; vendors?: string[] }; trustAssets?: boolean }, where: string, file: string): SourceReach {
  const canonical = (list: string[] | undefined, key: string) =>
    list?.map((v, j) => {
      const c = tryCanonicalId(v, `${where}/authorises/${key}/${j}`);
      if (!c.ok) throw new WogateError('CONFIG_INVALID', c.error.message, { file });
      return c.id;
    });
  const sites = canonical(s.authorises?.sites, 'sites');
  const vendors = canonical(s.authorises?.vendors, 'vendors');
  return {
    trustAssets: s.trustAssets ?? false,
    ...(s.authorises ? { authorises: { ...(sites ? { sites } : {}), ...(vendors ? { vendors } : {}) } } : {}),
  };
}

export interface BreakGlassConfig {
  /** Hard cap on a request's access window (at most 8h). */
  readonly maxDurationMs: number;
  /** The post-event review work order is due this long after approval (24h to 72h). */
  readonly reviewDueMs: number;
  /** The source (with a write API) where review work orders are opened; none = reviews are tracked in wogate only and alerted on. */
  readonly reviewSource?: string;
  /** The CMMS site the review order is created at (Maximo siteid). */
  readonly reviewSite?: string;
}

function breakGlassConfig(raw: NonNullable<RawConfig['breakGlass']>, sources: readonly SourceConfig[], file: string): BreakGlassConfig {
  const maxDurationMs = parseDuration(raw.maxDuration, `${file}: /breakGlass/maxDuration`);
  const reviewDueMs = parseDuration(raw.reviewDue, `${file}: /breakGlass/reviewDue`);
  if (maxDurationMs < 60_000 || maxDurationMs > BREAK_GLASS_LIMITS.maxDurationMs) {
    throw new WogateError('CONFIG_INVALID', `${file}: /breakGlass/maxDuration: must be 1m to 8h (got ${raw.maxDuration}); emergency access is short by design`, { file });
  }
  if (reviewDueMs < BREAK_GLASS_LIMITS.reviewDueMinMs || reviewDueMs > BREAK_GLASS_LIMITS.reviewDueMaxMs) {
    throw new WogateError('CONFIG_INVALID', `${file}: /breakGlass/reviewDue: must be 24h to 72h (got ${raw.reviewDue})`, { file });
  }
  // Synthetic orders are stored under this source name; a real source of that name could forge them.
  if (sources.some((s) => s.id === BREAK_GLASS_SOURCE)) {
    throw new WogateError('CONFIG_INVALID', `${file}: /sources: the id "${BREAK_GLASS_SOURCE}" is reserved for break-glass orders; rename that source`, { file });
  }
  if (raw.reviewSource !== undefined && !sources.some((s) => s.id === raw.reviewSource && s.kind !== 'generic')) {
    throw new WogateError('CONFIG_INVALID', `${file}: /breakGlass/reviewSource: "${raw.reviewSource}" is not a configured source with an API (maximo, sap, maintainx)`, { file });
  }
  // What each CMMS needs to open review orders is checked now, not at the first emergency.
  const at = sources.findIndex((s) => s.id === raw.reviewSource);
  const review = sources[at];
  const problem = review?.kind === 'sap' ? sapReviewProblem(review.options, raw.reviewSite, `/sources/${at}/sap`)
    : review?.kind === 'maintainx' ? maintainxReviewProblem(raw.reviewSite) : undefined;
  if (problem !== undefined) throw new WogateError('CONFIG_INVALID', `${file}: ${problem}`, { file });
  return {
    maxDurationMs, reviewDueMs,
    ...(raw.reviewSource !== undefined ? { reviewSource: raw.reviewSource } : {}),
    ...(raw.reviewSite !== undefined ? { reviewSite: raw.reviewSite } : {}),
  };
}

/** Tokens and keys from the provider travel in clear over plain http: only loopback (a test or a local proxy) may use it. */
function oidcConfig(raw: NonNullable<NonNullable<RawConfig['auth']>['oidc']>, file: string): OidcConfig {
  let issuer: URL;
  try {
    issuer = new URL(raw.issuer);
  } catch {
    throw new WogateError('CONFIG_INVALID', `${file}: /auth/oidc/issuer: "${raw.issuer}" is not a URL`, { file });
  }
  const loopback = issuer.hostname === 'localhost' || issuer.hostname === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(issuer.hostname);
  if (issuer.protocol !== 'https:' && !(issuer.protocol === 'http:' && loopback)) {
    throw new WogateError('CONFIG_INVALID', `${file}: /auth/oidc/issuer: must be an https URL (plain http only on loopback), got ${raw.issuer}`, { file });
  }
  const tolerance = parseDuration(raw.clockTolerance ?? '30s', `${file}: /auth/oidc/clockTolerance`);
  if (tolerance > 300_000) throw new WogateError('CONFIG_INVALID', `${file}: /auth/oidc/clockTolerance: at most 5m (got ${raw.clockTolerance}); a wide tolerance keeps expired tokens alive`, { file });
  return {
    issuer: raw.issuer, audience: raw.audience, roleClaim: raw.roleClaim ?? 'wogate_roles', roles: { ...raw.roles }, personClaim: raw.personClaim ?? 'sub', clockToleranceSec: Math.floor(tolerance / 1000),
    ...(raw.requireTyp !== undefined ? { requireTyp: raw.requireTyp } : {}),
    ...(raw.allowedClients !== undefined ? { allowedClients: [...raw.allowedClients] } : {}),
  };
}

const LOOPBACK_HOSTS = new Set(['localhost', '::1', '0:0:0:0:0:0:0:1']);

/** 127.0.0.0/8, ::1 and localhost: addresses no other machine can reach. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^::ffff:/, '');
  return LOOPBACK_HOSTS.has(h) || (net.isIPv4(h) && h.startsWith('127.'));
}

const TRUST_PROXY_PRESETS = new Set(['loopback', 'linklocal', 'uniquelocal']);

function isProxyAddress(entry: string): boolean {
  if (TRUST_PROXY_PRESETS.has(entry)) return true;
  const [ip = '', prefix, ...more] = entry.split('/');
  const family = net.isIP(ip);
  if (family === 0 || more.length > 0) return false;
  if (prefix === undefined) return true;
  return /^[0-9]{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128);
}

/**
 * Plain HTTP leaves the host only behind a TLS-terminating proxy, and only when the operator says
 * so: webhook secrets, bearer tokens and credentials would otherwise cross the network in clear.
 */
function serverConfig(raw: NonNullable<RawConfig['server']>, file: string, ref: (r: string) => string): ServerConfig {
  const host = raw.host ?? '127.0.0.1';
  const allowPlaintext = raw.allowPlaintext ?? false;
  if (!raw.tls && !allowPlaintext && !isLoopbackHost(host)) {
    throw new WogateError('CONFIG_INVALID', `${file}: /server/host: "${host}" is not a loopback address and server.tls is not set; refusing to serve plain HTTP on the network (set server.tls, or server.allowPlaintext: true behind a TLS-terminating proxy)`, { file });
  }
  const trustProxy = raw.trustProxy ?? false;
  if (trustProxy !== false) {
    trustProxy.forEach((entry, i) => {
      if (!isProxyAddress(entry)) throw new WogateError('CONFIG_INVALID', `${file}: /server/trustProxy/${i}: "${entry}" is not an IP address, a CIDR range, or one of loopback, linklocal, uniquelocal`, { file });
    });
  }
  const rl = raw.rateLimits ?? {};
  return {
    host,
    port: raw.port ?? 8080,
    ...(raw.tls ? { tls: { cert: ref(raw.tls.cert), key: ref(raw.tls.key), ...(raw.tls.ca ? { ca: ref(raw.tls.ca) } : {}), minVersion: raw.tls.minVersion ?? 'TLSv1.2' } } : {}),
    allowPlaintext,
    trustProxy,
    rateLimits: {
      hooks: { perMinute: rl.hooks?.perMinute ?? 600 },
      admin: { perMinute: rl.admin?.perMinute ?? 120 },
      login: { perMinute: rl.login?.perMinute ?? 10 },
    },
    ...(raw.metrics ? { metrics: metricsListener(raw.metrics, file) } : {}),
  };
}

/** `host:port` or `[v6]:port`; metrics tell an attacker a lot about the plant, so loopback unless explicitly allowed. */
function metricsListener(raw: NonNullable<NonNullable<RawConfig['server']>['metrics']>, file: string): { host: string; port: number } {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(raw.listen);
  const port = Number(m?.[3]);
  if (!m || port > 65_535) throw new WogateError('CONFIG_INVALID', `${file}: /server/metrics/listen: "${raw.listen}" is not host:port (an IPv6 address in brackets: [::1]:9464)`, { file });
  const host = (m[1] ?? m[2]) as string;
  if (!isLoopbackHost(host) && raw.allowNonLoopback !== true) {
    throw new WogateError('CONFIG_INVALID', `${file}: /server/metrics/listen: "${host}" is not a loopback address; metrics are served without authentication, so set server.metrics.allowNonLoopback: true to expose them on the network`, { file });
  }
  return { host, port };
}

/** file: references inside an adapter's block become absolute, like every other path. */
function resolvePaths(block: Record<string, unknown>, at: (p: string) => string): Record<string, unknown> {
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return v.startsWith('file:') ? `file:${at(v.slice(5))}` : v;
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
    return v;
  };
  return walk(block) as Record<string, unknown>;
}

/** `vault:` references read once at start (src/secrets/prepare.ts): reference → value. */
export type VaultValues = ReadonlyMap<string, string>;

/** Every secret reference (`env:`, `file:`, `vault:`) in an adapter's block, replaced by the secret it names. */
export function resolveSecrets(block: Readonly<Record<string, unknown>>, where: string, env: NodeJS.ProcessEnv = process.env, vault?: VaultValues): Record<string, unknown> {
  const walk = (v: unknown, p: string): unknown => {
    if (typeof v === 'string') return SECRET_REF.test(v) ? resolveSecret(v, `${where}${p}`, env, vault) : v;
    if (Array.isArray(v)) return v.map((x, i) => walk(x, `${p}/${i}`));
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x, `${p}/${k}`)]));
    return v;
  };
  return walk(block, '') as Record<string, unknown>;
}

/**
 * Secrets live outside the config: `env:NAME`, `file:/path` (made absolute at load) or
 * `vault:path#key` (read from Vault once at start into `vault`). The value is never put in an
 * error message.
 */
export function resolveSecret(ref: string, where: string, env: NodeJS.ProcessEnv = process.env, vault?: VaultValues): string {
  if (ref.startsWith('env:')) {
    const v = env[ref.slice(4)];
    if (v === undefined || v === '') throw new WogateError('CONFIG_SECRET_UNRESOLVED', `${where}: environment variable ${ref.slice(4)} is not set`);
    return v;
  }
  if (ref.startsWith('file:')) {
    const p = ref.slice(5);
    try {
      return fs.readFileSync(p, 'utf8').trim();
    } catch (e) {
      throw new WogateError('CONFIG_SECRET_UNRESOLVED', `${where}: cannot read secret file ${p}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
    }
  }
  if (ref.startsWith('vault:')) {
    if (!parseVaultRef(ref)) throw new WogateError('CONFIG_SECRET_UNRESOLVED', `${where}: "${ref}" is not a Vault reference (vault:<path>#<key>, path segments and key of letters, digits, _ . -)`);
    const v = vault?.get(ref);
    if (v === undefined) throw new WogateError('CONFIG_SECRET_UNRESOLVED', `${where}: ${ref} was not read from Vault (Vault references are read when the daemon starts)`);
    return v;
  }
  throw new WogateError('CONFIG_SECRET_UNRESOLVED', `${where}: "${ref.split(':')[0] ?? ''}:" is not a supported secret reference (use env:, file: or vault:)`);
}

export interface VaultConfig {
  /** https, or http to a Vault Agent on loopback. */
  readonly address: string;
  /** Vault Enterprise namespace, sent as X-Vault-Namespace. */
  readonly namespace?: string;
  /** file:PATH (absolute) of a PEM bundle trusted for Vault instead of the system store. */
  readonly caPem?: string;
  /** Secret references (env: or file:), never vault: (they are what opens Vault). */
  readonly auth: { readonly token: string } | { readonly appRole: { readonly roleId: string; readonly secretId: string; readonly mount: string } };
  /** Mount of the KV version 2 engine that `vault:` references read from. */
  readonly kvMount: string;
  readonly timeoutMs: number;
}

type RawVault = {
  address: string;
  namespace?: string;
  caPem?: string;
  auth: { token?: string; appRole?: { roleId: string; secretId: string; mount?: string } };
  kvMount?: string;
  timeout?: string;
};

function vaultConfig(raw: RawVault, file: string, ref: (r: string) => string): VaultConfig {
  const problem = vaultAddressProblemText(raw.address);
  if (problem) throw new WogateError('CONFIG_INVALID', `${file}: /secrets/vault/address: ${problem}`, { file });
  const timeoutMs = parseDuration(raw.timeout ?? '10s', `${file}: /secrets/vault/timeout`);
  if (timeoutMs < 100 || timeoutMs > 120_000) throw new WogateError('CONFIG_INVALID', `${file}: /secrets/vault/timeout: must be between 100ms and 2m (got ${raw.timeout})`, { file });
  const a = raw.auth;
  // The schema allows exactly one of the two; this keeps the type honest.
  const auth: VaultConfig['auth'] = a.appRole
    ? { appRole: { roleId: ref(a.appRole.roleId), secretId: ref(a.appRole.secretId), mount: a.appRole.mount ?? 'approle' } }
    : { token: ref(a.token ?? '') };
  return {
    address: raw.address,
    ...(raw.namespace ? { namespace: raw.namespace } : {}),
    ...(raw.caPem ? { caPem: ref(raw.caPem) } : {}),
    auth,
    kvMount: raw.kvMount ?? 'secret',
    timeoutMs,
  };
}
