import { randomInt } from 'node:crypto';
import { AuditLog } from '../audit/audit.js';
import { CheckpointAnchor } from '../audit/checkpoints.js';
import { loadAuditKeys, type AuditKeys } from '../audit/keys.js';
import { mergeAssets, parseDuration, sharedTechnicianIds, WogateError, type AssetConflict, type AssetRecord, type ApproverIndex, type MergedRegister, type PolicySet, type SourceAuthorities, type SourceAuthority, type Vendor } from '../domain/index.js';
import { BREAK_GLASS_SOURCE } from '../domain/breakglass.js';
import { loadApprovers } from '../config/approvers-loader.js';
import { loadConfig, resolveSecret, targetHolds, resolveSecrets, type AdapterTargetConfig, type ApiSourceConfig, type Config, type TargetConfig, type VaultValues } from '../config/config.js';
import { loadPolicies } from '../config/policy-loader.js';
import { loadRegister } from '../config/register-loader.js';
import { Intake } from '../engine/intake.js';
import { SourcePoller } from '../engine/poller.js';
import { WriteBack } from '../engine/writeback.js';
import { VendorSuspensions } from '../engine/suspensions.js';
import { Reconciler, type World } from '../engine/reconciler.js';
import { createLogger, type Logger } from '../log.js';
import { createMetrics, type Metrics } from '../metrics.js';
import { GenericSource } from '../sources/generic.js';
import { MaintainXSource, type MaintainXSourceOptions } from '../sources/maintainx.js';
import { SapSource } from '../sources/sap.js';
import { MaximoSource } from '../sources/maximo.js';
import { maximoOptionsFromConfig } from '../sources/maximo-config.js';
import { sapSourceOptions } from '../sources/sap-schema.js';
import type { Source } from '../sources/source.js';
import { canonicalStoredAssets, canonicalStoredOrder } from '../sources/canonical-order.js';
import { SqliteStore } from '../store/sqlite.js';
import type { Store } from '../store/store.js';
import { HttpTarget } from '../targets/http.js';
import { BeyondTrustTarget, beyondtrustTargetOptions } from '../targets/beyondtrust.js';
import { CertificateTarget, certificateTargetOptions, type OnIssued } from '../targets/certificate.js';
import { CyberArkTarget, cyberarkTargetOptions } from '../targets/cyberark.js';
import { FortiGateTarget, fortigateTargetOptions } from '../targets/fortigate.js';
import { LdapTarget, ldapTargetOptions } from '../targets/ldap.js';
import { LenelTarget, lenelTargetOptions } from '../targets/lenel.js';
import { PanosTarget, panosTargetOptions } from '../targets/panos.js';
import { NftablesTarget } from '../targets/nftables.js';
import type { Target } from '../targets/target.js';
import { prepareSecrets, type PreparedSecrets } from '../secrets/prepare.js';
import { VaultSecretSource } from '../secrets/vault.js';

/** Everything a command needs, wired from one config. This file and main.ts are the only places that pick concrete classes. */
export interface Runtime {
  readonly config: Config;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly store: Store;
  readonly audit: AuditLog;
  readonly clock: () => Date;
  /** The vendor kill switch, loaded from the store. */
  readonly suspensions: VendorSuspensions;
  world(): World;
  /** Re-reads policies and the register; on any error keeps the last good ones and rethrows. */
  reloadWorld(): { warnings: string[] };
  /** A CMMS's asset records (from its resync), merged with the overlay; returns the conflicts that are new. */
  setSourceAssets(sourceId: string, records: readonly AssetRecord[]): Promise<AssetConflict[]>;
}

export interface RuntimeOptions {
  readonly configFile: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly log?: Logger;
  readonly clock?: () => Date;
}

export async function openRuntime(o: RuntimeOptions): Promise<Runtime & { warnings: string[] }> {
  const config = loadConfig(o.configFile, o.env ?? process.env);
  const log = o.log ?? createLogger(config.log);
  const clock = o.clock ?? (() => new Date());
  const store = new SqliteStore(config.store.path);
  await store.migrate();
  // What each CMMS last said about its assets survives a restart.
  const fromSources = new Map<string, readonly AssetRecord[]>();
  for (const s of config.sources) {
    const saved = await store.getState(`assets:${s.id}`);
    if (saved) fromSources.set(s.id, canonicalStoredAssets(JSON.parse(saved) as AssetRecord[]));
  }
  let world = readWorld(config, fromSources);
  let audit: AuditLog;
  try {
    audit = await openAudit(config, store, clock, o.env ?? process.env, log);
  } catch (e) {
    await store.close();
    throw e;
  }
  await canonicaliseStoredOrders(store, audit, clock);
  const suspensions = new VendorSuspensions(store, audit, clock);
  await suspensions.load();
  return {
    config,
    log,
    metrics: createMetrics(),
    store,
    audit,
    clock,
    suspensions,
    warnings: world.warnings,
    world: () => world.world,
    reloadWorld() {
      world = readWorld(config, fromSources);
      return { warnings: world.warnings };
    },
    async setSourceAssets(sourceId, records) {
      const before = new Set(world.world.register.conflicts.map((c) => JSON.stringify(c)));
      fromSources.set(sourceId, records);
      await store.setState(`assets:${sourceId}`, JSON.stringify(records));
      world = readWorld(config, fromSources);
      return world.world.register.conflicts.filter((c) => !before.has(JSON.stringify(c)));
    },
  };
}

/**
 * The audit log with its key and checkpoint anchor, both outside the store file. Its keys may be
 * `vault:` references: those are read here, before anything else, as every command appends records.
 */
async function openAudit(config: Config, store: Store, clock: () => Date, env: NodeJS.ProcessEnv, log: Logger): Promise<AuditLog> {
  const a = config.audit;
  const uses = [
    ...(a.key ? [{ ref: a.key, where: `${config.file}: /audit/key` }] : []),
    ...(a.checkpoints.signingKey ? [{ ref: a.checkpoints.signingKey, where: `${config.file}: /audit/checkpoints/signingKey` }] : []),
  ];
  const vault = await prepareSecrets(config, { env, log, connect: (v) => VaultSecretSource.connect(v) }, uses);
  let keys: AuditKeys;
  try {
    const resolved = (u: { ref: string; where: string } | undefined) => (u ? resolveSecret(u.ref, u.where, env, vault.vault) : undefined);
    const keyUse = uses.find((u) => u.ref === a.key);
    const signingUse = uses.find((u) => u.ref === a.checkpoints.signingKey);
    const key = resolved(keyUse);
    const signingKey = resolved(signingUse);
    keys = loadAuditKeys({
      ...(key && keyUse ? { key, keyWhere: keyUse.where } : {}), keyFile: a.keyFile,
      ...(signingKey && signingUse ? { signingKey, signingKeyWhere: signingUse.where } : {}), signingKeyFile: a.checkpoints.signingKeyFile,
    });
  } finally {
    await vault.close();
  }
  for (const f of keys.generated) log.warn(`audit: generated ${f} (keep it outside backups of the store; see docs/audit.md)`);
  const anchor = new CheckpointAnchor(a.checkpoints.file, keys, a.checkpoints, (line) => log.info('audit checkpoint', { checkpoint: line }));
  const audit = new AuditLog(store, clock, { key: keys.chainKey, checkpoints: anchor, log });
  await audit.open();
  // Every command closes the store last; the checkpoint of a clean stop goes just before, so that
  // records a command wrote (and the daemon's "stopped" record) are anchored.
  const closeStore = store.close.bind(store);
  store.close = async () => {
    await audit.close().catch(() => undefined);
    await closeStore();
  };
  return audit;
}

function readWorld(config: Config, fromSources: ReadonlyMap<string, readonly AssetRecord[]>): { world: World & { register: MergedRegister }; warnings: string[] } {
  const enabled = new Set(config.targets.filter((t) => t.enabled).map((t) => t.id));
  const knownSources = [...config.sources.map((s) => s.id), ...(config.breakGlass ? [BREAK_GLASS_SOURCE] : [])];
  const { policySet, warnings } = loadPolicies(config.policies.dir, { knownTargets: targetHolds(config), knownSources });
  const overlay = loadRegister(config.register.assets, config.register.vendors);
  refuseAmbiguousTechnicians(config, overlay.vendors.values());
  const approvers = config.register.approvers !== undefined ? loadApprovers(config.register.approvers) : undefined;
  const register = { ...mergeAssets([...overlay.assets.values()], fromSources, [...overlay.vendors.values()]), ...(approvers ? { approvers } : {}) };
  const disabledUse = policySet.policies.flatMap((p) => p.rules.flatMap((r) => r.grant.filter((g) => !enabled.has(g.target)).map((g) => `${p.file}: rule ${r.id} grants on target "${g.target}", which is disabled: those grants will fail until it is enabled`)));
  return { world: { policySet, register, sources: sourceAuthorities(config) }, warnings: [...warnings, ...disabledUse, ...authorityWarnings(config, policySet, approvers)] };
}

/** Rules asking for a role nobody holds, and sources that may authorise anything: valid, but said out loud (start, reload, policy check). */
export function authorityWarnings(config: Config, policySet: PolicySet, approvers: ApproverIndex | undefined): string[] {
  const roles = new Set([...(approvers?.values() ?? [])].flatMap((p) => p.roles));
  const unheld = policySet.policies.flatMap((p) => p.rules.flatMap((r) => (r.require.approverRoles ?? []).filter((role) => !roles.has(role)).map((role) => `${p.file}: rule ${r.id} requires an approver with role "${role}", which no one in ${config.register.approvers ?? 'the approvers register (register.approvers is not set)'} holds: the rule grants nothing`)));
  const unbounded = config.sources.filter((s) => !s.authorises).map((s) => `source ${s.id} has no authorises: its orders may authorise any vendor at any site; list sources[].authorises.sites and vendors`);
  return [...new Set(unheld), ...unbounded];
}

/** What each configured source may authorise, for the domain. */
export function sourceAuthorities(config: Config): SourceAuthorities {
  return new Map(config.sources.map((s): [string, SourceAuthority] => [s.id, { trustAssets: s.trustAssets, ...(s.authorises?.sites ? { sites: s.authorises.sites } : {}), ...(s.authorises?.vendors ? { vendors: s.authorises.vendors } : {}) }]));
}

/**
 * Once per store: orders stored before ids were canonical are rewritten in canonical form, so
 * that they keep matching the (now canonical) register instead of losing their access at the
 * first reconcile, and `Alice` + `alice` stop counting as two approvals without waiting for the
 * source to send the order again (decision 11).
 */
async function canonicaliseStoredOrders(store: Store, audit: AuditLog, clock: () => Date): Promise<void> {
  if (await store.getState(CANONICAL_IDS_STATE)) return;
  let rewritten = 0;
  for (const order of await store.listOrders(new Date(0))) {
    const canonical = canonicalStoredOrder(order);
    if (JSON.stringify(canonical) !== JSON.stringify(order) && (await store.upsertOrder(canonical, clock())) === 'updated') rewritten++;
  }
  if (rewritten > 0) await audit.append({ actor: 'wogate', action: 'store.ids_canonicalised', subject: 'work_orders', details: { orders: rewritten } });
  await store.setState(CANONICAL_IDS_STATE, clock().toISOString());
}

const CANONICAL_IDS_STATE = 'ids:canonical';

/**
 * Without portal.oidc.vendorClaim the portal finds a technician's vendor in the register, which is
 * only sound while no technician id is listed under two vendors: otherwise vendor B's technician
 * whose subject is vendor A's technician id would see, and collect, A's credentials.
 */
export function refuseAmbiguousTechnicians(config: Config, vendors: Iterable<Vendor>): void {
  if (!config.portal || config.portal.oidc.vendorClaim !== undefined) return;
  const shared = [...sharedTechnicianIds(vendors)];
  if (shared.length === 0) return;
  const lines = shared.map(([id, vs]) => `technician id "${id}" is listed under vendors ${vs.map((v) => `"${v}"`).join(' and ')}`);
  throw new WogateError('REGISTER_INVALID', `${config.register.vendors}: ${lines.join('; ')}; the portal has no portal.oidc.vendorClaim, so a sign-in could not tell these technicians apart. Set portal.oidc.vendorClaim to a claim naming the vendor, or give each technician an id unique across vendors`, { file: config.register.vendors, technicians: shared.map(([id, vs]) => ({ id, vendors: vs })) });
}

/**
 * Reads every `vault:` reference in the config from Vault, once, at start (nothing is contacted
 * when there is none). Pass `.vault` to buildSources/buildTargets; close() at stop.
 */
export function openSecrets(config: Config, env: NodeJS.ProcessEnv, log: Logger): Promise<PreparedSecrets> {
  return prepareSecrets(config, { env, log, connect: (o) => VaultSecretSource.connect(o) });
}

export function buildSources(config: Config, env: NodeJS.ProcessEnv = process.env, vault?: VaultValues): Map<string, Source> {
  const out = new Map<string, Source>();
  for (const [i, s] of config.sources.entries()) {
    if (s.kind !== 'generic') {
      out.set(s.id, buildApiSource(s, resolveSecrets(s.options, `${config.file}: /sources/${i}/${s.kind}`, env, vault)));
      continue;
    }
    const secrets = s.webhook.secrets.map((ref, j) => resolveSecret(ref, `${config.file}: /sources/${i}/webhook/secrets/${j}`, env, vault));
    out.set(s.id, new GenericSource({ id: s.id, secrets, toleranceSeconds: s.webhook.toleranceSeconds, maxBodyBytes: s.webhook.maxBodyBytes, mapping: s.mapping }));
  }
  return out;
}

/** The CMMS adapters by kind; each takes its config block with secrets resolved and durations in numbers. */
export function buildApiSource(s: ApiSourceConfig, block: Record<string, unknown>): Source {
  const options = { ...durationsToNumbers(block, `/sources/${s.id}/${s.kind}`), id: s.id };
  switch (s.kind) {
    case 'maintainx':
      return new MaintainXSource(options as unknown as MaintainXSourceOptions);
    case 'maximo':
      return new MaximoSource(maximoOptionsFromConfig(s.id, block as Parameters<typeof maximoOptionsFromConfig>[1]));
    case 'sap':
      return new SapSource(sapSourceOptions(s.id, block, `source ${s.id}`));
    default:
      throw new Error(`source kind "${s.kind}" (${s.id}) is not available in this build`);
  }
}

/** Config says `timeout: 10s` and `tolerance: 5m`; adapters take `timeoutMs` and `toleranceSeconds`. */
function durationsToNumbers(block: Record<string, unknown>, where: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(block)) {
    if (k === 'timeout' && typeof v === 'string') out.timeoutMs = parseDuration(v, `${where}/timeout`);
    else if (k === 'tolerance' && typeof v === 'string') out.toleranceSeconds = parseDuration(v, `${where}/tolerance`) / 1000;
    else if (v && typeof v === 'object' && !Array.isArray(v)) out[k] = durationsToNumbers(v as Record<string, unknown>, `${where}/${k}`);
    else out[k] = v;
  }
  return out;
}

/** What built targets hand back to the daemon: a certificate target's new credentials go to the vendor portal's vault. */
export interface TargetHooks {
  readonly onIssued?: OnIssued;
}

export function buildTarget(t: TargetConfig, config: Config, env: NodeJS.ProcessEnv = process.env, vault?: VaultValues, hooks: TargetHooks = {}): Target {
  if (t.kind === 'http') {
    const i = config.targets.indexOf(t);
    const secretHeaders = Object.fromEntries(Object.entries(t.http.secretHeaders).map(([k, ref]) => [k, resolveSecret(ref, `${config.file}: /targets/${i}/http/secretHeaders/${k}`, env, vault)]));
    const { secretHeaders: _refs, ...http } = t.http;
    return new HttpTarget({ id: t.id, ...http, headers: { ...t.http.headers, ...secretHeaders } });
  }
  if (t.kind === 'nftables') return new NftablesTarget({ id: t.id, ...t.nftables });
  return buildAdapterTarget(t, resolveSecrets(t.options, `${config.file}: /targets/${config.targets.indexOf(t)}/${t.kind}`, env, vault), hooks);
}

/** The vendor adapters by kind; each takes its config block with secrets resolved. */
function buildAdapterTarget(t: AdapterTargetConfig, block: Record<string, unknown>, hooks: TargetHooks): Target {
  switch (t.kind) {
    case 'fortigate':
      return new FortiGateTarget(fortigateTargetOptions(t.id, block));
    case 'panos':
      return new PanosTarget(panosTargetOptions(t.id, block));
    case 'cyberark':
      return new CyberArkTarget(cyberarkTargetOptions(t.id, block));
    case 'beyondtrust':
      return new BeyondTrustTarget(beyondtrustTargetOptions(t.id, block));
    case 'lenel':
      return new LenelTarget(lenelTargetOptions(t.id, block));
    case 'ldap':
      return new LdapTarget(ldapTargetOptions(t.id, block));
    case 'certificate':
      // With the vendor portal configured, each new credential waits sealed in its vault until the
      // technician collects it; without it the private key is discarded after issuance and the
      // certificate serves revocation and relying-party CRL checks only.
      return new CertificateTarget({ ...certificateTargetOptions(t.id, block), ...(hooks.onIssued ? { onIssued: hooks.onIssued } : {}) });
    default:
      throw new WogateError('CONFIG_INVALID', `target kind "${t.kind}" (${t.id}) is not available in this build`);
  }
}

export function buildTargets(config: Config, env: NodeJS.ProcessEnv = process.env, vault?: VaultValues, hooks: TargetHooks = {}): Map<string, Target> {
  return new Map(config.targets.filter((t) => t.enabled).map((t) => [t.id, buildTarget(t, config, env, vault, hooks)]));
}

export function buildEngine(rt: Runtime, targets: ReadonlyMap<string, Target>, sources: ReadonlyMap<string, Source>, onChange: (orderKeys: string[]) => void, config: Config = rt.config) {
  const random = () => randomInt(0, 1_000_000) / 1_000_000;
  const stale = new Set<string>();
  const writeBack = new WriteBack({ sources, audit: rt.audit, log: rt.log, metrics: rt.metrics, random, detail: rt.config.engine.writeBack.detail });
  const reconciler = new Reconciler({
    store: rt.store,
    targets,
    audit: rt.audit,
    log: rt.log,
    metrics: rt.metrics,
    clock: rt.clock,
    random,
    world: () => rt.world(),
    retry: rt.config.engine.retry,
    lookbackMs: rt.config.engine.lookbackMs,
    excludedSources: () => stale,
    suspendedVendors: () => rt.suspensions.active(),
    onGrantChange: (g, change) => writeBack.record(g, change),
  });
  const intake = new Intake({ store: rt.store, sources, audit: rt.audit, log: rt.log, metrics: rt.metrics, clock: rt.clock, random, world: () => rt.world(), onChange });
  const pollers: SourcePoller[] = [];
  for (const s of config.sources) {
    const source = sources.get(s.id);
    if (s.kind === 'generic' || !source?.api) continue;
    pollers.push(new SourcePoller({
      source: source as Source & { api: NonNullable<Source['api']> },
      intake, store: rt.store, audit: rt.audit, log: rt.log, metrics: rt.metrics, clock: rt.clock,
      incremental: s.poll.incremental, fullResync: s.poll.fullResync, initialLookbackMs: s.poll.initialLookbackMs,
      staleAfterMs: s.poll.staleAfterMs, failClosed: s.poll.failClosed,
      ...(s.poll.assets
        ? {
            onAssets: async (records: readonly AssetRecord[]) => {
              const fresh = await rt.setSourceAssets(s.id, records);
              for (const c of fresh) {
                rt.metrics.alerts.inc({ kind: 'asset_conflict' });
                rt.log.error(`asset register conflict: ${c.assetId}.${c.field} differs; the asset is withheld until one side is fixed`, { values: c.values });
                await rt.audit.append({ actor: `source:${s.id}`, action: 'register.conflict', subject: c.assetId, details: { field: c.field, values: c.values } });
              }
              onChange([]);
            },
          }
        : {}),
      onStale: (id, isStale) => {
        if (isStale) stale.add(id);
        else stale.delete(id);
        onChange([]);
      },
      onChange,
    }));
  }
  return { reconciler, intake, pollers, writeBack };
}
