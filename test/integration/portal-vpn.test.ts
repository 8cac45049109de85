import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { expect } from 'chai';
import fc from 'fast-check';
import forge from 'node-forge';
import YAML from 'yaml';
import { loadConfig, resolveSecrets } from '../../src/config/config.js';
import { handOutFiles, renderOpenvpnProfile } from '../../src/portal/vpn-profile.js';
import { CredentialVault } from '../../src/portal/vault.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import { CertificateTarget, certificateTargetOptions, type IssuedCredential } from '../../src/targets/certificate.js';
import { checkVpnProfile, VpnProfileProblem, type OpenvpnProfile } from '../../src/targets/certificate-vpn.js';
import type { AuditRecord } from '../../src/store/store.js';
import { buildTargets } from '../../src/cli/runtime.js';
import { exampleConfig, REPO } from '../helpers/daemon.js';
import { skipOrFail } from '../helpers/skip.js';
import { caAndLeaf, OPENVPN, openssl, profileParts, siteCa, startVpnPortal, staticKeyText, type Collected, type VpnPortal } from '../helpers/vpn-portal.js';
import { tmpDir } from '../helpers/world.js';

const SERVER = 'vpn.north-wtp.test';

/** Runs openvpn until its output matches `until` (then stops it) or it exits; returns everything it printed. */
function openvpnUntil(args: string[], until: RegExp): Promise<{ output: string; matched: boolean }> {
  return new Promise((resolve, reject) => {
    const p = spawn(OPENVPN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let matched = false;
    const seen = (b: Buffer) => {
      output += b.toString();
      if (!matched && until.test(output)) {
        matched = true;
        p.kill('SIGTERM');
      }
    };
    p.stdout.on('data', seen);
    p.stderr.on('data', seen);
    p.on('error', reject);
    p.on('exit', () => resolve({ output, matched }));
  });
}

/** A CA and a client certificate from it, made by openssl: an IssuedCredential as a target would hand it over. */
async function credential(dir: string, key: 'rsa' | 'ec'): Promise<IssuedCredential> {
  const c = await caAndLeaf(dir, { ca: '/CN=test vendor CA', leaf: '/O=acme-controls/CN=tech-jdoe.acme-controls', usage: 'clientAuth', key });
  const now = Date.now();
  return {
    serial: '1f', commonName: 'tech-jdoe.acme-controls', notBefore: new Date(now - 60_000), notAfter: new Date(now + 3_600_000),
    certificatePem: fs.readFileSync(c.leafCert, 'utf8'), privateKeyPem: fs.readFileSync(c.leafKey, 'utf8'), chainPem: fs.readFileSync(c.caPem, 'utf8'),
  };
}

const profile = (o: Partial<Record<keyof OpenvpnProfile, unknown>> = {}) => checkVpnProfile({ format: 'openvpn', remotes: [{ host: SERVER }], ...o });

describe('vendor portal: the OpenVPN profile of a certificate target, collected once', function () {
  this.timeout(90_000);
  let portal: VpnPortal;
  let first: Collected;
  let udpPort: number;
  let siteCaPem: string;

  before(async () => {
    const files = tmpDir();
    const site = await siteCa(files, SERVER);
    siteCaPem = fs.readFileSync(site.caPem, 'utf8');
    fs.writeFileSync(path.join(files, 'ta.key'), staticKeyText(), { mode: 0o600 });
    // Nothing listens there: the openvpn test stops once the client has loaded its key and sends.
    udpPort = 40_000 + (process.pid % 20_000);
    portal = await startVpnPortal({
      format: 'openvpn',
      remotes: [{ host: '127.0.0.1', port: udpPort, proto: 'udp' }, { host: SERVER, port: 443, proto: 'tcp' }],
      verifyX509Name: SERVER,
      serverCa: `file:${site.caPem}`,
      tlsCrypt: `file:${path.join(files, 'ta.key')}`,
      dataCiphers: ['AES-256-GCM', 'CHACHA20-POLY1305'],
    }, files);
    first = await portal.collect();
  });

  after(async () => {
    await portal?.close();
  });

  const audit = async (action: string): Promise<AuditRecord[]> => (await portal.t.daemon.runtime.store.readAudit(0, 100_000)).filter((r) => r.action === action);

  it('hands the credential out as an OpenVPN profile instead of a PKCS#12, with the passphrase and how to import it, audited as openvpn', async () => {
    expect(first.home).to.include('<button type="submit">Collect VPN profile</button>');
    expect(first.status).to.equal(200);
    expect(first.profile, 'an .ovpn download').to.be.a('string');
    expect(first.pkcs12, 'no PKCS#12 unless alsoPkcs12').to.equal(undefined);
    expect(first.passphrase).to.match(/^([a-z2-9]{5}-){4}[a-z2-9]{5}$/);
    expect(first.html).to.include('Your VPN profile').and.include('download="tech-jdoe.acme-controls.ovpn"').and.include('private key password');
    expect(first.html).to.not.match(/<script/i);
    const collected = (await audit('portal.credential_collected')).at(-1);
    expect(collected).to.deep.include({ actor: 'portal:acme-controls/tech-jdoe', subject: `grant:${portal.grantId}` });
    expect(collected?.details).to.deep.include({ handedOut: ['openvpn'] });
    expect(JSON.stringify(collected?.details)).to.not.include(first.passphrase as string).and.not.include('PRIVATE KEY');
  });

  it('answers a second collection with 410 already_collected and no profile, and keeps only the tombstone', async () => {
    const again = await portal.collect();
    expect(again.status).to.equal(410);
    expect(again.html).to.include('Already collected');
    expect(again.profile).to.equal(undefined);
    expect((await audit('portal.refused')).filter((r) => (r.details as { reason?: string }).reason === 'already_collected')).to.have.length(1);
    const db = new Database(path.join(portal.t.dir, 'wogate.db'), { readonly: true });
    try {
      expect(db.prepare('SELECT sealed, collected_by FROM portal_credentials WHERE grant_id = ?').get(portal.grantId)).to.deep.equal({ sealed: null, collected_by: 'portal:acme-controls/tech-jdoe' });
    } finally {
      db.close();
    }
  });

  it('writes the configured servers, server name check, TLS floor and AEAD ciphers, trusts the site CA for the server, and inlines tls-crypt', () => {
    const p = profileParts(first.profile as string);
    const directives = (first.profile as string).replace(/^<([a-z-]+)>\n[\s\S]*?\n<\/\1>$/gm, '').split('\n').filter((l) => l !== '' && !l.startsWith('#'));
    expect(directives).to.deep.equal([
      'client', 'dev tun', 'nobind', 'persist-key', 'persist-tun', 'auth-nocache',
      `remote 127.0.0.1 ${udpPort} udp`, `remote ${SERVER} 443 tcp`,
      'remote-cert-tls server', `verify-x509-name ${SERVER} name`, 'tls-version-min 1.2', 'data-ciphers AES-256-GCM:CHACHA20-POLY1305', 'verb 3',
    ]);
    expect(p.block('ca')).to.equal(siteCaPem.replace(/\r/g, ''));
    expect(p.block('cert')).to.match(/^-----BEGIN CERTIFICATE-----\n[\s\S]+\n-----END CERTIFICATE-----\n$/);
    expect(p.block('key')).to.match(/^-----BEGIN ENCRYPTED PRIVATE KEY-----\n/);
    expect(p.block('tls-crypt')).to.match(/^-----BEGIN OpenVPN Static key V1-----\n([0-9a-f]{32}\n){16}-----END OpenVPN Static key V1-----\n$/);
    expect(first.profile).to.not.match(/\b(cipher|auth-user-pass|script-security|up|down|plugin)\b /);
  });

  it("encrypts the profile's key as PKCS#8 under AES-256: openssl opens it only with the passphrase, and it belongs to the certificate", async () => {
    const dir = tmpDir();
    try {
      const p = profileParts(first.profile as string);
      const f = (n: string) => path.join(dir, n);
      fs.writeFileSync(f('key.pem'), p.block('key'), { mode: 0o600 });
      fs.writeFileSync(f('cert.pem'), p.block('cert'));
      fs.writeFileSync(f('pass'), `${first.passphrase as string}\n`, { mode: 0o600 });
      fs.writeFileSync(f('wrong'), 'not-the-passphrase\n', { mode: 0o600 });
      const structure = await openssl('asn1parse', '-in', f('key.pem'));
      expect(structure).to.include('PBES2').and.include('PBKDF2').and.include('aes-256-cbc');
      const fromKey = await openssl('pkey', '-in', f('key.pem'), '-passin', `file:${f('pass')}`, '-pubout');
      const fromCert = await openssl('x509', '-in', f('cert.pem'), '-noout', '-pubkey');
      expect(fromKey).to.equal(fromCert);
      expect(await openssl('x509', '-in', f('cert.pem'), '-noout', '-subject')).to.include('CN = tech-jdoe.acme-controls');
      for (const wrong of [['-passin', `file:${f('wrong')}`], ['-passin', 'pass:']]) {
        const r = spawnSync('openssl', ['pkey', '-in', f('key.pem'), ...wrong, '-noout'], { encoding: 'utf8' });
        expect(r.status, `openssl pkey ${wrong.join(' ')}`).to.not.equal(0);
      }
      // And the CA wogate publishes vouches for the certificate.
      fs.writeFileSync(f('wogate-ca.pem'), await (await fetch(`${portal.url}/pki/vendor-certs/ca.pem`)).text());
      expect(await openssl('verify', '-purpose', 'sslclient', '-CAfile', f('wogate-ca.pem'), f('cert.pem'))).to.include('OK');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('is read by openvpn, which loads the key with the passphrase from --askpass and refuses to start with a wrong one', async function () {
    if (!fs.existsSync(OPENVPN)) skipOrFail(this, 'openvpn profile test', `${OPENVPN} is not installed`, 'This test needs OpenVPN: apt-get install openvpn (CI does), or set WOGATE_OPENVPN.');
    const dir = tmpDir();
    try {
      const f = (n: string) => path.join(dir, n);
      fs.writeFileSync(f('profile.ovpn'), first.profile as string, { mode: 0o600 });
      fs.writeFileSync(f('pass'), `${first.passphrase as string}\n`, { mode: 0o600 });
      fs.writeFileSync(f('wrong'), 'aaaaa-bbbbb-ccccc-ddddd-eeeee\n', { mode: 0o600 });
      // Past option parsing and key loading, the client opens its socket to the first remote.
      const good = await openvpnUntil(['--config', f('profile.ovpn'), '--askpass', f('pass')], new RegExp(`UDPv4 link remote: \\[AF_INET\\]127\\.0\\.0\\.1:${udpPort}`));
      expect(good.matched, good.output).to.equal(true);
      expect(good.output).to.not.match(/Options error|Cannot load|WARNING/i);
      const wrong = await openvpnUntil(['--config', f('profile.ovpn'), '--askpass', f('wrong')], /link remote/);
      expect(wrong.matched, 'a wrong passphrase never gets as far as the network').to.equal(false);
      expect(wrong.output).to.match(/Cannot load private key|private key password verification failed/i);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('certificate target vpnProfile: config checks and rendering', function () {
  this.timeout(30_000);
  let dir: string;
  let rsa: IssuedCredential;

  before(async () => {
    dir = tmpDir();
    fs.mkdirSync(path.join(dir, 'rsa'));
    rsa = await credential(path.join(dir, 'rsa'), 'rsa');
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  const options = (vpnProfile: unknown) => () => certificateTargetOptions('vpn-certs', { issuer: 'local', local: { dir: '/var/lib/wogate/ca', passphrase: 'a-long-enough-passphrase' }, vpnProfile });

  it('refuses a host that would smuggle a directive into the profile, naming the field, both at config load and in the adapter options', () => {
    const evil = `${SERVER} 1194 udp\nscript-security 2\nup /tmp/x`;
    expect(options({ format: 'openvpn', remotes: [{ host: evil }] })).to.throw(/^target vpn-certs: certificate\.vpnProfile\.remotes\[0\]\.host ".*" must be a DNS name/);
    const cfgDir = tmpDir();
    try {
      const file = exampleConfig(cfgDir, (c) => {
        c.targets.push({ id: 'vpn-certs', kind: 'certificate', certificate: { issuer: 'local', local: { dir: path.join(cfgDir, 'ca'), passphrase: 'env:CA_PASS' }, vpnProfile: { format: 'openvpn', remotes: [{ host: evil }] } } });
      });
      expect(() => loadConfig(file, {})).to.throw(/\/targets\/\d+\/certificate\/vpnProfile\/remotes\/0\/host: must be a DNS name or an IP address/);
    } finally {
      fs.rmSync(cfgDir, { recursive: true, force: true });
    }
  });

  it('loads the documented vpnProfile example and builds the target from it', async () => {
    const doc = fs.readFileSync(path.join(REPO, 'docs/targets/certificate.md'), 'utf8');
    const block = [...doc.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1] as string).find((b) => b.startsWith('vpnProfile:')) as string;
    const cfgDir = tmpDir();
    try {
      const site = await siteCa(cfgDir, SERVER);
      fs.writeFileSync(path.join(cfgDir, 'ta.key'), staticKeyText(), { mode: 0o600 });
      const refs: Record<string, string> = { '/etc/wogate/vpn-server-ca.pem': site.caPem, '/etc/wogate/secrets/vpn-tls-crypt.key': path.join(cfgDir, 'ta.key') };
      const { vpnProfile } = YAML.parse(block.replace(/\/etc\/[^\s}]+/g, (p) => refs[p] ?? p)) as { vpnProfile: Record<string, unknown> };
      const certificate = { issuer: 'local', local: { dir: path.join(cfgDir, 'ca'), passphrase: 'env:DOC_CA_PASSPHRASE' }, vpnProfile };
      const config = loadConfig(exampleConfig(cfgDir, (c) => c.targets.push({ id: 'vendor-vpn', kind: 'certificate', certificate })), {});
      const env = { DOC_CA_PASSPHRASE: 'a-long-enough-passphrase' };
      expect(buildTargets(config, env).get('vendor-vpn')?.kind).to.equal('certificate');
      const built = certificateTargetOptions('vendor-vpn', resolveSecrets(certificate, 'docs', env));
      expect(built.vpnProfile?.remotes.map((r) => `${r.host} ${r.port} ${r.proto}`)).to.deep.equal(['vpn.north-wtp.example.org 1194 udp', '203.0.113.10 443 tcp']);
      expect(built.vpnProfile).to.deep.include({ verifyX509Name: 'vpn.north-wtp.example.org', dataCiphers: ['AES-256-GCM', 'CHACHA20-POLY1305'], tlsVersionMin: '1.2', alsoPkcs12: false });
    } finally {
      fs.rmSync(cfgDir, { recursive: true, force: true });
    }
  });

  it('refuses each malformed or unsafe field with a config error that names it', () => {
    const remotes = [{ host: SERVER }];
    const cases: [unknown, RegExp][] = [
      [{ format: 'wireguard', remotes }, /vpnProfile\.format "wireguard" must be openvpn/],
      [{ format: 'openvpn', remotes: [] }, /vpnProfile\.remotes must list 1 to 8 servers/],
      [{ format: 'openvpn', remotes: [{ host: '10.0.0.300' }] }, /remotes\[0\]\.host "10\.0\.0\.300" is not a valid IPv4 address/],
      [{ format: 'openvpn', remotes: [{ host: 'vpn_1.example' }] }, /remotes\[0\]\.host "vpn_1\.example" must be a DNS name/],
      [{ format: 'openvpn', remotes: [{ host: 'fe80::1%eth0' }] }, /remotes\[0\]\.host .* must be a DNS name/],
      [{ format: 'openvpn', remotes: [remotes[0], { host: SERVER, port: 0 }] }, /remotes\[1\]\.port 0 must be an integer from 1 to 65535/],
      [{ format: 'openvpn', remotes: [{ host: SERVER, proto: 'tcp-server' }] }, /remotes\[0\]\.proto "tcp-server" must be udp or tcp/],
      [{ format: 'openvpn', remotes, verifyX509Name: 'vpn server' }, /vpnProfile\.verifyX509Name "vpn server" must be/],
      [{ format: 'openvpn', remotes, dataCiphers: ['AES-256-GCM', 'BF-CBC'] }, /vpnProfile\.dataCiphers "BF-CBC" is not one of the AEAD ciphers/],
      [{ format: 'openvpn', remotes, dataCiphers: [] }, /vpnProfile\.dataCiphers must list at least one cipher/],
      [{ format: 'openvpn', remotes, tlsVersionMin: '1.0' }, /vpnProfile\.tlsVersionMin "1\.0" must be 1\.2 or 1\.3/],
      [{ format: 'openvpn', remotes, serverCa: 'not a certificate' }, /vpnProfile\.serverCa holds no PEM certificate/],
      [{ format: 'openvpn', remotes, serverCa: rsa.certificatePem }, /vpnProfile\.serverCa certificate 1 .* is not a CA certificate/],
    ];
    for (const [block, message] of cases) expect(options(block), JSON.stringify(block)).to.throw(message);
    expect(options({ format: 'openvpn', remotes: [{ host: '2001:db8::1', port: 443, proto: 'tcp' }], tlsVersionMin: 1.3 })().vpnProfile).to.deep.include({ remotes: [{ host: '2001:db8::1', port: 443, proto: 'tcp' }], tlsVersionMin: '1.3' });
  });

  it('refuses a tls-crypt secret that is not an OpenVPN static key without echoing it', () => {
    const secret = `-----BEGIN OpenVPN Static key V1-----\n${'ab'.repeat(100)}\n-----END OpenVPN Static key V1-----`;
    let message = '';
    try {
      options({ format: 'openvpn', remotes: [{ host: SERVER }], tlsCrypt: secret })();
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).to.match(/vpnProfile\.tlsCrypt does not name an OpenVPN static key V1/).and.not.include('abab');
    expect(options({ format: 'openvpn', remotes: [{ host: SERVER }], tlsCrypt: staticKeyText().replace(/\n/g, '\r\n') })().vpnProfile?.tlsCryptKey).to.match(/^-----BEGIN OpenVPN Static key V1-----\n([0-9a-f]{32}\n){16}-----END/);
  });

  it('accepts as a remote host only text that stays one argument on one line', () => {
    fc.assert(fc.property(fc.oneof(fc.string({ maxLength: 40 }), fc.domain(), fc.ipV4(), fc.ipV6()), (host) => {
      let accepted: string | undefined;
      try {
        accepted = profile({ remotes: [{ host }] }).remotes[0]?.host;
      } catch (e) {
        expect(e).to.be.instanceOf(VpnProfileProblem);
        return;
      }
      expect(accepted).to.match(/^[A-Za-z0-9.:-]+$/);
    }));
  });

  it('renders the issuing chain as the server CA when none is configured, and re-encodes certificates so text around them is dropped', () => {
    const padded = { ...rsa, certificatePem: `junk before\n${rsa.certificatePem}</cert>\nscript-security 2\n`, chainPem: `${rsa.chainPem}\n</ca>\nup /bin/sh\n` };
    const text = renderOpenvpnProfile(padded, profile(), 'aaaaa-bbbbb-ccccc-ddddd-eeeee');
    expect(text).to.not.include('script-security').and.not.include('up /bin/sh').and.not.include('junk');
    expect(profileParts(text).block('ca')).to.equal(rsa.chainPem.replace(/\r/g, ''));
    expect(text.match(/^<\/?[a-z-]+>$/gm)).to.deep.equal(['<ca>', '</ca>', '<cert>', '</cert>', '<key>', '</key>']);
  });

  it('hands out the profile and the PKCS#12 under one passphrase when alsoPkcs12 is set', async () => {
    const passphrase = 'aaaaa-bbbbb-ccccc-ddddd-eeeee';
    const files = handOutFiles({ ...rsa, vpnProfile: profile({ alsoPkcs12: true }) }, passphrase);
    expect(files.map((f) => [f.kind, f.name])).to.deep.equal([['openvpn', 'tech-jdoe.acme-controls.ovpn'], ['pkcs12', 'tech-jdoe.acme-controls.p12']]);
    const p12 = forge.pkcs12.pkcs12FromAsn1(forge.asn1.fromDer((files[1]?.bytes as Buffer).toString('binary')), passphrase);
    expect(p12.getBags({ bagType: forge.pki.oids.pkcs8ShroudedKeyBag as string })[forge.pki.oids.pkcs8ShroudedKeyBag as string]).to.have.length(1);
    fs.writeFileSync(path.join(dir, 'k.pem'), profileParts((files[0]?.bytes as Buffer).toString()).block('key'), { mode: 0o600 });
    expect(await openssl('pkey', '-in', path.join(dir, 'k.pem'), '-passin', `pass:${passphrase}`, '-noout')).to.equal('');
    expect(handOutFiles(rsa, passphrase).map((f) => f.kind), 'no profile settings: PKCS#12 as before').to.deep.equal(['pkcs12']);
  });

  it('accepts an EC key for a profile-only target, refuses it where a PKCS#12 must be made, and refuses a key that is not the certificate\'s', async () => {
    fs.mkdirSync(path.join(dir, 'ec'));
    const ec = await credential(path.join(dir, 'ec'), 'ec');
    const store = new SqliteStore(':memory:');
    await store.migrate();
    try {
      const vault = new CredentialVault(store, randomBytes(32));
      const now = new Date();
      await vault.putEntry('e-ec', 'g-1', { ...ec, vpnProfile: profile() }, now);
      const taken = await vault.takeEntry('e-ec', 'test', now);
      expect(taken.result === 'taken' && taken.credential.vpnProfile?.remotes).to.deep.equal([{ host: SERVER, port: 1194, proto: 'udp' }]);
      let refused: unknown;
      await vault.putEntry('e-ec-p12', 'g-2', { ...ec, vpnProfile: profile({ alsoPkcs12: true }) }, now).catch((e: unknown) => (refused = e));
      expect(refused, 'node-forge packs RSA keys only').to.be.instanceOf(Error);
      await vault.putEntry('e-mix', 'g-3', { ...rsa, privateKeyPem: ec.privateKeyPem, vpnProfile: profile() }, now).then(() => expect.fail('stored'), (e: Error) => expect(e.message).to.match(/does not belong to the certificate/));
      expect(await store.portal.credentialStatus('e-mix')).to.equal(undefined);
    } finally {
      await store.close();
    }
  });

  it('refuses a target built in code with unsafe profile settings, as a configuration error', () => {
    expect(() => new CertificateTarget({ id: 'c', issuer: { kind: 'local', dir: path.join(dir, 'ca'), passphrase: 'a-long-enough-passphrase' }, vpnProfile: { format: 'openvpn', remotes: [{ host: 'a\nb', port: 1, proto: 'udp' }], dataCiphers: ['AES-256-GCM'], tlsVersionMin: '1.2', alsoPkcs12: false } }))
      .to.throw(/vpnProfile\.remotes\[0\]\.host "a\\nb" must be a DNS name/);
  });
});
