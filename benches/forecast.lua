-- wrk script: GET /v1/papers/{id}/forecast?mode=MODE, rotating over ids and API keys.
--   wrk -t2 -c64 -d15s --latency -s benches/forecast.lua http://127.0.0.1:18080 -- IDS_FILE KEYS_LUA [MODE]
-- MODE: at_publication (default) or early. The server caches a rendered forecast per
-- mode and id, so after the first pass over the ids these are cached lookups.
-- Run from the repository root (it loads benches/wrk_common.lua).
if COUNT_STATUS == nil then
  COUNT_STATUS = false
end
dofile("benches/wrk_common.lua")

local ids = {}
local n = 0
local i = 0
local mode = "at_publication"

function init(args)
  local path = args[1] or "benches/forecast_ids.txt"
  ids = read_lines(path)
  n = #ids
  if n == 0 then
    error("no ids in " .. path)
  end
  load_keys(args[2])
  mode = args[3] or mode
  i = (offset or 0) % n
  offset_keys()
end

function request()
  i = (i % n) + 1
  return wrk.format("GET", "/v1/papers/" .. ids[i] .. "/forecast?mode=" .. mode, next_headers())
end
