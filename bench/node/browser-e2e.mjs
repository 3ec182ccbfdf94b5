// Loads a page in headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core) and prints what the page's script left in window.result,
// once per load: the first load, then after a reload. For
// e2e/api_clients_test.go, which serves the page and the Flagsmith browser
// client.
//
//   node browser-e2e.mjs PAGE_URL [CHROMIUM]
//
// Prints two JSON lines: {"load": 1, "result": …} and {"load": 2, …}.
import { chromium } from 'playwright-core';

const [pageURL, executablePath = '/usr/bin/chromium'] = process.argv.slice(2);
if (!pageURL) {
    console.error('usage: node browser-e2e.mjs PAGE_URL [CHROMIUM]');
    process.exit(2);
}
// The flags that keep Chromium off the network beyond loopback.
const args = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const browser = await chromium.launch({ executablePath, args, timeout: 30000 });
try {
    const page = await browser.newPage();
    page.on('console', msg => console.error('page:', msg.text()));
    page.on('pageerror', err => console.error('page error:', err.message));
    const result = async () => {
        await page.waitForFunction(() => window.result !== undefined, null, { timeout: 15000 });
        return page.evaluate(() => window.result);
    };
    await page.goto(pageURL);
    console.log(JSON.stringify({ load: 1, result: await result() }));
    await page.reload();
    console.log(JSON.stringify({ load: 2, result: await result() }));
} finally {
    await browser.close();
}
