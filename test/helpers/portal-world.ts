import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { startDaemon, type TestDaemon } from './daemon.js';
import { freePort, startPortalProvider, type PortalOidcProvider, type PortalTestUser } from './oidc-portal.js';
import { tmpDir } from './world.js';

type ConfigEdit = NonNullable<NonNullable<Parameters<typeof startDaemon>[0]>['edit']>;

export interface CertificatePortalOptions {
  /** Who can sign in at the provider, with or without a second factor. */
  readonly users: Readonly<Record<string, PortalTestUser>>;
  /** vendors.yaml: vendor id → its technicians (id → address). The policy rule matches every vendor named here. */
  readonly vendors: Readonly<Record<string, Readonly<Record<string, string>>>>;
  /** Claims beyond sub, vendor, acr and amr that the provider's ID tokens may carry (a technician claim). */
  readonly claims?: readonly string[];
  /** The one policy rule's id. */
  readonly ruleId?: string;
  /** The env vars the config names: `<envPrefix>_CLIENT_SECRET` and `<envPrefix>_CREDENTIAL_KEY`, set here and deleted again by close(). */
  readonly envPrefix: string;
  /** Fields for the local CA beyond dir, passphrase, organization and CA name (e.g. keyBits, a crlUrl on the daemon's own address). */
  readonly local?: (url: string) => Record<string, unknown>;
  /** The certificate target's vpnProfile, in config shape. */
  readonly vpnProfile?: Record<string, unknown>;
  /** Any further change to the config, after the portal world's own. */
  readonly edit?: ConfigEdit;
  /** Where the registers, policy and CA go (made if missing, removed by close()); a new temp dir by default. */
  readonly files?: string;
}

export interface CertificatePortal {
  readonly t: TestDaemon;
  readonly idp: PortalOidcProvider;
  /** The daemon's base URL, where the portal is. */
  readonly url: string;
  readonly files: string;
  /** Stops the daemon and the provider, removes `files` and deletes the env vars. */
  close(): Promise<void>;
}

const ASSETS = 'assets:\n  - {id: PLC-CL2-01, class: PLC, criticality: critical, site: north-wtp, zone: process-control, endpoints: [{address: 10.20.0.10, ports: [502], protocol: tcp}]}\n';

function vendorsYaml(vendors: CertificatePortalOptions['vendors']): string {
  const lines = ['vendors:'];
  for (const [id, technicians] of Object.entries(vendors)) {
    lines.push(`  - id: ${id}`, '    technicians:', ...Object.entries(technicians).map(([t, address]) => `      - {id: ${t}, address: ${address}}`));
  }
  return `${lines.join('\n')}\n`;
}

function policyYaml(ruleId: string, vendors: readonly string[]): string {
  return `apiVersion: wogate/v1
kind: AccessPolicy
metadata: {name: plant}
rules:
  - id: ${ruleId}
    match: {vendors: [${vendors.join(', ')}], assetClasses: [PLC]}
    require: {statuses: [approved, in_progress], minApprovals: 1, maxDuration: 12h}
    grant:
      - {type: certificate, target: vendor-certs}
`;
}

/**
 * The vendor portal's world: a real OpenID provider with `users`, and a real daemon on a free
 * loopback port whose registers hold PLC-CL2-01 and `vendors`, whose one policy rule grants a
 * certificate from the local-CA target `vendor-certs` (next to the example http target), and whose
 * `portal` block signs in at that provider. If any of it fails to start, what did start is undone.
 */
export async function startCertificatePortal(o: CertificatePortalOptions): Promise<CertificatePortal> {
  const files = o.files ?? tmpDir();
  const env = { [`${o.envPrefix}_CLIENT_SECRET`]: '', [`${o.envPrefix}_CREDENTIAL_KEY`]: randomBytes(32).toString('base64') };
  let idp: PortalOidcProvider | undefined;
  let envSet = false;
  const undo = async () => {
    try {
      await idp?.close();
    } finally {
      fs.rmSync(files, { recursive: true, force: true });
      if (envSet) for (const k of Object.keys(env)) delete process.env[k];
    }
  };
  try {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const provider = await startPortalProvider({ redirectUri: `${url}/portal/callback`, users: o.users, ...(o.claims ? { claims: o.claims } : {}) });
    idp = provider;
    const f = (...n: string[]) => path.join(files, ...n);
    fs.mkdirSync(f('policies'), { recursive: true });
    fs.writeFileSync(f('assets.yaml'), ASSETS);
    fs.writeFileSync(f('vendors.yaml'), vendorsYaml(o.vendors));
    fs.writeFileSync(f('policies', 'plant.yaml'), policyYaml(o.ruleId ?? 'plc-certificates', Object.keys(o.vendors)));
    fs.writeFileSync(f('ca-passphrase'), randomBytes(16).toString('hex'), { mode: 0o600 });
    env[`${o.envPrefix}_CLIENT_SECRET`] = provider.clientSecret;
    Object.assign(process.env, env);
    envSet = true;
    const t = await startDaemon({
      edit: (c) => {
        c.server.port = port;
        c.policies.dir = f('policies');
        c.register.assets = f('assets.yaml');
        c.register.vendors = f('vendors.yaml');
        const local = { dir: f('ca'), passphrase: `file:${f('ca-passphrase')}`, organization: 'North WTP', caCommonName: 'North WTP vendor CA', crlUrl: 'http://127.0.0.1/pki/vendor-certs/crl', ...o.local?.(url) };
        c.targets = [c.targets[0], { id: 'vendor-certs', kind: 'certificate', certificate: { issuer: 'local', local, ...(o.vpnProfile ? { vpnProfile: o.vpnProfile } : {}) } }];
        c.portal = {
          oidc: { issuer: provider.issuer, clientId: provider.clientId, clientSecret: `env:${o.envPrefix}_CLIENT_SECRET`, redirectUri: `${url}/portal/callback` },
          credentialKey: `env:${o.envPrefix}_CREDENTIAL_KEY`,
        };
        o.edit?.(c);
      },
    });
    return {
      t,
      idp: provider,
      url,
      files,
      async close() {
        try {
          await t.stop();
        } finally {
          await undo();
        }
      },
    };
  } catch (e) {
    await undo();
    throw e;
  }
}
