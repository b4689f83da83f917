-- wrk script for POST /api/events (BATCH=1) or /api/events/batch (BATCH=N).
-- Counts accepted events per thread from the responses, so the total can be checked
-- against what the server stored.
local batch = tonumber(os.getenv("BATCH") or "1")
local key = os.getenv("KEY")
local run = os.getenv("RUN") or "bench"
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  accepted = 0
  failed = 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. key
  local one = '{"name":"' .. run .. '","properties":{"plan":"pro","amount":12.5,"path":"/checkout"},"user_id":"u42"}'
  if batch == 1 then
    wrk.path = "/api/events"
    wrk.body = one
  else
    wrk.path = "/api/events/batch"
    local events = {}
    for i = 1, batch do events[i] = one end
    wrk.body = '{"events":[' .. table.concat(events, ",") .. ']}'
  end
end

function response(status, headers, body)
  if status == 200 or status == 202 then
    local n = body:match('"accepted":(%d+)')
    accepted = accepted + (tonumber(n) or 0)
  else
    failed = failed + 1
  end
end

function done(summary, latency, requests)
  local total, errors = 0, 0
  for _, thread in ipairs(threads) do
    total = total + thread:get("accepted")
    errors = errors + thread:get("failed")
  end
  local seconds = summary.duration / 1e6
  io.write(string.format("events_per_s=%d\n", total / seconds))
  io.write(string.format("requests_per_s=%d\n", summary.requests / seconds))
  io.write(string.format("latency_p50_ms=%.2f\n", latency:percentile(50) / 1000))
  io.write(string.format("latency_p99_ms=%.2f\n", latency:percentile(99) / 1000))
  io.write(string.format("accepted_events=%d\n", total))
  io.write(string.format("failed_requests=%d\n", errors + summary.errors.status))
end
