#!/usr/bin/env python3
"""Log-log plots of cost against corpus size from a benches/scale.sh CSV, as hand-written
SVG (Python standard library only).

    python3 benches/plot_scale.py benches/results/scale-DATE.csv [OUT_DIR=docs/img]

Writes one SVG per metric group into OUT_DIR: scale-time.svg (ingest, start, warm-up,
training), scale-memory.svg (RSS, disk), scale-latency.svg (p50/p99 over HTTP and direct),
scale-throughput.svg (req/s, forecasts/s). A dotted grey line through each group's first
point shows what linear growth (cost proportional to papers) would look like. A size run
twice in the CSV keeps its last row; empty cells (skipped steps) are left out.
"""
import csv
import math
import os
import sys
from xml.sax.saxutils import escape

GROUPS = {
    "time": (
        "Time (s)",
        [
            ("ingest_s", "citecast ingest"),
            ("first_ready_s", "first start: ready"),
            ("restart_ready_s", "restart: ready"),
            ("restart_warm_s", "restart: forecasts warm"),
            ("train_s", "train, both modes"),
            ("gen_s", "corpus generation"),
        ],
    ),
    "memory": (
        "MB",
        [
            ("rss_idle_mb", "RSS idle (warm)"),
            ("rss_load_mb", "RSS under load"),
            ("ingest_peak_rss_mb", "ingest peak RSS"),
            ("train_peak_rss_mb", "training peak RSS"),
            ("disk_mb", "data dir on disk"),
            ("corpus_gz_mb", "corpus files (gzip)"),
        ],
    ),
    "latency": (
        "Latency (ms)",
        [
            ("lookup_p50_ms", "paper lookup p50"),
            ("lookup_p99_ms", "paper lookup p99"),
            ("search_p50_ms", "search (2 random words) p50"),
            ("search_p99_ms", "search (2 random words) p99"),
            ("search1_p50_ms", "search, 1 connection, p50"),
            ("forecast_p50_ms", "single forecast p50"),
            ("direct_full_p50_ms", "direct TopicIndex::search p50"),
            ("direct_top_p50_ms", "direct TopDocs only p50"),
        ],
    ),
    "throughput": (
        "Per second",
        [
            ("lookup_rps", "paper lookups/s"),
            ("search_rps", "searches/s (2 random words)"),
            ("forecast_rps", "single forecasts/s"),
            ("batch_forecasts_per_s", "batch forecasts/s (1,000 ids)"),
        ],
    ),
}
COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
DASHES = ["", "6,3", "", "6,3", "", "6,3", "2,2", "2,2"]
W, H = 760, 460
LEFT, RIGHT, TOP, BOTTOM = 70, 250, 40, 55


def number(v):
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if x > 0 and math.isfinite(x) else None


def decades(lo, hi):
    """Log10 tick positions covering [lo, hi]: 1, 2, 5 per decade when the range is short."""
    a, b = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    if b == a:
        b += 1
    steps = (1, 2, 5) if b - a <= 2 else (1,)
    ticks = [m * 10**e for e in range(a, b + 1) for m in steps]
    return [t for t in ticks if lo / 1.0001 <= t <= hi * 1.0001] or [10**a, 10**b], 10**a, 10**b


def label(v):
    if v >= 1e6:
        return f"{v / 1e6:g}M"
    if v >= 1e3:
        return f"{v / 1e3:g}k"
    return f"{v:g}"


def plot(rows, title, unit, series, path, subtitle):
    xs = [number(r["papers"]) for r in rows]
    points = []
    for key, name in series:
        pts = [(x, number(r.get(key))) for x, r in zip(xs, rows)]
        pts = [(x, y) for x, y in pts if x and y]
        if pts:
            points.append((name, pts))
    if not points:
        return False
    all_x = [x for _, pts in points for x, _ in pts]
    all_y = [y for _, pts in points for _, y in pts]
    xticks, x0, x1 = decades(min(all_x), max(all_x))
    yticks, y0, y1 = decades(min(all_y), max(all_y))
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM

    def px(x):
        return LEFT + (math.log10(x) - math.log10(x0)) / (math.log10(x1) - math.log10(x0)) * pw

    def py(y):
        return TOP + ph - (math.log10(y) - math.log10(y0)) / (math.log10(y1) - math.log10(y0)) * ph

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
        'font-family="sans-serif" font-size="12">',
        f'<rect width="{W}" height="{H}" fill="white"/>',
        f'<text x="{LEFT}" y="18" font-size="15" font-weight="bold">{escape(title)}</text>',
        f'<text x="{LEFT}" y="33" font-size="11" fill="#555">{escape(subtitle)}</text>',
    ]
    # Grid and ticks: every decade (and 2, 5 on short ranges).
    for t in yticks:
        y = py(t)
        major = abs(math.log10(t) - round(math.log10(t))) < 1e-9
        out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + pw}" y2="{y:.1f}" stroke="{"#ccc" if major else "#eee"}"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{label(t)}</text>')
    for t in xticks:
        x = px(t)
        major = abs(math.log10(t) - round(math.log10(t))) < 1e-9
        out.append(f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{TOP + ph}" stroke="{"#ccc" if major else "#eee"}"/>')
        out.append(f'<text x="{x:.1f}" y="{TOP + ph + 16}" text-anchor="middle">{label(t)}</text>')
    out.append(f'<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>')
    out.append(f'<text x="{LEFT + pw / 2}" y="{H - 12}" text-anchor="middle">papers in the corpus (log scale)</text>')
    out.append(
        f'<text x="16" y="{TOP + ph / 2}" text-anchor="middle" transform="rotate(-90 16 {TOP + ph / 2})">'
        f"{escape(unit)} (log scale)</text>"
    )
    # The linear guide through the first series' first point.
    gx, gy = points[0][1][0]
    gx1 = x1
    gy1 = gy * gx1 / gx
    if gy1 > y1:
        gx1, gy1 = gx * y1 / gy, y1
    out.append(
        f'<line x1="{px(gx):.1f}" y1="{py(gy):.1f}" x2="{px(gx1):.1f}" y2="{py(gy1):.1f}" '
        'stroke="#999" stroke-dasharray="1,4" stroke-width="1.5"/>'
    )
    for i, (name, pts) in enumerate(points):
        c, d = COLOURS[i % len(COLOURS)], DASHES[i % len(DASHES)]
        dash = f' stroke-dasharray="{d}"' if d else ""
        coords = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)
        out.append(f'<polyline points="{coords}" fill="none" stroke="{c}" stroke-width="2"{dash}/>')
        for x, y in pts:
            out.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3.5" fill="{c}"><title>{escape(name)}: {y:g} at {x:g} papers</title></circle>')
        ly = TOP + 14 + i * 20
        lx = LEFT + pw + 14
        out.append(f'<line x1="{lx}" y1="{ly - 4}" x2="{lx + 24}" y2="{ly - 4}" stroke="{c}" stroke-width="2"{dash}/>')
        out.append(f'<text x="{lx + 30}" y="{ly}">{escape(name)}</text>')
    ly = TOP + 14 + len(points) * 20
    out.append(f'<line x1="{LEFT + pw + 14}" y1="{ly - 4}" x2="{LEFT + pw + 38}" y2="{ly - 4}" stroke="#999" stroke-dasharray="1,4" stroke-width="1.5"/>')
    out.append(f'<text x="{LEFT + pw + 44}" y="{ly}" fill="#555">∝ papers (guide)</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")
    return True


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    path = sys.argv[1]
    out_dir = sys.argv[2] if len(sys.argv) > 2 else "docs/img"
    os.makedirs(out_dir, exist_ok=True)
    rows = list({r["papers"]: r for r in csv.DictReader(open(path))}.values())
    rows.sort(key=lambda r: int(r["papers"]))
    subtitle = f"benches/scale.sh, {os.path.basename(path)}; sizes " + ", ".join(label(int(r["papers"])) for r in rows)
    for name, (unit, series) in GROUPS.items():
        target = os.path.join(out_dir, f"scale-{name}.svg")
        title = {"time": "Time against corpus size", "memory": "Memory and disk against corpus size",
                 "latency": "Latency against corpus size", "throughput": "Throughput against corpus size"}[name]
        if plot(rows, title, unit, series, target, subtitle):
            print(f"wrote {target}")
        else:
            print(f"{target}: no data, not written")


if __name__ == "__main__":
    main()
