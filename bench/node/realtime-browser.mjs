// Drives the Flagsmith JS SDK (realtime: true) in headless Chromium for the
// e2e realtime test: opens the test's page, reports the flag value it
// shows, and reports again when the value changes. One JSON line per step
// on stdout:
//
//	{"step":"ready","value":"blue"}     the page shows the first value
//	{"step":"changed","value":"green"}  the page shows the expected new value
//
// Usage: node realtime-browser.mjs CHROMIUM PAGE_URL FIRST_VALUE NEW_VALUE TIMEOUT_MS
import { chromium } from 'playwright-core';

const [executablePath, pageURL, first, next, timeoutArg] = process.argv.slice(2);
const timeout = Number(timeoutArg || 10000);

const browser = await chromium.launch({
  executablePath,
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const page = await browser.newPage();
  page.on('console', (msg) => {
    if (msg.type() === 'error') process.stderr.write(`page console: ${msg.text()}\n`);
  });
  page.on('pageerror', (err) => process.stderr.write(`page error: ${err}\n`));
  await page.goto(pageURL);
  const shows = (want) => page.waitForFunction(
    (w) => document.getElementById('flag')?.textContent === w, want, { timeout, polling: 10 });
  await shows(first);
  // The stream must be open before the change is pushed: the SDK opens it
  // once its first flags have loaded.
  await page.waitForFunction(() => window.streamOpen === true, null, { timeout, polling: 10 });
  console.log(JSON.stringify({ step: 'ready', value: first }));
  await shows(next);
  console.log(JSON.stringify({ step: 'changed', value: next }));
} finally {
  await browser.close();
}
