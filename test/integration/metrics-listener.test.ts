import fs from 'node:fs';
import { expect } from 'chai';
import { loadConfig } from '../../src/config/config.js';
import { exampleConfig, startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { tmpDir } from '../helpers/world.js';

describe('server.metrics: /metrics on a listener of its own', function () {
  this.timeout(60_000);
  let t: TestDaemon | undefined;
  afterEach(async () => {
    await t?.stop();
    t = undefined;
  });

  it('serves /metrics on the metrics listener only; the main listener answers 404 JSON for it', async () => {
    t = await startDaemon({ edit: (c) => (c.server.metrics = { listen: '127.0.0.1:0' }) });
    const url = t.daemon.metricsUrl as string;
    expect(url).to.match(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    expect(new URL(url).port).to.not.equal(new URL(t.daemon.url).port);
    const main = await fetch(`${t.daemon.url}/metrics`);
    expect(main.status).to.equal(404);
    expect(((await main.json()) as { error: { code: string } }).error.code).to.equal('NOT_FOUND');
    const own = await fetch(url);
    expect(own.status).to.equal(200);
    expect(await own.text()).to.include('wogate_hooks_total');
    const other = await fetch(url.replace(/\/metrics$/, '/healthz'));
    expect(other.status).to.equal(404);
    expect(((await other.json()) as { error: { code: string } }).error.code).to.equal('NOT_FOUND');
  });

  it('keeps /metrics on the main listener when server.metrics is absent', async () => {
    t = await startDaemon();
    expect(t.daemon.metricsUrl).to.equal(undefined);
    expect((await fetch(`${t.daemon.url}/metrics`)).status).to.equal(200);
  });

  describe('config check', () => {
    let dir: string;
    before(() => {
      dir = tmpDir();
    });
    after(() => fs.rmSync(dir, { recursive: true, force: true }));
    const withMetrics = (m: unknown) => exampleConfig(dir, (c) => (c.server.metrics = m));

    it('refuses a non-loopback metrics address unless allowNonLoopback, naming the key', () => {
      expect(() => loadConfig(withMetrics({ listen: '0.0.0.0:9464' }))).to.throw(/\/server\/metrics\/listen: "0.0.0.0" is not a loopback address.*allowNonLoopback/);
      expect(() => loadConfig(withMetrics({ listen: '[2001:db8::1]:9464' }))).to.throw(/\/server\/metrics\/listen/);
      expect(loadConfig(withMetrics({ listen: '10.0.0.5:9464', allowNonLoopback: true })).server.metrics).to.deep.equal({ host: '10.0.0.5', port: 9464 });
      expect(loadConfig(withMetrics({ listen: '[::1]:9464' })).server.metrics).to.deep.equal({ host: '::1', port: 9464 });
    });

    it('refuses a listen value that is not host:port, and unknown keys', () => {
      for (const listen of ['9464', '127.0.0.1', '127.0.0.1:99999', '::1:9464', 'http://127.0.0.1:9464']) {
        expect(() => loadConfig(withMetrics({ listen })), listen).to.throw(/\/server\/metrics\/listen/);
      }
      expect(() => loadConfig(withMetrics({ listen: '127.0.0.1:9464', public: true }))).to.throw(/\/server\/metrics/);
    });
  });
});
