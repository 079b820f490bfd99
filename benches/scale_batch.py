#!/usr/bin/env python3
"""Batch forecast throughput for benches/scale.sh: POST /v1/forecasts with SIZE random ids of
a synthetic corpus (gen/00000001 .. gen/N), REQUESTS times one after another, after one
warm-up request that is not counted. Python standard library only.

    python3 benches/scale_batch.py BASE_URL KEY N [REQUESTS=10] [SIZE=1000] [MODE=at_publication]

Prints one line that scale.sh parses:
    BATCH requests=.. forecasts=.. errors=.. seconds=.. forecasts_per_s=.. p50_s=.. max_s=.. status=..
"""
import json
import random
import sys
import time
import urllib.error
import urllib.request


def post(base, key, ids, mode, timeout):
    body = json.dumps({"ids": ids, "mode": mode}).encode()
    req = urllib.request.Request(
        base + "/v1/forecasts",
        data=body,
        headers={"Authorization": "Bearer " + key, "Content-Type": "application/json"},
        method="POST",
    )
    started = time.monotonic()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            data = json.loads(resp.read())
            status = resp.status
    except urllib.error.HTTPError as e:
        return time.monotonic() - started, 0, len(ids), e.code
    return time.monotonic() - started, len(data.get("forecasts", [])), len(data.get("errors", [])), status


def main():
    base, key, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    requests = int(sys.argv[4]) if len(sys.argv) > 4 else 10
    size = int(sys.argv[5]) if len(sys.argv) > 5 else 1000
    mode = sys.argv[6] if len(sys.argv) > 6 else "at_publication"
    rng = random.Random(15)
    batch = lambda: ["gen/%08d" % rng.randint(1, n) for _ in range(size)]
    post(base, key, batch(), mode, 300)
    times, forecasts, errors, statuses = [], 0, 0, set()
    for _ in range(requests):
        t, f, e, status = post(base, key, batch(), mode, 300)
        times.append(t)
        forecasts += f
        errors += e
        statuses.add(status)
    total = sum(times)
    times.sort()
    print(
        "BATCH requests=%d forecasts=%d errors=%d seconds=%.3f forecasts_per_s=%.0f p50_s=%.3f max_s=%.3f status=%s"
        % (
            requests,
            forecasts,
            errors,
            total,
            forecasts / total if total > 0 else 0,
            times[len(times) // 2],
            times[-1],
            ",".join(str(s) for s in sorted(statuses)),
        )
    )


if __name__ == "__main__":
    main()
