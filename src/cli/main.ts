#!/usr/bin/env node
import fs from 'node:fs';
import { Command, InvalidArgumentError, Option } from 'commander';
import { describeResource, isWogateError, rulesOpenableBy, type Evaluation } from '../domain/index.js';
import { loadConfig, targetHolds } from '../config/config.js';
import { loadPolicies } from '../config/policy-loader.js';
import { loadRegister } from '../config/register-loader.js';
import { silentLogger } from '../log.js';
import { authorityWarnings, buildEngine, buildSources, openRuntime, openSecrets, refuseAmbiguousTechnicians, sourceAuthorities } from './runtime.js';
import { loadApprovers } from '../config/approvers-loader.js';
import { BREAK_GLASS_SOURCE } from '../domain/breakglass.js';
import { serve } from './serve.js';
import { addTokenCommands } from './token.js';
import { accessCommands, remainsText, withActions } from './access.js';
import { revokeGrant } from '../api/actions.js';

const DEFAULT_CONFIG = process.env.WOGATE_CONFIG ?? 'config/wogate.example.yaml';

function configOption() {
  return new Option('-c, --config <file>', 'config file (or WOGATE_CONFIG)').default(DEFAULT_CONFIG);
}

function when(value: string): Date {
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) throw new InvalidArgumentError(`"${value}" is not an ISO-8601 time`);
  return d;
}

export function buildCli(): Command {
  const program = new Command('wogate')
    .description('Zero Trust vendor-access broker: OT access only while an approved work order says so')
    .showHelpAfterError()
    .exitOverride();

  program
    .command('serve')
    .description('run the daemon: webhooks, reconciler, expiry timers, admin API')
    .addOption(configOption())
    .action(async (o: { config: string }) => {
      const daemon = await serve({ configFile: o.config });
      const log = daemon.runtime.log;
      process.on('SIGHUP', () => daemon.reload());
      const shutdown = (sig: string) => {
        log.info(`${sig}: stopping`);
        daemon.stop().then(() => process.exit(0), (e: unknown) => {
          console.error(e);
          process.exit(1);
        });
      };
      process.once('SIGTERM', () => shutdown('SIGTERM'));
      process.once('SIGINT', () => shutdown('SIGINT'));
    });

  const policy = program.command('policy').description('policy files');
  policy
    .command('check')
    .description('validate policy files, the asset and vendor register, and target references; exit 1 on any error')
    .addOption(configOption())
    .option('-d, --dir <dir>', 'policy directory (default: the one in the config)')
    .option('--json', 'machine-readable output')
    .action((o: { config: string; dir?: string; json?: boolean }) => {
      const config = loadConfig(o.config);
      const knownSources = [...config.sources.map((s) => s.id), ...(config.breakGlass ? [BREAK_GLASS_SOURCE] : [])];
      const loaded = loadPolicies(o.dir ?? config.policies.dir, { knownTargets: targetHolds(config), knownSources });
      const { policySet } = loaded;
      const register = loadRegister(config.register.assets, config.register.vendors);
      refuseAmbiguousTechnicians(config, register.vendors.values());
      const approvers = config.register.approvers !== undefined ? loadApprovers(config.register.approvers) : undefined;
      const warnings = [...loaded.warnings, ...authorityWarnings(config, policySet, approvers)];
      const authorities = sourceAuthorities(config);
      const reach = config.sources.map((s) => ({ source: s.id, kind: s.kind, authorises: s.authorises ?? null, trustAssets: s.trustAssets, rules: rulesOpenableBy(policySet, s.id, authorities.get(s.id)) }));
      const rules = policySet.policies.reduce((n, p) => n + p.rules.length, 0);
      const people = new Set(approvers?.values() ?? []).size;
      if (o.json) {
        console.log(JSON.stringify({ ok: true, warnings, policies: policySet.policies.length, rules, assets: register.assets.size, vendors: register.vendors.size, approvers: people, sources: reach }, null, 2));
        return;
      }
      for (const w of warnings) console.log(`warning: ${w}`);
      console.log(`ok: ${policySet.policies.length} policy file(s), ${rules} rule(s), ${register.assets.size} asset(s), ${register.vendors.size} vendor(s)${approvers ? `, ${people} approver(s)` : ''}`);
      console.log('sources and the rules their orders can open:');
      for (const r of reach) {
        const limits = r.authorises ? [r.authorises.sites ? `sites ${r.authorises.sites.join(', ')}` : 'any site', r.authorises.vendors ? `vendors ${r.authorises.vendors.join(', ')}` : 'any vendor'].join('; ') : 'any site, any vendor (no authorises)';
        console.log(`  ${r.source} (${r.kind}; ${limits}; synced assets ${r.trustAssets ? 'trusted' : 'not trusted'})`);
        if (r.rules.length === 0) console.log('    (no rule)');
        for (const x of r.rules) console.log(`    ${x.rule}: vendors ${x.vendors?.join(', ') ?? 'any'}; sites ${x.sites?.join(', ') ?? 'any'}`);
      }
    });

  program
    .command('explain')
    .description('print the desired grants and every denial with its reason, for one order or all')
    .addOption(configOption())
    .option('-o, --order <source/id>', 'one work order')
    .option('--at <time>', 'evaluate at this time instead of now (ISO-8601)', when)
    .option('--json', 'machine-readable output')
    .action(async (o: { config: string; order?: string; at?: Date; json?: boolean }) => {
      const rt = await openRuntime({ configFile: o.config, log: silentLogger });
      try {
        const now = o.at ?? new Date();
        let orders = await rt.store.listOrders(new Date(now.getTime() - rt.config.engine.lookbackMs));
        if (o.order) {
          const [source, ...rest] = o.order.split('/');
          const one = await rt.store.getOrder(source ?? '', rest.join('/'));
          if (!one) throw new Error(`no work order "${o.order}" in ${rt.config.store.path} (expected <source>/<id>)`);
          orders = [one];
        }
        // The reconciler's own evaluation: suspended vendors and access blocks are kept in the store, so
        // explain shows them (VENDOR_SUSPENDED, ACCESS_BLOCKED) as the daemon applies them.
        const ev = await buildEngine(rt, new Map(), new Map(), () => undefined).reconciler.explainOrders(orders, now);
        if (o.json) console.log(JSON.stringify({ at: now.toISOString(), ...ev }, null, 2));
        else printEvaluation(ev, now);
      } finally {
        await rt.store.close();
      }
    });

  const source = program.command('source').description('CMMS connections');
  source
    .command('test <sourceId> [orderId]')
    .description('read one order from the CMMS (or map a sample payload) and print the canonical work order and the policy decision')
    .addOption(configOption())
    .option('-p, --payload <file>', 'a sample webhook body (JSON) to map instead of calling the CMMS')
    .action(async (sourceId: string, orderId: string | undefined, o: { config: string; payload?: string }) => {
      const rt = await openRuntime({ configFile: o.config, log: silentLogger });
      const secrets = await openSecrets(rt.config, process.env, rt.log).catch(async (e: unknown) => {
        await rt.store.close();
        throw e;
      });
      try {
        const src = buildSources(rt.config, process.env, secrets.vault).get(sourceId);
        if (!src) throw new Error(`no source "${sourceId}" in ${rt.config.file} (have: ${rt.config.sources.map((s) => s.id).join(', ') || 'none'})`);
        const now = new Date();
        let order;
        if (o.payload) {
          const event = src.parseEvent(JSON.parse(fs.readFileSync(o.payload, 'utf8')) as unknown, { webhookId: 'source-test', eventTime: now });
          order = event.order ?? (src.api ? await src.api.fetchOrder(event.orderId, { now, log: rt.log }) : undefined);
          if (!order) throw new Error(`the payload names order "${event.orderId}" but carries no order and the source has no API`);
        } else {
          if (!orderId) throw new Error('give an order id, or --payload <file>');
          if (!src.api) throw new Error(`source "${sourceId}" has no API to read from; use --payload with a sample webhook body`);
          order = await src.api.fetchOrder(orderId, { now, log: rt.log });
          if (!order) throw new Error(`${sourceId} has no order "${orderId}"`);
        }
        console.log(JSON.stringify(order, null, 2));
        printEvaluation(await buildEngine(rt, new Map(), new Map(), () => undefined).reconciler.explainOrders([order], now), now);
      } finally {
        await secrets.close();
        await rt.store.close();
      }
    });

  const grants = program.command('grants').description('grants wogate holds');
  grants
    .command('list')
    .description('list grants')
    .addOption(configOption())
    .option('-s, --state <states>', 'comma-separated: pending,active,revoking,revoked', 'pending,active,revoking')
    .option('--json', 'machine-readable output')
    .action(async (o: { config: string; state: string; json?: boolean }) => {
      const rt = await openRuntime({ configFile: o.config, log: silentLogger });
      try {
        const states = o.state.split(',') as ('pending' | 'active' | 'revoking' | 'revoked')[];
        const list = await rt.store.listGrants({ states });
        if (o.json) return console.log(JSON.stringify(list, null, 2));
        if (list.length === 0) return console.log('no grants');
        for (const g of list) {
          const r = g.resource;
          console.log(`${g.id}  ${g.state.padEnd(8)} ${g.orderKey}  ${g.vendorId}/${g.technicianId}  ${describeResource(r)} via ${g.targetId}  until ${g.validUntil.toISOString()}${g.lastError ? `  last error: ${g.lastError}` : ''}`);
        }
      } finally {
        await rt.store.close();
      }
    });
  grants
    .command('revoke <id>')
    .description('revoke one grant now and keep it off even if policy would allow it')
    .addOption(configOption())
    .requiredOption('-r, --reason <text>', 'why (goes into the audit log)')
    .option('--actor <name>', 'who is revoking', process.env.SUDO_USER ?? process.env.USER ?? 'cli')
    .action(async (id: string, o: { config: string; reason: string; actor: string }) => {
      const { grant: g, stillHeldBy } = await withActions(o.config, (d) => revokeGrant(d, id, `cli:${o.actor}`, o.reason, {}));
      if (g.state !== 'revoked') {
        console.log(`revoke of ${id} recorded but the target call failed (${g.lastError ?? 'unknown error'}); the daemon keeps retrying it`);
        process.exitCode = 1;
      } else console.log(`revoked ${id}`);
      const remains = remainsText(stillHeldBy);
      if (remains) console.log(`${remains}: to take the access itself away, run wogate access block --grant ${id} --reason <why>`);
    });
  accessCommands(program, configOption);

  const audit = program.command('audit').description('the keyed, checkpointed audit log');
  audit
    .command('verify')
    .description('check the keyed chain, its head and the signed checkpoints: no record changed, removed, inserted, reordered or cut off, no checkpoint removed; exit 1 naming the check that failed')
    .addOption(configOption())
    .option('--json', 'print the result as JSON')
    .action(async (o: { config: string; json?: boolean }) => {
      const rt = await openRuntime({ configFile: o.config, log: silentLogger });
      try {
        const r = await rt.audit.verify();
        if (!r.ok) process.exitCode = 1;
        if (o.json) console.log(JSON.stringify(r, null, 2));
        else if (r.ok) {
          const unkeyed = r.unkeyed ? ` (${r.unkeyed} from before the audit key, SHA-256 only)` : '';
          console.log(`ok: ${r.count} record(s)${unkeyed}, ${r.checkpoints} checkpoint(s); chain, head and checkpoints intact`);
        } else {
          for (const p of r.problems) console.log(`BROKEN (check: ${p.check}) at record ${p.seq}: ${p.problem}`);
        }
      } finally {
        await rt.store.close();
      }
    });

  addTokenCommands(program, configOption);

  return program;
}

function printEvaluation(ev: Evaluation, now: Date): void {
  console.log(`at ${now.toISOString()}: ${ev.grants.length} grant(s), ${ev.denials.length} denial(s)`);
  for (const g of ev.grants) {
    const r = g.resource;
    const state = g.validFrom.getTime() > now.getTime() ? 'opens later' : 'open';
    console.log(`  GRANT ${g.orderKey} ${g.technicianId} -> ${g.assetId} ${describeResource(r)} on ${g.targetId}, ${g.validFrom.toISOString()} .. ${g.validUntil.toISOString()} (${state}${g.capped ? ', capped by maxDuration' : ''}) by ${g.rule}`);
  }
  for (const d of ev.denials) {
    console.log(`  DENY  ${d.orderKey}${d.technicianId ? ` ${d.technicianId}` : ''}${d.assetId ? ` -> ${d.assetId}` : ''}: ${d.code}: ${d.reason}`);
  }
}

export async function main(argv: string[]): Promise<void> {
  try {
    await buildCli().parseAsync(argv);
  } catch (e) {
    const err = e as { code?: string; exitCode?: number };
    if (typeof err.code === 'string' && err.code.startsWith('commander.')) {
      process.exitCode = err.exitCode ?? 1;
      return;
    }
    console.error(`wogate: ${isWogateError(e) ? `${e.code}: ${e.message}` : e instanceof Error ? e.message : String(e)}`);
    process.exitCode = 2;
  }
}

await main(process.argv);
