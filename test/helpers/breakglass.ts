import fs from 'node:fs';
import { expect } from 'chai';
import { createToken } from '../../src/api/tokens.js';
import { serve, type Daemon } from '../../src/cli/serve.js';
import { loadConfig, type Config } from '../../src/config/config.js';
import type { BreakGlassRequest } from '../../src/domain/breakglass.js';
import { silentLogger } from '../../src/log.js';
import type { AuditRecord } from '../../src/store/store.js';
import { exampleConfig, recordingGateway } from './daemon.js';
import { tmpDir } from './world.js';

export const BREAK_GLASS_JUSTIFICATION = 'Chlorinator 2 PLC faulted at 07:40; dosing is on manual and the vendor must reload logic.';

/** A request the example registers and policy accept: acme-controls' technician on the chlorinator PLC. */
export const BREAK_GLASS_BODY = {
  vendorId: 'acme-controls', technicianIds: ['tech-jdoe'], assetIds: ['PLC-CL2-01'], justification: BREAK_GLASS_JUSTIFICATION, durationMinutes: 600,
};

export interface BreakGlassAnswer {
  readonly status: number;
  readonly body: { request?: BreakGlassRequest; requests?: (BreakGlassRequest & { reviewOverdue: boolean })[]; error?: { code: string; message: string } };
}

export interface BreakGlassDaemon {
  readonly daemon: Daemon;
  /** Two operators' wgt_ tokens (scopes breakglass and grants:read), owned by the persons alice and bob: alice asks, bob approves. */
  readonly tokens: { readonly alice: string; readonly bob: string };
  call(token: string, method: string, path: string, body?: unknown): Promise<BreakGlassAnswer>;
  /** alice requests `body`, bob approves it; returns the request's id. */
  requestApproved(body?: unknown): Promise<string>;
  stored(id: string): Promise<BreakGlassRequest>;
  audit(): Promise<AuditRecord[]>;
  stop(): Promise<void>;
}

// The example config as parsed YAML.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Cfg = Record<string, any>;

/**
 * A real daemon (SQLite, the example policies and registers, the http target against a recording
 * gateway) with break-glass set up by `edit` (c.breakGlass, its review source), driven through the
 * admin API. `env` holds the secrets `edit` refers to.
 */
export async function startBreakGlassDaemon(o: { edit: (c: Cfg) => void; env?: Record<string, string>; clock?: () => Date }): Promise<BreakGlassDaemon> {
  const dir = tmpDir();
  const gateway = await recordingGateway();
  const file = exampleConfig(dir, (c) => {
    c.sources[0].webhook.secrets = ['env:TEST_HOOK_SECRET'];
    c.targets[0].http.baseUrl = gateway.url;
    o.edit(c);
  });
  const env = { ...process.env, TEST_HOOK_SECRET: `whsec_${Buffer.alloc(32, 7).toString('base64')}`, ...o.env };
  let daemon: Daemon;
  try {
    daemon = await serve({ configFile: file, env, log: silentLogger, ...(o.clock ? { clock: o.clock } : {}) });
  } catch (e) {
    await gateway.close();
    fs.rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  const now = new Date();
  const tokens = {
    alice: (await createToken(daemon.runtime.store, 'alice', ['breakglass', 'grants:read'], now, { owner: 'alice' })).token,
    bob: (await createToken(daemon.runtime.store, 'bob', ['breakglass', 'grants:read'], now, { owner: 'bob' })).token,
  };
  const call: BreakGlassDaemon['call'] = async (token, method, path, body) => {
    const res = await fetch(`${daemon.url}/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : {}) as BreakGlassAnswer['body'] };
  };
  return {
    daemon,
    tokens,
    call,
    async requestApproved(body = BREAK_GLASS_BODY) {
      const asked = await call(tokens.alice, 'POST', '/break-glass', body);
      expect(asked.status, JSON.stringify(asked.body)).to.equal(201);
      const id = (asked.body.request as BreakGlassRequest).id;
      const approved = await call(tokens.bob, 'POST', `/break-glass/${id}/approve`);
      expect(approved.status, JSON.stringify(approved.body)).to.equal(200);
      return id;
    },
    async stored(id) {
      return (await daemon.runtime.store.getBreakGlass(id)) as BreakGlassRequest;
    },
    audit: () => daemon.runtime.store.readAudit(0, 10_000),
    async stop() {
      await daemon.stop();
      await gateway.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Loads the example config with `source` added and made breakGlass.reviewSource (plus `breakGlass` settings). */
export function loadWithReviewSource(source: Cfg & { id: string }, breakGlass: Cfg = {}): Config {
  const dir = tmpDir();
  try {
    return loadConfig(exampleConfig(dir, (c) => {
      c.sources.push(source);
      c.breakGlass = { maxDuration: '4h', reviewDue: '48h', reviewSource: source.id, ...breakGlass };
    }), { ...process.env, TEST_HOOK_SECRET: 'unused' });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export { configRefusal } from './refusal.js';
