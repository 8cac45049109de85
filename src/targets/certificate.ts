import type { TargetRef } from '../domain/index.js';
import { silentLogger } from '../log.js';
import { checkVpnProfile, VpnProfileProblem, type VpnProfile } from './certificate-vpn.js';
import { LocalCa, type LocalCaOptions } from './local-ca.js';
import { TargetError, type CallContext, type Target, type TargetEntry, type TargetGrant } from './target.js';
import { VaultPki, type VaultPkiOptions } from './vault-pki.js';
import { canonicalSerial, type CrlReason } from './x509.js';
import { show } from './text.js';

export { CERTIFICATE_TARGET_SCHEMA, certificateTargetOptions } from './certificate-config.js';

/**
 * Certificate target: a short-lived X.509 client certificate per technician and resource, whose
 * notAfter is the grant's validUntil (to the second, rounded down), so the certificate stops
 * working at the end of the window even if wogate is down; revocation before then goes on a CRL.
 *
 * One resource (a common name) is one live certificate. Provisioning finds the unrevoked
 * certificate for that name and keeps it when its notAfter is the wanted one; otherwise it issues a
 * new one and revokes the old ones as superseded (new first, so the technician is never without).
 * The private key exists once, at issuance: it is handed to `onIssued` and never stored.
 *
 * Two issuers: `local` (an embedded CA in a state directory, node-forge) and `vault` (HashiCorp
 * Vault's PKI engine). Both report only certificates wogate issued: the local index holds nothing
 * else, and on Vault only certificates carrying the configured OU marker count.
 */

/** What a technician needs to use the certificate; handed over once, never stored by wogate. */
export interface IssuedCredential {
  readonly serial: string;
  readonly commonName: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly certificatePem: string;
  /** Unencrypted PKCS#8 PEM: whoever receives it must protect it (the vendor portal encrypts it at rest). */
  readonly privateKeyPem: string;
  /** The issuing CA chain, leaf excluded. */
  readonly chainPem: string;
  /**
   * The target's VPN profile settings at issuance: the portal renders the client profile from
   * them at collection (docs/portal.md). Absent: the credential is handed out as PKCS#12.
   */
  readonly vpnProfile?: VpnProfile;
}

/** Receives each new credential; throwing revokes the certificate and fails the provision (retryable). */
export type OnIssued = (grantId: string, credential: IssuedCredential) => Promise<void> | void;

export interface IssuedCertificate {
  readonly serial: string;
  readonly commonName: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** Recorded but its key not yet handed over: after a crash such a certificate is useless and replaced. */
  readonly pending?: boolean;
}

export interface IssueRequest {
  readonly grantId: string;
  readonly commonName: string;
  readonly vendorId: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

/** One CA behind the target. Every method is idempotent where the target needs it to be. */
export interface CertificateIssuer {
  /** False when the CA sets notBefore itself (Vault backdates from its own clock). */
  readonly setsNotBefore: boolean;
  init(ctx: CallContext): Promise<void>;
  /** wogate's unrevoked certificates that have not expired at ctx.now. */
  active(ctx: CallContext): Promise<IssuedCertificate[]>;
  issue(req: IssueRequest, ctx: CallContext): Promise<IssuedCredential>;
  /** The credential was handed over. */
  confirm(serial: string, ctx: CallContext): Promise<void>;
  /** Revoking an unknown, expired or already revoked serial succeeds. */
  revoke(serial: string, reason: CrlReason, ctx: CallContext): Promise<void>;
  caCertificatePem(ctx: CallContext): Promise<string>;
  crl(ctx: CallContext): Promise<{ der: Buffer; pem: string }>;
  close(): Promise<void>;
}

export type CertificateIssuerOptions = ({ readonly kind: 'local' } & LocalCaOptions) | ({ readonly kind: 'vault' } & VaultPkiOptions);

export interface CertificateTargetOptions {
  readonly id: string;
  readonly issuer: CertificateIssuerOptions;
  /**
   * notBefore is validFrom minus this, so a client whose clock runs a little behind is not
   * refused at the start of its window; default 120000 (2 minutes). Local issuer only: Vault
   * backdates by its role's not_before_duration.
   */
  readonly clockSkewMs?: number;
  readonly onIssued?: OnIssued;
  /** Handed over with every credential, so the portal can offer a VPN client profile (certificate-vpn.ts). */
  readonly vpnProfile?: VpnProfile;
}

/** X.520 ub-common-name; Vault and most TLS stacks refuse longer. */
const MAX_NAME = 64;
// eslint-disable-next-line no-control-regex -- control characters are what is refused
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

type Reason = 'invalid_input' | 'handover_failed';

function fail(id: string, reason: Reason, message: string, retryable = false): TargetError {
  return new TargetError(id, message, retryable, { reason });
}

/** A name that can go into a subject as one UTF8String attribute and back out unchanged. */
export function isSubjectText(v: unknown): v is string {
  return typeof v === 'string' && v.length >= 1 && v.length <= MAX_NAME && v.trim() === v && !CONTROL.test(v);
}

export class CertificateTarget implements Target {
  readonly kind = 'certificate';
  readonly nativeExpiry = true;
  readonly resourceKinds = ['certificate'] as const;
  readonly id: string;
  private readonly issuer: CertificateIssuer;
  private readonly skewMs: number;
  private readonly onIssued: OnIssued | undefined;
  private readonly vpnProfile: VpnProfile | undefined;
  private readonly locks = new Map<string, Promise<unknown>>();
  private ctx: CallContext = { now: new Date(), log: silentLogger };

  constructor(o: CertificateTargetOptions) {
    this.id = o.id;
    this.skewMs = o.clockSkewMs ?? 120_000;
    if (!Number.isInteger(this.skewMs) || this.skewMs < 0 || this.skewMs > 3_600_000) {
      throw new TargetError(o.id, `clockSkewMs ${show(o.clockSkewMs)} must be between 0 and 3600000`, false, { reason: 'config' });
    }
    this.onIssued = o.onIssued;
    try {
      this.vpnProfile = o.vpnProfile === undefined ? undefined : checkVpnProfile(o.vpnProfile);
    } catch (e) {
      if (!(e instanceof VpnProfileProblem)) throw e;
      throw new TargetError(o.id, e.message, false, { reason: 'config' });
    }
    this.issuer = o.issuer.kind === 'local' ? new LocalCa(o.id, o.issuer) : new VaultPki(o.id, o.issuer);
  }

  async init(ctx: CallContext): Promise<void> {
    this.ctx = ctx;
    await this.issuer.init(ctx);
  }

  async provision(grant: TargetGrant, ctx: CallContext): Promise<TargetRef> {
    const commonName = this.commonName(grant);
    const vendorId = grant.vendorId;
    if (!isSubjectText(vendorId)) throw fail(this.id, 'invalid_input', `vendorId ${show(vendorId)} cannot be a subject organisation (1-64 characters, no control characters)`);
    const { notBefore, notAfter } = this.window(grant);
    return this.locked(commonName, async () => {
      const mine = (await this.issuer.active(ctx)).filter((c) => c.commonName === commonName);
      if (notAfter.getTime() <= ctx.now.getTime()) {
        // The window is over (an update moved the end into the past): the state to reach is "no certificate".
        await this.revokeAll(mine, 'cessationOfOperation', ctx);
        ctx.log.info('certificate window already over; no certificate issued', { target: this.id, commonName });
        return { serial: '' };
      }
      const keep = mine.find((c) => !c.pending && c.notAfter.getTime() === notAfter.getTime() && (!this.issuer.setsNotBefore || c.notBefore.getTime() <= notBefore.getTime()));
      if (keep) {
        await this.revokeAll(mine.filter((c) => c !== keep), 'superseded', ctx);
        return { serial: keep.serial };
      }
      const credential = await this.issuer.issue({ grantId: grant.id, commonName, vendorId, notBefore, notAfter }, ctx);
      await this.handOver(grant.id, credential, ctx);
      await this.issuer.confirm(credential.serial, ctx);
      // Only now that the new one is out: the old ones go (a failure here is retried, and the retry keeps the new one).
      await this.revokeAll(mine, 'superseded', ctx);
      ctx.log.info('client certificate issued', {
        target: this.id, grant: grant.id, commonName, serial: credential.serial,
        notBefore: credential.notBefore.toISOString(), notAfter: credential.notAfter.toISOString(), superseded: mine.map((c) => c.serial),
      });
      return { serial: credential.serial };
    });
  }

  update(grant: TargetGrant, _ref: TargetRef | undefined, ctx: CallContext): Promise<TargetRef> {
    // A certificate's window cannot change: a new one is issued and the old one revoked as superseded.
    return this.provision(grant, ctx);
  }

  async revoke(grant: TargetGrant, _ref: TargetRef | undefined, ctx: CallContext): Promise<void> {
    let commonName: string;
    try {
      commonName = this.commonName(grant);
    } catch (e) {
      ctx.log.warn('certificate revoke of a resource this target cannot hold; nothing to revoke', { target: this.id, error: (e as Error).message });
      return;
    }
    // By name, not by ref: the ref may be lost (a crash) or stale (superseded), and a ref is never
    // trusted to name a certificate wogate did not issue for this resource.
    await this.locked(commonName, async () => {
      const mine = (await this.issuer.active(ctx)).filter((c) => c.commonName === commonName);
      await this.revokeAll(mine, 'cessationOfOperation', ctx);
      if (mine.length > 0) ctx.log.info('client certificate revoked', { target: this.id, grant: grant.id, commonName, serials: mine.map((c) => c.serial) });
    });
  }

  async list(ctx: CallContext): Promise<TargetEntry[]> {
    return (await this.issuer.active(ctx))
      .filter((c) => !c.pending)
      .map((c) => ({ resource: { kind: 'certificate', commonName: c.commonName }, ref: { serial: c.serial }, expiresAt: c.notAfter }));
  }

  /** Drift removal: revokes a certificate wogate issued that no live grant accounts for. */
  async revokeEntry(entry: TargetEntry, ctx: CallContext): Promise<void> {
    const serial = canonicalSerial(entry.ref['serial']);
    if (serial === undefined) return;
    const found = (await this.issuer.active(ctx)).find((c) => c.serial === serial);
    if (!found) return; // gone already, or not one of wogate's: nothing to do either way
    await this.locked(found.commonName, () => this.issuer.revoke(serial, 'privilegeWithdrawn', ctx));
    ctx.log.info('client certificate revoked by drift removal', { target: this.id, commonName: found.commonName, serial });
  }

  /** The CA certificate relying parties trust, PEM, for publishing (`GET /pki/<target>/ca.pem`). */
  caCertificatePem(ctx: CallContext = this.context()): Promise<string> {
    return this.issuer.caCertificatePem(ctx);
  }

  /** The current CRL, for publishing at the crlUrl written into every certificate. */
  crl(ctx: CallContext = this.context()): Promise<{ der: Buffer; pem: string }> {
    return this.issuer.crl(ctx);
  }

  async close(): Promise<void> {
    await this.issuer.close();
  }

  private context(): CallContext {
    return { now: new Date(), log: this.ctx.log };
  }

  private commonName(grant: TargetGrant): string {
    const r = grant.resource;
    if (r.kind !== 'certificate') throw fail(this.id, 'invalid_input', `resource kind ${show(r.kind)} is not certificate: this target issues client certificates only`);
    if (!isSubjectText(r.commonName)) throw fail(this.id, 'invalid_input', `commonName ${show(r.commonName)} must be 1-64 characters without control characters or surrounding spaces`);
    return r.commonName;
  }

  private window(grant: TargetGrant): { notBefore: Date; notAfter: Date } {
    const from = grant.validFrom.getTime();
    const until = grant.validUntil.getTime();
    if (!Number.isFinite(from) || !Number.isFinite(until)) throw fail(this.id, 'invalid_input', `validFrom/validUntil ${show(grant.validFrom)}/${show(grant.validUntil)} are not dates`);
    // Rounded down to the second: a certificate never outlives validUntil, not even by a fraction.
    const notAfter = new Date(Math.floor(until / 1000) * 1000);
    const notBefore = new Date(Math.floor(from / 1000) * 1000 - this.skewMs);
    if (notBefore.getTime() >= notAfter.getTime()) throw fail(this.id, 'invalid_input', `window ${grant.validFrom.toISOString()} to ${grant.validUntil.toISOString()} is empty`);
    return { notBefore, notAfter };
  }

  private async handOver(grantId: string, credential: IssuedCredential, ctx: CallContext): Promise<void> {
    if (!this.onIssued) {
      ctx.log.info('no credential hand-over configured: the private key of the new certificate was discarded', { target: this.id, grant: grantId, serial: credential.serial });
      return;
    }
    try {
      await this.onIssued(grantId, this.vpnProfile ? { ...credential, vpnProfile: this.vpnProfile } : credential);
    } catch (e) {
      // A certificate whose key nobody received is useless and must not stay valid: revoke it, and
      // let the retry issue a fresh one.
      await this.issuer.revoke(credential.serial, 'superseded', ctx).catch((r: unknown) => {
        ctx.log.error('certificate whose hand-over failed could not be revoked; it is replaced on the next provision', { target: this.id, serial: credential.serial, error: (r as Error).message });
      });
      throw fail(this.id, 'handover_failed', `the credential for serial ${credential.serial} could not be handed over: ${(e as Error).message}`, true);
    }
  }

  private async revokeAll(certs: readonly IssuedCertificate[], reason: CrlReason, ctx: CallContext): Promise<void> {
    for (const c of certs) await this.issuer.revoke(c.serial, reason, ctx);
  }

  /** One operation per common name at a time, so two provisions never both issue. */
  private async locked<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(key) ?? Promise.resolve();
    const run = prev.then(() => fn());
    const tail = run.catch(() => undefined);
    this.locks.set(key, tail);
    try {
      return await run;
    } finally {
      if (this.locks.get(key) === tail) this.locks.delete(key);
    }
  }
}
