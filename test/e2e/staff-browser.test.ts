import fs from 'node:fs';
import { expect } from 'chai';
import { chromium, type Browser, type Page } from 'playwright-core';
import { until } from '../helpers/daemon.js';
import { skipOrFail } from '../helpers/skip.js';
import { startStaffWorld, type StaffWorld } from '../helpers/staff.js';

const CHROMIUM = process.env.WOGATE_CHROMIUM ?? '/usr/bin/chromium';

// The staff pages in a real browser: Chromium signs in through the real provider, runs the
// countdown script under the pages' Content-Security-Policy, and submits the revoke and kill
// switch forms as an operator would.
describe('e2e: the staff pages in Chromium', function () {
  this.timeout(90_000);
  let w: StaffWorld;
  let browser: Browser;

  before(async function () {
    if (!fs.existsSync(CHROMIUM)) skipOrFail(this, 'staff pages browser test', `${CHROMIUM} is not installed`, 'This test needs Chromium: apt-get install chromium (CI does), or set WOGATE_CHROMIUM.');
    w = await startStaffWorld();
    // As root (CI), Chromium's sandbox can't start; the test drives loopback pages only.
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  });

  after(async () => {
    await browser?.close();
    await w?.close();
  });

  async function signedIn(user: string): Promise<{ page: Page; violations: string[]; close(): Promise<void> }> {
    const context = await browser.newContext();
    const page = await context.newPage();
    const violations: string[] = [];
    page.on('console', (m) => {
      if (/Content Security Policy|Refused to/i.test(m.text())) violations.push(m.text());
    });
    page.on('pageerror', (e) => violations.push(`script error: ${e.message}`));
    w.idp.loginAs(user);
    await page.goto(`${w.url}/staff`);
    await page.waitForURL(`${w.url}/staff`);
    return { page, violations, close: () => context.close() };
  }

  it('counts every grant down each second with the pages\' own script, and no CSP violation', async () => {
    const { page, violations, close } = await signedIn('sec-vic');
    const first = await page.textContent('.countdown');
    expect(first).to.match(/^\d+:\d\d:\d\d$|^\d+ d \d+:\d\d:\d\d$/);
    await until(async () => (await page.textContent('.countdown')) !== first, 'the countdown moved', 5_000);
    expect(await page.locator('.countdown').count()).to.equal(4);
    expect(violations).to.deep.equal([]);
    await close();
  });

  it('revokes a grant through its form, suspends a vendor through the kill switch, and has a second operator reinstate it', async () => {
    const { page, violations, close } = await signedIn('sec-ana');
    const id = await page.getAttribute('tr[data-grant]', 'data-grant');
    await Promise.all([page.waitForURL(/\/staff\/grants\//), page.click(`tr[data-grant="${id}"] a:has-text("details")`)]);
    await page.fill('#reason', 'contractor finished early');
    await Promise.all([page.waitForURL(/done=revoked$/), page.click('button:has-text("Revoke this grant")')]);
    expect(await page.textContent('[role=status]')).to.include('Revoked');
    expect((await w.t.daemon.runtime.store.getGrant(id as string))?.state).to.equal('revoked');

    await page.goto(`${w.url}/staff/vendors`);
    await page.fill('#reason-acme-controls', 'laptop stolen from the van');
    await page.fill('#confirm-acme-controls', 'acme-controls');
    await Promise.all([page.waitForURL(/done=suspended/), page.click('button:has-text("Suspend acme-controls")')]);
    expect(await page.textContent('tr[data-vendor="acme-controls"]')).to.include('suspended').and.include('laptop stolen from the van');
    expect(await w.t.daemon.runtime.store.listGrants({ states: ['active'] })).to.have.length(0);

    expect(violations).to.deep.equal([]);
    await close();

    // The suspender can't lift it alone (docs/staff.md): another operator does.
    const second = await signedIn('sec-ola');
    await second.page.goto(`${w.url}/staff/vendors`);
    await second.page.fill('#reinstate-acme-controls', 'police returned the laptop');
    await Promise.all([second.page.waitForURL(/done=reinstated/), second.page.click('button:has-text("Reinstate acme-controls")')]);
    expect(w.t.daemon.runtime.suspensions.list()).to.deep.equal([]);
    expect(second.violations).to.deep.equal([]);
    await second.close();
  });
});
