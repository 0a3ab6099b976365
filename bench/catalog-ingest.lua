-- wrk script for the catalog-ingest benchmark: ingest.lua's requests, with event codes cycling over
-- the catalog's metric codes and subscription ids over its subscriptions.
-- Args: <id prefix> <events per request: 0 = single endpoint> <api key> <metrics> <subscriptions> <code prefix>
local counter = 0
local nthreads = 0
local regions = { "eu-west", "us-east", "ap-south", "sa-east" }

function setup(thread)
  nthreads = nthreads + 1
  thread:set("tid", nthreads)
end

function init(args)
  prefix = args[1] .. "-" .. tid .. "-"
  size = tonumber(args[2])
  metrics = tonumber(args[4])
  subscriptions = tonumber(args[5])
  codeformat = args[6] .. "%04d"
  path = (size == 0) and "/api/v1/events" or "/api/v1/events/batch"
  headers = { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. args[3] }
end

local function event()
  counter = counter + 1
  return '{"transaction_id":"' .. prefix .. counter .. '","external_subscription_id":"sub_' .. (counter % subscriptions) ..
    '","code":"' .. string.format(codeformat, counter % metrics) .. '","properties":{"tokens":' .. (counter % 97) ..
    ',"region":"' .. regions[(math.floor(counter / 7) % 4) + 1] .. '"}}'
end

function request()
  if size == 0 then
    return wrk.format("POST", path, headers, '{"event":' .. event() .. '}')
  end
  local parts = {}
  for i = 1, size do parts[i] = event() end
  return wrk.format("POST", path, headers, '{"events":[' .. table.concat(parts, ",") .. ']}')
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests":%d,"duration_us":%d,"errors":%d,"p50_us":%d,"p95_us":%d,"p99_us":%d}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99)))
end
