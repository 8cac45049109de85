import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { parseApprovers } from '../../../src/config/approvers-loader.js';
import { loadConfig } from '../../../src/config/config.js';
import { loadPolicyText } from '../../../src/config/policy-loader.js';
import { openRuntime } from '../../../src/cli/runtime.js';
import { isWogateError } from '../../../src/domain/index.js';
import { silentLogger } from '../../../src/log.js';
import { exampleConfig, REPO } from '../../helpers/daemon.js';
import { configRefusal } from '../../helpers/refusal.js';
import { tmpDir } from '../../helpers/world.js';

function registerRefusal(text: string): string {
  try {
    parseApprovers(text, 'approvers.yaml');
  } catch (e) {
    expect(isWogateError(e, 'REGISTER_INVALID'), String(e)).to.equal(true);
    return (e as Error).message;
  }
  throw new Error('expected REGISTER_INVALID');
}

describe('config for what sources and approvers may authorise', () => {
  let dir: string;
  beforeEach(() => {
    dir = tmpDir();
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('refuses a generic source without authorises, naming the source and the key', () => {
    const file = exampleConfig(dir, (c) => {
      delete c.sources[0].authorises;
    });
    expect(configRefusal(() => loadConfig(file))).to.include('/sources/0').and.include('authorises');
  });

  it('keeps authorises ids in canonical form and refuses one hiding an invisible character', () => {
    const ok = exampleConfig(dir, (c) => {
      c.sources[0].authorises = { sites: ['North-WTP'], vendors: ['ＡＣＭＥ-controls'] };
    });
    expect(loadConfig(ok).sources[0]).to.deep.include({ authorises: { sites: ['north-wtp'], vendors: ['acme-controls'] }, trustAssets: false });
    const bad = exampleConfig(dir, (c) => {
      c.sources[0].authorises = { vendors: ['acme\u200b-controls'] };
    });
    expect(configRefusal(() => loadConfig(bad))).to.include('/sources/0/authorises/vendors/0').and.include('U+200B');
  });

  it('warns at start about an API source that may authorise anything', async () => {
    const file = exampleConfig(dir, (c) => {
      c.sources.push({ id: 'mx', kind: 'maintainx', maintainx: { apiKey: 'env:MX_KEY', webhook: { secrets: ['env:MX_HOOK'] } } });
    });
    const rt = await openRuntime({ configFile: file, log: silentLogger });
    try {
      expect(rt.warnings).to.include('source mx has no authorises: its orders may authorise any vendor at any site; list sources[].authorises.sites and vendors');
      expect(rt.world().sources?.get('mx')).to.deep.equal({ trustAssets: false });
    } finally {
      await rt.store.close();
    }
  });

  it('refuses a rule matching a source the config does not have', () => {
    const text = fs.readFileSync(path.join(REPO, 'policies/plc-maintenance.yaml'), 'utf8').replace('      vendors: [acme-controls]\n      sites: [north-wtp]\n      zones: [process-control]\n      assetClasses: [PLC, HMI]\n      orderTypes: [planned, corrective]', '      sources: [maximo-plant9]\n      vendors: [acme-controls]\n      sites: [north-wtp]\n      zones: [process-control]\n      assetClasses: [PLC, HMI]\n      orderTypes: [planned, corrective]');
    expect(() => loadPolicyText(text, 'p.yaml', { knownSources: ['demo-cmms'] })).to.throw(/\/rules\/0\/match\/sources\/0.*unknown source "maximo-plant9" \(configured sources: demo-cmms\)/);
  });

  it('loads the example approvers register, ids and aliases canonical', () => {
    const people = parseApprovers(fs.readFileSync(path.join(REPO, 'config/approvers.example.yaml'), 'utf8'), 'approvers.example.yaml');
    expect(people.find((p) => p.id === 'ops.lee')).to.deep.include({ roles: ['operations-supervisor'], aliases: ['mlee', 'morgan.lee@north-wtp.example'] });
  });

  it('refuses an approvers register giving one id to two people, naming both places', () => {
    const msg = registerRefusal('approvers:\n  - id: ops.lee\n    roles: [operations-supervisor]\n  - id: sec.novak\n    roles: [security-lead]\n    aliases: [OPS.LEE]\n');
    expect(msg).to.include('/approvers/1/aliases/0').and.include('already the id or an alias of /approvers/0 ("ops.lee")');
  });

  it('refuses an approver id with a format character, and a bad role name, with file and path', () => {
    expect(registerRefusal('approvers:\n  - id: "ops\\u200b.lee"\n    roles: [operations-supervisor]\n')).to.include('approvers.yaml').and.include('/approvers/0/id');
    expect(registerRefusal('approvers:\n  - id: ops.lee\n    roles: [Operations Supervisor]\n')).to.include('/approvers/0/roles/0');
  });
});
