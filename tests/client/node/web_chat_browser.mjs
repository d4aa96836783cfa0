// Two people chat through examples/web-chat in headless Chromium, driven by playwright-core:
//   node web_chat_browser.mjs <chromium> <page-url> <screenshot-dir>
// Each page has its own browser context (its own localStorage, so its own identity). Both set a name and
// send a message, and each must see the other's live; then Ada reloads and must come back as the same
// identity, with her name, and send again. Prints one JSON object per line on stdout; the last one is
// {"event":"done","failures":[...]}. Any console error or uncaught exception in a page is a failure.
import { chromium } from 'playwright-core';

const [executablePath, pageUrl, screenshotDir] = process.argv.slice(2);
const STEP_TIMEOUT_MS = 20_000;
const failures = [];

function emit(event, fields = {}) {
  process.stdout.write(JSON.stringify({ event, ...fields }) + '\n');
}

async function openPage(browser, who) {
  const context = await browser.newContext({ viewport: { width: 720, height: 640 } });
  const page = await context.newPage();
  page.on('console', message => {
    // a failed load is reported with its address by the response handler below
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) {
      failures.push(`${who} console error: ${message.text()}`);
    }
  });
  page.on('response', response => {
    if (response.status() >= 400) failures.push(`${who}: ${response.status()} for ${response.url()}`);
  });
  page.on('pageerror', error => failures.push(`${who} page error: ${error.message}`));
  await page.goto(pageUrl);
  await connected(page);
  return page;
}

async function connected(page) {
  await page.locator('#status[data-state="connected"]').waitFor({ timeout: STEP_TIMEOUT_MS });
  await page.locator('#message-input:enabled').waitFor({ timeout: STEP_TIMEOUT_MS });
  return (await page.locator('#identity').textContent()).trim();
}

async function setName(page, name) {
  await page.fill('#name-input', name);
  await page.click('#name-form button');
  await page.locator('#status', { hasText: `Connected as ${name}` }).waitFor({ timeout: STEP_TIMEOUT_MS });
}

async function send(page, text) {
  await page.fill('#message-input', text);
  await page.press('#message-input', 'Enter');
}

async function waitForMessage(page, sender, text) {
  await page
    .locator('#messages li', { has: page.locator('.sender', { hasText: sender }) })
    .filter({ has: page.locator('.text', { hasText: text }) })
    .first()
    .waitFor({ timeout: STEP_TIMEOUT_MS });
}

async function conversation(page) {
  return page.$$eval('#messages li', items =>
    items.map(item => [item.querySelector('.sender').textContent, item.querySelector('.text').textContent])
  );
}

const browser = await chromium.launch({ executablePath, headless: true, args: ['--no-sandbox'] });
const pages = {};
try {
  const ada = (pages.ada = await openPage(browser, 'ada'));
  const bob = (pages.bob = await openPage(browser, 'bob'));
  const adaIdentity = await connected(ada);
  const bobIdentity = await connected(bob);
  emit('connected', { ada: adaIdentity, bob: bobIdentity });

  await setName(ada, 'Ada');
  await setName(bob, 'Bob');
  await send(ada, 'Hello Bob, from Ada');
  await waitForMessage(bob, 'Ada', 'Hello Bob, from Ada');
  await send(bob, 'Hi Ada! Bob here');
  await waitForMessage(ada, 'Bob', 'Hi Ada! Bob here');
  emit('exchanged', { ada: await conversation(ada), bob: await conversation(bob) });

  await ada.reload();
  const adaAgain = await connected(ada);
  await ada.locator('#status', { hasText: 'Connected as Ada' }).waitFor({ timeout: STEP_TIMEOUT_MS });
  await send(ada, 'Back after a reload');
  await waitForMessage(bob, 'Ada', 'Back after a reload');
  await waitForMessage(ada, 'Ada', 'Back after a reload');
  emit('reloaded', {
    identity: adaAgain,
    status: (await ada.locator('#status').textContent()).trim(),
    ada: await conversation(ada),
    bob: await conversation(bob),
  });

  const shots = { ada: `${screenshotDir}/ada.png`, bob: `${screenshotDir}/bob.png` };
  await ada.screenshot({ path: shots.ada, fullPage: true });
  await bob.screenshot({ path: shots.bob, fullPage: true });
  emit('screenshots', shots);
} catch (error) {
  failures.push(`scenario failed: ${error.stack ?? error}`);
  for (const [who, page] of Object.entries(pages)) {
    await page.screenshot({ path: `${screenshotDir}/${who}-failed.png` }).catch(() => {});
  }
  emit('failed', { screenshots: Object.keys(pages).map(who => `${screenshotDir}/${who}-failed.png`) });
} finally {
  await browser.close();
}
emit('done', { failures });
process.exit(failures.length ? 1 : 0);
