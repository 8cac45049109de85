import { MaintainXSource } from '../../src/sources/maintainx.js';
import { SapSource } from '../../src/sources/sap.js';
import { MaintainXSim, maintainxSimMapping } from '../sims/maintainx.js';
import { SapSim, simSourceOptions } from '../sims/sap.js';
import { sourceContract } from './source-contract.js';

// Every CMMS adapter, through the same behaviour, each against its own simulator over real HTTP.
const MX_KEY = 'mx-contract-api-key';
const MX_SECRET = 'mx-contract-webhook-secret';
sourceContract(
  'MaintainX',
  () => new MaintainXSim({ apiKey: MX_KEY, webhookSecret: MX_SECRET }).start(),
  (sim) => new MaintainXSource({ id: 'maintainx', baseUrl: sim.url, apiKey: MX_KEY, webhook: { secrets: [MX_SECRET] }, ...maintainxSimMapping() }),
);

sourceContract(
  'SAP PM',
  async () => {
    const sim = await new SapSim().start();
    return sim;
  },
  (sim) => new SapSource(simSourceOptions(sim as SapSim)),
);
