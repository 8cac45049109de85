import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { checkPolicyText, loadPolicies, loadPolicyText } from '../../../src/config/policy-loader.js';
import { loadRegister } from '../../../src/config/register-loader.js';
import { canonicalOrder } from '../../../src/sources/canonical-order.js';
import { packageRoot } from '../../../src/config/schema.js';
import { CANONICAL_STATUSES, CRITICALITIES, evaluate, ORDER_TYPES, WogateError, type WorkOrder, type NetworkResource, type ResourceKind, RESOURCE_KINDS } from '../../../src/domain/index.js';

const ROOT = packageRoot();
const TARGETS = new Map<string, readonly ResourceKind[]>([['demo-gateway', ['network']], ['plant-fw', ['network']], ['vault', ['pam']], ['doors', ['badge']], ['ad', ['group']], ['ca', ['certificate']]]);
const M = 60_000;
const H = 60 * M;

const GOOD = `apiVersion: wogate/v1
kind: AccessPolicy
metadata:
  name: test-policy
rules:
  - id: r1
    match:
      vendors: [acme-controls]
    require:
      statuses: [approved]
      maxDuration: 8h
    grant:
      - target: demo-gateway
`;

function thrown(fn: () => unknown): WogateError {
  try {
    fn();
  } catch (e) {
    if (e instanceof WogateError) return e;
    throw e;
  }
  return expect.fail('expected a WogateError');
}

/** The error names the file, and one of its lines names the path and what was expected. */
function expectProblem(e: WogateError, file: string, pointer: string, expected: string | RegExp): void {
  expect(e.code).to.equal('POLICY_INVALID');
  expect(e.message).to.include(file);
  const line = e.message.split('\n').find((l) => l.includes(`${pointer}:`));
  expect(line, `a line naming ${pointer} in:\n${e.message}`).to.be.a('string');
  if (typeof expected === 'string') expect(line).to.include(expected);
  else expect(line).to.match(expected);
  const errors = (e.details as { errors: { path: string; message: string }[] }).errors;
  expect(errors.map((p) => p.path)).to.include(pointer);
}

describe('policy loader', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wogate-policy-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));
  const write = (name: string, text: string) => fs.writeFileSync(path.join(dir, name), text);

  it('loads the shipped policies without warnings, durations in milliseconds', () => {
    const { policySet, warnings } = loadPolicies(path.join(ROOT, 'policies'), { knownTargets: TARGETS });
    expect(warnings).to.deep.equal([]);
    const p = policySet.policies[0];
    expect(p?.name).to.equal('plc-maintenance');
    expect(p?.file).to.equal(path.join(ROOT, 'policies', 'plc-maintenance.yaml'));
    expect(p?.rules.map((r) => r.id)).to.deep.equal(['planned-and-corrective', 'emergency-critical']);
    expect(p?.rules[0]?.require).to.deep.equal({ statuses: ['approved', 'in_progress'], minApprovals: 1, reapproveOnWiden: true, leadTimeMs: 15 * M, graceMs: 15 * M, maxDurationMs: 12 * H });
    expect(p?.rules[1]?.require).to.include({ minApprovals: 2, maxDurationMs: 4 * H });
  });

  it('applies defaults and leaves omitted match lists absent (they mean "any")', () => {
    const p = loadPolicyText(GOOD, 'good.yaml');
    expect(p).to.deep.equal({
      name: 'test-policy',
      file: 'good.yaml',
      rules: [{ id: 'r1', match: { vendors: ['acme-controls'] }, require: { statuses: ['approved'], minApprovals: 1, reapproveOnWiden: true, leadTimeMs: 0, graceMs: 0, maxDurationMs: 8 * H }, grant: [{ type: 'network', target: 'demo-gateway' }] }],
    });
  });

  it('reads every entitlement type, with the lists and account names it was given', () => {
    const text = GOOD.replace('- target: demo-gateway', `- target: demo-gateway
        ports: [502]
      - target: ad
        type: group
        groups: ["cn=vpn-vendors,ou=groups,dc=plant,dc=example"]
        account: remote
      - target: vault
        type: pam
        safes: [PLC-Vendors]
      - target: doors
        type: badge
      - target: ca
        type: certificate`);
    const p = loadPolicyText(text, 'good.yaml', { knownTargets: TARGETS });
    expect(p.rules[0]?.grant).to.deep.equal([
      { type: 'network', target: 'demo-gateway', ports: [502] },
      { type: 'group', target: 'ad', groups: ['cn=vpn-vendors,ou=groups,dc=plant,dc=example'], account: 'remote' },
      { type: 'pam', target: 'vault', safes: ['PLC-Vendors'] },
      { type: 'badge', target: 'doors' },
      { type: 'certificate', target: 'ca' },
    ]);
  });

  it('keeps the schema enums in step with the domain', () => {
    expect(JSON.parse(fs.readFileSync(path.join(ROOT, 'config/schemas/policy.schema.json'), 'utf8')).$defs.entitlement.properties.type.enum).to.deep.equal([...RESOURCE_KINDS]);
    const schema = JSON.parse(fs.readFileSync(path.join(ROOT, 'config/schemas/policy.schema.json'), 'utf8'));
    expect(schema.$defs.require.properties.statuses.items.enum).to.deep.equal([...CANONICAL_STATUSES]);
    expect(schema.$defs.match.properties.criticality.items.enum).to.deep.equal([...CRITICALITIES]);
    expect(schema.$defs.match.properties.orderTypes.items.enum).to.deep.equal([...ORDER_TYPES]);
  });

  it('reads match.vendors and match.assets in canonical form, as orders name them', () => {
    const p = loadPolicyText(GOOD.replace('vendors: [acme-controls]', 'vendors: [ACME-Controls, ａｃｍｅ]\n      assets: [PLC-CL2-01]'), 'good.yaml');
    expect(p.rules[0]?.match).to.deep.equal({ vendors: ['acme-controls', 'acme'], assets: ['plc-cl2-01'] });
  });

  describe('refuses a bad file, naming the file, the path and what was expected', () => {
    const cases: [string, string, string, string | RegExp][] = [
      ['an unknown property, suggesting the near miss', GOOD.replace('vendors: [acme-controls]', 'critcality: [high]'), '/rules/0/match/critcality', 'unknown property "critcality" (did you mean "criticality"?)'],
      ['a value outside an enum', GOOD.replace('vendors: [acme-controls]', 'criticality: [severe]'), '/rules/0/match/criticality/0', 'must be one of: low, medium, high, critical (got "severe")'],
      ['a status that is not canonical', GOOD.replace('statuses: [approved]', 'statuses: [APPR]'), '/rules/0/require/statuses/0', 'must be one of: draft, awaiting_approval, approved'],
      ['a malformed duration', GOOD.replace('maxDuration: 8h', 'maxDuration: 8 hours'), '/rules/0/require/maxDuration', 'must be a duration like 90s, 15m, 2h30m or 1d (got "8 hours")'],
      ['a lead time over 24h', GOOD.replace('maxDuration: 8h', 'maxDuration: 8h\n      leadTime: 1d1s'), '/rules/0/require/leadTime', 'must be at most 24h (got 1d1s)'],
      ['a grace over 24h', GOOD.replace('maxDuration: 8h', 'maxDuration: 8h\n      grace: 25h'), '/rules/0/require/grace', 'must be at most 24h (got 25h)'],
      ['a maxDuration over 30d', GOOD.replace('maxDuration: 8h', 'maxDuration: 30d1m'), '/rules/0/require/maxDuration', 'must be at most 30d'],
      ['a zero maxDuration', GOOD.replace('maxDuration: 8h', 'maxDuration: 0s'), '/rules/0/require/maxDuration', 'must be more than 0'],
      ['a missing required key', GOOD.replace('statuses: [approved]', 'minApprovals: 1'), '/rules/0/require/statuses', 'is required'],
      ['an empty match list, which would match nothing', GOOD.replace('vendors: [acme-controls]', 'vendors: []'), '/rules/0/match/vendors', 'must not be empty: an empty list would match nothing'],
      ['an empty grant list', GOOD.replace('    grant:\n      - target: demo-gateway\n', '    grant: []\n'), '/rules/0/grant', 'must not be empty'],
      ['a port out of range', GOOD.replace('- target: demo-gateway', '- target: demo-gateway\n        ports: [502, 70000]'), '/rules/0/grant/0/ports/1', 'must be at most 65535 (got 70000)'],
      ['a bad policy name', GOOD.replace('name: test-policy', 'name: Test Policy'), '/metadata/name', 'lower-case letters, digits and dashes'],
      ['a wrong apiVersion', GOOD.replace('wogate/v1', 'wogate/v2'), '/apiVersion', 'must be "wogate/v1" (got "wogate/v2")'],
      ['a wrong type', GOOD.replace('vendors: [acme-controls]', 'vendors: acme-controls'), '/rules/0/match/vendors', 'must be an array (got a string)'],
      ['a vendor id hiding a zero-width space', GOOD.replace('vendors: [acme-controls]', 'vendors: ["acme\\u200b-controls"]'), '/rules/0/match/vendors/0', 'match.vendors[0] holds an invisible format character (U+200B at position 4)'],
      ['an asset id hiding a bidi override', GOOD.replace('vendors: [acme-controls]', 'assets: [PLC-1, "PLC-\\u202e2"]'), '/rules/0/match/assets/1', 'match.assets[1] holds an invisible format character (U+202E at position 4)'],
      ['a duplicate rule id', `${GOOD}  - id: r1\n    match: {}\n    require: {statuses: [approved], maxDuration: 1h}\n    grant: [{target: demo-gateway}]\n`, '/rules/1/id', 'duplicate rule id "r1" (first at /rules/0/id)'],
      ['an unknown target', GOOD.replace('target: demo-gateway', 'target: plant-fww'), '/rules/0/grant/0/target', 'unknown target "plant-fww" (configured targets: ad, ca, demo-gateway, doors, plant-fw, vault)'],
      ['a kind of access its target does not hold', GOOD.replace('- target: demo-gateway', '- target: demo-gateway\n        type: badge'), '/rules/0/grant/0/type', 'target "demo-gateway" holds network access, not badge'],
      ['a field of another entitlement type', GOOD.replace('- target: demo-gateway', '- target: doors\n        type: badge\n        ports: [502]'), '/rules/0/grant/0/ports', 'ports applies to type network only (this entitlement is type badge)'],
      ['an account on a network entitlement', GOOD.replace('- target: demo-gateway', '- target: demo-gateway\n        account: directory'), '/rules/0/grant/0/account', 'account does not apply to type network'],
      ['a group entitlement without groups', GOOD.replace('- target: demo-gateway', '- target: ad\n        type: group'), '/rules/0/grant/0', 'a group entitlement needs groups'],
      ['a group name that could forge a grant key', GOOD.replace('- target: demo-gateway', '- target: ad\n        type: group\n        groups: ["vpn|x"]'), '/rules/0/grant/0/groups/0', 'a name without | or control characters'],
    ];
    for (const [what, text, pointer, expected] of cases) {
      it(what, () => {
        expectProblem(thrown(() => loadPolicyText(text, 'bad.yaml', { knownTargets: TARGETS })), 'bad.yaml', pointer, expected);
      });
    }

    it('a YAML syntax error, with file:line:col', () => {
      const e = thrown(() => loadPolicyText(GOOD.replace('vendors: [acme-controls]', 'vendors: [acme-controls'), 'bad.yaml'));
      expect(e.code).to.equal('POLICY_INVALID');
      expect(e.message).to.match(/bad\.yaml:\d+:\d+: YAML: /);
    });

    it('a duplicate key, at its line', () => {
      const e = thrown(() => loadPolicyText(GOOD.replace('      maxDuration: 8h\n', '      maxDuration: 8h\n      maxDuration: 1h\n'), 'bad.yaml'));
      expect(e.message).to.equal('bad.yaml:12:7: YAML: duplicate key "maxDuration"');
    });

    it('the line and column of a schema problem', () => {
      const e = thrown(() => loadPolicyText(GOOD.replace('maxDuration: 8h', 'maxDuration: 8 hours'), 'bad.yaml'));
      expect(e.message).to.match(/^bad\.yaml:11:20: \/rules\/0\/require\/maxDuration: /);
    });

    it('every problem at once, in document order', () => {
      const text = GOOD.replace('vendors: [acme-controls]', 'vendors: []\n      orderTypes: [urgent]').replace('maxDuration: 8h', 'maxDuration: 8 hours').replace('target: demo-gateway', 'target: nowhere');
      const e = thrown(() => loadPolicyText(text, 'bad.yaml', { knownTargets: TARGETS }));
      const paths = (e.details as { errors: { path: string }[] }).errors.map((p) => p.path);
      expect(paths).to.deep.equal(['/rules/0/match/vendors', '/rules/0/match/orderTypes/0', '/rules/0/require/maxDuration']);
      expect(e.message).to.match(/^bad\.yaml is invalid \(3 problems\):\n/);
    });

    it('problems in well-formed rules alongside schema problems in others', () => {
      const text = `${GOOD.replace('maxDuration: 8h', 'maxDuration: 8 hours')}  - id: r2\n    match: {}\n    require: {statuses: [approved], maxDuration: 0s}\n    grant: [{target: nowhere}]\n`;
      const e = thrown(() => loadPolicyText(text, 'bad.yaml', { knownTargets: TARGETS }));
      expect((e.details as { errors: { path: string }[] }).errors.map((p) => p.path)).to.deep.equal(['/rules/0/require/maxDuration', '/rules/1/require/maxDuration', '/rules/1/grant/0/target']);
    });

    it('an empty file', () => {
      expectProblem(thrown(() => loadPolicyText('', 'empty.yaml')), 'empty.yaml', '', 'must be an object (got null)');
    });
  });

  it('warns, without refusing, about rules that allow draft, completed, closed or cancelled orders', () => {
    for (const status of ['draft', 'completed', 'closed', 'cancelled']) {
      const { warnings } = checkPolicyText(GOOD.replace('statuses: [approved]', `statuses: [approved, ${status}]`), 'risky.yaml');
      expect(warnings, status).to.have.length(1);
      expect(warnings[0]).to.match(new RegExp(`^risky\\.yaml:10:\\d+: /rules/0/require/statuses: rule "r1" allows status "${status}": access would`));
    }
    for (const status of ['awaiting_approval', 'in_progress', 'on_hold']) {
      expect(checkPolicyText(GOOD.replace('statuses: [approved]', `statuses: [${status}]`), 'ok.yaml').warnings, status).to.deep.equal([]);
    }
    write('risky.yaml', GOOD.replace('statuses: [approved]', 'statuses: [approved, closed]'));
    expect(loadPolicies(dir).warnings).to.have.length(1);
  });

  it('reads yaml and yml files in file-name order, skipping other files, dot files and subdirectories', () => {
    for (const [i, name] of ['c.yaml', 'a.yml', 'B.yaml', 'b.yaml'].entries()) write(name, GOOD.replace('test-policy', `p${i}`));
    write('notes.txt', 'not yaml');
    write('.hidden.yaml', 'not: [valid');
    write('off.yaml.disabled', 'not: [valid');
    fs.mkdirSync(path.join(dir, 'tests.yaml'));
    const names = () => loadPolicies(dir).policySet.policies.map((p) => path.basename(p.file));
    expect(names()).to.deep.equal(['B.yaml', 'a.yml', 'b.yaml', 'c.yaml']);
    expect(names()).to.deep.equal(names());
  });

  it('refuses the same policy name in two files, naming both', () => {
    write('a.yaml', GOOD);
    write('b.yaml', GOOD);
    const e = thrown(() => loadPolicies(dir));
    expectProblem(e, path.join(dir, 'b.yaml'), '/metadata/name', `policy name "test-policy" is already used by ${path.join(dir, 'a.yaml')}`);
  });

  it('reports the problems of every bad file together', () => {
    write('a.yaml', GOOD.replace('8h', 'eight'));
    write('b.yaml', GOOD.replace('test-policy', 'other'));
    write('c.yaml', GOOD.replace('test-policy', 'third').replace('[approved]', '[]'));
    const e = thrown(() => loadPolicies(dir));
    expect(e.message).to.match(/^2 policy files in .* are invalid \(2 problems\):/);
    expect(e.message).to.include(`${path.join(dir, 'a.yaml')}:11:20: /rules/0/require/maxDuration`);
    expect(e.message).to.include(`${path.join(dir, 'c.yaml')}:10:17: /rules/0/require/statuses: must not be empty`);
    expect(e.details).to.include({ file: path.join(dir, 'a.yaml') });
  });

  it('checks target ids only when it is told the configured targets', () => {
    write('a.yaml', GOOD.replace('demo-gateway', 'elsewhere'));
    expect(loadPolicies(dir).policySet.policies).to.have.length(1);
    expectProblem(thrown(() => loadPolicies(dir, { knownTargets: new Map() })), 'a.yaml', '/rules/0/grant/0/target', 'unknown target "elsewhere" (no targets are configured)');
  });

  it('denies everything, with a warning, when the directory holds no policy', () => {
    expect(loadPolicies(dir)).to.deep.equal({ policySet: { policies: [] }, warnings: [`no policies: everything is denied (${dir} has no *.yaml or *.yml files)`] });
  });

  it('refuses a directory it cannot read', () => {
    const e = thrown(() => loadPolicies(path.join(dir, 'missing')));
    expect(e.code).to.equal('POLICY_INVALID');
    expect(e.message).to.include(path.join(dir, 'missing')).and.include('ENOENT');
  });
});

describe('shipped policy and register, evaluated', () => {
  const now = new Date('2026-05-04T09:00:00Z');
  const { policySet } = loadPolicies(path.join(ROOT, 'policies'), { knownTargets: TARGETS });
  const register = loadRegister(path.join(ROOT, 'config/assets.example.yaml'), path.join(ROOT, 'config/vendors.example.yaml'));
  // Orders as a source's mapping delivers them: ids in canonical form, as the register's are.
  const order = (over: Partial<WorkOrder> = {}): WorkOrder => canonicalOrder({
    source: 'maximo', id: 'WO-1001', site: 'north-wtp', status: 'approved', sourceStatus: 'APPR', vendorId: 'acme-controls', technicianIds: ['tech-jdoe'],
    assetIds: ['PLC-CL2-01'], window: { start: new Date(now.getTime() + H), end: new Date(now.getTime() + 5 * H) }, type: 'planned',
    approvals: [{ by: 'ops-supervisor' }], revision: '1', ...over,
  });
  const ports = (o: WorkOrder) => evaluate([o], register, policySet, now).grants.map((g) => `${g.assetId} ${(g.resource as NetworkResource).address}:${(g.resource as NetworkResource).port}`);

  it('grants the chlorinator PLC only the allowed ports it lists, from the technician\'s VPN address, with lead and grace', () => {
    const e = evaluate([order()], register, policySet, now);
    expect(e.denials).to.deep.equal([]);
    expect(e.grants.map((g) => g.resource)).to.deep.equal([{ kind: 'network', sourceAddress: '10.8.0.21', address: '10.20.30.40', port: 502, protocol: 'tcp' }]);
    expect(e.grants[0]).to.deep.include({ targetId: 'demo-gateway', rule: 'plc-maintenance/planned-and-corrective', validFrom: new Date(now.getTime() + 45 * M), validUntil: new Date(now.getTime() + 5 * H + 15 * M) });
    expect(ports(order({ assetIds: ['HMI-FLT-01'] }))).to.deep.equal(['hmi-flt-01 10.20.30.50:44818']);
    expect(ports(order({ assetIds: ['PLC-HLP-02'] }))).to.have.members(['plc-hlp-02 10.20.30.41:502', 'plc-hlp-02 10.20.30.41:44818']);
  });

  it('denies a closed order with STATUS_NOT_ALLOWED', () => {
    const e = evaluate([order({ status: 'closed', sourceStatus: 'CLOSE' })], register, policySet, now);
    expect(e.grants).to.deep.equal([]);
    expect(e.denials.map((d) => d.code)).to.deep.equal(['STATUS_NOT_ALLOWED']);
  });

  it('needs two approvers for emergency work on a critical asset and caps it at 4h', () => {
    const emergency = order({ type: 'emergency', window: { start: now, end: new Date(now.getTime() + 10 * H) } });
    expect(evaluate([emergency], register, policySet, now).denials.map((d) => d.code)).to.deep.equal(['INSUFFICIENT_APPROVALS']);
    const e = evaluate([{ ...emergency, approvals: [{ by: 'ops-supervisor' }, { by: 'security-oncall' }] }], register, policySet, now);
    expect(e.grants[0]).to.deep.include({ rule: 'plc-maintenance/emergency-critical', capped: true, validUntil: new Date(now.getTime() + 4 * H) });
    expect(evaluate([{ ...emergency, assetIds: ['hmi-flt-01'] }], register, policySet, now).denials.map((d) => d.code)).to.deep.equal(['NO_MATCHING_RULE']);
  });

  it('gives a vendor technician without a VPN address nothing', () => {
    const codes = evaluate([order({ vendorId: 'hydro-analytics', technicianIds: ['tech-mkeller'], assetIds: ['HIST-SCADA-01'] })], register, policySet, now).denials.map((d) => d.code);
    expect(codes).to.deep.equal(['NO_MATCHING_RULE']);
  });
});
