-- wrk script: GET /v1/search, rotating over realistic queries (some with date and
-- author filters), 10 hits each (the API default).
--   wrk -t2 -c64 -d25s --latency -s benches/search.lua http://127.0.0.1:18080 -- [KEYS_LUA]
-- KEYS_LUA returns a list of API key secrets, rotated in an Authorization header.
-- Run from the repository root (it loads benches/wrk_common.lua).
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

if COUNT_STATUS == nil then
  COUNT_STATUS = false
end
dofile("benches/wrk_common.lua")

function init(args)
  load_keys(args[1])
  -- Threads start at different points of the list (offset is set by setup()).
  i = (offset or 0) % n
  offset_keys()
end

function request()
  i = (i % n) + 1
  return wrk.format("GET", "/v1/search?" .. queries[i], next_headers())
end
