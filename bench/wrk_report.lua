-- wrk script for the benchmarks: with BENCH_PROJECTS=N, each request asks for
-- a random project page BENCH_PREFIX..proj-NNNN/; otherwise the URL given.
-- At the end it prints one line "BENCH_JSON {...}" with the figures.

local projects = tonumber(os.getenv("BENCH_PROJECTS") or "0")
local prefix = os.getenv("BENCH_PREFIX") or "/simple/"
local counter = 0
local threads = {}

function setup(thread)
   counter = counter + 1
   thread:set("id", counter)
   table.insert(threads, thread)
end

function init(args)
   math.randomseed(os.time() * 1000 + id)
   non2xx = 0
end

if projects > 0 then
   request = function()
      return wrk.format("GET", string.format("%sproj-%04d/", prefix, math.random(1, projects)))
   end
end

function response(status, headers, body)
   if status < 200 or status > 299 then
      non2xx = non2xx + 1
   end
end

function done(summary, latency, requests)
   local bad = 0
   for _, thread in ipairs(threads) do
      bad = bad + thread:get("non2xx")
   end
   local errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
   io.write(string.format(
      'BENCH_JSON {"rps": %.1f, "p50_us": %d, "p99_us": %d, "errors": %d, "non2xx": %d}\n',
      summary.requests / (summary.duration / 1e6), latency:percentile(50), latency:percentile(99), errors, bad))
end
