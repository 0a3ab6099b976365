-- wrk script for the usage benchmark: the same GET on every request.
-- Args (the ingest benchmark's order): <unused prefix> <unused size> <api key> <path and query>
function init(args)
  headers = { ["Authorization"] = "Bearer " .. args[3] }
  path = args[4]
end

function request()
  return wrk.format("GET", path, headers)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests":%d,"duration_us":%d,"errors":%d,"p50_us":%d,"p95_us":%d,"p99_us":%d}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99)))
end
