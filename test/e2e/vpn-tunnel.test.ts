import { execFileSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { until } from '../helpers/daemon.js';
import { Netns, netnsAvailable, veth } from '../helpers/netns.js';
import { skipOrFail } from '../helpers/skip.js';
import { OPENVPN, openssl, siteCa, startVpnPortal, staticKeyText, type VpnPortal } from '../helpers/vpn-portal.js';
import { tmpDir } from '../helpers/world.js';

const NEEDS = 'These tests need Linux, root, iproute2, nftables, OpenVPN (apt-get install openvpn) and /dev/net/tun. Run them as root (CI always does).';
const SERVER_NAME = 'vpn.north-wtp.test';
const SERVER_ADDRESS = '10.79.0.1';
const TUNNEL_SERVER = '10.79.8.1';

/** Everything a process printed so far. */
function captured(p: ChildProcessWithoutNullStreams): { text(): string; exited: Promise<void> } {
  let out = '';
  p.stdout.on('data', (b: Buffer) => (out += b.toString()));
  p.stderr.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<void>((resolve) => p.once('exit', () => resolve()));
  return { text: () => out, exited };
}

/** Makes /dev/net/tun where a container left it out; the reason when that is not possible. */
function tunDevice(): string | undefined {
  if (fs.existsSync('/dev/net/tun')) return undefined;
  try {
    fs.mkdirSync('/dev/net', { recursive: true });
    execFileSync('mknod', ['/dev/net/tun', 'c', '10', '200']);
    fs.chmodSync('/dev/net/tun', 0o600);
    return undefined;
  } catch (e) {
    return `/dev/net/tun is missing and cannot be made: ${(e as Error).message}`;
  }
}

// The whole path of a vendor VPN: the technician collects the OpenVPN profile from the portal, an
// OpenVPN server in the plant's namespace trusts wogate's CA and checks wogate's CRL, and the
// profile connects from the vendor's namespace, key unlocked by the one-time passphrase. When the
// order closes, wogate revokes the certificate, and the refreshed CRL keeps the profile out.
describe('e2e: collected OpenVPN profile → tunnel up → order closed → CRL → tunnel refused', function () {
  this.timeout(120_000);
  let files: string;
  let portal: VpnPortal | undefined;
  const made: Netns[] = [];
  let site: Netns;
  let vendor: Netns;

  before(async function () {
    const available = await netnsAvailable();
    if (!available.ok) skipOrFail(this, 'OpenVPN tunnel test', available.why, NEEDS);
    if (!fs.existsSync(OPENVPN)) skipOrFail(this, 'OpenVPN tunnel test', `${OPENVPN} is not installed`, NEEDS);
    const tun = tunDevice();
    if (tun) skipOrFail(this, 'OpenVPN tunnel test', tun, NEEDS);
    files = tmpDir();
    for (const label of ['site', 'vendor']) made.push(await Netns.create(label));
    [site, vendor] = made as [Netns, Netns];
    await veth(site, 'to-vendor', `${SERVER_ADDRESS}/24`, vendor, 'eth0', '10.79.0.2/24');
  });

  after(async () => {
    for (const ns of made) await ns.destroy();
    await portal?.close();
    if (files && fs.existsSync(files)) fs.rmSync(files, { recursive: true, force: true });
  });

  it('connects with the collected profile while the grant lives and is refused once the revocation is on the CRL', async () => {
    const f = (n: string) => path.join(files, n);
    const server = await siteCa(files, SERVER_NAME);
    fs.writeFileSync(f('ta.key'), staticKeyText(), { mode: 0o600 });
    portal = await startVpnPortal({
      format: 'openvpn',
      remotes: [{ host: SERVER_ADDRESS, port: 1194, proto: 'udp' }],
      verifyX509Name: SERVER_NAME,
      serverCa: `file:${server.caPem}`,
      tlsCrypt: `file:${f('ta.key')}`,
    }, path.join(files, 'portal'));
    const p = portal;

    // The plant's OpenVPN server: clients must hold a certificate from wogate's CA that is not on wogate's CRL.
    const publishCrl = async () => {
      fs.writeFileSync(f('crl.tmp'), await (await fetch(`${p.url}/pki/vendor-certs/crl.pem`)).text());
      fs.renameSync(f('crl.tmp'), f('crl.pem'));
    };
    fs.writeFileSync(f('wogate-ca.pem'), await (await fetch(`${p.url}/pki/vendor-certs/ca.pem`)).text());
    await publishCrl();
    fs.writeFileSync(f('server.conf'), [
      'server 10.79.8.0 255.255.255.0', 'topology subnet', 'proto udp', `local ${SERVER_ADDRESS}`, 'port 1194', 'dev tun',
      `ca ${f('wogate-ca.pem')}`, `cert ${server.serverCert}`, `key ${server.serverKey}`, 'dh none',
      `tls-crypt ${f('ta.key')}`, `crl-verify ${f('crl.pem')}`, 'remote-cert-tls client',
      'tls-version-min 1.2', 'data-ciphers AES-256-GCM:CHACHA20-POLY1305', 'verb 3', '',
    ].join('\n'));
    const serverLog = captured(site.spawn(OPENVPN, '--config', f('server.conf')));
    await until(() => serverLog.text().includes('Initialization Sequence Completed'), `the OpenVPN server up:\n${serverLog.text()}`, 20_000);

    const collected = await p.collect();
    expect(collected.status).to.equal(200);
    fs.writeFileSync(f('vendor.ovpn'), collected.profile as string, { mode: 0o600 });
    fs.writeFileSync(f('passphrase'), `${collected.passphrase as string}\n`, { mode: 0o600 });
    fs.writeFileSync(f('cert.pem'), /<cert>\n([\s\S]+?)<\/cert>/.exec(collected.profile as string)?.[1] as string);

    // Connected: the tunnel carries traffic to the server's tunnel address.
    const first = vendor.spawn(OPENVPN, '--config', f('vendor.ovpn'), '--askpass', f('passphrase'));
    const firstLog = captured(first);
    await until(() => firstLog.text().includes('Initialization Sequence Completed'), 'the vendor tunnel up', 30_000)
      .catch((e: Error) => { throw new Error(`${e.message}\nclient:\n${firstLog.text()}\nserver:\n${serverLog.text()}`); });
    const service = captured(site.node(`require('node:net').createServer((s) => s.end('plant says hello')).listen(8502, '${TUNNEL_SERVER}', () => console.log('LISTENING'))`));
    await until(() => service.text().includes('LISTENING'), 'a service on the tunnel address', 10_000);
    const probe = captured(vendor.node(`const s = require('node:net').connect(8502, '${TUNNEL_SERVER}'); s.on('data', (b) => process.stdout.write(b)); s.on('error', (e) => console.log(e.code));`));
    await probe.exited;
    expect(probe.text(), 'a TCP connection through the tunnel').to.equal('plant says hello');
    first.kill('SIGTERM');
    await firstLog.exited;

    // The order closes: wogate revokes the certificate; the server picks up the new CRL on the next connection.
    await p.closeOrder();
    await publishCrl();
    const check = await openssl('verify', '-crl_check', '-CAfile', f('wogate-ca.pem'), '-CRLfile', f('crl.pem'), f('cert.pem')).catch((e: Error) => e.message);
    expect(check).to.include('certificate revoked');
    const seenBefore = serverLog.text().length;
    // Test-only flags, not in the profile: give up on a failed handshake after 10 s and exit, so the client's own verdict can be read.
    const second = vendor.spawn(OPENVPN, '--config', f('vendor.ovpn'), '--askpass', f('passphrase'), '--hand-window', '10', '--tls-exit');
    const secondLog = captured(second);
    await until(() => /certificate revoked/.test(serverLog.text().slice(seenBefore)), 'the server refusing the revoked certificate', 30_000)
      .catch((e: Error) => { throw new Error(`${e.message}\nclient:\n${secondLog.text()}\nserver:\n${serverLog.text().slice(seenBefore)}`); });
    await secondLog.exited;
    expect(secondLog.text()).to.match(/TLS Error: TLS key negotiation failed/);
    expect(secondLog.text()).to.not.include('Initialization Sequence Completed');
  });
});
