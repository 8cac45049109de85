import { ipKeyGenerator } from 'express-rate-limit';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';

/**
 * Refusals of callers that have not proven who they are (a hook whose signature does not verify,
 * a missing or bad bearer token, a page asked for without a session). Each is counted in
 * wogate_refused_total, but the audit chain gets one record per (address, kind, window) with a
 * count, first and last seen and a few sample reasons: otherwise anyone who can reach the port
 * could append to the chain as fast as the rate limits allow. Refusals of authenticated callers
 * stay individual records (their callers write them).
 */

/** Where the refusal happened; also the audit action family (hook.refused, auth.refused, ...). */
export type RefusalArea = 'hook' | 'auth' | 'portal' | 'staff' | 'http';

export interface Refusal {
  readonly area: RefusalArea;
  /** Client address as the app sees it (req.ip). IPv6 clients are grouped by /56, as the rate limits do. */
  readonly remote: string;
  /** The kind of refusal: an error code (HOOK_SIGNATURE_INVALID) or a refusal reason (expired, state_mismatch). */
  readonly kind: string;
  /** The error code answered, when `kind` is a finer reason (AUTH_INVALID for expired). */
  readonly code?: string;
  readonly status: number;
  /** One line saying why, kept as a sample; never the presented token or body. */
  readonly reason: string;
  readonly method: string;
  readonly path: string;
}

/** What the handlers see of the aggregator: record() never waits and never throws. */
export interface RefusalSink {
  record(r: Refusal): void;
}

export interface RefusalAuditor {
  append(e: { actor: string; action: string; subject: string; details: Record<string, unknown> }): Promise<unknown>;
}

export interface AggregatorDeps {
  readonly audit: RefusalAuditor;
  readonly log: Logger;
  readonly metrics: Pick<Metrics, 'refused'>;
  readonly clock: () => Date;
  /** Length of one aggregation window (default a minute, the rate limits' window). */
  readonly windowMs?: number;
  /** Most distinct (address, kind) pairs held at once; beyond, refusals are folded into one `remote:*` bucket per kind. */
  readonly maxBuckets?: number;
}

const SAMPLES = 5;
const DEFAULT_WINDOW_MS = 60_000;
const DEFAULT_MAX_BUCKETS = 10_000;

interface Bucket {
  readonly area: RefusalArea;
  readonly remote: string;
  readonly kind: string;
  readonly code: string | undefined;
  readonly status: number;
  readonly first: Date;
  last: Date;
  count: number;
  readonly samples: { reason: string; method: string; path: string }[];
}

export const AUDIT_ACTION: Record<RefusalArea, string> = { hook: 'hook.refused', auth: 'auth.refused', portal: 'portal.refused', staff: 'staff.refused', http: 'http.refused' };

export class RefusalAggregator implements RefusalSink {
  private readonly buckets = new Map<string, Bucket>();
  private readonly windowMs: number;
  private readonly maxBuckets: number;
  private timer: NodeJS.Timeout | undefined;
  private pending: Promise<unknown> = Promise.resolve();

  constructor(private readonly d: AggregatorDeps) {
    this.windowMs = d.windowMs ?? DEFAULT_WINDOW_MS;
    this.maxBuckets = d.maxBuckets ?? DEFAULT_MAX_BUCKETS;
  }

  /** Closes windows on a timer too, so a burst that stops is still written within about a window. */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.flush(false), Math.max(1_000, Math.floor(this.windowMs / 4)));
    this.timer.unref();
  }

  record(r: Refusal): void {
    this.d.metrics.refused.inc({ area: r.area, kind: r.kind });
    const now = this.d.clock();
    const remote = addressKey(r.remote);
    let key = `${r.area}\0${r.kind}\0${remote}`;
    let b = this.buckets.get(key);
    if (b && now.getTime() - b.first.getTime() >= this.windowMs) {
      this.write([b]);
      this.buckets.delete(key);
      b = undefined;
    }
    if (!b && this.buckets.size >= this.maxBuckets) {
      // Many addresses at once (a spread-out scan): one record per kind says so, memory stays bounded.
      key = `${r.area}\0${r.kind}\0*`;
      b = this.buckets.get(key);
    }
    if (!b) {
      b = { area: r.area, remote: key.endsWith('\0*') ? '*' : remote, kind: r.kind, code: r.code, status: r.status, first: now, last: now, count: 0, samples: [] };
      this.buckets.set(key, b);
      // The first of each window is logged; the rest only counted, so the log can't be flooded either.
      this.d.log.warn(`${r.area} refused (unauthenticated; further ones from this address are counted and audited once a window)`, { remote: b.remote, kind: r.kind, status: r.status, reason: r.reason.slice(0, 200), method: r.method, path: r.path.slice(0, 200) });
    }
    b.count++;
    b.last = now;
    const sample = { reason: r.reason.slice(0, 200), method: r.method, path: r.path.slice(0, 200) };
    if (b.samples.length < SAMPLES && !b.samples.some((s) => s.reason === sample.reason && s.path === sample.path)) b.samples.push(sample);
  }

  /** Writes the windows that have closed, or all of them (`all`, at shutdown). Resolves when they are in the chain. */
  flush(all = true): Promise<void> {
    const now = this.d.clock().getTime();
    const due: Bucket[] = [];
    for (const [key, b] of this.buckets) {
      if (all || now - b.first.getTime() >= this.windowMs) {
        due.push(b);
        this.buckets.delete(key);
      }
    }
    this.write(due);
    return this.pending.then(() => undefined);
  }

  /** Flushes everything and stops the timer. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.flush(true);
  }

  private write(buckets: readonly Bucket[]): void {
    for (const b of buckets) {
      const entry = {
        actor: `remote:${b.remote}`,
        action: AUDIT_ACTION[b.area],
        subject: `${b.area}:${b.kind}`,
        details: {
          aggregated: true, status: b.status,
          // The fields the individual records carry, so a search by code or reason finds both.
          ...(b.code !== undefined || b.area === 'hook' ? { code: b.code ?? b.kind } : {}),
          ...(b.area === 'hook' ? {} : { reason: b.kind }),
          count: b.count, firstSeen: b.first.toISOString(), lastSeen: b.last.toISOString(), windowSeconds: this.windowMs / 1000, samples: b.samples,
        },
      };
      // Chained one after another, in the order the windows closed.
      this.pending = this.pending.then(() => this.d.audit.append(entry)).catch((e: unknown) => this.d.log.error('audit of aggregated refusals failed', { area: b.area, kind: b.kind, count: b.count, error: e instanceof Error ? e.message : String(e) }));
    }
  }
}

/** The rate limits' key: an IPv4 address as is, an IPv6 one by its /56 (one customer's network). */
function addressKey(remote: string): string {
  try {
    return ipKeyGenerator(remote, 56);
  } catch {
    return remote;
  }
}
