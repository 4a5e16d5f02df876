-- Acquire+release cycles for `wrk`, each call acquired (a fresh id) and then
-- released on the same connection (BENCHMARKS.md, "Durable acquire beside
-- /healthz with wrk"). Run with one connection per thread (-c equal to -t), so
-- each release follows its acquire:
--
--   SLOTGATE_KEY=<operator key> wrk -t2 -c2 -d8s \
--     -s crates/slotgate/benches/wrk-cycle.lua http://127.0.0.1:7878
--
-- The org `bench` must exist; every answer is 201 or 200.

local threads = 0
function setup(thread) thread:set("tid", threads); threads = threads + 1 end
function init(args) key = os.getenv("SLOTGATE_KEY"); started = os.time(); n = 0 end
function request()
  n = n + 1
  local id = string.format("c%d-%d-%d", tid, started, math.floor((n + 1) / 2))
  local h = { ["Authorization"] = "Bearer " .. key, ["Content-Type"] = "application/json" }
  if n % 2 == 1 then
    return wrk.format("POST", "/v1/orgs/bench/calls", h, string.format('{"id":"%s","agent":"a%d","type":"chat"}', id, n % 100))
  end
  return wrk.format("DELETE", "/v1/orgs/bench/calls/" .. id, h)
end
