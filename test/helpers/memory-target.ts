import { RESOURCE_KINDS, resourceKey, type ResourceKind, type TargetRef } from '../../src/domain/index.js';
import { TargetError, type CallContext, type Target, type TargetEntry, type TargetGrant } from '../../src/targets/target.js';

/** A readable fake: remembers what is open, can be told to fail the next calls, or to hang. */
export class MemoryTarget implements Target {
  readonly kind = 'memory';
  readonly nativeExpiry = false;
  readonly open = new Map<string, TargetGrant>();
  /** Which grant key holds each resource's entry (an index, so a fake with 10,000 entries stays fast). */
  private readonly byResource = new Map<string, string>();
  readonly calls: { op: string; key: string; at: Date }[] = [];
  failNext = 0;
  failRetryable = true;
  /** Called inside provision before it records anything: lets a test crash the process mid-call. */
  beforeCall: ((op: string, g: TargetGrant) => Promise<void> | void) | undefined;

  /** `resourceKinds`: what it holds; other kinds are refused as a real target would (default: every kind). */
  constructor(
    readonly id: string,
    readonly resourceKinds: readonly ResourceKind[] = RESOURCE_KINDS,
  ) {}

  async init(): Promise<void> {}

  private async gate(op: string, g: TargetGrant, ctx: CallContext): Promise<void> {
    this.calls.push({ op, key: g.key, at: ctx.now });
    await this.beforeCall?.(op, g);
    if (this.failNext > 0) {
      this.failNext--;
      throw new TargetError(this.id, `simulated ${op} failure`, this.failRetryable);
    }
  }

  async provision(g: TargetGrant, ctx: CallContext): Promise<TargetRef> {
    await this.gate('provision', g, ctx);
    this.checkKind(g);
    this.hold(g);
    return { key: g.key };
  }

  async update(g: TargetGrant, _ref: TargetRef | undefined, ctx: CallContext): Promise<TargetRef> {
    await this.gate('update', g, ctx);
    this.checkKind(g);
    this.hold(g);
    return { key: g.key };
  }

  async revoke(g: TargetGrant, _ref: TargetRef | undefined, ctx: CallContext): Promise<void> {
    await this.gate('revoke', g, ctx);
    this.open.delete(g.key);
    this.release(g);
  }

  async list(): Promise<TargetEntry[]> {
    if (this.failNext > 0) {
      this.failNext--;
      throw new TargetError(this.id, 'simulated list failure', this.failRetryable);
    }
    return [...this.open.values()].map((g) => ({ resource: g.resource, key: g.key, ref: { key: g.key }, expiresAt: g.validUntil }));
  }

  private checkKind(g: TargetGrant): void {
    if (!this.resourceKinds.includes(g.resource.kind)) throw new TargetError(this.id, `a ${g.resource.kind} resource can't be held here`, false);
  }

  /** One entry per resource, as a real system holds it: the latest grant given for it owns it. */
  private hold(g: TargetGrant): void {
    this.release(g);
    this.open.set(g.key, g);
    this.byResource.set(resourceKey(g.resource), g.key);
  }

  private release(g: TargetGrant): void {
    const r = resourceKey(g.resource);
    const owner = this.byResource.get(r);
    if (owner !== undefined) this.open.delete(owner);
    this.byResource.delete(r);
  }

  async close(): Promise<void> {}
}
