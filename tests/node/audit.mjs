// GraphQL-over-HTTP conformance of POST/GET /graphql (scripts/node-tests.sh runs it).
//
// Runs graphql-http's server audit against $BASE_URL/graphql and prints every result: its
// requirement level (MUST, SHOULD, MAY), its outcome (ok, notice, warn, error) and, for
// anything but ok, the reason and the response the server gave. Exits non-zero unless every
// audit passes, MAY ones included. Every request is bounded in time.
//
// Usage: BASE_URL=http://127.0.0.1:8080 node audit.mjs

import { auditServer } from 'graphql-http';

const REQUEST_MS = 10_000; // any single request
const TOTAL_MS = 60_000; // the whole run

const baseUrl = process.env.BASE_URL;
if (!baseUrl) {
  console.error('FAIL: set BASE_URL, e.g. BASE_URL=http://127.0.0.1:8080');
  process.exit(2);
}
const url = `${baseUrl.replace(/\/$/, '')}/graphql`;

const watchdog = setTimeout(() => {
  console.error(`FAIL: the audit took longer than ${TOTAL_MS / 1000} s`);
  process.exit(1);
}, TOTAL_MS);

/** `fetch` with a deadline, so that a server that never answers fails the run. */
const fetchFn = (input, init = {}) => fetch(input, { ...init, signal: AbortSignal.timeout(REQUEST_MS) });

/** What the server answered, for a failed audit (the audit may have read the body already). */
async function describe(response) {
  if (!response) return '(no response)';
  let body;
  try {
    body = await response.text();
  } catch (err) {
    body = `(body not readable: ${err?.message ?? err})`;
  }
  const contentType = response.headers.get('content-type') ?? '(none)';
  return `HTTP ${response.status}, content-type: ${contentType}\n      body: ${body.slice(0, 1_000)}`;
}

let results;
try {
  results = await auditServer({ url, fetchFn });
} catch (err) {
  console.error(`FAIL: the audit could not run against ${url}: ${err?.stack ?? err}`);
  process.exit(1);
}

console.log(`GraphQL-over-HTTP audit of ${url} (graphql-http's auditServer)`);
const counts = { ok: 0, notice: 0, warn: 0, error: 0 };
for (const result of results) {
  counts[result.status] = (counts[result.status] ?? 0) + 1;
  const level = result.name.split(' ')[0];
  console.log(`${result.status.padEnd(6)} ${level.padEnd(6)} ${result.id} ${result.name}`);
  if (result.status !== 'ok') {
    console.log(`      reason: ${result.reason}`);
    console.log(`      response: ${await describe(result.response)}`);
  }
}
clearTimeout(watchdog);

const passed = counts.ok === results.length;
const summary = Object.entries(counts)
  .filter(([, n]) => n > 0)
  .map(([status, n]) => `${n} ${status}`)
  .join(', ');
console.log(`${passed ? 'PASS' : 'FAIL'}: ${counts.ok}/${results.length} audits ok (${summary})`);
process.exit(passed ? 0 : 1);
