import fs from 'node:fs';
import { expect } from 'chai';
import Ajv from 'ajv';
import fc from 'fast-check';
import YAML from 'yaml';
import type { NetworkResource, Resource } from '../../src/domain/index.js';
import { PANOS_TARGET_SCHEMA, panosTargetOptions, PanosTarget, type PanosScope, type PanosTargetOptions } from '../../src/targets/panos.js';
import { TargetError, type CallContext, type TargetGrant } from '../../src/targets/target.js';
import { PanosSim, type PanosSimOptions } from '../sims/panos.js';
import { PATIENT_MS, recordingLogger, sampleGrant, simulatedSetup, targetContract } from './target-contract.js';

const SCOPES: readonly PanosScope[] = [
  { address: '10.20.0.10', port: 502, protocol: 'tcp', tag: 'wogate-plc1-modbus' },
  { address: '10.20.0.10', port: 44818, protocol: 'tcp', tag: 'wogate-plc1-enip' },
  { address: '10.20.0.11', port: 161, protocol: 'udp', tag: 'wogate-rtu2-snmp' },
];
const [MODBUS, ENIP] = SCOPES as [PanosScope, PanosScope, PanosScope];

/** A technician address of its own for each n, through one of the scopes: few DAGs, many technicians. */
function resource(n: number): Resource {
  const s = SCOPES[n % SCOPES.length] as PanosScope;
  return { kind: 'network', sourceAddress: `10.78.${Math.floor(n / 250) % 250}.${(n % 250) + 2}`, address: s.address, port: s.port, protocol: s.protocol };
}

function flow(scope: PanosScope, sourceAddress: string): NetworkResource {
  return { kind: 'network', sourceAddress, address: scope.address, port: scope.port, protocol: scope.protocol };
}

targetContract('PanosTarget (static API key) against the PAN-OS simulator', async ({ secret }) => {
  const sim = await PanosSim.start({ apiKey: secret });
  const target = (timeoutMs: number) => new PanosTarget({ id: 'pa', baseUrl: sim.url, apiKey: secret, scopes: SCOPES, timeoutMs });
  return simulatedSetup(target, sim, (o) => sampleGrant('pa', o, new Date(), resource));
});

targetContract('PanosTarget (generated API key) against the PAN-OS simulator', async ({ secret }) => {
  const sim = await PanosSim.start({ username: 'svc-wogate', password: secret, vsys: ['vsys1', 'vsys2'] });
  const target = (timeoutMs: number) => new PanosTarget({ id: 'pa', baseUrl: sim.url, username: 'svc-wogate', password: secret, vsys: 'vsys2', scopes: SCOPES, timeoutMs });
  return simulatedSetup(target, sim, (o) => sampleGrant('pa', o, new Date(), resource));
});

describe('PanosTarget', () => {
  const KEY = 'LUFRPT-static-key-5b1c0e7d9a';
  let sim: PanosSim;
  let target: PanosTarget;
  let log: ReturnType<typeof recordingLogger>;
  const ctx = (now = new Date()): CallContext => ({ now, log });

  /** A simulator and a target; with `login`, the target generates its key from username and password. */
  async function start(simOptions: PanosSimOptions = {}, options: Partial<PanosTargetOptions> = {}, login?: { username: string; password: string }): Promise<void> {
    sim = await PanosSim.start({ apiKey: KEY, ...simOptions });
    target = new PanosTarget({ id: 'pa', baseUrl: sim.url, scopes: SCOPES, timeoutMs: PATIENT_MS, ...(login ?? { apiKey: KEY }), ...options });
  }

  function grant(r: NetworkResource, validUntil: Date, o: Partial<TargetGrant> = {}): TargetGrant {
    return sampleGrant('pa', { resource: r, validUntil, ...o });
  }

  async function failure(call: Promise<unknown>): Promise<TargetError> {
    const e = await call.then(() => undefined, (err: unknown) => err);
    expect(e).to.be.instanceOf(TargetError);
    return e as TargetError;
  }

  beforeEach(() => {
    log = recordingLogger();
  });

  afterEach(async () => {
    await target?.close();
    await sim?.close();
  });

  describe('provision', () => {
    it('registers the address with the scope tag, timeout = whole seconds to validUntil, persistent="0", key in X-PAN-KEY only', async () => {
      await start({ vsys: ['vsys1', 'vsys2'] }, { vsys: 'vsys2' });
      const now = new Date();
      await target.provision(grant(flow(MODBUS, '10.8.0.21'), new Date(now.getTime() + 5_400_700)), ctx(now));

      expect(sim.uidMessages()).to.deep.equal([
        '<uid-message><version>1.0</version><type>update</type><payload>'
        + '<register><entry ip="10.8.0.21" persistent="0"><tag><member timeout="5400">wogate-plc1-modbus</member></tag></entry></register>'
        + '</payload></uid-message>',
      ]);
      const [req] = sim.requests;
      expect(req).to.include({ method: 'POST', type: 'user-id', vsys: 'vsys2', keyHeader: KEY });
      expect(req?.queryNames, 'nothing in the URL').to.deep.equal([]);
      expect(req?.bodyNames, 'no key in the body either').to.not.include('key');
      expect(sim.registered('10.8.0.21', 'vsys2').map(({ tag, timeout, persistent }) => ({ tag, timeout, persistent }))).to.deep.equal([{ tag: 'wogate-plc1-modbus', timeout: 5400, persistent: false }]);
      expect(sim.registered('10.8.0.21', 'vsys1')).to.deep.equal([]);
    });

    it('refreshes the timeout of a tag the address already has by unregister + register in one uid-message', async () => {
      await start();
      const now = new Date();
      sim.registerByHand('10.8.0.20', MODBUS.tag, 60);
      await target.provision(grant(flow(MODBUS, '10.8.0.20'), new Date(now.getTime() + 3_600_000)), ctx(now));
      expect(sim.uidMessages()[1]).to.equal(
        '<uid-message><version>1.0</version><type>update</type><payload>'
        + '<unregister><entry ip="10.8.0.20"><tag><member>wogate-plc1-modbus</member></tag></entry></unregister>'
        + '<register><entry ip="10.8.0.20" persistent="0"><tag><member timeout="3600">wogate-plc1-modbus</member></tag></entry></register>'
        + '</payload></uid-message>',
      );
      expect(sim.uidMessages()).to.have.length(2);
      expect(sim.registered('10.8.0.20').map((r) => [r.timeout, r.persistent])).to.deep.equal([[3600, false]]);
    });

    it('update gives an address that already holds the tag the new timeout', async () => {
      await start();
      const now = new Date();
      const g = grant(flow(MODBUS, '10.8.0.22'), new Date(now.getTime() + 3_600_000));
      const ref = await target.provision(g, ctx(now));
      await target.update({ ...g, validUntil: new Date(now.getTime() + 7_200_000) }, ref, ctx(now));
      expect(sim.registered('10.8.0.22').map((r) => r.timeout)).to.deep.equal([7200]);
      await target.update({ ...g, validUntil: new Date(now.getTime() + 600_000) }, ref, ctx(now));
      expect(sim.registered('10.8.0.22').map((r) => r.timeout), 'a shortened window shortens the timeout').to.deep.equal([600]);
    });

    it('still refreshes the timeout on a firewall that applies the register before the unregister', async () => {
      await start({ order: 'register-first' });
      const now = new Date();
      const g = grant(flow(ENIP, '10.8.0.23'), new Date(now.getTime() + 3_600_000));
      await target.provision(g, ctx(now));
      expect(sim.registered('10.8.0.23').map((r) => r.timeout), 'a new tag is registered alone, never swapped').to.deep.equal([3600]);
      await target.update({ ...g, validUntil: new Date(now.getTime() + 9_000_000) }, undefined, ctx(now));
      expect(sim.registered('10.8.0.23').map((r) => r.timeout)).to.deep.equal([9000]);
      expect(sim.uidMessages().at(-1), 'registered again on its own').to.match(/^<uid-message>.*<payload><register>.*timeout="9000".*<\/register><\/payload>/);
    });

    it('registers a window longer than 30 days for 30 days, the PAN-OS maximum, and warns that it lapses early', async () => {
      await start();
      const now = new Date();
      await target.provision(grant(flow(MODBUS, '10.8.0.24'), new Date(now.getTime() + 45 * 86_400_000)), ctx(now));
      expect(sim.uidMessages()[0]).to.include('<member timeout="2592000">');
      expect(log.lines.some((l) => l.includes('"level":"warn"') && l.includes('lapses early'))).to.equal(true);
    });

    it('leaves no tag for a window that has ended instead of sending timeout="0" (no expiry)', async () => {
      await start();
      const now = new Date();
      sim.registerByHand('10.8.0.25', MODBUS.tag, 600);
      await target.provision(grant(flow(MODBUS, '10.8.0.25'), new Date(now.getTime() + 900)), ctx(now));
      expect(sim.uidMessages()).to.have.length(1);
      expect(sim.uidMessages()[0]).to.not.include('<register>').and.not.include('timeout=');
      expect(sim.registered('10.8.0.25')).to.deep.equal([]);
    });

    it('refuses a flow no scope maps, as not retryable, without calling the firewall', async () => {
      await start();
      const e = await failure(target.provision(grant({ ...flow(MODBUS, '10.8.0.26'), port: 503 }, new Date(Date.now() + 60_000)), ctx()));
      expect(e.retryable).to.equal(false);
      expect(e.message).to.include('no scope maps 10.20.0.10:503/tcp to a tag');
      expect(sim.requests).to.have.length(0);
    });

    it('refuses any sourceAddress but a dotted quad before building XML, so no value can inject markup', async () => {
      await start();
      for (const bad of ['10.0.0.1" persistent="1', '10.0.0.1"/><entry ip="0.0.0.0', '010.0.0.1', '10.0.0.1 ', '10.0.0.0/8', '::1']) {
        const e = await failure(target.provision(grant(flow(MODBUS, bad), new Date(Date.now() + 60_000)), ctx()));
        expect(e.retryable, bad).to.equal(false);
      }
      await fc.assert(
        fc.asyncProperty(fc.string({ maxLength: 20 }), async (text) => {
          const before = sim.requests.length;
          const ok = await target.provision(grant(flow(MODBUS, text), new Date(Date.now() + 60_000)), ctx()).then(() => true, () => false);
          // Only a clean address goes out, and then it is the one entry of the message.
          if (ok) expect(sim.uidMessages().at(-1)).to.include(`<entry ip="${text}" persistent="0">`);
          else expect(sim.requests.length).to.equal(before);
        }),
        { numRuns: 40 },
      );
    });

    it('fails as not retryable with the firewall\'s words when an address already has 32 tags', async () => {
      await start();
      for (let i = 0; i < 32; i++) sim.registerByHand('10.8.0.27', `other-${i}`);
      const e = await failure(target.provision(grant(flow(MODBUS, '10.8.0.27'), new Date(Date.now() + 60_000)), ctx()));
      expect(e.retryable).to.equal(false);
      expect(e.message).to.include('register 10.8.0.27:').and.include('maximum of 32 tags');
    });
  });

  describe('errors inside HTTP 200', () => {
    it('an internal-error code (2) in a 200 answer is a retryable TargetError, never success', async () => {
      await start();
      sim.faults.failNext(1, 'error-in-200');
      const e = await failure(target.provision(grant(flow(MODBUS, '10.8.0.30'), new Date(Date.now() + 60_000)), ctx()));
      expect(e.retryable).to.equal(true);
      expect(e.message).to.include('answered 200 with an error: code 2: Internal error: User-ID daemon is busy');
      expect(e.details).to.include({ panosCode: '2', status: 200 });
    });

    it('any other refusal in a 200 answer is not retryable', async () => {
      await start();
      sim.errorIn200Body = '<response status="error" code="17"><msg><line>invalid command: vsys3 is not a virtual system</line></msg></response>';
      sim.faults.failNext(1, 'error-in-200');
      const e = await failure(target.provision(grant(flow(MODBUS, '10.8.0.31'), new Date(Date.now() + 60_000)), ctx()));
      expect(e.retryable).to.equal(false);
      expect(e.message).to.include('vsys3 is not a virtual system');
    });

    it('a per-entry refusal worded as transient is retryable', async () => {
      await start();
      sim.errorIn200Body = '<response status="error"><msg><line><uid-response><version>2.0</version><payload><register>'
        + '<entry ip="10.8.0.32" message="User-ID process not ready, try again later"/></register></payload></uid-response></line></msg></response>';
      sim.faults.failNext(1, 'error-in-200');
      const e = await failure(target.provision(grant(flow(MODBUS, '10.8.0.32'), new Date(Date.now() + 60_000)), ctx()));
      expect(e.retryable).to.equal(true);
      expect(e.message).to.include('register 10.8.0.32: User-ID process not ready');
    });

    for (const [what, body, reason] of [
      ['a proxy\'s HTML page', '<html><body>Gateway login</body></html>', 'expected <response status="success|error">'],
      ['success without a uid-response', '<response status="success"><result/></response>', 'success without a <uid-response>'],
      ['an empty body', '', 'an empty body'],
    ] as const) {
      it(`an unexpected answer (${what}) leaves a retryable error that says why`, async () => {
        await start();
        sim.errorIn200Body = body;
        sim.faults.failNext(1, 'error-in-200');
        const e = await failure(target.provision(grant(flow(MODBUS, '10.8.0.33'), new Date(Date.now() + 60_000)), ctx()));
        expect(e.retryable).to.equal(true);
        expect(e.message).to.include(reason);
        expect(e.details).to.include({ code: 'TARGET_RESPONSE_INVALID' });
      });
    }

    it('a registered-ip table whose count disagrees with its entries is a retryable error, not a short list', async () => {
      await start();
      sim.errorIn200Body = '<response status="success"><result><entry ip="10.8.0.34"><tag><member>wogate-plc1-modbus</member></tag></entry><count>500</count></result></response>';
      sim.faults.failNext(1, 'error-in-200');
      const e = await failure(target.list(ctx()));
      expect(e.retryable).to.equal(true);
      expect(e.message).to.include('count says 500 entries but 1 came back');
    });
  });

  describe('API key', () => {
    it('generates a key with the password in the POST body, and once more when the firewall stops accepting it', async () => {
      const password = 'pw-never-print-7c1f';
      await start({ username: 'svc-wogate', password }, {}, { username: 'svc-wogate', password });
      await target.provision(grant(flow(MODBUS, '10.8.0.40'), new Date(Date.now() + 60_000)), ctx());
      sim.expireKeys();
      await target.provision(grant(flow(MODBUS, '10.8.0.41'), new Date(Date.now() + 60_000)), ctx());
      const keygens = sim.requests.filter((r) => r.type === 'keygen');
      expect(keygens).to.have.length(2);
      expect(keygens[0]?.queryNames).to.deep.equal([]);
      expect(keygens[0]?.bodyNames).to.include.members(['user', 'password']);
      expect(sim.requests.filter((r) => r.type === 'user-id').map((r) => r.keyHeader?.startsWith('LUFRPT'))).to.deep.equal([true, true, true]);
      expect(sim.registered('10.8.0.41')).to.have.length(1);
      expect(log.lines.join('\n')).to.not.include(password);
    });

    it('a wrong password fails as not retryable, and the password is nowhere in the error', async () => {
      const password = 'pw-wrong-3e9a';
      await start({ username: 'svc-wogate', password: 'the-right-one' }, {}, { username: 'svc-wogate', password });
      const e = await failure(target.list(ctx()));
      expect(e.retryable).to.equal(false);
      expect(e.message).to.include('API key generation for "svc-wogate"').and.include('Invalid Credential');
      expect(`${e.message} ${JSON.stringify(e.details)} ${e.stack}`).to.not.include(password);
    });

    it('a refused static key fails as not retryable (403 Invalid Credential)', async () => {
      await start({ apiKey: 'another-key' });
      const e = await failure(target.list(ctx()));
      expect(e.retryable).to.equal(false);
      expect(e.message).to.include('answered 403').and.include('Invalid Credential');
      expect(e.message).to.not.include(KEY);
    });

    it('through Panorama, every call names the managed firewall with target', async () => {
      await start({ serial: '007951000123456' }, { target: '007951000123456' });
      await target.provision(grant(flow(MODBUS, '10.8.0.42'), new Date(Date.now() + 60_000)), ctx());
      await target.list(ctx());
      expect(sim.requests.map((r) => r.target)).to.deep.equal(['007951000123456', '007951000123456']);
    });
  });

  describe('init', () => {
    it('lets wogate start while the firewall is unreachable, but not with a refused key', async () => {
      await start();
      sim.faults.failNext(1, 'server-error');
      await target.init(ctx());
      expect(log.lines.some((l) => l.includes('not reachable at start'))).to.equal(true);
      const refused = new PanosTarget({ id: 'pa', baseUrl: sim.url, apiKey: 'wrong-key-0000', scopes: SCOPES, timeoutMs: PATIENT_MS });
      try {
        expect((await failure(refused.init(ctx()))).retryable).to.equal(false);
      } finally {
        await refused.close();
      }
    });
  });

  describe('list, revoke and drift', () => {
    it('lists a registration made by hand with a wogate tag and removes it by revokeEntry; other tags are never listed or touched', async () => {
      await start();
      sim.registerByHand('10.9.9.9', MODBUS.tag, 600);
      sim.registerByHand('10.9.9.9', 'quarantine');
      sim.registerByHand('10.9.0.0/24', ENIP.tag);
      const entries = await target.list(ctx());
      expect(entries.map((e) => e.ref)).to.deep.equal([{ ip: '10.9.0.0/24', tag: ENIP.tag }, { ip: '10.9.9.9', tag: MODBUS.tag }]);
      expect(entries[1]?.resource).to.deep.equal(flow(MODBUS, '10.9.9.9'));
      expect(entries[1]?.expiresAt?.getTime()).to.be.closeTo(Date.now() + 600_000, 2_000);
      expect(entries[0]?.expiresAt, 'no timeout, no expiry').to.equal(undefined);

      for (const e of entries) await target.revokeEntry(e, ctx());
      expect(await target.list(ctx())).to.deep.equal([]);
      expect(sim.registered('10.9.9.9').map((r) => r.tag)).to.deep.equal(['quarantine']);

      const refused = await failure(target.revokeEntry({ ref: { ip: '10.9.9.9', tag: 'quarantine' } }, ctx()));
      expect(refused.retryable).to.equal(false);
      expect(sim.registered('10.9.9.9')).to.have.length(1);
    });

    it('a tag ends by the firewall\'s own clock: past validUntil it is no longer listed', async () => {
      let now = new Date('2026-11-22T10:00:00Z');
      await start({ clock: () => now });
      await target.provision(grant(flow(MODBUS, '10.8.0.50'), new Date(now.getTime() + 120_000)), ctx(now));
      expect(await target.list(ctx(now))).to.have.length(1);
      now = new Date(now.getTime() + 119_000);
      expect(await target.list(ctx(now))).to.have.length(1);
      now = new Date(now.getTime() + 1_000);
      expect(await target.list(ctx(now))).to.deep.equal([]);
    });

    it('revoke also unregisters the tag the stored ref names when the scope has been retagged since', async () => {
      await start();
      sim.registerByHand('10.8.0.51', 'wogate-plc1-old', 600);
      const g = grant(flow(MODBUS, '10.8.0.51'), new Date(Date.now() + 60_000));
      await target.revoke(g, { ip: '10.8.0.51', tag: 'wogate-plc1-old' }, ctx());
      expect(sim.uidMessages()[0]).to.include('<member>wogate-plc1-modbus</member><member>wogate-plc1-old</member>');
      expect(sim.registered('10.8.0.51')).to.deep.equal([]);
    });
  });

  describe('config', () => {
    const block = {
      baseUrl: 'https://fw1.plant.example',
      apiKey: 'resolved-key',
      scopes: [{ address: '10.20.0.10', port: 502, protocol: 'tcp', tag: 'wogate-plc1-modbus' }],
    };

    it('builds options from a valid block', () => {
      const o = panosTargetOptions('fw1', { ...block, vsys: 'vsys2', timeout: '5s', maxTagTimeout: '7d' });
      expect(o).to.deep.include({ id: 'fw1', vsys: 'vsys2', timeoutMs: 5000, maxTagTimeoutSeconds: 604_800, tagPrefix: 'wogate-' });
    });

    for (const [why, change, field] of [
      ['two scopes share a tag', { scopes: [...block.scopes, { address: '10.20.0.10', port: 503, protocol: 'tcp', tag: 'wogate-plc1-modbus' }] }, 'panos.scopes[1].tag'],
      ['a tag lacks the wogate prefix', { scopes: [{ ...block.scopes[0], tag: 'plc1-modbus' }] }, 'panos.scopes[0].tag'],
      ['a tag could break out of XML', { scopes: [{ ...block.scopes[0], tag: 'wogate-"x' }] }, 'panos.scopes[0].tag'],
      ['the same flow is listed twice', { scopes: [...block.scopes, { ...block.scopes[0], tag: 'wogate-other' }] }, 'panos.scopes[1]'],
      ['the maximum timeout is over 30 days', { maxTagTimeout: '31d' }, 'panos.maxTagTimeout'],
      ['apiKey and a password are both given', { username: 'u', password: 'p' }, 'panos.apiKey'],
      ['caPem is not PEM', { caPem: 'not a certificate' }, 'panos.caPem'],
    ] as const) {
      it(`rejects a block where ${why}, naming ${field}`, () => {
        expect(() => panosTargetOptions('fw1', { ...block, ...change })).to.throw(field).with.property('code', 'CONFIG_INVALID');
      });
    }

    it('the targets: example in docs/targets/panos.md validates against PANOS_TARGET_SCHEMA', () => {
      const doc = fs.readFileSync(new URL('../../docs/targets/panos.md', import.meta.url), 'utf8');
      const yaml = /```yaml\n([\s\S]*?)```/.exec(doc)?.[1] ?? '';
      const [example] = (YAML.parse(yaml) as { targets: { id: string; kind: string; panos: Record<string, unknown> }[] }).targets;
      const definitions = (JSON.parse(fs.readFileSync(new URL('../../config/schemas/config.schema.json', import.meta.url), 'utf8')) as { definitions: Record<string, unknown> }).definitions;
      const validate = new Ajv.default({ strict: true, allErrors: true, strictRequired: false }).compile({ ...PANOS_TARGET_SCHEMA, definitions: { secretRef: definitions['secretRef'], duration: definitions['duration'] } });
      expect(example?.kind).to.equal('panos');
      expect(validate(example?.panos), JSON.stringify(validate.errors)).to.equal(true);
      const resolved = { ...example?.panos, apiKey: 'resolved-key', caPem: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n' };
      expect(() => panosTargetOptions('fw1', resolved)).to.not.throw();
      expect(validate({ ...example?.panos, tagPrefix: 'x y' }), 'a bad value is caught too').to.equal(false);
    });
  });
});
