/**
 * What the vendor portal remembers: pre-login records (OIDC state, nonce, PKCE verifier), sessions,
 * and credentials waiting to be collected. Keys that are secrets (session ids, state) are stored
 * only as SHA-256 hashes, and credentials only sealed (AES-256-GCM, by src/portal/vault.ts).
 */
/** What every server-side session holds, whoever it is for. */
export interface SessionRecord {
  readonly idHash: string;
  readonly csrfHash: string;
  readonly createdAt: Date;
  readonly lastSeenAt: Date;
  /** Absolute end of the session, whatever the activity. */
  readonly expiresAt: Date;
}

export interface PortalSessionRecord extends SessionRecord {
  /** Both in canonical form (src/domain/ids.ts): technician ids are unique only inside a vendor. */
  readonly technicianId: string;
  readonly vendorId: string;
  /** The provider's `sub`, for the audit trail. */
  readonly subject: string;
}

/** A member of the security staff on the staff pages. */
export interface StaffSessionRecord extends SessionRecord {
  /** The provider's `sub`: the audit trail's actor is `oidc:<sub>`, as on the admin API. */
  readonly subject: string;
  /** What the pages show: preferred_username, email, name or sub. */
  readonly name: string;
  /** The wogate role mapped from the provider's claims at sign-in (createdAt is when it was read). */
  readonly role: string;
  /** Who signed in (auth.oidc.personClaim, canonical); absent when the claim was missing or unusable. */
  readonly person?: string;
}

/** One table of sessions, keyed by the hash of the session id. */
export interface SessionTable<R extends SessionRecord> {
  createSession(s: R): Promise<void>;
  getSession(idHash: string): Promise<R | undefined>;
  touchSession(idHash: string, at: Date): Promise<void>;
  deleteSession(idHash: string): Promise<void>;
}

export type TakenCredential =
  | { readonly result: 'taken'; readonly sealed: string }
  | { readonly result: 'collected'; readonly collectedAt: Date }
  | { readonly result: 'none' };

export interface PortalStore extends SessionTable<PortalSessionRecord> {
  /** Pre-login records of the portal's and the staff pages' sign-ins. */
  putLogin(stateHash: string, data: string, expiresAt: Date): Promise<void>;
  /** The record once: it is deleted as it is read; undefined when unknown, used or expired at `now`. */
  takeLogin(stateHash: string, now: Date): Promise<string | undefined>;
  /** The staff pages' sessions (a table of their own). */
  readonly staff: SessionTable<StaffSessionRecord>;
  /** Drops expired (or idle) portal and staff sessions, pre-login records and expired credentials; returns how many. */
  prune(now: Date, idle: { readonly portalMs: number; readonly staffMs: number }): Promise<number>;
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
