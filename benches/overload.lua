-- wrk script: benches/papers.lua with every response's status counted (s200, s429,
-- s503, sother in the WRK_SUMMARY line). Counting makes wrk parse each response, so
-- it costs wrk some CPU; load.sh uses it for the overload phase only.
--   wrk -t2 -c192 -d20s --latency -s benches/overload.lua http://127.0.0.1:18080 -- IDS_FILE KEYS_LUA
COUNT_STATUS = true
dofile("benches/papers.lua")
