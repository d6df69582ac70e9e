-- wrk script for bench/http_bench.py: POST /v1/route with a new conversation id each time.
--
--   wrk -t2 -c200 -d15s --latency -s bench/http/route.lua http://127.0.0.1:PORT -- MODE TAG [BUDGET_MS]
--
-- MODE: "inline" (handoff + state in the body: no lookups) or "lookup" (ids only: the
-- router asks PolyAI). TAG makes ids unique across runs; each thread numbers its own
-- requests, so ids are "<TAG>-<thread>-<n>" and never repeat (no cache can help).
-- BUDGET_MS (may be "") adds "budget_ms"; API_KEY is sent as "Authorization: Bearer".
-- done() prints one line "WRK_JSON {...}" with the counts and latencies (microseconds).

local thread_count = 0
local threads = {}

function setup(thread)
  thread_count = thread_count + 1
  thread:set("tid", thread_count)
  table.insert(threads, thread)
end

local mode, prefix, budget_part
counter = 0  -- global: done() reads it per thread
local headers = {["Content-Type"] = "application/json"}

function init(args)
  mode = args[1] or "inline"
  prefix = (args[2] or "bench") .. "-" .. tostring(tid) .. "-"
  budget_part = ""
  if args[3] and args[3] ~= "" then
    budget_part = ',"budget_ms":' .. args[3]
  end
  if args[4] and args[4] ~= "" then
    headers["Authorization"] = "Bearer " .. args[4]
  end
end

function request()
  counter = counter + 1
  local id = prefix .. counter
  local body
  if mode == "lookup" then
    body = '{"conversation_id":"' .. id .. '","context":{"dnis":"+442071234567","ivr_choice":"2"}'
      .. budget_part .. '}'
  else
    body = '{"conversation_id":"' .. id .. '","context":{"dnis":"+442071234567","ivr_choice":"2"},'
      .. '"handoff":{"handoff_reason":"refund","intent":"billing.refund_status","customer_id":"C-204871"},'
      .. '"state":{"customer_tier":"gold","balance":"1500","sentiment":"calm"}'
      .. budget_part .. '}'
  end
  return wrk.format("POST", "/v1/route", headers, body)
end

function done(summary, latency, requests)
  local ids = 0
  for _, thread in ipairs(threads) do
    ids = ids + (thread:get("counter") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"duration_us":%d,"requests":%d,"bytes":%d,"ids":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"min":%d,"mean":%.1f,"stdev":%.1f,"max":%d,' ..
    '"p50":%d,"p90":%d,"p99":%d,"p999":%d}}\n',
    summary.duration, summary.requests, summary.bytes, ids,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency.stdev, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9)))
end
