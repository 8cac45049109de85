import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Ajv from 'ajv';
import { expect } from 'chai';
import nock from 'nock';
import YAML from 'yaml';
import { isWogateError } from '../../src/domain/index.js';
import { CERTIFICATE_TARGET_SCHEMA, CertificateTarget, certificateTargetOptions, type IssuedCredential, type OnIssued } from '../../src/targets/certificate.js';
import type { LocalCaOptions } from '../../src/targets/local-ca.js';
import { TargetError, type CallContext, type TargetGrant } from '../../src/targets/target.js';
import { VaultPki, type VaultPkiOptions } from '../../src/targets/vault-pki.js';
import { colonSerial, inspectCertificate } from '../../src/targets/x509.js';
import { tmpDir } from '../helpers/world.js';
import { VaultPkiSim } from '../sims/vault-pki.js';
import { recordingLogger, sampleGrant, simulatedSetup, targetContract } from './target-contract.js';

const PASSPHRASE = 'correct horse battery staple';
const certGrant = (targetId: string, o: Partial<TargetGrant> = {}, now = new Date()): TargetGrant =>
  sampleGrant(targetId, o, now, (n) => ({ kind: 'certificate', commonName: `tech${n}.acme.example` }));

/** A local-CA target with test-sized keys and KDF (the defaults are checked in their own test). */
function localTarget(dir: string, o: { onIssued?: OnIssued; passphrase?: string; local?: Partial<LocalCaOptions>; clockSkewMs?: number } = {}): CertificateTarget {
  return new CertificateTarget({
    id: 'certs',
    issuer: { kind: 'local', dir, passphrase: o.passphrase ?? PASSPHRASE, keyBits: 2048, caKeyBits: 2048, kdfIterations: 10_000, crlUrl: 'https://wogate.example/pki/certs/crl', ...o.local },
    ...(o.onIssued ? { onIssued: o.onIssued } : {}),
    ...(o.clockSkewMs !== undefined ? { clockSkewMs: o.clockSkewMs } : {}),
  });
}

function openssl(args: string[], env: Record<string, string> = {}): { ok: boolean; out: string } {
  const r = spawnSync('openssl', args, { encoding: 'utf8', env: { ...process.env, ...env } });
  return { ok: r.status === 0, out: `${r.stdout}${r.stderr}` };
}

/** Collects every credential handed over, by serial. */
function handOver(): { onIssued: OnIssued; got: Map<string, IssuedCredential & { grantId: string }> } {
  const got = new Map<string, IssuedCredential & { grantId: string }>();
  return { got, onIssued: (grantId, c) => void got.set(c.serial, { ...c, grantId }) };
}

async function failure(p: Promise<unknown>): Promise<TargetError> {
  const e = await p.then(() => undefined, (err: unknown) => err);
  expect(e, 'the call fails').to.be.instanceOf(TargetError);
  return e as TargetError;
}

// ---------------------------------------------------------------------------------------------
// The shared contract, against the real thing each issuer drives.

targetContract('CertificateTarget with the local CA (real files)', async ({ secret }) => {
  const dir = tmpDir('wogate-ca-');
  const target = localTarget(dir, { passphrase: secret });
  return {
    target,
    makeGrant: (o) => certGrant('certs', o),
    cleanup: async () => {
      await target.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}, { noRemote: 'the local CA writes files; "a state write that fails is retryable…" and "a revoke whose CRL write failed…" below test its failures' });

targetContract('CertificateTarget with Vault PKI (simulator over HTTP)', async ({ secret }) => {
  const sim = await VaultPkiSim.start({ tokens: [secret] });
  // The simulator makes a real RSA key per certificate, which can take a while on a busy machine.
  const target = (timeoutMs: number) => new CertificateTarget({ id: 'vault-certs', issuer: { kind: 'vault', address: sim.url, token: secret, role: 'wogate', timeoutMs } });
  return simulatedSetup(target, sim, (o) => certGrant('vault-certs', o));
});

// ---------------------------------------------------------------------------------------------

describe('certificate target with the local CA, checked by openssl', function () {
  this.timeout(60_000);
  let dir: string;
  let log: ReturnType<typeof recordingLogger>;
  const ctx = (now = new Date()): CallContext => ({ now, log });
  const file = (name: string) => path.join(dir, name);
  const save = (name: string, text: string): string => {
    fs.writeFileSync(file(name), text);
    return file(name);
  };
  const crlText = () => openssl(['crl', '-in', file('crl.pem'), '-noout', '-text']).out;
  const crlNumber = () => Number(/CRL Number:\s*\n?\s*(\d+)/.exec(crlText())?.[1]);

  beforeEach(() => {
    dir = tmpDir('wogate-ca-');
    log = recordingLogger();
  });
  afterEach(() => {
    for (const line of log.lines) {
      expect(line).not.to.include(PASSPHRASE);
      expect(line).not.to.include('PRIVATE KEY');
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('issues a client certificate openssl verifies, ending exactly at validUntil, with clientAuth only and a 128-bit serial', async () => {
    const h = handOver();
    const t = localTarget(dir, { onIssued: h.onIssued, local: { keyBits: 3072, caKeyBits: 3072 } });
    await t.init(ctx());
    const now = new Date();
    const g = certGrant('certs', { vendorId: 'acme', validFrom: new Date(now.getTime() + 3_600_000), validUntil: new Date(now.getTime() + 5 * 3_600_000 + 789) });
    const ref = await t.provision(g, ctx());
    const cred = h.got.get(String(ref['serial']));
    expect(cred?.grantId).to.equal(g.id);
    const leaf = save('leaf.pem', cred!.certificatePem);
    save('chain.pem', cred!.chainPem);
    const inWindow = String(Math.floor(g.validFrom.getTime() / 1000) + 60);
    expect(openssl(['verify', '-attime', inWindow, '-CAfile', file('ca.pem'), leaf]).out).to.include(': OK');
    expect(openssl(['verify', '-attime', inWindow, '-CAfile', file('chain.pem'), leaf]).ok, 'the handed-over chain verifies it too').to.equal(true);
    expect(openssl(['verify', '-CAfile', file('ca.pem'), leaf]).out, 'before the window').to.include('certificate is not yet valid');
    const after = String(Math.floor(g.validUntil.getTime() / 1000) + 1);
    expect(openssl(['verify', '-attime', after, '-CAfile', file('ca.pem'), leaf]).out, 'after the window').to.include('certificate has expired');

    const dates = openssl(['x509', '-in', leaf, '-noout', '-startdate', '-enddate', '-dateopt', 'iso_8601']).out;
    const end = new Date(Math.floor(g.validUntil.getTime() / 1000) * 1000);
    const start = new Date(Math.floor(g.validFrom.getTime() / 1000) * 1000 - 120_000);
    expect(dates).to.include(`notAfter=${end.toISOString().replace('T', ' ').replace('.000Z', 'Z')}`);
    expect(dates).to.include(`notBefore=${start.toISOString().replace('T', ' ').replace('.000Z', 'Z')}`);

    const ext = openssl(['x509', '-in', leaf, '-noout', '-subject', '-serial', '-ext', 'extendedKeyUsage,keyUsage,basicConstraints,subjectAltName,crlDistributionPoints', '-nameopt', 'RFC2253']).out;
    expect(ext).to.include('TLS Web Client Authentication');
    expect(ext).not.to.include('TLS Web Server Authentication');
    expect(ext).to.match(/Basic Constraints: critical\s+CA:FALSE/);
    expect(ext).to.match(/Key Usage: critical\s+Digital Signature, Key Encipherment/);
    expect(ext).to.include(`subject=CN=${(g.resource as { commonName: string }).commonName},O=acme`);
    expect(ext).to.include(`DNS:${(g.resource as { commonName: string }).commonName}`);
    expect(ext).to.include('URI:https://wogate.example/pki/certs/crl');
    const serialHex = /serial=([0-9A-F]+)/.exec(ext)?.[1] ?? '';
    expect(serialHex.replace(/^0+/, '').length, 'at least 121 random bits').to.be.at.least(31);
    expect(openssl(['x509', '-in', leaf, '-noout', '-text']).out).to.include('Public-Key: (3072 bit)');

    const key = save('leaf.key', cred!.privateKeyPem);
    expect(openssl(['x509', '-in', leaf, '-noout', '-pubkey']).out).to.equal(openssl(['pkey', '-in', key, '-pubout']).out);
    await t.close();
  });

  it('a revoked certificate fails openssl -crl_check with "certificate revoked"; a fresh one passes', async () => {
    const h = handOver();
    const t = localTarget(dir, { onIssued: h.onIssued });
    await t.init(ctx());
    const revokedGrant = certGrant('certs');
    const keptGrant = certGrant('certs');
    const revokedRef = await t.provision(revokedGrant, ctx());
    const keptRef = await t.provision(keptGrant, ctx());
    await t.revoke(revokedGrant, revokedRef, ctx());
    const crl = await t.crl();
    expect(fs.readFileSync(file('crl.pem'), 'utf8'), 'the published file is the CRL crl() serves').to.equal(crl.pem);
    expect(openssl(['crl', '-in', file('crl.der'), '-inform', 'DER', '-noout', '-verify', '-CAfile', file('ca.pem')]).out).to.include('verify OK');

    const revoked = save('revoked.pem', h.got.get(String(revokedRef['serial']))!.certificatePem);
    const kept = save('kept.pem', h.got.get(String(keptRef['serial']))!.certificatePem);
    const bad = openssl(['verify', '-crl_check', '-CAfile', file('ca.pem'), '-CRLfile', file('crl.pem'), revoked]);
    expect(bad.ok).to.equal(false);
    expect(bad.out).to.include('certificate revoked');
    expect(openssl(['verify', '-crl_check', '-CAfile', file('ca.pem'), '-CRLfile', file('crl.pem'), kept]).out).to.include(': OK');
    await t.close();
  });

  it('signs a new CRL with a higher CRL number on every revocation, each entry with its reason', async () => {
    const t = localTarget(dir);
    await t.init(ctx());
    const a = certGrant('certs');
    const b = certGrant('certs');
    await t.provision(a, ctx());
    const refB = await t.provision(b, ctx());
    const first = crlNumber();
    await t.revoke(a, undefined, ctx());
    const second = crlNumber();
    await t.revokeEntry({ ref: refB, resource: b.resource }, ctx());
    const third = crlNumber();
    expect(second).to.be.greaterThan(first);
    expect(third).to.be.greaterThan(second);
    const text = crlText();
    expect(text).to.include('Cessation Of Operation');
    expect(text).to.include('Privilege Withdrawn');
    expect(text).to.match(/CRL extensions:[\s\S]*Authority Key Identifier/);
    expect(text).to.include('Version 2');
    await t.close();
  });

  it('update issues a new certificate, hands it over, and revokes the old one as superseded', async () => {
    const h = handOver();
    const t = localTarget(dir, { onIssued: h.onIssued });
    await t.init(ctx());
    const g = certGrant('certs');
    const ref1 = await t.provision(g, ctx());
    const longer = { ...g, validUntil: new Date(g.validUntil.getTime() + 2 * 3_600_000) };
    const ref2 = await t.update(longer, ref1, ctx());
    expect(ref2['serial']).not.to.equal(ref1['serial']);
    expect([...h.got.keys()]).to.deep.equal([ref1['serial'], ref2['serial']]);
    const entries = await t.list(ctx());
    expect(entries.map((e) => e.ref['serial'])).to.deep.equal([ref2['serial']]);
    expect(entries[0]?.expiresAt?.getTime()).to.equal(Math.floor(longer.validUntil.getTime() / 1000) * 1000);
    const text = crlText();
    expect(text).to.include((ref1['serial'] as string).toUpperCase());
    expect(text).to.include('Superseded');
    await t.close();
  });

  it('a second grant for the same resource gets the same certificate, not a second one', async () => {
    const h = handOver();
    const t = localTarget(dir, { onIssued: h.onIssued });
    await t.init(ctx());
    const g = certGrant('certs');
    const sibling = certGrant('certs', { resource: g.resource, validUntil: g.validUntil, orderKey: 'cmms:WO-other' });
    const [r1, r2] = await Promise.all([t.provision(g, ctx()), t.provision(sibling, ctx())]);
    expect(r2).to.deep.equal(r1);
    expect(h.got.size, 'one certificate issued').to.equal(1);
    expect(await t.list(ctx())).to.have.length(1);
    await t.close();
  });

  it('keeps the CA key encrypted at rest (PBKDF2-SHA256, 600000 iterations, AES-256), mode 0600; openssl cannot read it without the passphrase', async () => {
    const t = new CertificateTarget({ id: 'certs', issuer: { kind: 'local', dir, passphrase: PASSPHRASE, keyBits: 2048, caKeyBits: 2048 } });
    await t.init(ctx());
    const keyFile = file('ca-key.pem');
    expect(fs.statSync(keyFile).mode & 0o777).to.equal(0o600);
    expect(fs.statSync(file('index.json')).mode & 0o777).to.equal(0o600);
    const pem = fs.readFileSync(keyFile, 'utf8');
    expect(pem.startsWith('-----BEGIN ENCRYPTED PRIVATE KEY-----')).to.equal(true);
    expect(openssl(['pkey', '-in', keyFile, '-noout', '-passin', 'pass:']).ok, 'no passphrase').to.equal(false);
    expect(openssl(['pkey', '-in', keyFile, '-noout', '-passin', 'pass:not the passphrase']).ok, 'wrong passphrase').to.equal(false);
    expect(openssl(['pkey', '-in', keyFile, '-noout', '-passin', 'env:CA_PASS'], { CA_PASS: PASSPHRASE }).ok, 'right passphrase').to.equal(true);
    const params = openssl(['asn1parse', '-in', keyFile]).out;
    expect(params).to.include('PBES2');
    expect(params).to.include('hmacWithSHA256');
    expect(params).to.include('aes-256-cbc');
    expect(params).to.match(/INTEGER\s+:0927C0/); // 600000
    // Nothing else in the directory holds key material.
    for (const f of fs.readdirSync(dir).filter((n) => n !== 'ca-key.pem')) expect(fs.readFileSync(file(f), 'utf8')).not.to.include('PRIVATE KEY');
    await t.close();
  });

  it('a restart on the same directory keeps the CA, the issued certificates and the CRL', async () => {
    const h = handOver();
    const first = localTarget(dir, { onIssued: h.onIssued });
    await first.init(ctx());
    const revokedGrant = certGrant('certs');
    const keptGrant = certGrant('certs');
    const revokedRef = await first.provision(revokedGrant, ctx());
    const keptRef = await first.provision(keptGrant, ctx());
    await first.revoke(revokedGrant, revokedRef, ctx());
    const ca = await first.caCertificatePem();
    const numberBefore = crlNumber();
    await first.close();

    const second = localTarget(dir);
    await second.init(ctx());
    expect(await second.caCertificatePem()).to.equal(ca);
    expect((await second.list(ctx())).map((e) => e.ref)).to.deep.equal([keptRef]);
    expect(await second.provision(keptGrant, ctx()), 'the kept certificate is still the one').to.deep.equal(keptRef);
    save('c.pem', (await second.crl()).pem);
    expect(crlNumber()).to.be.greaterThan(numberBefore);
    const revoked = save('revoked.pem', h.got.get(String(revokedRef['serial']))!.certificatePem);
    expect(openssl(['verify', '-crl_check', '-CAfile', file('ca.pem'), '-CRLfile', file('c.pem'), revoked]).out).to.include('certificate revoked');
    await second.close();
  });

  it('refuses to start with a wrong passphrase, not retryable, without the passphrase in the message', async () => {
    const t = localTarget(dir);
    await t.init(ctx());
    await t.close();
    const wrong = 'a wrong passphrase entirely';
    const e = await failure(localTarget(dir, { passphrase: wrong }).init(ctx()));
    expect(e.retryable).to.equal(false);
    expect(e.message).to.include('cannot decrypt');
    expect(`${e.message} ${JSON.stringify(e.details)} ${e.stack}`).not.to.include(wrong);
  });

  it('refuses to start when index.json is gone but the CA is there, rather than forget every revocation', async () => {
    const t = localTarget(dir);
    await t.init(ctx());
    await t.close();
    fs.rmSync(file('index.json'));
    const e = await failure(localTarget(dir).init(ctx()));
    expect(e.retryable).to.equal(false);
    expect(e.message).to.include('index.json is missing');
  });

  it('without onIssued the key is discarded, and the info line says so without any key material', async () => {
    const t = localTarget(dir);
    await t.init(ctx());
    const ref = await t.provision(certGrant('certs'), ctx());
    const line = log.lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => String(l['msg']).includes('private key of the new certificate was discarded'));
    expect(line?.['level']).to.equal('info');
    expect(line?.['serial']).to.equal(ref['serial']);
    await t.close();
  });

  it('a hand-over that fails revokes the new certificate and fails retryable; the retry issues a fresh one', async () => {
    const h = handOver();
    let broken = true;
    const t = localTarget(dir, { onIssued: (g, c) => (broken ? Promise.reject(new Error('portal store unavailable')) : h.onIssued(g, c)) });
    await t.init(ctx());
    const g = certGrant('certs');
    const e = await failure(t.provision(g, ctx()));
    expect(e.retryable).to.equal(true);
    expect(e.message).to.include('portal store unavailable');
    expect(await t.list(ctx())).to.have.length(0);
    expect(crlText()).to.include('Superseded');
    broken = false;
    const ref = await t.provision(g, ctx());
    expect(h.got.has(String(ref['serial']))).to.equal(true);
    expect((await t.list(ctx())).map((x) => x.ref)).to.deep.equal([ref]);
    await t.close();
  });

  it('a certificate recorded but never handed over (a crash) is replaced by the next provision', async () => {
    let reached!: () => void;
    const handingOver = new Promise<void>((r) => (reached = r));
    // The process "dies" mid hand-over: the hook is reached and never returns.
    const stuck = localTarget(dir, {
      onIssued: () => {
        reached();
        return new Promise<void>(() => {});
      },
    });
    await stuck.init(ctx());
    const g = certGrant('certs');
    void stuck.provision(g, ctx());
    await handingOver;
    const index = JSON.parse(fs.readFileSync(file('index.json'), 'utf8')) as { certs: { serial: string; pending?: boolean }[] };
    const lost = index.certs.find((c) => c.pending);
    expect(lost, 'recorded before the hand-over').to.not.equal(undefined);
    await stuck.close();

    const h = handOver();
    const restarted = localTarget(dir, { onIssued: h.onIssued });
    await restarted.init(ctx());
    expect(await restarted.list(ctx()), 'a pending certificate is not listed').to.have.length(0);
    const ref = await restarted.provision(g, ctx());
    expect(ref['serial']).not.to.equal(lost!.serial);
    expect(h.got.has(String(ref['serial']))).to.equal(true);
    expect(crlText()).to.include(lost!.serial.toUpperCase());
    await restarted.close();
  });

  it('a state write that fails is retryable and leaves the previous state in place', async () => {
    const t = localTarget(dir);
    await t.init(ctx());
    const kept = await t.provision(certGrant('certs'), ctx());
    const before = fs.readFileSync(file('index.json'), 'utf8');
    fs.mkdirSync(file('index.json.tmp')); // the next write cannot create its temporary file
    const g = certGrant('certs');
    const e = await failure(t.provision(g, ctx()));
    expect(e.retryable).to.equal(true);
    expect(e.message).to.include('index.json');
    expect(fs.readFileSync(file('index.json'), 'utf8')).to.equal(before);
    expect((await t.list(ctx())).map((x) => x.ref)).to.deep.equal([kept]);
    fs.rmdirSync(file('index.json.tmp'));
    await t.provision(g, ctx());
    expect(await t.list(ctx())).to.have.length(2);
    await t.close();
  });

  it('a revoke whose CRL write failed is published by the retry', async () => {
    const t = localTarget(dir);
    await t.init(ctx());
    const g = certGrant('certs');
    const ref = await t.provision(g, ctx());
    fs.mkdirSync(file('crl.pem.tmp'));
    const e = await failure(t.revoke(g, ref, ctx()));
    expect(e.retryable).to.equal(true);
    expect(crlText()).not.to.include((ref['serial'] as string).toUpperCase());
    fs.rmdirSync(file('crl.pem.tmp'));
    await t.revoke(g, ref, ctx());
    expect(crlText()).to.include((ref['serial'] as string).toUpperCase());
    await t.close();
  });

  it('a revoked certificate stays on one CRL signed after its notAfter, then drops off', async () => {
    const t = localTarget(dir, { local: { crlValidityMs: 3_600_000 } });
    await t.init(ctx());
    const now = Date.now();
    const g = certGrant('certs', { validUntil: new Date(now + 600_000) });
    const ref = await t.provision(g, ctx());
    await t.revoke(g, ref, ctx());
    const serial = (ref['serial'] as string).toUpperCase();
    expect(crlText()).to.include(serial);
    await t.crl(ctx(new Date(now + 40 * 60_000))); // past notAfter, past half the CRL's validity: re-signed
    expect(crlText(), 'listed once after expiry').to.include(serial);
    await t.crl(ctx(new Date(now + 80 * 60_000)));
    expect(crlText(), 'then gone').not.to.include(serial);
    await t.close();
  });

  it('refuses, not retryable, a window that ends after the CA certificate', async () => {
    const t = localTarget(dir, { local: { caValidityMs: 86_400_000 } });
    await t.init(ctx());
    const e = await failure(t.provision(certGrant('certs', { validUntil: new Date(Date.now() + 2 * 86_400_000) }), ctx()));
    expect(e.retryable).to.equal(false);
    expect(e.message).to.include('after the CA certificate expires');
    await t.close();
  });

  it('refuses, not retryable, a common name or vendor that cannot be a subject', async () => {
    const t = localTarget(dir);
    await t.init(ctx());
    for (const g of [
      certGrant('certs', { resource: { kind: 'certificate', commonName: 'x'.repeat(65) } }),
      certGrant('certs', { resource: { kind: 'certificate', commonName: 'evil\nCN=admin' } }),
      certGrant('certs', { vendorId: '' }),
    ]) {
      const e = await failure(t.provision(g, ctx()));
      expect(e.retryable, e.message).to.equal(false);
    }
    expect(await t.list(ctx())).to.have.length(0);
    await t.close();
  });

  it('a window already over issues nothing and revokes what the resource still had', async () => {
    const t = localTarget(dir);
    await t.init(ctx());
    const g = certGrant('certs');
    await t.provision(g, ctx());
    const ended = { ...g, validFrom: new Date(Date.now() - 7_200_000), validUntil: new Date(Date.now() - 1_000) };
    expect(await t.update(ended, undefined, ctx())).to.deep.equal({ serial: '' });
    expect(await t.list(ctx())).to.have.length(0);
    await t.close();
  });
});

// ---------------------------------------------------------------------------------------------

describe('certificate target with Vault PKI (simulator)', function () {
  this.timeout(30_000);
  const TOKEN = 'hvs.static-token-8c1f2e77d0b94a1c';
  const ROLE_ID = 'role-id-3f6b0c1e';
  const SECRET_ID = 'secret-id-91d2a7e4c05b';
  let sim: VaultPkiSim;
  let log: ReturnType<typeof recordingLogger>;
  const ctx = (): CallContext => ({ now: new Date(), log });
  const vault = (o: Partial<VaultPkiOptions> = {}, onIssued?: OnIssued) =>
    new CertificateTarget({ id: 'vault-certs', issuer: { kind: 'vault', address: sim.url, role: 'wogate', timeoutMs: 5_000, ...(o.appRole ? {} : { token: TOKEN }), ...o }, ...(onIssued ? { onIssued } : {}) });

  beforeEach(async () => {
    log = recordingLogger();
    sim = await VaultPkiSim.start({ tokens: [TOKEN], appRole: { roleId: ROLE_ID, secretId: SECRET_ID }, namespace: 'plant/ot' });
  });
  afterEach(async () => {
    await sim.close();
    for (const line of log.lines) for (const s of [TOKEN, SECRET_ID, 'PRIVATE KEY']) expect(line).not.to.include(s);
  });

  it('issues with not_after = validUntil in whole seconds (never ttl), in the namespace, and hands over key and chain', async () => {
    const h = handOver();
    const t = vault({ namespace: 'plant/ot' }, h.onIssued);
    await t.init(ctx());
    const g = certGrant('vault-certs', { validUntil: new Date(Date.now() + 3 * 3_600_000 + 654) });
    const ref = await t.provision(g, ctx());
    const issue = sim.calls.find((c) => c.path === '/v1/pki/issue/wogate');
    const end = new Date(Math.floor(g.validUntil.getTime() / 1000) * 1000);
    expect(issue?.body).to.deep.equal({ common_name: (g.resource as { commonName: string }).commonName, not_after: end.toISOString().replace('.000Z', 'Z'), format: 'pem', private_key_format: 'pkcs8' });
    expect(issue?.token).to.equal(TOKEN);
    expect(issue?.namespace).to.equal('plant/ot');
    const cred = h.got.get(String(ref['serial']))!;
    expect(inspectCertificate(cred.certificatePem).notAfter.getTime()).to.equal(end.getTime());
    expect(cred.privateKeyPem).to.include('BEGIN PRIVATE KEY');
    expect(cred.chainPem).to.equal(sim.caPem.replace(/\r\n/g, '\n'));
    const [entry] = await t.list(ctx());
    expect(entry).to.deep.equal({ resource: g.resource, ref, expiresAt: end });
    expect(sim.certs.get(String(ref['serial']))?.commonName).to.equal((g.resource as { commonName: string }).commonName);
    await t.close();
  });

  it('revokes on Vault, and the CRL Vault publishes (through crl()) makes openssl refuse the certificate', async () => {
    const h = handOver();
    const t = vault({ namespace: 'plant/ot' }, h.onIssued);
    await t.init(ctx());
    const g = certGrant('vault-certs');
    const ref = await t.provision(g, ctx());
    await t.revoke(g, undefined, ctx());
    expect(sim.calls.filter((c) => c.path === '/v1/pki/revoke').map((c) => c.body)).to.deep.equal([{ serial_number: colonSerial(String(ref['serial'])) }]);
    expect(await t.list(ctx())).to.have.length(0);
    const d = tmpDir('wogate-vault-');
    try {
      fs.writeFileSync(path.join(d, 'ca.pem'), await t.caCertificatePem());
      fs.writeFileSync(path.join(d, 'crl.pem'), (await t.crl()).pem);
      fs.writeFileSync(path.join(d, 'leaf.pem'), h.got.get(String(ref['serial']))!.certificatePem);
      const r = openssl(['verify', '-crl_check', '-CAfile', path.join(d, 'ca.pem'), '-CRLfile', path.join(d, 'crl.pem'), path.join(d, 'leaf.pem')]);
      expect(r.out).to.include('certificate revoked');
    } finally {
      fs.rmSync(d, { recursive: true, force: true });
    }
    await t.close();
  });

  it('an AppRole token Vault stops accepting (403) leads to one fresh login, and the call succeeds', async () => {
    const t = vault({ namespace: 'plant/ot', appRole: { roleId: ROLE_ID, secretId: SECRET_ID } });
    await t.init(ctx());
    expect(sim.logins).to.equal(1);
    sim.expireLoginTokens();
    const g = certGrant('vault-certs');
    const ref = await t.provision(g, ctx());
    expect(sim.logins).to.equal(2);
    expect((await t.list(ctx())).map((e) => e.ref)).to.deep.equal([ref]);
    const login = sim.calls.find((c) => c.path === '/v1/auth/approle/login');
    expect(login?.body).to.deep.equal({ role_id: ROLE_ID, secret_id: SECRET_ID });
    await t.close();
  });

  it('an AppRole login Vault refuses is not retryable and never shows the secret_id', async () => {
    const t = vault({ namespace: 'plant/ot', appRole: { roleId: ROLE_ID, secretId: 'not-the-secret-id-77' } });
    const e = await failure(t.init(ctx()));
    expect(e.retryable).to.equal(false);
    expect(e.message).to.include('/v1/auth/approle/login answered 400');
    expect(`${e.message} ${JSON.stringify(e.details)} ${e.stack}`).not.to.include('not-the-secret-id-77');
    await t.close();
  });

  it('a certificate issued by hand with the wogate OU shows in list() and revokeEntry revokes it; one without the OU is never listed or touched', async () => {
    const t = vault({ namespace: 'plant/ot' });
    await t.init(ctx());
    const ours = await sim.issueByHand('manual.acme.example', ['wogate']);
    const foreign = await sim.issueByHand('web.plant.example', ['it-services']);
    const entries = await t.list(ctx());
    expect(entries).to.deep.equal([{ resource: { kind: 'certificate', commonName: 'manual.acme.example' }, ref: { serial: ours.serial }, expiresAt: ours.notAfter }]);
    await t.revokeEntry(entries[0]!, ctx());
    expect(sim.certs.get(ours.serial)?.revokedAt).to.be.a('number');
    await t.revokeEntry({ ref: { serial: foreign.serial } }, ctx());
    await t.revoke(certGrant('vault-certs', { resource: { kind: 'certificate', commonName: 'web.plant.example' } }), undefined, ctx());
    expect(sim.certs.get(foreign.serial)?.revokedAt, 'the foreign certificate is untouched').to.equal(undefined);
    expect(await t.list(ctx())).to.have.length(0);
    await t.close();
  });

  it('a Vault that ignores not_after (a longer certificate) gets it revoked, and the provision fails not retryable', async () => {
    sim.ignoreNotAfter = true;
    const h = handOver();
    const t = vault({ namespace: 'plant/ot' }, h.onIssued);
    await t.init(ctx());
    const e = await failure(t.provision(certGrant('vault-certs'), ctx()));
    expect(e.retryable).to.equal(false);
    expect(e.message).to.include('after the requested not_after');
    expect(h.got.size, 'nothing handed over').to.equal(0);
    expect([...sim.certs.values()].every((c) => c.revokedAt !== undefined)).to.equal(true);
    await t.close();
  });

  it('a role without the OU marker is refused as a configuration error, and its certificate revoked', async () => {
    sim.roles.set('wogate', { clientFlag: true, serverFlag: false });
    const t = vault({ namespace: 'plant/ot' });
    await t.init(ctx());
    const e = await failure(t.provision(certGrant('vault-certs'), ctx()));
    expect(e.retryable).to.equal(false);
    expect(e.message).to.include('set ou=wogate on the role');
    expect([...sim.certs.values()].every((c) => c.revokedAt !== undefined)).to.equal(true);
    await t.close();
  });

  it('a Vault without the revoked list (before 1.12) still sees revocations made outside wogate', async () => {
    sim.noRevokedList = true;
    const t = vault({ namespace: 'plant/ot' });
    await t.init(ctx());
    const g = certGrant('vault-certs');
    const ref = await t.provision(g, ctx());
    expect(await t.list(ctx())).to.have.length(1);
    sim.certs.get(String(ref['serial']))!.revokedAt = Math.floor(Date.now() / 1000); // revoked by an operator
    expect(await t.list(ctx())).to.have.length(0);
    await t.close();
  });

  it('revoking a serial Vault no longer knows (tidied) succeeds', async () => {
    const issuer = new VaultPki('vault-certs', { address: sim.url, token: TOKEN, role: 'wogate', namespace: 'plant/ot' });
    await issuer.revoke('3a:4b:5c', 'cessationOfOperation', ctx());
    const call = sim.calls.find((c) => c.path === '/v1/pki/revoke');
    expect(call?.body).to.deep.equal({ serial_number: '3a:4b:5c' });
    await issuer.close();
  });
});

// ---------------------------------------------------------------------------------------------

describe('certificate target with Vault PKI: HTTP calls checked with nock', () => {
  const VAULT = 'http://vault.nock.test:8200';
  const TOKEN = 'hvs.nock-token-5be1c0d9a6f3';
  let log: ReturnType<typeof recordingLogger>;
  const ctx = (): CallContext => ({ now: new Date(), log });
  const target = () => new CertificateTarget({ id: 'vault-certs', issuer: { kind: 'vault', address: VAULT, token: TOKEN, role: 'wogate', namespace: 'plant', timeoutMs: 1_000 } });
  const emptyLists = (scope: nock.Scope) =>
    scope.get('/v1/pki/certs').query({ list: 'true' }).reply(404, { errors: [] }).get('/v1/pki/certs/revoked').query({ list: 'true' }).reply(404, { errors: [] });

  beforeEach(() => {
    log = recordingLogger();
  });
  afterEach(() => {
    nock.cleanAll();
    for (const line of log.lines) expect(line).not.to.include(TOKEN);
  });

  it('sends exactly the documented issue call: path, token and namespace headers, and a not_after body', async () => {
    const g = certGrant('vault-certs', { validUntil: new Date(Date.UTC(2031, 4, 6, 7, 8, 9, 999)) });
    const scope = emptyLists(nock(VAULT, { reqheaders: { 'x-vault-token': TOKEN, 'x-vault-namespace': 'plant' } }))
      .post('/v1/pki/issue/wogate', { common_name: (g.resource as { commonName: string }).commonName, not_after: '2031-05-06T07:08:09Z', format: 'pem', private_key_format: 'pkcs8' })
      .reply(200, { data: {} });
    const e = await failure(target().provision(g, ctx()));
    expect(scope.isDone(), 'every expected call was made').to.equal(true);
    expect(e.retryable, 'an answer without the certificate is retryable').to.equal(true);
    expect(e.message).to.include('no data.certificate and data.private_key');
    expect(e.details?.['code']).to.equal('TARGET_RESPONSE_INVALID');
  });

  it('a 429 is retryable with the Retry-After Vault sent; a 5xx is retryable; a 403 is not; none shows the token', async () => {
    const g = certGrant('vault-certs');
    const echo = { errors: [`permission denied for token ${TOKEN}`] };
    emptyLists(nock(VAULT)).post('/v1/pki/issue/wogate').reply(429, echo, { 'Retry-After': '12' });
    const limited = await failure(target().provision(g, ctx()));
    expect(limited.retryable).to.equal(true);
    expect(limited.details?.['retryAfterMs']).to.equal(12_000);

    emptyLists(nock(VAULT)).post('/v1/pki/issue/wogate').reply(503, echo);
    const down = await failure(target().provision(g, ctx()));
    expect(down.retryable).to.equal(true);

    nock(VAULT).get('/v1/pki/certs').query({ list: 'true' }).reply(403, echo).get('/v1/pki/certs/revoked').query({ list: 'true' }).reply(403, echo);
    const denied = await failure(target().provision(g, ctx()));
    expect(denied.retryable).to.equal(false);
    expect(denied.details?.['status']).to.equal(403);

    for (const e of [limited, down, denied]) expect(`${e.message} ${JSON.stringify(e.details)} ${e.stack}`).not.to.include(TOKEN);
  });

  it('an answer that is not JSON leaves a retryable error saying so', async () => {
    nock(VAULT).get('/v1/pki/certs').query({ list: 'true' }).reply(200, '<html>proxy error</html>').get('/v1/pki/certs/revoked').query({ list: 'true' }).reply(404, { errors: [] });
    const e = await failure(target().list(ctx()));
    expect(e.retryable).to.equal(true);
    expect(e.message).to.include('not JSON');
  });

  it('revokes with the colon serial Vault prints, and treats "not found" as already gone', async () => {
    const scope = nock(VAULT, { reqheaders: { 'x-vault-token': TOKEN } })
      .post('/v1/pki/revoke', { serial_number: '0a:1b:2c:3d' })
      .reply(400, { errors: ['certificate with serial 0a:1b:2c:3d not found'] });
    const issuer = new VaultPki('vault-certs', { address: VAULT, token: TOKEN, role: 'wogate' });
    await issuer.revoke('0A1B2C3D', 'cessationOfOperation', ctx());
    expect(scope.isDone()).to.equal(true);
    await issuer.close();
  });
});

// ---------------------------------------------------------------------------------------------

describe('certificate target config', () => {
  const ajv = new Ajv.default({ allErrors: true, strict: false });
  const validate = ajv.compile({
    ...CERTIFICATE_TARGET_SCHEMA,
    definitions: {
      duration: { type: 'string', pattern: '^([0-9]+(ms|s|m|h|d))+$' },
      secretRef: { type: 'string', pattern: '^(env:[A-Za-z_][A-Za-z0-9_]*|file:.+)$' },
    },
  });

  it('the examples in docs/targets/certificate.md validate against the schema and build options', () => {
    const doc = fs.readFileSync(new URL('../../docs/targets/certificate.md', import.meta.url), 'utf8');
    const blocks = [...doc.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => YAML.parse(m[1] as string) as { targets: { id: string; kind: string; certificate: Record<string, unknown> }[] });
    const targets = blocks.flatMap((b) => b.targets ?? []);
    expect(targets.map((t) => t.certificate['issuer'])).to.include.members(['local', 'vault']);
    for (const t of targets) {
      expect(t.kind).to.equal('certificate');
      expect(validate(t.certificate), JSON.stringify(validate.errors)).to.equal(true);
      // As the runtime would pass it: secrets resolved, durations still text.
      const resolved = JSON.parse(JSON.stringify(t.certificate).replace(/"(env|file):[^"]*"/g, '"a-resolved-secret-value"')) as Record<string, unknown>;
      const o = certificateTargetOptions(t.id, resolved);
      expect(o.issuer.kind).to.equal(t.certificate['issuer']);
    }
  });

  it('turns durations into milliseconds', () => {
    const o = certificateTargetOptions('certs', { issuer: 'local', clockSkew: '90s', local: { dir: '/var/lib/wogate/ca', passphrase: PASSPHRASE, caValidity: '365d', crlValidity: '12h' } });
    expect(o).to.deep.equal({ id: 'certs', clockSkewMs: 90_000, issuer: { kind: 'local', dir: '/var/lib/wogate/ca', passphrase: PASSPHRASE, caValidityMs: 365 * 86_400_000, crlValidityMs: 12 * 3_600_000 } });
  });

  it('rejects a bad config with a message naming the field', () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ issuer: 'local', local: { dir: '/var/lib/ca', passphrase: 'short' } }, 'certificate.local.passphrase'],
      [{ issuer: 'local', local: { dir: 'relative/ca', passphrase: PASSPHRASE } }, 'certificate.local.dir'],
      [{ issuer: 'local' }, 'certificate.local is required'],
      [{ issuer: 'local', local: { dir: '/ca', passphrase: PASSPHRASE, caValidity: '2h' } }, 'certificate.local.caValidity'],
      [{ issuer: 'local', local: { dir: '/ca', passphrase: PASSPHRASE, crlValidity: 'soon' } }, 'certificate.local.crlValidity'],
      [{ issuer: 'vault', vault: { address: 'https://vault:8200', role: 'wogate' } }, 'certificate.vault needs exactly one of token and appRole'],
      [{ issuer: 'vault', vault: { address: 'https://vault:8200', role: 'wogate', token: 't', appRole: { roleId: 'r', secretId: 's' } } }, 'certificate.vault needs exactly one'],
      [{ issuer: 'vault', vault: { address: 'https://vault:8200', role: 'wogate', token: 't', timeout: '10m' } }, 'certificate.vault.timeout'],
      [{ issuer: 'vault', local: { dir: '/ca', passphrase: PASSPHRASE }, vault: { address: 'https://vault:8200', role: 'wogate', token: 't' } }, 'certificate.local must not be set'],
      [{ issuer: 'vault', clockSkew: '1m', vault: { address: 'https://vault:8200', role: 'wogate', token: 't' } }, 'certificate.clockSkew applies to issuer: local only'],
      [{ issuer: 'acme' }, 'certificate.issuer'],
    ];
    for (const [block, field] of cases) {
      let caught: unknown;
      try {
        certificateTargetOptions('certs', block);
      } catch (e) {
        caught = e;
      }
      expect(isWogateError(caught, 'CONFIG_INVALID'), `${JSON.stringify(block)} is refused`).to.equal(true);
      expect((caught as Error).message, JSON.stringify(block)).to.include(`target certs: ${field}`);
    }
  });

  it('the schema refuses an inline secret and an unknown key', () => {
    expect(validate({ issuer: 'local', local: { dir: '/ca', passphrase: 'inline-passphrase-value' } })).to.equal(false);
    expect(validate({ issuer: 'vault', vault: { address: 'https://vault:8200', role: 'wogate', token: 'env:VAULT_TOKEN', tls: false } })).to.equal(false);
  });
});
