-- wrk script: GET /v1/search, rotating over realistic queries (some with date and
-- author filters), 10 hits each (the API default).
--   wrk -t2 -c64 -d25s --latency -s benches/search.lua http://127.0.0.1:18080
-- Prints a one-line summary starting with WRK_SUMMARY that load.sh parses.

local queries = {
  "q=black+hole+entropy",
  "q=D-brane",
  "q=supersymmetric+gauge+theory",
  "q=AdS%2FCFT+correspondence",
  "q=string+compactification",
  "q=matrix+model",
  "q=noncommutative+geometry",
  "q=Seiberg-Witten",
  "q=conformal+field+theory",
  "q=tachyon+condensation",
  "q=M-theory",
  "q=Calabi-Yau+mirror+symmetry",
  "q=topological+string+amplitudes",
  "q=cosmological+constant",
  "q=brane+world&from=1999-01-01&to=2003-12-31",
  "q=instanton&from=1992-01-01&to=1996-12-31",
  "q=Chern-Simons+theory&from=1995-01-01&to=2000-12-31",
  "q=string+duality&author=E.+Witten",
  "q=orbifold&author=C.+Vafa",
  "q=holography&author=J.+Maldacena",
}
local n = #queries
local i = 0

-- Runs in the main Lua state once per thread, before init.
local threads = 0
function setup(thread)
  thread:set("offset", threads * 7919)
  threads = threads + 1
end

function init(args)
  -- Threads start at different points of the list (offset is set by setup()).
  i = (offset or 0) % n
end

function request()
  i = (i % n) + 1
  return wrk.format("GET", "/v1/search?" .. queries[i])
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
