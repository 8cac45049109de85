import { X509Certificate } from 'node:crypto';
import net from 'node:net';
import { WogateError } from '../domain/index.js';
import { show } from './text.js';
import { splitPemCertificates } from './x509.js';

/**
 * The optional `vpnProfile` of a certificate target: what the vendor portal needs to turn a
 * technician's certificate into a client profile for the VPN it opens (today OpenVPN).
 *
 * Every value ends up on a line of an OpenVPN config file, where a newline or a space starts a new
 * directive or argument. So each one is checked against a narrow shape here, once when the config
 * is read and again before a profile is rendered, and certificates and keys are re-encoded from
 * their parsed form, never copied as text.
 */

/** AEAD data-channel ciphers only: no CBC, no BF, no "none". */
export const SAFE_DATA_CIPHERS = ['AES-256-GCM', 'AES-128-GCM', 'CHACHA20-POLY1305'] as const;
export type DataCipher = (typeof SAFE_DATA_CIPHERS)[number];

export interface VpnRemote {
  readonly host: string;
  readonly port: number;
  readonly proto: 'udp' | 'tcp';
}

export interface OpenvpnProfile {
  readonly format: 'openvpn';
  /** Tried in order by the client. */
  readonly remotes: readonly VpnRemote[];
  /** The VPN server certificate's common name, checked by the client (`verify-x509-name <name> name`). */
  readonly verifyX509Name?: string;
  readonly dataCiphers: readonly DataCipher[];
  readonly tlsVersionMin: '1.2' | '1.3';
  /** CA certificates that signed the VPN server's certificate; without it, the issuing chain of the client certificate. */
  readonly serverCaPem?: string;
  /** OpenVPN static key V1 for `tls-crypt`, shared by the server and every client. */
  readonly tlsCryptKey?: string;
  /** Also hand out the PKCS#12 file (same passphrase); default only the profile. */
  readonly alsoPkcs12: boolean;
}

/** One kind today; a union when WireGuard or IPsec profiles come. */
export type VpnProfile = OpenvpnProfile;

const DNS_LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
const X509_NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;
const STATIC_KEY = /^-----BEGIN OpenVPN Static key V1-----\n([0-9a-f\n]+)\n-----END OpenVPN Static key V1-----$/;

/** JSON Schema of `certificate.vpnProfile` (draft-07, `#/definitions/secretRef` of the main schema). */
export const VPN_PROFILE_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['format', 'remotes'],
  description: 'a VPN client profile the vendor portal hands out with each certificate of this target (docs/targets/certificate.md)',
  properties: {
    format: { enum: ['openvpn'], description: 'openvpn: a client .ovpn file with the certificate, its encrypted key and the CA inline' },
    remotes: {
      type: 'array',
      minItems: 1,
      maxItems: 8,
      description: 'the VPN server addresses, tried in order',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['host'],
        properties: {
          host: { type: 'string', minLength: 1, maxLength: 253, pattern: '^[A-Za-z0-9.:-]+$', 'x-expect': 'a DNS name or an IP address (letters, digits, dots, hyphens, colons)' },
          port: { type: 'integer', minimum: 1, maximum: 65535, description: 'default 1194' },
          proto: { enum: ['udp', 'tcp'], description: 'default udp' },
        },
      },
    },
    verifyX509Name: { type: 'string', pattern: X509_NAME.source, 'x-expect': "the VPN server certificate's common name (letters, digits, . _ @ -, at most 64)" },
    serverCa: { $ref: '#/definitions/secretRef', description: "file: reference to the PEM CA certificate(s) that signed the VPN server's certificate; default the chain that issued the client certificate" },
    dataCiphers: { type: 'array', minItems: 1, uniqueItems: true, items: { enum: [...SAFE_DATA_CIPHERS] }, description: `data-channel ciphers offered, AEAD only; default ${SAFE_DATA_CIPHERS.join(', ')}` },
    tlsVersionMin: { enum: ['1.2', '1.3', 1.2, 1.3], description: 'lowest TLS version of the control channel; default 1.2' },
    tlsCrypt: { $ref: '#/definitions/secretRef', description: 'reference to the OpenVPN static key the server uses with tls-crypt (openvpn --genkey secret); written into every profile' },
    alsoPkcs12: { type: 'boolean', description: 'also hand out the PKCS#12 file (same one-time passphrase); default false: the profile only' },
  },
} as const;

/** A field of the profile and what is wrong with it; the caller adds where. */
export class VpnProfileProblem extends Error {
  constructor(readonly field: string, problem: string) {
    super(`${field} ${problem}`);
  }
}

function problem(field: string, text: string): never {
  throw new VpnProfileProblem(field, text);
}

function checkHost(h: unknown, field: string): string {
  if (typeof h !== 'string') return problem(field, `${show(h)} must be a DNS name or an IP address`);
  if (net.isIPv4(h) || (net.isIPv6(h) && /^[0-9A-Fa-f:.]+$/.test(h))) return h;
  if (/^[0-9.]+$/.test(h)) return problem(field, `${show(h)} is not a valid IPv4 address`);
  if (h.length > 253 || !h.split('.').every((l) => DNS_LABEL.test(l))) {
    return problem(field, `${show(h)} must be a DNS name (dot-separated labels of letters, digits and inner hyphens, at most 63 each) or an IP address`);
  }
  return h;
}

/** PEM certificates re-encoded from their parsed form: nothing but the certificates survives. */
function certificates(pem: unknown, field: string, mustBeCa: boolean): string {
  const blocks = typeof pem === 'string' ? splitPemCertificates(pem) : [];
  if (blocks.length === 0) return problem(field, 'holds no PEM certificate');
  return blocks.map((b, i) => {
    let c: X509Certificate;
    try {
      c = new X509Certificate(b);
    } catch {
      return problem(field, `certificate ${i + 1} does not parse`);
    }
    if (mustBeCa && !c.ca) problem(field, `certificate ${i + 1} (${c.subject.replace(/\n/g, ', ')}) is not a CA certificate`);
    return c.toString();
  }).join('');
}

/** The static key, comments and CRs dropped, re-wrapped as OpenVPN writes it. The key itself is never in a message. */
function staticKey(text: unknown, field: string): string {
  const body = typeof text === 'string' ? text.replace(/\r/g, '').split('\n').filter((l) => !l.startsWith('#')).map((l) => l.trim()).filter(Boolean).join('\n') : '';
  const hex = STATIC_KEY.exec(body)?.[1]?.replace(/\n/g, '') ?? '';
  if (hex.length !== 512) return problem(field, 'does not name an OpenVPN static key V1 (2048 bits, as written by `openvpn --genkey secret <file>`)');
  const lines = hex.match(/.{32}/g) as string[];
  return ['-----BEGIN OpenVPN Static key V1-----', ...lines, '-----END OpenVPN Static key V1-----', ''].join('\n');
}

/**
 * Checks every field of a profile (config or one read back from a sealed credential) and returns
 * it normalised: defaults filled in, PEM and key re-encoded. Throws VpnProfileProblem naming the field.
 */
export function checkVpnProfile(p: unknown): VpnProfile {
  if (!p || typeof p !== 'object' || Array.isArray(p)) return problem('vpnProfile', 'must be an object');
  const o = p as Record<string, unknown>;
  if (o.format !== 'openvpn') return problem('vpnProfile.format', `${show(o.format)} must be openvpn`);
  const remotes = o.remotes;
  if (!Array.isArray(remotes) || remotes.length < 1 || remotes.length > 8) return problem('vpnProfile.remotes', 'must list 1 to 8 servers');
  const checked = remotes.map((r: unknown, i): VpnRemote => {
    const at = `vpnProfile.remotes[${i}]`;
    if (!r || typeof r !== 'object') return problem(at, 'must be an object with host, port and proto');
    const { host, port = 1194, proto = 'udp' } = r as Record<string, unknown>;
    if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) problem(`${at}.port`, `${show(port)} must be an integer from 1 to 65535`);
    if (proto !== 'udp' && proto !== 'tcp') problem(`${at}.proto`, `${show(proto)} must be udp or tcp`);
    return { host: checkHost(host, `${at}.host`), port: port as number, proto: proto as 'udp' | 'tcp' };
  });
  const name = o.verifyX509Name;
  if (name !== undefined && (typeof name !== 'string' || !X509_NAME.test(name))) problem('vpnProfile.verifyX509Name', `${show(name)} must be the server certificate's common name: letters, digits and . _ @ -, at most 64`);
  const ciphers = o.dataCiphers ?? [...SAFE_DATA_CIPHERS];
  if (!Array.isArray(ciphers) || ciphers.length === 0) return problem('vpnProfile.dataCiphers', 'must list at least one cipher');
  for (const c of ciphers) if (!(SAFE_DATA_CIPHERS as readonly unknown[]).includes(c)) problem('vpnProfile.dataCiphers', `${show(c)} is not one of the AEAD ciphers ${SAFE_DATA_CIPHERS.join(', ')}`);
  if (new Set(ciphers).size !== ciphers.length) problem('vpnProfile.dataCiphers', 'must not repeat a cipher');
  const tls = o.tlsVersionMin === undefined ? '1.2' : String(o.tlsVersionMin);
  if (tls !== '1.2' && tls !== '1.3') problem('vpnProfile.tlsVersionMin', `${show(o.tlsVersionMin)} must be 1.2 or 1.3`);
  if (o.alsoPkcs12 !== undefined && typeof o.alsoPkcs12 !== 'boolean') problem('vpnProfile.alsoPkcs12', 'must be true or false');
  return {
    format: 'openvpn',
    remotes: checked,
    ...(name !== undefined ? { verifyX509Name: name as string } : {}),
    dataCiphers: ciphers as DataCipher[],
    tlsVersionMin: tls as '1.2' | '1.3',
    ...(o.serverCaPem !== undefined ? { serverCaPem: certificates(o.serverCaPem, 'vpnProfile.serverCa', true) } : {}),
    ...(o.tlsCryptKey !== undefined ? { tlsCryptKey: staticKey(o.tlsCryptKey, 'vpnProfile.tlsCrypt') } : {}),
    alsoPkcs12: o.alsoPkcs12 === true,
  };
}

/**
 * The `vpnProfile` block of a target's config (secret references already resolved: `serverCa` and
 * `tlsCrypt` hold the file contents) as a checked profile; CONFIG_INVALID naming the field otherwise.
 */
export function vpnProfileOptions(where: string, block: unknown): VpnProfile {
  try {
    if (!block || typeof block !== 'object' || Array.isArray(block)) return problem('vpnProfile', 'must be an object');
    const { serverCa, tlsCrypt, ...rest } = block as Record<string, unknown>;
    return checkVpnProfile({ ...rest, ...(serverCa !== undefined ? { serverCaPem: serverCa } : {}), ...(tlsCrypt !== undefined ? { tlsCryptKey: tlsCrypt } : {}) });
  } catch (e) {
    if (e instanceof VpnProfileProblem) throw new WogateError('CONFIG_INVALID', `${where}.${e.message}`);
    throw e;
  }
}
