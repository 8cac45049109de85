/**
 * What the vendor portal remembers: pre-login records (OIDC state, nonce, PKCE verifier), sessions,
 * and credentials waiting to be collected. Keys that are secrets (session ids, state) are stored
 * only as SHA-256 hashes, and credentials only sealed (AES-256-GCM, by src/portal/vault.ts).
 */
export interface PortalSessionRecord {
  readonly idHash: string;
  readonly technicianId: string;
  readonly vendorId?: string;
  /** The provider's `sub`, for the audit trail. */
  readonly subject: string;
  readonly csrfHash: string;
  readonly createdAt: Date;
  readonly lastSeenAt: Date;
  /** Absolute end of the session, whatever the activity. */
  readonly expiresAt: Date;
}

export type TakenCredential =
  | { readonly result: 'taken'; readonly sealed: string }
  | { readonly result: 'collected'; readonly collectedAt: Date }
  | { readonly result: 'none' };

export interface PortalStore {
  putLogin(stateHash: string, data: string, expiresAt: Date): Promise<void>;
  /** The record once: it is deleted as it is read; undefined when unknown, used or expired at `now`. */
  takeLogin(stateHash: string, now: Date): Promise<string | undefined>;
  createSession(s: PortalSessionRecord): Promise<void>;
  getSession(idHash: string): Promise<PortalSessionRecord | undefined>;
  touchSession(idHash: string, at: Date): Promise<void>;
  deleteSession(idHash: string): Promise<void>;
  /** Drops expired sessions and pre-login records; returns how many. */
  prune(now: Date, idleMs: number): Promise<number>;
  /**
   * Replaces what waits for the target entry (a re-issued certificate supersedes the old one).
   * `entryKey` names the entry (target, technician, resource); `grantId` the grant it was issued for.
   */
  putCredential(entryKey: string, grantId: string, sealed: string, notAfter: Date, storedAt: Date): Promise<void>;
  /** Atomically hands out and deletes the sealed credential, leaving a tombstone that says when. */
  takeCredential(entryKey: string, by: string, at: Date): Promise<TakenCredential>;
  /** Whether a credential waits (true), was collected (a date) or never came (undefined). */
  credentialStatus(entryKey: string): Promise<true | Date | undefined>;
}
