import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';

export interface MetricsListener {
  readonly url: string;
  close(): Promise<void>;
}

/**
 * server.metrics: a plain-HTTP listener of its own that answers GET /metrics and nothing else, so
 * a scraper on the host (or a firewalled network) reads them while the main listener, which faces
 * vendors and CMMS webhooks, does not show them.
 */
export async function listenMetrics(metrics: Pick<Metrics, 'registry'>, at: { host: string; port: number }, log: Logger): Promise<MetricsListener> {
  const { registry } = metrics;
  const json = (res: http.ServerResponse, status: number, code: string, message: string) =>
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify({ error: { code, message } }));
  const server = http.createServer({ maxHeaderSize: 16 * 1024 }, (req, res) => {
    res.setHeader('x-content-type-options', 'nosniff');
    res.setHeader('cache-control', 'no-store');
    if ((req.url ?? '').split('?')[0] !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) return json(res, 404, 'NOT_FOUND', 'this listener serves GET /metrics only');
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(req.method === 'HEAD' ? undefined : text),
      (e: unknown) => {
        log.warn('metrics could not be collected', { error: e instanceof Error ? e.message : String(e) });
        json(res, 500, 'INTERNAL', 'metrics could not be collected');
      },
    );
  });
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(at.port, at.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://${at.host.includes(':') ? `[${at.host}]` : at.host}:${port}/metrics`;
  log.info(`metrics on ${url} (not on the main listener)`);
  return {
    url,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}
