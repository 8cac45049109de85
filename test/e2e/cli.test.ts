import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { demoOrder } from '../../src/demo/demo.js';
import { exampleConfig, REPO } from '../helpers/daemon.js';
import { tmpDir } from '../helpers/world.js';

function wogate(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(REPO, 'src/cli/main.ts'), ...args], { cwd: REPO, encoding: 'utf8', env: { ...process.env, ...env }, timeout: 30_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('cli', function () {
  this.timeout(60_000);
  let dir: string;
  beforeEach(() => {
    dir = tmpDir();
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('prints --help for every command', () => {
    for (const cmd of [[], ['serve'], ['source', 'test'], ['policy', 'check'], ['explain'], ['grants', 'list'], ['grants', 'revoke'], ['audit', 'verify'], ['token', 'create'], ['token', 'list'], ['token', 'revoke'], ['token', 'rotate']]) {
      const r = wogate([...cmd, '--help']);
      expect(r.code, cmd.join(' ')).to.equal(0);
      expect(r.out, cmd.join(' ')).to.match(/Usage: wogate/);
    }
  });

  it('policy check passes on the shipped policies, register and config', () => {
    const r = wogate(['policy', 'check', '-c', exampleConfig(dir)]);
    expect(r.err).to.equal('');
    expect(r.code).to.equal(0);
    expect(r.out).to.match(/^ok: \d+ policy file\(s\)/m);
  });

  it('policy check fails when the portal has no vendorClaim and a technician id is listed under two vendors, naming it and both vendors', () => {
    const vendors = path.join(dir, 'vendors.yaml');
    fs.writeFileSync(vendors, 'vendors:\n  - id: acme-controls\n    technicians: [{id: tech-jdoe}]\n  - id: hydro-analytics\n    technicians: [{id: TECH-JDOE}]\n');
    const file = exampleConfig(dir, (c) => {
      c.register.vendors = vendors;
      c.portal = { oidc: { issuer: 'https://idp.example.com', clientId: 'wogate-portal', clientSecret: 'env:X_PORTAL_SECRET', redirectUri: 'https://wogate.example.com/portal/callback' }, credentialKey: 'env:X_PORTAL_KEY' };
    });
    const r = wogate(['policy', 'check', '-c', file]);
    expect(r.code).to.not.equal(0);
    expect(r.err).to.include('technician id "tech-jdoe" is listed under vendors "acme-controls" and "hydro-analytics"').and.include('portal.oidc.vendorClaim');
  });

  it('policy check fails naming the file, the path and what was expected', () => {
    const pdir = path.join(dir, 'policies');
    fs.mkdirSync(pdir);
    fs.writeFileSync(path.join(pdir, 'bad.yaml'), 'apiVersion: wogate/v1\nkind: AccessPolicy\nmetadata: {name: bad}\nrules:\n  - id: r1\n    match: {criticality: [severe]}\n    require: {statuses: [approved], maxDuration: 8h}\n    grant: [{target: demo-gateway}]\n');
    const r = wogate(['policy', 'check', '-c', exampleConfig(dir), '--dir', pdir]);
    expect(r.code).to.not.equal(0);
    expect(r.err).to.include('bad.yaml');
    expect(r.err).to.match(/criticality/);
    expect(r.err).to.match(/low, medium, high, critical/);
  });

  it('serve refuses to start on an invalid config, naming the file and the JSON path', () => {
    const file = exampleConfig(dir, (c) => {
      c.engine.retry.alertAfter = 'often';
      c.server.prot = 1;
    });
    const r = wogate(['serve', '-c', file]);
    expect(r.code).to.not.equal(0);
    expect(r.err).to.include(file);
    expect(r.err).to.match(/alertAfter/);
    expect(r.err).to.match(/prot/);
  });

  it('serve refuses a secret written inline instead of as a reference', () => {
    const file = exampleConfig(dir, (c) => {
      c.sources[0].webhook.secrets = ['whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0'];
    });
    const r = wogate(['serve', '-c', file]);
    expect(r.code).to.not.equal(0);
    expect(r.err).to.match(/secrets\/0/);
    expect(r.err).to.not.include('c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0');
  });

  it('creates a token shown once and stored only as a hash, and verifies the audit chain', () => {
    const file = exampleConfig(dir);
    const r = wogate(['token', 'create', '-c', file, '--name', 'ci', '--scope', 'grants:read']);
    expect(r.code).to.equal(0);
    const tok = r.out.trim();
    expect(tok).to.match(/^wgt_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/);
    const db = fs.readFileSync(path.join(dir, 'wogate.db'));
    // The secret is everything after wgt_<id>_ (base64url, so it may itself contain "_").
    const secret = tok.slice('wgt_'.length + 12 + 1);
    expect(secret).to.have.length(43);
    expect(db.includes(Buffer.from(secret))).to.equal(false);
    const v = wogate(['audit', 'verify', '-c', file]);
    expect(v.code).to.equal(0);
    expect(v.out).to.match(/ok: 1 record/);
  });

  it('source test maps a sample payload and prints the order and the policy decision', () => {
    const file = exampleConfig(dir, (c) => {
      c.sources[0].webhook.secrets = ['env:X_SECRET'];
    });
    const payload = path.join(dir, 'sample.json');
    fs.writeFileSync(payload, JSON.stringify(demoOrder('WO-T1', 'APPR', new Date(), new Date())));
    const r = wogate(['source', 'test', 'demo-cmms', '-c', file, '--payload', payload], { X_SECRET: `whsec_${Buffer.alloc(32, 1).toString('base64')}` });
    expect(r.err).to.equal('');
    expect(r.code).to.equal(0);
    expect(r.out).to.include('"status": "approved"');
    expect(r.out).to.match(/GRANT demo-cmms\/WO-T1 tech-jdoe -> plc-cl2-01/);
  });

  it('rejects an unknown scope', () => {
    const r = wogate(['token', 'create', '-c', exampleConfig(dir), '--name', 'x', '--scope', 'root']);
    expect(r.code).to.not.equal(0);
    expect(r.err).to.match(/root/);
  });
});
