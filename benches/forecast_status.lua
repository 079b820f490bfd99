-- wrk script: benches/forecast.lua with every response's status counted, by exact code.
--   wrk -t2 -c16 -d70s --latency -s benches/forecast_status.lua http://127.0.0.1:18090 -- IDS_FILE KEYS_LUA [MODE]
-- Besides the WRK_SUMMARY line (with s200/s429/s503/sother, as benches/overload.lua), it
-- prints `WRK_STATUSES 200=N [CODE=N ...]` with every status seen, and on stderr the first
-- few non-2xx responses (`WRK_BAD`, UTC time, status, start of the body), so a failure
-- can be placed on the timeline of benches/rollout-drill.sh.
-- Counting makes wrk parse every response, which costs wrk some CPU.
-- Run from the repository root (it loads benches/forecast.lua and benches/wrk_common.lua).
COUNT_STATUS = true
dofile("benches/forecast.lua")

local BAD_LOGGED_MAX = 20

-- wrk_common.lua keeps its thread list private: keep our own.
local status_threads = {}
local common_setup = setup
function setup(thread)
  common_setup(thread)
  status_threads[#status_threads + 1] = thread
end

-- Per thread (each wrk thread has its own Lua state).
statuses = {}
local bad_logged = 0

-- wrk_common.lua's counter (defined because COUNT_STATUS is set) does the s200/s429/s503 buckets.
local count_common = response
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  count_common(status, headers, body)
  if (status < 200 or status > 299) and bad_logged < BAD_LOGGED_MAX then
    bad_logged = bad_logged + 1
    io.stderr:write(string.format("WRK_BAD %s status=%d body=%s\n", os.date("!%H:%M:%S"), status,
      string.sub(string.gsub(body or "", "%s+", " "), 1, 300)))
  end
end

local common_done = done
function done(summary, latency, requests)
  common_done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(status_threads) do
    local t = thread:get("statuses")
    if type(t) == "table" then
      for code, n in pairs(t) do
        total[code] = (total[code] or 0) + n
      end
    end
  end
  local codes = {}
  for code in pairs(total) do
    codes[#codes + 1] = code
  end
  table.sort(codes)
  local parts = {}
  for _, code in ipairs(codes) do
    parts[#parts + 1] = string.format("%d=%d", code, total[code])
  end
  io.write("WRK_STATUSES " .. table.concat(parts, " ") .. "\n")
end
