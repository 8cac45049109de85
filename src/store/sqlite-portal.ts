import type Database from 'better-sqlite3';
import type { PortalSessionRecord, PortalStore, SessionTable, StaffSessionRecord, TakenCredential } from './portal-store.js';

type Row = Record<string, unknown>;

/** The staff pages' sessions (migrations 6 and 7). */
class SqliteStaffSessions implements SessionTable<StaffSessionRecord> {
  constructor(private readonly db: Database.Database) {}

  async createSession(s: StaffSessionRecord): Promise<void> {
    this.db
      .prepare('INSERT INTO staff_sessions (id_hash, subject, name, role, csrf_hash, created_at, last_seen_at, expires_at, person) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)')
      .run(s.idHash, s.subject, s.name, s.role, s.csrfHash, s.createdAt.getTime(), s.lastSeenAt.getTime(), s.expiresAt.getTime(), s.person ?? null);
  }

  async getSession(idHash: string): Promise<StaffSessionRecord | undefined> {
    const r = this.db.prepare('SELECT * FROM staff_sessions WHERE id_hash = ?').get(idHash) as Row | undefined;
    if (!r) return undefined;
    return {
      idHash: String(r.id_hash), subject: String(r.subject), name: String(r.name), role: String(r.role), csrfHash: String(r.csrf_hash),
      createdAt: new Date(Number(r.created_at)), lastSeenAt: new Date(Number(r.last_seen_at)), expiresAt: new Date(Number(r.expires_at)),
      ...(r.person == null ? {} : { person: String(r.person) }),
    };
  }

  async touchSession(idHash: string, at: Date): Promise<void> {
    this.db.prepare('UPDATE staff_sessions SET last_seen_at = ? WHERE id_hash = ?').run(at.getTime(), idHash);
  }

  async deleteSession(idHash: string): Promise<void> {
    this.db.prepare('DELETE FROM staff_sessions WHERE id_hash = ?').run(idHash);
  }
}

/** The portal's tables (migrations 5 and 6) in the daemon's SQLite file. */
export class SqlitePortalStore implements PortalStore {
  readonly staff: SqliteStaffSessions;

  constructor(private readonly db: Database.Database) {
    this.staff = new SqliteStaffSessions(db);
  }

  async putLogin(stateHash: string, data: string, expiresAt: Date): Promise<void> {
    this.db.prepare('INSERT INTO portal_logins (state_hash, data, expires_at) VALUES (?, ?, ?)').run(stateHash, data, expiresAt.getTime());
  }

  async takeLogin(stateHash: string, now: Date): Promise<string | undefined> {
    const row = this.db.prepare('DELETE FROM portal_logins WHERE state_hash = ? RETURNING data, expires_at').get(stateHash) as Row | undefined;
    if (!row || Number(row.expires_at) <= now.getTime()) return undefined;
    return String(row.data);
  }

  async createSession(s: PortalSessionRecord): Promise<void> {
    this.db
      .prepare('INSERT INTO portal_sessions (id_hash, technician_id, vendor_id, subject, csrf_hash, created_at, last_seen_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
      .run(s.idHash, s.technicianId, s.vendorId, s.subject, s.csrfHash, s.createdAt.getTime(), s.lastSeenAt.getTime(), s.expiresAt.getTime());
  }

  async getSession(idHash: string): Promise<PortalSessionRecord | undefined> {
    const r = this.db.prepare('SELECT * FROM portal_sessions WHERE id_hash = ?').get(idHash) as Row | undefined;
    if (!r) return undefined;
    // A session from before sessions were bound to a vendor names a technician id that may be
    // another vendor's too: it ends, and the technician signs in again.
    if (r.vendor_id === null) {
      await this.deleteSession(idHash);
      return undefined;
    }
    return {
      idHash: String(r.id_hash),
      technicianId: String(r.technician_id),
      vendorId: String(r.vendor_id),
      subject: String(r.subject),
      csrfHash: String(r.csrf_hash),
      createdAt: new Date(Number(r.created_at)),
      lastSeenAt: new Date(Number(r.last_seen_at)),
      expiresAt: new Date(Number(r.expires_at)),
    };
  }

  async touchSession(idHash: string, at: Date): Promise<void> {
    this.db.prepare('UPDATE portal_sessions SET last_seen_at = ? WHERE id_hash = ?').run(at.getTime(), idHash);
  }

  async deleteSession(idHash: string): Promise<void> {
    this.db.prepare('DELETE FROM portal_sessions WHERE id_hash = ?').run(idHash);
  }

  async prune(now: Date, idle: { readonly portalMs: number; readonly staffMs: number }): Promise<number> {
    const t = now.getTime();
    return this.db.transaction(() => {
      const a = this.db.prepare('DELETE FROM portal_sessions WHERE expires_at <= ? OR last_seen_at <= ?').run(t, t - idle.portalMs).changes
        + this.db.prepare('DELETE FROM staff_sessions WHERE expires_at <= ? OR last_seen_at <= ?').run(t, t - idle.staffMs).changes;
      const b = this.db.prepare('DELETE FROM portal_logins WHERE expires_at <= ?').run(t).changes;
      // Uncollected credentials of certificates that have expired are useless: forget them.
      const c = this.db.prepare('DELETE FROM portal_credentials WHERE not_after <= ?').run(t).changes;
      return a + b + c;
    })();
  }

  async putCredential(entryKey: string, grantId: string, sealed: string, notAfter: Date, storedAt: Date): Promise<void> {
    this.db
      .prepare(`INSERT INTO portal_credentials (entry_key, grant_id, sealed, not_after, stored_at) VALUES (?, ?, ?, ?, ?)
        ON CONFLICT (entry_key) DO UPDATE SET grant_id = excluded.grant_id, sealed = excluded.sealed, not_after = excluded.not_after, stored_at = excluded.stored_at, collected_at = NULL, collected_by = NULL`)
      .run(entryKey, grantId, sealed, notAfter.getTime(), storedAt.getTime());
  }

  async takeCredential(entryKey: string, by: string, at: Date): Promise<TakenCredential> {
    return this.db.transaction((): TakenCredential => {
      const r = this.db.prepare('SELECT sealed, collected_at FROM portal_credentials WHERE entry_key = ?').get(entryKey) as Row | undefined;
      if (!r) return { result: 'none' };
      if (r.sealed === null) return { result: 'collected', collectedAt: new Date(Number(r.collected_at)) };
      this.db.prepare('UPDATE portal_credentials SET sealed = NULL, collected_at = ?, collected_by = ? WHERE entry_key = ?').run(at.getTime(), by, entryKey);
      return { result: 'taken', sealed: String(r.sealed) };
    }).immediate();
  }

  async credentialStatus(entryKey: string): Promise<true | Date | undefined> {
    const r = this.db.prepare('SELECT sealed, collected_at FROM portal_credentials WHERE entry_key = ?').get(entryKey) as Row | undefined;
    if (!r) return undefined;
    return r.sealed === null ? new Date(Number(r.collected_at)) : true;
  }
}
