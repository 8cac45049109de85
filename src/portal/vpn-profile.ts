import { createPrivateKey, X509Certificate } from 'node:crypto';
import { WogateError } from '../domain/index.js';
import type { IssuedCredential } from '../targets/certificate.js';
import { checkVpnProfile, VpnProfileProblem, type OpenvpnProfile } from '../targets/certificate-vpn.js';
import { splitPemCertificates } from '../targets/x509.js';
import { checkPackable, onePassphrase, toPkcs12 } from './pkcs12.js';

/**
 * What the portal hands a technician for a collected credential: the OpenVPN client profile when
 * the certificate target has a `vpnProfile`, the PKCS#12 file otherwise (or both, with
 * `alsoPkcs12`). Every file's private key is encrypted under the same one-time passphrase.
 *
 * Decision (docs/portal.md): with a profile configured, the profile replaces the PKCS#12 by
 * default. The certificate of such a target is for that VPN; a second copy of the key in another
 * format is one more file to lose, so it is handed out only when the target asks for it.
 */

export type HandedOutKind = 'openvpn' | 'pkcs12';

export interface HandedOutFile {
  readonly kind: HandedOutKind;
  readonly name: string;
  readonly mediaType: string;
  readonly bytes: Buffer;
  /** One paragraph for the collection page, plain text. */
  readonly howToImport: string;
}

const HOW_TO_IMPORT: Record<HandedOutKind, string> = {
  openvpn: 'OpenVPN profile with your certificate, its private key and the CA inline. Import it into OpenVPN Connect (Import Profile, File) or NetworkManager, or run: openvpn --config <file>. The private key inside is encrypted: when OpenVPN asks for the private key password, enter the passphrase below. The file alone cannot connect.',
  pkcs12: 'PKCS#12 file with your certificate, its private key and the CA chain. Import it into the certificate store of your browser, operating system or application; it asks for the passphrase below.',
};

/** The private key as encrypted PKCS#8: PBES2 with PBKDF2-HMAC-SHA256 and AES-256-CBC (OpenSSL's defaults). */
export function encryptedPrivateKey(privateKeyPem: string, passphrase: string): string {
  return createPrivateKey(privateKeyPem).export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase }) as string;
}

function reencoded(pem: string, what: string): string[] {
  const blocks = splitPemCertificates(pem);
  if (blocks.length === 0) throw new WogateError('INTERNAL', `credential: ${what} holds no certificate`);
  return blocks.map((b) => new X509Certificate(b).toString().trimEnd());
}

/**
 * The client .ovpn text. Every directive argument was checked by checkVpnProfile (again here: the
 * settings come back from a sealed record), and certificates are re-encoded from their parsed form,
 * so nothing in the credential can end a line or an inline block early.
 */
export function renderOpenvpnProfile(credential: IssuedCredential, profile: OpenvpnProfile, passphrase: string): string {
  let p: OpenvpnProfile;
  try {
    p = checkVpnProfile(profile);
  } catch (e) {
    if (e instanceof VpnProfileProblem) throw new WogateError('INTERNAL', `credential ${credential.serial}: stored VPN profile settings are invalid: ${e.message}`);
    throw e;
  }
  const cert = new X509Certificate(credential.certificatePem);
  if (!cert.checkPrivateKey(createPrivateKey(credential.privateKeyPem))) throw new WogateError('INTERNAL', `credential ${credential.serial}: the private key does not belong to the certificate`);
  const ca = reencoded(p.serverCaPem ?? credential.chainPem, p.serverCaPem ? 'the VPN server CA' : 'the issuing chain');
  const serial = credential.serial.replace(/[^0-9a-f]/g, '');
  return [
    `# OpenVPN client profile from wogate: certificate serial ${serial}, valid until ${credential.notAfter.toISOString()}.`,
    '# The private key is encrypted: OpenVPN asks for its password (the one-time passphrase shown with this file).',
    'client',
    'dev tun',
    'nobind',
    'persist-key',
    'persist-tun',
    // The key's passphrase is dropped from memory once the key is loaded; persist-key keeps the key across restarts.
    'auth-nocache',
    ...p.remotes.map((r) => `remote ${r.host} ${r.port} ${r.proto}`),
    'remote-cert-tls server',
    ...(p.verifyX509Name ? [`verify-x509-name ${p.verifyX509Name} name`] : []),
    `tls-version-min ${p.tlsVersionMin}`,
    `data-ciphers ${p.dataCiphers.join(':')}`,
    'verb 3',
    '<ca>', ...ca, '</ca>',
    '<cert>', cert.toString().trimEnd(), '</cert>',
    '<key>', encryptedPrivateKey(credential.privateKeyPem, passphrase).trimEnd(), '</key>',
    ...(p.tlsCryptKey ? ['<tls-crypt>', p.tlsCryptKey.trimEnd(), '</tls-crypt>'] : []),
    '',
  ].join('\n');
}

function kinds(credential: IssuedCredential): HandedOutKind[] {
  const p = credential.vpnProfile;
  if (!p) return ['pkcs12'];
  return p.alsoPkcs12 ? ['openvpn', 'pkcs12'] : ['openvpn'];
}

/** The files for a collected credential, each under `passphrase`. */
export function handOutFiles(credential: IssuedCredential, passphrase: string): HandedOutFile[] {
  const base = credential.commonName.replace(/[^A-Za-z0-9._-]/g, '_');
  return kinds(credential).map((kind): HandedOutFile => kind === 'openvpn'
    ? { kind, name: `${base}.ovpn`, mediaType: 'application/x-openvpn-profile', bytes: Buffer.from(renderOpenvpnProfile(credential, credential.vpnProfile as OpenvpnProfile, passphrase)), howToImport: HOW_TO_IMPORT.openvpn }
    : { kind, name: `${base}.p12`, mediaType: 'application/x-pkcs12', bytes: toPkcs12(credential, passphrase), howToImport: HOW_TO_IMPORT.pkcs12 });
}

/**
 * Throws unless every file this credential will be handed out as can be made. Called when the
 * credential arrives, so a problem fails the issuance (and the target revokes the certificate)
 * rather than the one-time collection, after which the key would be gone.
 */
export function checkDeliverable(credential: IssuedCredential): void {
  const k = kinds(credential);
  if (k.includes('pkcs12')) checkPackable(credential);
  if (k.includes('openvpn')) renderOpenvpnProfile(credential, credential.vpnProfile as OpenvpnProfile, onePassphrase());
}
