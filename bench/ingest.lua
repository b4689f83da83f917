-- wrk script for POST /api/events (BATCH=1) or /api/events/batch (BATCH=N).
-- Counts accepted events per thread from the responses, so the total can be checked
-- against what the server stored.
-- NAMES=K spreads events over K event names (RUN_0 … RUN_{K-1}) instead of one (RUN):
-- each name is its own insertion point in the index of events by (organization, name)
-- key and time (migration 0012), as with a real product's dozens of event names.
local batch = tonumber(os.getenv("BATCH") or "1")
local key = os.getenv("KEY")
local run = os.getenv("RUN") or "bench"
local names = tonumber(os.getenv("NAMES") or "1")
local threads = {}
local bodies = nil
local next_body = 0

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  accepted = 0
  failed = 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. key
  local function event(n)
    local name = run
    if names > 1 then name = run .. "_" .. (n % names) end
    return '{"name":"' .. name .. '","properties":{"plan":"pro","amount":12.5,"path":"/checkout"},"user_id":"u42"}'
  end
  wrk.path = batch == 1 and "/api/events" or "/api/events/batch"
  local function body(first)
    if batch == 1 then return event(first) end
    local events = {}
    for i = 1, batch do events[i] = event(first + i) end
    return '{"events":[' .. table.concat(events, ",") .. ']}'
  end
  if names == 1 then
    wrk.body = body(0)
    return
  end
  -- Bodies rotated per request; a batch's events cycle through the names.
  bodies = {}
  for b = 1, names do bodies[b] = body(b) end
end

-- Defined only when needed: without it wrk sends its fixed body with no Lua per request.
if names > 1 then
  function request()
    next_body = next_body % #bodies + 1
    return wrk.format(nil, nil, nil, bodies[next_body])
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
