import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { demoOrder } from '../../src/demo/demo.js';
import type { Grant } from '../../src/domain/index.js';
import { until, type TestDaemon } from './daemon.js';
import { CookieJar } from './oidc-portal.js';
import { startCertificatePortal } from './portal-world.js';
import { tmpDir } from './world.js';

const run = promisify(execFile);

/** Debian's OpenVPN, or the one WOGATE_OPENVPN names. */
export const OPENVPN = process.env.WOGATE_OPENVPN ?? '/usr/sbin/openvpn';

/** `openssl ...`, its stdout. */
export async function openssl(...args: string[]): Promise<string> {
  return (await run('openssl', args, { timeout: 30_000 })).stdout;
}

/** What `openvpn --genkey secret` writes: a 2048-bit static key as 16 lines of hex, with its comment header. */
export function staticKeyText(): string {
  const lines = randomBytes(256).toString('hex').match(/.{32}/g) as string[];
  return ['#', '# 2048 bit OpenVPN static key', '#', '-----BEGIN OpenVPN Static key V1-----', ...lines, '-----END OpenVPN Static key V1-----', ''].join('\n');
}

/** A CA and one certificate from it, made by openssl in `dir`: the leaf for `usage` (OpenVPN's remote-cert-tls checks it), with an RSA or EC key. */
export async function caAndLeaf(dir: string, o: { ca: string; leaf: string; usage: 'serverAuth' | 'clientAuth'; key?: 'rsa' | 'ec' }): Promise<{ caPem: string; leafCert: string; leafKey: string }> {
  const f = (n: string) => path.join(dir, n);
  await openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '2', '-subj', o.ca,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  const key = o.key === 'ec' ? ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'] : ['-newkey', 'rsa:2048'];
  await openssl('req', ...key, '-nodes', '-keyout', f('leaf.key'), '-out', f('leaf.csr'), '-subj', o.leaf);
  fs.writeFileSync(f('leaf.ext'), `basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature${o.key === 'ec' ? '' : ',keyEncipherment'}\nextendedKeyUsage=${o.usage}\n`);
  await openssl('x509', '-req', '-in', f('leaf.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-set_serial', '0x1f', '-days', '2', '-extfile', f('leaf.ext'), '-out', f('leaf.pem'));
  return { caPem: f('ca.pem'), leafCert: f('leaf.pem'), leafKey: f('leaf.key') };
}

/**
 * The plant's own CA for its VPN server (not wogate's: wogate's CA issues client certificates
 * only) and the server's certificate from it.
 */
export async function siteCa(dir: string, serverName: string): Promise<{ caPem: string; serverCert: string; serverKey: string }> {
  const c = await caAndLeaf(dir, { ca: '/O=North WTP/CN=North WTP site CA', leaf: `/CN=${serverName}`, usage: 'serverAuth' });
  return { caPem: c.caPem, serverCert: c.leafCert, serverKey: c.leafKey };
}

/** The inline blocks of an .ovpn text. */
export function profileParts(profile: string): { block(name: string): string } {
  return {
    block(name) {
      const m = new RegExp(`^<${name}>\\n([\\s\\S]*?)\\n</${name}>$`, 'm').exec(profile);
      if (!m) throw new Error(`profile has no <${name}> block`);
      return `${m[1] as string}\n`;
    },
  };
}

export interface Collected {
  readonly status: number;
  readonly html: string;
  /** The portal's home page before collecting. */
  readonly home: string;
  /** The .ovpn text, when the page offered one. */
  readonly profile?: string;
  /** The .p12 bytes, when the page offered one. */
  readonly pkcs12?: Buffer;
  readonly passphrase?: string;
}

export interface VpnPortal {
  readonly t: TestDaemon;
  readonly url: string;
  readonly files: string;
  readonly grantId: string;
  /** Signs tech-jdoe in (with MFA) and posts the collect form. */
  collect(): Promise<Collected>;
  /** Sends the order again as CLOSE: the grant is revoked and its certificate goes on the CRL. */
  closeOrder(): Promise<void>;
  close(): Promise<void>;
}

/**
 * A real OpenID provider and a real daemon whose local-CA certificate target carries `vpnProfile`
 * (config shape: file: references already pointing at files the caller wrote), one approved order
 * for tech-jdoe, and the grant active.
 */
export async function startVpnPortal(vpnProfile: Record<string, unknown>, files = tmpDir()): Promise<VpnPortal> {
  const world = await startCertificatePortal({
    users: { 'tech-jdoe': { mfa: true } },
    vendors: { 'acme-controls': { 'tech-jdoe': '10.8.0.21' } },
    ruleId: 'vpn-certificates',
    envPrefix: 'VPN_PORTAL',
    local: (url) => ({ keyBits: 2048, crlUrl: `${url}/pki/vendor-certs/crl` }),
    vpnProfile,
    edit: (c) => {
      c.server.rateLimits.login = { perMinute: 1000 };
      // The certificate target alone: no http target next to it.
      c.targets = c.targets.filter((x: { id: string }) => x.id === 'vendor-certs');
    },
    files,
  });
  const { t, idp, url } = world;
  const opened = new Date();
  const order = (status: string, changedAt: Date) => {
    const o = demoOrder('WO-VPN', status, changedAt, opened);
    return { ...o, data: { workOrder: { ...o.data.workOrder, assets: [{ assetnum: 'PLC-CL2-01' }] } } };
  };
  let grant: Grant;
  try {
    expect((await t.hook(order('APPR', opened))).status).to.equal(202);
    const active = async () => (await t.daemon.runtime.store.listGrants({ states: ['active'] })).filter((g) => g.technicianId === 'tech-jdoe');
    await until(async () => (await active()).length === 1, 'the certificate grant active', 20_000);
    grant = (await active())[0] as Grant;
  } catch (e) {
    await world.close();
    throw e;
  }

  return {
    t,
    url,
    files,
    grantId: grant.id,
    async collect() {
      idp.loginAs('tech-jdoe');
      const jar = new CookieJar();
      const home = await (await jar.follow(`${url}/portal/login`)).res.text();
      const csrf = /name="csrf" value="([^"]+)"/.exec(home)?.[1] as string;
      const res = await jar.fetch(`${url}/portal/grants/${encodeURIComponent(grant.id)}/credential`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ csrf }).toString() });
      const html = await res.text();
      const data = (type: string) => {
        const b64 = new RegExp(`href="data:${type};base64,([A-Za-z0-9+/=]+)"`).exec(html)?.[1];
        return b64 === undefined ? undefined : Buffer.from(b64, 'base64');
      };
      const profile = data('application/x-openvpn-profile')?.toString('utf8');
      const pkcs12 = data('application/x-pkcs12');
      const passphrase = /id="passphrase">([a-z2-9-]+)</.exec(html)?.[1];
      return { status: res.status, html, home, ...(profile !== undefined ? { profile } : {}), ...(pkcs12 ? { pkcs12 } : {}), ...(passphrase ? { passphrase } : {}) };
    },
    async closeOrder() {
      expect((await t.hook(order('CLOSE', new Date(Date.now() + 1000)))).status).to.equal(202);
      await until(async () => (await t.daemon.runtime.store.getGrant(grant.id))?.state === 'revoked', 'the grant revoked', 20_000);
    },
    close: () => world.close(),
  };
}
