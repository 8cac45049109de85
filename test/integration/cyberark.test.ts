import fs from 'node:fs';
import { Ajv } from 'ajv';
import { expect } from 'chai';
import { parse as parseYaml } from 'yaml';
import { WogateError, type Resource } from '../../src/domain/index.js';
import { CyberArkTarget, CYBERARK_TARGET_SCHEMA, cyberarkTargetOptions, type CyberArkTargetOptions } from '../../src/targets/cyberark.js';
import { TargetError, type CallContext, type TargetGrant } from '../../src/targets/target.js';
import { CyberArkSim } from '../sims/cyberark.js';
import { PATIENT_MS, recordingLogger, sampleGrant, simulatedSetup, targetContract } from './target-contract.js';
import { configRefusal } from '../helpers/refusal.js';

const SAFES = ['Vendor-PLC', 'Vendor-SCADA'];
const SERVICE = 'svc-wogate';
const pamResource = (n: number): Resource => ({ kind: 'pam', account: `vendor.tech${n}`, safe: SAFES[n % 2]! });

targetContract('CyberArkTarget against the PVWA simulator', async ({ secret }) => {
  // Error answers echo the request's Authorization header and body: a leak of either would show.
  const sim = await CyberArkSim.start({ accounts: [{ method: 'CyberArk', username: SERVICE, password: secret }], safes: SAFES, echoOnError: true });
  sim.faults.hangMs = 2_000;
  const target = (timeoutMs: number) => new CyberArkTarget({ id: 'pam', baseUrl: sim.url, username: SERVICE, password: secret, safes: SAFES, timeoutMs });
  return simulatedSetup(target, sim, (o) => sampleGrant('pam', o, new Date(), pamResource));
});

describe('CyberArkTarget against the PVWA simulator', function () {
  this.timeout(20_000);
  const PASSWORD = 'pvwa-Passw0rd-canary-7f3a';
  let sim: CyberArkSim;
  let target: CyberArkTarget;
  let log: ReturnType<typeof recordingLogger>;
  const ctx = (now = new Date()): CallContext => ({ now, log });
  const grant = (o: Partial<TargetGrant> = {}): TargetGrant => sampleGrant('pam', o, new Date(), pamResource);
  const make = (o: Partial<CyberArkTargetOptions> = {}): CyberArkTarget =>
    new CyberArkTarget({ id: 'pam', baseUrl: sim.url, username: SERVICE, password: PASSWORD, safes: SAFES, timeoutMs: PATIENT_MS, ...o });

  async function failure(call: () => Promise<unknown>): Promise<TargetError> {
    const e = await call().then(() => undefined, (err: unknown) => err);
    expect(e, 'the call fails').to.be.instanceOf(TargetError);
    return e as TargetError;
  }

  beforeEach(async () => {
    log = recordingLogger();
    sim = await CyberArkSim.start({
      accounts: [{ method: 'CyberArk', username: SERVICE, password: PASSWORD }, { method: 'LDAP', username: 'svc-ldap', password: PASSWORD }],
      safes: SAFES,
    });
    sim.faults.hangMs = 2_000;
    target = make();
    await target.init(ctx());
  });

  afterEach(async () => {
    await target.close();
    await sim.close();
    for (const line of log.lines) expect(line).not.to.include(PASSWORD);
  });

  describe('provision', () => {
    it('adds the technician with the expiry in epoch seconds, every permission explicit, and the token sent bare', async () => {
      const g = grant({ validUntil: new Date(Date.now() + 3_600_000 + 789) });
      const ref = await target.provision(g, ctx());
      expect(ref).to.deep.equal({ safe: (g.resource as { safe: string }).safe, member: (g.resource as { account: string }).account });
      const post = sim.calls.find((c) => c.method === 'POST' && c.path.endsWith('/Members'));
      expect(post?.path).to.equal(`/PasswordVault/api/Safes/${encodeURIComponent(ref['safe'] as string)}/Members`);
      const body = post?.body as Record<string, unknown>;
      expect(body).to.deep.include({ memberName: ref['member'], searchIn: 'Vault', memberType: 'User', membershipExpirationDate: Math.floor(g.validUntil.getTime() / 1000) });
      const perms = body['permissions'] as Record<string, boolean>;
      expect(Object.keys(perms)).to.have.length(22);
      expect(Object.entries(perms).filter(([, v]) => v).map(([k]) => k)).to.have.members(['useAccounts', 'listAccounts']);
      const logon = sim.calls.find((c) => c.path === '/PasswordVault/API/auth/CyberArk/Logon');
      expect(logon?.body).to.deep.equal({ username: SERVICE, password: PASSWORD, concurrentSession: true });
      expect(post?.authorization).to.be.a('string').and.not.match(/^Bearer /i);
      // Left out, retrieveAccounts would default to true: the vendor would see the password.
      const m = sim.member(ref['safe'] as string, ref['member'] as string)!;
      expect(m.permissions.retrieveAccounts).to.equal(false);
      expect(sim.hasAccess(ref['safe'] as string, m.memberName)).to.equal(true);
    });

    it('refreshes an existing membership with PUT when the Vault answers 409, keeping one member', async () => {
      const g = grant();
      const r = g.resource as { account: string; safe: string };
      sim.addMemberByHand(r.safe, { memberName: r.account, membershipExpirationDate: Math.floor(Date.now() / 1000) + 60, permissions: { ...sim.members(r.safe)[0]!.permissions } });
      await target.provision(g, ctx());
      const calls = sim.calls.filter((c) => c.path.includes('/Members'));
      expect(calls.map((c) => `${c.method} ${c.status}`)).to.deep.equal(['POST 409', 'PUT 200']);
      expect(calls[1]!.body).to.deep.include({ membershipExpirationDate: Math.floor(g.validUntil.getTime() / 1000) });
      const m = sim.members(r.safe).filter((x) => x.memberName === r.account);
      expect(m).to.have.length(1);
      // The hand-made membership had every permission; PUT leaves only the configured ones.
      expect(Object.entries(m[0]!.permissions).filter(([, v]) => v).map(([k]) => k)).to.have.members(['useAccounts', 'listAccounts']);
    });

    it('a second order for the same technician and safe refreshes the same membership with the later end', async () => {
      const first = grant();
      const later = grant({ resource: first.resource, validUntil: new Date(first.validUntil.getTime() + 7_200_000) });
      await target.provision(first, ctx());
      await target.provision(later, ctx());
      const r = first.resource as { account: string; safe: string };
      const entries = (await target.list(ctx())).filter((e) => e.ref['member'] === r.account);
      expect(entries).to.have.length(1);
      expect(entries[0]!.expiresAt?.getTime()).to.equal(Math.floor(later.validUntil.getTime() / 1000) * 1000);
    });

    it('rounds the expiry down so the Vault never ends access later than validUntil', async () => {
      const g = grant({ validUntil: new Date(Date.now() + 600_000 + 999) });
      await target.provision(g, ctx());
      const [entry] = (await target.list(ctx())).filter((e) => e.ref['member'] === (g.resource as { account: string }).account);
      expect(entry!.expiresAt!.getTime()).to.be.at.most(g.validUntil.getTime()).and.above(g.validUntil.getTime() - 1_000);
    });

    it('update of a membership removed by hand adds it again', async () => {
      const g = grant();
      const ref = await target.provision(g, ctx());
      const r = g.resource as { account: string; safe: string };
      sim.removeMemberByHand(r.safe, r.account);
      await target.update({ ...g, validUntil: new Date(g.validUntil.getTime() + 60_000) }, ref, ctx());
      expect(sim.calls.filter((c) => c.path.includes('/Members')).slice(-2).map((c) => `${c.method} ${c.status}`)).to.deep.equal(['PUT 404', 'POST 201']);
      expect(sim.hasAccess(r.safe, r.account)).to.equal(true);
    });

    it('a window already over removes the membership instead of setting an expiry in the past', async () => {
      const g = grant();
      await target.provision(g, ctx());
      const r = g.resource as { account: string; safe: string };
      await target.update({ ...g, validUntil: new Date(Date.now() - 1_000) }, undefined, ctx());
      expect(sim.member(r.safe, r.account)).to.equal(undefined);
    });

    it('refuses a safe it does not manage, the service account and built-in members without calling PVWA', async () => {
      const before = sim.calls.length;
      for (const resource of [
        { kind: 'pam', account: 'vendor.x', safe: 'Finance' },
        { kind: 'pam', account: SERVICE, safe: SAFES[0]! },
        { kind: 'pam', account: 'Administrator', safe: SAFES[0]! },
        { kind: 'pam', account: 'PasswordManager', safe: SAFES[0]! },
        { kind: 'pam', account: 'a/../b', safe: SAFES[0]! },
      ] as Resource[]) {
        const e = await failure(() => target.provision(grant({ resource }), ctx()));
        expect(e.retryable, e.message).to.equal(false);
        await target.revoke(grant({ resource }), undefined, ctx());
      }
      // Another spelling of a managed safe would never match list() in drift: refused too.
      const e = await failure(() => target.provision(grant({ resource: { kind: 'pam', account: 'vendor.x', safe: SAFES[0]!.toLowerCase() } }), ctx()));
      expect(e.message).to.include(`must be spelled as configured: ${SAFES[0]}`);
      expect(sim.calls.length).to.equal(before);
    });

    it('a technician the directory does not know is refused as not retryable, with the Vault\'s error code', async () => {
      await sim.close();
      sim = await CyberArkSim.start({ accounts: [{ method: 'CyberArk', username: SERVICE, password: PASSWORD }], safes: SAFES, directory: { Vault: ['vendor.known'] } });
      await target.close();
      target = make();
      const e = await failure(() => target.provision(grant(), ctx()));
      expect(e.retryable).to.equal(false);
      expect(e.message).to.include('SFWS0009E').and.include('answered 404');
      expect(e.details?.['errorCode']).to.equal('SFWS0009E');
      await target.provision(grant({ resource: { kind: 'pam', account: 'vendor.known', safe: SAFES[0]! } }), ctx());
    });

    it('a membership the Vault records with more permissions than configured is removed and refused', async () => {
      sim.answerNext(1, (req, res) => {
        const b = req.body as { memberName: string; membershipExpirationDate: number };
        res.status(201).json({ memberName: b.memberName, membershipExpirationDate: b.membershipExpirationDate, permissions: { useAccounts: true, listAccounts: true, manageSafeMembers: true } });
      });
      const e = await failure(() => target.provision(grant(), ctx()));
      expect(e.retryable).to.equal(false);
      expect(e.details?.['reason']).to.equal('excess_permissions');
      expect(e.message).to.include('manageSafeMembers');
      expect(sim.calls.at(-1)?.method).to.equal('DELETE');
    });

    it('a 200 carrying CyberArk\'s error object is a retryable failure, never a success', async () => {
      sim.faults.failNext(1, 'error-in-200');
      const g = grant();
      const e = await failure(() => target.provision(g, ctx()));
      expect(e.retryable).to.equal(true);
      expect(e.message).to.include('CAWS00001E');
      const r = g.resource as { account: string; safe: string };
      expect(sim.member(r.safe, r.account)).to.equal(undefined);
    });

    it('an answer of an unexpected shape leaves a retryable error that says what was wrong', async () => {
      sim.answerNext(1, (_req, res) => void res.status(201).json({ memberName: 'vendor.tech0' }));
      const e1 = await failure(() => target.provision(grant(), ctx()));
      expect(e1.retryable).to.equal(true);
      expect(e1.details?.['code']).to.equal('TARGET_RESPONSE_INVALID');
      expect(e1.message).to.match(/expected the member|membershipExpirationDate/);

      sim.answerNext(1, (_req, res) => void res.status(200).type('text/html').send('<html>Service Unavailable</html>'));
      const e2 = await failure(() => target.list(ctx()));
      expect(e2.retryable).to.equal(true);
      expect(e2.message).to.include('not JSON');

      sim.answerNext(1, (_req, res) => void res.status(200).json({ value: 'none', count: 'many' }));
      const e3 = await failure(() => target.list(ctx()));
      expect(e3.retryable).to.equal(true);
      expect(e3.message).to.include('expected {value: [...], count}');
    });
  });

  describe('session', () => {
    it('logs on again exactly once when the session expired, and the call succeeds', async () => {
      await target.provision(grant(), ctx());
      expect(sim.logons.get(SERVICE)).to.equal(1);
      sim.expireSessions();
      await target.provision(grant(), ctx());
      expect(sim.logons.get(SERVICE)).to.equal(2);
      expect(sim.calls.filter((c) => c.status === 401)).to.have.length(1);
    });

    it('a session that idled out on PVWA is renewed the same way', async () => {
      let now = Date.now();
      await sim.close();
      sim = await CyberArkSim.start({ accounts: [{ method: 'CyberArk', username: SERVICE, password: PASSWORD }], safes: SAFES, sessionIdleMs: 60_000, clock: () => new Date(now) });
      await target.close();
      target = make();
      await target.list(ctx());
      now += 61_000;
      await target.list(ctx());
      expect(sim.logons.get(SERVICE)).to.equal(2);
    });

    it('refused credentials fail init as not retryable, once, naming the Vault code but never the password', async () => {
      await target.close();
      const before = sim.calls.length;
      target = make({ password: 'wrong-Passw0rd-canary' });
      const e = await failure(() => target.init(ctx()));
      expect(e.retryable).to.equal(false);
      expect(e.message).to.include('ITATS004E').and.include(SERVICE);
      expect(`${e.message} ${JSON.stringify(e.details)} ${e.stack}`).not.to.include('wrong-Passw0rd-canary');
      expect(sim.calls.slice(before).map((c) => `${c.path} ${c.status}`)).to.deep.equal(['/PasswordVault/API/auth/CyberArk/Logon 403']);
    });

    it('logs on with the configured method (LDAP)', async () => {
      await target.close();
      target = make({ authMethod: 'LDAP', username: 'svc-ldap' });
      await target.init(ctx());
      expect(sim.logons.get('svc-ldap')).to.equal(1);
      expect(sim.calls.at(-1)?.path).to.equal('/PasswordVault/API/auth/LDAP/Logon');
    });

    it('an unreachable PVWA at start does not stop init; the first call logs on', async () => {
      await target.close();
      target = make();
      sim.faults.failNext(1, 'server-error');
      await target.init(ctx());
      expect(log.lines.some((l) => l.includes('not reachable at start'))).to.equal(true);
      await target.provision(grant(), ctx());
    });

    it('the session token never shows in an error, even when PVWA echoes it back', async () => {
      await sim.close();
      sim = await CyberArkSim.start({ accounts: [{ method: 'CyberArk', username: SERVICE, password: PASSWORD }], safes: SAFES, echoOnError: true });
      await target.close();
      target = make();
      await target.init(ctx());
      sim.faults.failNext(1, 'server-error');
      sim.faults.failNext(1, 'forbidden');
      const errors = [await failure(() => target.provision(grant(), ctx())), await failure(() => target.list(ctx()))];
      const token = sim.calls.at(-1)?.authorization;
      expect(token).to.be.a('string').with.length.above(20);
      expect(sim.calls.at(-1)?.status).to.equal(403);
      for (const e of errors) expect(`${e.message} ${JSON.stringify(e.details)} ${e.stack}`).not.to.include(token);
    });

    it('close() logs off the session', async () => {
      expect(sim.activeSessions).to.equal(1);
      await target.close();
      expect(sim.activeSessions).to.equal(0);
      expect(sim.calls.at(-1)?.path).to.equal('/PasswordVault/API/Auth/Logoff');
    });
  });

  describe('list and drift', () => {
    it('lists wogate\'s and hand-added users of the managed safes, not predefined, kept, service or expired members', async () => {
      await target.close();
      target = make({ keepMembers: ['plant.owner'] });
      const g = grant();
      await target.provision(g, ctx());
      sim.addMemberByHand(SAFES[0]!, { memberName: 'jdoe.contractor' });
      sim.addMemberByHand(SAFES[0]!, { memberName: 'plant.owner' });
      sim.addMemberByHand(SAFES[0]!, { memberName: SERVICE });
      sim.addMemberByHand(SAFES[1]!, { memberName: 'PasswordManager' });
      sim.addMemberByHand(SAFES[1]!, { memberName: 'old.vendor', membershipExpirationDate: Math.floor(Date.now() / 1000) - 10 });
      sim.addMemberByHand(SAFES[1]!, { memberName: 'Vendor Group', memberType: 'Group' });
      const names = (await target.list(ctx())).map((e) => `${String(e.ref['safe'])}/${String(e.ref['member'])}`);
      const r = g.resource as { account: string; safe: string };
      expect(names).to.have.members([`${r.safe}/${r.account}`, `${SAFES[0]}/jdoe.contractor`]);
      const hand = (await target.list(ctx())).find((e) => e.ref['member'] === 'jdoe.contractor')!;
      expect(hand.resource).to.deep.equal({ kind: 'pam', account: 'jdoe.contractor', safe: SAFES[0] });
      expect(hand.expiresAt).to.equal(undefined);
    });

    it('an entry added by hand is removed by revokeEntry, idempotently', async () => {
      sim.addMemberByHand(SAFES[1]!, { memberName: 'jdoe.contractor' });
      const entry = (await target.list(ctx())).find((e) => e.ref['member'] === 'jdoe.contractor')!;
      await target.revokeEntry(entry, ctx());
      expect(sim.member(SAFES[1]!, 'jdoe.contractor')).to.equal(undefined);
      await target.revokeEntry(entry, ctx());
      expect((await target.list(ctx())).some((e) => e.ref['member'] === 'jdoe.contractor')).to.equal(false);
    });

    it('revokeEntry never removes predefined, service or kept members, nor anything outside the managed safes', async () => {
      sim.addMemberByHand(SAFES[0]!, { memberName: 'custom.builtin', isPredefinedUser: true });
      for (const ref of [
        { safe: SAFES[0]!, member: 'Administrator' },
        { safe: SAFES[0]!, member: SERVICE },
        { safe: 'Finance', member: 'jdoe' },
        { safe: SAFES[0]!, member: 'custom.builtin' },
      ]) {
        const e = await failure(() => target.revokeEntry({ ref }, ctx()));
        expect(e.retryable, e.message).to.equal(false);
      }
      expect(sim.member(SAFES[0]!, 'Administrator')).not.to.equal(undefined);
      expect(sim.member(SAFES[0]!, 'custom.builtin')).not.to.equal(undefined);
    });

    it('reads every page of a large safe', async () => {
      await target.close();
      target = make({ pageSize: 3 });
      for (let i = 0; i < 10; i++) sim.addMemberByHand(SAFES[0]!, { memberName: `bulk.${i}` });
      const entries = (await target.list(ctx())).filter((e) => String(e.ref['member']).startsWith('bulk.'));
      expect(entries).to.have.length(10);
      const offsets = sim.calls.filter((c) => c.method === 'GET' && c.path.includes(encodeURIComponent(SAFES[0]!))).map((c) => c.query['offset']);
      // 13 users: the 10 added and the predefined Master, Batch and Administrator (groups filtered out by PVWA).
      expect(offsets).to.deep.equal(['0', '3', '6', '9', '12']);
      expect(sim.calls.find((c) => c.method === 'GET')?.query['filter']).to.equal('memberType eq User');
    });

    it('a PVWA that ignores offset is reported, not looped on', async () => {
      await target.close();
      target = make({ pageSize: 2 });
      for (let i = 0; i < 4; i++) sim.addMemberByHand(SAFES[0]!, { memberName: `bulk.${i}` });
      const firstPage = { value: [{ memberName: 'bulk.0', memberType: 'User' }, { memberName: 'bulk.1', memberType: 'User' }], count: 12 };
      sim.answerNext(2, (_req, res) => void res.status(200).json(firstPage));
      const e = await failure(() => target.list(ctx()));
      expect(e.retryable).to.equal(true);
      expect(e.message).to.include('paging did not advance');
    });

    it('revoke removes the membership in a safe dropped from the config when the grant holds its ref, and nothing without one', async () => {
      const g = grant({ resource: { kind: 'pam', account: 'vendor.moved', safe: SAFES[0]! } });
      const ref = await target.provision(g, ctx());
      await target.close();
      target = make({ safes: [SAFES[1]!] });
      await target.revoke(g, undefined, ctx());
      expect(sim.member(SAFES[0]!, 'vendor.moved')).not.to.equal(undefined);
      await target.revoke(g, ref, ctx());
      expect(sim.member(SAFES[0]!, 'vendor.moved')).to.equal(undefined);
    });

    it('the Vault itself ends access at the expiry, with wogate down', async () => {
      let now = Date.now();
      await sim.close();
      sim = await CyberArkSim.start({ accounts: [{ method: 'CyberArk', username: SERVICE, password: PASSWORD }], safes: SAFES, clock: () => new Date(now) });
      await target.close();
      target = make();
      const g = grant({ validUntil: new Date(now + 120_000) });
      await target.provision(g, ctx(new Date(now)));
      await target.close();
      const r = g.resource as { account: string; safe: string };
      expect(sim.hasAccess(r.safe, r.account)).to.equal(true);
      now += 121_000;
      expect(sim.hasAccess(r.safe, r.account)).to.equal(false);
    });
  });

  describe('config', () => {
    const block = (o: Record<string, unknown> = {}): Record<string, unknown> => ({
      baseUrl: 'https://pvwa.plant.example/PasswordVault', username: SERVICE, password: 'resolved-secret', safes: ['Vendor-PLC'], ...o,
    });
    const refused = (o: Record<string, unknown>): string => configRefusal(() => cyberarkTargetOptions('pam', block(o)));

    it('builds options with the least-privilege default and parsed durations', () => {
      const o = cyberarkTargetOptions('pam', block({ timeout: '15s', authMethod: 'LDAP', searchIn: 'plant.example' }));
      expect(o).to.deep.include({ timeoutMs: 15_000, authMethod: 'LDAP', searchIn: 'plant.example' });
      expect(o.permissions).to.equal(undefined);
      const t = new CyberArkTarget(o);
      expect(t.nativeExpiry).to.equal(true);
      expect(t.resourceKinds).to.deep.equal(['pam']);
    });

    it('refuses management permissions, naming the field and the reason', () => {
      expect(refused({ permissions: ['useAccounts', 'manageSafeMembers'] })).to.match(/^target pam: cyberark\.permissions\[1\] manageSafeMembers is refused/);
      expect(refused({ permissions: ['listAccounts'] })).to.include('cyberark.permissions grants no way to use an account');
      for (const p of ['manageSafe', 'backupSafe', 'requestsAuthorizationLevel1', 'accessWithoutConfirmation', 'deleteAccounts']) {
        expect(refused({ permissions: ['useAccounts', p] })).to.include(`${p} is refused`);
      }
      expect(() => new CyberArkTarget({ id: 'pam', baseUrl: 'https://pvwa/PasswordVault', username: 'a', password: 'b', safes: ['S'], permissions: ['useAccounts', 'manageSafe'] }))
        .to.throw(WogateError, /permissions\[1\] manageSafe is refused/);
    });

    it('refuses other mistakes naming the field', () => {
      expect(refused({ baseUrl: 'https://pvwa.plant.example/' })).to.include('cyberark.baseUrl must end with /PasswordVault');
      expect(refused({ safes: ['Vendor-PLC', 'vendor-plc'] })).to.include('cyberark.safes[1]');
      expect(refused({ safes: ['Bad/Name'] })).to.include('cyberark.safes[0]');
      expect(refused({ timeout: 'soon' })).to.include('cyberark.timeout');
      expect(refused({ caPem: 'not a pem' })).to.include('cyberark.caPem');
      expect(refused({ password: undefined })).to.include('cyberark.password is required');
    });

    it('the documented targets: example validates against the schema and builds', () => {
      const md = fs.readFileSync(new URL('../../docs/targets/cyberark.md', import.meta.url), 'utf8');
      const yamlText = /```yaml\n([\s\S]*?)```/.exec(md)?.[1];
      const [entry] = (parseYaml(yamlText!) as { targets: { id: string; kind: string; cyberark: Record<string, unknown> }[] }).targets;
      expect(entry?.kind).to.equal('cyberark');
      // The options config/schema.ts compiles the whole config with.
      const ajv = new Ajv({ allErrors: true, strict: true, strictRequired: false });
      const validate = ajv.compile({
        definitions: {
          duration: { type: 'string', pattern: '^([0-9]+(ms|s|m|h|d))+$' },
          secretRef: { type: 'string', pattern: '^(env:[A-Za-z_][A-Za-z0-9_]*|file:.+)$' },
        },
        ...CYBERARK_TARGET_SCHEMA,
      });
      expect(validate(entry!.cyberark), JSON.stringify(validate.errors)).to.equal(true);
      const { caPem: _ca, ...rest } = entry!.cyberark;
      expect(() => cyberarkTargetOptions(entry!.id, { ...rest, password: 'resolved' })).not.to.throw();
      expect(validate(block({ permissions: ['useAccounts', 'bogus'] }))).to.equal(false);
      expect(validate(block({ safes: ['Vendor.PLC'] }))).to.equal(false);
      expect(validate(block({ password: 'env:PVWA', safes: ['Vendor PLC'], keepMembers: ['jdoe@plant.example'] }))).to.equal(true);
    });
  });
});
