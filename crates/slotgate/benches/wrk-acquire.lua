-- A durable acquire with a fresh call id per request, for `wrk` (BENCHMARKS.md,
-- "Durable acquire beside /healthz with wrk"):
--
--   SLOTGATE_KEY=<operator key> wrk -t2 -c50 -d10s --latency \
--     -s crates/slotgate/benches/wrk-acquire.lua http://127.0.0.1:7878
--
-- The org (SLOTGATE_ORG, default `bench`) must exist with a limit above the
-- number of requests of the run (e.g. 1000000), so every acquire is admitted
-- (201) and none queues; any other answer is counted by wrk as non-2xx.

local threads = 0

function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end

function init(args)
  key = os.getenv("SLOTGATE_KEY") or ""
  org = os.getenv("SLOTGATE_ORG") or "bench"
  started = os.time()
  n = 0
end

function request()
  n = n + 1
  -- Unique across threads and runs: thread, the run's start second, a counter.
  local body = string.format(
    '{"id":"w%d-%d-%d","agent":"agent-%d","type":"chat"}', tid, started, n, n % 100)
  return wrk.format("POST", "/v1/orgs/" .. org .. "/calls",
    { ["Authorization"] = "Bearer " .. key, ["Content-Type"] = "application/json" }, body)
end
