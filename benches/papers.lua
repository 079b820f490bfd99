-- wrk script: GET /v1/papers/{id}, rotating over real ids read from a file.
--   wrk -t2 -c64 -d25s --latency -s benches/papers.lua http://127.0.0.1:18080 -- IDS_FILE
-- IDS_FILE holds one arXiv id per line (benches/load.sh writes it from data/papers.jsonl.gz).
-- Prints a one-line summary starting with WRK_SUMMARY that load.sh parses.

local ids = {}
local n = 0
local i = 0

-- Runs in the main Lua state once per thread, before init.
local threads = 0
function setup(thread)
  thread:set("offset", threads * 7919)
  threads = threads + 1
end

function init(args)
  local path = args[1] or "benches/paper_ids.txt"
  for line in io.lines(path) do
    if line ~= "" then
      ids[#ids + 1] = line
    end
  end
  n = #ids
  if n == 0 then
    error("no ids in " .. path)
  end
  -- Threads start at different points of the list (offset is set by setup()).
  i = (offset or 0) % n
end

function request()
  i = (i % n) + 1
  return wrk.format("GET", "/v1/papers/" .. ids[i])
end

function done(summary, latency, requests)
  local s = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    "WRK_SUMMARY requests=%d seconds=%.2f req_s=%.0f p50_ms=%.3f p90_ms=%.3f p95_ms=%.3f p99_ms=%.3f max_ms=%.3f non2xx=%d socket_errors=%d\n",
    summary.requests, s, summary.requests / s,
    latency:percentile(50) / 1e3, latency:percentile(90) / 1e3, latency:percentile(95) / 1e3,
    latency:percentile(99) / 1e3, latency.max / 1e3,
    e.status, e.connect + e.read + e.write + e.timeout))
end
