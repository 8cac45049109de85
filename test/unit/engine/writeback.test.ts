import { expect } from 'chai';
import type { AuditLog } from '../../../src/audit/audit.js';
import type { Grant, Resource } from '../../../src/domain/index.js';
import { WriteBack, type WriteBackDetail } from '../../../src/engine/writeback.js';
import { silentLogger } from '../../../src/log.js';
import { createMetrics } from '../../../src/metrics.js';
import type { Source } from '../../../src/sources/source.js';
import { FakeCmms } from '../../helpers/fake-cmms.js';

const RESOURCES: readonly Resource[] = [
  { kind: 'network', sourceAddress: '10.8.0.21', address: '10.20.0.10', port: 502, protocol: 'tcp' },
  { kind: 'group', account: 'uid=jdoe,ou=vendors,dc=plant,dc=example', group: 'cn=ot-vpn,ou=groups,dc=plant,dc=example' },
  { kind: 'pam', account: 'acme.jdoe', safe: 'OT-PLC-Admins' },
  { kind: 'badge', badge: '4711042', accessLevel: 'North WTP chlorine room' },
  { kind: 'certificate', commonName: 'jdoe.acme-controls' },
];

function grant(resource: Resource, i: number): Grant {
  const at = new Date('2026-11-22T10:00:00Z');
  return {
    id: `g${i}`, key: `k${i}`, orderKey: 'cmms/WO-1', source: 'cmms', orderId: 'WO-1', vendorId: 'acme', technicianId: 'jdoe', assetId: 'PLC-1',
    targetId: `t-${resource.kind}`, resource, validFrom: at, validUntil: new Date(at.getTime() + 3_600_000), rule: 'p/r', capped: false,
    state: 'active', attempts: 0, createdAt: at, updatedAt: at,
  };
}

async function trail(detail?: WriteBackDetail): Promise<string> {
  const cmms = new FakeCmms();
  const source = { id: 'cmms', kind: 'fake', maxBodyBytes: 1024, api: cmms } as unknown as Source;
  const audit = { append: async () => undefined } as unknown as AuditLog;
  const wb = new WriteBack({ sources: new Map([['cmms', source]]), audit, log: silentLogger, metrics: createMetrics(), random: () => 0, ...(detail ? { detail } : {}) });
  RESOURCES.forEach((r, i) => wb.record(grant(r, i), 'provisioned'));
  await wb.flush();
  return (cmms.notes.get('WO-1') ?? []).join('\n');
}

describe('write-back: the access trail on the work order', () => {
  it('names the technician, asset, target, kind of access and window, and no address, DN, badge number or account by default', async () => {
    const note = await trail();
    expect(note).to.include('access GRANTED: jdoe -> PLC-1 (network access) on t-network, 2026-11-22T10:00:00.000Z to 2026-11-22T11:00:00.000Z');
    expect(note).to.include('(directory group membership) on t-group').and.include('(badge access level) on t-badge').and.include('(client certificate) on t-certificate');
    expect(note).not.to.match(/\b\d{1,3}(\.\d{1,3}){3}\b/);
    expect(note).not.to.match(/(uid|cn|ou|dc)=/i);
    for (const secretish of ['4711042', 'acme.jdoe', 'OT-PLC-Admins', 'jdoe.acme-controls', 'chlorine room']) expect(note).not.to.include(secretish);
  });

  it('shows the resource itself with detail: full', async () => {
    const note = await trail('full');
    expect(note).to.include('10.8.0.21 -> 10.20.0.10:502/tcp').and.include('cn=ot-vpn,ou=groups').and.include('badge 4711042').and.include('account acme.jdoe in safe OT-PLC-Admins');
  });
});
