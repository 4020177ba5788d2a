// The dashboard walked through as a developer would, in Debian's chromium
// driven by playwright-core. Run by crates/warden/tests/it/dashboard_browser.rs
// with DASHBOARD_URL, API_URL, OUT_DIR (screenshots), PW_ENV (the folder
// holding node_modules/playwright-core) and CHROMIUM.
import { createRequire } from 'node:module';
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

const require = createRequire(join(process.env.PW_ENV, 'package.json'));
const { chromium } = require('playwright-core');

const DASH = process.env.DASHBOARD_URL;
const API = process.env.API_URL;
const OUT = process.env.OUT_DIR;
mkdirSync(OUT, { recursive: true });

const problems = [];
let shot = 0;
async function snap(page, name) {
  shot += 1;
  const file = join(OUT, `${String(shot).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file, fullPage: false });
  console.log(`screenshot ${file}`);
}
function step(msg) {
  console.log(`step: ${msg}`);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});
const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
context.setDefaultTimeout(15000);
const page = await context.newPage();
page.on('console', (m) => {
  // The revoked token's 401 is the point of that step; anything else is a fault.
  if (m.type() === 'error' && !/status of 401/.test(m.text())) problems.push(`console error: ${m.text()}`);
});
page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
page.on('dialog', (d) => d.accept());

const email = `ada-${Date.now()}@example.com`;
const password = 'SecurePass123!';
const newPassword = 'EvenBetterPass456!';

/// Runs an operation in the explorer: expand it, put `body` in its editor
/// (if any), execute, and return the status shown.
async function execute(operationId, tag, body) {
  const op = page.locator(`#operations-${tag}-${operationId}`);
  await op.scrollIntoViewIfNeeded();
  if (!(await op.locator('.opblock-body').isVisible().catch(() => false))) {
    await op.locator('.opblock-summary').first().click();
  }
  const tryOut = op.locator('button.try-out__btn');
  if (await tryOut.isVisible().catch(() => false)) {
    const label = (await tryOut.textContent()) || '';
    if (/try it out/i.test(label)) await tryOut.click();
  }
  if (body !== undefined) {
    const editor = op.locator('textarea.body-param__text');
    await editor.fill(JSON.stringify(body, null, 2));
  }
  await op.locator('button.execute').click();
  const status = op.locator('.live-responses-table tr.response .response-col_status').first();
  await status.waitFor();
  return (await status.textContent()).trim();
}

try {
  step('the dashboard opens, with its development banner');
  await page.goto(DASH + '/');
  await page.locator('#dev-banner').waitFor();
  await page.locator('#overview').waitFor();
  await snap(page, 'overview');

  step('sign up a user in the API explorer and see the answer');
  await page.locator('a[data-nav="explorer"]').click();
  await page.waitForURL(/\/explorer/);
  await page.locator('#operations-auth-signUp').waitFor();
  const prefilled = await (async () => {
    const op = page.locator('#operations-auth-signUp');
    await op.locator('.opblock-summary').first().click();
    const t = await op.locator('textarea.body-param__text').inputValue().catch(() => '');
    return t;
  })();
  if (!prefilled.includes('@example.com')) problems.push(`sign-up editor not prefilled with an example: ${prefilled}`);
  const signUp = await execute('signUp', 'auth', { email, password, name: 'Ada Lovelace' });
  if (!signUp.startsWith('200')) throw new Error(`sign-up answered ${signUp}`);
  await page.locator('#last-response').getByText('200').first().waitFor();
  const token = await page.locator('#explorer-token').inputValue();
  if (token.length < 20) throw new Error(`the explorer did not keep the token: ${token}`);
  await snap(page, 'explorer-sign-up');

  step('follow the trace link and see the SQL in the waterfall');
  await page.locator('a#trace-link').click();
  await page.locator('#waterfall .span[data-name="db.query"]').first().waitFor();
  const sqlText = await page.locator('#waterfall').textContent();
  if (!/INSERT INTO/i.test(sqlText)) problems.push('the waterfall shows no INSERT');
  await page.locator('#waterfall .span[data-name="db.query"]').first().click();
  await page.locator('#span-detail').waitFor();
  await snap(page, 'trace-waterfall');

  step('find the user in the database explorer and see their session, token masked');
  await page.goto(`${DASH}/#/db/user?filter_column=email&op=eq&filter_value=${encodeURIComponent(email)}`);
  const userRow = page.locator('table#rows tbody tr').first();
  await userRow.waitFor();
  await userRow.click();
  await page.locator('#row-view').waitFor();
  await page.locator('#row-view a[data-link-table="session"][href*="filter_column=userId"]').first().click();
  const tokenCell = page.locator('table#rows td[data-column="token"]').first();
  await tokenCell.waitFor();
  const shown = (await tokenCell.textContent()).trim();
  if (shown !== '[masked]') throw new Error(`session token shown as ${shown}`);
  if ((await page.content()).includes(token)) throw new Error('the session token is on the page');
  await snap(page, 'db-session-masked');

  step('request a password reset in the explorer, open the outbox, follow the link, reset');
  await page.goto(DASH + '/explorer#/auth/requestPasswordReset');
  await page.locator('#operations-auth-requestPasswordReset').waitFor();
  const reset = await execute('requestPasswordReset', 'auth', { email, redirectTo: `${DASH}/#/link` });
  if (!reset.startsWith('200')) throw new Error(`reset request answered ${reset}`);
  await page.goto(DASH + '/#/outbox');
  const mail = page.locator('#outbox .mail').first();
  await mail.waitFor();
  await snap(page, 'outbox');
  await mail.locator('a.mail-link').first().click();
  await page.locator('#link-token').waitFor();
  await page.locator('#link-new-password').fill(newPassword);
  await page.locator('#link-reset').click();
  await page.locator('#link-result').getByText('200').first().waitFor();
  await snap(page, 'reset-completed');

  step('sign in again in the explorer, revoke that session in Users, see the token refused');
  await page.goto(DASH + '/explorer#/auth/signIn');
  await page.locator('#operations-auth-signIn').waitFor();
  const signIn = await execute('signIn', 'auth', { email, password: newPassword });
  if (!signIn.startsWith('200')) throw new Error(`sign-in with the new password answered ${signIn}`);
  const token2 = await page.locator('#explorer-token').inputValue();
  if (token2 === token) throw new Error('the explorer kept the old token');
  await page.goto(DASH + '/#/users');
  await page.locator('#user-search').fill(email);
  await page.locator('#user-search-go').click();
  await page.locator('table#users tr[data-user-id]').first().click();
  const session = page.locator('table#sessions tr[data-session-id]').first();
  await session.waitFor();
  await snap(page, 'user-page');
  await session.locator('button.revoke').click();
  await page.locator('table#sessions tr[data-session-id]').first().waitFor({ state: 'detached' });
  await page.goto(DASH + '/explorer#/profile/getProfile');
  await page.locator('#operations-profile-getProfile').waitFor();
  const profile = await execute('getProfile', 'profile');
  if (!profile.startsWith('401')) throw new Error(`the revoked token got ${profile}`);
  await snap(page, 'token-refused');

  step('a request from curl appears in the traces without a reload');
  await page.goto(DASH + '/#/traces');
  await page.locator('table#traces').waitFor();
  await page.locator('#live').getByText(/live|connected/i).first().waitFor();
  const before = await page.evaluate(() => performance.getEntriesByType('navigation').length + ':' + performance.timeOrigin);
  const headers = execFileSync('curl', ['-s', '-D', '-', '-o', '/dev/null', `${API}/healthz`]).toString();
  const traceId = /x-trace-id:\s*([0-9a-f]{32})/i.exec(headers)?.[1];
  if (!traceId) throw new Error(`curl got no trace id: ${headers}`);
  await page.locator(`table#traces tr[data-trace-id="${traceId}"]`).waitFor();
  const after = await page.evaluate(() => performance.getEntriesByType('navigation').length + ':' + performance.timeOrigin);
  if (before !== after) throw new Error('the page reloaded');
  await snap(page, 'live-trace');
} catch (e) {
  problems.push(`failed: ${e.stack || e}`);
  await snap(page, 'failure').catch(() => {});
} finally {
  await browser.close();
}

if (problems.length) {
  console.error(problems.join('\n'));
  process.exit(1);
}
console.log('dashboard walk-through: ok');
