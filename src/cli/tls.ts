import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import fs from 'node:fs';
import tls from 'node:tls';
import { resolveSecret, type ServerTlsConfig } from '../config/config.js';
import { WogateError } from '../domain/index.js';

/**
 * TLS 1.3 suites, then TLS 1.2 with forward secrecy and AEAD only (Mozilla's "intermediate"
 * without the finite-field DHE suites).
 */
export const MODERN_CIPHERS = [
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

export interface ServerTls {
  /** For https.createServer and server.setSecureContext. */
  readonly options: tls.SecureContextOptions & { readonly minVersion: tls.SecureVersion; readonly honorCipherOrder: true };
  /** Public facts about the certificate, for logs and the audit trail. */
  readonly certificate: { readonly subject: string; readonly fingerprint256: string; readonly validTo: string };
  readonly warnings: readonly string[];
}

const EXPIRY_WARNING_MS = 14 * 86_400_000;

/**
 * Reads and checks the server certificate and key: each must parse and the key must belong to the
 * certificate, or the daemon refuses to start (or a reload is refused). Errors name the file,
 * never the key's content.
 */
export function loadServerTls(cfg: ServerTlsConfig, configFile: string, env: NodeJS.ProcessEnv, now: Date = new Date()): ServerTls {
  const where = (key: string) => `${configFile}: /server/tls/${key}`;
  const certFile = cfg.cert.slice('file:'.length);
  const certPem = readPublic(certFile, where('cert'));
  const chain = certificates(certPem, certFile, where('cert'));
  const leaf = chain[0] as X509Certificate;
  const caPem = cfg.ca ? readPublic(cfg.ca.slice('file:'.length), where('ca')) : undefined;
  if (caPem !== undefined) certificates(caPem, (cfg.ca as string).slice('file:'.length), where('ca'));

  const keyName = cfg.key.startsWith('file:') ? cfg.key.slice('file:'.length) : cfg.key;
  const keyPem = resolveSecret(cfg.key, where('key'), env);
  let key: KeyObject;
  try {
    key = createPrivateKey(keyPem);
  } catch (e) {
    throw new WogateError('CONFIG_INVALID', `${where('key')}: ${keyName} does not hold an unencrypted PEM private key (${reason(e)})`, { file: configFile });
  }
  if (key.asymmetricKeyType !== leaf.publicKey.asymmetricKeyType || !leaf.checkPrivateKey(key)) {
    throw new WogateError('CONFIG_INVALID', `${where('key')}: the private key in ${keyName} does not belong to the certificate in ${certFile} (${leaf.subject.replace(/\n/g, ', ')})`, { file: configFile });
  }

  const options = {
    cert: certPem,
    key: keyPem,
    ...(caPem !== undefined ? { ca: caPem } : {}),
    minVersion: cfg.minVersion,
    maxVersion: 'TLSv1.3' as const,
    ciphers: MODERN_CIPHERS,
    honorCipherOrder: true as const,
  };
  try {
    tls.createSecureContext(options);
  } catch (e) {
    throw new WogateError('CONFIG_INVALID', `${where('cert')}: ${certFile} and ${keyName} can't be used for TLS (${reason(e)})`, { file: configFile });
  }

  const warnings: string[] = [];
  const from = new Date(leaf.validFrom);
  const to = new Date(leaf.validTo);
  if (to.getTime() <= now.getTime()) warnings.push(`TLS certificate ${certFile} expired at ${to.toISOString()}: clients will refuse it`);
  else if (to.getTime() - now.getTime() < EXPIRY_WARNING_MS) warnings.push(`TLS certificate ${certFile} expires at ${to.toISOString()}`);
  if (from.getTime() > now.getTime()) warnings.push(`TLS certificate ${certFile} is not valid before ${from.toISOString()}`);
  if (cfg.key.startsWith('file:')) {
    try {
      if ((fs.statSync(keyName).mode & 0o077) !== 0) warnings.push(`TLS key file ${keyName} can be read by other users: chmod 600 it`);
    } catch {
      // It was just read; a stat race is not worth refusing over.
    }
  }
  return { options, certificate: { subject: leaf.subject.replace(/\n/g, ', '), fingerprint256: leaf.fingerprint256, validTo: to.toISOString() }, warnings };
}

function readPublic(file: string, where: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new WogateError('CONFIG_INVALID', `${where}: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
  }
}

/** Every PEM certificate in the file, in order; at least one, all parseable. */
function certificates(pem: string, file: string, where: string): X509Certificate[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw new WogateError('CONFIG_INVALID', `${where}: ${file} holds no PEM certificate`);
  return blocks.map((b, i) => {
    try {
      return new X509Certificate(b);
    } catch (e) {
      throw new WogateError('CONFIG_INVALID', `${where}: certificate ${i + 1} in ${file} does not parse (${reason(e)})`);
    }
  });
}

/** OpenSSL's reason, without anything from the input. */
function reason(e: unknown): string {
  const err = e as { code?: string; message?: string };
  return err.code ?? (err.message ?? String(e)).split('\n')[0] ?? 'error';
}
