import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import type { Logger } from '../../src/log.js';
import { startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { tmpDir } from '../helpers/world.js';

describe('file: secrets readable by group or others', function () {
  this.timeout(60_000);
  let t: TestDaemon | undefined;
  let dir: string;
  before(() => {
    dir = tmpDir();
  });
  after(async () => {
    await t?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('warns once per file at start, naming the path, the mode and where it is used, never the content', async () => {
    const secret = (name: string, mode: number) => {
      const p = path.join(dir, name);
      fs.writeFileSync(p, `whsec_${Buffer.alloc(32, name.length).toString('base64')}\n`);
      fs.chmodSync(p, mode);
      return p;
    };
    const shared = secret('shared.secret', 0o644);
    const group = secret('group-only.secret', 0o640);
    const tight = secret('tight.secret', 0o600);
    const warns: string[] = [];
    const log: Logger = { debug() {}, info() {}, warn: (m, meta) => void warns.push(`${m} ${JSON.stringify(meta ?? {})}`), error() {}, child: () => log };
    t = await startDaemon({ log, edit: (c) => (c.sources[0].webhook.secrets = [`file:${shared}`, `file:${shared}`, `file:${group}`, `file:${tight}`]) });
    const about = (p: string) => warns.filter((w) => w.includes(p));
    expect(about(shared)).to.have.length(1);
    expect(about(shared)[0]).to.include('mode 0644').and.include('its group and other users').and.include('/sources/0/webhook/secrets/0').and.include('chmod 600');
    expect(about(group)).to.have.length(1);
    expect(about(group)[0]).to.include('mode 0640').and.include('readable by its group (');
    expect(about(tight)).to.deep.equal([]);
    for (const p of [shared, group, tight]) {
      const value = fs.readFileSync(p, 'utf8').trim();
      expect(warns.join('\n')).to.not.include(value).and.not.include(value.slice(6, 30));
    }
  });
});
