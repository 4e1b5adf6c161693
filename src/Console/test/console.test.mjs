// The console in a real browser against a running control plane with a worker on real Docker: Debian's
// Chromium (/usr/bin/chromium) driven by playwright-core, which downloads no browser.
//
//   CONSOLE_ENDPOINT=http://127.0.0.1:7071 CONSOLE_CLUSTER=demo node test/console.test.mjs
//
// The cluster must exist and have a container instance that runs local/busybox:latest. The script uses
// the AWS CLI (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_DEFAULT_REGION from the environment) where
// a user would, and the console for the rest. CONSOLE_SCREENSHOTS=dir saves the main views there.
// Exits 0 when every step passed; prints each step with its time.
import { chromium } from 'playwright-core';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const endpoint = required('CONSOLE_ENDPOINT');
const cluster = required('CONSOLE_CLUSTER');
const keyId = required('AWS_ACCESS_KEY_ID');
const secret = required('AWS_SECRET_ACCESS_KEY');
const region = process.env.AWS_DEFAULT_REGION ?? 'us-east-1';
const shots = process.env.CONSOLE_SCREENSHOTS;
const browserPath = process.env.CONSOLE_CHROMIUM ?? '/usr/bin/chromium';
const suffix = Math.random().toString(36).slice(2, 8);
const family = `console-${suffix}`;
const serviceName = `web-${suffix}`;
const logGroup = `/ecs/console-${suffix}`;
const started = Date.now();

function required(name) {
  const value = process.env[name];
  if (!value) { console.error(`console test: ${name} is not set`); process.exit(2); }
  return value;
}

function step(message) {
  console.log(`[${((Date.now() - started) / 1000).toFixed(1)} s] ${message}`);
}

async function aws(...args) {
  try {
    const { stdout } = await run('aws', [...args, '--endpoint-url', endpoint, '--output', 'json'], {
      env: { ...process.env, AWS_PAGER: '', AWS_MAX_ATTEMPTS: '1' },
    });
    return stdout ? JSON.parse(stdout) : {};
  } catch (e) {
    // A failing command: its stderr carries the API's error as the CLI prints it.
    return { error: e.stderr ?? String(e) };
  }
}

async function shot(page, name) {
  if (!shots) return;
  mkdirSync(shots, { recursive: true });
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: false });
}

const profile = mkdtempSync(join(tmpdir(), 'console-chromium-'));
const browser = await chromium.launchPersistentContext(profile, {
  executablePath: browserPath,
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
  viewport: { width: 1280, height: 800 },
});
let failed = false;
try {
  const page = browser.pages()[0] ?? await browser.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error' && /Content Security Policy|Refused/.test(m.text())) problems.push(m.text()); });
  page.setDefaultTimeout(20000);

  // ---- a wrong key pair shows the API's own error --------------------------------------------------
  const wrong = await run('aws', ['ecs', 'list-clusters', '--endpoint-url', endpoint], {
    env: { ...process.env, AWS_SECRET_ACCESS_KEY: `${secret}-wrong`, AWS_PAGER: '', AWS_MAX_ATTEMPTS: '1' },
  }).then(() => { throw new Error('the CLI accepted a wrong secret key'); }, (e) => e.stderr);
  const code = /An error occurred \(([^)]+)\)/.exec(wrong)?.[1];
  const message = /operation: (.*)$/m.exec(wrong)?.[1]?.trim();
  if (!code || !message) throw new Error(`could not read the CLI's error from: ${wrong}`);

  await page.goto(`${endpoint}/console/#/clusters/${encodeURIComponent(cluster)}`);
  await page.getByLabel('Access key id').fill(keyId);
  await page.getByLabel('Secret access key').fill(`${secret}-wrong`);
  await page.getByLabel('Region').fill(region);
  await page.getByRole('button', { name: 'Sign in' }).click();
  const shown = await page.locator('.api-error').textContent({ timeout: 10000 });
  // The CLI prints the message's first line; the console shows all of it.
  if (!shown.startsWith(`${code}: ${message}`)) throw new Error(`the console showed "${shown}", the API answered "${code}: ${message}"`);
  step(`a wrong key pair is refused with the API's words: ${code}: ${message}`);
  await shot(page, 'sign-in-error');

  // ---- sign in; the deep link opens the cluster ------------------------------------------------------
  await page.getByLabel('Secret access key').fill(secret);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: `Cluster ${cluster}` }).waitFor();
  await page.locator('ul.instances li').first().waitFor();
  const stored = await page.evaluate(() => [Object.keys(localStorage).length, Object.keys(sessionStorage)]);
  if (stored[0] !== 0 || stored[1].length !== 1) throw new Error(`credentials should be in sessionStorage only: ${JSON.stringify(stored)}`);
  step('signed in; the deep link to the cluster shows its container instance');

  // ---- a service created with the CLI reaches a steady state in the console ---------------------------
  const registered = await aws('ecs', 'register-task-definition', '--family', family, '--container-definitions', JSON.stringify([{
    name: 'app', image: 'local/busybox:latest', memory: 32, essential: true,
    entryPoint: ['sh', '-c'], command: ['echo "hello from $HOSTNAME in the console test"; while true; do echo tick; sleep 1; done'],
    logConfiguration: { logDriver: 'awslogs', options: { 'awslogs-group': logGroup, 'awslogs-region': region, 'awslogs-stream-prefix': 'web', 'awslogs-create-group': 'true' } },
  }]));
  if (registered.error) throw new Error(registered.error);
  const created = await aws('ecs', 'create-service', '--cluster', cluster, '--service-name', serviceName, '--task-definition', family,
    '--desired-count', '1', '--deployment-configuration', 'minimumHealthyPercent=100,maximumPercent=200');
  if (created.error) throw new Error(created.error);
  step('created the service with the AWS CLI');
  await page.getByRole('link', { name: serviceName }).click({ timeout: 15000 });
  await page.getByRole('heading', { name: `Service ${serviceName}` }).waitFor();
  await page.getByText(`(service ${serviceName}) has reached a steady state.`).first().waitFor({ timeout: 90000 });
  await page.locator('#running-desired', { hasText: '1 / 1' }).waitFor();
  step('the service view shows the service at a steady state, 1 / 1');

  // ---- scale from the console ---------------------------------------------------------------------
  await page.getByLabel('Desired count').fill('2');
  await page.getByRole('button', { name: 'Update desired count' }).click();
  await page.locator('#running-desired', { hasText: '2 / 2' }).waitFor({ timeout: 90000 });
  await page.locator('section[aria-labelledby=s-tasks] tbody tr', { hasText: 'RUNNING' }).nth(1).waitFor();
  step('scaled to 2 from the console; two tasks are RUNNING');
  await shot(page, 'service');

  // ---- a task and its log lines ---------------------------------------------------------------------
  await page.locator('section[aria-labelledby=s-tasks] tbody tr a').first().click();
  await page.getByRole('heading', { name: /^Task / }).waitFor();
  await page.locator('ol.log li', { hasText: 'in the console test' }).first().waitFor({ timeout: 60000 });
  await page.locator('ol.log li', { hasText: 'tick' }).nth(1).waitFor({ timeout: 30000 });
  step('the task view shows the container and its log lines, followed live');
  await page.getByLabel('Search', { exact: true }).fill('hello');
  await page.getByRole('button', { name: 'Search', exact: true }).click();
  await page.getByText(/^1 line of .* matches hello$/).waitFor();
  if (await page.locator('ol.log li', { hasText: 'tick' }).count() !== 0) throw new Error('the search kept lines that do not match');
  step('searching the task\'s log (FilterLogEvents) shows only the matching line');
  await page.getByRole('button', { name: 'Clear' }).click();
  await page.locator('ol.log li', { hasText: 'tick' }).first().waitFor();
  await shot(page, 'task');

  // ---- force a new deployment and follow it to COMPLETED ---------------------------------------------
  await page.getByRole('link', { name: cluster, exact: true }).click();
  await page.getByRole('link', { name: serviceName, exact: true }).click();
  await page.getByRole('heading', { name: `Service ${serviceName}` }).waitFor();
  const deployments = page.locator('section[aria-labelledby=s-deployments] tbody tr');
  await deployments.first().waitFor();
  const before = await deployments.first().locator('td').first().textContent();
  await page.getByRole('button', { name: 'Force new deployment' }).click();
  await page.locator('dialog[open] [data-confirm]').click();
  // Polled: the page's content security policy (rightly) refuses the string evaluation waitForFunction uses. A rollout
  // that is quick on this engine can complete between two refreshes of the page, so the new deployment is seen either
  // IN_PROGRESS or already COMPLETED in place of the one before.
  const rowsNow = () => deployments.evaluateAll((trs) => trs.map((tr) => [...tr.cells].map((td) => td.textContent)));
  const seenBy = Date.now() + 20000;
  for (;;) {
    const rows = await rowsNow();
    if (rows.some((cells) => cells.includes('IN_PROGRESS'))) {
      step('forced a new deployment from the console; it is IN_PROGRESS');
      await shot(page, 'deployment-in-progress');
      break;
    }
    if (rows.length === 1 && rows[0][0] !== before && rows[0][2] === 'COMPLETED') {
      step('forced a new deployment from the console; it completed before the page next refreshed');
      break;
    }
    if (Date.now() > seenBy) throw new Error(`the forced deployment was not shown: ${JSON.stringify(rows)}`);
    await page.waitForTimeout(200);
  }
  const deadline = Date.now() + 120000;
  for (;;) {
    const rows = await rowsNow();
    if (rows.length === 1 && rows[0][0] !== before && rows[0][2] === 'COMPLETED') break;
    if (Date.now() > deadline) throw new Error(`the deployment did not complete: ${JSON.stringify(rows)}`);
    await page.waitForTimeout(500);
  }
  await page.locator('#running-desired', { hasText: '2 / 2' }).waitFor();
  step('the new deployment reached COMPLETED, 2 / 2');

  // ---- task definitions: edit, register, diff ------------------------------------------------------
  await page.goto(`${endpoint}/console/#/task-definitions/${family}/1`);
  await page.getByRole('heading', { name: `Task definition ${family}:1` }).waitFor();
  const editor = page.getByLabel('New revision JSON');
  for (let i = 0; (await editor.inputValue()).length === 0; i++) { if (i > 100) throw new Error('the editor stayed empty'); await page.waitForTimeout(100); }
  const json = JSON.parse(await editor.inputValue());
  json.containerDefinitions[0].memory = 48;
  // A health check that never passes (and, in its start period, never fails): a deployment of this revision stays IN_PROGRESS.
  json.containerDefinitions[0].healthCheck = { command: ['CMD-SHELL', 'exit 1'], interval: 5, timeout: 2, retries: 3, startPeriod: 300 };
  await editor.fill(JSON.stringify(json, null, 2));
  await page.getByRole('button', { name: 'Register new revision' }).click();
  await page.getByRole('heading', { name: `Task definition ${family}:2` }).waitFor();
  await page.getByLabel(`Compare ${family}:2 with`).selectOption('1');
  await page.locator('pre.diff .add', { hasText: '"memory": 48' }).waitFor();
  step('registered revision 2 by editing the JSON; the diff against 1 shows the change');
  await shot(page, 'task-definition-diff');

  // ---- roll back an in-progress deployment (StopServiceDeployment) from the console ------------------------
  const updated = await aws('ecs', 'update-service', '--cluster', cluster, '--service', serviceName, '--task-definition', `${family}:2`);
  if (updated.error) throw new Error(updated.error);
  await page.goto(`${endpoint}/console/#/clusters/${encodeURIComponent(cluster)}/services/${serviceName}`);
  const serviceDeployments = page.locator('section[aria-labelledby=s-service-deployments] tbody tr');
  const rollBack = serviceDeployments.getByRole('button', { name: /^Roll back service deployment / });
  await rollBack.first().waitFor({ timeout: 30000 });
  await page.locator('#s-service-deployments').evaluate((heading) => heading.scrollIntoView({ block: 'start' }));
  await shot(page, 'service-deployment-rollback');
  await rollBack.first().click();
  await page.locator('dialog[open] [data-confirm]').click();
  await serviceDeployments.filter({ hasText: /ROLLBACK_(REQUESTED|IN_PROGRESS|SUCCESSFUL)/ }).first().waitFor({ timeout: 30000 });
  step('rolled back the in-progress deployment of revision 2 from the console');
  await serviceDeployments.filter({ hasText: 'ROLLBACK_SUCCESSFUL' }).first().waitFor({ timeout: 120000 });
  const summaryDefinition = page.locator('section[aria-labelledby=s-deployments] tbody tr', { hasText: 'COMPLETED' }).first();
  await summaryDefinition.filter({ hasText: `${family}:1` }).waitFor({ timeout: 60000 });
  await page.locator('#running-desired', { hasText: '2 / 2' }).waitFor({ timeout: 60000 });
  step(`the rollback succeeded: ${family}:1 is COMPLETED again, 2 / 2`);

  // ---- the other views ----------------------------------------------------------------------------------
  await page.goto(`${endpoint}/console/#/clusters/${encodeURIComponent(cluster)}`);
  await page.locator('ul.instances li .bar').first().waitFor();
  // The instance's own use (Container Insights' instance metrics) next to what it reserves.
  await page.locator('ul.instances li .bar-text', { hasText: /^used \d+ · reserved \d+/ }).first().waitFor({ timeout: 60000 });
  await page.locator('section[aria-labelledby=s-services] tbody tr', { hasText: serviceName }).waitFor();
  await shot(page, 'cluster');
  await page.goto(`${endpoint}/console/#/logs`);
  await page.getByRole('link', { name: logGroup }).waitFor();
  await page.goto(`${endpoint}/console/#/secrets`);
  await page.getByRole('heading', { name: 'Parameter Store' }).waitFor();
  step('the cluster (capacity bars with each instance\'s use), log groups and secrets views render');

  // ---- a phone's width ------------------------------------------------------------------------------
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(`${endpoint}/console/#/clusters/${encodeURIComponent(cluster)}/services/${serviceName}`);
  await page.locator('#running-desired', { hasText: '2 / 2' }).waitFor();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  if (overflow > 0) throw new Error(`the service view is ${overflow}px wider than a phone's screen`);
  await shot(page, 'service-phone');
  await page.setViewportSize({ width: 1280, height: 800 });
  step('the service view fits a phone\'s width');

  // ---- keyboard: the section shortcuts and focusable controls -----------------------------------------------
  await page.locator('body').press('1');
  await page.getByRole('heading', { level: 1, name: 'Clusters', exact: true }).waitFor();
  step('the keyboard shortcut 1 opens the clusters');

  // ---- sign out -------------------------------------------------------------------------------------
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('button', { name: 'Sign in' }).waitFor();
  const left = await page.evaluate(() => Object.keys(sessionStorage).length);
  if (left !== 0) throw new Error('sign-out left the key pair in sessionStorage');
  step('signed out; the key pair is gone');

  if (problems.length) throw new Error(problems.join('\n'));
  await aws('ecs', 'delete-service', '--cluster', cluster, '--service', serviceName, '--force');
} catch (e) {
  failed = true;
  console.error(`console test failed after ${((Date.now() - started) / 1000).toFixed(1)} s: ${e.stack ?? e}`);
  const page = browser.pages()[0];
  if (page) {
    console.error(`at ${page.url()}:\n${await page.locator('main').innerText().catch(() => '(no page)')}`);
    if (shots) await page.screenshot({ path: join(shots, 'failure.png') }).catch(() => {});
  }
} finally {
  await browser.close();
  rmSync(profile, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
