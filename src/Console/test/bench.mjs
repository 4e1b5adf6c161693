// The console's benchmark (run by bench/console.sh): time to first render of a service view and of its
// cluster's view, and the API calls one refresh of each sends, in Debian's headless Chromium.
//
//   CONSOLE_ENDPOINT=... CONSOLE_CLUSTER=... CONSOLE_SERVICE=... CONSOLE_RUNS=5 node test/bench.mjs
//
// Prints one JSON object. "first render" is from the start of navigation (a fresh page load of
// /console/#/...) until the view shows the service's counts and all its tasks.
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const endpoint = process.env.CONSOLE_ENDPOINT;
const cluster = process.env.CONSOLE_CLUSTER;
const service = process.env.CONSOLE_SERVICE;
const tasksPerService = Number(process.env.CONSOLE_TASKS_PER_SERVICE ?? 10);
const runs = Number(process.env.CONSOLE_RUNS ?? 5);
const profile = mkdtempSync(join(tmpdir(), 'console-bench-'));
const browser = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CONSOLE_CHROMIUM ?? '/usr/bin/chromium', headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  viewport: { width: 1280, height: 800 },
});
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
try {
  const page = browser.pages()[0] ?? await browser.newPage();
  page.setDefaultTimeout(60000);
  await page.goto(`${endpoint}/console/#/clusters`);
  await page.getByLabel('Access key id').fill(process.env.AWS_ACCESS_KEY_ID);
  await page.getByLabel('Secret access key').fill(process.env.AWS_SECRET_ACCESS_KEY);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('main[data-loaded]').waitFor();

  async function measure(hash, ready) {
    const times = [], inPage = [];
    let calls = null, byAction = null;
    for (let i = 0; i < runs; i++) {
      await page.goto('about:blank');
      const t0 = Date.now();
      await page.goto(`${endpoint}/console/${hash}`);
      await ready();
      times.push(Date.now() - t0);
      inPage.push(await page.evaluate(() => window.consoleStats.firstRender?.ms));
    }
    // One refresh in steady state: the calls between two consecutive refreshes.
    const before = await page.evaluate(() => ({ ...window.consoleStats.stats.byAction }));
    const at = await page.evaluate(() => window.consoleStats.lastRefresh);
    for (let i = 0; i < 100; i++) {
      await page.waitForTimeout(200);
      const now = await page.evaluate(() => window.consoleStats.lastRefresh);
      if (now !== null && JSON.stringify(now) !== JSON.stringify(at)) { calls = now.calls; break; }
    }
    const after = await page.evaluate(() => ({ ...window.consoleStats.stats.byAction }));
    byAction = Object.fromEntries(Object.entries(after).map(([k, v]) => [k, v - (before[k] ?? 0)]).filter(([, v]) => v > 0));
    return { firstRenderMs: { median: median(times), all: times }, refreshInPageMs: median(inPage), callsPerRefresh: calls, byAction };
  }

  const serviceView = await measure(`#/clusters/${cluster}/services/${service}`, async () => {
    await page.locator('#running-desired', { hasText: `${tasksPerService} / ${tasksPerService}` }).waitFor();
    await page.locator('section[aria-labelledby=s-tasks] tbody tr').nth(tasksPerService - 1).waitFor();
  });
  const clusterView = await measure(`#/clusters/${cluster}`, async () => {
    await page.locator('section[aria-labelledby=s-tasks] tbody tr').nth(99).waitFor();
    await page.locator('section[aria-labelledby=s-services] tbody tr').nth(9).waitFor();
  });
  console.log(JSON.stringify({ runs, serviceView, clusterView }, null, 2));
} finally {
  await browser.close();
  rmSync(profile, { recursive: true, force: true });
}
