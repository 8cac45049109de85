import { resolveSecret, type Config, type StaffConfig, type VaultValues } from '../config/config.js';
import { PortalOidc } from '../portal/login.js';
import { cookieNames, SessionManager } from '../portal/sessions.js';
import type { StaffSessionRecord } from '../store/portal-store.js';
import type { Store } from '../store/store.js';

export { createStaffRouter, type StaffDeps } from './router.js';

export interface Staff {
  readonly config: StaffConfig;
  readonly oidc: PortalOidc;
  readonly sessions: SessionManager<StaffSessionRecord>;
}

/**
 * The staff pages' parts, from config; the client secret is resolved here, once. Cookies are
 * Secure with the __Host- prefix unless the redirect URI is plain http on loopback (docs/staff.md).
 */
export function openStaff(config: Config, store: Store, env: NodeJS.ProcessEnv, vaultValues?: VaultValues): Staff | undefined {
  const s = config.staff;
  if (!s) return undefined;
  const secret = resolveSecret(s.oidc.clientSecret, `${config.file}: /staff/oidc/clientSecret`, env, vaultValues);
  const secure = new URL(s.oidc.redirectUri).protocol === 'https:';
  return {
    config: s,
    oidc: new PortalOidc(s.oidc, secret),
    sessions: new SessionManager(store.portal.staff, cookieNames(secure, 'staff'), s.sessionLifetimeMs, s.idleTimeoutMs),
  };
}
