import { generateKeyPair, randomBytes, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import express, { type NextFunction, type Request, type Response } from 'express';
import forge from 'node-forge';
import { canonicalSerial, colonSerial, derSerialHex, keySigner, randomSerial, signCrl } from '../../src/targets/x509.js';
import { Faults, listen } from './faults.js';

/**
 * HashiCorp Vault's PKI secrets engine and AppRole login over real HTTP, issuing real
 * certificates (node-forge) from its own CA, so openssl can check what comes out.
 *
 * [V] from Vault's source (builtin/logical/pki: fields.go, issuing/issue_common.go, crl_util.go,
 * path_fetch.go) and API docs:
 *   - POST /v1/<mount>/issue/<role> {common_name, ttl | not_after, format, private_key_format};
 *     ttl together with not_after is refused ("Either ttl or not_after should be provided..."); not_after
 *     is RFC 3339 and NOT capped by the role's max_ttl; ttl is capped to max_ttl with a warning; a
 *     notAfter past the CA's is refused ("cannot satisfy request, as TTL would result in notAfter
 *     ..."); notBefore = now - not_before_duration (30 s); the subject takes O and OU from the
 *     role; the CN goes into the DNS SANs when it is a hostname. Answer `data`: certificate,
 *     issuing_ca, ca_chain[], private_key, private_key_type, serial_number (colon hex), expiration.
 *   - POST /v1/<mount>/revoke {serial_number}: unknown → 400 "certificate with serial <s> not
 *     found"; expired → 200 with a warning, not added to the CRL; already revoked → 200 with the
 *     first revocation_time. Vault's CRL entries carry no reason code.
 *   - LIST /v1/<mount>/certs (and /certs/revoked, 1.12+) as GET ?list=true → data.keys, colon
 *     serials; an empty list is 404 with "errors": [].
 *   - GET /v1/<mount>/cert/<serial> → data.certificate, data.revocation_time (0 = not revoked),
 *     revocation_time_rfc3339; ca/pem and crl/pem need no token.
 *   - Errors are {"errors": [...]}; a missing or bad token is 403 "permission denied".
 * [I] assumptions: the AppRole login answer beyond auth.client_token/lease_duration and its error
 * text ("invalid role or secret ID"); 404 {"errors": []} for an unknown certificate; a wrong
 * namespace answered like a bad token; "unsupported path" for certs/revoked before 1.12.
 */

export interface VaultSimRole {
  readonly ou?: readonly string[];
  readonly organization?: readonly string[];
  /** Seconds; role ttl default and max_ttl (the mount's default is 768h). */
  readonly ttl?: number;
  readonly maxTtl?: number;
  readonly clientFlag?: boolean;
  readonly serverFlag?: boolean;
}

export interface VaultSimCert {
  readonly serial: string;
  readonly commonName: string;
  readonly role: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly pem: string;
  revokedAt?: number;
}

export interface VaultSimCall {
  readonly method: string;
  readonly path: string;
  readonly query: Record<string, unknown>;
  readonly token?: string;
  readonly namespace?: string;
  readonly body: unknown;
}

export interface VaultSimOptions {
  /** Static tokens Vault accepts. */
  readonly tokens?: readonly string[];
  readonly appRole?: { readonly roleId: string; readonly secretId: string; readonly leaseSeconds?: number };
  readonly namespace?: string;
  readonly mount?: string;
  readonly roles?: Readonly<Record<string, VaultSimRole>>;
  /** Lifetime of the sim's CA; default 1 year. */
  readonly caValidityMs?: number;
}

const generateKeyPairAsync = promisify(generateKeyPair);
const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)$/;
const HOSTNAME = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)*[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.?$/;

export class VaultPkiSim {
  readonly faults = new Faults((res, status, message) => void res.status(status).json({ errors: [message] }));
  readonly certs = new Map<string, VaultSimCert>();
  readonly calls: VaultSimCall[] = [];
  readonly tokens = new Set<string>();
  readonly roles: Map<string, VaultSimRole>;
  readonly mount: string;
  /** Behave like a Vault from before not_after: ignore it and issue with the role's TTL. */
  ignoreNotAfter = false;
  /** Behave like a Vault from before 1.12: no LIST certs/revoked. */
  noRevokedList = false;
  logins = 0;
  url = '';
  private crlNumber = 0;
  private server: { close(): Promise<void> } | undefined;
  private ca!: { key: forge.pki.rsa.PrivateKey; keyObject: KeyObject; cert: forge.pki.Certificate; pem: string; keyId: string };

  constructor(private readonly o: VaultSimOptions) {
    this.mount = o.mount ?? 'pki';
    this.roles = new Map(Object.entries(o.roles ?? { wogate: { ou: ['wogate'], clientFlag: true, serverFlag: false } }));
    for (const t of o.tokens ?? []) this.tokens.add(t);
  }

  static async start(o: VaultSimOptions): Promise<VaultPkiSim> {
    const sim = new VaultPkiSim(o);
    await sim.makeCa();
    const s = await listen(sim.app());
    sim.server = s;
    sim.url = s.url;
    return sim;
  }

  async close(): Promise<void> {
    await this.server?.close();
  }

  /** The AppRole token lapsed (or was revoked): every token Vault handed out stops working. */
  expireLoginTokens(): void {
    for (const t of [...this.tokens]) if (t.startsWith('hvs.sim-')) this.tokens.delete(t);
  }

  get caPem(): string {
    return this.ca.pem;
  }

  /** A certificate issued outside wogate (an operator with the same role, or another app). */
  issueByHand(commonName: string, ou: readonly string[], lifetimeMs = 3_600_000): Promise<VaultSimCert> {
    return this.sign('by-hand', commonName, ou, [], new Date(Date.now() + lifetimeMs), true, false).then((r) => r.cert);
  }

  /** tidy: Vault forgets a certificate. */
  forget(serial: string): void {
    this.certs.delete(canonicalSerial(serial) ?? serial);
  }

  crlPem(): string {
    const entries = [...this.certs.values()].filter((c) => c.revokedAt !== undefined).map((c) => ({ serial: c.serial, revokedAt: new Date((c.revokedAt as number) * 1000), reason: 'cessationOfOperation' as const }));
    const now = Date.now();
    return signCrl({ caCertPem: this.ca.pem, caKeyId: this.ca.keyId, caKey: keySigner(this.ca.keyObject), number: ++this.crlNumber, thisUpdate: new Date(now), nextUpdate: new Date(now + 72 * 3_600_000), entries }).pem;
  }

  private async makeCa(): Promise<void> {
    const { privateKey } = await generateKeyPairAsync('rsa', { modulusLength: 2048 });
    const key = forge.pki.privateKeyFromPem(privateKey.export({ type: 'pkcs1', format: 'pem' }) as string) as forge.pki.rsa.PrivateKey;
    const cert = forge.pki.createCertificate();
    cert.publicKey = forge.pki.rsa.setPublicKey(key.n, key.e);
    cert.serialNumber = derSerialHex(randomSerial());
    cert.validity.notBefore = new Date(Date.now() - 60_000);
    cert.validity.notAfter = new Date(Date.now() + (this.o.caValidityMs ?? 365 * 86_400_000));
    const subject = [{ shortName: 'CN', value: 'Vault PKI simulator root' }];
    cert.setSubject(subject);
    cert.setIssuer(subject);
    cert.setExtensions([{ name: 'basicConstraints', cA: true, critical: true }, { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true }, { name: 'subjectKeyIdentifier' }]);
    cert.sign(key, forge.md.sha256.create());
    const keyId = (cert.getExtension('subjectKeyIdentifier') as { subjectKeyIdentifier: string }).subjectKeyIdentifier;
    this.ca = { key, keyObject: privateKey, cert, pem: forge.pki.certificateToPem(cert), keyId };
  }

  private async sign(role: string, commonName: string, ou: readonly string[], organization: readonly string[], notAfter: Date, client: boolean, server: boolean, pkcs8 = false) {
    const { privateKey, publicKey } = await generateKeyPairAsync('rsa', { modulusLength: 2048 });
    const cert = forge.pki.createCertificate();
    cert.publicKey = forge.pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }) as string);
    // certutil.GenerateSerialNumber: 159 random bits.
    const serial = canonicalSerial(randomBytes(20).toString('hex').replace(/^[89a-f]/, '7')) as string;
    cert.serialNumber = derSerialHex(serial);
    const notBefore = new Date(Math.floor(Date.now() / 1000) * 1000 - 30_000);
    cert.validity.notBefore = notBefore;
    cert.validity.notAfter = new Date(Math.floor(notAfter.getTime() / 1000) * 1000); // a certificate holds whole seconds
    cert.setSubject([
      ...organization.map((v) => ({ shortName: 'O', value: v })),
      ...ou.map((v) => ({ shortName: 'OU', value: v })),
      { shortName: 'CN', value: commonName, valueTagClass: forge.asn1.Type.UTF8 as unknown as forge.asn1.Class },
    ]);
    cert.setIssuer(this.ca.cert.subject.attributes);
    cert.setExtensions([
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, keyAgreement: true, critical: true },
      { name: 'extKeyUsage', clientAuth: client, serverAuth: server },
      { name: 'subjectKeyIdentifier' },
      { name: 'authorityKeyIdentifier', keyIdentifier: forge.util.hexToBytes(this.ca.keyId) },
      ...(HOSTNAME.test(commonName) ? [{ name: 'subjectAltName', altNames: [{ type: 2, value: commonName }] }] : []),
    ]);
    cert.sign(this.ca.key, forge.md.sha256.create());
    const pem = forge.pki.certificateToPem(cert);
    const rec: VaultSimCert = { serial, commonName, role, notBefore, notAfter: cert.validity.notAfter, pem };
    this.certs.set(serial, rec);
    const keyPem = privateKey.export(pkcs8 ? { type: 'pkcs8', format: 'pem' } : { type: 'pkcs1', format: 'pem' }) as string;
    return { cert: rec, keyPem };
  }

  private app(): express.Express {
    const app = express();
    const base = `/v1/${this.mount}`;
    app.use(express.json());
    app.use((req, _res, next) => {
      const token = req.header('x-vault-token');
      const namespace = req.header('x-vault-namespace');
      this.calls.push({ method: req.method, path: req.path, query: { ...req.query }, body: req.body, ...(token !== undefined ? { token } : {}), ...(namespace !== undefined ? { namespace } : {}) });
      next();
    });
    app.use(this.faults.middleware());
    const denied = (res: Response): void => void res.status(403).json({ errors: ['permission denied'] });
    const nsOk = (req: Request): boolean => this.o.namespace === undefined || req.header('x-vault-namespace') === this.o.namespace;

    app.post('/v1/auth/approle/login', (req, res) => {
      const a = this.o.appRole;
      const body = (req.body ?? {}) as { role_id?: unknown; secret_id?: unknown };
      if (!a || !nsOk(req) || body.role_id !== a.roleId || body.secret_id !== a.secretId) return void res.status(400).json({ errors: ['invalid role or secret ID'] });
      this.logins++;
      const token = `hvs.sim-${randomBytes(12).toString('hex')}`;
      this.tokens.add(token);
      res.json({ request_id: randomBytes(8).toString('hex'), lease_id: '', renewable: false, lease_duration: 0, data: null, wrap_info: null, warnings: null,
        auth: { client_token: token, accessor: randomBytes(8).toString('hex'), policies: ['default', 'wogate-pki'], token_policies: ['default', 'wogate-pki'], metadata: { role_name: 'wogate' }, lease_duration: a.leaseSeconds ?? 3600, renewable: true, entity_id: '', token_type: 'service', orphan: true } });
    });

    // Unauthenticated, as in Vault.
    app.get(`${base}/ca/pem`, (_req, res) => void res.type('application/pem-certificate-chain').send(this.ca.pem));
    app.get(`${base}/crl/pem`, (_req, res) => void res.type('application/pem-certificate-chain').send(this.crlPem()));

    app.use((req: Request, res: Response, next: NextFunction) => {
      const token = req.header('x-vault-token');
      if (token === undefined || !this.tokens.has(token) || !nsOk(req)) return denied(res);
      next();
    });

    app.post(`${base}/issue/:role`, async (req, res) => {
      const role = this.roles.get(String(req.params.role));
      const body = (req.body ?? {}) as { common_name?: unknown; ttl?: unknown; not_after?: unknown; private_key_format?: unknown };
      if (!role) return void res.status(400).json({ errors: [`unknown role: ${String(req.params.role)}`] });
      if (typeof body.common_name !== 'string' || body.common_name === '') {
        return void res.status(400).json({ errors: ['the common_name field is required, or must be provided in a CSR with "use_csr_common_name" set to true, unless "require_cn" is set to false'] });
      }
      const ttl = typeof body.ttl === 'number' ? body.ttl : typeof body.ttl === 'string' && /^\d+$/.test(body.ttl) ? Number(body.ttl) : 0;
      const notAfterText = this.ignoreNotAfter ? undefined : body.not_after;
      if (ttl > 0 && notAfterText !== undefined && notAfterText !== '') {
        return void res.status(400).json({ errors: ['Either ttl or not_after should be provided. Both should not be provided in the same request.'] });
      }
      const warnings: string[] = [];
      let notAfter: Date;
      if (typeof notAfterText === 'string' && notAfterText !== '') {
        if (!RFC3339.test(notAfterText)) return void res.status(400).json({ errors: [`parsing time "${notAfterText}" as "2006-01-02T15:04:05Z07:00": cannot parse`] });
        notAfter = new Date(notAfterText);
      } else {
        const max = role.maxTtl ?? 768 * 3600;
        let seconds = ttl || role.ttl || 768 * 3600;
        if (seconds > max) {
          warnings.push(`TTL "${seconds}s" is longer than permitted maxTTL "${max}s", so maxTTL is being used`);
          seconds = max;
        }
        notAfter = new Date(Date.now() + seconds * 1000);
      }
      if (notAfter.getTime() > this.ca.cert.validity.notAfter.getTime()) {
        return void res.status(400).json({ errors: [`cannot satisfy request, as TTL would result in notAfter of ${notAfter.toISOString()} that is beyond the expiration of the CA certificate at ${this.ca.cert.validity.notAfter.toISOString()}`] });
      }
      const { cert, keyPem } = await this.sign(String(req.params.role), body.common_name, role.ou ?? [], role.organization ?? [], notAfter, role.clientFlag ?? true, role.serverFlag ?? true, body.private_key_format === 'pkcs8');
      res.json({
        request_id: randomBytes(8).toString('hex'), lease_id: '', renewable: false, lease_duration: 0, wrap_info: null, auth: null,
        warnings: warnings.length ? warnings : null,
        data: {
          ca_chain: [this.ca.pem.trim()], certificate: cert.pem.trim(), expiration: Math.floor(cert.notAfter.getTime() / 1000), issuing_ca: this.ca.pem.trim(),
          private_key: keyPem.trim(), private_key_type: 'rsa', serial_number: colonSerial(cert.serial),
        },
      });
    });

    app.post(`${base}/revoke`, (req, res) => {
      const raw = (req.body as { serial_number?: unknown } | undefined)?.serial_number;
      const serial = canonicalSerial(raw);
      const c = serial === undefined ? undefined : this.certs.get(serial);
      if (!c) return void res.status(400).json({ errors: [`certificate with serial ${String(raw)} not found`] });
      if (c.revokedAt === undefined && c.notAfter.getTime() < Date.now() + 2_000) {
        return void res.json({ data: null, warnings: [`certificate with serial ${String(raw)} already expired; refusing to add to CRL`] });
      }
      c.revokedAt ??= Math.floor(Date.now() / 1000);
      res.json({ data: { revocation_time: c.revokedAt, revocation_time_rfc3339: new Date(c.revokedAt * 1000).toISOString(), state: 'revoked' } });
    });

    const list = (keys: string[], res: Response): void => {
      if (keys.length === 0) return void res.status(404).json({ errors: [] });
      res.json({ data: { keys } });
    };
    app.get(`${base}/certs/revoked`, (req, res) => {
      if (this.noRevokedList) return void res.status(404).json({ errors: ['1 error occurred:\n\t* unsupported path\n\n'] });
      if (req.query['list'] !== 'true') return void res.status(405).json({ errors: [] });
      list([...this.certs.values()].filter((c) => c.revokedAt !== undefined).map((c) => colonSerial(c.serial)), res);
    });
    app.get(`${base}/certs`, (req, res) => {
      if (req.query['list'] !== 'true') return void res.status(405).json({ errors: [] });
      // The CA's own certificate is stored under certs/ too.
      list([colonSerial(canonicalSerial(this.ca.cert.serialNumber) as string), ...[...this.certs.keys()].map(colonSerial)], res);
    });
    app.get(`${base}/cert/:serial`, (req, res) => {
      const serial = canonicalSerial(String(req.params.serial));
      if (serial !== undefined && serial === canonicalSerial(this.ca.cert.serialNumber)) {
        return void res.json({ data: { certificate: this.ca.pem, revocation_time: 0, revocation_time_rfc3339: '', issuer_id: 'sim-root' } });
      }
      const c = serial === undefined ? undefined : this.certs.get(serial);
      if (!c) return void res.status(404).json({ errors: [] });
      res.json({ data: { certificate: c.pem, revocation_time: c.revokedAt ?? 0, revocation_time_rfc3339: c.revokedAt ? new Date(c.revokedAt * 1000).toISOString() : '', issuer_id: 'sim-root', ca_chain: [this.ca.pem] } });
    });

    app.use((_req, res) => void res.status(404).json({ errors: ['1 error occurred:\n\t* unsupported path\n\n'] }));
    return app;
  }
}
