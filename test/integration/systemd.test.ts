import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { REPO } from '../helpers/paths.js';
import { skipOrFail } from '../helpers/skip.js';

const UNIT = path.join(REPO, 'systemd/wogate.service');

function directives(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (m) out.set(m[1] as string, [...(out.get(m[1] as string) ?? []), m[2] as string]);
  }
  return out;
}

describe('systemd unit', () => {
  const d = directives(fs.readFileSync(UNIT, 'utf8'));

  it('runs as its own user with no new privileges and a read-only system', () => {
    expect(d.get('User')).to.deep.equal(['wogate']);
    expect(d.get('NoNewPrivileges')).to.deep.equal(['yes']);
    expect(d.get('ProtectSystem')).to.deep.equal(['strict']);
    expect(d.get('ProtectHome')).to.deep.equal(['yes']);
    expect(d.get('PrivateTmp')).to.deep.equal(['yes']);
  });

  it('holds at most CAP_NET_ADMIN, and only for nftables', () => {
    expect(d.get('CapabilityBoundingSet')).to.deep.equal(['CAP_NET_ADMIN']);
    expect(d.get('AmbientCapabilities')).to.deep.equal(['CAP_NET_ADMIN']);
  });

  it('is a notify service with a watchdog', () => {
    expect(d.get('Type')).to.deep.equal(['notify']);
    expect(d.get('WatchdogSec')?.[0]).to.match(/^\d+s$/);
  });

  it('passes systemd-analyze verify', function () {
    const probe = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });
    if (probe.error) skipOrFail(this, 'systemd-analyze verify of the unit file', 'systemd-analyze is not installed', 'This check needs systemd-analyze: apt-get install systemd (.ci/run does).');
    const r = spawnSync('systemd-analyze', ['verify', UNIT], { encoding: 'utf8' });
    // verify warns about the wogate user and /opt/wogate not existing on a build machine; only real errors fail.
    const problems = `${r.stdout}${r.stderr}`.split('\n').filter((l) => l.trim() && !/does not exist|No such file|Failed to resolve user|User .* not found|Unit .* not found|ExecStart=.*node/.test(l));
    expect(problems, problems.join('\n')).to.deep.equal([]);
  });
});
