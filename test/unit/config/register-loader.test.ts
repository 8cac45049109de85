import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { loadRegister, parseAssets, parseVendors } from '../../../src/config/register-loader.js';
import { packageRoot } from '../../../src/config/schema.js';
import { CRITICALITIES, WogateError } from '../../../src/domain/index.js';

const ROOT = packageRoot();

const ASSETS = `assets:
  - id: PLC-1
    class: PLC
    criticality: critical
    site: north-wtp
    zone: process-control
    endpoints:
      - address: 10.20.30.40
        ports: [502]
`;
const VENDORS = `vendors:
  - id: acme-controls
    technicians:
      - id: tech-jdoe
        address: 10.8.0.21
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

function expectProblem(e: WogateError, file: string, pointer: string, expected: string): void {
  expect(e.code).to.equal('REGISTER_INVALID');
  expect(e.message).to.include(file);
  const line = e.message.split('\n').find((l) => l.includes(`${pointer}:`));
  expect(line, `a line naming ${pointer} in:\n${e.message}`).to.be.a('string').and.include(expected);
  expect((e.details as { file: string; errors: { path: string }[] }).errors.map((p) => p.path)).to.include(pointer);
  expect(e.details).to.include({ file });
}

describe('register loader', () => {
  it('loads the shipped asset and vendor registers', () => {
    const r = loadRegister(path.join(ROOT, 'config/assets.example.yaml'), path.join(ROOT, 'config/vendors.example.yaml'));
    expect([...r.assets.keys()]).to.include.members(['plc-cl2-01', 'hmi-flt-01', 'hist-scada-01']);
    expect(r.assets.size).to.be.at.least(4);
    expect(r.assets.get('plc-cl2-01')).to.deep.include({ class: 'PLC', criticality: 'critical', site: 'north-wtp', zone: 'process-control' });
    expect(r.assets.get('plc-cl2-01')?.endpoints[0]).to.deep.include({ address: '10.20.30.40', protocol: 'tcp' });
    expect(r.assets.get('hist-scada-01')).to.include({ class: 'Historian', criticality: 'medium' });
    expect(r.vendors.get('acme-controls')?.technicians.map((t) => t.address)).to.deep.equal(['10.8.0.21', '10.8.0.22']);
    const other = [...r.vendors.values()].find((v) => v.id !== 'acme-controls');
    expect(other?.technicians.every((t) => t.address === undefined)).to.equal(true);
  });

  it('fills in defaults and leaves optional fields out', () => {
    expect(parseAssets(ASSETS.replace(/ {4}endpoints:\n.*\n.*\n$/, ''), 'a.yaml')).to.deep.equal([{ id: 'plc-1', class: 'PLC', criticality: 'critical', site: 'north-wtp', zone: 'process-control', endpoints: [] }]);
    expect(parseAssets(ASSETS, 'a.yaml')[0]?.endpoints).to.deep.equal([{ address: '10.20.30.40', ports: [502], protocol: 'tcp' }]);
    expect(parseVendors(VENDORS.replace('        address: 10.8.0.21\n', ''), 'v.yaml')).to.deep.equal([{ id: 'acme-controls', technicians: [{ id: 'tech-jdoe' }] }]);
  });

  it('keeps the criticality enum in step with the domain', () => {
    const schema = JSON.parse(fs.readFileSync(path.join(ROOT, 'config/schemas/register.schema.json'), 'utf8'));
    expect(schema.$defs.asset.properties.criticality.enum).to.deep.equal([...CRITICALITIES]);
  });

  describe('refuses a bad assets file, naming the file, the path and what was expected', () => {
    const cases: [string, string, string, string][] = [
      ['a bad criticality', ASSETS.replace('critical\n', 'severe\n'), '/assets/0/criticality', 'must be one of: low, medium, high, critical (got "severe")'],
      ['an unknown property', ASSETS.replace('    zone:', '    zonee:'), '/assets/0/zonee', 'unknown property "zonee" (did you mean "zone"?)'],
      ['a missing required key', ASSETS.replace('    site: north-wtp\n', ''), '/assets/0/site', 'is required'],
      ['an address that is not IPv4', ASSETS.replace('10.20.30.40', '10.20.30.400'), '/assets/0/endpoints/0/address', 'must be an IPv4 address'],
      ['an IPv6 address (not yet supported)', ASSETS.replace('10.20.30.40', '"fd00::1"'), '/assets/0/endpoints/0/address', 'IPv6 is not supported yet'],
      ['a port out of range', ASSETS.replace('[502]', '[0]'), '/assets/0/endpoints/0/ports/0', 'must be at least 1 (got 0)'],
      ['a bad protocol', ASSETS.replace('ports: [502]', 'ports: [502]\n        protocol: sctp'), '/assets/0/endpoints/0/protocol', 'must be one of: tcp, udp'],
      ['a vendors file given as the assets file', VENDORS, '/assets', 'is required'],
      ['a duplicate asset id', `${ASSETS}${ASSETS.replace('assets:\n', '')}`, '/assets/1/id', 'duplicate asset id "PLC-1" (first at /assets/0/id)'],
      ['two asset ids that differ only in case', `${ASSETS}${ASSETS.replace('assets:\n', '').replace('PLC-1', 'plc-1')}`, '/assets/1/id', 'duplicate asset id "plc-1" (first at /assets/0/id, spelled "PLC-1": ids are compared case-insensitively in Unicode NFKC form)'],
    ];
    for (const [what, text, pointer, expected] of cases) {
      it(what, () => expectProblem(thrown(() => parseAssets(text, 'assets.yaml')), 'assets.yaml', pointer, expected));
    }

    it('a YAML syntax error, with file:line:col', () => {
      const e = thrown(() => parseAssets(ASSETS.replace('[502]', '[502'), 'assets.yaml'));
      expect(e.code).to.equal('REGISTER_INVALID');
      expect(e.message).to.match(/assets\.yaml:\d+:\d+: YAML: /);
    });

    it('points at the line of the problem', () => {
      expect(thrown(() => parseAssets(ASSETS.replace('critical\n', 'severe\n'), 'assets.yaml')).message).to.match(/^assets\.yaml:4:18: \/assets\/0\/criticality: /);
      expect(thrown(() => parseAssets(ASSETS.replace('    zone:', '    zonee:'), 'assets.yaml')).message).to.include('assets.yaml:6:5: /assets/0/zonee: unknown property');
    });
  });

  describe('refuses a bad vendors file, naming the file, the path and what was expected', () => {
    const tech = (id: string, address?: string) => `      - id: ${id}\n${address ? `        address: ${address}\n` : ''}`;
    const vendor = (id: string, ...techs: string[]) => `  - id: ${id}\n    technicians:\n${techs.join('')}`;
    const cases: [string, string, string, string][] = [
      ['a duplicate vendor id', `vendors:\n${vendor('acme', tech('a', '10.8.0.1'))}${vendor('acme', tech('b', '10.8.0.2'))}`, '/vendors/1/id', 'duplicate vendor id "acme" (first at /vendors/0/id)'],
      ['a duplicate technician id within a vendor', `vendors:\n${vendor('acme', tech('a'), tech('a'))}`, '/vendors/0/technicians/1/id', 'duplicate technician id "a" in vendor "acme" (first at /vendors/0/technicians/0/id)'],
      ['two vendor ids that differ only in case', `vendors:\n${vendor('acme', tech('a'))}${vendor('ACME', tech('b'))}`, '/vendors/1/id', 'duplicate vendor id "ACME" (first at /vendors/0/id, spelled "acme": ids are compared case-insensitively'],
      ['two technician ids of one vendor that differ only in case', `vendors:\n${vendor('acme', tech('J.Doe'), tech('j.doe'))}`, '/vendors/0/technicians/1/id', 'duplicate technician id "j.doe" in vendor "acme" (first at /vendors/0/technicians/0/id, spelled "J.Doe"'],
      ['one badge for two technicians', `vendors:\n${vendor('acme', tech('a') + '        accounts: {badge: "13987"}\n')}${vendor('beta', tech('b') + '        accounts: {badge: "13987", pam: v-b}\n')}`, '/vendors/1/technicians/0/accounts/badge', 'badge account "13987" is already bound to another technician (/vendors/0/technicians/0, "acme/a")'],
      ['an account name that could forge a grant key', `vendors:\n${vendor('acme', tech('a') + '        accounts: {pam: "v|x"}\n')}`, '/vendors/0/technicians/0/accounts/pam', 'an account name without | or control characters'],
      ['an account key that is not a name', `vendors:\n${vendor('acme', tech('a') + '        accounts: {"Bad Key": x}\n')}`, '/vendors/0/technicians/0/accounts', 'must match'],
      ['one address for two technicians of different vendors', `vendors:\n${vendor('acme', tech('a', '10.8.0.1'))}${vendor('beta', tech('b', '10.8.0.1'))}`, '/vendors/1/technicians/0/address', 'address 10.8.0.1 is already bound to another technician (/vendors/0/technicians/0, "acme/a")'],
      ['a technician address that is not IPv4', VENDORS.replace('10.8.0.21', 'vpn-jdoe'), '/vendors/0/technicians/0/address', 'must be an IPv4 address like 10.20.30.40'],
      ['a missing technicians list', 'vendors:\n  - id: acme\n', '/vendors/0/technicians', 'is required'],
      ['an id with spaces', VENDORS.replace('tech-jdoe', '"tech jdoe"'), '/vendors/0/technicians/0/id', 'an id of letters, digits'],
    ];
    for (const [what, text, pointer, expected] of cases) {
      it(what, () => expectProblem(thrown(() => parseVendors(text, 'vendors.yaml')), 'vendors.yaml', pointer, expected));
    }

    it('keeps ids in canonical form: what orders from any source are compared with', () => {
      const [v] = parseVendors(`vendors:\n${vendor('ACME-Controls', tech('Tech-JDoe', '10.8.0.1'))}`, 'vendors.yaml');
      expect(v).to.deep.include({ id: 'acme-controls' });
      expect(v?.technicians.map((t) => t.id)).to.deep.equal(['tech-jdoe']);
      expect(parseAssets(ASSETS, 'assets.yaml').map((a) => a.id)).to.deep.equal(['plc-1']);
    });

    it('accepts the same technician id under two vendors', () => {
      expect(parseVendors(`vendors:\n${vendor('acme', tech('a'))}${vendor('beta', tech('a'))}`, 'vendors.yaml')).to.have.length(2);
    });

    it('reports every duplicate at once', () => {
      const e = thrown(() => parseVendors(`vendors:\n${vendor('acme', tech('a', '10.8.0.1'), tech('a', '10.8.0.1'))}${vendor('acme', tech('c'))}`, 'vendors.yaml'));
      expect((e.details as { errors: { path: string }[] }).errors.map((p) => p.path)).to.deep.equal(['/vendors/0/technicians/1/id', '/vendors/0/technicians/1/address', '/vendors/1/id']);
    });
  });

  describe('files', () => {
    let dir: string;
    beforeEach(() => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wogate-register-'));
    });
    afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

    it('names the file it cannot read', () => {
      fs.writeFileSync(path.join(dir, 'assets.yaml'), ASSETS);
      const e = thrown(() => loadRegister(path.join(dir, 'assets.yaml'), path.join(dir, 'vendors.yaml')));
      expect(e.code).to.equal('REGISTER_INVALID');
      expect(e.message).to.include(path.join(dir, 'vendors.yaml')).and.include('ENOENT');
    });

    it('names the file a problem is in', () => {
      fs.writeFileSync(path.join(dir, 'assets.yaml'), ASSETS);
      fs.writeFileSync(path.join(dir, 'vendors.yaml'), VENDORS.replace('10.8.0.21', '10.8.0'));
      expectProblem(thrown(() => loadRegister(path.join(dir, 'assets.yaml'), path.join(dir, 'vendors.yaml'))), path.join(dir, 'vendors.yaml'), '/vendors/0/technicians/0/address', 'IPv4');
    });
  });
});
