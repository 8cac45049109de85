import fs from 'node:fs';
import { expect } from 'chai';
import { openRuntime } from '../../src/cli/runtime.js';
import { silentLogger } from '../../src/log.js';
import { exampleConfig } from '../helpers/daemon.js';
import { tmpDir } from '../helpers/world.js';

describe('asset register sync in the runtime', () => {
  it('merges CMMS asset records with the overlay, withholds a conflicting asset, and remembers the records across a restart', async () => {
    const dir = tmpDir();
    try {
      const file = exampleConfig(dir);
      const rt = await openRuntime({ configFile: file, log: silentLogger });
      expect(rt.world().register.assets.has('plc-cl2-01')).to.equal(true);
      const fresh = await rt.setSourceAssets('demo-cmms', [{ id: 'plc-cl2-01', criticality: 'low' }, { id: 'hmi-flt-01', firmware: 'PanelView Plus 7 v12.0' }]);
      expect(fresh.map((c) => `${c.assetId}.${c.field}`)).to.deep.equal(['plc-cl2-01.criticality']);
      expect(rt.world().register.assets.has('plc-cl2-01')).to.equal(false);
      expect(rt.world().register.withheld?.get('plc-cl2-01')).to.match(/criticality differs/);
      expect(rt.world().register.assets.has('hmi-flt-01'), 'agreeing records are fine').to.equal(true);
      expect(await rt.setSourceAssets('demo-cmms', [{ id: 'plc-cl2-01', criticality: 'low' }]), 'reported once, not on every resync').to.deep.equal([]);
      await rt.store.close();
      const again = await openRuntime({ configFile: file, log: silentLogger });
      expect(again.world().register.withheld?.has('plc-cl2-01'), 'after a restart').to.equal(true);
      await again.store.close();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
