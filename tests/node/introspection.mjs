// The schema the server introspects is the committed schema.graphql (scripts/node-tests.sh
// runs it).
//
// POSTs graphql-js's full introspection query (descriptions, specifiedByURL, isRepeatable,
// the schema's description, deprecated input values, isOneOf) to $BASE_URL/graphql, checks
// that it answers without errors, builds the client schema from the answer and compares it
// with the repository's schema.graphql, both printed by graphql-js after sorting every list
// lexicographically. On a difference prints a line diff of the two texts and exits 1. The
// one normalisation: async-graphql's fixed `__schema.description` (see below) counts as none.
//
// Usage: BASE_URL=http://127.0.0.1:8080 node introspection.mjs

import { readFileSync } from 'node:fs';
import {
  buildClientSchema,
  buildSchema,
  getIntrospectionQuery,
  lexicographicSortSchema,
  printSchema,
} from 'graphql';

const REQUEST_MS = 20_000;

// async-graphql (7.x, since its PR #1489) answers `__schema { description }` with this fixed
// text: graphql-js's description of the `__Schema` meta-type itself, not a description of
// the served schema (`exchanger schema` prints none, and no setting supplies one). Exactly
// this text is read as "no description"; any other description is compared as it is.
const ASYNC_GRAPHQL_SCHEMA_DESCRIPTION =
  'A GraphQL Schema defines the capabilities of a GraphQL server. It exposes all available ' +
  'types and directives on the server, as well as the entry points for query, mutation, and ' +
  'subscription operations.';
const SDL_PATH = new URL('../../schema.graphql', import.meta.url);

const baseUrl = process.env.BASE_URL;
if (!baseUrl) {
  console.error('FAIL: set BASE_URL, e.g. BASE_URL=http://127.0.0.1:8080');
  process.exit(2);
}
const url = `${baseUrl.replace(/\/$/, '')}/graphql`;

function fail(message) {
  console.error(`FAIL: ${message}`);
  process.exit(1);
}

const query = getIntrospectionQuery({
  descriptions: true,
  specifiedByUrl: true,
  directiveIsRepeatable: true,
  schemaDescription: true,
  inputValueDeprecation: true,
  oneOf: true,
});

let response;
let text;
try {
  response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json' },
    body: JSON.stringify({ query, operationName: 'IntrospectionQuery' }),
    signal: AbortSignal.timeout(REQUEST_MS),
  });
  text = await response.text();
} catch (err) {
  fail(`POST ${url}: ${err?.message ?? err}`);
}
if (response.status !== 200) fail(`POST ${url}: HTTP ${response.status}: ${text.slice(0, 2_000)}`);
let result;
try {
  result = JSON.parse(text);
} catch {
  fail(`the answer is not JSON: ${text.slice(0, 2_000)}`);
}
if (result.errors) fail(`introspection answered with errors: ${JSON.stringify(result.errors, null, 2)}`);
if (!result.data?.__schema) fail(`no data.__schema in the answer: ${text.slice(0, 2_000)}`);

if (result.data.__schema.description === ASYNC_GRAPHQL_SCHEMA_DESCRIPTION) {
  console.log("note: __schema.description is async-graphql's fixed text for __Schema: read as none");
  result.data.__schema.description = null;
}

let served;
let committed;
try {
  served = printSchema(lexicographicSortSchema(buildClientSchema(result.data)));
} catch (err) {
  fail(`graphql-js cannot build a schema from the introspection result: ${err?.message ?? err}`);
}
try {
  committed = printSchema(lexicographicSortSchema(buildSchema(readFileSync(SDL_PATH, 'utf8'))));
} catch (err) {
  fail(`graphql-js cannot build a schema from schema.graphql: ${err?.message ?? err}`);
}

if (served === committed) {
  const types = result.data.__schema.types.length;
  console.log(`PASS: the introspected schema (${types} types) is schema.graphql`);
  process.exit(0);
}

/** A line diff (longest common subsequence) in unified style, with 3 lines of context. */
function diff(a, b) {
  const x = a.split('\n');
  const y = b.split('\n');
  const lcs = Array.from({ length: x.length + 1 }, () => new Uint32Array(y.length + 1));
  for (let i = x.length - 1; i >= 0; i--) {
    for (let j = y.length - 1; j >= 0; j--) {
      lcs[i][j] = x[i] === y[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  const ops = [];
  let i = 0;
  let j = 0;
  while (i < x.length || j < y.length) {
    if (i < x.length && j < y.length && x[i] === y[j]) {
      ops.push([' ', x[i++]]);
      j++;
    } else if (i < x.length && (j === y.length || lcs[i + 1][j] >= lcs[i][j + 1])) {
      ops.push(['-', x[i++]]);
    } else {
      ops.push(['+', y[j++]]);
    }
  }
  const out = [];
  let last = -1;
  ops.forEach(([op], k) => {
    if (op === ' ') return;
    for (let c = Math.max(k - 3, last + 1); c <= Math.min(k + 3, ops.length - 1); c++) {
      if (c > last + 1 && out.length > 0) out.push('@@');
      if (c > last) {
        out.push(`${ops[c][0]}${ops[c][1]}`);
        last = c;
      }
    }
  });
  return out.join('\n');
}

console.log('--- schema.graphql (committed)');
console.log('+++ introspection of the running server');
console.log(diff(committed, served));
fail('the introspected schema differs from schema.graphql (see the diff above)');
