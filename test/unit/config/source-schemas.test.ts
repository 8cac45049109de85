import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { loadConfig } from '../../../src/config/config.js';
import { buildSources } from '../../../src/cli/runtime.js';
import { maintainxSourceSchema } from '../../../src/sources/maintainx.js';
import { SAP_SOURCE_SCHEMA } from '../../../src/sources/sap-schema.js';
import { exampleConfig, REPO } from '../../helpers/daemon.js';
import { tmpDir } from '../../helpers/world.js';

function block(frag: Record<string, unknown>): Record<string, unknown> {
  const f = JSON.parse(JSON.stringify(frag)) as { properties: Record<string, unknown>; required?: string[] };
  delete f.properties.id;
  delete f.properties.kind;
  return { ...f, required: (f.required ?? []).filter((r) => r !== 'id' && r !== 'kind') };
}

describe('config schema for CMMS sources', () => {
  const schema = JSON.parse(fs.readFileSync(path.join(REPO, 'config/schemas/config.schema.json'), 'utf8')) as { definitions: Record<string, unknown> };

  it('carries each adapter\'s own schema for its block, unchanged', () => {
    expect(schema.definitions.maintainxBlock).to.deep.equal(block(maintainxSourceSchema));
    expect(schema.definitions.sapBlock).to.deep.equal(block(SAP_SOURCE_SCHEMA));
  });

  it('loads a MaintainX source with its poll block, resolves its secrets and builds the adapter', () => {
    const dir = tmpDir();
    try {
      const file = exampleConfig(dir, (c) => {
        c.sources[0].webhook.secrets = ['env:DEMO_HOOK'];
        c.sources.push({ id: 'mx', kind: 'maintainx', maintainx: { apiKey: 'env:MX_KEY', webhook: { secrets: ['env:MX_HOOK'], tolerance: '5m' }, timeout: '5s' }, poll: { incremental: '*/2 * * * *', staleAfter: '20m', failClosed: true } });
      });
      const config = loadConfig(file, { ...process.env });
      const mx = config.sources.find((s) => s.id === 'mx');
      expect(mx && mx.kind !== 'generic' ? mx.poll : undefined).to.include({ staleAfterMs: 1_200_000, failClosed: true, fullResync: '0 * * * *' });
      const sources = buildSources(config, { MX_KEY: 'k', MX_HOOK: 'h', DEMO_HOOK: `whsec_${Buffer.alloc(32, 3).toString('base64')}` });
      expect(sources.get('mx')?.kind).to.equal('maintainx');
      expect(() => buildSources(config, { DEMO_HOOK: `whsec_${Buffer.alloc(32, 3).toString('base64')}` })).to.throw(/MX_KEY is not set/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a bad cron expression and a webhook block on an API source, naming the path', () => {
    const dir = tmpDir();
    try {
      const bad = exampleConfig(dir, (c) => {
        c.sources.push({ id: 'mx', kind: 'maintainx', maintainx: { apiKey: 'env:MX_KEY', webhook: { secrets: ['env:MX_HOOK'] } }, poll: { incremental: 'every minute!' } });
      });
      expect(() => loadConfig(bad)).to.throw(/sources\/1\/poll\/incremental/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
