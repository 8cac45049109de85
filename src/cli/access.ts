import type { Command, Option } from 'commander';
import { blockAccess, liftAccess, accessBlocks, type ActionDeps, type Holder } from '../api/actions.js';
import { createLogger, silentLogger } from '../log.js';
import { buildEngine, buildTargets, openRuntime, openSecrets } from './runtime.js';

/** Runs `fn` with the engine wired as the daemon wires it (targets initialised), then closes everything. */
export async function withActions<T>(configFile: string, fn: (d: ActionDeps) => Promise<T>): Promise<T> {
  const rt = await openRuntime({ configFile, log: createLogger({ level: 'warn', format: 'text' }) });
  const secrets = await openSecrets(rt.config, process.env, rt.log).catch(async (e: unknown) => {
    await rt.store.close();
    throw e;
  });
  const targets = buildTargets(rt.config, process.env, secrets.vault);
  try {
    for (const t of targets.values()) await t.init({ now: new Date(), log: rt.log });
    const { reconciler } = buildEngine(rt, targets, new Map(), () => undefined);
    return await fn({ store: rt.store, reconciler, world: () => rt.world(), audit: rt.audit, clock: rt.clock, suspensions: rt.suspensions });
  } finally {
    for (const t of targets.values()) await t.close().catch(() => undefined);
    await secrets.close();
    await rt.store.close();
  }
}

/** "access remains through order X (grant Y, until Z)", or undefined when nothing holds the entry. */
export function remainsText(holders: readonly Holder[]): string | undefined {
  if (holders.length === 0) return undefined;
  return `access remains through ${holders.map((h) => `order ${h.order} (grant ${h.grant}, ${h.technician}, until ${h.validUntil.toISOString()})`).join(', ')}`;
}

const actorDefault = process.env.SUDO_USER ?? process.env.USER ?? 'cli';

/** `wogate access block|lift|list`: an operator's block on one technician's access to one resource, for every order. */
export function accessCommands(program: Command, configOption: () => Option): void {
  const access = program.command('access').description('block a technician\'s access to a resource for every work order, until lifted');
  access
    .command('block')
    .description('revoke the access now, on every order, and grant it to nobody\'s order until lifted')
    .addOption(configOption())
    .option('-g, --grant <id>', 'take the technician, target and resource from this grant')
    .option('-t, --target <id>', 'target id (with --technician and --resource)')
    .option('--technician <id>', 'technician id')
    .option('--resource <key>', 'resource key as grants show it (net:…, group:…, pam:…, badge:…, cert:…)')
    .requiredOption('-r, --reason <text>', 'why (goes into the audit log)')
    .option('--actor <name>', 'who is blocking', actorDefault)
    .option('--json', 'machine-readable output')
    .action(async (o: { config: string; grant?: string; target?: string; technician?: string; resource?: string; reason: string; actor: string; json?: boolean }) => {
      const body = o.grant !== undefined ? { grantId: o.grant, reason: o.reason } : { targetId: o.target, technicianId: o.technician, resourceKey: o.resource, reason: o.reason };
      const r = await withActions(o.config, (d) => blockAccess(d, body, `cli:${o.actor}`, {}));
      if (o.json) return console.log(JSON.stringify(r, null, 2));
      console.log(`blocked ${r.block.technicianId} on ${r.block.targetId} ${r.block.resourceKey} for all orders (block ${r.block.id})`);
      for (const g of r.revoked) console.log(`  grant ${g.grant} of order ${g.order}: ${g.state}`);
      const failed = r.revoked.filter((g) => g.state !== 'revoked');
      if (failed.length) {
        console.log(`${failed.length} revoke(s) failed at the target; the daemon keeps retrying them`);
        process.exitCode = 1;
      }
      const remains = remainsText(r.stillHeldBy);
      if (remains) console.log(`note: the target entry is shared with another technician: ${remains}`);
    });
  access
    .command('lift <blockId>')
    .description('lift a block: open orders authorise the access again at the next pass')
    .addOption(configOption())
    .requiredOption('-r, --reason <text>', 'why (goes into the audit log)')
    .option('--actor <name>', 'who is lifting', actorDefault)
    .action(async (id: string, o: { config: string; reason: string; actor: string }) => {
      const b = await withActions(o.config, (d) => liftAccess(d, id, `cli:${o.actor}`, o.reason, {}));
      console.log(`lifted block ${b.id}: ${b.technicianId} on ${b.targetId} ${b.resourceKey}`);
    });
  access
    .command('list')
    .description('access blocked for all orders')
    .addOption(configOption())
    .option('--json', 'machine-readable output')
    .action(async (o: { config: string; json?: boolean }) => {
      const rt = await openRuntime({ configFile: o.config, log: silentLogger });
      try {
        const list = await accessBlocks(rt);
        if (o.json) return console.log(JSON.stringify(list, null, 2));
        if (list.length === 0) return console.log('no access is blocked');
        for (const b of list) console.log(`${b.id}  ${b.technicianId}  ${b.resourceKey} on ${b.targetId}  by ${b.by} at ${b.at}: ${b.reason}`);
      } finally {
        await rt.store.close();
      }
    });
}
