import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { createToken } from '../../src/api/tokens.js';
import type { Denial, Evaluation } from '../../src/domain/index.js';
import { exampleConfig, REPO, startDaemon, until, type TestDaemon } from '../helpers/daemon.js';
import { tmpDir } from '../helpers/world.js';

/**
 * What a source and an approval may authorise, through the real route: a daemon on loopback gets
 * Standard Webhooks signed orders, the engine provisions on the http target, and /v1/explain says why.
 */

const H = 3_600_000;

interface Spec {
  status?: string;
  type?: string;
  vendor?: string;
  technicians?: string[];
  assets?: string[];
  approvals?: string[];
  end?: Date;
  rev: number;
}

// One fixed start, so windows only move when a test moves them.
const START = new Date(Date.now() - 60_000);

function payload(id: string, s: Spec) {
  return {
    type: 'workorder.changed',
    timestamp: new Date().toISOString(),
    data: {
      workOrder: {
        wonum: id, siteid: 'north-wtp', status: s.status ?? 'APPR', worktype: s.type ?? 'PM', vendor: { id: s.vendor ?? 'acme-controls' },
        technicians: (s.technicians ?? ['tech-jdoe']).map((x) => ({ id: x })),
        assets: (s.assets ?? ['PLC-CL2-01']).map((a) => ({ assetnum: a })),
        schedstart: START.toISOString(),
        schedfinish: (s.end ?? new Date(START.getTime() + 2 * H)).toISOString(),
        approvals: (s.approvals ?? ['ops-supervisor']).map((by) => ({ by })),
        // The revision: later revisions carry later change dates.
        changedate: new Date(START.getTime() + s.rev * 1000).toISOString(),
      },
    },
  };
}

async function send(t: TestDaemon, id: string, s: Spec, source = 'demo-cmms'): Promise<void> {
  const res = await t.hook(payload(id, s), { source });
  expect(res.status).to.equal(202);
  const revision = new Date(START.getTime() + s.rev * 1000).toISOString();
  await until(async () => (await t.daemon.runtime.store.getOrder(source, id))?.revision === revision, `${source}/${id} revision ${s.rev} stored`);
  // The level-triggered pass this revision asked for has run once this one settles.
  await t.daemon.reconciler.reconcile([`${source}/${id}`]);
}

async function explain(t: TestDaemon, orderRef: string): Promise<Evaluation & { denials: Denial[] }> {
  const { token } = await createToken(t.daemon.runtime.store, 'test', ['explain'], new Date());
  const res = await fetch(`${t.daemon.url}/v1/explain?order=${encodeURIComponent(orderRef)}`, { headers: { authorization: `Bearer ${token}` } });
  expect(res.status).to.equal(200);
  return (await res.json()) as Evaluation & { denials: Denial[] };
}

async function active(t: TestDaemon, orderRef: string) {
  return t.daemon.runtime.store.listGrants({ orderKey: orderRef, states: ['pending', 'active'] });
}

describe('what a source and an approval may authorise, through a real daemon', function () {
  this.timeout(60_000);
  let t: TestDaemon | undefined;
  let dir: string | undefined;
  afterEach(async () => {
    await t?.stop();
    t = undefined;
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  describe('approvals (emergency work on a critical PLC: one operations supervisor and one security lead)', () => {
    beforeEach(async () => {
      dir = tmpDir();
      const policies = path.join(dir, 'policies');
      fs.mkdirSync(policies);
      const shipped = fs.readFileSync(path.join(REPO, 'policies/plc-maintenance.yaml'), 'utf8');
      const withRoles = shipped.replace('# approverRoles: [operations-supervisor, security-lead]', 'approverRoles: [operations-supervisor, security-lead]');
      expect(withRoles).to.not.equal(shipped);
      fs.writeFileSync(path.join(policies, 'plc-maintenance.yaml'), withRoles);
      // The approvers register knows the technician under an alias, too.
      const approvers = fs.readFileSync(path.join(REPO, 'config/approvers.example.yaml'), 'utf8') + '\n  - id: jane.doe\n    roles: [security-lead]\n    aliases: [tech-jdoe]\n';
      fs.writeFileSync(path.join(dir, 'approvers.yaml'), approvers);
      t = await startDaemon({
        edit: (c) => {
          c.policies.dir = policies;
          c.register.approvers = path.join(dir as string, 'approvers.yaml');
        },
      });
    });

    it('denies an order approved by its own technician and one supervisor, naming who was not counted', async () => {
      const d = t as TestDaemon;
      await send(d, 'WO-E1', { type: 'EM', approvals: ['TECH-JDOE', 'ops.lee'], rev: 1 });
      expect(await active(d, 'demo-cmms/WO-E1')).to.deep.equal([]);
      const ev = await explain(d, 'demo-cmms/WO-E1');
      expect(ev.grants).to.deep.equal([]);
      expect(ev.denials.map((x) => x.code)).to.deep.equal(['INSUFFICIENT_APPROVALS']);
      expect(ev.denials[0]?.reason).to.include("tech-jdoe (jane.doe): one of the order's own technicians").and.include('no distinct approver for role(s) security-lead');
      expect(d.gateway.open.size).to.equal(0);
    });

    it('holds a later end that one fresh approval would wave through: re-approving takes a supervisor and a security lead again', async () => {
      const d = t as TestDaemon;
      const key = 'demo-cmms/WO-E5';
      const end1 = new Date(START.getTime() + 2 * H);
      const end2 = new Date(START.getTime() + 6 * H);
      await send(d, 'WO-E5', { type: 'EM', approvals: ['ops.lee', 'sec.novak'], end: end1, rev: 1 });
      await until(async () => (await d.daemon.runtime.store.listGrants({ orderKey: key, states: ['active'] })).length === 1, 'the emergency grant active');
      const approvedEnd = (await active(d, key))[0]?.validUntil.getTime();
      // A CMMS account moves the end later and adds one approval: one person, where a new order needs two roles.
      await send(d, 'WO-E5', { type: 'EM', approvals: ['ops.lee', 'sec.novak', 'ops.okafor'], end: end2, rev: 2 });
      expect((await active(d, key)).map((g) => g.validUntil.getTime()), 'the approved end stays').to.deep.equal([approvedEnd]);
      // A fresh supervisor and a fresh security lead approve it again: the later end applies.
      await send(d, 'WO-E5', { type: 'EM', approvals: ['ops.lee', 'sec.novak', 'ops.okafor', 'sec.ibarra'], end: end2, rev: 3 });
      await until(async () => (await active(d, key)).every((g) => g.validUntil.getTime() > (approvedEnd ?? 0)), 'the later end applied');
    });

    it('grants an order approved by a supervisor and a security lead', async () => {
      const d = t as TestDaemon;
      await send(d, 'WO-E2', { type: 'EM', approvals: ['MLEE', 'sec.novak'], rev: 1 });
      await until(async () => (await d.daemon.runtime.store.listGrants({ orderKey: 'demo-cmms/WO-E2', states: ['active'] })).length === 1, 'the emergency grant active');
      expect(d.gateway.open.size).to.equal(1);
    });

    it('denies an order approved by two supervisors when the rule needs one of each role', async () => {
      const d = t as TestDaemon;
      await send(d, 'WO-E3', { type: 'EM', approvals: ['ops.lee', 'ops.okafor'], rev: 1 });
      expect(await active(d, 'demo-cmms/WO-E3')).to.deep.equal([]);
      const ev = await explain(d, 'demo-cmms/WO-E3');
      expect(ev.denials.map((x) => x.code)).to.deep.equal(['INSUFFICIENT_APPROVALS']);
      expect(ev.denials[0]?.reason).to.include('2 distinct approval(s) count (ops.lee, ops.okafor)').and.include('security-lead');
    });
  });

  describe('sources', () => {
    beforeEach(async () => {
      t = await startDaemon({
        edit: (c) => {
          c.sources[0].authorises = { sites: ['north-wtp'], vendors: ['acme-controls'] };
          // Source B: another signed generic source, for the south reservoir's telemetry vendor only.
          c.sources.push({ ...structuredClone(c.sources[0]), id: 'contractor-hub', authorises: { sites: ['south-reservoir'], vendors: ['hydro-analytics'] } });
        },
      });
    });

    it('denies an order from source B for a vendor and site only source A is authorised for, and explains why', async () => {
      const d = t as TestDaemon;
      await send(d, 'WO-X1', { rev: 1 }, 'contractor-hub');
      expect(await active(d, 'contractor-hub/WO-X1')).to.deep.equal([]);
      const ev = await explain(d, 'contractor-hub/WO-X1');
      expect(ev.grants).to.deep.equal([]);
      expect(ev.denials.map((x) => x.code)).to.deep.equal(['SOURCE_NOT_AUTHORISED']);
      expect(ev.denials[0]?.reason).to.include('source "contractor-hub" is not authorised for vendor "acme-controls"');
      expect(d.gateway.requests).to.have.length(0);

      // The same order from source A opens access.
      await send(d, 'WO-X1', { rev: 1 });
      await until(async () => (await d.daemon.runtime.store.listGrants({ orderKey: 'demo-cmms/WO-X1', states: ['active'] })).length === 1, 'source A\'s grant active');
    });
  });

  describe('assets known only from a CMMS asset sync', () => {
    // As a source's asset listing hands it over: ids already in canonical form (src/sources/canonical-order.ts).
    const synced = { id: 'plc-new-07', name: 'New dosing PLC', class: 'PLC', criticality: 'high' as const, site: 'north-wtp', zone: 'process-control', endpoints: [{ address: '10.20.30.77', ports: [502], protocol: 'tcp' as const }] };

    for (const trustAssets of [false, true]) {
      it(trustAssets ? 'grant access when the source that synced them is trusted for assets' : 'grant nothing (ASSET_UNTRUSTED) while the source that synced them is not trusted for assets', async () => {
        t = await startDaemon({ edit: (c) => { c.sources[0].trustAssets = trustAssets; } });
        const d = t;
        // The path a poller's asset resync takes.
        await d.daemon.runtime.setSourceAssets('demo-cmms', [synced]);
        await send(d, 'WO-A1', { assets: ['PLC-NEW-07', 'PLC-CL2-01'], rev: 1 });
        const ev = await explain(d, 'demo-cmms/WO-A1');
        if (trustAssets) {
          expect(ev.grants.map((g) => g.assetId).sort()).to.deep.equal(['plc-cl2-01', 'plc-new-07']);
        } else {
          expect(ev.grants.map((g) => g.assetId)).to.deep.equal(['plc-cl2-01']);
          expect(ev.denials.map((x) => [x.assetId, x.code])).to.deep.equal([['plc-new-07', 'ASSET_UNTRUSTED']]);
          expect(ev.denials[0]?.reason).to.include('known only from the asset sync of "demo-cmms"');
        }
        await until(async () => (await d.daemon.runtime.store.listGrants({ orderKey: 'demo-cmms/WO-A1', states: ['active'] })).length === (trustAssets ? 2 : 1), 'the grants active');
      });
    }
  });

  describe('scope widened after approval', () => {
    beforeEach(async () => {
      t = await startDaemon();
    });

    it('holds additions and a later end until the order is approved again; narrowing applies at once', async () => {
      const d = t as TestDaemon;
      const key = 'demo-cmms/WO-S1';
      const end1 = new Date(START.getTime() + 2 * H);
      const end2 = new Date(START.getTime() + 5 * H);
      const grace = 15 * 60_000;
      await send(d, 'WO-S1', { assets: ['PLC-CL2-01'], end: end1, rev: 1 });
      await until(async () => (await d.daemon.runtime.store.listGrants({ orderKey: key, states: ['active'] })).length === 1, 'PLC grant active');

      // Revision 2 adds the HMI and moves the end later, with no new approval.
      await send(d, 'WO-S1', { assets: ['PLC-CL2-01', 'HMI-FLT-01'], end: end2, rev: 2 });
      let live = await active(d, key);
      expect(live.map((g) => [g.assetId, g.validUntil.getTime()])).to.deep.equal([['plc-cl2-01', end1.getTime() + grace]]);
      const ev = await explain(d, key);
      expect(ev.denials.map((x) => [x.assetId, x.code])).to.deep.equal([['hmi-flt-01', 'SCOPE_WIDENED_AFTER_APPROVAL']]);
      expect(ev.denials[0]?.reason).to.include('asset "hmi-flt-01" was added after the order was approved');

      // The technician approving their own wider order is no new approval.
      await send(d, 'WO-S1', { assets: ['PLC-CL2-01', 'HMI-FLT-01'], end: end2, approvals: ['ops-supervisor', 'tech-jdoe'], rev: 3 });
      expect((await explain(d, key)).denials.map((x) => [x.assetId, x.code])).to.deep.equal([['hmi-flt-01', 'SCOPE_WIDENED_AFTER_APPROVAL']]);

      // Revision 4 drops the PLC: its access ends at once.
      await send(d, 'WO-S1', { assets: ['HMI-FLT-01'], end: end2, rev: 4 });
      await until(async () => (await active(d, key)).length === 0, 'PLC grant revoked');
      expect(d.gateway.open.size).to.equal(0);

      // Sent back for approval and approved again: the HMI is granted, to the new end.
      await send(d, 'WO-S1', { status: 'WAPPR', assets: ['HMI-FLT-01'], end: end2, rev: 5 });
      await send(d, 'WO-S1', { assets: ['HMI-FLT-01'], end: end2, rev: 6 });
      await until(async () => (await d.daemon.runtime.store.listGrants({ orderKey: key, states: ['active'] })).length === 1, 'HMI grant active');
      live = await active(d, key);
      expect(live.map((g) => [g.assetId, g.validUntil.getTime()])).to.deep.equal([['hmi-flt-01', end2.getTime() + grace]]);
    });
  });

  describe('an approved order moved to another vendor', () => {
    beforeEach(async () => {
      dir = tmpDir();
      // Technician ids are unique only within a vendor: hydro-analytics has a tech-jdoe of its own.
      const vendors = fs.readFileSync(path.join(REPO, 'config/vendors.example.yaml'), 'utf8').replace('      - id: tech-mkeller', '      - id: tech-jdoe\n        address: 10.8.0.99\n      - id: tech-mkeller');
      fs.writeFileSync(path.join(dir, 'vendors.yaml'), vendors);
      // Both vendors do PLC work here, so only the approved scope stands between the two.
      const policies = path.join(dir, 'policies');
      fs.mkdirSync(policies);
      fs.writeFileSync(path.join(policies, 'plc-maintenance.yaml'), fs.readFileSync(path.join(REPO, 'policies/plc-maintenance.yaml'), 'utf8').replaceAll('vendors: [acme-controls]', 'vendors: [acme-controls, hydro-analytics]'));
      t = await startDaemon({
        edit: (c) => {
          c.policies.dir = policies;
          c.register.vendors = path.join(dir as string, 'vendors.yaml');
          if (c.portal?.oidc) c.portal.oidc.vendorClaim = 'vendor';
        },
      });
    });

    it('gives the other vendor\'s technician of the same id nothing until the order is approved again', async () => {
      const d = t as TestDaemon;
      const key = 'demo-cmms/WO-S2';
      await send(d, 'WO-S2', { assets: ['PLC-CL2-01'], rev: 1 });
      await until(async () => (await d.daemon.runtime.store.listGrants({ orderKey: key, states: ['active'] })).length === 1, 'PLC grant active');
      await send(d, 'WO-S2', { vendor: 'hydro-analytics', assets: ['PLC-CL2-01'], rev: 2 });
      await until(async () => (await active(d, key)).every((g) => g.vendorId !== 'acme-controls'), 'acme\'s grant revoked');
      expect((await active(d, key)).map((g) => [g.vendorId, g.technicianId]), 'nothing for hydro-analytics\' tech-jdoe').to.deep.equal([]);
      const ev = await explain(d, key);
      expect(ev.grants).to.deep.equal([]);
      expect(ev.denials.map((x) => [x.technicianId, x.assetId, x.code])).to.deep.equal([['tech-jdoe', 'plc-cl2-01', 'SCOPE_WIDENED_AFTER_APPROVAL']]);
      expect(ev.denials[0]?.reason).to.include('vendor "hydro-analytics"');
    });
  });

  describe('wogate policy check', () => {
    it('prints which sources can open which rules', () => {
      dir = tmpDir();
      const file = exampleConfig(dir, (c) => {
        c.sources.push({ ...structuredClone(c.sources[0]), id: 'contractor-hub', authorises: { sites: ['south-reservoir'], vendors: ['hydro-analytics'] } });
      });
      const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(REPO, 'src/cli/main.ts'), 'policy', 'check', '-c', file], { cwd: REPO, encoding: 'utf8', timeout: 30_000 });
      expect(r.stderr).to.equal('');
      expect(r.status).to.equal(0);
      expect(r.stdout).to.include('sources and the rules their orders can open:');
      expect(r.stdout).to.include('  demo-cmms (generic; sites north-wtp, south-reservoir; vendors acme-controls, hydro-analytics; synced assets not trusted)\n    plc-maintenance/planned-and-corrective: vendors acme-controls; sites north-wtp\n    plc-maintenance/emergency-critical: vendors acme-controls; sites north-wtp\n');
      expect(r.stdout).to.include('  contractor-hub (generic; sites south-reservoir; vendors hydro-analytics; synced assets not trusted)\n    (no rule)\n');
    });
  });
});
