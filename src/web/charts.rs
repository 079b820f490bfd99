//! Small charts for the admin dashboard, rendered on the server as inline SVG.
//!
//! The dashboard is a server-rendered page with no JavaScript, so each chart is a string
//! of SVG to embed in the HTML: a line with a shaded area, the latest value in the
//! header, the minimum and maximum in the footer, and a `<title>` plus `aria-label` so
//! screen readers get the same figures. Colours are `currentColor`, so the page's CSS
//! decides them. Every piece of text is escaped; labels may come from user data.

use std::fmt::Write as _;

/// Pixels reserved above the plot for the label and the latest value.
const HEADER: f64 = 16.0;
/// Pixels reserved below the plot for the minimum and maximum.
const FOOTER: f64 = 14.0;
const PAD: f64 = 2.0;

/// A sparkline of `points` (unix seconds, value), `width` × `height` pixels (at least
/// 60 × 40). Values are spaced by time; non-finite ones are skipped. `unit` is appended
/// to every number shown, except two units that also scale it: `"s"` (seconds, shown as
/// ms or µs below a second) and `"%"` (the values are ratios 0..1, shown as percent).
/// An empty series renders the frame with "no data"; a single point renders as a dot;
/// a flat series as a line through the middle.
pub fn sparkline_svg(points: &[(i64, f64)], width: u32, height: u32, label: &str, unit: &str) -> String {
    let (w, h) = (f64::from(width.max(60)), f64::from(height.max(40)));
    let mut pts: Vec<(i64, f64)> = points.iter().copied().filter(|(_, v)| v.is_finite()).collect();
    pts.sort_by_key(|&(t, _)| t);

    let summary = match (pts.first(), pts.last()) {
        (Some(_), Some(&(_, last))) => {
            let (min, max) = min_max(&pts);
            format!(
                "{label}: last {}, min {}, max {} ({} points)",
                format_value(last, unit),
                format_value(min, unit),
                format_value(max, unit),
                pts.len()
            )
        }
        _ => format!("{label}: no data"),
    };
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"sparkline\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"{aria}\"><title>{title}</title>",
        width = w,
        height = h,
        aria = escape(&summary),
        title = escape(&summary),
    );
    text(&mut svg, PAD, 11.0, "start", 11, "", label);

    let (top, bottom, left, right) = (HEADER, h - FOOTER, PAD, w - PAD);
    let Some(&(_, last)) = pts.last() else {
        text(&mut svg, w / 2.0, (top + bottom) / 2.0 + 4.0, "middle", 10, " fill-opacity=\"0.6\"", "no data");
        svg.push_str("</svg>");
        return svg;
    };
    text(&mut svg, right, 11.0, "end", 11, " font-weight=\"bold\"", &format_value(last, unit));

    let (min, max) = min_max(&pts);
    let (t0, tn) = (pts[0].0, pts[pts.len() - 1].0);
    let n = pts.len();
    let x_of = |i: usize, t: i64| {
        if n == 1 {
            right
        } else if tn > t0 {
            left + (right - left) * (t - t0) as f64 / (tn - t0) as f64
        } else {
            left + (right - left) * i as f64 / (n - 1) as f64
        }
    };
    let y_of = |v: f64| {
        if max > min {
            bottom - (bottom - top) * (v - min) / (max - min)
        } else {
            (top + bottom) / 2.0
        }
    };
    let coords: Vec<(f64, f64)> = pts.iter().enumerate().map(|(i, &(t, v))| (x_of(i, t), y_of(v))).collect();

    if n > 1 {
        let line: Vec<String> = coords.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
        let (first_x, last_x) = (coords[0].0, coords[n - 1].0);
        let _ = write!(
            svg,
            "<polygon points=\"{first_x:.1},{bottom:.1} {} {last_x:.1},{bottom:.1}\" fill=\"currentColor\" \
             fill-opacity=\"0.12\" stroke=\"none\"/>",
            line.join(" ")
        );
        let _ = write!(
            svg,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"currentColor\" stroke-width=\"1.5\" \
             stroke-linejoin=\"round\" stroke-linecap=\"round\"/>",
            line.join(" ")
        );
    }
    let (lx, ly) = coords[n - 1];
    let _ = write!(svg, "<circle cx=\"{lx:.1}\" cy=\"{ly:.1}\" r=\"2\" fill=\"currentColor\"/>");

    let foot = h - 3.0;
    let opacity = " fill-opacity=\"0.7\"";
    text(&mut svg, PAD, foot, "start", 9, opacity, &format!("min {}", format_value(min, unit)));
    text(&mut svg, right, foot, "end", 9, opacity, &format!("max {}", format_value(max, unit)));
    svg.push_str("</svg>");
    svg
}

/// A bar chart of labelled counts (e.g. citations per year), `width` × `height` pixels,
/// each bar titled with its label and count; the largest count is written above the
/// axis. An empty series renders the frame with "no data".
pub fn bars_svg(bars: &[(String, u64)], width: u32, height: u32, label: &str) -> String {
    let (w, h) = (f64::from(width.max(60)), f64::from(height.max(40)));
    let total: u64 = bars.iter().map(|(_, n)| n).sum();
    let summary = match (bars.first(), bars.last()) {
        (Some((first, _)), Some((last, _))) => format!("{label}: {total} from {first} to {last}"),
        _ => format!("{label}: no data"),
    };
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w} {h}\" width=\"100%\" \
         style=\"max-width:{w}px\" role=\"img\" aria-label=\"{}\"><title>{}</title>",
        escape(&summary),
        escape(&summary)
    );
    let max = bars.iter().map(|(_, n)| *n).max().unwrap_or(0);
    if bars.is_empty() || max == 0 {
        text(&mut svg, w / 2.0, h / 2.0, "middle", 11, "", "no data");
        svg.push_str("</svg>");
        return svg;
    }
    // Room for the labels of the first and last bar below, the maximum above.
    let (top, bottom) = (14.0, h - 14.0);
    let slot = (w - 2.0 * PAD) / bars.len() as f64;
    let bar = (slot * 0.8).max(1.0);
    for (i, (name, n)) in bars.iter().enumerate() {
        let x = PAD + i as f64 * slot + (slot - bar) / 2.0;
        let bh = (bottom - top) * (*n as f64) / (max as f64);
        let _ = write!(
            svg,
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{bar:.1}\" height=\"{bh:.1}\" fill=\"currentColor\" \
             fill-opacity=\"0.75\"><title>{}: {n}</title></rect>",
            bottom - bh,
            escape(name)
        );
    }
    let opacity = " fill-opacity=\"0.7\"";
    text(&mut svg, PAD, 10.0, "start", 9, opacity, &format!("max {max}"));
    let (first, last) = (&bars[0].0, &bars[bars.len() - 1].0);
    text(&mut svg, PAD, h - 3.0, "start", 9, opacity, first);
    if bars.len() > 1 {
        text(&mut svg, w - PAD, h - 3.0, "end", 9, opacity, last);
    }
    svg.push_str("</svg>");
    svg
}

/// One line of SVG text, escaped.
fn text(svg: &mut String, x: f64, y: f64, anchor: &str, size: u32, extra: &str, content: &str) {
    let _ = write!(
        svg,
        "<text x=\"{x:.1}\" y=\"{y:.1}\" text-anchor=\"{anchor}\" font-size=\"{size}\" \
         font-family=\"sans-serif\" fill=\"currentColor\"{extra}>{}</text>",
        escape(content)
    );
}

fn min_max(pts: &[(i64, f64)]) -> (f64, f64) {
    pts.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &(_, v)| (lo.min(v), hi.max(v)))
}

/// A number with its unit, as described on [`sparkline_svg`].
pub fn format_value(v: f64, unit: &str) -> String {
    match unit {
        "s" if v != 0.0 && v.abs() < 0.001 => format!("{} µs", format_number(v * 1e6)),
        "s" if v.abs() < 1.0 => format!("{} ms", format_number(v * 1e3)),
        "%" => format!("{}%", format_number(v * 100.0)),
        "" => format_number(v),
        unit => format!("{} {unit}", format_number(v)),
    }
}

/// Three significant digits for small numbers, none after the point from 100 up, no
/// exponent and no trailing zeros: `0.0123`, `1.5`, `42.3`, `1234`.
fn format_number(v: f64) -> String {
    if !v.is_finite() {
        return "–".to_string();
    }
    let abs = v.abs();
    let decimals =
        if abs >= 100.0 || abs == 0.0 { 0 } else { (2 - abs.log10().floor() as i32).clamp(0, 9) as usize };
    let s = format!("{v:.decimals$}");
    let s = if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.') } else { &s };
    if s == "-0" {
        "0".to_string()
    } else {
        s.to_string()
    }
}

/// Escapes text for SVG/XML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters other than tab and newline are not allowed in XML.
            c if c.is_control() && c != '\t' && c != '\n' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_largest_count_and_escape_labels() {
        let svg = bars_svg(&[("1997".into(), 2), ("<1998>".into(), 8)], 300, 100, "citations");
        assert!(svg.contains("citations: 10 from 1997 to &lt;1998&gt;"), "{svg}");
        assert!(svg.contains("max 8"), "{svg}");
        assert!(!svg.contains("<1998>"), "labels are escaped: {svg}");
        // The tallest bar spans the plot (100 - 14 - 14 = 72 px); the other a quarter.
        assert!(svg.contains("height=\"72.0\""), "{svg}");
        assert!(svg.contains("height=\"18.0\""), "{svg}");
        assert!(bars_svg(&[], 300, 100, "citations").contains("no data"));
    }

    /// Every number in every `points`/`cx`/`cy`/`x`/`y` attribute.
    fn coordinates(svg: &str) -> Vec<f64> {
        let mut out = Vec::new();
        for attr in ["points=\"", "cx=\"", "cy=\"", " x=\"", " y=\""] {
            for part in svg.split(attr).skip(1) {
                let value = part.split('"').next().unwrap();
                out.extend(value.split([' ', ',']).map(|n| n.parse::<f64>().unwrap()));
            }
        }
        out
    }

    fn well_formed(svg: &str, w: f64, h: f64) {
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""), "{svg}");
        assert!(svg.ends_with("</svg>"));
        assert_eq!(svg.matches("<svg").count(), 1);
        assert!(svg.contains("<title>") && svg.contains("role=\"img\""));
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
        assert_eq!(svg.matches('<').count(), svg.matches('>').count());
        for c in coordinates(svg) {
            assert!((0.0..=w).contains(&c) || (0.0..=h).contains(&c), "{c} outside the view box");
        }
    }

    #[test]
    fn draws_a_line_an_area_and_labels() {
        let points: Vec<(i64, f64)> = (0..10).map(|i| (i * 60, (i * i) as f64 / 1000.0)).collect();
        let svg = sparkline_svg(&points, 200, 60, "p95 latency", "s");
        well_formed(&svg, 200.0, 60.0);
        assert!(svg.contains("<polyline") && svg.contains("<polygon") && svg.contains("<circle"));
        let line = svg.split("<polyline points=\"").nth(1).unwrap().split('"').next().unwrap();
        assert_eq!(line.split(' ').count(), 10);
        assert!(svg.contains(">81 ms</text>"), "last value in the header: {svg}");
        assert!(svg.contains(">min 0 ms</text>") && svg.contains(">max 81 ms</text>"));
        assert!(svg.contains("<title>p95 latency: last 81 ms, min 0 ms, max 81 ms (10 points)</title>"));
        // The highest value is at the top of the plot, the lowest at the bottom.
        let first_y: f64 = line.split(' ').next().unwrap().split(',').nth(1).unwrap().parse().unwrap();
        let last_y: f64 = line.split(' ').next_back().unwrap().split(',').nth(1).unwrap().parse().unwrap();
        assert_eq!((first_y, last_y), (46.0, 16.0));
    }

    #[test]
    fn escapes_text() {
        let svg = sparkline_svg(&[(0, 1.0), (10, 2.0)], 120, 40, "<b>\"5xx\" & 'more'</b>\u{1}", "req/<s>");
        well_formed(&svg, 120.0, 40.0);
        assert!(!svg.contains("<b>") && !svg.contains("'more'") && !svg.contains('\u{1}'));
        assert!(svg.contains("&lt;b&gt;&quot;5xx&quot; &amp; &#39;more&#39;&lt;/b&gt;"));
        assert!(svg.contains("2 req/&lt;s&gt;"));
    }

    #[test]
    fn empty_series_says_no_data() {
        let svg = sparkline_svg(&[], 120, 40, "error rate", "%");
        well_formed(&svg, 120.0, 40.0);
        assert!(svg.contains(">no data</text>") && svg.contains("<title>error rate: no data</title>"));
        assert!(!svg.contains("<polyline") && !svg.contains("<circle"));
        let nan_only = sparkline_svg(&[(0, f64::NAN), (1, f64::INFINITY)], 120, 40, "x", "");
        assert!(nan_only.contains(">no data</text>"));
    }

    #[test]
    fn one_point_is_a_dot_and_a_flat_series_a_middle_line() {
        let svg = sparkline_svg(&[(5, 0.5)], 120, 40, "disk", "%");
        well_formed(&svg, 120.0, 40.0);
        assert!(svg.contains("<circle") && !svg.contains("<polyline"));
        assert!(svg.contains(">50%</text>"));

        let svg = sparkline_svg(&[(0, 3.0), (10, 3.0), (20, 3.0)], 120, 60, "rate", "req/s");
        well_formed(&svg, 120.0, 60.0);
        let line = svg.split("<polyline points=\"").nth(1).unwrap().split('"').next().unwrap();
        assert!(line.split(' ').all(|p| p.ends_with(",31.0")), "{line}");

        // Points at one instant are spread by index, not stacked.
        let svg = sparkline_svg(&[(7, 1.0), (7, 2.0)], 100, 40, "same time", "");
        well_formed(&svg, 100.0, 40.0);
        assert!(svg.contains("points=\"2.0,"));
    }

    #[test]
    fn tiny_sizes_are_clamped_and_unsorted_points_sorted() {
        let svg = sparkline_svg(&[(20, 2.0), (0, 1.0)], 1, 1, "x", "");
        well_formed(&svg, 60.0, 40.0);
        assert!(svg.contains("width=\"60\" height=\"40\""));
        assert!(svg.contains(">2</text>"), "the last point by time: {svg}");
    }

    #[test]
    fn formats_numbers_compactly() {
        assert_eq!(format_value(0.000475, "s"), "475 µs");
        assert_eq!(format_value(0.175, "s"), "175 ms");
        assert_eq!(format_value(2.5, "s"), "2.5 s");
        assert_eq!(format_value(0.0, "s"), "0 ms");
        assert_eq!(format_value(0.01234, "%"), "1.23%");
        assert_eq!(format_value(0.999, "%"), "99.9%");
        assert_eq!(format_value(1234.6, "req/s"), "1235 req/s");
        assert_eq!(format_value(0.0123, ""), "0.0123");
        assert_eq!(format_value(-0.0, ""), "0");
        assert_eq!(format_value(42.26, ""), "42.3");
    }
}
