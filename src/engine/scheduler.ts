import type { Logger } from '../log.js';
import type { ReconcileSummary } from './reconciler.js';

// setTimeout holds at most 2^31-1 ms; longer waits are re-armed.
const MAX_TIMER_MS = 2_147_483_647;

export interface SchedulerOptions {
  readonly reconcile: (orderKeys?: readonly string[]) => Promise<ReconcileSummary>;
  readonly clock: () => Date;
  readonly log: Logger;
  /** A full pass at least this often, whatever the timers say. */
  readonly fullReconcileMs: number;
  /** Trailing delay that folds a burst of triggers (a webhook storm) into one pass. */
  readonly debounceMs?: number;
}

/**
 * Runs reconcile passes: at the exact instant the next window opens or ends (one timer, re-armed
 * after every pass), when something changes (trigger), and periodically as a safety net.
 */
export class Scheduler {
  private timer: NodeJS.Timeout | undefined;
  private armedAt: number | undefined;
  private pendingFull = false;
  private readonly pendingOrders = new Set<string>();
  private periodic: NodeJS.Timeout | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private stopped = true;
  private lastPass: Date | undefined;

  constructor(private readonly o: SchedulerOptions) {}

  start(): Promise<void> {
    this.stopped = false;
    this.periodic = setInterval(() => void this.run('periodic'), this.o.fullReconcileMs);
    return this.run('start');
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.debounce);
    clearInterval(this.periodic);
  }

  /** Something changed: reconcile soon, only the named orders when the caller knows which. */
  trigger(reason: string, orderKeys?: readonly string[]): void {
    if (this.stopped) return;
    if (orderKeys) for (const k of orderKeys) this.pendingOrders.add(k);
    else this.pendingFull = true;
    if (this.debounce) return;
    this.debounce = setTimeout(() => {
      this.debounce = undefined;
      const keys = this.pendingFull ? undefined : [...this.pendingOrders];
      this.pendingFull = false;
      this.pendingOrders.clear();
      void this.run(reason, keys);
    }, this.o.debounceMs ?? 0);
  }

  /** When the last pass finished, for readiness checks. */
  lastPassAt(): Date | undefined {
    return this.lastPass;
  }

  async run(reason: string, orderKeys?: readonly string[]): Promise<void> {
    if (this.stopped) return;
    try {
      const s = await this.o.reconcile(orderKeys);
      if (!s.scoped) this.lastPass = this.o.clock();
      if (s.provisioned + s.updated + s.revoked + s.failed > 0) this.o.log.debug('reconciled', { reason, ...s });
      // A scoped pass knows only its own orders: it may bring the timer forward, never push it back.
      if (!s.scoped) this.arm(s.nextWakeAt);
      else if (s.nextWakeAt && (this.armedAt === undefined || s.nextWakeAt.getTime() < this.armedAt)) this.arm(s.nextWakeAt);
    } catch (e) {
      // The store itself failed. Keep the periodic pass; grants still carry native expiry where targets support it.
      this.o.log.error('reconcile pass failed', { reason, error: e instanceof Error ? e.message : String(e) });
      this.arm(new Date(this.o.clock().getTime() + 1000));
    }
  }

  private arm(at: Date | undefined): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.armedAt = undefined;
    if (this.stopped || !at) return;
    this.armedAt = at.getTime();
    // A few ms past the instant, so the pass sees the window as ended; never a hot loop.
    const delay = Math.min(MAX_TIMER_MS, Math.max(10, at.getTime() - this.o.clock().getTime() + 5));
    this.timer = setTimeout(() => void this.run('timer'), delay);
  }
}
