// Browser test of GraphiQL as the server serves it (scripts/node-tests.sh runs it).
//
// Loads $BASE_URL/graphql in headless Chromium (Debian's /usr/bin/chromium), lets through
// only requests to the server's own origin, and checks that GraphiQL renders without console
// errors or CSP violations, that the documentation explorer shows the schema, that a dialog
// opens (GraphiQL's dialogs add an inline <style>), that a query runs and its result is
// shown, and that a subscription opens the WebSocket. Every wait is bounded; exits non-zero
// with a message on the first failure.
//
// Usage: BASE_URL=http://127.0.0.1:8080 node graphiql.mjs

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const STEP_MS = 20_000; // any single wait
const TOTAL_MS = 120_000; // the whole run
const QUERY = '{ exchangeRates { fromCurrency toCurrency rate } }';
const SUBSCRIPTION = 'subscription { rateChanged(from: "USD", to: "EUR") { rate } }';

const baseUrl = process.env.BASE_URL;
if (!baseUrl) {
  console.error('FAIL: set BASE_URL, e.g. BASE_URL=http://127.0.0.1:8080');
  process.exit(2);
}
const origin = new URL(baseUrl).origin;
const host = new URL(baseUrl).host;

const watchdog = setTimeout(() => {
  console.error(`FAIL: the run took longer than ${TOTAL_MS / 1000} s`);
  process.exit(1);
}, TOTAL_MS);

const foreignRequests = [];
const consoleErrors = [];
const pageErrors = [];
const failedRequests = [];

class Failure extends Error {}

/** Runs one step; a timeout or error becomes a failure naming the step. */
async function step(name, fn) {
  process.stdout.write(`- ${name} … `);
  try {
    const result = await fn();
    console.log('ok');
    return result;
  } catch (err) {
    console.log('failed');
    throw new Failure(`${name}: ${err instanceof Error ? err.message : err}`);
  }
}

/** Fails when anything went wrong in the page so far. */
async function assertClean(page) {
  const violations = await page.evaluate(() => window.__cspViolations ?? []);
  const problems = [
    ...foreignRequests.map((u) => `request to another origin: ${u}`),
    ...violations.map((v) => `CSP violation: ${v}`),
    ...pageErrors.map((e) => `uncaught error: ${e}`),
    ...consoleErrors.map((e) => `console error: ${e}`),
    ...failedRequests.map((r) => `failed request: ${r}`),
  ];
  if (problems.length > 0) throw new Error(`\n  ${problems.join('\n  ')}`);
}

const userDataDir = mkdtempSync(join(tmpdir(), 'graphiql-browser-'));
let context;
let page;
let exitCode = 0;
try {
  context = await step('launch Chromium', () =>
    chromium.launchPersistentContext(userDataDir, {
      executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
      headless: true,
      timeout: STEP_MS,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    })
  );
  context.setDefaultTimeout(STEP_MS);

  // Only the server's own origin: anything else is refused and makes the run fail.
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (new URL(url).origin === origin) return route.continue();
    foreignRequests.push(url);
    return route.abort('blockedbyclient');
  });
  // Record CSP violations from the first script on; init scripts bypass the page's CSP.
  await context.addInitScript(() => {
    window.__cspViolations = [];
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__cspViolations.push(`${e.effectiveDirective} blocked ${e.blockedURI || 'inline'}`);
    });
  });

  page = context.pages()[0] ?? (await context.newPage());
  page.on('console', (msg) => {
    if (msg.type() === 'error') consoleErrors.push(msg.text());
  });
  page.on('pageerror', (err) => pageErrors.push(err.message));
  page.on('requestfailed', (req) => failedRequests.push(`${req.url()} (${req.failure()?.errorText})`));
  page.on('response', (res) => {
    if (res.status() >= 400) failedRequests.push(`${res.url()} (HTTP ${res.status()})`);
  });
  const sockets = [];
  page.on('websocket', (ws) => {
    const url = new URL(ws.url());
    if (url.host !== host) foreignRequests.push(ws.url());
    const received = [];
    ws.on('framereceived', (frame) => received.push(String(frame.payload)));
    sockets.push({ url: ws.url(), received });
  });

  await step(`open ${baseUrl}/graphql`, async () => {
    const response = await page.goto(`${baseUrl}/graphql`, { waitUntil: 'load' });
    if (!response || response.status() !== 200) throw new Error(`HTTP ${response?.status()}`);
    const csp = response.headers()['content-security-policy'] ?? '';
    if (!csp.includes("script-src 'self'")) throw new Error(`no strict CSP header: "${csp}"`);
  });

  await step('GraphiQL renders', async () => {
    await page.locator('.graphiql-container').waitFor({ state: 'visible' });
    await page.locator('.graphiql-query-editor .CodeMirror').waitFor({ state: 'visible' });
    await assertClean(page);
  });

  await step('documentation explorer shows Query', async () => {
    await page.locator('button[aria-label="Show Documentation Explorer"]').click();
    const explorer = page.locator('.graphiql-doc-explorer');
    await explorer.waitFor({ state: 'visible' });
    await explorer.locator('.graphiql-doc-explorer-root-type', { hasText: 'Query' }).first().waitFor();
    // Follow the link into the Query type: its fields come from introspection.
    await explorer.locator('a.graphiql-doc-explorer-type-name', { hasText: /^Query$/ }).first().click();
    await explorer.locator('.graphiql-doc-explorer-title', { hasText: /^Query$/ }).waitFor();
    await explorer.locator('.graphiql-doc-explorer-field-name', { hasText: 'exchangeRates' }).first().waitFor();
  });

  await step('settings dialog opens and closes', async () => {
    await page.locator('button[aria-label="Open settings dialog"]').click();
    const dialog = page.getByRole('dialog');
    await dialog.getByText('Persist headers').waitFor();
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
  });

  /** Puts `text` into the query editor through CodeMirror and runs it. */
  async function run(text) {
    await page.evaluate((value) => {
      document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror.setValue(value);
    }, text);
    // GraphiQL parses the editor's text after a short debounce; the fetcher picks HTTP or the
    // WebSocket from that parsed document, so give it time to catch up before running.
    await page.waitForTimeout(1_000);
    await page.locator('button.graphiql-execute-button').click();
  }

  const responseText = () =>
    page.evaluate(() => document.querySelector('.graphiql-response .CodeMirror')?.CodeMirror?.getValue() ?? '');

  await step(`run ${QUERY}`, async () => {
    await run(QUERY);
    await page.waitForFunction(
      () => (document.querySelector('.graphiql-response .CodeMirror')?.CodeMirror?.getValue() ?? '').includes('"exchangeRates"'),
      null,
      { timeout: STEP_MS }
    );
    const body = JSON.parse(await responseText());
    if (!Array.isArray(body?.data?.exchangeRates) || body.errors) {
      throw new Error(`unexpected result: ${JSON.stringify(body)}`);
    }
  });

  await step('a subscription opens /graphql/ws (graphql-transport-ws)', async () => {
    await run(SUBSCRIPTION);
    const deadline = Date.now() + STEP_MS;
    let socket;
    while (Date.now() < deadline) {
      socket = sockets.find((s) => s.received.some((p) => p.includes('connection_ack')));
      if (socket) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    if (!socket) {
      throw new Error(`no connection_ack; sockets: ${JSON.stringify(sockets)}; response: ${await responseText()}`);
    }
    if (new URL(socket.url).pathname !== '/graphql/ws') throw new Error(`socket to ${socket.url}`);
    // Stop it again (the execute button stops a running subscription).
    await page.locator('button.graphiql-execute-button').click();
  });

  await step('no foreign requests, CSP violations or errors', () => assertClean(page));
  console.log('PASS: GraphiQL works, offline and under its CSP');
} catch (err) {
  exitCode = 1;
  console.error(`FAIL: ${err instanceof Failure ? err.message : err?.stack ?? err}`);
  if (page) {
    const shot = join(process.env.SCREENSHOT_DIR ?? tmpdir(), 'graphiql-failure.png');
    await page
      .screenshot({ path: shot, timeout: 5_000 })
      .then(() => console.error(`screenshot of the page: ${shot}`))
      .catch(() => {});
  }
} finally {
  await context?.close().catch(() => {});
  rmSync(userDataDir, { recursive: true, force: true });
  clearTimeout(watchdog);
}
process.exit(exitCode);
