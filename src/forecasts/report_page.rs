//! A model's performance report as a self-contained HTML page (inline CSS and SVG, no
//! JS): `/admin/models/{version}`. The figures come from the engine
//! ([`citecast_actors::forecast::report`]); this is only their presentation.

use std::fmt::Write as _;

use askama::Template;
use citecast_actors::forecast::metrics::{CalibrationBin, Scorecard};
use citecast_actors::forecast::report::{figure_text, threshold_text, Correlation, Headline, Report};

#[derive(Template)]
#[template(path = "model_report.html")]
struct Page<'a> {
    r: &'a Report,
    mode: &'static str,
    scorecards: Vec<(String, &'a Scorecard)>,
    /// The served model's test false negatives (`fn` is a keyword in templates).
    fn_count: u64,
    correlation_svg: String,
    calibration_svg: String,
    /// Expected calibration error of the test curve.
    ece: f64,
    headline: Headline,
}

impl Page<'_> {
    fn threshold(&self, t: impl std::borrow::Borrow<f64>) -> String {
        threshold_text(*t.borrow())
    }

    fn figure(&self, x: impl std::borrow::Borrow<f64>) -> String {
        figure_text(*x.borrow())
    }
}

/// The report as a self-contained HTML page.
pub fn render_html(report: &Report) -> Result<String, askama::Error> {
    let mut scorecards = vec![
        (format!("{} (validation)", report.served_name), &report.served_validation),
        (format!("{} (test)", report.served_name), &report.served_test),
    ];
    scorecards.extend(report.baselines.iter().map(|b| (format!("{} (test)", b.name), &b.test)));
    Page {
        r: report,
        mode: report.mode.as_str(),
        scorecards,
        fn_count: report.served_test.confusion.r#fn,
        correlation_svg: correlation_svg(&report.correlation),
        calibration_svg: calibration_svg(&report.calibration),
        ece: citecast_actors::forecast::metrics::expected_calibration_error(&report.calibration),
        headline: report.headline(),
    }
    .render()
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(ch),
        }
    }
    out
}

/// Diverging colour for a correlation: blue at -1, white at 0, red at +1 (grey if undefined).
fn diverging(v: f64) -> String {
    if !v.is_finite() {
        return "#cccccc".into();
    }
    let v = v.clamp(-1.0, 1.0);
    let (end, t) = if v < 0.0 { ((33.0, 102.0, 172.0), -v) } else { ((178.0, 24.0, 43.0), v) };
    let mix = |e: f64| (255.0 + (e - 255.0) * t).round() as u8;
    format!("#{:02x}{:02x}{:02x}", mix(end.0), mix(end.1), mix(end.2))
}

/// The correlation matrix as an SVG heatmap with both axes labelled and a colour legend.
fn correlation_svg(c: &Correlation) -> String {
    let d = c.names.len();
    if d == 0 {
        return String::new();
    }
    let cell = (560 / d).clamp(10, 40) as f64;
    let longest = c.names.iter().map(|n| n.chars().count()).max().unwrap_or(1) as f64;
    let margin = (longest * 6.6 + 12.0).min(260.0);
    let grid = cell * d as f64;
    let (w, h) = (margin + grid + 90.0, margin + grid + 10.0);
    let font = (cell * 0.75).clamp(8.0, 12.0);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w:.0}" height="{h:.0}" viewBox="0 0 {w:.0} {h:.0}" font-family="sans-serif" font-size="{font:.0}" role="img" aria-label="feature correlation heatmap">"#
    );
    s.push_str(
        r##"<defs><linearGradient id="corr-scale" x1="0" y1="1" x2="0" y2="0"><stop offset="0" stop-color="#2166ac"/><stop offset="0.5" stop-color="#ffffff"/><stop offset="1" stop-color="#b2182b"/></linearGradient></defs>"##,
    );
    for (i, name) in c.names.iter().enumerate() {
        let name = xml_escape(name);
        let y = margin + cell * (i as f64 + 0.5);
        let x = margin + cell * (i as f64 + 0.5);
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{y:.1}" text-anchor="end" dominant-baseline="middle">{name}</text>"#,
            margin - 4.0
        );
        let _ = write!(
            s,
            r#"<text x="{x:.1}" y="{:.1}" text-anchor="start" dominant-baseline="middle" transform="rotate(-90 {x:.1} {:.1})">{name}</text>"#,
            margin - 4.0,
            margin - 4.0
        );
    }
    for (i, row) in c.matrix.iter().enumerate() {
        for (j, v) in row.iter().enumerate() {
            let (x, y) = (margin + cell * j as f64, margin + cell * i as f64);
            let _ = write!(
                s,
                r##"<rect x="{x:.1}" y="{y:.1}" width="{cell:.1}" height="{cell:.1}" fill="{}" stroke="#ffffff" stroke-width="0.5"><title>{} / {}: {v:.3}</title></rect>"##,
                diverging(*v),
                xml_escape(&c.names[i]),
                xml_escape(&c.names[j]),
            );
            if d <= 12 {
                let fill = if v.abs() > 0.6 { "#ffffff" } else { "#222222" };
                let _ = write!(
                    s,
                    r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" dominant-baseline="middle" fill="{fill}" font-size="{:.0}">{v:.2}</text>"#,
                    x + cell / 2.0,
                    y + cell / 2.0,
                    (cell * 0.3).clamp(7.0, 11.0)
                );
            }
        }
    }
    // Legend: -1 (bottom) .. 1 (top).
    let lx = margin + grid + 20.0;
    let _ = write!(
        s,
        r##"<rect x="{lx:.1}" y="{margin:.1}" width="14" height="{grid:.1}" fill="url(#corr-scale)" stroke="#999999"/>"##
    );
    for (v, label) in [(1.0, "1"), (0.0, "0"), (-1.0, "-1")] {
        let y = margin + grid * (1.0 - v) / 2.0;
        let _ =
            write!(s, r#"<text x="{:.1}" y="{y:.1}" dominant-baseline="middle">{label}</text>"#, lx + 18.0);
    }
    s.push_str("</svg>");
    s
}

/// The calibration curve (observed rate against mean predicted probability per bin) over
/// the diagonal of perfect calibration.
fn calibration_svg(bins: &[CalibrationBin]) -> String {
    let (left, top, size) = (60.0, 20.0, 320.0);
    let (w, h) = (left + size + 30.0, top + size + 50.0);
    let px = |p: f64| left + p.clamp(0.0, 1.0) * size;
    let py = |p: f64| top + (1.0 - p.clamp(0.0, 1.0)) * size;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w:.0}" height="{h:.0}" viewBox="0 0 {w:.0} {h:.0}" font-family="sans-serif" font-size="11" role="img" aria-label="calibration curve">"#
    );
    for k in 0..=5 {
        let t = k as f64 / 5.0;
        let _ = write!(
            s,
            r##"<line x1="{:.1}" y1="{top:.1}" x2="{:.1}" y2="{:.1}" stroke="#eeeeee"/><line x1="{left:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#eeeeee"/>"##,
            px(t),
            px(t),
            top + size,
            py(t),
            left + size,
            py(t)
        );
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{t:.1}</text><text x="{:.1}" y="{:.1}" text-anchor="end" dominant-baseline="middle">{t:.1}</text>"#,
            px(t),
            top + size + 15.0,
            left - 6.0,
            py(t)
        );
    }
    let _ = write!(
        s,
        r##"<rect x="{left:.1}" y="{top:.1}" width="{size:.1}" height="{size:.1}" fill="none" stroke="#888888"/><line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#999999" stroke-dasharray="5 4"/>"##,
        px(0.0),
        py(0.0),
        px(1.0),
        py(1.0)
    );
    let _ = write!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">mean predicted probability</text><text x="14" y="{:.1}" text-anchor="middle" transform="rotate(-90 14 {:.1})">observed positive rate</text>"#,
        left + size / 2.0,
        top + size + 38.0,
        top + size / 2.0,
        top + size / 2.0
    );
    if !bins.is_empty() {
        let points: Vec<String> =
            bins.iter().map(|b| format!("{:.1},{:.1}", px(b.mean_predicted), py(b.observed_rate))).collect();
        let _ = write!(
            s,
            r##"<polyline points="{}" fill="none" stroke="#b2182b" stroke-width="2"/>"##,
            points.join(" ")
        );
        let most = bins.iter().map(|b| b.count).max().unwrap_or(1).max(1) as f64;
        for b in bins {
            let r = 3.0 + 5.0 * (b.count as f64 / most).sqrt();
            let _ = write!(
                s,
                r##"<circle cx="{:.1}" cy="{:.1}" r="{r:.1}" fill="#b2182b" fill-opacity="0.7"><title>predicted {:.3}, observed {:.3}, n = {}</title></circle>"##,
                px(b.mean_predicted),
                py(b.observed_rate),
                b.mean_predicted,
                b.observed_rate,
                b.count
            );
        }
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The synthetic report the engine's report tests build (`report()` in
    /// `actors/src/forecast/report.rs`), saved as JSON.
    fn report() -> Report {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/model-report.json");
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn report_renders_every_section() {
        let r = report();
        let html = render_html(&r).unwrap();
        assert!(html.contains("<title>Model v-test (at_publication)</title>"));
        for heading in [
            "Features and splits",
            "Scorecards",
            "Confusion matrix",
            "False positives",
            "False negatives",
            "Permutation importance",
            "Feature correlation",
            "Ablation by feature group",
            "Time-ordered cross-validation",
            "Per-year stability",
            "Calibration",
            "Significance",
            "Improvement list",
        ] {
            assert!(html.contains(&format!(">{heading}</h2>")), "missing section {heading}");
        }
        assert!(html.matches("<svg").count() >= 2);
        assert!(html.contains("signal") && html.contains("weak feature"));
        assert!(!html.contains("<script"));
    }

    #[test]
    fn nan_figures_render() {
        let mut r = report();
        r.per_year[0].roc_auc = f64::NAN;
        r.served_test.roc_auc = f64::NAN;
        r.baselines[0].test.threshold = f64::INFINITY;
        // (The engine's tests check that such figures survive the JSON round trip.)
        assert!(render_html(&r).is_ok());
    }

    #[test]
    fn diverging_scale_ends() {
        assert_eq!(diverging(-1.0), "#2166ac");
        assert_eq!(diverging(0.0), "#ffffff");
        assert_eq!(diverging(1.0), "#b2182b");
    }

    #[test]
    fn the_page_carries_the_headline() {
        let mut r = report();
        r.baselines[0].served_is_better = false;
        // The page carries the headline, not the old unconditional claim.
        let html = render_html(&r).unwrap();
        assert!(html.contains("does not beat every baseline"));
    }

    #[test]
    fn non_finite_figures_are_words_on_the_page() {
        let mut r = report();
        r.threshold = f64::INFINITY;
        r.served_test.threshold = f64::INFINITY;
        r.served_test.roc_auc = f64::NAN;
        let html = render_html(&r).unwrap();
        assert!(
            !html.contains(">inf<") && !html.contains(">NaN<") && !html.contains("threshold inf"),
            "raw non-finite figure on the page"
        );
        assert!(html.contains("none (no positive predictions)") && html.contains("undefined"));
    }
}
