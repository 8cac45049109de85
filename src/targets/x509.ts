// X.509 pieces the certificate target needs and node-forge lacks: a signed v2 CRL (forge 1.x
// can read CRLs inside PKCS#7 but not make one), serial numbers in one canonical spelling, a
// passphrase-encrypted PKCS#8 key with a strong KDF, and a reader for certificates whatever
// their key type (forge refuses to parse EC certificates, which a Vault role may issue).
import { constants, createCipheriv, pbkdf2, privateEncrypt, randomBytes, X509Certificate, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import forge from 'node-forge';

const { asn1 } = forge;
type Asn1 = forge.asn1.Asn1;
const U = asn1.Class.UNIVERSAL;
const T = asn1.Type;

/** RFC 5280 5.3.1 CRLReason values wogate uses. */
export type CrlReason = 'keyCompromise' | 'superseded' | 'cessationOfOperation' | 'privilegeWithdrawn';
export const CRL_REASON_CODE: Readonly<Record<CrlReason, number>> = { keyCompromise: 1, superseded: 4, cessationOfOperation: 5, privilegeWithdrawn: 9 };

const OID = {
  sha256WithRSA: '1.2.840.113549.1.1.11',
  authorityKeyIdentifier: '2.5.29.35',
  cRLNumber: '2.5.29.20',
  reasonCode: '2.5.29.21',
  pbes2: '1.2.840.113549.1.5.13',
  pbkdf2: '1.2.840.113549.1.5.12',
  hmacWithSHA256: '1.2.840.113549.2.9',
  aes256Cbc: '2.16.840.1.101.3.4.1.42',
  commonName: '2.5.4.3',
  organization: '2.5.4.10',
  organizationalUnit: '2.5.4.11',
} as const;

/**
 * A serial number as wogate writes it in refs and indexes: lowercase hex of the positive
 * integer, no separators, no leading zero bytes. Vault's "39:dd:…", openssl's "39DD…" and
 * forge's "0039dd…" all map to the same text. Undefined for anything that is not one.
 */
export function canonicalSerial(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const hex = value.replace(/[:\-\s]/g, '').toLowerCase();
  if (!/^[0-9a-f]{1,42}$/.test(hex)) return undefined;
  const trimmed = hex.replace(/^0+/, '');
  if (trimmed === '') return undefined; // serial 0 is not a serial (RFC 5280 4.1.2.2: positive)
  return trimmed.length % 2 === 1 ? `0${trimmed}` : trimmed;
}

/** "39:dd:…", the form Vault's API takes and prints. */
export function colonSerial(serial: string): string {
  return (serial.match(/../g) ?? []).join(':');
}

/** The INTEGER content octets: a leading 00 where the top bit is set, so the number stays positive. */
export function derSerialHex(serial: string): string {
  return /^[89a-f]/.test(serial) ? `00${serial}` : serial;
}

/** 128 random bits as a positive serial (RFC 5280 allows up to 20 octets; CA/B asks for 64+ random bits). */
export function randomSerial(): string {
  for (;;) {
    const b = randomBytes(16);
    if (b[0] !== 0) return b.toString('hex');
  }
}

export function derToPem(der: Buffer, label: string): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/** The first PEM block with this label, as DER; undefined when there is none. */
export function pemToDer(pem: string, label: string): Buffer | undefined {
  const m = new RegExp(`-----BEGIN ${label}-----([A-Za-z0-9+/=\\s]+)-----END ${label}-----`).exec(pem);
  return m?.[1] === undefined ? undefined : Buffer.from(m[1].replace(/\s+/g, ''), 'base64');
}

/** Every certificate in a PEM bundle, each normalised to its own block. */
export function splitPemCertificates(bundle: string): string[] {
  return (bundle.match(/-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+-----END CERTIFICATE-----/g) ?? []).map((b) => `${b.replace(/\r\n/g, '\n').trim()}\n`);
}

const node = (tagClass: forge.asn1.Class, type: number, constructed: boolean, value: string | Asn1[]): Asn1 => asn1.create(tagClass, type, constructed, value);
const seq = (items: Asn1[]): Asn1 => node(U, T.SEQUENCE, true, items);
const oid = (id: string): Asn1 => node(U, T.OID, false, asn1.oidToDer(id).getBytes());
const octets = (bytes: string): Asn1 => node(U, T.OCTETSTRING, false, bytes);
const integer = (n: number): Asn1 => node(U, T.INTEGER, false, asn1.integerToDer(n).getBytes());
const der = (a: Asn1): string => asn1.toDer(a).getBytes();

/** RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050, whole seconds. */
function time(d: Date): Asn1 {
  const whole = new Date(Math.floor(d.getTime() / 1000) * 1000);
  const y = whole.getUTCFullYear();
  return y >= 1950 && y < 2050 ? node(U, T.UTCTIME, false, asn1.dateToUtcTime(whole)) : node(U, T.GENERALIZEDTIME, false, asn1.dateToGeneralizedTime(whole));
}

function readTime(a: Asn1 | undefined): Date {
  if (a?.type === T.UTCTIME) return asn1.utcTimeToDate(a.value as string);
  if (a?.type === T.GENERALIZEDTIME) return asn1.generalizedTimeToDate(a.value as string);
  throw new Error('certificate validity is not a time');
}

function extension(id: string, value: Asn1): Asn1 {
  return seq([oid(id), octets(der(value))]);
}

/** The pieces of a certificate's TBS wogate reads, straight from the DER (any key type). */
function tbsParts(certDer: Buffer): { serial: Asn1; issuer: Asn1; validity: Asn1; subject: Asn1 } {
  const root = asn1.fromDer(certDer.toString('binary'));
  const tbs = (root.value as Asn1[])[0];
  const parts = (tbs?.value ?? []) as Asn1[];
  const at = parts[0]?.tagClass === asn1.Class.CONTEXT_SPECIFIC ? 1 : 0; // [0] version is optional (v1)
  const [serial, , issuer, validity, subject] = parts.slice(at);
  if (!serial || !issuer || !validity || !subject) throw new Error('certificate TBS is incomplete');
  return { serial, issuer, validity, subject };
}

/** A DirectoryString as text: UTF8String, PrintableString and IA5String as UTF-8, BMPString as UCS-2. */
function attributeText(type: number, bytes: string): string {
  if (type === T.BMPSTRING) return Buffer.from(bytes, 'binary').swap16().toString('utf16le');
  try {
    return forge.util.decodeUtf8(bytes);
  } catch {
    return Buffer.from(bytes, 'binary').toString('latin1'); // TeletexString and other oddities: close enough to compare
  }
}

export interface CertificateFacts {
  readonly serial: string;
  readonly commonName?: string;
  readonly organizations: readonly string[];
  readonly organizationalUnits: readonly string[];
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly isCa: boolean;
}

/** What wogate needs to know about a certificate; throws on anything that is not one. */
export function inspectCertificate(pem: string): CertificateFacts {
  const x = new X509Certificate(pem);
  const { validity, subject } = tbsParts(x.raw);
  const attrs: { type: string; value: string }[] = [];
  for (const rdn of subject.value as Asn1[]) {
    for (const atv of rdn.value as Asn1[]) {
      const [type, value] = atv.value as Asn1[];
      if (!type || !value || typeof value.value !== 'string') continue;
      attrs.push({ type: asn1.derToOid(type.value as string), value: attributeText(value.type, value.value) });
    }
  }
  const [notBefore, notAfter] = validity.value as Asn1[];
  const serial = canonicalSerial(x.serialNumber);
  if (serial === undefined) throw new Error('certificate has no usable serial number');
  const cn = attrs.find((a) => a.type === OID.commonName)?.value;
  return {
    serial,
    ...(cn !== undefined ? { commonName: cn } : {}),
    organizations: attrs.filter((a) => a.type === OID.organization).map((a) => a.value),
    organizationalUnits: attrs.filter((a) => a.type === OID.organizationalUnit).map((a) => a.value),
    notBefore: readTime(notBefore),
    notAfter: readTime(notAfter),
    isCa: x.ca,
  };
}

export interface CrlEntry {
  readonly serial: string;
  readonly revokedAt: Date;
  readonly reason: CrlReason;
}

export interface CrlInput {
  readonly caCertPem: string;
  /** The CA's subject key identifier (hex), repeated as the CRL's authority key identifier. */
  readonly caKeyId: string;
  readonly caKey: Signer;
  readonly number: number;
  readonly thisUpdate: Date;
  readonly nextUpdate: Date;
  readonly entries: readonly CrlEntry[];
}

/**
 * A v2 CRL (RFC 5280 5.1) signed sha256WithRSAEncryption: issuer copied byte for byte from the
 * CA certificate (so name matching never depends on re-encoding), a reasonCode on every entry,
 * and the cRLNumber and authorityKeyIdentifier extensions.
 */
export function signCrl(o: CrlInput): { der: Buffer; pem: string } {
  const caDer = pemToDer(o.caCertPem, 'CERTIFICATE');
  if (!caDer) throw new Error('CA certificate PEM has no CERTIFICATE block');
  const { subject } = tbsParts(caDer);
  const algorithm = seq([oid(OID.sha256WithRSA), node(U, T.NULL, false, '')]);
  const revoked = o.entries.map((e) =>
    seq([
      node(U, T.INTEGER, false, forge.util.hexToBytes(derSerialHex(e.serial))),
      time(e.revokedAt),
      seq([extension(OID.reasonCode, node(U, T.ENUMERATED, false, String.fromCharCode(CRL_REASON_CODE[e.reason])))]),
    ]),
  );
  const tbs = seq([
    integer(1), // v2
    algorithm,
    subject,
    time(o.thisUpdate),
    time(o.nextUpdate),
    // An empty revokedCertificates must be absent, not an empty SEQUENCE (RFC 5280 5.1.2.6).
    ...(revoked.length > 0 ? [seq(revoked)] : []),
    node(asn1.Class.CONTEXT_SPECIFIC, 0, true, [
      seq([
        extension(OID.authorityKeyIdentifier, seq([node(asn1.Class.CONTEXT_SPECIFIC, 0, false, forge.util.hexToBytes(o.caKeyId))])),
        extension(OID.cRLNumber, integer(o.number)),
      ]),
    ]),
  ]);
  const md = forge.md.sha256.create();
  md.update(der(tbs));
  const signature = o.caKey.sign(md);
  const crl = seq([tbs, algorithm, node(U, T.BITSTRING, false, `\u0000${signature}`)]);
  const out = Buffer.from(der(crl), 'binary');
  return { der: out, pem: derToPem(out, 'X509 CRL') };
}

/** What forge's `cert.sign(key, md)` calls: `key.sign(md)`, the PKCS#1 v1.5 signature as a binary string. */
export interface Signer {
  sign(md: forge.md.MessageDigest): string;
}

/** DigestInfo prefix for SHA-256 (RFC 8017 9.2 note 1). */
const SHA256_DIGEST_INFO = Buffer.from('3031300d060960864801650304020105000420', 'hex');

/**
 * A forge signer backed by a Node KeyObject: the RSA operation runs in OpenSSL (forge's takes
 * ~70 ms of blocked event loop for a 3072-bit key) and the key never becomes JavaScript numbers.
 */
export function keySigner(key: KeyObject): Signer {
  return {
    sign(md) {
      if (md.algorithm !== 'sha256') throw new Error(`only sha256 signatures are made, not ${md.algorithm}`);
      const digest = Buffer.from(md.digest().getBytes(), 'binary');
      return privateEncrypt({ key, padding: constants.RSA_PKCS1_PADDING }, Buffer.concat([SHA256_DIGEST_INFO, digest])).toString('binary');
    },
  };
}

const pbkdf2Async = promisify(pbkdf2);

/**
 * PKCS#8 EncryptedPrivateKeyInfo, PBES2 with PBKDF2-HMAC-SHA256 and AES-256-CBC (what
 * `openssl pkcs8 -topk8 -v2 aes-256-cbc -v2prf hmacWithSHA256 -iter N` writes). Built here
 * because forge runs a SHA-256 PBKDF2 in JavaScript (seconds at a sound iteration count) and
 * Node's own export fixes the count at OpenSSL's default of 2048.
 */
export async function encryptPrivateKey(key: KeyObject, passphrase: string, iterations: number): Promise<string> {
  const plain = key.export({ type: 'pkcs8', format: 'der' });
  const salt = randomBytes(16);
  const iv = randomBytes(16);
  const dk = await pbkdf2Async(passphrase, salt, iterations, 32, 'sha256');
  const cipher = createCipheriv('aes-256-cbc', dk, iv);
  const encrypted = Buffer.concat([cipher.update(plain), cipher.final()]);
  dk.fill(0);
  const bin = (b: Buffer): string => b.toString('binary');
  const info = seq([
    seq([
      oid(OID.pbes2),
      seq([
        seq([oid(OID.pbkdf2), seq([octets(bin(salt)), integer(iterations), integer(32), seq([oid(OID.hmacWithSHA256), node(U, T.NULL, false, '')])])]),
        seq([oid(OID.aes256Cbc), octets(bin(iv))]),
      ]),
    ]),
    octets(bin(encrypted)),
  ]);
  return derToPem(Buffer.from(der(info), 'binary'), 'ENCRYPTED PRIVATE KEY');
}
