import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Ajv } from 'ajv';
import { expect } from 'chai';
import { parse as parseYaml } from 'yaml';
import type { GroupResource } from '../../src/domain/index.js';
import { LDAP_TARGET_SCHEMA, LdapTarget, ldapTargetOptions, parseMemberValue, ttlMemberValue, ttlSeconds, type LdapTargetOptions } from '../../src/targets/ldap.js';
import { dnKey, parseDn } from '../../src/targets/ldap-config.js';
import { TargetError, type CallContext, type Target, type TargetGrant } from '../../src/targets/target.js';
import { GROUPS, PLACEHOLDER_DN, READER_DN, SERVICE_DN, Slapd, slapdAvailable, skipOrFail, STAFF_DN, VENDORS } from '../helpers/slapd.js';
import { REPO } from '../helpers/paths.js';
import { tmpDir } from '../helpers/world.js';
import { HASTY_MS, PATIENT_MS, recordingLogger, sampleGrant, targetContract, type FailureMode } from './target-contract.js';
import { configRefusal } from '../helpers/refusal.js';

const VPN = `cn=vpn-vendors,${GROUPS}`;
const PLC = `cn=plc-engineering,${GROUPS}`;
const ADMINS = `cn=admins,${GROUPS}`;
const HMI = `cn=hmi-operators,${GROUPS}`;

/**
 * Makes the next calls fail for real, one fault per call, undone once that call has settled:
 * timeout = slapd stopped with SIGSTOP (the kernel still accepts the connection, nothing answers);
 * server-error = slapd not running (connection refused); forbidden = the service account taken
 * out of the ACL group that gives it access. The wrapper only times the fault to the call; the
 * LdapTarget inside is the real one, talking to the real slapd.
 */
function withRealFaults(make: (timeoutMs: number) => LdapTarget, slapd: Slapd, prepare: () => Promise<void>, queue: FailureMode[]): Target {
  // A paused slapd never answers, so only the call aimed at it has the short deadline under test;
  // every other call has a generous one, which a busy machine can't turn into a timeout.
  const patient = make(PATIENT_MS);
  const hasty = make(HASTY_MS);
  const call = async <T>(fn: (t: LdapTarget) => Promise<T>): Promise<T> => {
    await prepare();
    const mode = queue.shift();
    const t = mode === 'timeout' ? hasty : patient;
    if (mode === 'timeout') await slapd.pause();
    else if (mode === 'server-error') await slapd.stop();
    else if (mode === 'forbidden') await slapd.setOperator(false);
    try {
      return await fn(t);
    } finally {
      if (mode === 'timeout') slapd.resume();
      else if (mode === 'server-error') await slapd.launch();
      else if (mode === 'forbidden') await slapd.setOperator(true);
    }
  };
  return {
    id: patient.id,
    kind: patient.kind,
    nativeExpiry: patient.nativeExpiry,
    resourceKinds: patient.resourceKinds,
    // The hasty one only ever meets a paused slapd: initialising it would be a healthy call under the short deadline.
    init: (ctx) => patient.init(ctx),
    provision: (g, ctx) => call((t) => t.provision(g, ctx)),
    update: (g, ref, ctx) => call((t) => t.update(g, ref, ctx)),
    revoke: (g, ref, ctx) => call((t) => t.revoke(g, ref, ctx)),
    list: (ctx) => call((t) => t.list(ctx)),
    close: async () => {
      await patient.close();
      await hasty.close();
    },
  };
}

async function failure(call: () => Promise<unknown>): Promise<TargetError> {
  const e = await call().then(() => undefined, (err: unknown) => err);
  expect(e, 'the call fails with a TargetError').to.be.instanceOf(TargetError);
  return e as TargetError;
}

describe('ldap target against a real OpenLDAP slapd', function () {
  this.timeout(60_000);
  let slapd: Slapd | undefined;

  before(async function () {
    const available = await slapdAvailable();
    if (!available.ok) skipOrFail(this, 'ldap target tests', available.why);
    slapd = await Slapd.start({ servicePassword: 'initial-not-used', tls: true });
  });

  after(async () => {
    await slapd?.close();
  });

  targetContract('LdapTarget against slapd', async ({ secret }) => {
    const s = slapd!;
    s.resume();
    if (!s.running) await s.launch();
    await s.setServicePassword(secret);
    await s.setOperator(true);
    await s.resetGroups();
    const target = (timeoutMs: number) => new LdapTarget({
      id: 'dir',
      url: s.url,
      bindDN: SERVICE_DN,
      bindPassword: secret,
      timeoutMs,
      accountBase: VENDORS,
      accountAttribute: 'uid',
      accountObjectClass: 'inetOrgPerson',
      groupBase: GROUPS,
      groups: ['vpn-vendors', PLC],
    });
    // Accounts the grants name are created in the directory before the next call reaches it.
    const accounts = new Set<string>();
    const prepare = async (): Promise<void> => {
      if (accounts.size === 0) return;
      const uids = [...accounts];
      accounts.clear();
      await s.addVendors(uids);
    };
    const faults: FailureMode[] = [];
    return {
      target: withRealFaults(target, s, prepare, faults),
      makeGrant: (o) =>
        sampleGrant('dir', o, new Date(), (n) => {
          accounts.add(`tech${n}`);
          return { kind: 'group', account: `tech${n}`, group: n % 2 === 0 ? 'vpn-vendors' : PLC };
        }),
      failureModes: ['timeout', 'server-error', 'forbidden'],
      failNext: (count, how) => faults.push(...Array<FailureMode>(count).fill(how)),
      cleanup: async () => {
        faults.length = 0;
        s.resume();
        await s.setOperator(true);
      },
    };
  });

  describe('LdapTarget', () => {
    const password = 'svc-Pa55-word';
    let log: ReturnType<typeof recordingLogger>;
    const ctx = (now = new Date()): CallContext => ({ now, log });
    const options = (o: Partial<LdapTargetOptions> = {}): LdapTargetOptions => ({
      id: 'dir',
      url: slapd!.url,
      bindDN: SERVICE_DN,
      bindPassword: password,
      timeoutMs: PATIENT_MS,
      accountBase: VENDORS,
      accountAttribute: 'uid',
      accountObjectClass: 'inetOrgPerson',
      groupBase: GROUPS,
      groups: ['vpn-vendors', PLC, 'hmi-operators'],
      ...o,
    });
    /** Accounts are DNs: no accountAttribute. */
    const byDnOptions = (): LdapTargetOptions => {
      const { accountAttribute: _uid, ...rest } = options();
      return rest;
    };
    const grant = (account: string, group = 'vpn-vendors', o: Partial<TargetGrant> = {}): TargetGrant =>
      sampleGrant('dir', { resource: { kind: 'group', account, group }, ...o });

    beforeEach(async () => {
      log = recordingLogger();
      const s = slapd!;
      s.resume();
      await s.setServicePassword(password);
      await s.setOperator(true);
      await s.resetGroups();
    });

    afterEach(() => {
      for (const line of log.lines) expect(line.includes(password), `log line holds the password: ${line}`).to.equal(false);
    });

    it('adds the account DN to the group, once however often it is provisioned, and memberof shows it on the account', async () => {
      const [dn] = await slapd!.addVendors(['v-add']);
      const t = new LdapTarget(options());
      const ref = await t.provision(grant('v-add'), ctx());
      await t.provision(grant('v-add'), ctx());
      expect(ref).to.deep.equal({ group: VPN, member: dn });
      expect(await slapd!.members(VPN)).to.have.members([PLACEHOLDER_DN, dn]);
      expect(await slapd!.memberOf(dn!)).to.deep.equal([VPN]);
      await t.revoke(grant('v-add'), ref, ctx());
      expect(await slapd!.members(VPN)).to.deep.equal([PLACEHOLDER_DN]);
      expect(await slapd!.memberOf(dn!)).to.deep.equal([]);
    });

    it('refuses a group not in `groups` as not retryable and sends nothing to the directory', async () => {
      await slapd!.addVendors(['v-typo']);
      const t = new LdapTarget(options());
      const e = await failure(() => t.provision(grant('v-typo', 'admins'), ctx()));
      expect(e.retryable).to.equal(false);
      expect(e.message).to.match(/group "admins" is not one of this target's groups .*never touches other groups/);
      const byDn = await failure(() => t.provision(grant('v-typo', ADMINS), ctx()));
      expect(byDn.retryable).to.equal(false);
      expect(await slapd!.members(ADMINS)).to.deep.equal([PLACEHOLDER_DN]);
      // Never provisioned here, so revoking it has nothing to undo.
      await t.revoke(grant('v-typo', 'admins'), undefined, ctx());
    });

    it('never adds an account outside accountBase: staff by DN is refused, staff by uid is not found', async () => {
      const byDn = new LdapTarget(byDnOptions());
      const e1 = await failure(() => byDn.provision(grant(STAFF_DN), ctx()));
      expect(e1.retryable).to.equal(false);
      expect(e1.message).to.include('not a DN under accountBase');
      const byUid = new LdapTarget(options());
      const e2 = await failure(() => byUid.provision(grant('alice'), ctx()));
      expect(e2.retryable).to.equal(false);
      expect(e2.message).to.include('account "alice" not found under ou=vendors');
      expect(await slapd!.members(VPN)).to.deep.equal([PLACEHOLDER_DN]);
    });

    it('accepts an account given as a DN below accountBase when no accountAttribute is set, and lists it by DN', async () => {
      const [dn] = await slapd!.addVendors(['v-dn']);
      const t = new LdapTarget(byDnOptions());
      await t.provision(grant(dn!), ctx());
      const entries = await t.list(ctx());
      expect(entries.map((e) => e.resource)).to.deep.include({ kind: 'group', account: dn, group: 'vpn-vendors' });
      const spaced = dn!.replaceAll(',', ', ');
      const e = await failure(() => t.provision(grant(spaced), ctx()));
      expect(e.message).to.include(`is stored as "${dn}"`);
    });

    it('sends account names as equality filters: filter metacharacters match nothing', async () => {
      await slapd!.addVendors(['v-inj-a', 'v-inj-b']);
      const t = new LdapTarget(options());
      for (const account of ['*', 'v-inj*', '*)(uid=*', 'v-inj-a)(|(uid=*']) {
        const e = await failure(() => t.provision(grant(account), ctx()));
        expect(e.message, account).to.include('not found');
      }
      expect(await slapd!.members(VPN)).to.deep.equal([PLACEHOLDER_DN]);
    });

    it('refuses an account spelled differently from the directory, naming the stored spelling', async () => {
      await slapd!.addVendors(['v-case']);
      const t = new LdapTarget(options());
      const e = await failure(() => t.provision(grant('V-CASE'), ctx()));
      expect(e.retryable).to.equal(false);
      expect(e.message).to.include('with uid ["v-case"]');
    });

    it('removes the last member of a groupOfNames by swapping in the placeholder in one modify', async () => {
      const [dn] = await slapd!.addVendors(['v-last']);
      await slapd!.modify(VPN, 'replace', 'member', [dn!]);
      const t = new LdapTarget(options());
      await t.revoke(grant('v-last'), undefined, ctx());
      expect(await slapd!.members(VPN)).to.deep.equal([PLACEHOLDER_DN]);
      expect(log.lines.some((l) => l.includes('the placeholder takes its place'))).to.equal(true);
      // A configured placeholder is used instead of the default.
      const own = `cn=empty-group,ou=system,dc=example,dc=com`;
      await slapd!.modify(VPN, 'replace', 'member', [dn!]);
      await new LdapTarget(options({ placeholderMember: own })).revoke(grant('v-last'), undefined, ctx());
      expect(await slapd!.members(VPN)).to.deep.equal([own]);
    });

    it('manages groupOfUniqueNames through uniqueMember', async () => {
      const [dn] = await slapd!.addVendors(['v-uniq']);
      const t = new LdapTarget(options({ memberAttribute: 'uniqueMember' }));
      const ref = await t.provision(grant('v-uniq', 'hmi-operators'), ctx());
      expect(await slapd!.members(HMI, 'uniqueMember')).to.have.members([PLACEHOLDER_DN, dn]);
      expect((await t.list(ctx())).map((e) => e.resource)).to.deep.equal([{ kind: 'group', account: 'v-uniq', group: 'hmi-operators' }]);
      await t.revoke(grant('v-uniq', 'hmi-operators'), ref, ctx());
      expect(await slapd!.members(HMI, 'uniqueMember')).to.deep.equal([PLACEHOLDER_DN]);
    });

    it('lists a vendor added by hand (and not staff or the placeholder), and revokeEntry removes it', async () => {
      const [dn] = await slapd!.addVendors(['v-hand']);
      await slapd!.modify(VPN, 'add', 'member', [dn!, STAFF_DN]);
      const t = new LdapTarget(options());
      const entries = await t.list(ctx());
      expect(entries).to.deep.equal([{ ref: { group: VPN, member: dn }, resource: { kind: 'group', account: 'v-hand', group: 'vpn-vendors' } }]);
      await t.revokeEntry(entries[0]!, ctx());
      await t.revokeEntry(entries[0]!, ctx());
      expect(await slapd!.members(VPN)).to.have.members([PLACEHOLDER_DN, STAFF_DN]);
      expect(await t.list(ctx())).to.deep.equal([]);
    });

    it('revokeEntry refuses a member outside accountBase or a group it does not manage', async () => {
      const [dn] = await slapd!.addVendors(['v-guard']);
      await slapd!.modify(VPN, 'add', 'member', [STAFF_DN]);
      await slapd!.modify(ADMINS, 'add', 'member', [dn!]);
      const t = new LdapTarget(options());
      const staff = await failure(() => t.revokeEntry({ ref: { group: VPN, member: STAFF_DN } }, ctx()));
      expect(staff.retryable).to.equal(false);
      expect(staff.message).to.include('not under accountBase');
      const admins = await failure(() => t.revokeEntry({ ref: { group: ADMINS, member: dn! } }, ctx()));
      expect(admins.message).to.include('not one of this target\'s groups');
      expect(await slapd!.members(VPN)).to.include(STAFF_DN);
      expect(await slapd!.members(ADMINS)).to.include(dn);
    });

    it('lists a member whose account was deleted without a resource, and still removes it by ref', async () => {
      const [dn] = await slapd!.addVendors(['v-gone']);
      const t = new LdapTarget(options());
      const ref = await t.provision(grant('v-gone'), ctx());
      await slapd!.admin((c) => c.del(dn!));
      const entries = await t.list(ctx());
      expect(entries).to.deep.equal([{ ref: { group: VPN, member: dn } }]);
      await t.revoke(grant('v-gone'), ref, ctx());
      expect(await slapd!.members(VPN)).to.deep.equal([PLACEHOLDER_DN]);
    });

    it('will not silently forget a membership in a group dropped from `groups` after it was provisioned', async () => {
      const [dn] = await slapd!.addVendors(['v-dropped']);
      const ref = await new LdapTarget(options()).provision(grant('v-dropped', PLC), ctx());
      const narrowed = new LdapTarget(options({ groups: ['vpn-vendors'] }));
      const e = await failure(() => narrowed.revoke(grant('v-dropped', PLC), ref, ctx()));
      expect(e.retryable).to.equal(false);
      expect(e.message).to.include('no longer in ldap.groups');
      expect(await slapd!.members(PLC)).to.include(dn);
      // Without a ref nothing says it was ever added here: provision refuses such grants.
      await narrowed.revoke(grant('v-dropped', PLC), undefined, ctx());
    });

    it('a cancelled call fails as retryable without touching the directory', async () => {
      await slapd!.addVendors(['v-abort']);
      const controller = new AbortController();
      controller.abort();
      const e = await failure(() => new LdapTarget(options()).provision(grant('v-abort'), { ...ctx(), signal: controller.signal }));
      expect(e.retryable).to.equal(true);
      expect(e.details?.['reason']).to.equal('aborted');
      expect(await slapd!.members(VPN)).to.deep.equal([PLACEHOLDER_DN]);
    });

    it('an already-over window removes the membership instead of adding it', async () => {
      const [dn] = await slapd!.addVendors(['v-over']);
      const t = new LdapTarget(options());
      await t.provision(grant('v-over'), ctx());
      const now = new Date();
      const ref = await t.update(grant('v-over', 'vpn-vendors', { validUntil: new Date(now.getTime() - 1) }), undefined, ctx(now));
      expect(ref).to.deep.equal({ group: VPN, member: dn });
      expect(await slapd!.members(VPN)).to.deep.equal([PLACEHOLDER_DN]);
    });

    it('a wrong password fails as not retryable, naming the bind DN and never the password', async () => {
      const wrong = 'Wr0ng-canary-pw';
      const t = new LdapTarget(options({ bindPassword: wrong }));
      const e = await failure(() => t.list(ctx()));
      expect(e.retryable).to.equal(false);
      expect(e.details?.['ldapCode']).to.equal(49);
      expect(e.message).to.include(`bind as ${SERVICE_DN}: invalidCredentials (LDAP 49) (check bindDN and bindPassword)`);
      expect(`${e.message} ${JSON.stringify(e.details)} ${e.stack}`).not.to.include(wrong);
    });

    it('a service account that may read but not write gets insufficientAccessRights, not retryable', async () => {
      await slapd!.addVendors(['v-ro']);
      const t = new LdapTarget(options({ bindDN: READER_DN, bindPassword: slapd!.readerPassword }));
      expect(await t.list(ctx())).to.deep.equal([]);
      const e = await failure(() => t.provision(grant('v-ro'), ctx()));
      expect(e.retryable).to.equal(false);
      expect(e.details?.['ldapCode']).to.equal(50);
      expect(e.message).to.include(`add uid=v-ro,${VENDORS} to ${VPN}: insufficientAccessRights`);
      expect(e.message).not.to.include(slapd!.readerPassword);
    });

    it('a managed group missing from the directory stops init and fails calls, naming the group', async () => {
      await slapd!.addVendors(['v-ghost']);
      const t = new LdapTarget(options({ groups: ['vpn-vendors', 'ghost-group'] }));
      const atStart = await failure(() => t.init(ctx()));
      expect(atStart.retryable).to.equal(false);
      expect(atStart.message).to.include(`cn=ghost-group,${GROUPS}: noSuchObject (LDAP 32)`);
      const e = await failure(() => t.provision(grant('v-ghost', 'ghost-group'), ctx()));
      expect(e.retryable).to.equal(false);
      expect(e.message).to.include('cn=ghost-group');
      await failure(() => t.revoke(grant('v-ghost', 'ghost-group'), undefined, ctx()));
    });

    it('a closed port fails as retryable naming the URL, and init only warns about it', async () => {
      const srv = net.createServer();
      const port = await new Promise<number>((resolve) => srv.listen(0, '127.0.0.1', () => resolve((srv.address() as net.AddressInfo).port)));
      await new Promise((resolve) => srv.close(resolve));
      const t = new LdapTarget(options({ url: `ldap://127.0.0.1:${port}` }));
      await t.init(ctx());
      expect(log.lines.some((l) => l.includes('not reachable at start'))).to.equal(true);
      const e = await failure(() => t.list(ctx()));
      expect(e.retryable).to.equal(true);
      expect(e.message).to.include(`cannot reach ldap://127.0.0.1:${port}: ECONNREFUSED`);
    });

    it('a peer that is not an LDAP server fails as retryable, saying why', async () => {
      const srv = net.createServer((sock) => {
        sock.on('error', () => {});
        sock.once('data', () => sock.end('HTTP/1.1 400 Bad Request\r\n\r\n'));
      });
      const port = await new Promise<number>((resolve) => srv.listen(0, '127.0.0.1', () => resolve((srv.address() as net.AddressInfo).port)));
      try {
        const e = await failure(() => new LdapTarget(options({ url: `ldap://127.0.0.1:${port}` })).list(ctx()));
        expect(e.retryable).to.equal(true);
        expect(e.details?.['reason']).to.equal('unreachable');
        expect(e.message).to.match(/connection to ldap:\/\/127\.0\.0\.1:\d+ lost: Connection closed before message response/);
      } finally {
        srv.close();
      }
    });

    it('needs no reconnect logic: after a slapd restart the next call just works', async () => {
      await slapd!.addVendors(['v-restart']);
      const t = new LdapTarget(options());
      await t.provision(grant('v-restart'), ctx());
      await slapd!.stop();
      await slapd!.launch();
      expect((await t.list(ctx())).map((e) => e.resource)).to.deep.equal([{ kind: 'group', account: 'v-restart', group: 'vpn-vendors' }]);
    });

    it('adTtl against OpenLDAP, which has no TTL links, fails loudly and adds nothing', async () => {
      await slapd!.addVendors(['v-ttl']);
      const t = new LdapTarget(options({ adTtl: true }));
      expect(t.nativeExpiry).to.equal(true);
      const e = await failure(() => t.provision(grant('v-ttl'), ctx()));
      expect(e.retryable).to.equal(false);
      expect(e.message).to.match(/with a TTL .*adTtl needs Active Directory.*invalidAttributeSyntax \(LDAP 21\)/);
      const l = await failure(() => t.list(ctx()));
      expect(l.message).to.include('unavailableCriticalExtension (LDAP 12)');
      expect(await slapd!.members(VPN)).to.deep.equal([PLACEHOLDER_DN]);
      expect(new LdapTarget(options()).nativeExpiry).to.equal(false);
    });

    it('AD TTL values: whole seconds rounded down, never past validUntil; read back as expiresAt', () => {
      const now = new Date('2025-03-05T07:00:00.000Z');
      const validUntil = new Date(now.getTime() + 90 * 60_000 + 999);
      const seconds = ttlSeconds(validUntil, now);
      expect(seconds).to.equal(5400);
      expect(ttlMemberValue('CN=Jane Doe,OU=Vendors,DC=corp,DC=example', seconds)).to.equal('<TTL=5400>,CN=Jane Doe,OU=Vendors,DC=corp,DC=example');
      const read = parseMemberValue('<TTL=5399>,CN=Jane Doe,OU=Vendors,DC=corp,DC=example', now);
      expect(read.member).to.equal('CN=Jane Doe,OU=Vendors,DC=corp,DC=example');
      expect(read.expiresAt?.getTime()).to.equal(now.getTime() + 5_399_000);
      expect(read.expiresAt!.getTime()).to.be.at.most(validUntil.getTime());
      expect(parseMemberValue(`uid=x,${VENDORS}#'0101'B`, now, true).dn).to.deep.equal(parseDn(`uid=x,${VENDORS}`));
    });

    describe('TLS', () => {
      it('ldaps:// verifies the server against caPem and works', async () => {
        const [dn] = await slapd!.addVendors(['v-tls']);
        const t = new LdapTarget(options({ url: slapd!.ldapsUrl, ca: slapd!.caPem! }));
        await t.provision(grant('v-tls'), ctx());
        expect(await slapd!.members(VPN)).to.include(dn);
      });

      it('StartTLS upgrades the connection before the bind', async () => {
        await slapd!.addVendors(['v-stls']);
        const t = new LdapTarget(options({ startTls: true, ca: slapd!.caPem! }));
        await t.provision(grant('v-stls'), ctx());
        expect((await t.list(ctx())).map((e) => (e.resource as GroupResource).account)).to.include('v-stls');
      });

      it('a server certificate from an unknown CA fails as not retryable, with either TLS mode', async () => {
        for (const o of [{ url: slapd!.ldapsUrl }, { startTls: true }]) {
          const e = await failure(() => new LdapTarget(options(o)).list(ctx()));
          expect(e.retryable, e.message).to.equal(false);
          expect(e.details?.['reason']).to.equal('tls');
          expect(e.message).to.include('SELF_SIGNED_CERT_IN_CHAIN');
        }
      });
    });
  });
});

describe('ldap target config (no directory needed)', () => {
  const block = (o: Record<string, unknown> = {}): Record<string, unknown> => ({
    url: 'ldaps://dc1.corp.example.com',
    bindDN: 'cn=svc-wogate,ou=service,dc=corp,dc=example',
    bindPassword: 'resolved-secret',
    accountBase: 'ou=vendors,dc=corp,dc=example',
    groupBase: 'ou=groups,dc=corp,dc=example',
    groups: ['vpn-vendors'],
    ...o,
  });
  const refused = (o: Record<string, unknown>, field: RegExp): void => {
    const message = configRefusal(() => ldapTargetOptions('corp', block(o)));
    expect(message, JSON.stringify(o)).to.match(field);
    expect(message).not.to.include('resolved-secret');
  };

  it('the documented config block validates against the schema and builds a target', () => {
    const doc = fs.readFileSync(path.join(REPO, 'docs/targets/ldap.md'), 'utf8');
    const yaml = /```yaml\n([\s\S]*?)```/.exec(doc)?.[1];
    const schema = JSON.parse(fs.readFileSync(path.join(REPO, 'config/schemas/config.schema.json'), 'utf8')) as { definitions: Record<string, unknown> };
    const ajv = new Ajv({ allErrors: true, strict: true, strictRequired: false });
    const validate = ajv.compile({ definitions: { duration: schema.definitions['duration'], secretRef: schema.definitions['secretRef'] }, ...LDAP_TARGET_SCHEMA });
    const targets = (parseYaml(yaml!) as { targets: { ldap: Record<string, unknown> }[] }).targets;
    expect(targets).to.have.length(2);
    const dir = tmpDir();
    try {
      fs.writeFileSync(path.join(dir, 'ca.pem'), '-----BEGIN CERTIFICATE-----\nMA==\n-----END CERTIFICATE-----\n');
      for (const t of targets) {
        expect(validate(t.ldap), JSON.stringify(validate.errors)).to.equal(true);
        const o = ldapTargetOptions('doc', { ...t.ldap, bindPassword: 'resolved', caPem: fs.readFileSync(path.join(dir, 'ca.pem'), 'utf8') });
        expect(new LdapTarget(o).kind).to.equal('ldap');
      }
      expect(validate({ ...targets[0]!.ldap, bindPassword: 'inline-password' })).to.equal(false);
      expect(validate({ ...targets[0]!.ldap, url: 'https://dc1' })).to.equal(false);
      const ad = ldapTargetOptions('doc', { ...targets[0]!.ldap, bindPassword: 'x', caPem: fs.readFileSync(path.join(dir, 'ca.pem'), 'utf8') });
      expect(ad).to.include({ timeoutMs: 10_000, connectTimeoutMs: 5_000, adTtl: true });
      expect(new LdapTarget(ad).nativeExpiry).to.equal(true);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rejects configurations the schema cannot, naming the field', () => {
    refused({ url: 'ldap://dc1.corp.example.com' }, /ldap\.url .*bind password in clear text/);
    refused({ url: 'ldaps://dc1', startTls: true }, /ldap\.startTls/);
    refused({ url: 'ldap://127.0.0.1', caPem: 'not a certificate' }, /ldap\.caPem holds no PEM certificate/);
    refused({ bindPassword: '' }, /ldap\.bindPassword is empty/);
    refused({ bindDN: 'not a dn' }, /ldap\.bindDN/);
    refused({ bindDN: 'uid=x,ou=vendors,dc=corp,dc=example' }, /ldap\.bindDN lies under accountBase/);
    refused({ groups: [] }, /ldap\.groups must list/);
    refused({ groups: ['vpn'], groupBase: undefined }, /ldap\.groups\[0\] .*set ldap\.groupBase/);
    refused({ groups: ['vpn', 'cn=VPN,ou=groups,dc=corp,dc=example'] }, /ldap\.groups\[1\] names .* twice/);
    refused({ groups: ['cn=vendors-all,ou=vendors,dc=corp,dc=example'] }, /ldap\.groups\[0\] .*under accountBase/);
    refused({ placeholderMember: 'cn=p,ou=vendors,dc=corp,dc=example' }, /ldap\.placeholderMember lies under accountBase/);
    refused({ placeholderMember: 'cn=svc-wogate,ou=service,dc=corp,dc=example' }, /ldap\.placeholderMember is the service account/);
    refused({ adTtl: true, memberAttribute: 'uniqueMember' }, /ldap\.adTtl/);
    refused({ timeout: '10m' }, /ldap\.timeout must be between/);
    refused({ connectTimeout: 'soon' }, /ldap\.connectTimeout/);
  });

  it('compares DNs without regard to case or spacing, and keeps escaped commas inside values', () => {
    expect(dnKey(parseDn('CN=Jane Doe , OU=Vendors,DC=Corp')!)).to.equal(dnKey(parseDn('cn=jane  doe,ou=vendors,dc=corp')!));
    expect(parseDn('cn=Doe\\, Jane,ou=vendors,dc=corp')).to.have.length(3);
    expect(parseDn('cn=a\\2Cb,dc=x')![0]![0]!.value).to.equal('a,b');
    expect(parseDn('cn=x+uid=y,dc=z')![0]).to.have.length(2);
    for (const bad of ['', 'vpn-vendors', 'cn=,dc=x', 'cn=a"b,dc=x', '=x,dc=y', 'cn=a\\zz,dc=x']) expect(parseDn(bad), bad).to.equal(undefined);
  });
});
