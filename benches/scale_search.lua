-- wrk script for benches/scale.sh: GET /v1/search?q=WORD+WORD over the two-word queries
-- that benches/gen_corpus.rs writes (DIR/queries.txt), in a pseudo-random order per thread.
--   wrk -t2 -c16 -d10s --latency -s benches/scale_search.lua URL -- QUERIES_FILE KEYS_LUA
-- Run from the repository root (it loads benches/wrk_common.lua).

if COUNT_STATUS == nil then
  COUNT_STATUS = false
end
dofile("benches/wrk_common.lua")

local queries = {}
local n, i = 0, 0

function init(args)
  for _, q in ipairs(read_lines(args[1] or error("the first argument is the queries file"))) do
    queries[#queries + 1] = (q:gsub("[^%w%-]+", "+"))
  end
  n = #queries
  if n == 0 then
    error("no queries in " .. args[1])
  end
  load_keys(args[2])
  i = (offset or 0) % n
  offset_keys()
end

function request()
  -- 7919 is prime: coprime with any n below it that it does not divide.
  i = (i + 7919) % n
  return wrk.format("GET", "/v1/search?q=" .. queries[i + 1], next_headers())
end
