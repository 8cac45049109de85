import { randomInt } from 'node:crypto';
import forge from 'node-forge';
import type { IssuedCredential } from '../targets/certificate.js';

// No 0/O, 1/l/I: the passphrase is read off a screen and typed into a certificate import dialog.
const ALPHABET = 'abcdefghjkmnpqrstuvwxyz23456789';

/** Five groups of five: about 122 bits, typeable. */
export function onePassphrase(): string {
  const groups: string[] = [];
  for (let g = 0; g < 5; g++) {
    let s = '';
    for (let i = 0; i < 5; i++) s += ALPHABET[randomInt(ALPHABET.length)];
    groups.push(s);
  }
  return groups.join('-');
}

/** Throws unless `pem` is a key this module can put in a PKCS#12 file (RSA: node-forge's limit). */
export function checkPackable(credential: IssuedCredential): void {
  forge.pki.privateKeyFromPem(credential.privateKeyPem);
  forge.pki.certificateFromPem(credential.certificatePem);
}

function pemCertificates(bundle: string): forge.pki.Certificate[] {
  return (bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map((p) => forge.pki.certificateFromPem(p));
}

/**
 * Certificate, chain and key as PKCS#12 (AES-256 under PBKDF2), DER bytes. The passphrase is random
 * (~124 bits), so iterations add little; 10 000 keeps node-forge's synchronous derivation from
 * holding the daemon's event loop (and its expiry timers) for long.
 */
export function toPkcs12(credential: IssuedCredential, passphrase: string): Buffer {
  const key = forge.pki.privateKeyFromPem(credential.privateKeyPem);
  const certs = [forge.pki.certificateFromPem(credential.certificatePem), ...pemCertificates(credential.chainPem)];
  const asn1 = forge.pkcs12.toPkcs12Asn1(key, certs, passphrase, { algorithm: 'aes256', count: 10_000, friendlyName: credential.commonName });
  return Buffer.from(forge.asn1.toDer(asn1).getBytes(), 'binary');
}
