// DEMO ONLY. Started when the config says demo.enabled: a simulated CMMS on loopback that sends a
// signed work order and later closes it, and a simulated access gateway that the demo's http
// target talks to. Nothing here is used when the demo is off.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import axios from 'axios';
import express from 'express';
import type { Config } from '../config/config.js';
import type { Logger } from '../log.js';
import { signWebhook, parseSecret } from '../sources/standard-webhooks.js';
import type { Runtime } from '../cli/runtime.js';

export interface Demo {
  /** Resolves when the simulated order has been sent and closed. */
  readonly done: Promise<void>;
  /** What the simulated gateway currently lets through, keyed by grant id. */
  readonly gatewayEntries: () => ReadonlyMap<string, unknown>;
  stop(): void;
  close(): Promise<void>;
}

/** The demo's order: two assets, one technician, a window that is open now. */
export function demoOrder(id: string, status: string, changedAt: Date, now: Date) {
  return {
    type: 'workorder.changed',
    timestamp: changedAt.toISOString(),
    data: {
      workOrder: {
        wonum: id,
        description: 'DEMO: calibrate chlorine analyser loop, inspect filter HMI',
        siteid: 'north-wtp',
        status,
        worktype: 'PM',
        vendor: { id: 'acme-controls' },
        technicians: [{ id: 'tech-jdoe' }],
        assets: [{ assetnum: 'PLC-CL2-01' }, { assetnum: 'HMI-FLT-01' }],
        schedstart: new Date(now.getTime() - 60_000).toISOString(),
        schedfinish: new Date(now.getTime() + 2 * 3_600_000).toISOString(),
        approvals: [{ by: 'ops-supervisor' }],
        changedate: changedAt.toISOString(),
      },
    },
  };
}

async function prepare(rt: Runtime): Promise<{ config: Config; run(daemonUrl: string): Promise<Demo> }> {
  const { config, log } = rt;
  const source = config.sources.find((s) => s.id === config.demo.source);
  if (!source || source.kind !== 'generic') throw new Error(`demo: source "${String(config.demo.source)}" must be a generic source`);
  // The demo source's secret is a file reference; make the secret on first run, readable by us only.
  const ref = source.webhook.secrets[0] ?? '';
  if (ref.startsWith('file:') && !fs.existsSync(ref.slice(5))) {
    fs.mkdirSync(path.dirname(ref.slice(5)), { recursive: true, mode: 0o700 });
    fs.writeFileSync(ref.slice(5), `whsec_${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
    log.info('demo: generated a webhook secret for the simulated CMMS', { file: ref.slice(5) });
  }
  const gateway = await startGateway(log);
  const patched: Config = {
    ...config,
    targets: config.targets.map((t) => (t.id === config.demo.target && t.kind === 'http' ? { ...t, http: { ...t.http, baseUrl: gateway.url } } : t)),
  };
  if (config.demo.cmms === 'maximo') return prepareMaximo(rt, patched, gateway);
  return {
    config: patched,
    async run(daemonUrl: string): Promise<Demo> {
      const secretText = fs.readFileSync(ref.slice(5), 'utf8').trim();
      const key = parseSecret(secretText);
      const timers: NodeJS.Timeout[] = [];
      const start = rt.clock();
      const id = `DEMO-${Date.now().toString(36).toUpperCase()}`;
      const send = async (status: string) => {
        const now = rt.clock();
        const body = JSON.stringify(demoOrder(id, status, now, start));
        const msgId = `msg_${randomBytes(12).toString('hex')}`;
        const ts = Math.floor(now.getTime() / 1000);
        const res = await axios.post(`${daemonUrl}/v1/hooks/${source.id}`, body, {
          headers: { 'content-type': 'application/json', 'webhook-id': msgId, 'webhook-timestamp': String(ts), 'webhook-signature': signWebhook(key, msgId, ts, body) },
          validateStatus: () => true,
        });
        log.info(`demo CMMS: sent work order ${id} with status ${status}; wogate answered ${res.status}`);
      };
      const done = new Promise<void>((resolve) => {
        timers.push(setTimeout(() => {
          void send('APPR').then(() => {
            timers.push(setTimeout(() => void send('CLOSE').then(() => {
              log.info('demo: finished. wogate keeps running and is ready for real webhooks (Ctrl-C to stop)');
              resolve();
            }, () => resolve()), config.demo.closeAfterMs));
          }, () => resolve());
        }, 1000));
      });
      return {
        done,
        gatewayEntries: () => gateway.entries,
        stop: () => timers.forEach(clearTimeout),
        close: () => gateway.close(),
      };
    },
  };
}

/**
 * The Maximo flavour: the Maximo simulator (test/sims, shipped in the build) holds the order;
 * its publish channel rings wogate's doorbell with basic auth, wogate re-reads the order through
 * the OSLC API, and the access trail lands in the order's worklog.
 */
async function prepareMaximo(rt: Runtime, config: Config, gateway: Awaited<ReturnType<typeof startGateway>>): Promise<{ config: Config; run(daemonUrl: string): Promise<Demo> }> {
  const { log } = rt;
  const { MaximoSim } = await import('../../test/sims/maximo.js');
  const sim = await MaximoSim.start();
  const auth = sim.hookAuth;
  const sourceId = 'demo-maximo';
  const withSource: Config = {
    ...config,
    sources: [
      ...config.sources,
      {
        id: sourceId,
        kind: 'maximo',
        trustAssets: false,
        // Demo values, not references: the simulator made them up a moment ago.
        options: { baseUrl: sim.url, apiKey: sim.apiKey, idFormat: 'wonum', webhook: auth.kind === 'basic' ? { basic: [{ username: auth.username, password: auth.password }] } : { header: { name: auth.name, secrets: [auth.secret] } } },
        poll: { incremental: '*/1 * * * *', fullResync: '*/10 * * * *', initialLookbackMs: 86_400_000, staleAfterMs: 1_800_000, failClosed: false, assets: false },
      },
    ],
  };
  log.info(`demo: Maximo simulator on ${sim.url}`);
  return {
    config: withSource,
    async run(daemonUrl: string): Promise<Demo> {
      const timers: NodeJS.Timeout[] = [];
      const id = String(4_200_000 + Math.floor(Math.random() * 99_999));
      const hook = `${daemonUrl}/v1/hooks/${sourceId}`;
      const ring = async (what: string) => log.info(`demo Maximo: ${what}; publish channel delivered work order ${id}, wogate answered ${await sim.notify(id, hook)}`);
      const done = new Promise<void>((resolve) => {
        timers.push(setTimeout(() => {
          const now = Date.now();
          sim.upsert({
            id, status: 'approved', vendorId: 'acme-controls', technicianIds: ['tech-jdoe'], assetIds: ['PLC-CL2-01', 'HMI-FLT-01'],
            start: new Date(now - 60_000), end: new Date(now + 2 * 3_600_000), type: 'corrective', site: 'north-wtp', approvers: ['OPS-SUPER'],
            title: 'DEMO: chlorinator PLC I/O card swap',
          });
          void ring('status APPR').then(() => {
            timers.push(setTimeout(() => {
              sim.change(id, { status: 'completed' });
              void ring('status COMP').then(() => {
                timers.push(setTimeout(() => {
                  for (const note of sim.notes(id)) log.info(`demo Maximo worklog of ${id}:\n${note}`);
                  log.info('demo: finished. wogate keeps running and is ready for real webhooks (Ctrl-C to stop)');
                  resolve();
                }, 3000));
              }, () => resolve());
            }, config.demo.closeAfterMs));
          }, () => resolve());
        }, 1000));
      });
      return {
        done,
        gatewayEntries: () => gateway.entries,
        stop: () => timers.forEach(clearTimeout),
        close: async () => {
          await gateway.close();
          await sim.close();
        },
      };
    },
  };
}

/** A stand-in for a remote-access gateway: remembers what it was told to open and logs it. */
async function startGateway(log: Logger): Promise<{ url: string; entries: Map<string, unknown>; close(): Promise<void> }> {
  const entries = new Map<string, unknown>();
  const app = express();
  app.use(express.json());
  app.put('/access/:key', (req, res) => {
    entries.set(String(req.params.key), req.body);
    log.info(`demo gateway: OPEN ${describe(req.body)}`);
    res.status(200).json({ id: req.params.key });
  });
  app.delete('/access/:key', (req, res) => {
    const had = entries.delete(String(req.params.key));
    log.info(`demo gateway: CLOSED ${String(req.params.key).slice(0, 12)}…${had ? '' : ' (was not open)'}`);
    res.status(had ? 204 : 404).end();
  });
  app.get('/access', (_req, res) => {
    res.json({ items: [...entries.entries()].map(([id, body]) => ({ id, ...(body as object) })) });
  });
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, entries, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

function describe(b: unknown): string {
  const x = (b ?? {}) as Record<string, unknown>;
  return `${String(x.technician)} ${String(x.from)} -> ${String(x.asset)} ${String(x.to)} until ${String(x.until)}`;
}

export const startDemo = { prepare };
