import fs from 'node:fs';
import path from 'node:path';
import { Ajv } from 'ajv';
import { expect } from 'chai';
import { parse as parseYaml } from 'yaml';
import type { Resource } from '../../src/domain/index.js';
import { BEYONDTRUST_TARGET_SCHEMA, BeyondTrustTarget, beyondtrustTargetOptions, type BeyondTrustTargetOptions } from '../../src/targets/beyondtrust.js';
import { TargetError, type CallContext, type TargetGrant } from '../../src/targets/target.js';
import { BeyondTrustSim } from '../sims/beyondtrust.js';
import { PATIENT_MS, recordingLogger, sampleGrant, simulatedSetup, targetContract } from './target-contract.js';
import { configRefusal } from '../helpers/refusal.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const G1 = 'wogate PLC-1';
const G2 = 'wogate HMI-4';

function target(sim: BeyondTrustSim, o: Partial<BeyondTrustTargetOptions> = {}): BeyondTrustTarget {
  return new BeyondTrustTarget({
    id: 'pra', baseUrl: sim.url, clientId: sim.clientId, clientSecret: sim.clientSecret, groups: [G1, G2], timeoutMs: PATIENT_MS, ...o,
  });
}

targetContract('BeyondTrustTarget against the PRA simulator', async ({ secret }) => {
  const sim = await BeyondTrustSim.start({ clientSecret: secret });
  sim.addGroupPolicy(G1);
  sim.addGroupPolicy(G2);
  const t = (timeoutMs: number) => target(sim, { timeoutMs });
  const resource = (n: number): Resource => {
    const account = `vendor.tech${n}`;
    sim.ensureUser(account);
    return { kind: 'group', account, group: n % 2 ? G1 : G2 };
  };
  return simulatedSetup(t, sim, (o) => sampleGrant('pra', o, new Date(), resource));
});

describe('BeyondTrust PRA target against the simulator', function () {
  this.timeout(20_000);
  let sim: BeyondTrustSim;
  let t: BeyondTrustTarget;
  let log: ReturnType<typeof recordingLogger>;
  let gp1: number;
  let gp2: number;
  const ctx = (now = new Date()): CallContext => ({ now, log });
  const grant = (account: string, group = G1, o: Partial<TargetGrant> = {}): TargetGrant =>
    sampleGrant('pra', { resource: { kind: 'group', account, group }, ...o });

  async function failure(call: () => Promise<unknown>): Promise<TargetError> {
    const e = await call().then(() => undefined, (err: unknown) => err);
    expect(e, 'the call fails').to.be.instanceOf(TargetError);
    return e as TargetError;
  }

  beforeEach(async () => {
    log = recordingLogger();
    sim = await BeyondTrustSim.start();
    gp1 = sim.addGroupPolicy(G1);
    gp2 = sim.addGroupPolicy(G2);
    sim.addGroupPolicy('Standing vendors');
    t = target(sim);
    await t.init(ctx());
  });

  afterEach(async () => {
    await t.close();
    await sim.close();
    for (const line of log.lines) expect(line).not.to.include(sim.clientSecret);
  });

  it('fetches its token with HTTP Basic client credentials and a form body, then calls the API with Bearer', async () => {
    const [tok] = sim.requests.filter((r) => r.path === '/oauth2/token');
    expect(tok?.auth).to.equal('basic');
    expect(tok?.body).to.equal('grant_type=client_credentials');
    expect(sim.apiCalls().every((r) => r.auth === 'bearer')).to.equal(true);
    expect(sim.apiCalls('GET').map((r) => r.path)).to.include('/api/config/v1/group-policy');
  });

  it('adds the user to the group policy with exactly security_provider_id and user_id, then provisions it', async () => {
    const uid = sim.addUser('acme.tech1');
    sim.requests.length = 0;
    const ref = await t.provision(grant('acme.tech1'), ctx());

    const calls = sim.apiCalls().map((r) => `${r.method} ${r.path}`);
    expect(calls).to.deep.equal([
      'GET /api/config/v1/user',
      `GET /api/config/v1/group-policy/${gp1}/member`,
      `POST /api/config/v1/group-policy/${gp1}/member`,
      `GET /api/config/v1/group-policy/${gp1}/member`,
      `POST /api/config/v1/group-policy/${gp1}/provision`,
    ]);
    expect(sim.apiCalls()[0]?.query).to.deep.equal({ username: 'acme.tech1', per_page: '100', current_page: '1' });
    expect(sim.apiCalls('POST')[0]?.body).to.deep.equal({ security_provider_id: 1, user_id: uid });
    const [member] = sim.members(gp1);
    expect(ref).to.deep.equal({ groupPolicyId: gp1, memberId: member?.id, userId: uid });
    expect(sim.effectiveUsers(gp1)).to.deep.equal(['acme.tech1']);
    expect(sim.members(gp2)).to.deep.equal([]);
  });

  it('holds no expiry in PRA: nothing carries validUntil, nativeExpiry is false and list() reports no expiresAt', async () => {
    sim.addUser('acme.tech1');
    const g = grant('acme.tech1', G1, { validUntil: new Date(Date.now() + 7_200_000) });
    await t.provision(g, ctx());
    expect(t.nativeExpiry).to.equal(false);
    const sent = JSON.stringify(sim.apiCalls().map((r) => [r.query, r.body]));
    expect(sent).not.to.match(/expir|until|valid|end/i);
    const entries = await t.list(ctx());
    expect(entries).to.have.length(1);
    expect(entries[0]?.expiresAt).to.equal(undefined);
  });

  it('revokes by removing the member and provisioning, so the user loses the Jump Group', async () => {
    sim.addUser('acme.tech1');
    sim.addUser('acme.tech2');
    const g = grant('acme.tech1');
    const ref = await t.provision(g, ctx());
    await t.provision(grant('acme.tech2'), ctx());
    sim.requests.length = 0;
    await t.revoke(g, ref, ctx());
    expect(sim.apiCalls().map((r) => `${r.method} ${r.path}`)).to.deep.equal([
      'GET /api/config/v1/user',
      `GET /api/config/v1/group-policy/${gp1}/member`,
      `DELETE /api/config/v1/group-policy/${gp1}/member/${ref['memberId']}`,
      `POST /api/config/v1/group-policy/${gp1}/provision`,
    ]);
    expect(sim.effectiveUsers(gp1)).to.deep.equal(['acme.tech2']);
  });

  it('a revoke retried after the provision step failed still provisions the removal', async () => {
    sim.addUser('acme.tech1');
    const g = grant('acme.tech1');
    const ref = await t.provision(g, ctx());
    sim.answerNext('POST', /\/provision$/, 503, { message: 'Service temporarily unavailable' });
    const e = await failure(() => t.revoke(g, ref, ctx()));
    expect(e.retryable).to.equal(true);
    expect(sim.members(gp1), 'deleted').to.deep.equal([]);
    expect(sim.effectiveUsers(gp1), 'but not yet provisioned').to.deep.equal(['acme.tech1']);
    await t.revoke(g, ref, ctx());
    expect(sim.effectiveUsers(gp1)).to.deep.equal([]);
  });

  it('provisioning a window that has already ended removes the membership instead', async () => {
    sim.addUser('acme.tech1');
    const g = grant('acme.tech1');
    await t.provision(g, ctx());
    await t.update({ ...g, validUntil: new Date(Date.now() - 1_000) }, undefined, ctx());
    expect(sim.effectiveUsers(gp1)).to.deep.equal([]);
  });

  it('revokes by the ref\'s user id after the user was renamed in PRA', async () => {
    const uid = sim.addUser('acme.tech1');
    const g = grant('acme.tech1');
    const ref = await t.provision(g, ctx());
    sim.renameUser(uid, 'acme.tech1.old');
    await t.revoke(g, ref, ctx());
    expect(sim.effectiveUsers(gp1)).to.deep.equal([]);
  });

  it('a session refused with 401 fetches one new token and carries on', async () => {
    sim.addUser('acme.tech1');
    const before = sim.tokenRequests;
    sim.expireTokens();
    sim.requests.length = 0;
    await t.provision(grant('acme.tech1'), ctx());
    expect(sim.tokenRequests - before).to.equal(1);
    expect(sim.apiCalls().filter((r) => r.status === 401)).to.have.length(1);
    expect(sim.effectiveUsers(gp1)).to.deep.equal(['acme.tech1']);
  });

  it('fetches a new token before the old one expires, without waiting for a 401', async () => {
    const before = sim.tokenRequests;
    await t.list(ctx(new Date(Date.now() + 3_590_000)));
    expect(sim.tokenRequests - before).to.equal(1);
    expect(sim.apiCalls().filter((r) => r.status === 401)).to.have.length(0);
  });

  it('an API call refused with 401 again right after a fresh token is not retryable and names both causes PRA uses 401 for', async () => {
    sim.addUser('acme.tech1');
    const tokens = sim.tokenRequests;
    sim.answerNext('GET', /\/user$/, 401, { message: 'Access token is invalid' });
    sim.answerNext('GET', /\/user$/, 401, { message: 'Unrecognized query string parameter(s): username' });
    const e = await failure(() => t.provision(grant('acme.tech1'), ctx()));
    expect(e.retryable).to.equal(false);
    expect(e.message).to.include('401 right after a fresh login');
    expect(e.message).to.include('unknown query parameter or body field');
    expect(sim.tokenRequests - tokens).to.equal(1);
  });

  it('changes membership one call at a time when provisions run concurrently', async () => {
    const names = ['acme.a', 'acme.b', 'acme.c', 'acme.d'];
    for (const n of names) sim.addUser(n);
    sim.requests.length = 0;
    await Promise.all(names.map((n) => t.provision(grant(n), ctx())));
    expect(sim.effectiveUsers(gp1)).to.deep.equal(names);
    // Each add is followed by its provision before the next change starts.
    const posts = sim.apiCalls('POST').map((r) => r.path.split('/').pop());
    expect(posts).to.deep.equal(names.flatMap(() => ['member', 'provision']));
  });

  it('a disabled API account (the token endpoint answers 401) is not retryable', async () => {
    sim.addUser('acme.tech1');
    const tokens = sim.tokenRequests;
    sim.expireTokens();
    sim.accountEnabled = false;
    const e = await failure(() => t.provision(grant('acme.tech1'), ctx()));
    expect(e.retryable).to.equal(false);
    expect(e.message).to.include('/oauth2/token answered 401');
    expect(e.message).not.to.include(sim.clientSecret);
    expect(sim.tokenRequests - tokens).to.equal(1);
  });

  it('refuses to start with a wrong client secret, and the error does not show it', async () => {
    const bad = target(sim, { clientSecret: 'wrong-secret-0xdeadbeef' });
    const e = await failure(() => bad.init(ctx()));
    expect(e.retryable).to.equal(false);
    expect(e.message).to.include('invalid_client');
    expect(`${e.message} ${JSON.stringify(e.details)} ${e.stack}`).not.to.include('wrong-secret-0xdeadbeef');
    await bad.close();
  });

  it('refuses to start when a managed group policy does not exist, naming it', async () => {
    const bad = target(sim, { groups: [G1, 'wogate Missing'] });
    const e = await failure(() => bad.init(ctx()));
    expect(e.retryable).to.equal(false);
    expect(e.message).to.include('"wogate Missing"');
    await bad.close();
  });

  it('starts while PRA is unreachable and looks the group policies up on first use', async () => {
    const late = target(sim);
    sim.faults.failNext(1, 'server-error');
    await late.init(ctx());
    expect(log.lines.some((l) => l.includes('not reachable at start'))).to.equal(true);
    sim.addUser('acme.tech1');
    await late.provision(grant('acme.tech1'), ctx());
    expect(sim.effectiveUsers(gp1)).to.deep.equal(['acme.tech1']);
    await late.close();
  });

  it('a hand-added member of a managed policy shows in list() and revokeEntry removes it', async () => {
    const uid = sim.addUser('rogue.tech');
    const other = sim.addUser('standing.tech');
    const mid = sim.addMember(gp2, { security_provider_id: 1, user_id: uid });
    const dn = sim.addMember(gp2, { security_provider_id: 2, distinguished_name: 'CN=Vendors,OU=Groups,DC=corp,DC=example' });
    const outside = sim.policyId('Standing vendors');
    sim.addMember(outside, { security_provider_id: 1, user_id: other });

    const entries = await t.list(ctx());
    expect(entries).to.deep.include({ ref: { groupPolicyId: gp2, memberId: mid, userId: uid }, resource: { kind: 'group', account: 'rogue.tech', group: G2 } });
    expect(entries).to.deep.include({ ref: { groupPolicyId: gp2, memberId: dn } });
    expect(entries.some((e) => e.ref['groupPolicyId'] === outside), 'policies outside groups: are not listed').to.equal(false);

    for (const e of entries) await t.revokeEntry(e, ctx());
    expect(sim.effective(gp2)).to.deep.equal([]);
    expect(sim.effectiveUsers(outside)).to.deep.equal(['standing.tech']);
    expect(await t.list(ctx())).to.deep.equal([]);
    await failure(() => t.revokeEntry({ ref: { groupPolicyId: outside, memberId: 1 } }, ctx())).then((e) => expect(e.retryable).to.equal(false));
  });

  it('reads every page of a member list up to X-BT-Pagination-Last-Page', async () => {
    await sim.close();
    sim = await BeyondTrustSim.start({ maxPerPage: 5 });
    gp1 = sim.addGroupPolicy(G1);
    sim.addGroupPolicy(G2);
    await t.close();
    t = target(sim);
    for (let i = 0; i < 12; i++) sim.addMember(gp1, { security_provider_id: 1, user_id: sim.addUser(`standing${i}`) });
    sim.addUser('acme.tech1');
    const g = grant('acme.tech1');
    await t.provision(g, ctx());
    expect(sim.members(gp1)).to.have.length(13);
    expect(await t.list(ctx())).to.have.length(13);
    const pages = sim.apiCalls('GET').filter((r) => r.path.endsWith('/member')).map((r) => r.query['current_page']);
    expect(pages).to.include('3');
    await t.revoke(g, undefined, ctx());
    expect(sim.effectiveUsers(gp1)).not.to.include('acme.tech1');
    expect(sim.effectiveUsers(gp1)).to.have.length(12);
  });

  it('list() refuses a member list answered 200 with an error object rather than reporting no members', async () => {
    sim.addUser('acme.tech1');
    await t.provision(grant('acme.tech1'), ctx());
    sim.faults.failNext(1, 'error-in-200');
    const e = await failure(() => t.list(ctx()));
    expect(e.retryable).to.equal(true);
    expect(e.details?.['code']).to.equal('TARGET_RESPONSE_INVALID');
    expect(e.message).to.include('expected a JSON array');
  });

  it('a revoke facing a 200-with-error member list fails and leaves the member for the retry', async () => {
    sim.addUser('acme.tech1');
    const g = grant('acme.tech1');
    const ref = await t.provision(g, ctx());
    sim.answerNext('GET', /\/member$/, 200, { message: 'Your session has expired. Please log in again.' });
    const e = await failure(() => t.revoke(g, ref, ctx()));
    expect(e.retryable).to.equal(true);
    expect(e.message).to.include('Your session has expired');
    expect(sim.effectiveUsers(gp1)).to.deep.equal(['acme.tech1']);
    await t.revoke(g, ref, ctx());
    expect(sim.effectiveUsers(gp1)).to.deep.equal([]);
  });

  it('an unexpected answer shape leaves a retryable error that names the problem', async () => {
    sim.addUser('acme.tech1');
    sim.answerNext('GET', /\/member$/, 200, [{ user_id: 5, security_provider_id: 1 }]);
    const e = await failure(() => t.provision(grant('acme.tech1'), ctx()));
    expect(e.retryable).to.equal(true);
    expect(e.details?.['code']).to.equal('TARGET_RESPONSE_INVALID');
    expect(e.message).to.include('has no numeric id');

    sim.expireTokens();
    sim.answerNext('POST', /^\/oauth2\/token$/, 200, { token_type: 'Bearer', expires_in: 3600 });
    const e2 = await failure(() => t.list(ctx()));
    expect(e2.retryable).to.equal(true);
    expect(e2.message).to.include('no access_token');

    sim.answerNext('GET', /\/member$/, 200, [], { 'X-BT-Pagination-Last-Page': 'many' });
    const e3 = await failure(() => t.list(ctx()));
    expect(e3.retryable).to.equal(true);
    expect(e3.message).to.include('X-BT-Pagination-Last-Page');
  });

  it('a 422 from PRA is not retryable and carries PRA\'s field messages', async () => {
    sim.addUser('acme.tech1');
    sim.answerNext('POST', /\/member$/, 422, { message: 'The given data was invalid.', errors: { user_id: ['The user is disabled.'] } });
    const e = await failure(() => t.provision(grant('acme.tech1'), ctx()));
    expect(e.retryable).to.equal(false);
    expect(e.message).to.include('user_id: The user is disabled.');
    expect(e.details).to.include({ status: 422, reason: 'refused' });
  });

  it('a 422 because the user joined meanwhile counts as done', async () => {
    const uid = sim.addUser('acme.tech1');
    const mid = sim.addMember(gp1, { security_provider_id: 1, user_id: uid });
    // wogate's first read misses it (another writer added it just after); PRA then refuses the duplicate.
    sim.answerNext('GET', /\/member$/, 200, [], { 'X-BT-Pagination-Last-Page': '1' });
    const ref = await t.provision(grant('acme.tech1'), ctx());
    expect(ref).to.deep.equal({ groupPolicyId: gp1, memberId: mid, userId: uid });
    expect(sim.apiCalls('POST').find((r) => r.path.endsWith('/member'))?.status).to.equal(422);
    expect(sim.members(gp1)).to.have.length(1);
  });

  it('refuses grants it cannot place: unmanaged group, unknown user, ambiguous user, different spelling', async () => {
    sim.addUser('acme.tech1');
    const unmanaged = await failure(() => t.provision(grant('acme.tech1', 'Standing vendors'), ctx()));
    expect(unmanaged.retryable).to.equal(false);
    expect(unmanaged.message).to.include('not in this target\'s groups');
    await t.revoke(grant('acme.tech1', 'Standing vendors'), undefined, ctx());

    const missing = await failure(() => t.provision(grant('nobody'), ctx()));
    expect(missing.retryable).to.equal(false);
    expect(missing.details?.['reason']).to.equal('no_such_user');

    sim.addUser('twin', { securityProviderId: 1 });
    sim.addUser('twin', { securityProviderId: 2 });
    const twin = await failure(() => t.provision(grant('twin'), ctx()));
    expect(twin.retryable).to.equal(false);
    expect(twin.message).to.include('set securityProviderId');
    const scoped = target(sim, { securityProviderId: 2 });
    await scoped.provision(grant('twin'), ctx());
    expect(sim.members(gp1).map((m) => m.security_provider_id)).to.deep.equal([2]);
    await scoped.close();

    const spelled = await failure(() => t.provision(grant('ACME.tech1'), ctx()));
    expect(spelled.retryable).to.equal(false);
    expect(spelled.message).to.include('"acme.tech1"');
  });

  it('finds a managed group policy again when it was recreated under a new id', async () => {
    sim.addUser('acme.tech1');
    sim.deleteGroupPolicy(gp1);
    const fresh = sim.addGroupPolicy(G1);
    await t.provision(grant('acme.tech1'), ctx());
    expect(sim.effectiveUsers(fresh)).to.deep.equal(['acme.tech1']);
    sim.deleteGroupPolicy(fresh);
    await t.revoke(grant('acme.tech1'), undefined, ctx());
  });

  it('a 403 (no Configuration API permission) is not retryable', async () => {
    sim.addUser('acme.tech1');
    sim.permConfiguration = false;
    const e = await failure(() => t.provision(grant('acme.tech1'), ctx()));
    expect(e.retryable).to.equal(false);
    expect(e.details?.['status']).to.equal(403);
  });
});

describe('BeyondTrust PRA target config', () => {
  const block = { baseUrl: 'https://access.example.com', clientId: 'abc123', clientSecret: 's3cret', groups: [G1] };

  const configError = (b: Record<string, unknown>): string => configRefusal(() => beyondtrustTargetOptions('pra', b));

  it('turns a block into options, durations parsed', () => {
    expect(beyondtrustTargetOptions('pra', { ...block, timeout: '5s', tokenRefreshMargin: '2m', securityProviderId: 3 })).to.deep.equal({
      id: 'pra', baseUrl: 'https://access.example.com', clientId: 'abc123', clientSecret: 's3cret', groups: [G1],
      timeoutMs: 5_000, tokenRefreshMarginMs: 120_000, securityProviderId: 3,
    });
  });

  it('rejects bad blocks with a message naming the field', () => {
    expect(configError({ ...block, baseUrl: 'https://access.example.com/api/config/v1' })).to.include('beyondtrust.baseUrl');
    expect(configError({ ...block, groups: [G1, G1.toUpperCase()] })).to.include('beyondtrust.groups[1]');
    expect(configError({ ...block, groups: [' padded'] })).to.include('beyondtrust.groups[0]');
    expect(configError({ ...block, clientId: 'a:b' })).to.include('beyondtrust.clientId');
    expect(configError({ ...block, timeout: '10 seconds' })).to.include('beyondtrust.timeout');
    expect(configError({ ...block, timeout: '0s' })).to.include('beyondtrust.timeout');
    expect(configError({ ...block, caPem: 'not a certificate' })).to.include('beyondtrust.caPem');
    expect(configError({ ...block, securityProviderId: 0 })).to.include('beyondtrust.securityProviderId');
  });

  it('the schema compiles strictly and accepts the example in docs/targets/beyondtrust.md', () => {
    const definitions = (JSON.parse(fs.readFileSync(path.join(ROOT, 'config/schemas/config.schema.json'), 'utf8')) as { definitions: Record<string, unknown> }).definitions;
    const ajv = new Ajv({ allErrors: true, strict: true, strictRequired: false });
    const validate = ajv.compile({ ...BEYONDTRUST_TARGET_SCHEMA, definitions: { duration: definitions['duration'], secretRef: definitions['secretRef'] } });
    const doc = fs.readFileSync(path.join(ROOT, 'docs/targets/beyondtrust.md'), 'utf8');
    const yaml = /```yaml\n([\s\S]*?)```/.exec(doc)?.[1];
    const example = (parseYaml(yaml ?? '') as { targets: { beyondtrust: unknown }[] }).targets[0]?.beyondtrust;
    expect(validate(example), JSON.stringify(validate.errors)).to.equal(true);
    expect(validate({ ...block, clientSecret: 'inline-secret' }), 'secrets must be references').to.equal(false);
    expect(validate({ ...block, baseUrl: 'https://access.example.com/?x=1' })).to.equal(false);
    expect(validate({ ...block, groups: [] })).to.equal(false);
  });
});
