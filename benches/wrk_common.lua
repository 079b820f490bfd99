-- Shared by the wrk scripts (loaded with dofile from the repository root, as load.sh runs):
-- API keys rotated in an Authorization header, per-thread start offsets, optional counts
-- of response statuses, and the WRK_SUMMARY line that load.sh parses.
--
-- A script sets, before dofile("benches/wrk_common.lua"):
--   COUNT_STATUS = true   to count statuses in response() (makes wrk parse every response,
--                         which costs wrk some CPU; used by the overload phase only)

local threads = {}

-- Runs in the main Lua state once per thread, before init.
function setup(thread)
  thread:set("offset", #threads * 7919)
  threads[#threads + 1] = thread
end

function read_lines(path)
  local out = {}
  for line in io.lines(path) do
    if line ~= "" then
      out[#out + 1] = line
    end
  end
  return out
end

-- KEYS_LUA is a Lua file returning a list of API key secrets (load.sh writes it).
-- Without one, requests go out anonymous.
keys = {}
function load_keys(path)
  if path == nil or path == "" or path == "-" then
    keys = {}
    return
  end
  keys = dofile(path)
  if #keys == 0 then
    error("no keys in " .. path)
  end
end

local k = 0
-- Headers for the next request: the next key, round robin.
function next_headers()
  if #keys == 0 then
    return nil
  end
  k = (k % #keys) + 1
  return { ["Authorization"] = "Bearer " .. keys[k] }
end

-- Start each thread's key rotation at its own offset too.
function offset_keys()
  if #keys > 0 then
    k = (offset or 0) % #keys
  end
end

c200, c429, c503, cother = 0, 0, 0, 0
if COUNT_STATUS then
  function response(status, headers, body)
    if status == 200 then
      c200 = c200 + 1
    elseif status == 429 then
      c429 = c429 + 1
    elseif status == 503 then
      c503 = c503 + 1
    else
      cother = cother + 1
    end
  end
end

function done(summary, latency, requests)
  local s = summary.duration / 1e6
  local e = summary.errors
  local statuses = ""
  if COUNT_STATUS then
    local t = { 0, 0, 0, 0 }
    for _, thread in ipairs(threads) do
      t[1] = t[1] + (thread:get("c200") or 0)
      t[2] = t[2] + (thread:get("c429") or 0)
      t[3] = t[3] + (thread:get("c503") or 0)
      t[4] = t[4] + (thread:get("cother") or 0)
    end
    statuses = string.format(" s200=%d s429=%d s503=%d sother=%d", t[1], t[2], t[3], t[4])
  end
  io.write(string.format(
    "WRK_SUMMARY requests=%d seconds=%.2f req_s=%.0f p50_ms=%.3f p90_ms=%.3f p95_ms=%.3f p99_ms=%.3f max_ms=%.3f non2xx=%d socket_errors=%d%s\n",
    summary.requests, s, summary.requests / s,
    latency:percentile(50) / 1e3, latency:percentile(90) / 1e3, latency:percentile(95) / 1e3,
    latency:percentile(99) / 1e3, latency.max / 1e3,
    e.status, e.connect + e.read + e.write + e.timeout, statuses))
end
