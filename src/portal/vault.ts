import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { resourceKey, WogateError, type Grant } from '../domain/index.js';
import type { TakenCredential } from '../store/portal-store.js';
import type { Store } from '../store/store.js';
import type { IssuedCredential } from '../targets/certificate.js';
import { checkDeliverable } from './vpn-profile.js';

/**
 * Credentials issued for a grant wait here until the technician collects them, then are deleted.
 *
 * Decision (docs/portal.md): kept in the store, sealed with AES-256-GCM under `portal.credentialKey`
 * (a secret reference, never in the store), with the grant id as additional data so a sealed blob
 * can't be moved to another grant. In memory only would lose every uncollected key on a restart,
 * while the certificate target keeps the certificate it issued: the technician would be left with
 * a certificate nobody holds the key to.
 *
 * Credentials are kept per target entry (target, technician, resource), not per grant: grants of
 * several orders can share one certificate, and a re-issue for one of them supersedes (and the
 * target revokes) the certificate the others were waiting for.
 */
export class CredentialVault {
  private readonly key: Buffer;

  constructor(private readonly store: Store, key: Buffer) {
    if (key.length !== 32) throw new WogateError('CONFIG_INVALID', `portal.credentialKey: must be 32 bytes, got ${key.length}`);
    this.key = key;
  }

  /** 32 bytes from 64 hex digits or base64 / base64url text. */
  static parseKey(text: string, where: string): Buffer {
    const t = text.trim();
    const key = /^[0-9a-fA-F]{64}$/.test(t) ? Buffer.from(t, 'hex') : /^[A-Za-z0-9+/_-]{43}=?$/.test(t) ? Buffer.from(t, 'base64') : undefined;
    if (!key || key.length !== 32) throw new WogateError('CONFIG_INVALID', `${where}: the key must be 32 bytes written as 64 hex digits or base64 (e.g. openssl rand -base64 32)`);
    return key;
  }

  /**
   * The certificate target's onIssued: throwing makes it revoke the certificate and retry. The
   * grant is in the store already (journaled before the target was called).
   */
  async put(grantId: string, credential: IssuedCredential, now: Date): Promise<void> {
    const g = await this.store.getGrant(grantId);
    if (!g) throw new WogateError('NOT_FOUND', `credential issued for grant ${grantId}, which the store does not hold`);
    await this.putEntry(credentialEntry(g), grantId, credential, now);
  }

  /**
   * Refuses (so the target revokes the certificate and retries) a credential that could not be
   * handed out in the form its target asks for: a non-RSA key for PKCS#12, a key that does not
   * match its certificate, broken VPN profile settings. The VPN profile settings are sealed with it.
   */
  async putEntry(entry: string, grantId: string, credential: IssuedCredential, now: Date): Promise<void> {
    checkDeliverable(credential);
    await this.store.portal.putCredential(entry, grantId, this.seal(entry, credential), credential.notAfter, now);
  }

  /** Whether the grant's credential waits (true), was collected (when), or never came. */
  status(g: Grant): Promise<true | Date | undefined> {
    return this.store.portal.credentialStatus(credentialEntry(g));
  }

  take(g: Grant, by: string, now: Date): ReturnType<CredentialVault['takeEntry']> {
    return this.takeEntry(credentialEntry(g), by, now);
  }

  async takeEntry(entry: string, by: string, now: Date): Promise<{ result: 'taken'; credential: IssuedCredential } | Exclude<TakenCredential, { result: 'taken' }>> {
    const t = await this.store.portal.takeCredential(entry, by, now);
    if (t.result !== 'taken') return t;
    return { result: 'taken', credential: this.open(entry, t.sealed) };
  }

  // The entry is the additional authenticated data: a sealed blob moved to another row does not open.
  private seal(entry: string, c: IssuedCredential): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    cipher.setAAD(Buffer.from(`wogate-portal-credential:${entry}`));
    const plain = Buffer.from(JSON.stringify({ ...c, notBefore: c.notBefore.toISOString(), notAfter: c.notAfter.toISOString() }));
    const ct = Buffer.concat([cipher.update(plain), cipher.final()]);
    plain.fill(0);
    return ['v1', iv.toString('base64url'), ct.toString('base64url'), cipher.getAuthTag().toString('base64url')].join('.');
  }

  private open(entry: string, sealed: string): IssuedCredential {
    const [v, iv, ct, tag] = sealed.split('.');
    if (v !== 'v1' || !iv || !ct || !tag) throw new WogateError('INTERNAL', `sealed credential for ${entry} has an unknown format`);
    const decipher = createDecipheriv('aes-256-gcm', this.key, Buffer.from(iv, 'base64url'));
    decipher.setAAD(Buffer.from(`wogate-portal-credential:${entry}`));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    let plain: Buffer;
    try {
      plain = Buffer.concat([decipher.update(Buffer.from(ct, 'base64url')), decipher.final()]);
    } catch {
      throw new WogateError('INTERNAL', `sealed credential for ${entry} does not open with portal.credentialKey (key changed, or the record was altered)`);
    }
    const o = JSON.parse(plain.toString('utf8')) as Record<string, string>;
    plain.fill(0);
    return { ...(o as unknown as IssuedCredential), notBefore: new Date(String(o.notBefore)), notAfter: new Date(String(o.notAfter)) };
  }
}

/** The target entry a grant's credential belongs to: one live certificate per target, technician and resource. */
export function credentialEntry(g: Pick<Grant, 'targetId' | 'technicianId' | 'resource'>): string {
  return `${g.targetId}|${g.technicianId}|${resourceKey(g.resource)}`;
}
