import { execFile, spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { Attribute, Change, Client } from 'ldapts';
import type { Availability } from './netns.js';
import { skipOrFail as skipOrFailNeeding } from './skip.js';

/**
 * A real OpenLDAP slapd for tests: its own temp dir, a throwaway slapd.conf (mdb backend, the
 * core/cosine/inetorgperson/nis schemas, optionally the memberof overlay and TLS), listening on
 * 127.0.0.1 on free ports, seeded with:
 *
 *   dc=example,dc=com
 *     ou=system   cn=wogate (the service account; its password is the test's canary),
 *                 cn=reader (may read, may not write), cn=wogate-operators (the ACL group)
 *     ou=vendors  inetOrgPerson accounts: uid=acme.jdoe, uid=acme.rsingh, and more by addVendors()
 *     ou=staff    uid=alice, an employee wogate must never touch
 *     ou=groups   cn=vpn-vendors, cn=plc-engineering, cn=admins (groupOfNames, each with the
 *                 placeholder cn=wogate-placeholder,ou=groups as a member), cn=hmi-operators
 *                 (groupOfUniqueNames)
 *
 * The ACLs are what a directory admin would give wogate: members of cn=wogate-operators may
 * write member/uniqueMember under ou=groups and read groups and vendors; nobody else sees
 * anything. setOperator(false) takes the service account out of that group: a real permission loss.
 */

export const SUFFIX = 'dc=example,dc=com';
export const GROUPS = `ou=groups,${SUFFIX}`;
export const VENDORS = `ou=vendors,${SUFFIX}`;
export const SERVICE_DN = `cn=wogate,ou=system,${SUFFIX}`;
export const READER_DN = `cn=reader,ou=system,${SUFFIX}`;
export const OPERATORS_DN = `cn=wogate-operators,ou=system,${SUFFIX}`;
export const PLACEHOLDER_DN = `cn=wogate-placeholder,${GROUPS}`;
export const STAFF_DN = `uid=alice,ou=staff,${SUFFIX}`;

const run = promisify(execFile);
const SCHEMAS = ['core', 'cosine', 'inetorgperson', 'nis'];
const SCHEMA_DIR = '/etc/ldap/schema';
const MODULE_DIRS = ['/usr/lib/ldap', '/usr/lib/x86_64-linux-gnu/ldap', '/usr/lib/aarch64-linux-gnu/ldap', '/usr/lib64/openldap', '/usr/libexec/openldap'];

function findBinary(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/usr/local/sbin', '/usr/libexec'];
  for (const d of dirs) {
    const p = path.join(d, name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      // next
    }
  }
  return undefined;
}

let availability: Promise<Availability> | undefined;

/** Whether slapd, slapadd and the schemas are installed (Debian: `apt-get install slapd ldap-utils`). */
export function slapdAvailable(): Promise<Availability> {
  availability ??= (async (): Promise<Availability> => {
    for (const bin of ['slapd', 'slapadd']) if (!findBinary(bin)) return { ok: false, why: `${bin} is not installed (apt-get install slapd ldap-utils)` };
    for (const s of SCHEMAS) {
      if (!fs.existsSync(path.join(SCHEMA_DIR, `${s}.schema`))) return { ok: false, why: `${SCHEMA_DIR}/${s}.schema is missing (apt-get install slapd)` };
    }
    return { ok: true };
  })();
  return availability;
}

/** Skips with a banner nobody can miss; under CI (which installs slapd) a missing slapd fails instead. */
export function skipOrFail(ctx: Mocha.Context, suite: string, why: string): never {
  return skipOrFailNeeding(ctx, suite, why, 'These tests need OpenLDAP: apt-get install slapd ldap-utils (CI does).');
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** `{SSHA}` as slappasswd writes it, so the canary is never stored in clear. */
function ssha(password: string): string {
  const salt = crypto.randomBytes(8);
  const digest = crypto.createHash('sha1').update(password).update(salt).digest();
  return `{SSHA}${Buffer.concat([digest, salt]).toString('base64')}`;
}

function ldif(entries: Record<string, string | string[]>[]): string {
  return entries
    .map((e) => Object.entries(e).flatMap(([k, v]) => (Array.isArray(v) ? v : [v]).map((x) => `${k}: ${x}`)).join('\n'))
    .join('\n\n')
    .concat('\n');
}

export interface SlapdOptions {
  /** The service account's password (the contract's canary). */
  readonly servicePassword: string;
  /** Load the memberof overlay, so accounts carry memberOf. Default true. */
  readonly memberOf?: boolean;
  /** Also listen on ldaps:// and accept StartTLS, with a certificate from a CA made for this run. */
  readonly tls?: boolean;
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

export class Slapd {
  private child: ChildProcess | undefined;
  private stderr = '';
  readonly rootDN = `cn=admin,${SUFFIX}`;
  readonly rootPassword = crypto.randomBytes(12).toString('hex');
  readonly readerPassword = crypto.randomBytes(12).toString('hex');

  private constructor(
    readonly dir: string,
    private readonly bin: string,
    readonly port: number,
    readonly tlsPort: number | undefined,
    /** PEM of the CA that signed the server certificate (tls only). */
    readonly caPem: string | undefined,
  ) {}

  get url(): string {
    return `ldap://127.0.0.1:${this.port}`;
  }

  get ldapsUrl(): string {
    if (this.tlsPort === undefined) throw new Error('slapd was started without tls');
    return `ldaps://127.0.0.1:${this.tlsPort}`;
  }

  static async start(o: SlapdOptions): Promise<Slapd> {
    const bin = findBinary('slapd');
    const slapadd = findBinary('slapadd');
    if (!bin || !slapadd) throw new Error('slapd/slapadd not installed');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wogate-slapd-'));
    fs.mkdirSync(path.join(dir, 'db'));
    const moduleDir = MODULE_DIRS.find((d) => fs.existsSync(path.join(d, 'back_mdb.so')) || fs.existsSync(path.join(d, 'back_mdb.la')));
    const port = await freePort();
    const tlsPort = o.tls ? await freePort() : undefined;
    const caPem = o.tls ? await makeCertificates(dir) : undefined;
    const s = new Slapd(dir, bin, port, tlsPort, caPem);
    const memberOf = o.memberOf ?? true;
    const op = `group.exact="${OPERATORS_DN}"`;
    const conf = [
      ...SCHEMAS.map((n) => `include ${SCHEMA_DIR}/${n}.schema`),
      `pidfile ${path.join(dir, 'slapd.pid')}`,
      `argsfile ${path.join(dir, 'slapd.args')}`,
      ...(moduleDir ? [`modulepath ${moduleDir}`, 'moduleload back_mdb', ...(memberOf ? ['moduleload memberof'] : [])] : []),
      ...(o.tls ? [`TLSCACertificateFile ${path.join(dir, 'ca.pem')}`, `TLSCertificateFile ${path.join(dir, 'server.pem')}`, `TLSCertificateKeyFile ${path.join(dir, 'server.key')}`] : []),
      'database mdb',
      `suffix "${SUFFIX}"`,
      `rootdn "${s.rootDN}"`,
      `rootpw ${s.rootPassword}`,
      `directory ${path.join(dir, 'db')}`,
      'maxsize 33554432',
      'index objectClass,uid eq',
      ...(memberOf ? ['overlay memberof'] : []),
      'access to dn.base="" by * read',
      'access to dn.base="cn=Subschema" by * read',
      'access to attrs=userPassword by anonymous auth by * none',
      `access to dn.subtree="${GROUPS}" attrs=member,uniqueMember by ${op} write by dn.exact="${READER_DN}" read by * none`,
      `access to dn.subtree="${GROUPS}" by ${op} read by dn.exact="${READER_DN}" read by * none`,
      `access to dn.subtree="${VENDORS}" by ${op} read by dn.exact="${READER_DN}" read by * none`,
      'access to * by * none',
      '',
    ].join('\n');
    fs.writeFileSync(path.join(dir, 'slapd.conf'), conf, { mode: 0o600 });
    const group = (cn: string): Record<string, string | string[]> => ({ dn: `cn=${cn},${GROUPS}`, objectClass: 'groupOfNames', cn, member: PLACEHOLDER_DN });
    const seed = ldif([
      { dn: SUFFIX, objectClass: ['dcObject', 'organization'], dc: 'example', o: 'Example Water' },
      ...['system', 'vendors', 'staff', 'groups'].map((ou) => ({ dn: `ou=${ou},${SUFFIX}`, objectClass: 'organizationalUnit', ou })),
      { dn: SERVICE_DN, objectClass: ['organizationalRole', 'simpleSecurityObject'], cn: 'wogate', userPassword: ssha(o.servicePassword) },
      { dn: READER_DN, objectClass: ['organizationalRole', 'simpleSecurityObject'], cn: 'reader', userPassword: ssha(s.readerPassword) },
      { dn: OPERATORS_DN, objectClass: 'groupOfNames', cn: 'wogate-operators', member: [SERVICE_DN, PLACEHOLDER_DN] },
      ...['acme.jdoe', 'acme.rsingh'].map((uid) => ({ dn: `uid=${uid},${VENDORS}`, objectClass: 'inetOrgPerson', uid, cn: uid, sn: 'Vendor' })),
      { dn: STAFF_DN, objectClass: 'inetOrgPerson', uid: 'alice', cn: 'Alice Staff', sn: 'Staff' },
      group('vpn-vendors'),
      group('plc-engineering'),
      group('admins'),
      { dn: `cn=hmi-operators,${GROUPS}`, objectClass: 'groupOfUniqueNames', cn: 'hmi-operators', uniqueMember: PLACEHOLDER_DN },
    ]);
    fs.writeFileSync(path.join(dir, 'seed.ldif'), seed);
    try {
      await run(slapadd, ['-f', path.join(dir, 'slapd.conf'), '-l', path.join(dir, 'seed.ldif')], { timeout: 20_000 });
    } catch (e) {
      fs.rmSync(dir, { recursive: true, force: true });
      throw new Error(`slapadd failed: ${(e as { stderr?: string }).stderr ?? (e as Error).message}`);
    }
    await s.launch();
    return s;
  }

  /** Starts slapd on this instance's ports and waits until the root DN can bind. */
  async launch(): Promise<void> {
    const urls = [this.url, ...(this.tlsPort !== undefined ? [`ldaps://127.0.0.1:${this.tlsPort}`] : [])].map((u) => `${u}/`).join(' ');
    // -d keeps slapd in the foreground (a child we can signal); level 0 logs nothing but fatal errors.
    const child = spawn(this.bin, ['-d', '0', '-h', urls, '-f', path.join(this.dir, 'slapd.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.stderr = '';
    child.stderr?.on('data', (b: Buffer) => {
      this.stderr = (this.stderr + b.toString()).slice(-4000);
    });
    live.add(child);
    child.on('exit', () => live.delete(child));
    this.child = child;
    const until = Date.now() + 15_000;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`slapd exited at start: ${this.stderr.trim()}`);
      try {
        await this.admin(async () => undefined);
        return;
      } catch {
        if (Date.now() > until) throw new Error(`slapd did not answer on ${this.url}: ${this.stderr.trim()}`);
        await sleep(50);
      }
    }
  }

  /**
   * SIGSTOP: connections are still accepted by the kernel, nothing answers. Resolves once every
   * thread is stopped: the stop is delivered asynchronously, and until the thread chosen for it
   * runs, the other threads go on serving requests.
   */
  async pause(): Promise<void> {
    const pid = this.child?.pid;
    if (pid === undefined) throw new Error('slapd is not running');
    this.child?.kill('SIGSTOP');
    const tasks = `/proc/${pid}/task`;
    if (!fs.existsSync(tasks)) return sleep(200);
    const until = Date.now() + 5_000;
    const stopped = (): boolean =>
      fs.readdirSync(tasks).every((t) => {
        try {
          // The state is the field after the parenthesised command name.
          return /\)\s+[Tt]\s/.test(fs.readFileSync(path.join(tasks, t, 'stat'), 'utf8'));
        } catch {
          return true; // the thread is gone
        }
      });
    while (!stopped()) {
      if (Date.now() > until) throw new Error('slapd did not stop on SIGSTOP');
      await sleep(2);
    }
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  resume(): void {
    this.child?.kill('SIGCONT');
  }

  /** Stops slapd (the data stays); launch() brings it back on the same port. */
  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGCONT');
    child.kill('SIGTERM');
    const timer = new AbortController();
    const killed = await Promise.race([exited.then(() => true), sleep(5_000, false, { signal: timer.signal }).catch(() => false)]);
    timer.abort();
    if (!killed) {
      child.kill('SIGKILL');
      await exited;
    }
  }

  async close(): Promise<void> {
    await this.stop();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  /** Runs `fn` with a client bound as the root DN. */
  async admin<T>(fn: (c: Client) => Promise<T>): Promise<T> {
    const c = new Client({ url: this.url, timeout: 5_000, connectTimeout: 2_000 });
    try {
      await c.bind(this.rootDN, this.rootPassword);
      return await fn(c);
    } finally {
      await c.unbind().catch(() => {});
    }
  }

  /** Adds inetOrgPerson accounts under ou=vendors (those already there are kept); returns their DNs. */
  async addVendors(uids: readonly string[]): Promise<string[]> {
    return this.admin(async (c) => {
      const dns: string[] = [];
      for (const uid of uids) {
        const dn = `uid=${uid},${VENDORS}`;
        await c.add(dn, { objectClass: 'inetOrgPerson', uid, cn: uid, sn: 'Vendor' }).catch((e: { code?: number }) => {
          if (e.code !== 68) throw e;
        });
        dns.push(dn);
      }
      return dns;
    });
  }

  /** The values of a group's member (or uniqueMember) attribute. */
  async members(groupDn: string, attr = 'member'): Promise<string[]> {
    return this.admin(async (c) => {
      const { searchEntries } = await c.search(groupDn, { scope: 'base', attributes: [attr] });
      const v = searchEntries[0]?.[attr] ?? [];
      return (Array.isArray(v) ? v : [v]).map(String);
    });
  }

  /** The memberOf values the overlay keeps on an entry. */
  async memberOf(dn: string): Promise<string[]> {
    return this.admin(async (c) => {
      const { searchEntries } = await c.search(dn, { scope: 'base', attributes: ['memberOf'] });
      const v = searchEntries[0]?.['memberOf'] ?? [];
      return (Array.isArray(v) ? v : [v]).map(String);
    });
  }

  async modify(dn: string, operation: 'add' | 'delete' | 'replace', attr: string, values: string[]): Promise<void> {
    await this.admin((c) => c.modify(dn, new Change({ operation, modification: new Attribute({ type: attr, values }) })));
  }

  /** Puts every group back to its placeholder member alone. */
  async resetGroups(): Promise<void> {
    for (const cn of ['vpn-vendors', 'plc-engineering', 'admins']) await this.modify(`cn=${cn},${GROUPS}`, 'replace', 'member', [PLACEHOLDER_DN]);
    await this.modify(`cn=hmi-operators,${GROUPS}`, 'replace', 'uniqueMember', [PLACEHOLDER_DN]);
  }

  /** Sets the service account's password (stored hashed). */
  async setServicePassword(password: string): Promise<void> {
    await this.modify(SERVICE_DN, 'replace', 'userPassword', [ssha(password)]);
  }

  /** Gives (true) or takes away (false) the service account's access, through its ACL group. */
  async setOperator(enabled: boolean): Promise<void> {
    await this.modify(OPERATORS_DN, 'replace', 'member', enabled ? [SERVICE_DN, PLACEHOLDER_DN] : [PLACEHOLDER_DN]);
  }
}

/** A CA and a server certificate for 127.0.0.1/localhost, made with openssl; returns the CA PEM. */
async function makeCertificates(dir: string): Promise<string> {
  const f = (n: string): string => path.join(dir, n);
  const openssl = async (...args: string[]): Promise<void> => {
    await run('openssl', args, { timeout: 20_000 });
  };
  await openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '2', '-subj', '/CN=wogate test CA');
  await openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', '/CN=localhost');
  fs.writeFileSync(f('ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n');
  await openssl('x509', '-req', '-in', f('server.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f('server.pem'), '-days', '2', '-extfile', f('ext.cnf'));
  // slapd may run as another user on some systems; the key must still be readable by it.
  fs.chmodSync(f('server.key'), 0o644);
  return fs.readFileSync(f('ca.pem'), 'utf8');
}
