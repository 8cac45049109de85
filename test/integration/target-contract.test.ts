import fs from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import express from 'express';
import { HttpTarget } from '../../src/targets/http.js';
import { NftablesTarget } from '../../src/targets/nftables.js';
import { MemoryTarget } from '../helpers/memory-target.js';
import { Netns, netnsAvailable, skipOrFail } from '../helpers/netns.js';
import { tmpDir } from '../helpers/world.js';
import { deadlineSplit, sampleGrant, targetContract, type FailureMode } from './target-contract.js';

// Every target adapter, through the same behaviour, each against the real thing it drives.

targetContract('MemoryTarget (the engine tests\' fake)', async () => {
  const target = new MemoryTarget('mem', ['network']);
  return {
    target,
    makeGrant: (o) => sampleGrant('mem', o),
    // Its fault switch: the next calls fail, retryable (a 5xx) or not (a 400).
    failNext: (count, how) => {
      target.failNext = count;
      target.failRetryable = how !== 'bad-request';
    },
    failureModes: ['server-error', 'bad-request'],
    cleanup: async () => {},
  };
});

/**
 * An access gateway with a bearer credential, idempotent PUT/DELETE by grant key, and its own
 * expiry (entries past expiresAt are no longer listed). Its error pages echo the Authorization
 * header, as some debug pages do, so a target that quotes answers verbatim would leak it.
 */
async function gateway(secret: string): Promise<{ url: string; failNext(count: number, how: FailureMode): void; close(): Promise<void> }> {
  const entries = new Map<string, { key: string; expiresAt: string }>();
  const failures: FailureMode[] = [];
  const app = express();
  app.use(express.json());
  app.use((req, res, next) => {
    const mode = failures.shift();
    const echo = { error: mode, authorization: req.headers.authorization };
    if (mode === 'timeout') return void setTimeout(() => !res.headersSent && res.status(204).end(), 2_000);
    if (mode === 'rate-limited') return void res.status(429).set('Retry-After', '7').json(echo);
    if (mode === 'server-error') return void res.status(503).json(echo);
    if (mode === 'bad-request') return void res.status(400).json(echo);
    if (mode === 'forbidden') return void res.status(403).json(echo);
    if (req.headers.authorization !== `Bearer ${secret}`) return void res.status(401).json({ error: 'unauthorized' });
    next();
  });
  app.put('/v1/entries/:key', (req, res) => {
    const body = req.body as { key?: unknown; expiresAt?: unknown };
    if (body.key !== req.params.key || typeof body.expiresAt !== 'string') return void res.status(400).json({ error: 'key and expiresAt required' });
    entries.set(req.params.key, { key: req.params.key, expiresAt: body.expiresAt });
    res.json({ key: req.params.key });
  });
  app.delete('/v1/entries/:key', (req, res) => {
    res.status(entries.delete(req.params.key) ? 204 : 404).end();
  });
  app.get('/v1/entries', (_req, res) => {
    res.json({ items: [...entries.values()].filter((e) => Date.parse(e.expiresAt) > Date.now()) });
  });
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`,
    failNext: (count, how) => failures.push(...Array<FailureMode>(count).fill(how)),
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

targetContract('HttpTarget against a real HTTP gateway', async ({ secret }) => {
  const gw = await gateway(secret);
  const { target, expectTimeouts } = deadlineSplit((timeoutMs) => new HttpTarget({
    id: 'gw',
    baseUrl: gw.url,
    timeoutMs,
    nativeExpiry: true,
    headers: { Authorization: `Bearer ${secret}` },
    provision: {
      method: 'PUT',
      url: '/entries/{{entry.id}}',
      body: { key: '{{entry.id}}', expiresAt: '{{grant.validUntil}}', from: '{{resource.sourceAddress}}', to: '{{resource.address}}', port: '{{resource.port}}' },
    },
    revoke: { method: 'DELETE', url: '/entries/{{entry.id}}' },
    list: { method: 'GET', url: '/entries', itemsFrom: 'items', keyFrom: 'key', expiresFrom: 'expiresAt' },
  }));
  return {
    target,
    makeGrant: (o) => sampleGrant('gw', o),
    failNext: (count, how) => {
      if (how === 'timeout') expectTimeouts(count);
      gw.failNext(count, how);
    },
    cleanup: async () => {
      await target.close();
      await gw.close();
    },
  };
});

describe('nftables in a network namespace', () => {
  const TABLE = 'wogate_contract';
  let ns: Netns | undefined;
  let dir: string;

  before(async function () {
    const available = await netnsAvailable();
    if (!available.ok) skipOrFail(this, 'nftables target contract', available.why);
    ns = await Netns.create('fw');
    dir = tmpDir();
    // Stands in for nft: fails the way the control file says, the next N times, then is nft again.
    fs.writeFileSync(
      path.join(dir, 'nft'),
      `#!/bin/sh
f='${path.join(dir, 'fail')}'
if [ -s "$f" ]; then
  read n mode < "$f"
  if [ "$n" -gt 0 ]; then
    echo "$((n - 1)) $mode" > "$f"
    case "$mode" in
      timeout) exec sleep 30 ;;
      forbidden) echo 'Error: Could not process rule: Operation not permitted' >&2; exit 1 ;;
      *) echo 'Error: Could not process rule: Device or resource busy' >&2; exit 1 ;;
    esac
  fi
fi
exec nft "$@"
`,
      { mode: 0o755 },
    );
  });

  after(async () => {
    await ns?.destroy();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  targetContract('NftablesTarget', async () => {
    const netns = ns!;
    fs.rmSync(path.join(dir, 'fail'), { force: true });
    // nft is a process per call: only the call meant to hang (sleep 30) has the short deadline.
    const { target, expectTimeouts } = deadlineSplit((timeoutMs) => new NftablesTarget({ id: 'fw', table: TABLE, netns: netns.name, nft: path.join(dir, 'nft'), vendorSources: ['10.77.1.0/24'], timeoutMs }));
    return {
      target,
      makeGrant: (o) => sampleGrant('fw', o),
      failureModes: ['timeout', 'server-error', 'forbidden'],
      failNext: (count, how) => {
        if (how === 'timeout') expectTimeouts(count);
        fs.writeFileSync(path.join(dir, 'fail'), `${count} ${how}\n`);
      },
      cleanup: async () => {
        fs.rmSync(path.join(dir, 'fail'), { force: true });
        await netns.exec('nft', 'delete', 'table', 'inet', TABLE).catch(() => undefined);
      },
    };
  });
});
