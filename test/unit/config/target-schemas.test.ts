import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import YAML from 'yaml';
import { buildTargets } from '../../../src/cli/runtime.js';
import { ADAPTER_TARGET_KINDS, loadConfig, targetHolds } from '../../../src/config/config.js';
import { TARGET_BLOCK_SCHEMAS } from '../../../src/targets/schemas.js';
import { exampleConfig, REPO } from '../../helpers/daemon.js';
import { tmpDir } from '../../helpers/world.js';

/** The first `targets:` example of a target's doc page. */
function docExample(kind: string): Record<string, unknown> {
  const text = fs.readFileSync(path.join(REPO, 'docs/targets', `${kind}.md`), 'utf8');
  const block = [...text.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1] as string).find((b) => b.startsWith('targets:'));
  const t = (YAML.parse(block ?? 'targets: []') as { targets: Record<string, unknown>[] }).targets[0];
  if (!t) throw new Error(`docs/targets/${kind}.md has no targets: example`);
  return t;
}

describe('config schema for target adapters', () => {
  const schema = JSON.parse(fs.readFileSync(path.join(REPO, 'config/schemas/config.schema.json'), 'utf8')) as { definitions: Record<string, unknown> };

  it('carries each adapter\'s own schema for its block, unchanged (else run scripts/merge-target-schemas.ts)', () => {
    for (const [kind, frag] of Object.entries(TARGET_BLOCK_SCHEMAS)) {
      expect(schema.definitions[`${kind}TargetBlock`], kind).to.deep.equal(JSON.parse(JSON.stringify(frag)));
    }
    expect(Object.keys(TARGET_BLOCK_SCHEMAS).sort()).to.deep.equal([...ADAPTER_TARGET_KINDS].sort());
  });

  it('loads each documented example, resolves its secrets from the environment and builds the adapter', () => {
    const dir = tmpDir();
    try {
      const examples = ADAPTER_TARGET_KINDS.map((kind) => ({ ...docExample(kind), id: `t-${kind}` }));
      // Every env: reference in the examples gets a value; file: references point at a PEM written here.
      const pem = path.join(dir, 'ca.pem');
      fs.writeFileSync(pem, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
      const secret = path.join(dir, 'secret');
      fs.writeFileSync(secret, 'a-secret-long-enough-for-any-check\n', { mode: 0o600 });
      const env: Record<string, string> = {};
      const text = YAML.stringify(examples).replace(/env:([A-Za-z_][A-Za-z0-9_]*)/g, (_m, name: string) => {
        env[name] = `value-of-${name}-long-enough-for-any-check`;
        return `env:${name}`;
      }).replace(/(caPem: )?file:\/[^\s"']+/g, (_m, ca: string | undefined) => (ca ? `caPem: file:${pem}` : `file:${secret}`));
      const file = exampleConfig(dir, (c) => {
        c.targets.push(...(YAML.parse(text) as unknown[]));
      });
      const config = loadConfig(file, { ...process.env });
      const holds = targetHolds(config);
      expect(holds.get('t-cyberark')).to.deep.equal(['pam']);
      expect(holds.get('t-lenel')).to.deep.equal(['badge']);
      const targets = buildTargets(config, { ...process.env, ...env });
      for (const kind of ADAPTER_TARGET_KINDS) expect(targets.get(`t-${kind}`)?.kind, kind).to.equal(kind);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a target block of another kind, naming the path', () => {
    const dir = tmpDir();
    try {
      const bad = exampleConfig(dir, (c) => {
        c.targets.push({ id: 'pam', kind: 'cyberark', fortigate: docExample('fortigate')['fortigate'] });
      });
      expect(() => loadConfig(bad)).to.throw(/targets\/\d+/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
