-- wrk script for benches/scale.sh: GET /v1/papers/{id}[SUFFIX] over the ids of a synthetic
-- corpus (benches/gen_corpus.rs: gen/00000001 .. gen/N), each thread walking its own stretch
-- of one pseudo-random permutation, so no path repeats until a thread has asked for
-- FORMS x N / 2 of them. The server's response cache holds 32,768 papers, keyed by the id
-- as asked: with FORMS = 3 every paper is also asked by its two aliases (the store derives
-- `00001234` and `1234` from `gen/00001234`, as it does for arXiv's old-style ids), so a
-- corpus of 30,000 papers has 90,000 distinct paths and the walk stays uncached; scale.sh
-- reads the cache's hit ratio from /metrics to check.
--   wrk -t2 -c16 -d10s --latency -s benches/scale_papers.lua URL -- N KEYS_LUA [SUFFIX] [START] [FORMS]
-- SUFFIX: "" (paper view) or e.g. "/forecast?mode=at_publication"; START: where in the
-- permutation the walk begins; FORMS: 1 (canonical ids only) to 3.
-- Run from the repository root (it loads benches/wrk_common.lua).

if COUNT_STATUS == nil then
  COUNT_STATUS = false
end
dofile("benches/wrk_common.lua")

local n, m, forms, step, pos, suffix = 1, 1, 1, 1, 0, ""

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
  forms = math.max(1, math.min(3, tonumber(args[5] or "1")))
  m = n * forms
  -- A step coprime with m walks a permutation of 0..m-1.
  step = 2654435761 % m
  if step == 0 then
    step = 1
  end
  while gcd(step, m) ~= 1 do
    step = step + 1
  end
  -- Thread t starts t/2 of the permutation further on (setup() gives offsets 0, 7919, ...).
  local thread = math.floor((offset or 0) / 7919)
  pos = (start + thread * math.floor(m / 2)) % m
  offset_keys()
end

function request()
  pos = (pos + 1) % m
  local k = (pos * step) % m
  local id, form = k % n + 1, math.floor(k / n)
  local path
  if form == 0 then
    path = string.format("/v1/papers/gen/%08d%s", id, suffix)
  elseif form == 1 then
    path = string.format("/v1/papers/%08d%s", id, suffix)
  else
    path = string.format("/v1/papers/%d%s", id, suffix)
  end
  return wrk.format("GET", path, next_headers())
end
