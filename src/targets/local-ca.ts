import { createHash, createPrivateKey, generateKeyPair, X509Certificate, type KeyObject } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import forge from 'node-forge';
import type { CertificateIssuer, IssuedCertificate, IssuedCredential, IssueRequest } from './certificate.js';
import { TargetError, type CallContext } from './target.js';
import { canonicalSerial, derSerialHex, encryptPrivateKey, keySigner, randomSerial, signCrl, type CrlReason, type Signer } from './x509.js';

/**
 * The embedded CA: a self-signed RSA root in a state directory, issuing client certificates and
 * publishing a CRL. Layout (the directory is made 0750; nothing in it is ever written in place):
 *
 *   ca-key.pem   the CA key, PKCS#8 encrypted with the passphrase (PBKDF2-SHA256, AES-256-CBC), 0600
 *   ca.pem       the CA certificate, 0644
 *   index.json   every certificate issued (no keys), revocations, the CRL number, 0600
 *   crl.pem/der  the current CRL, 0644, for a web server to publish if wogate's own route is not used
 *
 * One wogate process per directory: calls are serialised in memory, not across processes.
 */
export interface LocalCaOptions {
  /** The state directory; created if missing. */
  readonly dir: string;
  /** Decrypts (and, the first time, encrypts) the CA key. At least 12 characters. */
  readonly passphrase: string;
  /** RSA size of each issued key; default 3072. */
  readonly keyBits?: number;
  /** RSA size of the CA key when it is created; default 3072. */
  readonly caKeyBits?: number;
  /** Lifetime of the CA certificate when it is created; default 5 years. */
  readonly caValidityMs?: number;
  /** CA subject CN when it is created; default "wogate vendor access CA (<target id>)". */
  readonly caCommonName?: string;
  /** CA subject O when it is created; default "wogate". */
  readonly organization?: string;
  /** Public URL of the CRL, written into every certificate's CRL distribution points. */
  readonly crlUrl?: string;
  /** nextUpdate - thisUpdate of each CRL; it is re-signed when half of this has passed. Default 1 day. */
  readonly crlValidityMs?: number;
  /** PBKDF2 iterations for the CA key; default 600000 (OWASP 2023 for PBKDF2-HMAC-SHA256). */
  readonly kdfIterations?: number;
}

interface CertRecord {
  serial: string;
  commonName: string;
  vendorId: string;
  grantId: string;
  notBefore: string;
  notAfter: string;
  issuedAt: string;
  pending?: true;
  revokedAt?: string;
  reason?: CrlReason;
  /** Appeared on a CRL signed after its notAfter; RFC 5280 5.1.2.6 lets it drop off after that. */
  listedAfterExpiry?: true;
}

interface CaIndex {
  version: 1;
  /** SHA-256 of the CA certificate this index belongs to; '' while the CA is being created. */
  ca: string;
  crlNumber: number;
  certs: CertRecord[];
}

interface LoadedCa {
  certPem: string;
  cert: forge.pki.Certificate;
  key: Signer;
  keyId: string;
  notAfter: Date;
}

const FILE = { key: 'ca-key.pem', cert: 'ca.pem', index: 'index.json', crlPem: 'crl.pem', crlDer: 'crl.der' } as const;
const generateKeyPairAsync = promisify(generateKeyPair);
const DAY = 86_400_000;
/** Records of certificates that ended this long ago leave the index (once off the CRL). */
const RETAIN_MS = 30 * DAY;

type Reason = 'config' | 'ca_state' | 'ca_key_locked' | 'ca_expiring' | 'state_write_failed';

const isoSeconds = (d: Date): string => new Date(Math.floor(d.getTime() / 1000) * 1000).toISOString();

async function exists(file: string): Promise<boolean> {
  return fs.stat(file).then(() => true, (e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? false : Promise.reject(e)));
}

/** Write to a temporary file, flush, rename over the old one, flush the directory: all or nothing. */
async function writeAtomic(file: string, data: string | Buffer, mode: number): Promise<void> {
  const tmp = `${file}.tmp`;
  const fh = await fs.open(tmp, 'w', mode);
  try {
    await fh.chmod(mode); // open's mode is only used on create, and the umask trims it
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await fs.rename(tmp, file);
  const dir = await fs.open(path.dirname(file), 'r');
  try {
    await dir.sync();
  } catch (e) {
    // Some filesystems cannot fsync a directory; the rename is still atomic there.
    if ((e as NodeJS.ErrnoException).code !== 'EINVAL') throw e;
  } finally {
    await dir.close();
  }
}

export class LocalCa implements CertificateIssuer {
  readonly setsNotBefore = true;
  private readonly dir: string;
  private readonly keyBits: number;
  private readonly caKeyBits: number;
  private readonly caValidityMs: number;
  private readonly crlValidityMs: number;
  private readonly iterations: number;
  private ca: LoadedCa | undefined;
  private index: CaIndex = { version: 1, ca: '', crlNumber: 0, certs: [] };
  private current: { der: Buffer; pem: string; thisUpdate: number } | undefined;
  /** The index has moved past the CRL files (a write failed in between): the next call publishes again. */
  private dirty = false;
  private queue: Promise<unknown> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly id: string,
    private readonly o: LocalCaOptions,
  ) {
    this.dir = path.resolve(o.dir);
    this.keyBits = o.keyBits ?? 3072;
    this.caKeyBits = o.caKeyBits ?? 3072;
    this.caValidityMs = o.caValidityMs ?? 5 * 365 * DAY;
    this.crlValidityMs = o.crlValidityMs ?? DAY;
    this.iterations = o.kdfIterations ?? 600_000;
    const check = (ok: boolean, what: string): void => {
      if (!ok) throw this.fail('config', what);
    };
    check(typeof o.dir === 'string' && o.dir.trim() !== '', 'local.dir must be a directory path');
    check(typeof o.passphrase === 'string' && o.passphrase.length >= 12, 'local.passphrase must be at least 12 characters');
    check([2048, 3072, 4096].includes(this.keyBits) && [2048, 3072, 4096].includes(this.caKeyBits), 'keyBits must be 2048, 3072 or 4096');
    check(this.caValidityMs >= DAY, 'caValidity must be at least 1d');
    check(this.crlValidityMs >= 60_000 && this.crlValidityMs <= 31 * DAY, 'crlValidity must be between 1m and 31d');
    check(Number.isInteger(this.iterations) && this.iterations >= 1000, 'kdfIterations must be at least 1000');
  }

  async init(ctx: CallContext): Promise<void> {
    await this.serial(async () => {
      await fs.mkdir(this.dir, { recursive: true, mode: 0o750 }).catch((e: NodeJS.ErrnoException) => {
        throw this.fail('ca_state', `cannot create state directory ${this.dir}: ${e.code ?? e.message}`, true);
      });
      const [hasIndex, hasKey, hasCert] = await Promise.all([FILE.index, FILE.key, FILE.cert].map((f) => exists(this.file(f))));
      const index = hasIndex ? await this.readIndex() : undefined;
      if (!index || index.ca === '') {
        if (!index && (hasKey || hasCert)) {
          throw this.fail('ca_state', `${this.file(FILE.index)} is missing but a CA exists: restore it from backup (starting without it would forget every revocation)`);
        }
        await this.create(ctx);
      } else {
        if (!hasKey || !hasCert) throw this.fail('ca_state', `${!hasKey ? FILE.key : FILE.cert} is missing from ${this.dir}: restore it from backup`);
        await this.load(index, ctx);
      }
      // A fresh CRL on every start: it also covers a crash between an index write and a CRL write.
      await this.publish({ ...this.index, certs: this.index.certs.map((c) => ({ ...c })) }, ctx.now);
    });
    if (!this.o.crlUrl) ctx.log.warn('local CA without crlUrl: certificates name no CRL, so relying parties must be told where it is', { target: this.id });
    const every = Math.min(this.crlValidityMs / 4, 3_600_000);
    if (this.timer) clearInterval(this.timer);
    this.timer = setInterval(() => {
      this.crl({ now: new Date(), log: ctx.log }).catch((e: unknown) => ctx.log.error('cannot re-sign the CRL', { target: this.id, error: (e as Error).message }));
    }, every);
    this.timer.unref();
  }

  async active(ctx: CallContext): Promise<IssuedCertificate[]> {
    // Every target call starts here: a revocation whose CRL write failed is published before
    // anything else happens (and the call fails while that is impossible), since the retried
    // revoke no longer sees the certificate as live.
    if (this.dirty) await this.serial(() => (this.dirty ? this.publish({ ...this.index, certs: this.index.certs.map((c) => ({ ...c })) }, ctx.now) : Promise.resolve()));
    const now = ctx.now.getTime();
    return this.index.certs
      .filter((c) => c.revokedAt === undefined && Date.parse(c.notAfter) > now)
      .map((c) => ({ serial: c.serial, commonName: c.commonName, notBefore: new Date(c.notBefore), notAfter: new Date(c.notAfter), ...(c.pending ? { pending: true } : {}) }));
  }

  async issue(req: IssueRequest, ctx: CallContext): Promise<IssuedCredential> {
    const caNotAfter = this.loaded().notAfter;
    if (req.notAfter.getTime() > caNotAfter.getTime()) {
      throw this.fail('ca_expiring', `the window ends ${req.notAfter.toISOString()}, after the CA certificate expires (${caNotAfter.toISOString()}): create a new CA`);
    }
    // The key pair outside the queue: generating one takes a while and needs nothing from the index.
    const { privateKey, publicKey } = await generateKeyPairAsync('rsa', { modulusLength: this.keyBits, publicExponent: 0x10001 });
    return this.serial(async () => {
      const ca = this.loaded();
      let serial = randomSerial();
      while (this.index.certs.some((c) => c.serial === serial)) serial = randomSerial();
      const cert = forge.pki.createCertificate();
      cert.publicKey = forge.pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }) as string);
      cert.serialNumber = derSerialHex(serial);
      cert.validity.notBefore = req.notBefore;
      cert.validity.notAfter = req.notAfter;
      cert.setSubject([utf8('O', req.vendorId), utf8('CN', req.commonName)]);
      cert.setIssuer(ca.cert.subject.attributes);
      const san = subjectAltName(req.commonName);
      cert.setExtensions([
        { name: 'basicConstraints', cA: false, critical: true },
        { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
        { name: 'extKeyUsage', clientAuth: true },
        { name: 'subjectKeyIdentifier' },
        { name: 'authorityKeyIdentifier', keyIdentifier: forge.util.hexToBytes(ca.keyId) },
        ...(san ? [{ name: 'subjectAltName', altNames: [san] }] : []),
        ...(this.o.crlUrl ? [{ name: 'cRLDistributionPoints', altNames: [{ type: 6, value: this.o.crlUrl }] }] : []),
      ]);
      cert.sign(ca.key as unknown as forge.pki.rsa.PrivateKey, forge.md.sha256.create());
      const record: CertRecord = {
        serial, commonName: req.commonName, vendorId: req.vendorId, grantId: req.grantId,
        notBefore: isoSeconds(req.notBefore), notAfter: isoSeconds(req.notAfter), issuedAt: ctx.now.toISOString(), pending: true,
      };
      // Recorded before anyone sees the key: a certificate wogate does not know about cannot exist.
      await this.commit({ ...this.index, certs: [...this.prune(this.index.certs, ctx.now), record] });
      return {
        serial,
        commonName: req.commonName,
        notBefore: new Date(record.notBefore),
        notAfter: new Date(record.notAfter),
        certificatePem: forge.pki.certificateToPem(cert),
        privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
        chainPem: ca.certPem,
      };
    });
  }

  confirm(serial: string): Promise<void> {
    return this.serial(async () => {
      if (!this.index.certs.some((c) => c.serial === serial && c.pending)) return;
      await this.commit({ ...this.index, certs: this.index.certs.map((c) => (c.serial === serial ? withoutPending(c) : c)) });
    });
  }

  revoke(serial: string, reason: CrlReason, ctx: CallContext): Promise<void> {
    return this.serial(async () => {
      const s = canonicalSerial(serial);
      const rec = this.index.certs.find((c) => c.serial === s);
      // Unknown, already revoked or already expired: nothing to add to the CRL.
      if (!rec || rec.revokedAt !== undefined || Date.parse(rec.notAfter) <= ctx.now.getTime()) return;
      const certs = this.index.certs.map((c) => (c === rec ? { ...c, revokedAt: ctx.now.toISOString(), reason } : { ...c }));
      await this.publish({ ...this.index, certs }, ctx.now);
      ctx.log.debug('certificate revoked on the local CA', { target: this.id, serial: rec.serial, reason });
    });
  }

  async caCertificatePem(): Promise<string> {
    return this.loaded().certPem;
  }

  /** The current CRL, re-signed first when half its validity has passed. */
  crl(ctx: CallContext): Promise<{ der: Buffer; pem: string }> {
    return this.serial(async () => {
      const c = this.current;
      if (!c || this.dirty || ctx.now.getTime() - c.thisUpdate >= this.crlValidityMs / 2) {
        await this.publish({ ...this.index, certs: this.index.certs.map((r) => ({ ...r })) }, ctx.now);
      }
      const out = this.current as NonNullable<LocalCa['current']>;
      return { der: out.der, pem: out.pem };
    });
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private file(name: string): string {
    return path.join(this.dir, name);
  }

  private fail(reason: Reason, message: string, retryable = false): TargetError {
    return new TargetError(this.id, message, retryable, { reason });
  }

  private loaded(): LoadedCa {
    if (!this.ca) throw this.fail('ca_state', 'the local CA is not initialised (init() was not called or failed)', true);
    return this.ca;
  }

  /** Runs `fn` after every earlier call has finished: one writer of the index at a time. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async readIndex(): Promise<CaIndex> {
    const file = this.file(FILE.index);
    let doc: Partial<CaIndex>;
    try {
      doc = JSON.parse(await fs.readFile(file, 'utf8')) as Partial<CaIndex>;
    } catch (e) {
      throw this.fail('ca_state', `cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? 'not JSON'}; restore it from backup`);
    }
    if (doc.version !== 1 || typeof doc.ca !== 'string' || !Number.isInteger(doc.crlNumber) || !Array.isArray(doc.certs)) {
      throw this.fail('ca_state', `${file} is not a wogate CA index (version 1)`);
    }
    return doc as CaIndex;
  }

  private async commit(next: CaIndex): Promise<void> {
    await this.write(FILE.index, `${JSON.stringify(next, null, 1)}\n`, 0o600);
    this.index = next;
  }

  private async write(name: string, data: string | Buffer, mode: number): Promise<void> {
    try {
      await writeAtomic(this.file(name), data, mode);
    } catch (e) {
      throw this.fail('state_write_failed', `cannot write ${this.file(name)}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, true);
    }
  }

  /** Signs the next CRL from `next`, saves the index, then the CRL files. */
  private async publish(next: CaIndex, now: Date): Promise<void> {
    const ca = this.loaded();
    const thisUpdate = Math.floor(now.getTime() / 1000) * 1000;
    const listed = next.certs.filter((c) => c.revokedAt !== undefined && !c.listedAfterExpiry);
    for (const c of listed) if (Date.parse(c.notAfter) <= thisUpdate) c.listedAfterExpiry = true;
    const number = next.crlNumber + 1;
    const crl = signCrl({
      caCertPem: ca.certPem, caKeyId: ca.keyId, caKey: ca.key, number,
      thisUpdate: new Date(thisUpdate), nextUpdate: new Date(thisUpdate + this.crlValidityMs),
      entries: listed.map((c) => ({ serial: c.serial, revokedAt: new Date(c.revokedAt as string), reason: c.reason ?? 'cessationOfOperation' })),
    });
    this.dirty = true;
    await this.commit({ ...next, crlNumber: number, certs: this.prune(next.certs, now) });
    await this.write(FILE.crlDer, crl.der, 0o644);
    await this.write(FILE.crlPem, crl.pem, 0o644);
    this.current = { ...crl, thisUpdate };
    this.dirty = false;
  }

  /** Drops records long past their end, unless a revoked one still has to appear on a CRL. */
  private prune(certs: readonly CertRecord[], now: Date): CertRecord[] {
    const cutoff = now.getTime() - RETAIN_MS;
    return certs.filter((c) => Date.parse(c.notAfter) > cutoff || (c.revokedAt !== undefined && !c.listedAfterExpiry));
  }

  private async create(ctx: CallContext): Promise<void> {
    const o = this.o;
    for (const f of [FILE.key, FILE.cert]) await fs.rm(this.file(f), { force: true });
    // The index first, marked "being created": a crash from here on is recognised and redone.
    await this.commit({ version: 1, ca: '', crlNumber: 0, certs: [] });
    const { privateKey, publicKey } = await generateKeyPairAsync('rsa', { modulusLength: this.caKeyBits, publicExponent: 0x10001 });
    const key = keySigner(privateKey);
    const cert = forge.pki.createCertificate();
    cert.publicKey = forge.pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }) as string);
    cert.serialNumber = derSerialHex(randomSerial());
    const now = Math.floor(ctx.now.getTime() / 1000) * 1000;
    cert.validity.notBefore = new Date(now - 3_600_000);
    cert.validity.notAfter = new Date(now + this.caValidityMs);
    const subject = [utf8('O', o.organization ?? 'wogate'), utf8('CN', o.caCommonName ?? `wogate vendor access CA (${this.id})`)];
    cert.setSubject(subject);
    cert.setIssuer(subject);
    cert.setExtensions([
      { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
      { name: 'subjectKeyIdentifier' },
    ]);
    cert.sign(key as unknown as forge.pki.rsa.PrivateKey, forge.md.sha256.create());
    const certPem = forge.pki.certificateToPem(cert);
    await this.write(FILE.key, await encryptPrivateKey(privateKey, o.passphrase, this.iterations), 0o600);
    await this.write(FILE.cert, certPem, 0o644);
    this.ca = this.describe(certPem, cert, key);
    await this.commit({ ...this.index, ca: fingerprint(certPem) });
    ctx.log.info('local CA created', { target: this.id, dir: this.dir, subject: subject.map((a) => `${a.shortName}=${String(a.value)}`).join(','), notAfter: this.ca.notAfter.toISOString() });
  }

  private async load(index: CaIndex, ctx: CallContext): Promise<void> {
    const keyFile = this.file(FILE.key);
    const certPem = await fs.readFile(this.file(FILE.cert), 'utf8');
    if (fingerprint(certPem) !== index.ca) throw this.fail('ca_state', `${this.file(FILE.cert)} is not the CA ${FILE.index} belongs to`);
    const st = await fs.stat(keyFile);
    if ((st.mode & 0o077) !== 0) {
      await fs.chmod(keyFile, 0o600);
      ctx.log.warn('CA key file was readable by others; made 0600', { target: this.id, file: keyFile });
    }
    let keyObject: KeyObject;
    try {
      keyObject = createPrivateKey({ key: await fs.readFile(keyFile, 'utf8'), format: 'pem', passphrase: this.o.passphrase });
    } catch {
      throw this.fail('ca_key_locked', `cannot decrypt ${keyFile}: wrong passphrase or a damaged key file`);
    }
    const x = new X509Certificate(certPem);
    if (!x.checkPrivateKey(keyObject)) throw this.fail('ca_state', `${keyFile} does not belong to ${this.file(FILE.cert)}`);
    this.ca = this.describe(certPem, forge.pki.certificateFromPem(certPem), keySigner(keyObject));
    this.index = index;
    if (this.ca.notAfter.getTime() - ctx.now.getTime() < 30 * DAY) {
      ctx.log.warn('local CA certificate expires within 30 days; windows past it are refused', { target: this.id, notAfter: this.ca.notAfter.toISOString() });
    }
  }

  private describe(certPem: string, cert: forge.pki.Certificate, key: Signer): LoadedCa {
    const ski = cert.getExtension('subjectKeyIdentifier') as { subjectKeyIdentifier?: string } | undefined;
    const keyId = ski?.subjectKeyIdentifier ?? cert.generateSubjectKeyIdentifier().toHex();
    return { certPem, cert, key, keyId, notAfter: cert.validity.notAfter };
  }
}

/** A subject attribute as UTF8String (forge defaults to PrintableString, which cannot hold "@" or "_"). */
function utf8(shortName: string, value: string): forge.pki.CertificateField {
  // @types/node-forge types valueTagClass as an asn1.Class; forge reads it as the asn1.Type it is.
  return { shortName, value, valueTagClass: forge.asn1.Type.UTF8 as unknown as forge.asn1.Class };
}

function withoutPending(c: CertRecord): CertRecord {
  const { pending: _pending, ...rest } = c;
  return rest;
}

function fingerprint(certPem: string): string {
  return createHash('sha256').update(new X509Certificate(certPem).raw).digest('hex');
}

const EMAIL = /^[^@\s]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$/;
const HOSTNAME = /^(?=.{1,253}$)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

/** The common name again as an rfc822Name or dNSName when it is one, for stacks that match on SAN only. */
function subjectAltName(cn: string): { type: number; value: string } | undefined {
  if (EMAIL.test(cn)) return { type: 1, value: cn };
  if (HOSTNAME.test(cn)) return { type: 2, value: cn };
  return undefined;
}
