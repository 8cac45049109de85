import fs from 'node:fs';
import { expect } from 'chai';
import { createToken } from '../../src/api/tokens.js';
import { serve, type Daemon } from '../../src/cli/serve.js';
import { loadConfig } from '../../src/config/config.js';
import type { BreakGlassRequest } from '../../src/domain/breakglass.js';
import { silentLogger } from '../../src/log.js';
import type { AuditRecord } from '../../src/store/store.js';
import { exampleConfig, recordingGateway, until } from '../helpers/daemon.js';
import { configRefusal } from '../helpers/breakglass.js';
import { tmpDir } from '../helpers/world.js';
import { MaximoSim } from '../sims/maximo.js';

const H = 3_600_000;
const JUSTIFICATION = 'Chlorinator 2 PLC faulted at 07:40; dosing is on manual and the vendor must reload logic.';
const BODY = { vendorId: 'acme-controls', technicianIds: ['tech-jdoe'], assetIds: ['PLC-CL2-01'], justification: JUSTIFICATION, durationMinutes: 600 };

/**
 * A real daemon (SQLite, the example policy's emergency-critical rule, the http target against a
 * recording gateway, the Maximo simulator as review source) driven through the admin API with
 * wgt_ tokens. The daemon's clock runs `offset` ahead of real time so the cap and the review due
 * date can be reached without waiting.
 */
describe('break-glass through the admin API', function () {
  let daemon: Daemon;
  let sim: MaximoSim;
  let gateway: Awaited<ReturnType<typeof recordingGateway>>;
  let dir: string;
  let offset = 0;
  let boot: () => Promise<Daemon>;
  const tokens: Record<string, string> = {};

  const call = async (token: string, method: string, path: string, body?: unknown) => {
    const res = await fetch(`${daemon.url}/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : {}) as { request?: BreakGlassRequest; requests?: (BreakGlassRequest & { reviewOverdue: boolean })[]; error?: { code: string; message: string } } };
  };
  const audit = async (): Promise<AuditRecord[]> => daemon.runtime.store.readAudit(0, 10_000);
  const stored = async (id: string) => (await daemon.runtime.store.getBreakGlass(id)) as BreakGlassRequest;
  const requestOne = async (): Promise<string> => {
    const r = await call(tokens.alice as string, 'POST', '/break-glass', BODY);
    expect(r.status, JSON.stringify(r.body)).to.equal(201);
    return (r.body.request as BreakGlassRequest).id;
  };

  before(async () => {
    dir = tmpDir();
    sim = await MaximoSim.start();
    gateway = await recordingGateway();
    const auth = sim.hookAuth;
    if (auth.kind !== 'basic') throw new Error('the Maximo simulator defaults to basic auth');
    const file = exampleConfig(dir, (c) => {
      c.sources[0].webhook.secrets = ['env:TEST_HOOK_SECRET'];
      c.targets[0].http.baseUrl = gateway.url;
      c.sources.push({
        id: 'maximo-1',
        kind: 'maximo',
        maximo: { baseUrl: sim.url, apiKey: 'env:TEST_MX_API_KEY', webhook: { basic: [{ username: auth.username, password: 'env:TEST_MX_HOOK_PASSWORD' }] } },
        // Rare schedules: the test's own calls are the only ones after the first resync.
        poll: { incremental: '0 0 1 1 *', fullResync: '0 0 1 1 *' },
      });
      c.breakGlass = { maxDuration: '1h', reviewDue: '24h', reviewSource: 'maximo-1', reviewSite: 'BEDFORD' };
    });
    const env = { ...process.env, TEST_HOOK_SECRET: `whsec_${Buffer.alloc(32, 7).toString('base64')}`, TEST_MX_API_KEY: sim.apiKey, TEST_MX_HOOK_PASSWORD: auth.password };
    boot = () => serve({ configFile: file, env, log: silentLogger, clock: () => new Date(Date.now() + offset) });
    daemon = await boot();
    await until(() => sim.requests.some((r) => r.query.includes('historyflag')), 'the first Maximo resync');
    const now = new Date();
    // Two tokens of one owner are one person, whatever their names: alice's second token must not approve her request.
    tokens.alice = (await createToken(daemon.runtime.store, 'alice', ['breakglass', 'grants:read'], now, { owner: 'alice' })).token;
    tokens.alice2 = (await createToken(daemon.runtime.store, 'night-shift-laptop', ['breakglass'], now, { owner: 'Alice' })).token;
    tokens.bob = (await createToken(daemon.runtime.store, 'bob', ['breakglass', 'grants:read'], now, { owner: 'bob' })).token;
    tokens.ownerless = (await createToken(daemon.runtime.store, 'old-integration', ['breakglass', 'grants:read'], now)).token;
    tokens.viewer = (await createToken(daemon.runtime.store, 'soc-dashboard', ['grants:read'], now)).token;
  });

  after(async () => {
    await daemon?.stop();
    await sim?.close();
    await gateway?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a request whose justification is under 20 characters (400), grants nothing and audits the refusal', async () => {
    const r = await call(tokens.alice as string, 'POST', '/break-glass', { ...BODY, justification: 'PLC is down' });
    expect(r.status).to.equal(400);
    expect(r.body.error?.code).to.equal('BAD_REQUEST');
    expect(r.body.error?.message).to.contain('justification');
    expect(gateway.open.size).to.equal(0);
    const refused = (await audit()).filter((a) => a.action === 'breakglass.refused');
    expect(refused.at(-1)).to.deep.include({ actor: 'token:alice' });
    expect(refused.at(-1)?.details).to.include({ step: 'request', code: 'BAD_REQUEST' });
  });

  it('refuses a token without the breakglass scope (403)', async () => {
    const r = await call(tokens.viewer as string, 'POST', '/break-glass', BODY);
    expect(r.status).to.equal(403);
  });

  it('refuses the requester approving their own request (403), also through a second token of another name held by the same owner', async () => {
    const id = await requestOne();
    for (const t of [tokens.alice, tokens.alice2] as string[]) {
      const r = await call(t, 'POST', `/break-glass/${id}/approve`);
      expect(r.status).to.equal(403);
      expect(r.body.error?.message).to.contain('two-person rule');
    }
    expect((await stored(id)).state).to.equal('requested');
    expect(gateway.open.size).to.equal(0);
    const refused = (await audit()).filter((a) => a.action === 'breakglass.refused' && a.subject === id);
    expect(refused).to.have.length(2);
    await call(tokens.alice as string, 'POST', `/break-glass/${id}/close`, { reason: 'withdrawn: test' });
  });

  it('refuses a token without an owner to request or approve (403 AUTH_NO_PERSON), and lets it list', async () => {
    const asked = await call(tokens.ownerless as string, 'POST', '/break-glass', BODY);
    expect(asked.status).to.equal(403);
    expect(asked.body.error?.code).to.equal('AUTH_NO_PERSON');
    expect(asked.body.error?.message).to.contain('--owner');
    const id = await requestOne();
    const approved = await call(tokens.ownerless as string, 'POST', `/break-glass/${id}/approve`);
    expect(approved.status).to.equal(403);
    expect(approved.body.error?.code).to.equal('AUTH_NO_PERSON');
    expect((await stored(id)).state).to.equal('requested');
    expect((await call(tokens.ownerless as string, 'GET', '/break-glass')).status).to.equal(200);
    const refused = (await audit()).filter((a) => a.action === 'breakglass.refused' && a.subject === id);
    expect(refused.at(-1)?.details).to.include({ step: 'approve', code: 'AUTH_NO_PERSON' });
    await call(tokens.alice as string, 'POST', `/break-glass/${id}/close`, { reason: 'withdrawn: test' });
  });

  let approvedId = '';

  it('opens access on the http target when a second operator approves, and revokes it on close, every step audited', async () => {
    const id = await requestOne();
    approvedId = id;
    const ok = await call(tokens.bob as string, 'POST', `/break-glass/${id}/approve`);
    expect(ok.status, JSON.stringify(ok.body)).to.equal(200);
    const req = ok.body.request as BreakGlassRequest;
    expect(req).to.include({ state: 'approved', approver: 'token:bob', requester: 'token:alice' });
    // 600 minutes asked, 1 h allowed.
    expect(new Date(req.window?.end as unknown as string).getTime() - new Date(req.window?.start as unknown as string).getTime()).to.equal(H);

    await until(async () => (await daemon.runtime.store.listGrants({ orderKey: `break-glass/${id}`, states: ['active'] })).length > 0, 'the break-glass grant to be active');
    const grants = await daemon.runtime.store.listGrants({ orderKey: `break-glass/${id}` });
    expect(grants.map((g) => g.targetId)).to.deep.equal(grants.map(() => 'demo-gateway'));
    expect(grants.every((g) => g.technicianId === 'tech-jdoe' && g.assetId === 'plc-cl2-01')).to.equal(true);
    expect(gateway.open.size).to.equal(grants.length);

    // Approving again is a conflict, not a second window.
    expect((await call(tokens.bob as string, 'POST', `/break-glass/${id}/approve`)).status).to.equal(409);

    const closed = await call(tokens.bob as string, 'POST', `/break-glass/${id}/close`, { reason: 'vendor finished, PLC back on auto' });
    expect(closed.status).to.equal(200);
    await until(() => gateway.open.size === 0, 'the break-glass access to be revoked');
    expect(gateway.requests.filter((r) => r.method === 'DELETE')).to.have.length(grants.length);
    const ids = new Set(grants.map((g) => g.id));
    // The target answers before the engine records the outcome.
    await until(async () => (await audit()).filter((a) => ids.has(a.subject) && a.action === 'grant.revoked').length === grants.length, 'the revokes to be audited');

    const trail = (await audit()).filter((a) => a.subject === id || a.details.order === `break-glass/${id}` || String(a.subject).includes(id));
    const actions = trail.map((a) => a.action);
    for (const step of ['breakglass.requested', 'breakglass.approved', 'breakglass.closed']) expect(actions, step).to.include(step);
    expect(actions.indexOf('breakglass.requested')).to.be.below(actions.indexOf('breakglass.approved'));
    expect(actions.indexOf('breakglass.approved')).to.be.below(actions.indexOf('breakglass.closed'));
    expect(trail.find((a) => a.action === 'breakglass.approved')?.actor).to.equal('token:bob');
    expect(trail.find((a) => a.action === 'breakglass.approved')?.details).to.include({ via: 'api' });
    const engine = (await audit()).filter((a) => ids.has(a.subject)).map((a) => a.action);
    expect(engine.filter((a) => a === 'grant.provisioned')).to.have.length(grants.length);
    expect(engine.filter((a) => a === 'grant.revoked')).to.have.length(grants.length);
    expect((await daemon.runtime.audit.verify()).ok).to.equal(true);
  });

  it('opens the post-event review work order in Maximo, due reviewDue after approval', async () => {
    await until(async () => (await stored(approvedId)).review?.state === 'open', 'the review order to be opened');
    const r = await stored(approvedId);
    const orderId = r.review?.orderId as string;
    expect(orderId).to.match(/^BEDFORD\//);
    expect(sim.created()).to.include(orderId);
    const record = sim.record(orderId) as Record<string, unknown>;
    expect(record.status).to.equal('WAPPR');
    expect(String(record.description)).to.contain(approvedId.slice(0, 20));
    expect(Date.parse(String(record.targcompdate))).to.equal(Math.floor((r.approvedAt as Date).getTime() / 1000) * 1000 + 24 * H);
    expect(sim.notes(orderId).join('\n')).to.contain(JUSTIFICATION);
    const opened = (await audit()).find((a) => a.action === 'breakglass.review_opened' && a.subject === approvedId);
    expect(opened?.details).to.include({ source: 'maximo-1', orderId });
  });

  it('revokes the access at the hard cap without anyone closing it', async () => {
    const id = await requestOne();
    expect((await call(tokens.bob as string, 'POST', `/break-glass/${id}/approve`)).status).to.equal(200);
    await until(() => gateway.open.size > 0, 'the break-glass access to open');
    offset += H + 1000;
    await daemon.breakGlass.tick();
    await until(() => gateway.open.size === 0, 'the access to be revoked at the cap');
    const r = await stored(id);
    expect(r).to.include({ state: 'closed', closedBy: 'wogate', closeReason: 'hard maximum duration reached' });
    const list = await call(tokens.alice as string, 'GET', '/break-glass');
    expect(list.body.requests?.find((x) => x.id === id)?.state).to.equal('closed');
    // Its review is opened all the same (and out of the way of the next test's planned CMMS failure).
    await until(async () => (await stored(id)).review?.state === 'open', 'the review of the capped request');
  });

  it('retries a review order the CMMS could not create, with backoff, until it is created', async () => {
    const id = await requestOne();
    sim.failNext(1, 503);
    expect((await call(tokens.bob as string, 'POST', `/break-glass/${id}/approve`)).status).to.equal(200);
    await until(async () => (await stored(id)).review?.attempts === 1, 'the first review attempt');
    const failed = (await stored(id)).review;
    expect(failed).to.include({ state: 'pending' });
    expect(failed?.lastError).to.contain('503');
    offset = (failed?.nextAttemptAt as Date).getTime() - Date.now() + 1000;
    await daemon.breakGlass.tick();
    expect((await stored(id)).review).to.include({ state: 'open', attempts: 2 });
    await call(tokens.bob as string, 'POST', `/break-glass/${id}/close`, { reason: 'done' });
  });

  it('raises an overdue alert (audit and metric) for a review Maximo has not closed, and records it closed once Maximo closes it', async () => {
    const r = await stored(approvedId);
    offset = (r.review?.dueAt as Date).getTime() - Date.now() + 1000;
    await daemon.breakGlass.tick();
    const overdue = (await audit()).filter((a) => a.action === 'breakglass.review_overdue' && a.subject === approvedId);
    expect(overdue).to.have.length(1);
    expect(overdue[0]?.details).to.include({ orderId: r.review?.orderId, source: 'maximo-1' });
    const metrics = await (await fetch(`${daemon.url}/metrics`)).text();
    expect(metrics).to.match(/wogate_alerts_total\{kind="breakglass_review_overdue"\} [1-9]/);
    const listed = await call(tokens.viewer as string, 'GET', '/break-glass');
    expect(listed.body.requests?.find((x) => x.id === approvedId)?.reviewOverdue).to.equal(true);

    // Raised once, not on every check.
    await daemon.breakGlass.tick();
    expect((await audit()).filter((a) => a.action === 'breakglass.review_overdue' && a.subject === approvedId)).to.have.length(1);

    sim.change(r.review?.orderId as string, { status: 'completed' });
    await daemon.breakGlass.tick();
    expect((await stored(approvedId)).review?.state).to.equal('done');
    const closed = (await audit()).find((a) => a.action === 'breakglass.review_closed' && a.subject === approvedId);
    expect(closed?.details).to.include({ status: 'completed', late: true });
  });

  it('closes, at start, an approved request whose cap passed while wogate was down, and revokes its access', async () => {
    const id = await requestOne();
    expect((await call(tokens.bob as string, 'POST', `/break-glass/${id}/approve`)).status).to.equal(200);
    await until(() => gateway.open.size > 0, 'the break-glass access to open');
    // Down across the cap: no timer of the old process can close it.
    await daemon.stop();
    offset += H + 1000;
    daemon = await boot();
    await until(() => gateway.open.size === 0, 'the access to be revoked after the restart');
    expect(await stored(id)).to.include({ state: 'closed', closedBy: 'wogate' });
  });
});

describe('breakGlass config', () => {
  let dir: string;
  before(() => {
    dir = tmpDir();
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  const load = (breakGlass: unknown, edit: (c: Record<string, unknown>) => void = () => undefined) =>
    loadConfig(exampleConfig(dir, (c) => {
      c.breakGlass = breakGlass;
      edit(c);
    }), { ...process.env, TEST_HOOK_SECRET: 'unused' });
  const refusal = configRefusal;

  it('reads the section, and leaves break-glass off without it', () => {
    expect(load({ maxDuration: '4h', reviewDue: '48h' }).breakGlass).to.deep.equal({ maxDurationMs: 4 * H, reviewDueMs: 48 * H });
    expect(load(undefined).breakGlass).to.equal(undefined);
  });

  it('refuses a maximum duration over 8h and a review due outside 24h to 72h', () => {
    expect(refusal(() => load({ maxDuration: '9h', reviewDue: '48h' }))).to.contain('/breakGlass/maxDuration');
    expect(refusal(() => load({ maxDuration: '4h', reviewDue: '12h' }))).to.contain('/breakGlass/reviewDue');
    expect(refusal(() => load({ maxDuration: '4h', reviewDue: '4d' }))).to.contain('/breakGlass/reviewDue');
  });

  it('refuses a review source that is not a configured source with an API', () => {
    expect(refusal(() => load({ maxDuration: '4h', reviewDue: '48h', reviewSource: 'demo-cmms' }))).to.contain('/breakGlass/reviewSource');
  });

  it('refuses a source named like the synthetic break-glass orders, which could forge them', () => {
    expect(refusal(() => load({ maxDuration: '4h', reviewDue: '48h' }, (c) => {
      (c.sources as { id: string }[])[0]!.id = 'break-glass';
      (c.demo as { source: string }).source = 'break-glass';
    }))).to.contain('reserved');
  });
});
