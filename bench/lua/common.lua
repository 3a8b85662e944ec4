-- Shared by every wrk script of the benchmark (loaded with dofile by each of them).
--
-- * graphql(query, opts) sets the constant POST /graphql request of the script.
-- * response() counts what wrk alone would not call an error: HTTP status > 299 and
--   GraphQL errors, which come with HTTP 200 (a body containing "errors").
-- * done() prints one line, `BENCH_JSON {...}`, that bench/bench.py parses:
--   requests, duration, req/s, latency percentiles in microseconds, errors.

local function json_string(s)
   s = s:gsub('[%c"\\]', function(c)
      if c == '"' then return '\\"' end
      if c == "\\" then return "\\\\" end
      if c == "\n" then return "\\n" end
      return string.format("\\u%04x", c:byte())
   end)
   return '"' .. s .. '"'
end

-- A constant GraphQL request: `variables` is a ready JSON object text (or nil);
-- `auth = true` sends `Authorization: Bearer $BENCH_TOKEN`.
function graphql(query, opts)
   opts = opts or {}
   wrk.method = "POST"
   wrk.path = "/graphql"
   wrk.headers["Content-Type"] = "application/json"
   wrk.headers["Accept"] = "application/json"
   local body = '{"query":' .. json_string(query)
   if opts.variables then
      body = body .. ',"variables":' .. opts.variables
   end
   wrk.body = body .. "}"
   if opts.auth then
      local token = os.getenv("BENCH_TOKEN")
      assert(token and token ~= "", "BENCH_TOKEN is not set")
      wrk.headers["Authorization"] = "Bearer " .. token
   end
end

-- Environment variable, JSON-quoted, for bodies built from the seeded data.
function env_json(name)
   local value = os.getenv(name)
   assert(value and value ~= "", name .. " is not set")
   return json_string(value)
end

-- Per-thread state; done() reads it back through the thread objects.
local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

bad_status = 0
graphql_errors = 0
first_error = ""

function response(status, headers, body)
   if status > 299 then
      bad_status = bad_status + 1
   elseif body and body:find('"errors"', 1, true) then
      graphql_errors = graphql_errors + 1
   else
      return
   end
   if first_error == "" then
      first_error = "HTTP " .. status .. ": " .. string.sub(body or "", 1, 300)
   end
end

function done(summary, latency, requests)
   local bad, gql, sample = 0, 0, ""
   for _, thread in ipairs(threads) do
      bad = bad + (thread:get("bad_status") or 0)
      gql = gql + (thread:get("graphql_errors") or 0)
      local e = thread:get("first_error") or ""
      if sample == "" then sample = e end
   end
   local e = summary.errors
   local seconds = summary.duration / 1e6
   io.write(string.format(
      'BENCH_JSON {"requests":%d,"duration_s":%.3f,"rps":%.2f,' ..
      '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f},' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d,' ..
      '"status_over_299":%d,"graphql":%d},"first_error":%s}\n',
      summary.requests, seconds, summary.requests / seconds,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency.max, latency.mean,
      e.connect, e.read, e.write, e.timeout, bad, gql, json_string(sample)))
end
