-- wrk script: GET BENCH_PATH with a different user's token on each request.
--
-- Environment (set by bench/load.py):
--   BENCH_TOKENS_FILE   one access token a line; requests cycle through them
--   BENCH_PATH          request path (default /api/me)
--   BENCH_CLOSE         "1": send Connection: close, a new connection per request
--   BENCH_MAX_REQUESTS  per thread: stop after this many responses (0: only the duration)
-- At the end it prints one line "BENCH_JSON {...}": counts, statuses and latency percentiles
-- in microseconds, for the harness to parse.

local path = os.getenv("BENCH_PATH") or "/api/me"
local close = os.getenv("BENCH_CLOSE") == "1"
local max_requests = tonumber(os.getenv("BENCH_MAX_REQUESTS") or "0")
local threads = {}

function setup(thread)
  thread:set("thread_index", #threads)
  table.insert(threads, thread)
end

function init(args)
  prepared = {}
  statuses = {}
  responses = 0
  for token in io.lines(os.getenv("BENCH_TOKENS_FILE")) do
    if token ~= "" then
      local headers = { Authorization = "Bearer " .. token }
      if close then
        headers["Connection"] = "close"
      end
      table.insert(prepared, wrk.format("GET", path, headers))
    end
  end
  -- Threads start at different users, so that they do not send the same token together.
  position = (thread_index * 37) % #prepared
end

function request()
  position = position % #prepared + 1
  return prepared[position]
end

function response(status, headers, body)
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
  responses = responses + 1
  if max_requests > 0 and responses >= max_requests then
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local merged = {}
  for _, thread in ipairs(threads) do
    local counted = thread:get("statuses")
    for status, count in pairs(counted) do
      merged[status] = (merged[status] or 0) + count
    end
  end
  local parts = {}
  for status, count in pairs(merged) do
    table.insert(parts, string.format('"%s": %d', status, count))
  end
  local errors = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"statuses": {%s}, "latency_us": {"p50": %d, "p90": %d, "p99": %d, "max": %d, ' ..
    '"mean": %.1f}}\n',
    summary.requests, summary.duration, summary.bytes,
    errors.connect, errors.read, errors.write, errors.status, errors.timeout,
    table.concat(parts, ", "),
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean))
end
