export interface BackoffOptions {
  readonly baseMs: number;
  readonly maxMs: number;
}

/**
 * Capped exponential backoff with jitter: attempt 1 waits about base, each further attempt
 * doubles, never beyond max; the wait is drawn from [d/2, d] so that retries against one
 * struggling target spread out instead of arriving together.
 */
export function backoffDelay(attempt: number, opts: BackoffOptions, random: () => number): number {
  const exp = Math.min(opts.maxMs, opts.baseMs * 2 ** Math.max(0, Math.min(attempt - 1, 30)));
  return Math.round(exp / 2 + (exp / 2) * random());
}
