import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import express from 'express';
import YAML from 'yaml';
import { serve, type Daemon } from '../../src/cli/serve.js';
import { silentLogger, type Logger } from '../../src/log.js';
import { parseSecret, signWebhook } from '../../src/sources/standard-webhooks.js';
import { tmpDir } from './world.js';

export { REPO } from './paths.js';
import { REPO } from './paths.js';

// The example config as parsed YAML: tests reach into it freely.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Cfg = Record<string, any>;

/** The example config with absolute paths into the repo, a temp store, demo off, and overrides. */
export function exampleConfig(dir: string, edit: (c: Cfg) => void = () => undefined): string {
  const c = YAML.parse(fs.readFileSync(path.join(REPO, 'config/wogate.example.yaml'), 'utf8')) as Cfg;
  c.store.path = path.join(dir, 'wogate.db');
  c.policies.dir = path.join(REPO, 'policies');
  c.register.assets = path.join(REPO, 'config/assets.example.yaml');
  c.register.vendors = path.join(REPO, 'config/vendors.example.yaml');
  c.server.port = 0;
  c.demo.enabled = false;
  edit(c);
  const file = path.join(dir, 'wogate.yaml');
  fs.writeFileSync(file, YAML.stringify(c));
  return file;
}

/** A stand-in remote system for the http target: records every request. */
export async function recordingGateway(): Promise<{ url: string; requests: { method: string; path: string; body: unknown }[]; open: Map<string, unknown>; close(): Promise<void> }> {
  const requests: { method: string; path: string; body: unknown }[] = [];
  const open = new Map<string, unknown>();
  const app = express();
  app.use(express.json());
  app.use((req, _res, next) => {
    requests.push({ method: req.method, path: req.path, body: req.body });
    next();
  });
  app.put('/access/:id', (req, res) => {
    open.set(String(req.params.id), req.body);
    res.json({ id: req.params.id });
  });
  app.delete('/access/:id', (req, res) => {
    res.status(open.delete(String(req.params.id)) ? 204 : 404).end();
  });
  app.get('/access', (_req, res) => {
    res.json({ items: [...open.keys()].map((id) => ({ id })) });
  });
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    open,
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

export interface TestDaemon {
  daemon: Daemon;
  dir: string;
  secret: string;
  gateway: Awaited<ReturnType<typeof recordingGateway>>;
  hook(body: unknown, opts?: { id?: string; timestamp?: number; secret?: string; source?: string; raw?: string; headers?: Record<string, string> }): Promise<Response>;
  stop(): Promise<void>;
}

/** A real daemon on loopback: example policies and registers, an http target against a recording gateway. */
export async function startDaemon(opts: { log?: Logger; edit?: (c: Cfg) => void; clock?: () => Date } = {}): Promise<TestDaemon> {
  const dir = tmpDir();
  const secret = `whsec_${randomBytes(32).toString('base64')}`;
  const gateway = await recordingGateway();
  const env = { ...process.env, TEST_HOOK_SECRET: secret };
  const file = exampleConfig(dir, (c) => {
    c.sources[0].webhook.secrets = ['env:TEST_HOOK_SECRET'];
    c.targets[0].http.baseUrl = gateway.url;
    opts.edit?.(c);
  });
  let daemon: Daemon;
  try {
    daemon = await serve({ configFile: file, env, log: opts.log ?? silentLogger, ...(opts.clock ? { clock: opts.clock } : {}) });
  } catch (e) {
    await gateway.close();
    fs.rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  const hook: TestDaemon['hook'] = async (body, o = {}) => {
    const raw = o.raw ?? JSON.stringify(body);
    const id = o.id ?? `msg_${randomBytes(8).toString('hex')}`;
    const ts = o.timestamp ?? Math.floor(Date.now() / 1000);
    return fetch(`${daemon.url}/v1/hooks/${o.source ?? 'demo-cmms'}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'webhook-id': id, 'webhook-timestamp': String(ts), 'webhook-signature': signWebhook(parseSecret(o.secret ?? secret), id, ts, raw), ...o.headers },
      body: raw,
    });
  };
  return {
    daemon,
    dir,
    secret,
    gateway,
    hook,
    async stop() {
      await daemon.stop();
      await gateway.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Waits until `check` is true, polling; fails with `what` after `ms`. */
export async function until(check: () => boolean | Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
