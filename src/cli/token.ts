import { Option, type Command } from 'commander';
import { parseDuration, WogateError } from '../domain/index.js';
import { InvalidIdError } from '../domain/ids.js';
import { SCOPES, createToken, describeToken, rotateToken, type Scope } from '../api/tokens.js';
import { silentLogger } from '../log.js';
import type { ApiToken } from '../store/store.js';
import { openRuntime } from './runtime.js';

/**
 * `wogate token create|list|revoke|rotate`: scoped API tokens, against the store the daemon uses.
 * The daemon reads the token's row on every request, so a revoke or rotate here takes effect on the
 * token's next call to a running daemon. Secrets are printed once, to stdout, and never stored.
 */

const operator = () => `cli:${process.env.SUDO_USER ?? process.env.USER ?? 'cli'}`;

async function withRuntime<T>(configFile: string, f: (rt: Awaited<ReturnType<typeof openRuntime>>) => Promise<T>): Promise<T> {
  const rt = await openRuntime({ configFile, log: silentLogger });
  try {
    return await f(rt);
  } finally {
    await rt.store.close();
  }
}

function line(t: ApiToken, now: Date): string {
  const state = t.revokedAt ? `revoked ${t.revokedAt.toISOString()}` : t.expiresAt && t.expiresAt <= now ? 'expired' : 'live';
  return [
    t.id, t.name, `owner=${t.owner ?? '-'}`, `scopes=${t.scopes.join(',')}`, `created=${t.createdAt.toISOString()}`,
    `expires=${t.expiresAt?.toISOString() ?? 'never'}`, `last-used=${t.lastUsedAt?.toISOString() ?? 'never'}`, state,
  ].join('  ');
}

/** Added with program.command() so that it inherits the program's settings (exitOverride). */
export function addTokenCommands(program: Command, configOption: () => Option): void {
  const token = program.command('token').description('scoped API tokens for the admin API');
  token
    .command('create')
    .description('create a token; it is printed once and stored only as a hash')
    .addOption(configOption())
    .requiredOption('-n, --name <name>', 'what it is for (e.g. the laptop or integration using it)')
    .option('-o, --owner <person>', 'the person holding it, as auth.oidc.personClaim names them; needed for break-glass and reinstating vendors')
    .addOption(new Option('-s, --scope <scope...>', 'one or more scopes').choices([...SCOPES]).makeOptionMandatory())
    .option('--expires <duration>', 'lifetime, e.g. 90d (default: 90d)', '90d')
    .action(async (o: { config: string; name: string; owner?: string; scope: Scope[]; expires: string }) => {
      await withRuntime(o.config, async (rt) => {
        const now = new Date();
        const expiresAt = new Date(now.getTime() + parseDuration(o.expires, '--expires'));
        let created;
        try {
          created = await createToken(rt.store, o.name, o.scope, now, { expiresAt, ...(o.owner !== undefined ? { owner: o.owner, ownerField: '--owner' } : {}) });
        } catch (e) {
          if (e instanceof InvalidIdError) throw new WogateError('BAD_REQUEST', e.message);
          throw e;
        }
        const { token: t, record } = created;
        await rt.audit.append({ actor: operator(), action: 'token.created', subject: record.id, details: { name: o.name, owner: record.owner ?? null, scopes: o.scope, expiresAt: expiresAt.toISOString() } });
        console.log(t);
        console.error(`token ${record.id} for "${o.name}"${record.owner ? ` held by ${record.owner}` : ' (no owner: it can\'t request or approve break-glass)'} with scopes ${o.scope.join(', ')}, expires ${expiresAt.toISOString()}; it is not shown again`);
      });
    });
  token
    .command('list')
    .description('list tokens: id, name, owner, scopes, created, expires, last used (never the secret)')
    .addOption(configOption())
    .option('--json', 'machine-readable output')
    .action(async (o: { config: string; json?: boolean }) => {
      await withRuntime(o.config, async (rt) => {
        const list = await rt.store.listTokens();
        if (o.json) return console.log(JSON.stringify(list.map(describeToken), null, 2));
        if (list.length === 0) return console.log('no tokens');
        const now = new Date();
        for (const t of list) console.log(line(t, now));
      });
    });
  token
    .command('revoke <id>')
    .description('revoke a token now: its next request to a running daemon gets 401')
    .addOption(configOption())
    .requiredOption('-r, --reason <text>', 'why (goes into the audit log)')
    .action(async (id: string, o: { config: string; reason: string }) => {
      await withRuntime(o.config, async (rt) => {
        const t = await rt.store.getToken(id);
        if (!t) throw new WogateError('NOT_FOUND', `no token "${id}" in ${rt.config.store.path} (see wogate token list)`);
        if (!(await rt.store.revokeToken(id, new Date()))) throw new WogateError('STORE_CONFLICT', `token ${id} is already revoked`);
        await rt.audit.append({ actor: operator(), action: 'token.revoked', subject: id, details: { name: t.name, owner: t.owner ?? null, reason: o.reason } });
        console.log(`revoked ${id} ("${t.name}")`);
      });
    });
  token
    .command('rotate <id>')
    .description('give a token a new secret (same id, name, owner, scopes, expiry); the old secret stops working at once')
    .addOption(configOption())
    .action(async (id: string, o: { config: string }) => {
      await withRuntime(o.config, async (rt) => {
        const before = await rt.store.getToken(id);
        if (!before) throw new WogateError('NOT_FOUND', `no token "${id}" in ${rt.config.store.path} (see wogate token list)`);
        const rotated = await rotateToken(rt.store, id);
        if (!rotated) throw new WogateError('STORE_CONFLICT', `token ${id} is revoked; create a new one instead`);
        await rt.audit.append({ actor: operator(), action: 'token.rotated', subject: id, details: { name: before.name, owner: before.owner ?? null } });
        console.log(rotated.token);
        console.error(`token ${id} ("${before.name}") has a new secret; the old one no longer works; it is not shown again`);
      });
    });
}
