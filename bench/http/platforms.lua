-- wrk script for bench/http_bench.py --platforms: the same call through /v1/route and through
-- each platform endpoint, each in the platform's own request shape, a new conversation id
-- each time.
--
--   wrk -t2 -c200 -d15s --latency -s bench/http/platforms.lua http://127.0.0.1:PORT -- MODE TAG "" KEY
--
-- MODE: route | amazon-connect | twilio-voice | twilio-studio | genesys. TAG makes ids unique
-- across runs; ids are "<TAG>-<thread>-<n>". The caller's and dialled numbers are the same in
-- every mode, so with lookups off (no POLYAI_API_KEY) every mode gets the same decision.
-- KEY is sent as "Authorization: Bearer". done() prints one line "WRK_JSON {...}".

local thread_count = 0
local threads = {}

function setup(thread)
  thread_count = thread_count + 1
  thread:set("tid", thread_count)
  table.insert(threads, thread)
end

local mode, prefix
counter = 0  -- global: done() reads it per thread
local headers = {}
local path

local ANI = "+447700900123"
local DNIS = "+442071234567"

local function urlencode(text)
  return (text:gsub("[^%w%-_%.~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

function init(args)
  mode = args[1] or "route"
  prefix = (args[2] or "bench") .. "-" .. tostring(tid) .. "-"
  if args[4] and args[4] ~= "" then
    headers["Authorization"] = "Bearer " .. args[4]
  end
  if mode == "route" then
    path = "/v1/route"
    headers["Content-Type"] = "application/json"
  elseif mode == "amazon-connect" then
    path = "/v1/platforms/amazon-connect"
    headers["Content-Type"] = "application/json"
  elseif mode == "twilio-voice" then
    path = "/v1/platforms/twilio/voice"
    headers["Content-Type"] = "application/x-www-form-urlencoded"
  elseif mode == "twilio-studio" then
    path = "/v1/platforms/twilio/studio"
    headers["Content-Type"] = "application/x-www-form-urlencoded"
  elseif mode == "genesys" then
    path = "/v1/platforms/genesys"
    headers["Content-Type"] = "application/json"
  else
    error("unknown mode " .. mode)
  end
end

local function body_for(id)
  if mode == "route" then
    return '{"conversation_id":"' .. id .. '","context":{"ani":"' .. ANI .. '","dnis":"' .. DNIS
      .. '","call_id":"CA' .. id .. '"}}'
  elseif mode == "amazon-connect" then
    -- The Lambda event as Connect sends it (AWS Lambda Developer Guide's example).
    return '{"Details":{"ContactData":{"Attributes":{},"Channel":"VOICE",'
      .. '"ContactId":"4a573372-1f28-4e26-b97b-' .. id .. '",'
      .. '"CustomerEndpoint":{"Address":"' .. ANI .. '","Type":"TELEPHONE_NUMBER"},'
      .. '"InitialContactId":"4a573372-1f28-4e26-b97b-' .. id .. '",'
      .. '"InitiationMethod":"INBOUND",'
      .. '"InstanceARN":"arn:aws:connect:eu-west-2:111122223333:instance/1b2c3d4e-5f60-4a7b-8c9d-0e1f2a3b4c5d",'
      .. '"PreviousContactId":"4a573372-1f28-4e26-b97b-' .. id .. '","Queue":null,'
      .. '"SystemEndpoint":{"Address":"' .. DNIS .. '","Type":"TELEPHONE_NUMBER"}},'
      .. '"Parameters":{"conversation_id":"' .. id .. '"}},"Name":"ContactFlowEvent"}'
  elseif mode == "twilio-voice" then
    -- A SIP transfer's voice webhook (Twilio's "SIP and TwiML Interaction" parameters).
    local from = urlencode("sip:" .. ANI .. "@203.0.113.10")
    local to = urlencode("sip:" .. DNIS .. "@example.sip.twilio.com")
    return "AccountSid=ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX&ApiVersion=2010-04-01"
      .. "&CallSid=CA" .. urlencode(id) .. "&CallStatus=ringing&Called=" .. to
      .. "&Caller=" .. from .. "&Direction=inbound&From=" .. from
      .. "&SipCallId=" .. urlencode(id .. "@203.0.113.10")
      .. "&SipDomain=example.sip.twilio.com&SipDomainSid=SDXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"
      .. "&SipHeader_X-Conversation-Id=" .. urlencode(id)
      .. "&SipSourceIp=203.0.113.10&To=" .. to
  elseif mode == "twilio-studio" then
    -- What the shipped Studio flow's Make HTTP Request widget sends for that call.
    return "conversation_id=" .. urlencode(id) .. "&shared_id=&call_sid=CA" .. urlencode(id)
      .. "&from=" .. urlencode("sip:" .. ANI .. "@203.0.113.10")
      .. "&to=" .. urlencode("sip:" .. DNIS .. "@example.sip.twilio.com")
  else
    -- What the shipped Genesys data action's request template builds.
    return '{"conversation_id": "' .. id .. '", "shared_id": "", "genesys_conversation_id": "'
      .. id .. '", "ani": "' .. ANI .. '", "dnis": "' .. DNIS .. '"}'
  end
end

function request()
  counter = counter + 1
  return wrk.format("POST", path, headers, body_for(prefix .. counter))
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
