import { spawnSync } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import { expect } from 'chai';
import { createToken } from '../../src/api/tokens.js';
import { REPO, startDaemon, until, type TestDaemon } from '../helpers/daemon.js';

// API tokens managed with the real CLI against the store of a running daemon: list, rotate and
// revoke take effect on the token's next request, because the daemon reads the row every time.
describe('e2e: wogate token list | rotate | revoke against a running daemon', function () {
  this.timeout(180_000);
  let t: TestDaemon;
  let file: string;

  const wogate = (...args: string[]) => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(REPO, 'src/cli/main.ts'), ...args, '-c', file], {
      cwd: REPO, encoding: 'utf8', env: { ...process.env, TEST_HOOK_SECRET: t.secret }, timeout: 60_000,
    });
    return { code: r.status, out: r.stdout, err: r.stderr };
  };
  // A new connection per call: the CLI runs for seconds between calls, longer than the daemon keeps
  // an idle connection open, and a reused socket closing under the request would fail the test.
  const call = (bearer: string, method = 'GET', p = '/v1/grants', body?: unknown) =>
    new Promise<{ status: number; text: string; json: Record<string, unknown> & { error?: { code: string; message: string } } }>((resolve, reject) => {
      const req = http.request(`${t.daemon.url}${p}`, { method, agent: false, headers: { authorization: `Bearer ${bearer}`, ...(body ? { 'content-type': 'application/json' } : {}) } }, (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (c: string) => (text += c)).on('end', () => resolve({ status: res.statusCode ?? 0, text, json: text ? JSON.parse(text) : {} }));
      });
      req.on('error', reject);
      req.end(body ? JSON.stringify(body) : undefined);
    });

  before(async () => {
    t = await startDaemon();
    file = path.join(t.dir, 'wogate.yaml');
  });
  after(async () => {
    await t?.stop();
  });

  it('creates an owned token, lists it without its secret, rotates it and revokes it: each effective on the next call', async () => {
    const created = wogate('token', 'create', '-n', 'ci-laptop', '-o', 'Alice', '-s', 'grants:read', '--expires', '1d');
    expect(created.code, created.err).to.equal(0);
    const secret = created.out.trim();
    expect(secret).to.match(/^wgt_[0-9a-f]{12}_/);
    expect(created.err).to.contain('held by alice');
    const id = secret.slice(4, 16);
    expect((await call(secret)).status).to.equal(200);
    await until(async () => (await t.daemon.runtime.store.getToken(id))?.lastUsedAt !== undefined, 'the last use to be recorded');

    const listed = wogate('token', 'list', '--json');
    expect(listed.code, listed.err).to.equal(0);
    expect(listed.out).not.to.contain(secret.slice(17));
    const rows = JSON.parse(listed.out) as Record<string, unknown>[];
    const row = rows.find((r) => r.id === id) as Record<string, unknown>;
    expect(row).to.include({ name: 'ci-laptop', owner: 'alice', revokedAt: null });
    expect(row.scopes).to.deep.equal(['grants:read']);
    expect(row).to.have.all.keys('id', 'name', 'owner', 'scopes', 'createdAt', 'expiresAt', 'lastUsedAt', 'revokedAt');
    expect(row.lastUsedAt).to.be.a('string');
    expect(wogate('token', 'list').out).to.match(new RegExp(`^${id}  ci-laptop  owner=alice  scopes=grants:read  .* live$`, 'm'));

    const rotated = wogate('token', 'rotate', id);
    expect(rotated.code, rotated.err).to.equal(0);
    const fresh = rotated.out.trim();
    expect(fresh.slice(0, 17)).to.equal(`wgt_${id}_`);
    expect(fresh).not.to.equal(secret);
    const old = await call(secret);
    expect(old.status).to.equal(401);
    expect((await call(fresh)).status).to.equal(200);
    expect(await t.daemon.runtime.store.getToken(id)).to.include({ name: 'ci-laptop', owner: 'alice' });

    const revoked = wogate('token', 'revoke', id, '-r', 'laptop lost on site');
    expect(revoked.code, revoked.err).to.equal(0);
    const after = await call(fresh);
    expect(after.status).to.equal(401);
    expect(after.json.error?.message).to.contain('revoked');

    const again = wogate('token', 'revoke', id, '-r', 'laptop lost on site');
    expect(again.code).to.equal(2);
    expect(again.err).to.contain('already revoked');
    expect(wogate('token', 'rotate', id).err).to.contain('revoked');

    const trail = (await t.daemon.runtime.store.readAudit(0, 10_000)).filter((a) => a.subject === id).map((a) => a.action);
    expect(trail).to.deep.equal(['token.created', 'token.rotated', 'token.revoked']);
    for (const a of await t.daemon.runtime.store.readAudit(0, 10_000)) expect(JSON.stringify(a)).not.to.contain(fresh.slice(17));
  });

  it('refuses an owner that is not an id, naming --owner, and stores nothing', async () => {
    const before = (await t.daemon.runtime.store.listTokens()).length;
    const r = wogate('token', 'create', '-n', 'x', '-o', 'ali\u200bce', '-s', 'grants:read');
    expect(r.code).to.equal(2);
    expect(r.err).to.contain('--owner').and.contain('U+200B');
    expect((await t.daemon.runtime.store.listTokens()).length).to.equal(before);
  });

  it('lists and revokes tokens through the admin API (admin only), effective on the next call', async () => {
    const store = t.daemon.runtime.store;
    const admin = (await createToken(store, 'admin', ['admin'], new Date(), { owner: 'ada' })).token;
    const { token: victim, record } = await createToken(store, 'soc', ['grants:read'], new Date());
    expect((await call(victim)).status).to.equal(200);
    expect((await call(victim, 'GET', '/v1/tokens')).status).to.equal(403);
    const list = await call(admin, 'GET', '/v1/tokens');
    expect(list.status).to.equal(200);
    expect(list.text).not.to.contain(record.hash);
    expect((list.json.tokens as { id: string }[]).map((x) => x.id)).to.include(record.id);
    expect((await call(admin, 'POST', `/v1/tokens/${record.id}/revoke`, {})).status).to.equal(400);
    const r = await call(admin, 'POST', `/v1/tokens/${record.id}/revoke`, { reason: 'dashboard retired' });
    expect(r.status, r.text).to.equal(200);
    expect((await call(victim)).status).to.equal(401);
    expect((await call(admin, 'POST', `/v1/tokens/${record.id}/revoke`, { reason: 'twice' })).status).to.equal(409);
    const audit = (await store.readAudit(0, 10_000)).find((a) => a.action === 'token.revoked' && a.subject === record.id);
    expect(audit).to.deep.include({ actor: 'token:admin' });
    expect(audit?.details).to.include({ reason: 'dashboard retired', person: 'ada' });
  });
});
