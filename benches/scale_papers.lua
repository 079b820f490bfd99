-- wrk script for benches/scale.sh: GET /v1/papers/gen/NNNNNNNN[SUFFIX] over the ids of a
-- synthetic corpus (benches/gen_corpus.rs: gen/00000001 .. gen/N), each thread walking its
-- own stretch of one pseudo-random permutation of 1..N, so ids do not repeat until a thread
-- has asked for N / threads of them (the server's response cache holds 32,768 papers).
--   wrk -t2 -c16 -d10s --latency -s benches/scale_papers.lua URL -- N KEYS_LUA [SUFFIX] [START]
-- SUFFIX: "" (paper view) or e.g. "/forecast?mode=at_publication"; START: where in the
-- permutation the walk begins (the warm-up and the measured run use different stretches).
-- Run from the repository root (it loads benches/wrk_common.lua).

if COUNT_STATUS == nil then
  COUNT_STATUS = false
end
dofile("benches/wrk_common.lua")

local n, step, pos, suffix = 1, 1, 0, ""

local function gcd(a, b)
  while b ~= 0 do
    a, b = b, a % b
  end
  return a
end

function init(args)
  n = tonumber(args[1]) or error("the first argument is the number of papers")
  load_keys(args[2])
  suffix = args[3] or ""
  local start = tonumber(args[4] or "0")
  -- A step coprime with n walks a permutation of 0..n-1.
  step = 2654435761 % n
  if step == 0 then
    step = 1
  end
  while gcd(step, n) ~= 1 do
    step = step + 1
  end
  -- Thread t starts t/2 of the permutation further on (setup() gives offsets 0, 7919, ...).
  local thread = math.floor((offset or 0) / 7919)
  pos = (start + thread * math.floor(n / 2)) % n
  offset_keys()
end

function request()
  pos = (pos + 1) % n
  local id = (pos * step) % n + 1
  return wrk.format("GET", string.format("/v1/papers/gen/%08d%s", id, suffix), next_headers())
end
