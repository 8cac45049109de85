import { WogateError, type WorkOrder } from '../../src/domain/index.js';
import { mapListed, SourceError, type CallContext, type Delivery, type PollResult, type Source, type SourceApi, type SourceEvent } from '../../src/sources/source.js';

/** A readable in-memory CMMS with an API: orders by id, a change counter as cursor, notes, and a switch to fail. */
export class FakeCmms implements SourceApi {
  readonly orders = new Map<string, WorkOrder>();
  readonly notes = new Map<string, string[]>();
  private readonly changedAt = new Map<string, number>();
  private seq = 0;
  down = false;
  /** Orders whose records the adapter can't read (say, an unknown status code): listings skip them. */
  readonly unreadable = new Set<string>();
  failWriteBack = false;
  calls = 0;

  constructor(readonly sourceId = 'cmms') {}

  put(o: WorkOrder): WorkOrder {
    const rev = { ...o, source: this.sourceId, revision: String(++this.seq) };
    this.orders.set(o.id, rev);
    this.changedAt.set(o.id, this.seq);
    return rev;
  }

  private gate(): void {
    this.calls++;
    if (this.down) throw new SourceError(this.sourceId, 'GET /workorders: connect ECONNREFUSED', true);
  }

  async fetchOrder(id: string): Promise<WorkOrder | undefined> {
    this.gate();
    return this.orders.get(id);
  }

  private readable(list: WorkOrder[], ctx: CallContext): WorkOrder[] {
    return list.filter((o) => mapListed(ctx, () => o.id, () => {
      if (this.unreadable.has(o.id)) throw new WogateError('HOOK_MAPPING_FAILED', `status: source status "WEIRD" has no mapping`);
      return o;
    }) !== undefined);
  }

  async poll(cursor: string | undefined, _since: Date, ctx: CallContext): Promise<PollResult> {
    this.gate();
    const from = cursor ? Number(cursor) : 0;
    const orders = [...this.orders.values()].filter((o) => (this.changedAt.get(o.id) ?? 0) > from);
    return { orders: this.readable(orders, ctx), cursor: String(this.seq) };
  }

  async listOpen(ctx: CallContext): Promise<WorkOrder[]> {
    this.gate();
    return this.readable([...this.orders.values()].filter((o) => !['completed', 'closed', 'cancelled'].includes(o.status)), ctx);
  }

  async writeBack(orderId: string, note: string): Promise<void> {
    this.gate();
    if (this.failWriteBack) throw new SourceError(this.sourceId, 'POST /comments: 500', false);
    this.notes.set(orderId, [...(this.notes.get(orderId) ?? []), note]);
  }
}

/** A source whose webhooks are unsigned doorbells carrying the webhook's idea of the order (tests sign nothing). */
export function fakeSource(api: FakeCmms, id = 'cmms'): Source & { api: FakeCmms } {
  return {
    id,
    kind: 'fake',
    maxBodyBytes: 65536,
    api,
    verify(): Delivery {
      return { webhookId: 'x', eventTime: new Date() };
    },
    parseEvent(payload: unknown): SourceEvent {
      const p = payload as { orderId: string; order?: WorkOrder & { window: { start: string; end: string } } };
      if (!p.order) return { orderId: p.orderId };
      const order = { ...p.order, window: { start: new Date(p.order.window.start), end: new Date(p.order.window.end) } } as WorkOrder;
      return { orderId: p.orderId, order };
    },
  };
}
