import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { makeRegister, type PolicySet, type Rule, type WorkOrder } from '../../src/domain/index.js';
import { canonicalId } from '../../src/domain/ids.js';

export function tmpDir(prefix = 'wogate-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export const register = makeRegister(
  [
    { id: 'PLC-1', class: 'PLC', criticality: 'critical', site: 'north', zone: 'process', endpoints: [{ address: '10.20.0.10', ports: [502, 44818], protocol: 'tcp' }] },
    { id: 'HMI-1', class: 'HMI', criticality: 'high', site: 'north', zone: 'process', endpoints: [{ address: '10.20.0.20', ports: [502], protocol: 'tcp' }] },
    { id: 'HIST-1', class: 'Historian', criticality: 'medium', site: 'north', zone: 'dmz', endpoints: [{ address: '10.20.1.5', ports: [443], protocol: 'tcp' }] },
  ],
  [
    { id: 'acme', technicians: [{ id: 'jdoe', address: '10.8.0.21' }, { id: 'asmith', address: '10.8.0.22' }] },
    { id: 'other', technicians: [{ id: 'bob' }] },
  ],
);

/** `register` as the register loader gives it: every id in canonical form (src/domain/ids.ts), as orders from a source name them. */
export const canonicalRegister = makeRegister(
  [...register.assets.values()].map((a) => ({ ...a, id: canonicalId(a.id, 'asset id') })),
  [...register.vendors.values()].map((v) => ({ ...v, id: canonicalId(v.id, 'vendor id'), technicians: v.technicians.map((t) => ({ ...t, id: canonicalId(t.id, 'technician id') })) })),
);

export function rule(over: Partial<Rule> = {}): Rule {
  return {
    id: 'plc-modbus',
    match: { assetClasses: ['PLC', 'HMI'] },
    require: { statuses: ['approved', 'in_progress'], minApprovals: 1, leadTimeMs: 0, graceMs: 0, maxDurationMs: 12 * 3_600_000 },
    grant: [{ type: 'network', target: 'fw', ports: [502] }],
    ...over,
  };
}

export function policySet(...rules: Rule[]): PolicySet {
  return { policies: [{ name: 'test', file: 'test.yaml', rules: rules.length ? rules : [rule()] }] };
}

export function order(over: Partial<WorkOrder> = {}, now = new Date()): WorkOrder {
  return {
    source: 'cmms',
    id: 'WO-1',
    status: 'approved',
    sourceStatus: 'APPR',
    vendorId: 'acme',
    technicianIds: ['jdoe'],
    assetIds: ['PLC-1', 'HMI-1'],
    window: { start: new Date(now.getTime() - 60_000), end: new Date(now.getTime() + 3_600_000) },
    type: 'planned',
    approvals: [{ by: 'supervisor' }],
    revision: '1',
    ...over,
  };
}
