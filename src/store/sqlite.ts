import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { compareRevisions, isEnded, nextApprovedScope, orderKey, resourceKey, revisionKind, WogateError, type ApprovedScope, type Reapproval, type Grant, type WorkOrder } from '../domain/index.js';
import { SQLITE_MIGRATIONS } from './sqlite-migrations.js';
import { SqlitePortalStore } from './sqlite-portal.js';
import { breakGlassFromJson, breakGlassToJson, grantFromJson, grantToJson, orderFromJson, orderToJson, scopeFromJson } from './codec.js';
import type { BreakGlassRequest, BreakGlassState } from '../domain/breakglass.js';
import type {
  ApiToken, AuditEntry, AuditHead, AuditRecord, Block, GrantFilter, HookEvent, JournalEntry, JournalOp,
  NewHookEvent, Store, UpsertResult,
} from './store.js';

type Row = Record<string, unknown>;

/** The embedded default: one SQLite file in WAL mode. better-sqlite3 is synchronous; the async shape is for PostgreSQL. */
export class SqliteStore implements Store {
  readonly kind = 'sqlite';
  private readonly db: Database.Database;
  /** The vendor portal's sessions and waiting credentials, in the same file. */
  readonly portal: SqlitePortalStore;

  constructor(readonly file: string) {
    if (file !== ':memory:') fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true, mode: 0o750 });
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('foreign_keys = ON');
    this.db.pragma('busy_timeout = 5000');
    if (file !== ':memory:') fs.chmodSync(file, 0o600);
    this.portal = new SqlitePortalStore(this.db);
  }

  async migrate(): Promise<number> {
    this.db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)');
    const done = new Set((this.db.prepare('SELECT version FROM schema_migrations').all() as Row[]).map((r) => Number(r.version)));
    const known = Math.max(0, ...SQLITE_MIGRATIONS.map((m) => m.version));
    const newest = Math.max(0, ...done);
    if (newest > known) {
      throw new WogateError('CONFIG_INVALID', `store ${this.file} has schema version ${newest}, newer than this wogate knows (${known}); refusing to run an older binary against it`);
    }
    let applied = 0;
    for (const m of SQLITE_MIGRATIONS) {
      if (done.has(m.version)) continue;
      this.db.transaction(() => {
        this.db.exec(m.sql);
        this.db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(m.version, m.name, new Date().toISOString());
      })();
      applied++;
    }
    return applied;
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }

  async recordHookEvent(e: NewHookEvent): Promise<{ result: 'stored'; seq: number } | { result: 'duplicate' }> {
    const r = this.db
      .prepare('INSERT INTO hook_events (source, webhook_id, received_at, event_time, body) VALUES (?, ?, ?, ?, ?) ON CONFLICT (source, webhook_id) DO NOTHING')
      .run(e.source, e.webhookId, e.receivedAt.getTime(), e.eventTime.getTime(), e.body);
    return r.changes === 0 ? { result: 'duplicate' } : { result: 'stored', seq: Number(r.lastInsertRowid) };
  }

  async pendingHookEvents(limit: number, now?: Date): Promise<HookEvent[]> {
    const due = now?.getTime() ?? Number.MAX_SAFE_INTEGER;
    const rows = this.db.prepare("SELECT * FROM hook_events WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY seq LIMIT ?").all(due, limit) as Row[];
    return rows.map((r) => ({
      seq: Number(r.seq),
      source: String(r.source),
      webhookId: String(r.webhook_id),
      receivedAt: new Date(Number(r.received_at)),
      eventTime: new Date(Number(r.event_time)),
      body: String(r.body),
      status: r.status as HookEvent['status'],
      attempts: Number(r.attempts),
      ...(r.error == null ? {} : { error: String(r.error) }),
    }));
  }

  async finishHookEvent(seq: number, status: 'processed' | 'rejected', error?: string): Promise<void> {
    this.db.prepare('UPDATE hook_events SET status = ?, error = ? WHERE seq = ?').run(status, error ?? null, seq);
  }

  async deferHookEvent(seq: number, until: Date, error: string): Promise<void> {
    this.db.prepare('UPDATE hook_events SET attempts = attempts + 1, next_attempt_at = ?, error = ? WHERE seq = ?').run(until.getTime(), error, seq);
  }

  async pruneHookEvents(before: Date): Promise<number> {
    return this.db.prepare("DELETE FROM hook_events WHERE status <> 'pending' AND received_at < ?").run(before.getTime()).changes;
  }

  async upsertOrder(order: WorkOrder, now: Date, reapproves?: Reapproval, withdrawn = false): Promise<UpsertResult> {
    return this.db.transaction((): UpsertResult => {
      const old = this.db.prepare('SELECT revision, data, approved_scope FROM work_orders WHERE source = ? AND id = ?').get(order.source, order.id) as Row | undefined;
      const data = orderToJson(order);
      if (old) {
        const cmp = compareRevisions(order.revision, String(old.revision));
        // Revisions that can't be compared must not freeze an order open. A stored one that is no
        // revision at all (kept from before revisions were checked, like "Infinity") orders
        // nothing, so the source's next valid one replaces it. Between two valid ones of different
        // kinds (a source that moved from rowstamps to change dates) a move to an ended status
        // only narrows access and always applies; anything else waits for a comparable revision.
        const incomparable = cmp === undefined && revisionKind(String(old.revision)) !== undefined;
        if (incomparable ? !isEnded(order.status) : cmp !== undefined && cmp < 0) return 'stale';
        if (cmp === 0 && old.data === data) return 'unchanged';
      }
      const scope = nextApprovedScope(old?.approved_scope == null ? undefined : scopeFromJson(String(old.approved_scope)), order, reapproves, withdrawn);
      this.db
        .prepare(`INSERT INTO work_orders (source, id, revision, status, window_end, data, updated_at, approved_scope) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                  ON CONFLICT (source, id) DO UPDATE SET revision = excluded.revision, status = excluded.status,
                  window_end = excluded.window_end, data = excluded.data, updated_at = excluded.updated_at, approved_scope = excluded.approved_scope`)
        .run(order.source, order.id, order.revision, order.status, order.window.end.getTime(), data, now.getTime(), scope ? JSON.stringify(scope) : null);
      return old ? 'updated' : 'inserted';
    })();
  }

  async getOrder(source: string, id: string): Promise<WorkOrder | undefined> {
    const r = this.db.prepare('SELECT data FROM work_orders WHERE source = ? AND id = ?').get(source, id) as Row | undefined;
    return r ? orderFromJson(String(r.data)) : undefined;
  }

  async approvedScopes(orderKeys: readonly string[]): Promise<Map<string, ApprovedScope>> {
    const out = new Map<string, ApprovedScope>();
    const wanted = new Set(orderKeys);
    if (wanted.size > 64) {
      // A full pass asks for every live order: one scan instead of a query per order.
      for (const r of this.db.prepare('SELECT source, id, approved_scope FROM work_orders WHERE approved_scope IS NOT NULL').iterate() as Iterable<Row>) {
        const key = orderKey({ source: String(r.source), id: String(r.id) });
        if (wanted.has(key)) out.set(key, scopeFromJson(String(r.approved_scope)));
      }
      return out;
    }
    const get = this.db.prepare('SELECT approved_scope FROM work_orders WHERE source = ? AND id = ?');
    for (const key of wanted) {
      const slash = key.indexOf('/');
      const r = get.get(key.slice(0, slash), key.slice(slash + 1)) as Row | undefined;
      if (r?.approved_scope != null) out.set(orderKey({ source: key.slice(0, slash), id: key.slice(slash + 1) }), scopeFromJson(String(r.approved_scope)));
    }
    return out;
  }

  async listOrders(endsAfter: Date): Promise<WorkOrder[]> {
    const rows = this.db.prepare('SELECT data FROM work_orders WHERE window_end > ? ORDER BY source, id').all(endsAfter.getTime()) as Row[];
    return rows.map((r) => orderFromJson(String(r.data)));
  }

  async listGrants(filter: GrantFilter = {}): Promise<Grant[]> {
    const where: string[] = [];
    const args: unknown[] = [];
    if (filter.states?.length) {
      where.push(`state IN (${filter.states.map(() => '?').join(',')})`);
      args.push(...filter.states);
    }
    for (const [column, value] of [['order_key', filter.orderKey], ['vendor_id', filter.vendorId], ['target_id', filter.targetId], ['resource_key', filter.resourceKey]] as const) {
      if (value === undefined) continue;
      where.push(`${column} = ?`);
      args.push(value);
    }
    const sql = `SELECT data FROM grants ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at, id`;
    return (this.db.prepare(sql).all(...args) as Row[]).map((r) => grantFromJson(String(r.data)));
  }

  async getGrant(id: string): Promise<Grant | undefined> {
    const r = this.db.prepare('SELECT data FROM grants WHERE id = ?').get(id) as Row | undefined;
    return r ? grantFromJson(String(r.data)) : undefined;
  }

  private writeGrant(g: Grant): void {
    this.db
      .prepare(`INSERT INTO grants (id, key, order_key, vendor_id, target_id, resource_key, state, valid_from, valid_until, attempts, next_attempt_at, data, created_at, updated_at)
                VALUES (@id, @key, @orderKey, @vendorId, @targetId, @resourceKey, @state, @validFrom, @validUntil, @attempts, @nextAttemptAt, @data, @createdAt, @updatedAt)
                ON CONFLICT (id) DO UPDATE SET state = excluded.state, valid_from = excluded.valid_from, valid_until = excluded.valid_until,
                attempts = excluded.attempts, next_attempt_at = excluded.next_attempt_at, data = excluded.data, updated_at = excluded.updated_at`)
      .run({
        id: g.id, key: g.key, orderKey: g.orderKey, vendorId: g.vendorId, targetId: g.targetId, resourceKey: resourceKey(g.resource), state: g.state,
        validFrom: g.validFrom.getTime(), validUntil: g.validUntil.getTime(), attempts: g.attempts,
        nextAttemptAt: g.nextAttemptAt?.getTime() ?? null, data: grantToJson(g),
        createdAt: g.createdAt.getTime(), updatedAt: g.updatedAt.getTime(),
      });
  }

  async saveGrant(grant: Grant): Promise<void> {
    this.writeGrant(grant);
  }

  async journalIntent(grant: Grant, op: JournalOp, now: Date): Promise<number> {
    return this.db.transaction(() => {
      this.writeGrant(grant);
      return Number(this.db.prepare('INSERT INTO journal (grant_id, op, target_id, intent_at) VALUES (?, ?, ?, ?)').run(grant.id, op, grant.targetId, now.getTime()).lastInsertRowid);
    })();
  }

  async journalOutcome(journalId: number, outcome: 'ok' | 'failed', grant: Grant, now: Date, error?: string): Promise<void> {
    this.db.transaction(() => {
      this.writeGrant(grant);
      this.db.prepare('UPDATE journal SET outcome = ?, outcome_at = ?, error = ? WHERE id = ?').run(outcome, now.getTime(), error ?? null, journalId);
    })();
  }

  async danglingIntents(): Promise<JournalEntry[]> {
    const rows = this.db.prepare('SELECT * FROM journal WHERE outcome IS NULL ORDER BY id').all() as Row[];
    return rows.map((r) => ({
      id: Number(r.id),
      grantId: String(r.grant_id),
      op: r.op as JournalOp,
      targetId: String(r.target_id),
      intentAt: new Date(Number(r.intent_at)),
    }));
  }

  async markInterrupted(journalId: number, now: Date): Promise<void> {
    this.db.prepare("UPDATE journal SET outcome = 'interrupted', outcome_at = ? WHERE id = ? AND outcome IS NULL").run(now.getTime(), journalId);
  }

  async addBlock(b: Block): Promise<void> {
    this.db.prepare('INSERT INTO blocks (key, reason, actor, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (key) DO NOTHING').run(b.key, b.reason, b.actor, b.createdAt.getTime());
  }

  async blockedKeys(): Promise<Set<string>> {
    return new Set((this.db.prepare('SELECT key FROM blocks').all() as Row[]).map((r) => String(r.key)));
  }

  async appendAudit(entry: AuditEntry, seal: (prev: AuditHead | undefined, seq: number) => AuditRecord): Promise<AuditRecord> {
    return this.db.transaction(() => {
      const head = this.db.prepare('SELECT seq, hash FROM audit_head WHERE id = 1').get() as Row | undefined;
      const prev = head ? { seq: Number(head.seq), hash: String(head.hash) } : undefined;
      const rec = seal(prev, (prev?.seq ?? 0) + 1);
      this.db
        .prepare('INSERT INTO audit (seq, at, actor, action, subject, details, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
        .run(rec.seq, rec.at, rec.actor, rec.action, rec.subject, JSON.stringify(rec.details), rec.prevHash, rec.hash);
      this.db.prepare('INSERT INTO audit_head (id, seq, hash) VALUES (1, ?, ?) ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash').run(rec.seq, rec.hash);
      return rec;
    }).immediate();
  }

  async readAudit(afterSeq: number, limit: number): Promise<AuditRecord[]> {
    const rows = this.db.prepare('SELECT * FROM audit WHERE seq > ? ORDER BY seq LIMIT ?').all(afterSeq, limit) as Row[];
    return rows.map((r) => ({
      seq: Number(r.seq),
      at: String(r.at),
      actor: String(r.actor),
      action: String(r.action),
      subject: String(r.subject),
      details: JSON.parse(String(r.details)) as Record<string, unknown>,
      prevHash: String(r.prev_hash),
      hash: String(r.hash),
    }));
  }

  async auditHead(): Promise<AuditHead | undefined> {
    const r = this.db.prepare('SELECT seq, hash FROM audit_head WHERE id = 1').get() as Row | undefined;
    return r ? { seq: Number(r.seq), hash: String(r.hash) } : undefined;
  }

  async createToken(t: ApiToken): Promise<void> {
    this.db
      .prepare('INSERT INTO api_tokens (id, name, hash, scopes, created_at, expires_at, owner) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(t.id, t.name, t.hash, JSON.stringify(t.scopes), t.createdAt.getTime(), t.expiresAt?.getTime() ?? null, t.owner ?? null);
  }

  async getToken(id: string): Promise<ApiToken | undefined> {
    const r = this.db.prepare('SELECT * FROM api_tokens WHERE id = ?').get(id) as Row | undefined;
    return r ? tokenFromRow(r) : undefined;
  }

  async revokeToken(id: string, at: Date): Promise<boolean> {
    return this.db.prepare('UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL').run(at.getTime(), id).changes > 0;
  }

  async rotateToken(id: string, hash: string): Promise<boolean> {
    return this.db.prepare('UPDATE api_tokens SET hash = ? WHERE id = ? AND revoked_at IS NULL').run(hash, id).changes > 0;
  }

  async touchToken(id: string, at: Date, staleBefore: Date): Promise<void> {
    this.db.prepare('UPDATE api_tokens SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)').run(at.getTime(), id, staleBefore.getTime());
  }

  async listTokens(): Promise<ApiToken[]> {
    return (this.db.prepare('SELECT * FROM api_tokens ORDER BY created_at').all() as Row[]).map(tokenFromRow);
  }

  async getState(key: string): Promise<string | undefined> {
    const r = this.db.prepare('SELECT value FROM state WHERE key = ?').get(key) as Row | undefined;
    return r ? String(r.value) : undefined;
  }

  async setState(key: string, value: string): Promise<void> {
    this.db.prepare('INSERT INTO state (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value').run(key, value);
  }

  async saveBreakGlass(r: BreakGlassRequest): Promise<void> {
    this.db
      .prepare(`INSERT INTO break_glass (id, state, requester, review, created_at, data) VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT (id) DO UPDATE SET state = excluded.state, review = excluded.review, data = excluded.data`)
      .run(r.id, r.state, r.requester, r.review?.state ?? null, r.createdAt.getTime(), breakGlassToJson(r));
  }

  async getBreakGlass(id: string): Promise<BreakGlassRequest | undefined> {
    const r = this.db.prepare('SELECT data FROM break_glass WHERE id = ?').get(id) as Row | undefined;
    return r ? breakGlassFromJson(String(r.data)) : undefined;
  }

  async listBreakGlass(filter: { readonly states?: readonly BreakGlassState[]; readonly reviewOpen?: boolean } = {}): Promise<BreakGlassRequest[]> {
    const where: string[] = [];
    const args: unknown[] = [];
    if (filter.states?.length) {
      where.push(`state IN (${filter.states.map(() => '?').join(',')})`);
      args.push(...filter.states);
    }
    if (filter.reviewOpen) where.push("review IN ('pending','open')");
    const sql = `SELECT data FROM break_glass ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at DESC, id`;
    return (this.db.prepare(sql).all(...args) as Row[]).map((r) => breakGlassFromJson(String(r.data)));
  }

  /** For tests that tamper with the file on purpose. */
  raw(): Database.Database {
    return this.db;
  }
}

function tokenFromRow(r: Row): ApiToken {
  return {
    id: String(r.id),
    name: String(r.name),
    hash: String(r.hash),
    scopes: JSON.parse(String(r.scopes)) as string[],
    createdAt: new Date(Number(r.created_at)),
    ...(r.expires_at == null ? {} : { expiresAt: new Date(Number(r.expires_at)) }),
    ...(r.revoked_at == null ? {} : { revokedAt: new Date(Number(r.revoked_at)) }),
    ...(r.owner == null ? {} : { owner: String(r.owner) }),
    ...(r.last_used_at == null ? {} : { lastUsedAt: new Date(Number(r.last_used_at)) }),
  };
}
