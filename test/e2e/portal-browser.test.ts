import fs from 'node:fs';
import { expect } from 'chai';
import { chromium, type Browser } from 'playwright-core';
import { demoOrder } from '../../src/demo/demo.js';
import { until, type TestDaemon } from '../helpers/daemon.js';
import { skipOrFail } from '../helpers/skip.js';
import type { PortalOidcProvider } from '../helpers/oidc-portal.js';
import { startCertificatePortal, type CertificatePortal } from '../helpers/portal-world.js';

const CHROMIUM = process.env.WOGATE_CHROMIUM ?? '/usr/bin/chromium';

// The vendor portal in a real browser: Chromium follows the real redirects to a real OpenID
// provider and back, keeps the cookies the portal sets, submits its forms, and reports any
// Content-Security-Policy violation on the pages.
describe('e2e: the vendor portal in Chromium', function () {
  this.timeout(90_000);
  let portal: CertificatePortal | undefined;
  let idp: PortalOidcProvider;
  let t: TestDaemon;
  let url: string;
  let browser: Browser;

  before(async function () {
    if (!fs.existsSync(CHROMIUM)) skipOrFail(this, 'portal browser test', `${CHROMIUM} is not installed`, 'This test needs Chromium: apt-get install chromium (CI does), or set WOGATE_CHROMIUM.');
    portal = await startCertificatePortal({
      users: { 'tech-jdoe': { mfa: true }, 'tech-nomfa': { mfa: false } },
      vendors: { 'acme-controls': { 'tech-jdoe': '10.8.0.21', 'tech-nomfa': '10.8.0.22' } },
      envPrefix: 'PORTAL_BROWSER',
    });
    ({ t, idp, url } = portal);
    const now = new Date();
    const o = demoOrder('WO-7', 'APPR', now, now);
    const body = { ...o, data: { workOrder: { ...o.data.workOrder, technicians: [{ id: 'tech-jdoe' }, { id: 'tech-nomfa' }], assets: [{ assetnum: 'PLC-CL2-01' }] } } };
    expect((await t.hook(body)).status).to.equal(202);
    await until(async () => (await t.daemon.runtime.store.listGrants({ states: ['active'] })).length === 2, 'certificate grants active', 20_000);
    // As root (CI), Chromium's sandbox can't start; the test drives a loopback page it serves itself.
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  });

  after(async () => {
    await browser?.close();
    await portal?.close();
  });

  it('signs a technician in with MFA, shows their grant, and hands the certificate over once', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const violations: string[] = [];
    page.on('console', (m) => {
      if (/Content Security Policy/i.test(m.text())) violations.push(m.text());
    });
    idp.loginAs('tech-jdoe');
    await page.goto(`${url}/portal/login`);
    await page.waitForURL(`${url}/portal`);
    const text = await page.textContent('body');
    expect(text).to.include('plc-cl2-01').and.include('tech-jdoe');
    const cookies = await context.cookies(url);
    const session = cookies.find((c) => c.name.includes('wogate_portal'));
    expect(session, 'a session cookie').to.not.equal(undefined);
    expect(session).to.include({ httpOnly: true, sameSite: 'Lax' });

    const action = await page.getAttribute('form[action$="/credential"]', 'action');
    const csrf = await page.getAttribute('form[action$="/credential"] input[name="csrf"]', 'value');
    await Promise.all([page.waitForURL(/\/portal\/grants\/.+\/credential$/), page.click('button:has-text("Collect certificate")')]);
    const passphrase = (await page.textContent('#passphrase'))?.trim() ?? '';
    expect(passphrase.length).to.be.at.least(20);
    const href = await page.getAttribute('a[download]', 'href');
    expect(href).to.match(/^data:application\/x-pkcs12;base64,/);

    // The same form sent again from this session (as a back button and resubmit would): gone.
    const again = await page.request.post(`${url}${action}`, { form: { csrf: csrf ?? '' }, maxRedirects: 0 });
    expect(again.status()).to.equal(410);
    expect(violations, 'no CSP violations').to.deep.equal([]);
    await context.close();
  });

  it('refuses a technician whose sign-in did not use a second factor', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    idp.loginAs('tech-nomfa');
    const responses: number[] = [];
    page.on('response', (r) => {
      if (r.url().startsWith(`${url}/portal/callback`)) responses.push(r.status());
    });
    await page.goto(`${url}/portal/login`);
    await until(() => responses.length > 0, 'the callback answered');
    expect(responses[0]).to.equal(403);
    expect(await page.textContent('body')).to.match(/second factor|MFA|multi-factor/i);
    expect((await context.cookies(url)).some((c) => c.name.includes('wogate_portal') && !c.name.includes('login')), 'no session').to.equal(false);
    await context.close();
  });
});
