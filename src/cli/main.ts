#!/usr/bin/env node
import fs from 'node:fs';
import { Command, InvalidArgumentError, Option } from 'commander';
import { describeResource, evaluate, isWogateError, parseDuration, type Evaluation } from '../domain/index.js';
import { SCOPES, createToken, type Scope } from '../api/tokens.js';
import { loadConfig, targetHolds } from '../config/config.js';
import { loadPolicies } from '../config/policy-loader.js';
import { loadRegister } from '../config/register-loader.js';
import { createLogger, silentLogger } from '../log.js';
import { buildEngine, buildSources, buildTargets, openRuntime, openSecrets, refuseAmbiguousTechnicians } from './runtime.js';
import { serve } from './serve.js';

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
    .action((o: { config: string; dir?: string }) => {
      const config = loadConfig(o.config);
      const { policySet, warnings } = loadPolicies(o.dir ?? config.policies.dir, { knownTargets: targetHolds(config) });
      const register = loadRegister(config.register.assets, config.register.vendors);
      refuseAmbiguousTechnicians(config, register.vendors.values());
      for (const w of warnings) console.log(`warning: ${w}`);
      const rules = policySet.policies.reduce((n, p) => n + p.rules.length, 0);
      console.log(`ok: ${policySet.policies.length} policy file(s), ${rules} rule(s), ${register.assets.size} asset(s), ${register.vendors.size} vendor(s)`);
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
        const { policySet, register } = rt.world();
        let orders = await rt.store.listOrders(new Date(now.getTime() - rt.config.engine.lookbackMs));
        if (o.order) {
          const [source, ...rest] = o.order.split('/');
          const one = await rt.store.getOrder(source ?? '', rest.join('/'));
          if (!one) throw new Error(`no work order "${o.order}" in ${rt.config.store.path} (expected <source>/<id>)`);
          orders = [one];
        }
        const ev = evaluate(orders, register, policySet, now);
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
        const { policySet, register } = rt.world();
        printEvaluation(evaluate([order], register, policySet, now), now);
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
      const rt = await openRuntime({ configFile: o.config, log: createLogger({ level: 'warn', format: 'text' }) });
      const secrets = await openSecrets(rt.config, process.env, rt.log).catch(async (e: unknown) => {
        await rt.store.close();
        throw e;
      });
      const targets = buildTargets(rt.config, process.env, secrets.vault);
      try {
        for (const t of targets.values()) await t.init({ now: new Date(), log: rt.log });
        const { reconciler } = buildEngine(rt, targets, new Map(), () => undefined);
        const g = await reconciler.revokeNow(id, `cli:${o.actor}`, o.reason);
        if (!g) throw new Error(`no grant "${id}"`);
        if (g.state !== 'revoked') {
          console.log(`revoke of ${id} recorded but the target call failed (${g.lastError ?? 'unknown error'}); the daemon keeps retrying it`);
          process.exitCode = 1;
        } else console.log(`revoked ${id}`);
      } finally {
        for (const t of targets.values()) await t.close().catch(() => undefined);
        await secrets.close();
        await rt.store.close();
      }
    });

  const audit = program.command('audit').description('the hash-chained audit log');
  audit
    .command('verify')
    .description('check that no audit record was changed, removed, inserted or reordered; exit 1 if one was')
    .addOption(configOption())
    .action(async (o: { config: string }) => {
      const rt = await openRuntime({ configFile: o.config, log: silentLogger });
      try {
        const r = await rt.audit.verify();
        if (r.ok) console.log(`ok: ${r.count} record(s), chain intact`);
        else {
          console.log(`BROKEN at record ${r.seq}: ${r.problem}`);
          process.exitCode = 1;
        }
      } finally {
        await rt.store.close();
      }
    });

  const token = program.command('token').description('scoped API tokens for the admin API');
  token
    .command('create')
    .description('create a token; it is printed once and stored only as a hash')
    .addOption(configOption())
    .requiredOption('-n, --name <name>', 'who or what will use it')
    .addOption(new Option('-s, --scope <scope...>', 'one or more scopes').choices([...SCOPES]).makeOptionMandatory())
    .option('--expires <duration>', 'lifetime, e.g. 90d (default: 90d)', '90d')
    .action(async (o: { config: string; name: string; scope: Scope[]; expires: string }) => {
      const rt = await openRuntime({ configFile: o.config, log: silentLogger });
      try {
        const now = new Date();
        const expiresAt = new Date(now.getTime() + parseDuration(o.expires, '--expires'));
        const { token: t, record } = await createToken(rt.store, o.name, o.scope, now, expiresAt);
        await rt.audit.append({ actor: `cli:${process.env.SUDO_USER ?? process.env.USER ?? 'cli'}`, action: 'token.created', subject: record.id, details: { name: o.name, scopes: o.scope, expiresAt: expiresAt.toISOString() } });
        console.log(t);
        console.error(`token ${record.id} for "${o.name}" with scopes ${o.scope.join(', ')}, expires ${expiresAt.toISOString()}; it is not shown again`);
      } finally {
        await rt.store.close();
      }
    });

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
