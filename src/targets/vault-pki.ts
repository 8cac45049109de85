import type { CertificateIssuer, IssuedCertificate, IssuedCredential, IssueRequest } from './certificate.js';
import { RestClient, seg, type RestRequest, type RestResponse } from './rest.js';
import { TargetError, type CallContext } from './target.js';
import { canonicalSerial, colonSerial, inspectCertificate, pemToDer, splitPemCertificates, type CertificateFacts, type CrlReason } from './x509.js';

/**
 * HashiCorp Vault's PKI secrets engine as the issuer, over its HTTP API (through RestClient like
 * every HTTP adapter: one deadline per call, size limit, no proxy, classified errors, tokens
 * redacted). node-vault is not used: it drops response headers (no Retry-After on a 429), reads
 * VAULT_TOKEN/VAULT_ADDR/VAULT_SKIP_VERIFY from the environment behind the config's back, and has
 * no whole-call deadline or size limit.
 *
 *   issue   POST /v1/<mount>/issue/<role> {common_name, not_after, format: pem, private_key_format: pkcs8}
 *           not_after (RFC 3339, whole seconds) and never ttl: Vault refuses both together, and a
 *           ttl would be counted from Vault's clock and silently capped at the role's max_ttl.
 *   revoke  POST /v1/<mount>/revoke {serial_number}: "not found" is success; Vault's CRL has no reasons.
 *   list    LIST /v1/<mount>/certs and /certs/revoked, then GET /v1/<mount>/cert/<serial> once per new
 *           serial (certificates never change; revocation comes from the revoked list).
 *   auth    a token, or AppRole (POST /v1/auth/<mount>/login); an AppRole token refused with 403
 *           (expired or revoked: Vault answers 403, not 401) leads to one fresh login.
 *
 * wogate's certificates are the ones carrying the OU the role stamps (role parameter `ou`): every
 * other certificate on the mount is ignored, never listed and never revoked.
 */
export interface VaultPkiOptions {
  /** Vault's address, e.g. https://vault.example:8200. */
  readonly address: string;
  /** A token with the policy in docs/targets/certificate.md; or appRole. */
  readonly token?: string;
  readonly appRole?: { readonly roleId: string; readonly secretId: string; readonly mount?: string };
  /** Vault Enterprise namespace (X-Vault-Namespace). */
  readonly namespace?: string;
  /** PKI mount path; default "pki". */
  readonly mount?: string;
  /** The PKI role wogate issues with. */
  readonly role: string;
  /** The OU the role stamps on every certificate, marking it as wogate's; default "wogate". */
  readonly ou?: string;
  /** PEM CA bundle trusted for Vault's TLS instead of the system store. */
  readonly caPem?: string;
  /** Whole-call deadline; default 10000. */
  readonly timeoutMs?: number;
}

interface Known extends CertificateFacts {
  readonly owned: boolean;
}

const PATH = /^[A-Za-z0-9_.-]+(?:\/[A-Za-z0-9_.-]+)*$/;
const NAME = /^[A-Za-z0-9_.-]+$/;
/** Certificates read once and remembered; past this many the memory is dropped and rebuilt. */
const MAX_KNOWN = 50_000;
const PARALLEL_READS = 8;

type Reason = 'config' | 'vault_refused_request' | 'vault_not_after';

export class VaultPki implements CertificateIssuer {
  readonly setsNotBefore = false;
  private readonly client: RestClient;
  private readonly mount: string;
  private readonly ou: string;
  private token: string | undefined;
  private tokenExpiresAt = Number.POSITIVE_INFINITY;
  private login: Promise<string> | undefined;
  /** serial -> what the certificate says; revoked serials are remembered as such (revocation is final). */
  private readonly known = new Map<string, Known>();
  private readonly revoked = new Set<string>();

  constructor(
    private readonly id: string,
    private readonly o: VaultPkiOptions,
  ) {
    this.mount = o.mount ?? 'pki';
    this.ou = o.ou ?? 'wogate';
    const check = (ok: boolean, what: string): void => {
      if (!ok) throw this.fail('config', what);
    };
    check((o.token !== undefined) !== (o.appRole !== undefined), 'vault needs exactly one of token and appRole');
    check(o.token === undefined || o.token.trim() !== '', 'vault.token is empty');
    check(o.appRole === undefined || (o.appRole.roleId.trim() !== '' && o.appRole.secretId.trim() !== ''), 'vault.appRole needs roleId and secretId');
    check(PATH.test(this.mount), `vault.mount ${JSON.stringify(this.mount)} is not a mount path`);
    check(PATH.test(o.appRole?.mount ?? 'approle'), 'vault.appRole.mount is not a mount path');
    check(NAME.test(o.role), `vault.role ${JSON.stringify(o.role)} is not a role name`);
    check(o.namespace === undefined || PATH.test(o.namespace), 'vault.namespace is not a namespace path');
    check(this.ou.length > 0 && this.ou.length <= 64, 'vault.ou must be 1-64 characters');
    this.client = new RestClient({
      targetId: id,
      baseUrl: o.address,
      where: 'vault.address',
      ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}),
      ...(o.caPem !== undefined ? { caPem: o.caPem } : {}),
      secrets: [o.token, o.appRole?.roleId, o.appRole?.secretId].filter((s): s is string => s !== undefined),
    });
  }

  async init(ctx: CallContext): Promise<void> {
    await this.tokenFor(ctx);
    ctx.log.debug('vault pki ready', { target: this.id, mount: this.mount, role: this.o.role });
  }

  async active(ctx: CallContext): Promise<IssuedCertificate[]> {
    // One after the other: a certificate revoked between the two calls is still seen as revoked.
    const all = await this.listKeys('certs', ctx);
    const revoked = await this.listKeys('certs/revoked', ctx);
    if (revoked) for (const s of revoked) this.revoked.add(s);
    if (this.known.size > MAX_KNOWN) this.known.clear();
    const now = ctx.now.getTime();
    const open = (all ?? []).filter((s) => !this.revoked.has(s));
    // Certificates never change, so each is read once; revocation comes from the revoked list where
    // Vault has one (1.12+), else from reading wogate's live certificates again.
    const toRead = open.filter((s) => {
      const k = this.known.get(s);
      return k === undefined || (!revoked && k.owned && k.notAfter.getTime() > now);
    });
    for (let i = 0; i < toRead.length; i += PARALLEL_READS) {
      // Settled, not Promise.all: no read is left running after this call has failed.
      const results = await Promise.allSettled(toRead.slice(i, i + PARALLEL_READS).map((s) => this.read(s, ctx)));
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
    }
    const out: IssuedCertificate[] = [];
    for (const s of open) {
      const k = this.known.get(s);
      if (!k?.owned || this.revoked.has(s) || k.notAfter.getTime() <= now || k.commonName === undefined) continue;
      out.push({ serial: s, commonName: k.commonName, notBefore: k.notBefore, notAfter: k.notAfter });
    }
    return out;
  }

  async issue(req: IssueRequest, ctx: CallContext): Promise<IssuedCredential> {
    const notAfter = req.notAfter.toISOString().replace(/\.\d{3}Z$/, 'Z');
    const res = await this.call({
      op: 'provision', method: 'POST', path: `/v1/${this.mountPath()}/issue/${seg(this.o.role)}`,
      json: { common_name: req.commonName, not_after: notAfter, format: 'pem', private_key_format: 'pkcs8' },
    }, ctx);
    const data = (this.secretJson(res) as { data?: Record<string, unknown> } | null)?.data;
    const certificatePem = data?.['certificate'];
    const privateKeyPem = data?.['private_key'];
    if (typeof certificatePem !== 'string' || typeof privateKeyPem !== 'string') throw this.shape(res, 'no data.certificate and data.private_key');
    let facts: CertificateFacts;
    try {
      facts = inspectCertificate(certificatePem);
    } catch (e) {
      throw this.shape(res, `data.certificate is not a certificate (${(e as Error).message})`);
    }
    const owned = facts.organizationalUnits.includes(this.ou);
    this.known.set(facts.serial, { ...facts, owned });
    // Anything but the certificate asked for is revoked at once and refused: it must not stay valid.
    const refuse = async (reason: Reason, why: string): Promise<never> => {
      await this.revoke(facts.serial, 'cessationOfOperation', ctx).catch((e: unknown) =>
        ctx.log.error('cannot revoke a certificate Vault issued wrongly; revoke it by hand', { target: this.id, serial: facts.serial, error: (e as Error).message }));
      throw this.fail(reason, `${res.what}: ${why}; the certificate (serial ${colonSerial(facts.serial)}) was revoked`);
    };
    if (!owned) return refuse('config', `role ${this.o.role} does not put OU=${this.ou} on its certificates, so wogate could not recognise them: set ou=${this.ou} on the role`);
    if (facts.commonName !== req.commonName) return refuse('vault_refused_request', `Vault issued CN ${JSON.stringify(facts.commonName)} for ${JSON.stringify(req.commonName)}`);
    if (facts.notAfter.getTime() !== req.notAfter.getTime()) {
      const later = facts.notAfter.getTime() > req.notAfter.getTime();
      return refuse('vault_not_after', later
        ? `Vault issued a certificate ending ${facts.notAfter.toISOString()}, after the requested not_after ${notAfter} (a Vault without not_after support?)`
        : `Vault cut the certificate short to ${facts.notAfter.toISOString()} (the issuing CA expires before ${notAfter}): renew the CA`);
    }
    const chain = Array.isArray(data?.['ca_chain']) ? (data['ca_chain'] as unknown[]).filter((c): c is string => typeof c === 'string') : [];
    const issuing = typeof data?.['issuing_ca'] === 'string' ? [data['issuing_ca']] : [];
    return {
      serial: facts.serial,
      commonName: req.commonName,
      notBefore: facts.notBefore,
      notAfter: facts.notAfter,
      certificatePem,
      privateKeyPem,
      chainPem: (chain.length > 0 ? chain : issuing).flatMap(splitPemCertificates).join(''),
    };
  }

  async confirm(): Promise<void> {}

  async revoke(serial: string, _reason: CrlReason, ctx: CallContext): Promise<void> {
    const s = canonicalSerial(serial);
    if (s === undefined) return;
    const res = await this.call({ op: 'revoke', method: 'POST', path: `/v1/${this.mountPath()}/revoke`, json: { serial_number: colonSerial(s) }, accept: [400, 404] }, ctx);
    // Vault: an unknown serial is 400 "certificate with serial … not found"; an expired one is 200 with a warning.
    if ((res.status === 400 || res.status === 404) && !/not found/i.test(res.text)) {
      throw new TargetError(this.id, `${res.what} answered ${res.status}: ${this.client.excerpt(res.text)}`, false, { op: 'revoke', status: res.status, reason: 'vault_refused_request' });
    }
    this.revoked.add(s);
  }

  async caCertificatePem(ctx: CallContext): Promise<string> {
    const res = await this.client.request({ op: 'ca', method: 'GET', path: `/v1/${this.mountPath()}/ca/pem`, headers: this.namespaceHeader() }, ctx);
    const pem = splitPemCertificates(res.text).join('');
    if (pem === '') throw this.client.invalid(res, 'no PEM certificate');
    return pem;
  }

  async crl(ctx: CallContext): Promise<{ der: Buffer; pem: string }> {
    const res = await this.client.request({ op: 'crl', method: 'GET', path: `/v1/${this.mountPath()}/crl/pem`, headers: this.namespaceHeader() }, ctx);
    const der = pemToDer(res.text, 'X509 CRL');
    if (!der) throw this.client.invalid(res, 'no PEM CRL');
    return { der, pem: res.text.trim() + '\n' };
  }

  async close(): Promise<void> {
    await this.client.close();
  }

  private fail(reason: Reason, message: string): TargetError {
    return new TargetError(this.id, message, false, { reason });
  }

  /** An answer of the wrong shape, described without its body: login and issue answers hold a token or a private key. */
  private shape(res: RestResponse, what: string): TargetError {
    return new TargetError(this.id, `${res.what} answered ${res.status}: ${what}`, true, { code: 'TARGET_RESPONSE_INVALID', op: res.op, status: res.status });
  }

  /** JSON of an answer that holds a secret (a token, a private key): on failure, no excerpt of it. */
  private secretJson(res: RestResponse): unknown {
    try {
      return JSON.parse(res.text);
    } catch {
      throw this.shape(res, 'expected JSON, got something else');
    }
  }

  private mountPath(): string {
    return this.mount.split('/').map(seg).join('/');
  }

  private namespaceHeader(): Record<string, string> {
    return this.o.namespace ? { 'X-Vault-Namespace': this.o.namespace } : {};
  }

  /** LIST through `GET ?list=true`; undefined when this Vault has no such path (certs/revoked before 1.12). */
  private async listKeys(what: 'certs' | 'certs/revoked', ctx: CallContext): Promise<string[] | undefined> {
    const res = await this.call({ op: 'list', method: 'GET', path: `/v1/${this.mountPath()}/${what}`, query: { list: 'true' }, accept: [404] }, ctx);
    if (res.status === 404) {
      // An empty LIST is 404 with no errors; a path Vault does not have is 404 with "unsupported path".
      let errors: unknown[] = [];
      try {
        const e = (JSON.parse(res.text) as { errors?: unknown } | null)?.errors;
        if (Array.isArray(e)) errors = e;
      } catch {
        errors = [res.text];
      }
      if (errors.length === 0) return [];
      if (what === 'certs/revoked') return undefined;
      throw new TargetError(this.id, `${res.what} answered 404: ${this.client.excerpt(res.text)} (is ${this.mount} a PKI mount?)`, false, { op: 'list', status: 404, reason: 'config' });
    }
    const keys = (this.client.json(res) as { data?: { keys?: unknown } } | null)?.data?.keys;
    if (!Array.isArray(keys)) throw this.client.invalid(res, 'no data.keys list');
    return keys.map(canonicalSerial).filter((s): s is string => s !== undefined);
  }

  private async read(serial: string, ctx: CallContext): Promise<void> {
    const path = `/v1/${this.mountPath()}/cert/${colonSerial(serial).replace(/:/g, '-')}`;
    const res = await this.call({ op: 'list', method: 'GET', path, accept: [404] }, ctx);
    if (res.status === 404) {
      this.revoked.add(serial); // tidied away between the LIST and the read: gone for good
      return;
    }
    const data = (this.client.json(res) as { data?: { certificate?: unknown; revocation_time?: unknown } } | null)?.data;
    if (typeof data?.certificate !== 'string') throw this.client.invalid(res, 'no data.certificate');
    let facts: CertificateFacts;
    try {
      facts = inspectCertificate(data.certificate);
    } catch (e) {
      throw this.client.invalid(res, `data.certificate is not a certificate (${(e as Error).message})`);
    }
    this.known.set(serial, { ...facts, owned: !facts.isCa && facts.organizationalUnits.includes(this.ou) });
    if (Number(data.revocation_time ?? 0) > 0) this.revoked.add(serial);
  }

  private headers(token: string): Record<string, string> {
    return { 'X-Vault-Token': token, ...this.namespaceHeader() };
  }

  /** Sends with the token; with AppRole, a 403 means the token lapsed: one fresh login and one retry. */
  private async call(req: RestRequest, ctx: CallContext): Promise<RestResponse> {
    const token = await this.tokenFor(ctx);
    if (this.o.appRole === undefined) return this.client.request({ ...req, headers: this.headers(token) }, ctx);
    const res = await this.client.request({ ...req, headers: this.headers(token), accept: [...(req.accept ?? []), 403] }, ctx);
    if (res.status !== 403) return res;
    if (this.token === token) this.token = undefined;
    ctx.log.info('vault refused the AppRole token; logging in again', { target: this.id, op: req.op });
    return this.client.request({ ...req, headers: this.headers(await this.tokenFor(ctx)) }, ctx);
  }

  private async tokenFor(ctx: CallContext): Promise<string> {
    if (this.o.token !== undefined) return this.o.token;
    // Renew a little before the lease ends rather than eat a 403 on a provision.
    if (this.token !== undefined && Date.now() < this.tokenExpiresAt - 30_000) return this.token;
    this.login ??= this.appRoleLogin(ctx).finally(() => {
      this.login = undefined;
    });
    return this.login;
  }

  private async appRoleLogin(ctx: CallContext): Promise<string> {
    const a = this.o.appRole as NonNullable<VaultPkiOptions['appRole']>;
    const mount = (a.mount ?? 'approle').split('/').map(seg).join('/');
    const res = await this.client.request({ op: 'login', method: 'POST', path: `/v1/auth/${mount}/login`, json: { role_id: a.roleId, secret_id: a.secretId }, headers: this.namespaceHeader() }, ctx);
    const auth = (this.secretJson(res) as { auth?: { client_token?: unknown; lease_duration?: unknown } } | null)?.auth;
    const token = auth?.client_token;
    if (typeof token !== 'string' || token === '') throw this.shape(res, 'no auth.client_token');
    this.client.addSecret(token);
    const lease = Number(auth?.lease_duration ?? 0);
    this.token = token;
    this.tokenExpiresAt = Number.isFinite(lease) && lease > 0 ? Date.now() + lease * 1000 : Number.POSITIVE_INFINITY;
    ctx.log.debug('vault approle login', { target: this.id, leaseSeconds: lease });
    return token;
  }
}
