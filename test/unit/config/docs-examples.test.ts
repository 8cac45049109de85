import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import YAML from 'yaml';
import { validateWith } from '../../../src/config/schema.js';
import { REPO } from '../../helpers/paths.js';

// The config blocks CMMS administrators copy from docs/sources/ must be valid config.
describe('docs/sources examples', () => {
  const dir = path.join(REPO, 'docs/sources');
  for (const doc of fs.readdirSync(dir).filter((f) => f.endsWith('.md'))) {
    const text = fs.readFileSync(path.join(dir, doc), 'utf8');
    const blocks = [...text.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1] as string).filter((b) => b.startsWith('sources:'));
    it(`${doc}: its sources block is valid against config.schema.json`, () => {
      expect(blocks, `${doc} shows a sources: block`).to.have.length.greaterThan(0);
      for (const b of blocks) {
        const { sources } = YAML.parse(b) as { sources: unknown[] };
        const config = { store: { kind: 'sqlite' }, policies: { dir: 'p' }, register: { assets: 'a', vendors: 'v' }, sources };
        validateWith('config.schema.json', config, doc, 'CONFIG_INVALID');
      }
    });
  }
});

// And the target blocks security teams copy from docs/targets/.
describe('docs/targets examples', () => {
  const dir = path.join(REPO, 'docs/targets');
  for (const doc of fs.readdirSync(dir).filter((f) => f.endsWith('.md'))) {
    const text = fs.readFileSync(path.join(dir, doc), 'utf8');
    const blocks = [...text.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1] as string).filter((b) => b.startsWith('targets:'));
    it(`${doc}: its targets block is valid against config.schema.json`, () => {
      expect(blocks, `${doc} shows a targets: block`).to.have.length.greaterThan(0);
      for (const b of blocks) {
        const { targets } = YAML.parse(b) as { targets: unknown[] };
        validateWith('config.schema.json', { store: { kind: 'sqlite' }, policies: { dir: 'p' }, register: { assets: 'a', vendors: 'v' }, targets }, doc, 'CONFIG_INVALID');
      }
    });
  }
});

describe('config/wogate.example.yaml', () => {
  it('its commented CMMS source examples are valid when uncommented', () => {
    const text = fs.readFileSync(path.join(REPO, 'config/wogate.example.yaml'), 'utf8');
    const start = text.indexOf('  # - id: maximo-plant1');
    const end = text.indexOf('# Downstream systems');
    const yaml = text.slice(start, end).split('\n').filter((l) => l.startsWith('  #')).map((l) => l.replace(/^ {2}# ?/, '')).join('\n');
    const sources = YAML.parse(yaml) as unknown[];
    expect(sources).to.have.length(3);
    validateWith('config.schema.json', { store: { kind: 'sqlite' }, policies: { dir: 'p' }, register: { assets: 'a', vendors: 'v' }, sources }, 'wogate.example.yaml', 'CONFIG_INVALID');
  });
});

describe('docs/staff.md', () => {
  it('its auth and staff block is valid against config.schema.json', () => {
    const text = fs.readFileSync(path.join(REPO, 'docs/staff.md'), 'utf8');
    const block = [...text.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1] as string).find((b) => b.startsWith('auth:'));
    expect(block, 'docs/staff.md shows an auth: and staff: block').to.be.a('string');
    const { auth, staff } = YAML.parse(block as string) as { auth: unknown; staff: unknown };
    expect(staff).to.be.an('object');
    validateWith('config.schema.json', { store: { kind: 'sqlite' }, policies: { dir: 'p' }, register: { assets: 'a', vendors: 'v' }, auth, staff }, 'docs/staff.md', 'CONFIG_INVALID');
  });
});
