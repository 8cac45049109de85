import fs from 'node:fs';
import { expect } from 'chai';
import { serve } from '../../src/cli/serve.js';
import { silentLogger } from '../../src/log.js';
import { exampleConfig, until } from '../helpers/daemon.js';
import { tmpDir } from '../helpers/world.js';

// What `npm start` shows a newcomer, on the example config: an order approved, two grants, the
// order closed, both revoked; the daemon still running afterwards.
describe('demo (npm start on the example config)', function () {
  this.timeout(40_000);
  for (const cmms of ['generic', 'maximo'] as const) {
    it(`${cmms}: provisions two grants for the approved order and revokes both when it is closed`, async () => {
      const dir = tmpDir();
      const file = exampleConfig(dir, (c) => {
        c.demo = { enabled: true, source: 'demo-cmms', target: 'demo-gateway', cmms, closeAfter: '2s' };
        c.sources[0].webhook.secrets = ['file:./demo/webhook.secret'];
      });
      const d = await serve({ configFile: file, log: silentLogger });
      try {
        await d.demo?.done;
        await until(async () => (await d.runtime.store.listGrants({ states: ['revoked'] })).length === 2, 'both grants revoked');
        const grants = await d.runtime.store.listGrants();
        expect(grants.map((g) => `${g.assetId}:${g.state}`).sort()).to.deep.equal(['hmi-flt-01:revoked', 'plc-cl2-01:revoked']);
        expect(d.demo?.gatewayEntries().size).to.equal(0);
        expect((await fetch(`${d.url}/healthz`)).status, 'still serving').to.equal(200);
        expect(fs.statSync(`${dir}/demo/webhook.secret`).mode & 0o777, 'the generated secret is private').to.equal(0o600);
      } finally {
        await d.stop();
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
