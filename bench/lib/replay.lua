-- wrk script: replays pre-signed ECS requests round-robin.
-- The request list is a Lua file (`return { "<raw HTTP request>", ... }`) written by
-- signing.py; its path is the first script argument (wrk ... -- requests.lua).
-- wrk counts a status > 399 as an error (summary.errors.status); done() prints the summary
-- as one JSON line that readbench.py parses.

local counter = 0

function setup(thread)
   thread:set("id", counter)
   counter = counter + 1
end

local requests
local index = 0

function init(args)
   requests = dofile(args[1])
   -- Threads start at different offsets so they do not ask for the same item in lockstep.
   index = ((id or 0) * 7) % #requests
end

function request()
   index = index % #requests + 1
   return requests[index]
end

function done(summary, latency, _)
   local e = summary.errors
   io.write(string.format(
      'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,' ..
      '"write":%d,"status":%d,"timeout":%d,"p50_us":%d,"p99_us":%d}\n',
      summary.requests, summary.duration, summary.bytes, e.connect, e.read,
      e.write, e.status, e.timeout, latency:percentile(50), latency:percentile(99)))
end
