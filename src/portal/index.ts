import { resolveSecret, type Config, type PortalConfig, type VaultValues } from '../config/config.js';
import type { Store } from '../store/store.js';
import type { IssuedCredential } from '../targets/certificate.js';
import { PortalOidc } from './login.js';
import { cookieNames, SessionManager } from './sessions.js';
import { CredentialVault } from './vault.js';

export { createPortalRouter, type PortalDeps } from './router.js';

export interface Portal {
  readonly config: PortalConfig;
  readonly oidc: PortalOidc;
  readonly sessions: SessionManager;
  readonly vault: CredentialVault;
  /** Certificate targets whose credentials are handed out as a VPN profile (they have vpnProfile). */
  readonly vpnTargets: ReadonlySet<string>;
  /** The certificate target's onIssued. */
  onIssued(grantId: string, credential: IssuedCredential): Promise<void>;
}

/**
 * The portal's parts, from config. Secrets (client secret, credential key) are resolved here, once.
 * Cookies are Secure with the __Host- prefix unless the redirect URI is plain http, which the
 * config allows on loopback only (tests and a local TLS-terminating proxy): docs/portal.md.
 */
export function openPortal(config: Config, store: Store, clock: () => Date, env: NodeJS.ProcessEnv, vaultValues?: VaultValues): Portal | undefined {
  const p = config.portal;
  if (!p) return undefined;
  const secret = resolveSecret(p.oidc.clientSecret, `${config.file}: /portal/oidc/clientSecret`, env, vaultValues);
  const key = CredentialVault.parseKey(resolveSecret(p.credentialKey, `${config.file}: /portal/credentialKey`, env, vaultValues), `${config.file}: /portal/credentialKey`);
  const vault = new CredentialVault(store, key);
  const secure = new URL(p.oidc.redirectUri).protocol === 'https:';
  return {
    config: p,
    oidc: new PortalOidc(p.oidc, secret),
    sessions: new SessionManager(store.portal, cookieNames(secure), p.sessionLifetimeMs, p.idleTimeoutMs),
    vault,
    vpnTargets: new Set(config.targets.filter((t) => t.kind === 'certificate' && 'options' in t && t.options.vpnProfile !== undefined).map((t) => t.id)),
    onIssued: (grantId, credential) => vault.put(grantId, credential, clock()),
  };
}
