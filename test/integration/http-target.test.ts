import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import express from 'express';
import { silentLogger } from '../../src/log.js';
import { HttpTarget } from '../../src/targets/http.js';
import type { TargetGrant } from '../../src/targets/target.js';

interface Seen {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
}

/** A small access gateway: opens and closes entries, remembering every request it was sent. */
async function gateway(): Promise<{ url: string; seen: Seen[]; open: Map<string, unknown>; close(): Promise<void> }> {
  const seen: Seen[] = [];
  const open = new Map<string, unknown>();
  const app = express();
  app.use(express.json());
  app.use((req, _res, next) => {
    seen.push({ method: req.method, path: req.path, headers: req.headers, body: req.body });
    next();
  });
  app.post('/api/v2/sessions', (req, res) => {
    const id = `sess-${open.size + 1}`;
    open.set(id, req.body);
    res.status(201).json({ session: { id } });
  });
  app.delete('/api/v2/sessions/:id', (req, res) => {
    res.status(open.delete(req.params.id) ? 204 : 404).end();
  });
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/v2`;
  return { url, seen, open, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

describe('integration: http target against a real HTTP server', () => {
  it('provisions with the templated JSON body and headers, then revokes by the returned id, idempotently', async () => {
    const gw = await gateway();
    const target = new HttpTarget({
      id: 'gw',
      baseUrl: gw.url,
      headers: { Authorization: 'Bearer integration-token' },
      provision: {
        method: 'POST',
        url: '/sessions',
        headers: { 'X-Work-Order': '{{grant.orderId}}' },
        body: {
          user: '{{grant.vendorId}}/{{grant.technicianId}}',
          from: '{{resource.sourceAddress}}',
          to: { host: '{{resource.address}}', port: '{{resource.port}}', proto: '{{resource.protocol}}' },
          expiresAt: '{{grant.validUntil}}',
          ttlSeconds: '{{grant.ttlSeconds}}',
          reference: '{{grant.key}}',
        },
        refFrom: 'session.id',
      },
      revoke: { method: 'DELETE', url: '/sessions/{{ref.id}}', headers: { 'X-Work-Order': '{{grant.orderId}}' } },
    });
    const grant: TargetGrant = {
      id: 'g-1', key: 'cmms:WO 7|jdoe|gw|net:10.8.0.21>10.20.0.10:502/tcp', orderKey: 'cmms:WO 7', source: 'cmms', orderId: 'WO 7',
      vendorId: 'acme', technicianId: 'jdoe', assetId: 'PLC-1', targetId: 'gw',
      resource: { kind: 'network', sourceAddress: '10.8.0.21', address: '10.20.0.10', port: 502, protocol: 'tcp' },
      validFrom: new Date('2026-11-22T09:00:00Z'), validUntil: new Date('2026-11-22T11:00:00Z'),
    };
    const ctx = { now: new Date('2026-11-22T10:30:00Z'), log: silentLogger };
    try {
      const ref = await target.provision(grant, ctx);
      expect(ref).to.deep.equal({ id: 'sess-1' });
      expect(gw.open.has('sess-1')).to.equal(true);

      await target.revoke(grant, ref, ctx);
      expect(gw.open.size).to.equal(0);
      // Gone already: the gateway answers 404, which still counts as revoked.
      await target.revoke(grant, ref, ctx);

      expect(gw.seen.map((s) => `${s.method} ${s.path}`)).to.deep.equal([
        'POST /api/v2/sessions', 'DELETE /api/v2/sessions/sess-1', 'DELETE /api/v2/sessions/sess-1',
      ]);
      const [post] = gw.seen;
      expect(post?.headers).to.include({ authorization: 'Bearer integration-token', 'x-work-order': 'WO 7', 'content-type': 'application/json' });
      expect(post?.body).to.deep.equal({
        user: 'acme/jdoe',
        from: '10.8.0.21',
        to: { host: '10.20.0.10', port: 502, proto: 'tcp' },
        expiresAt: '2026-11-22T11:00:00.000Z',
        ttlSeconds: 1800,
        reference: grant.key,
      });
      expect(gw.seen[1]?.headers).to.include({ authorization: 'Bearer integration-token', 'x-work-order': 'WO 7' });
    } finally {
      await target.close();
      await gw.close();
    }
  });
});
