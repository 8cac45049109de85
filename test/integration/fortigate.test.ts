import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import { expect } from 'chai';
import { parse as parseYaml } from 'yaml';
import { WogateError, type NetworkResource, type Resource } from '../../src/domain/index.js';
import { FORTIGATE_TARGET_SCHEMA, FortiGateTarget, fortigateTargetOptions, type FortiGateScope, type FortiGateTargetOptions } from '../../src/targets/fortigate.js';
import { TargetError, type CallContext, type TargetGrant } from '../../src/targets/target.js';
import { FortiGateSim } from '../sims/fortigate.js';
import { PATIENT_MS, recordingLogger, sampleGrant, simulatedSetup, targetContract } from './target-contract.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

const SCOPES: readonly FortiGateScope[] = [
  { address: '10.20.0.10', port: 502, protocol: 'tcp', group: 'WOGATE-PLC1-MODBUS' },
  { address: '10.20.0.11', port: 102, protocol: 'tcp', group: 'WOGATE-PLC2-S7' },
  { address: '10.20.0.40', port: 47808, protocol: 'udp', group: 'WOGATE-BMS-BACNET' },
];

/** A flow unique to `n`: its own technician address, into one of the mapped scopes. */
function flow(n: number): Resource {
  const s = SCOPES[n % SCOPES.length] as FortiGateScope;
  return { kind: 'network', sourceAddress: `10.78.${Math.floor(n / 250) % 250}.${(n % 250) + 2}`, address: s.address, port: s.port, protocol: s.protocol };
}

function net(sourceAddress: string, scope: FortiGateScope = SCOPES[0] as FortiGateScope): NetworkResource {
  return { kind: 'network', sourceAddress, address: scope.address, port: scope.port, protocol: scope.protocol };
}

targetContract('FortiGateTarget against the FortiOS simulator', async ({ secret }) => {
  const sim = await FortiGateSim.start({ token: secret });
  for (const s of SCOPES) sim.addGroup(s.group);
  const target = (timeoutMs: number) => new FortiGateTarget({ id: 'fgt', baseUrl: sim.url, token: secret, vdom: 'root', timeoutMs, scopes: SCOPES });
  return simulatedSetup(target, sim, (o) => sampleGrant('fgt', o, new Date(), flow));
});

describe('FortiGateTarget against the FortiOS simulator', function () {
  this.timeout(20_000);
  const TOKEN = 'fgt-api-token-5f0c2a9e81d34b7c';
  const G1 = 'WOGATE-PLC1-MODBUS';
  const G2 = 'WOGATE-PLC2-S7';
  let sim: FortiGateSim;
  let target: FortiGateTarget;
  let log: ReturnType<typeof recordingLogger>;
  const ctx = (): CallContext => ({ now: new Date(), log });
  const grant = (resource: Resource, o: Partial<TargetGrant> = {}): TargetGrant => sampleGrant('fgt', { resource, ...o });
  const make = (o: Partial<FortiGateTargetOptions> = {}): FortiGateTarget =>
    new FortiGateTarget({ id: 'fgt', baseUrl: sim.url, token: TOKEN, vdom: 'plant', timeoutMs: PATIENT_MS, scopes: SCOPES, ...o });

  async function failure(call: () => Promise<unknown>): Promise<TargetError> {
    const e = await call().then(() => undefined, (err: unknown) => err);
    expect(e, 'the call fails').to.be.instanceOf(TargetError);
    return e as TargetError;
  }

  beforeEach(async () => {
    log = recordingLogger();
    sim = await FortiGateSim.start({ token: TOKEN, vdoms: ['root', 'plant'] });
    for (const s of SCOPES) sim.addGroup(s.group, ['none'], 'plant');
    target = make();
    await target.init(ctx());
    sim.requests.length = 0;
  });

  afterEach(async () => {
    await target.close();
    await sim.close();
    for (const line of log.lines) expect(line).not.to.include(TOKEN);
  });

  it('puts the technician\'s /32 object into the scope\'s group by GET, PUT and a read-back, with the token and VDOM on every call', async () => {
    const g = grant(net('10.9.8.7'));
    const ref = await target.provision(g, ctx());
    expect(ref).to.deep.equal({ group: G1, address: 'wogate-10.9.8.7' });
    expect(sim.calls()).to.deep.equal([
      'GET /api/v2/cmdb/firewall/address/wogate-10.9.8.7',
      'POST /api/v2/cmdb/firewall/address',
      `GET /api/v2/cmdb/firewall/addrgrp/${G1}`,
      `PUT /api/v2/cmdb/firewall/addrgrp/${G1}`,
      `GET /api/v2/cmdb/firewall/addrgrp/${G1}`,
    ]);
    const [, post, , put] = sim.requests;
    const body = post?.body as Record<string, unknown>;
    expect(body).to.include({ name: 'wogate-10.9.8.7', type: 'ipmask', subnet: '10.9.8.7 255.255.255.255' });
    expect(body['comment']).to.match(/^wogate-managed/);
    // FortiOS address objects carry no expiry: nothing time-like is sent, and list() claims none.
    expect(Object.keys(body).sort()).to.deep.equal(['comment', 'name', 'subnet', 'type']);
    expect(put?.body).to.deep.equal({ member: [{ name: 'none' }, { name: 'wogate-10.9.8.7' }] });
    for (const r of sim.requests) {
      expect(r.authorization).to.equal(`Bearer ${TOKEN}`);
      expect(r.query).to.deep.equal({ vdom: 'plant' });
    }
    expect(target.nativeExpiry).to.equal(false);
    const entries = await target.list(ctx());
    expect(entries).to.deep.equal([{ resource: g.resource, ref }]);
    expect(sim.members(G1, 'plant')).to.deep.equal(['none', 'wogate-10.9.8.7']);
  });

  it('provisioning what is there already changes nothing: no POST, no PUT', async () => {
    const g = grant(net('10.9.8.8'));
    await target.provision(g, ctx());
    sim.requests.length = 0;
    await target.update({ ...g, validUntil: new Date(g.validUntil.getTime() + 3_600_000) }, undefined, ctx());
    expect(sim.calls().filter((c) => !c.startsWith('GET '))).to.deep.equal([]);
  });

  it('keeps every other member of the group when it adds and removes its own, since a PUT replaces the whole list', async () => {
    sim.addAddress('jump-host', '10.1.1.1/32', '', 'plant');
    sim.addGroup(G1, ['none', 'jump-host'], 'plant');
    const a = grant(net('10.9.0.1'));
    const b = grant(net('10.9.0.2'));
    await target.provision(a, ctx());
    await target.provision(b, ctx());
    expect(sim.members(G1, 'plant')).to.deep.equal(['none', 'jump-host', 'wogate-10.9.0.1', 'wogate-10.9.0.2']);
    await target.revoke(a, undefined, ctx());
    expect(sim.members(G1, 'plant')).to.deep.equal(['none', 'jump-host', 'wogate-10.9.0.2']);
    expect(sim.address('wogate-10.9.0.1', 'plant'), 'the revoked object is deleted').to.equal(undefined);
    expect(sim.address('jump-host', 'plant')).to.not.equal(undefined);
  });

  it('shares one address object among the groups of one technician and deletes it only when the last group lets go', async () => {
    const modbus = grant(net('10.9.1.1', SCOPES[0]));
    const s7 = grant(net('10.9.1.1', SCOPES[1]));
    await target.provision(modbus, ctx());
    await target.provision(s7, ctx());
    expect(sim.addressNames('plant').filter((n) => n.startsWith('wogate-'))).to.deep.equal(['wogate-10.9.1.1']);
    await target.revoke(modbus, undefined, ctx());
    expect(sim.members(G1, 'plant')).to.deep.equal(['none']);
    expect(sim.members(G2, 'plant')).to.deep.equal(['none', 'wogate-10.9.1.1']);
    expect(sim.address('wogate-10.9.1.1', 'plant'), 'still used by the S7 group').to.not.equal(undefined);
    await target.revoke(s7, undefined, ctx());
    expect(sim.address('wogate-10.9.1.1', 'plant')).to.equal(undefined);
  });

  it('serializes concurrent changes to one group so that no member is lost', async () => {
    sim.faults.delayMs = 3;
    const grants = Array.from({ length: 25 }, (_, i) => grant(net(`10.9.2.${i + 1}`)));
    await Promise.all(grants.map((g) => target.provision(g, ctx())));
    expect(sim.members(G1, 'plant')?.sort()).to.deep.equal(['none', ...grants.map((g) => `wogate-${(g.resource as NetworkResource).sourceAddress}`)].sort());
    await Promise.all(grants.slice(0, 20).map((g) => target.revoke(g, undefined, ctx())));
    expect(sim.members(G1, 'plant')?.sort()).to.deep.equal(['none', ...grants.slice(20).map((g) => `wogate-${(g.resource as NetworkResource).sourceAddress}`)].sort());
  });

  it('leaves the placeholder in a group whose last technician leaves, because FortiOS refuses an empty group', async () => {
    sim.addGroup(G1, ['wogate-10.9.3.1'], 'plant');
    sim.addAddress('wogate-10.9.3.1', '10.9.3.1/32', 'wogate-managed: made before', 'plant');
    await target.revoke(grant(net('10.9.3.1')), undefined, ctx());
    expect(sim.members(G1, 'plant')).to.deep.equal(['none']);
    expect(sim.address('wogate-10.9.3.1', 'plant')).to.equal(undefined);
  });

  it('refuses a flow no scope maps, as not retryable, naming the flow', async () => {
    const e = await failure(() => target.provision(grant({ kind: 'network', sourceAddress: '10.9.4.1', address: '10.20.0.99', port: 22, protocol: 'tcp' }), ctx()));
    expect(e.retryable).to.equal(false);
    expect(e.message).to.include('10.20.0.99:22/tcp').and.include('fortigate.scopes');
    expect(sim.requests).to.have.length(0);
  });

  it('refuses to add to a group at its member limit, as not retryable, naming the group', async () => {
    const names = Array.from({ length: 254 }, (_, i) => `host-${i}`);
    names.forEach((n, i) => sim.addAddress(n, `10.50.${Math.floor(i / 200)}.${(i % 200) + 1}/32`, '', 'plant'));
    sim.addGroup(G1, ['none', ...names], 'plant');
    const e = await failure(() => target.provision(grant(net('10.9.5.1')), ctx()));
    expect(e.retryable).to.equal(false);
    expect(e.message).to.include(G1).and.include('255');
    expect(sim.members(G1, 'plant')).to.have.length(255);
  });

  it('treats a 200 whose status is "error" as a failure, and changes nothing', async () => {
    sim.faults.failNext(1, 'error-in-200');
    const e = await failure(() => target.provision(grant(net('10.9.6.1')), ctx()));
    expect(e.message).to.include('answered 200 with an error').and.include('-651');
    expect(e.retryable, 'FortiOS -651 (input invalid) is not cured by retrying').to.equal(false);
    expect(sim.address('wogate-10.9.6.1', 'plant')).to.equal(undefined);
    expect(sim.members(G1, 'plant')).to.deep.equal(['none']);
  });

  it('fails as not retryable, once and without a login, when the token is refused: FortiOS API tokens have no session to renew', async () => {
    sim.token = 'a-rotated-token-nobody-told-wogate';
    const e = await failure(() => target.provision(grant(net('10.9.7.1')), ctx()));
    expect(e.retryable).to.equal(false);
    expect(e.details?.['reason']).to.equal('token_refused');
    expect(e.message).to.include('401').and.include('trusted host');
    expect(`${e.message} ${JSON.stringify(e.details)} ${e.stack ?? ''}`).not.to.include(TOKEN);
    expect(sim.requests, 'no second attempt and no login call').to.have.length(1);
  });

  it('fails as not retryable when the VDOM does not exist (424)', async () => {
    const other = make({ vdom: 'plnat' });
    try {
      const e = await failure(() => other.provision(grant(net('10.9.7.2')), ctx()));
      expect(e.retryable).to.equal(false);
      expect(e.message).to.include('424').and.include('plnat');
    } finally {
      await other.close();
    }
  });

  it('lists a member added to a managed group by hand without a resource, and revokeEntry takes it out without deleting its object', async () => {
    const g = grant(net('10.9.8.1'));
    await target.provision(g, ctx());
    sim.addAddress('contractor-laptop', '10.66.0.5/32', '', 'plant');
    sim.addGroup(G2, ['none', 'contractor-laptop'], 'plant');
    const entries = await target.list(ctx());
    const hand = entries.find((x) => x.ref['member'] === 'contractor-laptop');
    expect(hand).to.deep.equal({ ref: { group: G2, member: 'contractor-laptop' } });
    expect(entries.filter((x) => x.resource !== undefined)).to.have.length(1);
    await target.revokeEntry(hand!, ctx());
    expect(sim.members(G2, 'plant')).to.deep.equal(['none']);
    expect(sim.address('contractor-laptop', 'plant'), 'not wogate\'s: never deleted').to.not.equal(undefined);
    expect((await target.list(ctx())).map((x) => x.ref)).to.deep.equal([{ group: G1, address: 'wogate-10.9.8.1' }]);
  });

  it('revokeEntry removes and deletes a wogate object wogate no longer has a grant for', async () => {
    await target.provision(grant(net('10.9.8.2')), ctx());
    const [entry] = await target.list(ctx());
    await target.revokeEntry(entry!, ctx());
    expect(sim.members(G1, 'plant')).to.deep.equal(['none']);
    expect(sim.address('wogate-10.9.8.2', 'plant')).to.equal(undefined);
  });

  it('revokeEntry refuses an entry outside the groups it manages', async () => {
    sim.addGroup('CORP-ADMINS', ['none'], 'plant');
    const e = await failure(() => target.revokeEntry({ ref: { group: 'CORP-ADMINS', member: 'none' } }, ctx()));
    expect(e.retryable).to.equal(false);
    expect(sim.requests).to.have.length(0);
  });

  it('never adopts an address object with a wogate name that wogate did not make', async () => {
    sim.addAddress('wogate-10.9.9.1', '10.9.0.0/16', 'made by hand', 'plant');
    const e = await failure(() => target.provision(grant(net('10.9.9.1')), ctx()));
    expect(e.retryable).to.equal(false);
    expect(e.message).to.include('wogate-10.9.9.1').and.include('not made by wogate');
    expect(sim.address('wogate-10.9.9.1', 'plant')?.subnet).to.equal('10.9.0.0 255.255.0.0');
    expect(sim.members(G1, 'plant')).to.deep.equal(['none']);
  });

  it('restores a wogate object whose subnet was edited by hand before adding it', async () => {
    sim.addAddress('wogate-10.9.9.2', '10.9.0.0/16', 'wogate-managed: edited', 'plant');
    await target.provision(grant(net('10.9.9.2')), ctx());
    expect(sim.address('wogate-10.9.9.2', 'plant')?.subnet).to.equal('10.9.9.2 255.255.255.255');
  });

  it('a POST refused as a duplicate (-5) reads back what is there and carries on', async () => {
    sim.addAddress('wogate-10.9.9.3', '10.9.9.3/32', 'wogate-managed: made a moment ago', 'plant');
    sim.answerNext({ http_method: 'GET', status: 'error', http_status: 404, vdom: 'plant' }, 404);
    await target.provision(grant(net('10.9.9.3')), ctx());
    expect(sim.calls().slice(0, 3)).to.deep.equal([
      'GET /api/v2/cmdb/firewall/address/wogate-10.9.9.3',
      'POST /api/v2/cmdb/firewall/address',
      'GET /api/v2/cmdb/firewall/address/wogate-10.9.9.3',
    ]);
    expect(sim.members(G1, 'plant')).to.include('wogate-10.9.9.3');
  });

  it('a revoke whose object is still used outside the managed groups fails as not retryable, after leaving the managed group (FortiOS -23)', async () => {
    const g = grant(net('10.9.10.1'));
    await target.provision(g, ctx());
    sim.addGroup('HAND-MADE-RDP', ['wogate-10.9.10.1'], 'plant');
    const e = await failure(() => target.revoke(g, undefined, ctx()));
    expect(e.retryable).to.equal(false);
    expect(e.details).to.include({ reason: 'address_in_use', fortiosError: -23 });
    expect(e.message).to.include('wogate-10.9.10.1');
    expect(sim.members(G1, 'plant')).to.deep.equal(['none']);
  });

  it('an answer of unexpected shape leaves a retryable error that says what was wrong', async () => {
    sim.answerNext({ http_method: 'GET', status: 'success', http_status: 200, results: { name: G1 } });
    const e = await failure(() => target.list(ctx()));
    expect(e.retryable).to.equal(true);
    expect(e.message).to.include('"results" to be a list');
    sim.answerNext('<html><body>Login to the web proxy</body></html>');
    const html = await failure(() => target.provision(grant(net('10.9.11.1')), ctx()));
    expect(html.retryable).to.equal(true);
    expect(html.message).to.include('FortiOS JSON envelope');
  });

  it('a 500 without a FortiOS error code is the appliance failing: retryable', async () => {
    sim.answerNext('internal error', 500);
    const e = await failure(() => target.provision(grant(net('10.9.11.2')), ctx()));
    expect(e.retryable).to.equal(true);
  });

  it('with saveConfig, saves the configuration after a change and not when nothing changed', async () => {
    const saving = make({ saveConfig: true });
    try {
      const g = grant(net('10.9.12.1'));
      await saving.provision(g, ctx());
      expect(sim.saves).to.equal(1);
      await saving.provision(g, ctx());
      expect(sim.saves).to.equal(1);
      await saving.revoke(g, undefined, ctx());
      expect(sim.saves).to.equal(2);
      expect(sim.requests.find((r) => r.path === '/api/v2/monitor/system/config/save')?.query).to.deep.equal({ vdom: 'plant' });
    } finally {
      await saving.close();
    }
  });

  it('retries a failed save on the next call even when that call changes nothing', async () => {
    const saving = make({ saveConfig: true });
    try {
      const g = grant(net('10.9.12.2'));
      sim.failSaves = 1;
      const e = await failure(() => saving.provision(g, ctx()));
      expect(e.retryable).to.equal(true);
      expect(e.message).to.include('config/save');
      expect(sim.members(G1, 'plant'), 'the change itself is made').to.include('wogate-10.9.12.2');
      expect(sim.saves).to.equal(0);
      await saving.provision(g, ctx());
      expect(sim.saves, 'the owed save is made').to.equal(1);
    } finally {
      await saving.close();
    }
  });

  it('revokes from the group in the stored ref when the scope has since moved to another group', async () => {
    const g = grant(net('10.9.13.1'));
    const ref = await target.provision(g, ctx());
    sim.addGroup('WOGATE-PLC1-MODBUS-V2', ['none'], 'plant');
    const moved = make({ scopes: [{ ...(SCOPES[0] as FortiGateScope), group: 'WOGATE-PLC1-MODBUS-V2' }] });
    try {
      await moved.revoke(g, ref, ctx());
      expect(sim.members(G1, 'plant')).to.deep.equal(['none']);
      expect(sim.address('wogate-10.9.13.1', 'plant')).to.equal(undefined);
    } finally {
      await moved.close();
    }
  });

  it('an update after the scope moved to another group moves the member there and keeps the object', async () => {
    const g = grant(net('10.9.13.2'));
    const ref = await target.provision(g, ctx());
    sim.addGroup('WOGATE-PLC1-MODBUS-V2', ['none'], 'plant');
    const moved = make({ scopes: [{ ...(SCOPES[0] as FortiGateScope), group: 'WOGATE-PLC1-MODBUS-V2' }] });
    try {
      expect(await moved.update(g, ref, ctx())).to.deep.equal({ group: 'WOGATE-PLC1-MODBUS-V2', address: 'wogate-10.9.13.2' });
      expect(sim.members(G1, 'plant')).to.deep.equal(['none']);
      expect(sim.members('WOGATE-PLC1-MODBUS-V2', 'plant')).to.deep.equal(['none', 'wogate-10.9.13.2']);
      expect(sim.address('wogate-10.9.13.2', 'plant')).to.not.equal(undefined);
    } finally {
      await moved.close();
    }
  });

  it('an update whose window is already over removes the member', async () => {
    const g = grant(net('10.9.14.1'));
    const ref = await target.provision(g, ctx());
    await target.update({ ...g, validUntil: new Date(Date.now() - 1_000) }, ref, ctx());
    expect(sim.members(G1, 'plant')).to.deep.equal(['none']);
  });

  it('init refuses to start when a managed group does not exist, naming it', async () => {
    const missing = make({ scopes: [...SCOPES, { address: '10.20.0.50', port: 20000, protocol: 'tcp', group: 'WOGATE-RTU-DNP3' }] });
    try {
      const e = await failure(() => missing.init(ctx()));
      expect(e.retryable).to.equal(false);
      expect(e.message).to.include('WOGATE-RTU-DNP3');
    } finally {
      await missing.close();
    }
  });
});

describe('FortiGate target configuration', () => {
  const ajv = new Ajv({ allErrors: true, strict: true, strictRequired: false });
  const validate = ajv.compile({
    definitions: {
      duration: { type: 'string', pattern: '^([0-9]+(ms|s|m|h|d))+$' },
      secretRef: { type: 'string', pattern: '^(env:[A-Za-z_][A-Za-z0-9_]*|file:.+)$', writeOnly: true },
    },
    ...FORTIGATE_TARGET_SCHEMA,
  });
  const docExample = (): Record<string, unknown> => {
    const text = fs.readFileSync(path.join(REPO, 'docs/targets/fortigate.md'), 'utf8');
    const yaml = /```yaml\n([\s\S]*?)```/.exec(text)?.[1] ?? '';
    const doc = parseYaml(yaml) as { targets: { id: string; kind: string; fortigate: Record<string, unknown> }[] };
    const t = doc.targets[0];
    expect(t?.kind).to.equal('fortigate');
    return t!.fortigate;
  };

  it('the documented example validates against the schema and becomes constructor options', () => {
    const block = docExample();
    expect(validate(block), JSON.stringify(validate.errors)).to.equal(true);
    const resolved = { ...block, token: 'resolved-token-value-1234', caPem: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----' };
    const o = fortigateTargetOptions('plant-fw', resolved);
    expect(o).to.deep.include({ id: 'plant-fw', vdom: 'root', timeoutMs: 10_000, saveConfig: false, token: 'resolved-token-value-1234' });
    expect(o.scopes[0]).to.deep.equal({ address: '10.20.0.10', port: 502, protocol: 'tcp', group: 'WOGATE-PLC1-MODBUS' });
    expect(new FortiGateTarget(o).kind).to.equal('fortigate');
  });

  it('the schema refuses an inline token and an unknown key', () => {
    const block = docExample();
    expect(validate({ ...block, token: 'inline-token-value' })).to.equal(false);
    expect(validate({ ...block, apiKey: 'env:X' })).to.equal(false);
  });

  it('refuses two flows sharing a group, naming the field', () => {
    const block: Record<string, unknown> = { ...docExample(), token: 'resolved-token-value-1234' };
    const scopes = [...(block['scopes'] as object[]), { address: '10.20.0.12', port: 502, protocol: 'tcp', group: 'WOGATE-PLC1-MODBUS' }];
    expect(() => fortigateTargetOptions('plant-fw', { ...block, scopes })).to.throw(WogateError, /target plant-fw: fortigate\.scopes\[\d\]\.group .*WOGATE-PLC1-MODBUS/);
  });

  it('refuses a flow mapped twice, a bad timeout and a missing token, naming each field', () => {
    const block: Record<string, unknown> = { ...docExample(), token: 'resolved-token-value-1234' };
    const first = (block['scopes'] as object[])[0] as FortiGateScope;
    expect(() => fortigateTargetOptions('fw', { ...block, scopes: [first, { ...first, group: 'OTHER' }] })).to.throw(WogateError, /fortigate\.scopes\[1\] maps 10\.20\.0\.10:502\/tcp again/);
    expect(() => fortigateTargetOptions('fw', { ...block, timeout: 'soon' })).to.throw(WogateError, /fortigate\.timeout/);
    const { token: _t, ...noToken } = block;
    expect(() => fortigateTargetOptions('fw', noToken)).to.throw(WogateError, /fortigate\.token is required/);
  });

  it('the constructor refuses a base URL with a query and a token that could split a header, without showing the token', () => {
    const base = { id: 'fw', token: 'resolved-token-value-1234', scopes: SCOPES };
    expect(() => new FortiGateTarget({ ...base, baseUrl: 'https://fw.example/?access_token=x' })).to.throw(WogateError, /fortigate\.baseUrl/);
    try {
      new FortiGateTarget({ ...base, baseUrl: 'https://fw.example', token: 'abcdefgh\r\nX-Evil: 1' });
      expect.fail('should throw');
    } catch (e) {
      expect((e as WogateError).code).to.equal('CONFIG_INVALID');
      expect((e as WogateError).message).to.include('fortigate.token').and.not.include('X-Evil');
    }
  });
});
