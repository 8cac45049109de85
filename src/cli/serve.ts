import { execFile } from 'node:child_process';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { createApp } from '../api/app.js';
import { OidcVerifier } from '../api/oidc.js';
import { RefusalAggregator } from '../api/refusals.js';
import { startDemo, type Demo } from '../demo/demo.js';
import { isLoopbackHost, type Config } from '../config/config.js';
import { DriftChecker, DriftMonitor } from '../engine/drift.js';
import { BreakGlassService } from '../engine/breakglass.js';
import type { SourcePoller } from '../engine/poller.js';
import { Scheduler } from '../engine/scheduler.js';
import type { Logger } from '../log.js';
import type { Target } from '../targets/target.js';
import { buildEngine, buildSources, buildTargets, openRuntime, openSecrets, type Runtime } from './runtime.js';
import { loadServerTls, type ServerTls } from './tls.js';
import { listenMetrics } from './metrics-listener.js';
import { secretFileWarnings } from '../secrets/file-mode.js';
import { secretUses, type SecretUse } from '../secrets/prepare.js';
import { openPortal, type Portal } from '../portal/index.js';
import { openStaff, type Staff } from '../staff/index.js';

/** Request line plus headers; Node answers 431 beyond it. Room for a large OIDC bearer token. */
const MAX_HEADER_BYTES = 16 * 1024;
const MAX_HEADERS_COUNT = 100;

export interface ServeOptions {
  readonly configFile: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly log?: Logger;
  readonly clock?: () => Date;
  /** Overrides server.port (0 = any free port), for tests. */
  readonly port?: number;
}

export interface Daemon {
  readonly runtime: Runtime;
  readonly url: string;
  readonly scheduler: Scheduler;
  readonly reconciler: ReturnType<typeof buildEngine>['reconciler'];
  readonly intake: ReturnType<typeof buildEngine>['intake'];
  readonly targets: ReadonlyMap<string, Target>;
  readonly pollers: readonly SourcePoller[];
  /** Scheduled drift checks; absent when engine.drift is false. */
  readonly drift?: DriftMonitor;
  readonly demo?: Demo;
  /** Break-glass requests and their reviews; refuses everything when the config has no breakGlass section. */
  readonly breakGlass: BreakGlassService;
  /** Where /metrics is served when server.metrics gives it a listener of its own. */
  readonly metricsUrl?: string;
  /** Refusals of unauthenticated callers, audited once per address, kind and window; flush() writes the open windows now. */
  readonly refusals: RefusalAggregator;
  reload(): void;
  stop(): Promise<void>;
}

/** Starts the daemon: store, journal replay, targets, HTTP, scheduler; then the demo if configured. */
export async function serve(o: ServeOptions): Promise<Daemon> {
  const env = o.env ?? process.env;
  const rt = await openRuntime({ configFile: o.configFile, env, ...(o.log ? { log: o.log } : {}), ...(o.clock ? { clock: o.clock } : {}) });
  const { config, log } = rt;
  for (const w of rt.warnings) log.warn(w);
  for (const w of secretFileWarnings(secretFiles(config))) log.warn(w);
  // Checked before anything is started: a certificate or key that can't be used refuses the start.
  let tlsNow: ServerTls | undefined;
  try {
    if (config.server.tls) tlsNow = loadServerTls(config.server.tls, config.file, env, rt.clock());
  } catch (e) {
    await rt.store.close();
    throw e;
  }
  for (const w of tlsNow?.warnings ?? []) log.warn(w);
  if (!tlsNow && !isLoopbackHost(config.server.host)) {
    log.warn(`PLAINTEXT HTTP on ${config.server.host} (server.allowPlaintext): tokens, webhooks and credentials cross the network unencrypted unless a TLS-terminating proxy is in front of wogate`);
  }
  if (config.demo.enabled) log.warn('DEMO MODE is on (config demo.enabled): a simulated CMMS on loopback will send a work order; turn it off before real use');

  const demoPrep = config.demo.enabled ? await startDemo.prepare(rt) : undefined;
  const effective = demoPrep ? demoPrep.config : config;
  // vault: references are read here, once; a reference that can't be read refuses the start.
  const secrets = await openSecrets(effective, env, log).catch(async (e: unknown) => {
    await rt.store.close();
    throw e;
  });
  const sources = buildSources(effective, env, secrets.vault);
  // The portal's secrets are resolved before any target runs: a certificate issued with nowhere to put its key would be wasted.
  let portal: Portal | undefined;
  let staff: Staff | undefined;
  try {
    portal = openPortal(effective, rt.store, rt.clock, env, secrets.vault);
    staff = openStaff(effective, rt.store, env, secrets.vault);
  } catch (e) {
    await secrets.close().catch(() => undefined);
    await rt.store.close();
    throw e;
  }
  const targets = buildTargets(effective, env, secrets.vault, portal ? { onIssued: portal.onIssued } : {});
  for (const t of targets.values()) {
    // A target that can't be prepared is a deployment error: refuse to run rather than grant partially.
    await t.init({ now: rt.clock(), log: log.child({ target: t.id }) });
    log.info('target ready', { target: t.id, kind: t.kind, nativeExpiry: t.nativeExpiry });
  }

  // The intake's callback runs only after start, when `scheduler` exists.
  const { reconciler, intake, pollers, writeBack } = buildEngine(rt, targets, sources, (keys) =>
    // An empty list means "which orders is unknown" (a source went stale or recovered): a full pass.
    scheduler.trigger('orders changed', keys.length > 0 ? keys : undefined),
  effective);
  const scheduler = new Scheduler({ reconcile: (keys) => reconciler.reconcile(keys), clock: rt.clock, log, fullReconcileMs: config.engine.fullReconcileMs, debounceMs: 20 });
  const replayed = await reconciler.replayJournal();
  if (replayed) log.warn(`journal: ${replayed} interrupted target call(s) will be redone`);

  const bg = config.breakGlass;
  const reviewSource = bg?.reviewSource === undefined ? undefined : sources.get(bg.reviewSource);
  if (bg && !reviewSource?.api?.createReview) {
    log.warn(`break-glass reviews can't be opened in a CMMS (${bg.reviewSource === undefined ? 'no breakGlass.reviewSource' : `source ${bg.reviewSource} has no review write API`}): they are tracked in wogate and alerted on when due`);
  }
  const breakGlass = new BreakGlassService({
    store: rt.store, audit: rt.audit, log: log.child({ component: 'break-glass' }), metrics: rt.metrics, clock: rt.clock, world: () => rt.world(),
    ...(bg ? { policy: { maxDurationMs: bg.maxDurationMs, reviewDueMs: bg.reviewDueMs } } : {}),
    ...(reviewSource ? { reviewSource } : {}),
    ...(bg?.reviewSite ? { reviewSite: bg.reviewSite } : {}),
    trigger: (keys) => scheduler.trigger('break-glass', keys),
    retry: config.engine.retry,
  });
  if (bg) log.warn('break-glass is enabled (config breakGlass): operators can open emergency access with a second operator\'s approval', { maxDurationMs: bg.maxDurationMs, reviewDueMs: bg.reviewDueMs, reviewSource: bg.reviewSource ?? null });

  const drain = () => void intake.drain().catch((e: unknown) => log.error('inbox drain failed', { error: e instanceof Error ? e.message : String(e) }));
  const oidcConfig = config.auth.oidc;
  const oidc = oidcConfig ? new OidcVerifier({ ...oidcConfig, clock: rt.clock, log }) : undefined;
  // Discovery now, so a misconfigured issuer shows in the log at start; requests retry it if it failed.
  oidc?.discover().catch((e: unknown) => log.warn('OIDC discovery failed; admin API OIDC tokens are refused (503) until it succeeds', { error: e instanceof Error ? e.message : String(e) }));
  const refusals = new RefusalAggregator({ audit: rt.audit, log: log.child({ component: 'refusals' }), metrics: rt.metrics, clock: rt.clock });
  refusals.start();
  const app = createApp({
    refusals,
    serveMetrics: !config.server.metrics,
    ...(oidc ? { oidc } : {}),
    ...(portal ? { portal: { config: portal.config, oidc: portal.oidc, sessions: portal.sessions, vault: portal.vault, vpnTargets: portal.vpnTargets } } : {}),
    ...(staff ? { staff } : {}),
    store: rt.store,
    sources,
    reconciler,
    audit: rt.audit,
    log,
    metrics: rt.metrics,
    clock: rt.clock,
    world: () => rt.world(),
    onHookStored: drain,
    breakGlass,
    targets,
    suspensions: rt.suspensions,
    rateLimits: config.server.rateLimits,
    trustProxy: config.server.trustProxy,
    notReady: async () => {
      const last = scheduler.lastPassAt();
      if (!last) return 'no reconcile pass has completed yet';
      if (rt.clock().getTime() - last.getTime() > 3 * config.engine.fullReconcileMs) return `last reconcile pass finished at ${last.toISOString()}`;
      return null;
    },
  });
  const server: http.Server = tlsNow
    ? https.createServer({ ...tlsNow.options, maxHeaderSize: MAX_HEADER_BYTES, handshakeTimeout: 10_000 }, app)
    : http.createServer({ maxHeaderSize: MAX_HEADER_BYTES }, app);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port ?? config.server.port, config.server.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.maxHeadersCount = MAX_HEADERS_COUNT;
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;
  const metricsListener = config.server.metrics ? await listenMetrics(rt.metrics, config.server.metrics, log).catch(async (e: unknown) => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await secrets.close().catch(() => undefined);
    await rt.store.close();
    throw e;
  }) : undefined;
  const { port } = server.address() as AddressInfo;
  const url = `${tlsNow ? 'https' : 'http'}://${config.server.host.includes(':') ? `[${config.server.host}]` : config.server.host}:${port}`;
  log.info(`wogate listening on ${url}`, { store: config.store.path, policies: rt.world().policySet.policies.length, sources: [...sources.keys()], targets: [...targets.keys()] });
  await rt.audit.append({ actor: 'wogate', action: 'daemon.started', subject: url, details: { config: config.file, targets: [...targets.keys()], sources: [...sources.keys()], replayed, ...(tlsNow ? { tls: tlsNow.certificate } : {}) } });
  // Anchors what a crashed predecessor left uncovered, then keeps anchoring while idle: verify
  // reads a last checkpoint older than two intervals, without a clean shutdown, as removed ones.
  await rt.audit.checkpoint('start');
  rt.audit.startCheckpoints();

  await scheduler.start();
  await breakGlass.start();
  drain();
  const drift = startDrift(rt, targets, effective, (keys) => scheduler.trigger('drift', keys));
  for (const p of pollers) {
    // Not awaited: a CMMS that is slow or down at start must not hold up the daemon; the poller
    // records the failure, alerts when stale and fails closed if configured.
    void p.start();
  }
  const healthy = () => {
    const last = scheduler.lastPassAt();
    return last !== undefined && rt.clock().getTime() - last.getTime() <= 3 * config.engine.fullReconcileMs;
  };
  const notify = startSystemdNotify(env, log, healthy);

  // Delivered webhooks are kept a day: far longer than the signature tolerance, so a replay is
  // always either too old to verify or still remembered.
  const prune = setInterval(() => {
    rt.store.pruneHookEvents(new Date(rt.clock().getTime() - 86_400_000)).catch((e: unknown) => log.warn('pruning old webhook deliveries failed', { error: String(e) }));
    if (portal || staff) {
      const idle = { portalMs: portal?.config.idleTimeoutMs ?? 0, staffMs: staff?.config.idleTimeoutMs ?? 0 };
      rt.store.portal.prune(rt.clock(), idle).catch((e: unknown) => log.warn('pruning portal and staff sessions failed', { error: String(e) }));
    }
  }, 3_600_000);
  prune.unref();

  const demo = demoPrep ? await demoPrep.run(url) : undefined;

  let stopped = false;
  return {
    runtime: rt,
    url,
    scheduler,
    reconciler,
    intake,
    targets,
    pollers,
    ...(drift ? { drift } : {}),
    ...(demo ? { demo } : {}),
    breakGlass,
    refusals,
    ...(metricsListener ? { metricsUrl: metricsListener.url } : {}),
    reload() {
      try {
        const { warnings } = rt.reloadWorld();
        for (const w of warnings) log.warn(w);
        log.info('policies and register reloaded', { policies: rt.world().policySet.policies.length });
        void rt.audit.append({ actor: 'operator', action: 'policy.reloaded', subject: config.policies.dir, details: { warnings } });
        scheduler.trigger('reload');
      } catch (e) {
        log.error('reload refused; keeping the last good policies and register', { error: e instanceof Error ? e.message : String(e) });
        void rt.audit.append({ actor: 'operator', action: 'policy.reload_refused', subject: config.policies.dir, details: { error: e instanceof Error ? e.message : String(e) } });
      }
      if (config.server.tls && server instanceof https.Server) {
        // Renewed certificates take effect for new connections; open ones keep theirs.
        try {
          const next = loadServerTls(config.server.tls, config.file, env, rt.clock());
          server.setSecureContext(next.options);
          for (const w of next.warnings) log.warn(w);
          log.info('TLS certificate reloaded', next.certificate);
          void rt.audit.append({ actor: 'operator', action: 'tls.reloaded', subject: url, details: next.certificate });
        } catch (e) {
          log.error('TLS reload refused; keeping the current certificate', { error: e instanceof Error ? e.message : String(e) });
          void rt.audit.append({ actor: 'operator', action: 'tls.reload_refused', subject: url, details: { error: e instanceof Error ? e.message : String(e) } });
        }
      }
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      notify.stop();
      clearInterval(prune);
      rt.audit.stopCheckpoints();
      demo?.stop();
      scheduler.stop();
      breakGlass.stop();
      drift?.stop();
      intake.stop();
      for (const p of pollers) p.stop();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await metricsListener?.close();
      // The windows still open are written before the chain is closed.
      await refusals.close();
      await intake.drain().catch(() => undefined);
      await reconciler.reconcile().catch(() => undefined);
      await writeBack.flush().catch(() => undefined);
      for (const t of targets.values()) await t.close().catch(() => undefined);
      for (const s of sources.values()) await Promise.resolve(s.close?.()).catch(() => undefined);
      await secrets.close().catch(() => undefined);
      await demo?.close();
      await rt.audit.append({ actor: 'wogate', action: 'daemon.stopped', subject: url, details: {} }).catch(() => undefined);
      await rt.store.close();
    },
  };
}

/** Every secret reference the daemon reads, with the Vault login's own (token, AppRole ids) and the TLS key. */
function secretFiles(config: Config): SecretUse[] {
  const vault = config.secrets.vault;
  const auth = vault ? ('token' in vault.auth ? [{ ref: vault.auth.token, where: `${config.file}: /secrets/vault/auth/token` }] : [
    { ref: vault.auth.appRole.roleId, where: `${config.file}: /secrets/vault/auth/appRole/roleId` },
    { ref: vault.auth.appRole.secretId, where: `${config.file}: /secrets/vault/auth/appRole/secretId` },
  ]) : [];
  return [...secretUses(config), ...auth];
}

/** Scheduled drift checks over the targets whose list() can see what they hold; off when engine.drift is false. */
function startDrift(rt: Runtime, targets: ReadonlyMap<string, Target>, config: Config, reprovision: (orderKeys: string[]) => void): DriftMonitor | undefined {
  if (!config.engine.drift) return undefined;
  const listing = new Map([...targets].filter(([, t]) => t.canList !== false));
  for (const t of targets.values()) if (t.canList === false) rt.log.warn(`target ${t.id} can't list what it holds: drift checks skip it`);
  const checker = new DriftChecker({
    store: rt.store, targets: listing, audit: rt.audit, log: rt.log, metrics: rt.metrics, clock: rt.clock,
    authoritative: new Set(config.targets.filter((t) => t.authoritative).map((t) => t.id)),
  });
  const monitor = new DriftMonitor({ checker, store: rt.store, log: rt.log, clock: rt.clock, schedule: config.engine.drift, reprovision });
  monitor.start();
  return monitor;
}

/**
 * Type=notify: READY=1 once serving, WATCHDOG=1 at half the watchdog interval while healthy. Uses the
 * systemd-notify tool (the unit sets NotifyAccess=all) so no native addon is needed.
 */
function startSystemdNotify(env: NodeJS.ProcessEnv, log: Logger, healthy: () => boolean): { stop(): void } {
  if (!env.NOTIFY_SOCKET) return { stop() {} };
  const send = (...msg: string[]) =>
    execFile('systemd-notify', [`--pid=${process.pid}`, ...msg], (err) => {
      if (err) log.warn('systemd-notify failed', { error: err.message });
    });
  send('--ready', 'STATUS=serving');
  const usec = Number(env.WATCHDOG_USEC);
  const timer = Number.isFinite(usec) && usec > 0 ? setInterval(() => {
    // Only a daemon whose reconcile loop is alive pets the watchdog; a stuck one gets restarted.
    if (healthy()) send('WATCHDOG=1');
    else log.error('watchdog: no reconcile pass finished recently; not notifying systemd');
  }, usec / 2000) : undefined;
  return { stop: () => clearInterval(timer) };
}
