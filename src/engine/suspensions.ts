import type { ActorContext, AuditLog } from '../audit/audit.js';
import { WogateError } from '../domain/index.js';
import { tryCanonicalId } from '../domain/ids.js';
import type { Store } from '../store/store.js';

export interface Suspension {
  readonly vendorId: string;
  readonly reason: string;
  readonly by: string;
  /** The person who suspended (ActorContext.person), for the second-person rule on reinstating. */
  readonly byPerson?: string;
  readonly at: string;
}

const KEY = 'vendor-suspensions';

/**
 * The kill switch: a suspended vendor's orders authorise nothing (VENDOR_SUSPENDED) until an
 * operator reinstates it (a second person, or a policy-admin: src/api/actions.ts), whatever the CMMS says, so every grant of theirs is revoked on the next
 * pass and none comes back from a new order. Kept in the store, so a restart keeps it.
 */
export class VendorSuspensions {
  private current = new Map<string, Suspension>();

  constructor(
    private readonly store: Store,
    private readonly audit: AuditLog,
    private readonly clock: () => Date,
  ) {}

  /**
   * Vendor ids in canonical form, as orders and the register name them: a suspension stored by an
   * older wogate under the register's old spelling (`ACME-Controls`) must keep holding after the
   * upgrade, not stop matching the vendor's (now canonical) orders.
   */
  async load(): Promise<void> {
    const raw = await this.store.getState(KEY);
    const list = raw ? (JSON.parse(raw) as Suspension[]) : [];
    const next = new Map<string, Suspension>();
    for (const s of list) {
      const id = tryCanonicalId(s.vendorId, 'vendorId');
      const vendorId = id.ok ? id.id : s.vendorId;
      if (!next.has(vendorId)) next.set(vendorId, { ...s, vendorId });
    }
    this.current = next;
  }

  /** Vendor id → why, for the evaluation. */
  active(): ReadonlyMap<string, Suspension> {
    return this.current;
  }

  list(): Suspension[] {
    return [...this.current.values()];
  }

  async suspend(vendorId: string, by: string, reason: string, context: ActorContext = {}): Promise<Suspension> {
    const s: Suspension = { vendorId, reason, by, ...(context.person ? { byPerson: context.person } : {}), at: this.clock().toISOString() };
    const next = new Map(this.current).set(vendorId, s);
    await this.save(next);
    await this.audit.append({ actor: by, action: 'vendor.suspended', subject: vendorId, details: { reason, ...context } });
    return s;
  }

  async reinstate(vendorId: string, by: string, reason: string, context: ActorContext = {}): Promise<void> {
    if (!this.current.has(vendorId)) throw new WogateError('NOT_FOUND', `vendor "${vendorId}" is not suspended`);
    const next = new Map(this.current);
    next.delete(vendorId);
    await this.save(next);
    await this.audit.append({ actor: by, action: 'vendor.reinstated', subject: vendorId, details: { reason, ...context } });
  }

  private async save(next: Map<string, Suspension>): Promise<void> {
    await this.store.setState(KEY, JSON.stringify([...next.values()]));
    this.current = next;
  }
}
