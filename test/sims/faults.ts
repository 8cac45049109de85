import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Express, NextFunction, Request, RequestHandler, Response } from 'express';

/**
 * What a target simulator can be told to do to its next answers, for the reliability tests and
 * the shared target contract suite. The names match the contract's FailureMode, plus 'slow'
 * (answers, late) and 'error-in-200' (the product's "200 with an error inside", where it has one).
 */
export type SimFault = 'timeout' | 'rate-limited' | 'server-error' | 'bad-request' | 'forbidden' | 'slow' | 'error-in-200';

/** How the product spells an error: status and message in, what it sends out. */
export type ErrorAnswer = (res: Response, status: number, message: string) => void;

/**
 * Fault injection shared by every target simulator: a queue of faults consumed one per request,
 * an optional delay on every answer, and a 429 with Retry-After. Mount `middleware()` before the
 * product's routes (after its auth, if a fault should only hit authenticated calls).
 */
export class Faults {
  private readonly queue: SimFault[] = [];
  /** Every answer waits this long first (a slow appliance). */
  delayMs = 0;
  /** How long a 'timeout' fault holds the request before giving up on it. */
  hangMs = 30_000;
  /** How late a 'slow' fault answers. */
  slowMs = 1_500;
  /** Retry-After on a 429, in seconds. */
  retryAfterSeconds = 7;

  constructor(
    private readonly answer: ErrorAnswer,
    /** Sends the product's 200-with-an-error answer; omitted: the product has none, and 'error-in-200' is a 500. */
    private readonly errorIn200?: (res: Response) => void,
  ) {}

  failNext(count: number, how: SimFault): void {
    for (let i = 0; i < count; i++) this.queue.push(how);
  }

  clear(): void {
    this.queue.length = 0;
    this.delayMs = 0;
  }

  middleware(): RequestHandler {
    return (req: Request, res: Response, next: NextFunction) => {
      const run = () => {
        const fault = this.queue.shift();
        switch (fault) {
          case undefined:
            return next();
          case 'timeout': {
            const t = setTimeout(() => !res.headersSent && res.status(504).end(), this.hangMs);
            res.on('close', () => clearTimeout(t));
            return;
          }
          case 'slow':
            return void setTimeout(next, this.slowMs);
          case 'rate-limited':
            res.set('Retry-After', String(this.retryAfterSeconds));
            return this.answer(res, 429, 'Too many requests');
          case 'server-error':
            return this.answer(res, 503, 'Service temporarily unavailable');
          case 'bad-request':
            return this.answer(res, 400, 'Malformed request');
          case 'forbidden':
            return this.answer(res, 403, 'Permission denied');
          case 'error-in-200':
            return this.errorIn200 ? this.errorIn200(res) : this.answer(res, 500, 'Internal error');
        }
      };
      if (this.delayMs > 0) setTimeout(run, this.delayMs);
      else run();
    };
  }
}

/** Starts `app` on 127.0.0.1 on a free port; `close` ends open connections too (a hung request would hold it). */
export async function listen(app: Express): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
