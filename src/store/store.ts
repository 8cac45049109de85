import type { ApprovedScope, Grant, GrantState, Reapproval, WorkOrder } from '../domain/index.js';
import type { PortalStore } from './portal-store.js';
import type { BreakGlassRequest, BreakGlassState } from '../domain/breakglass.js';

export interface HookEvent {
  readonly seq: number;
  readonly source: string;
  readonly webhookId: string;
  readonly receivedAt: Date;
  readonly eventTime: Date;
  readonly body: string;
  readonly status: 'pending' | 'processed' | 'rejected';
  readonly error?: string;
  readonly attempts: number;
}

export type NewHookEvent = Pick<HookEvent, 'source' | 'webhookId' | 'receivedAt' | 'eventTime' | 'body'>;

export type UpsertResult = 'inserted' | 'updated' | 'unchanged' | 'stale';

export type JournalOp = 'provision' | 'update' | 'revoke';

export interface JournalEntry {
  readonly id: number;
  readonly grantId: string;
  readonly op: JournalOp;
  readonly targetId: string;
  readonly intentAt: Date;
  readonly outcome?: 'ok' | 'failed' | 'interrupted';
  readonly outcomeAt?: Date;
  readonly error?: string;
}

export interface AuditEntry {
  readonly actor: string;
  readonly action: string;
  readonly subject: string;
  readonly details: Record<string, unknown>;
}

export interface AuditRecord extends AuditEntry {
  readonly seq: number;
  readonly at: string;
  readonly prevHash: string;
  readonly hash: string;
}

export interface AuditHead {
  readonly seq: number;
  readonly hash: string;
}

export interface ApiToken {
  readonly id: string;
  readonly name: string;
  /** SHA-256 of the secret part, hex. The secret itself is never stored. */
  readonly hash: string;
  readonly scopes: readonly string[];
  readonly createdAt: Date;
  readonly expiresAt?: Date;
  readonly revokedAt?: Date;
  /** The person holding it, canonical (src/domain/ids.ts). Absent on tokens made before owners existed. */
  readonly owner?: string;
  /** When the daemon last accepted it (at most a minute stale). */
  readonly lastUsedAt?: Date;
}

export interface Block {
  readonly key: string;
  readonly reason: string;
  readonly actor: string;
  readonly createdAt: Date;
}

export interface GrantFilter {
  readonly states?: readonly GrantState[];
  readonly orderKey?: string;
  readonly vendorId?: string;
  readonly targetId?: string;
  /** resourceKey(grant.resource): with targetId, the grants sharing one entry on a target. */
  readonly resourceKey?: string;
}

/**
 * Everything wogate remembers. Async so that the PostgreSQL implementation fits the same shape.
 * Methods that change several things do so atomically.
 */
export interface Store {
  readonly kind: string;
  /** The vendor portal's sessions and credentials waiting to be collected. */
  readonly portal: PortalStore;
  migrate(): Promise<number>;
  close(): Promise<void>;

  /** 'duplicate' when (source, webhookId) was seen before: a replay. */
  recordHookEvent(e: NewHookEvent): Promise<{ result: 'stored'; seq: number } | { result: 'duplicate' }>;
  /** Pending deliveries due by `now` (all pending ones when `now` is omitted), oldest first. */
  pendingHookEvents(limit: number, now?: Date): Promise<HookEvent[]>;
  /** Leaves a delivery pending until `until`, counting the attempt. */
  deferHookEvent(seq: number, until: Date, error: string): Promise<void>;
  finishHookEvent(seq: number, status: 'processed' | 'rejected', error?: string): Promise<void>;
  /** Forget processed events received before `before`, keeping enough for replay detection. */
  pruneHookEvents(before: Date): Promise<number>;

  /**
   * Older revisions never overwrite newer ones ('stale'). The order's approved scope moves on with
   * it (domain nextApprovedScope over `counting`, the approvals that count; default all), in the same transaction.
   * `withdrawn`: wogate itself withdrew the order (unreadable); its approved scope stays as it was.
   */
  upsertOrder(order: WorkOrder, now: Date, reapproves?: Reapproval, withdrawn?: boolean): Promise<UpsertResult>;
  /** The approved scope of each of these orders (`source/id`) that has one. */
  approvedScopes(orderKeys: readonly string[]): Promise<Map<string, ApprovedScope>>;
  getOrder(source: string, id: string): Promise<WorkOrder | undefined>;
  /** Orders whose window ends after `endsAfter`: the only ones that can still yield access. */
  listOrders(endsAfter: Date): Promise<WorkOrder[]>;

  listGrants(filter?: GrantFilter): Promise<Grant[]>;
  getGrant(id: string): Promise<Grant | undefined>;
  /** Writes the grant as given and opens a journal entry for the call about to be made; atomically. */
  journalIntent(grant: Grant, op: JournalOp, now: Date): Promise<number>;
  /** Closes a journal entry with the call's outcome and writes the grant's new state; atomically. */
  journalOutcome(journalId: number, outcome: 'ok' | 'failed', grant: Grant, now: Date, error?: string): Promise<void>;
  /** Intents with no outcome: the process stopped mid-call. */
  danglingIntents(): Promise<JournalEntry[]>;
  markInterrupted(journalId: number, now: Date): Promise<void>;
  /** Writes a grant's state outside a target call (an operator's revoke request). */
  saveGrant(grant: Grant): Promise<void>;

  addBlock(block: Block): Promise<void>;
  blockedKeys(): Promise<Set<string>>;

  /** Appends one record; `seal` computes the hash from the previous head inside the same transaction. */
  appendAudit(entry: AuditEntry, seal: (prev: AuditHead | undefined, seq: number) => AuditRecord): Promise<AuditRecord>;
  readAudit(afterSeq: number, limit: number): Promise<AuditRecord[]>;
  auditHead(): Promise<AuditHead | undefined>;

  createToken(token: ApiToken): Promise<void>;
  getToken(id: string): Promise<ApiToken | undefined>;
  revokeToken(id: string, at: Date): Promise<boolean>;
  /** A new secret hash for a live token; false when it is unknown or revoked. */
  rotateToken(id: string, hash: string): Promise<boolean>;
  /** Records a use, unless one at or after `staleBefore` is already recorded (so at most one write a minute). */
  touchToken(id: string, at: Date, staleBefore: Date): Promise<void>;
  listTokens(): Promise<ApiToken[]>;

  getState(key: string): Promise<string | undefined>;
  setState(key: string, value: string): Promise<void>;

  /** Creates or replaces a break-glass request. */
  saveBreakGlass(request: BreakGlassRequest): Promise<void>;
  getBreakGlass(id: string): Promise<BreakGlassRequest | undefined>;
  /** Newest first; `states` narrows, `reviewOpen` keeps those whose review is pending or open in the CMMS. */
  listBreakGlass(filter?: { readonly states?: readonly BreakGlassState[]; readonly reviewOpen?: boolean }): Promise<BreakGlassRequest[]>;
}
