-- wrk script: GET /v1/papers/{id}, rotating over real ids read from a file and, when a
-- keys file is given, over API keys (Authorization: Bearer).
--   wrk -t2 -c64 -d25s --latency -s benches/papers.lua http://127.0.0.1:18080 -- IDS_FILE [KEYS_LUA]
-- IDS_FILE holds one arXiv id per line (benches/load.sh writes it from data/papers.jsonl.gz);
-- KEYS_LUA returns a list of key secrets (load.sh writes it; "-" or none: anonymous).
-- benches/overload.lua is this script with response statuses counted.
-- Prints a one-line summary starting with WRK_SUMMARY that load.sh parses.
-- Run from the repository root (it loads benches/wrk_common.lua).

if COUNT_STATUS == nil then
  COUNT_STATUS = false
end
dofile("benches/wrk_common.lua")

local ids = {}
local n = 0
local i = 0

function init(args)
  local path = args[1] or "benches/paper_ids.txt"
  ids = read_lines(path)
  n = #ids
  if n == 0 then
    error("no ids in " .. path)
  end
  load_keys(args[2])
  -- Threads start at different points of the list (offset is set by setup()).
  i = (offset or 0) % n
  offset_keys()
end

function request()
  i = (i % n) + 1
  return wrk.format("GET", "/v1/papers/" .. ids[i], next_headers())
end
