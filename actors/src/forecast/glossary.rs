//! Every forecast feature in plain words: a short name and a sentence with the value in
//! its natural unit (54 references, not `n_refs 4.007`). The one glossary the API's
//! forecasts, the newsletter and `docs/features.md` use; a test holds it to the feature
//! list and to the documentation.

/// How a feature's stored value maps back to what it counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// `log1p` of a count: shown as the whole count.
    LogCount,
    /// Mean of `log1p` counts: shown as the typical count, `expm1` of the mean.
    LogMean,
    /// A plain count.
    Count,
    /// A share in 0..1: shown in percent.
    Share,
    /// Years, one decimal.
    Years,
    /// A rank in 0..1 within a cohort: shown as the percentile.
    Rank,
    /// A ratio: shown as "2.4×".
    Ratio,
    /// The logarithm of a ratio: shown as the ratio.
    LogRatio,
    /// A score without a natural unit (text themes, circular time codes), two decimals.
    Score,
    /// Day of the year divided by 365: shown as the day.
    DayOfYear,
    /// 0 or 1: shown as no or yes.
    YesNo,
}

/// One feature in plain words.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    pub feature: &'static str,
    /// A short name, e.g. "highest author h-index".
    pub label: &'static str,
    pub unit: Unit,
    /// A sentence with `{}` where the value goes.
    pub sentence: &'static str,
}

const fn e(feature: &'static str, label: &'static str, unit: Unit, sentence: &'static str) -> Entry {
    Entry { feature, label, unit, sentence }
}

use Unit::*;

/// The glossary, in the order of `docs/features.md`.
pub const ENTRIES: &[Entry] = &[
    e(
        "a_sum_citrec",
        "authors' citations in the past year",
        LogCount,
        "its authors' papers were cited {} times in the year before",
    ),
    e(
        "a_max_citrec",
        "most-cited author, past year",
        LogCount,
        "its most-cited author was cited {} times in the year before",
    ),
    e(
        "a_max_cit",
        "most-cited author, all time",
        LogCount,
        "its most-cited author had been cited {} times in all",
    ),
    e("a_max_h", "highest author h-index", Count, "the most-cited co-author had an h-index of {}"),
    e("a_max_np", "most prolific author", LogCount, "its most prolific author had written {} earlier papers"),
    e("a_max_age", "longest author career", Years, "its longest-serving author had published for {} years"),
    e(
        "a_sum_hi",
        "authors' earlier highly cited papers",
        Count,
        "{} earlier papers by its authors had become highly cited",
    ),
    e(
        "a_sum_hi182",
        "authors' earlier fast starters",
        Count,
        "{} earlier papers by its authors were in their cohort's top 10 % after six months",
    ),
    e(
        "a_max_e182mean",
        "authors' typical six-month citations",
        LogMean,
        "an author's earlier papers drew {} citations in their first six months on average",
    ),
    e(
        "a_max_r182mean",
        "authors' typical six-month rank",
        Rank,
        "an author's earlier papers ranked, on average, above {} of their cohort after six months",
    ),
    e("n_auth", "number of authors", LogCount, "it has {} authors"),
    e("frac_new_auth", "share of first-time authors", Share, "{} of its authors had no earlier paper"),
    e("co_deg_max", "best-connected author", LogCount, "its best-connected author had {} co-authors"),
    e("co_deg_sum", "authors' co-authors", LogCount, "its authors had {} co-authors between them"),
    e(
        "co_collab_max",
        "one author's collaborators' citations",
        LogCount,
        "one author's co-authors had been cited {} times",
    ),
    e(
        "co_collab_sum",
        "all collaborators' citations",
        LogCount,
        "its authors' co-authors had been cited {} times in all",
    ),
    e("e_c30", "citations in 30 days", LogCount, "it was cited {} times in its first 30 days"),
    e("e_c91", "citations in three months", LogCount, "it was cited {} times in its first three months"),
    e("e_c182", "citations in six months", LogCount, "it was cited {} times in its first six months"),
    e(
        "e_acc",
        "citation acceleration",
        Count,
        "its second three months brought {} more citations than its first three",
    ),
    e(
        "e_nonself",
        "citations from other groups",
        LogCount,
        "{} of its early citations came from papers sharing no author with it",
    ),
    e("e_selfshare", "share of self-citations", Share, "{} of its early citations were self-citations"),
    e("e_cit_auth", "distinct citing authors", LogCount, "{} different authors cited it in six months"),
    e(
        "e_citer_prom_max",
        "most prominent citing author",
        LogCount,
        "its most prominent citing author had been cited {} times",
    ),
    e(
        "e_citer_prom_mean",
        "typical citing author",
        LogMean,
        "the authors citing it had typically been cited {} times",
    ),
    e(
        "e_citer_cit_sum",
        "citations of the citing papers",
        LogCount,
        "the papers citing it had been cited {} times themselves",
    ),
    e(
        "e_coh_p90",
        "top-10 % bar of the year before",
        LogCount,
        "a top-10 % paper of the year before had {} citations after six months",
    ),
    e(
        "e_rel_p90",
        "six-month citations against the top-10 % bar",
        Ratio,
        "its six-month citations were {} the top-10 % bar of the year before",
    ),
    e(
        "e_rel_mean",
        "six-month citations against the average",
        Ratio,
        "its six-month citations were {} the average of the year before",
    ),
    e(
        "e_rank",
        "six-month rank in its cohort",
        Rank,
        "after six months it ranked above {} of the year before's papers",
    ),
    e("n_refs", "references", LogCount, "it cites {} papers of the corpus"),
    e(
        "ref_cit_mean",
        "typical reference's citations",
        LogMean,
        "the papers it cites had typically been cited {} times",
    ),
    e(
        "ref_rcit_mean",
        "typical reference's recent citations",
        LogMean,
        "the papers it cites were typically cited {} times in the year before",
    ),
    e(
        "ref_rcit_max",
        "hottest reference",
        LogCount,
        "its most-cited reference was cited {} times in the year before",
    ),
    e(
        "ref_rcit_sum",
        "references' recent citations",
        LogCount,
        "the papers it cites were cited {} times in all in the year before",
    ),
    e("ref_age_med", "typical reference age", Years, "the papers it cites were typically {} years old"),
    e("ref_frac_recent", "share of recent references", Share, "{} of its references were at most a year old"),
    e(
        "ref_frac_hot",
        "share of hot references",
        Share,
        "{} of its references had 20 or more citations in the year before",
    ),
    e(
        "bc_n",
        "recent papers sharing references",
        LogCount,
        "{} papers of the year before cite some of the same work",
    ),
    e(
        "bc_z",
        "how well papers with shared references did",
        Score,
        "papers of the year before citing the same work did {} against their month (log scale, 0 = average)",
    ),
    e(
        "bc_ztop",
        "how well its closest recent papers did",
        Score,
        "its ten closest papers of the year before did {} against their month (log scale, 0 = average)",
    ),
    e(
        "bc_hot",
        "overlap with hot recent papers",
        LogMean,
        "its reference overlap with hot papers of the year before adds up to {}",
    ),
    e(
        "bc_hot_n",
        "hot recent papers sharing two references",
        LogCount,
        "{} hot papers of the year before share at least two references with it",
    ),
    e(
        "t_heat_mean",
        "topic heat",
        Score,
        "its terms' papers drew {} more log-citations than average (0 = average topic)",
    ),
    e(
        "t_heat_top5",
        "heat of its hottest terms",
        Score,
        "its five hottest terms' papers drew {} more log-citations than average",
    ),
    e(
        "t_growth_mean",
        "topic growth",
        LogRatio,
        "its terms were used {} as often in the last half-year as in the one before",
    ),
    e(
        "t_pop_mean",
        "topic popularity",
        LogMean,
        "its terms appeared in typically {} papers of the year before",
    ),
    e("t_frac_new", "share of new terms", Share, "{} of its terms had not appeared in the year before"),
    e("t_topic_age", "topic age", Years, "its terms had first appeared {} years earlier on average"),
    e("emb0", "text theme 1", Score, "its text sits at {} on the corpus's first text theme"),
    e("emb1", "text theme 2", Score, "its text sits at {} on the corpus's second text theme"),
    e("emb2", "text theme 3", Score, "its text sits at {} on the corpus's third text theme"),
    e("emb3", "text theme 4", Score, "its text sits at {} on the corpus's fourth text theme"),
    e("emb4", "text theme 5", Score, "its text sits at {} on the corpus's fifth text theme"),
    e("emb5", "text theme 6", Score, "its text sits at {} on the corpus's sixth text theme"),
    e("n_terms", "distinct terms", LogCount, "its title and abstract hold {} distinct terms"),
    e("abs_len", "abstract length", LogCount, "its abstract has {} words"),
    e("doy", "day of the year", DayOfYear, "it was submitted on day {} of the year"),
    e(
        "tod_sin1",
        "time after the arXiv deadline (code 1)",
        Score,
        "its submission time after the arXiv deadline codes to {} (one of four circular codes)",
    ),
    e(
        "tod_cos1",
        "time after the arXiv deadline (code 2)",
        Score,
        "its submission time after the arXiv deadline codes to {} (one of four circular codes)",
    ),
    e(
        "tod_sin2",
        "time after the arXiv deadline (code 3)",
        Score,
        "its submission time after the arXiv deadline codes to {} (one of four circular codes)",
    ),
    e(
        "tod_cos2",
        "time after the arXiv deadline (code 4)",
        Score,
        "its submission time after the arXiv deadline codes to {} (one of four circular codes)",
    ),
    e("title_len", "title length", Count, "its title has {} words"),
    e("weekend", "submitted at a weekend", YesNo, "submitted at a weekend: {}"),
];

/// The glossary entry of a feature.
pub fn entry(feature: &str) -> Option<&'static Entry> {
    ENTRIES.iter().find(|e| e.feature == feature)
}

/// A feature's stored value in its natural unit, as a number (counts whole).
pub fn natural(unit: Unit, v: f64) -> f64 {
    match unit {
        LogCount => v.exp_m1().max(0.0).round(),
        LogMean => (v.exp_m1().max(0.0) * 10.0).round() / 10.0,
        Count | YesNo => v.round(),
        Share | Rank => (v * 1000.0).round() / 10.0,
        Years | Ratio => (v * 10.0).round() / 10.0,
        LogRatio => (v.exp() * 10.0).round() / 10.0,
        Score => (v * 100.0).round() / 100.0,
        DayOfYear => (v * 365.0).round() + 1.0,
    }
}

/// The natural value as text, with its unit.
pub fn shown(unit: Unit, v: f64) -> String {
    let n = natural(unit, v);
    match unit {
        LogCount | Count | DayOfYear => format!("{n:.0}"),
        LogMean | Years => format!("{n:.1}"),
        Share | Rank => format!("{n:.0} %"),
        Ratio | LogRatio => format!("{n:.1}×"),
        Score => format!("{n:.2}"),
        YesNo => if n >= 0.5 { "yes" } else { "no" }.into(),
    }
}

/// The feature's sentence with its value; unknown features (a model trained by a newer
/// build) fall back to the raw name and value.
pub fn sentence(feature: &str, v: f64) -> String {
    match entry(feature) {
        Some(e) => e.sentence.replacen("{}", &shown(e.unit, v), 1),
        None => format!("{feature} = {v:.3}"),
    }
}

/// A probability as people read it: three significant digits.
pub fn round_probability(p: f64) -> f64 {
    if !p.is_finite() || p == 0.0 {
        return p;
    }
    let digits = 3 - (p.abs().log10().floor() as i32 + 1);
    let scale = 10f64.powi(digits);
    (p * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::forecast::task::Mode;

    /// Every feature any mode uses.
    pub fn all_features() -> Vec<&'static str> {
        let mut names: Vec<&'static str> = Vec::new();
        for mode in Mode::ALL {
            for (n, _) in crate::forecast::features::feature_names(mode) {
                if !names.contains(&n) {
                    names.push(n);
                }
            }
        }
        names
    }

    #[test]
    fn every_feature_has_exactly_one_entry_and_every_entry_a_feature() {
        let features = all_features();
        for f in &features {
            assert_eq!(ENTRIES.iter().filter(|e| e.feature == *f).count(), 1, "{f}");
        }
        for e in ENTRIES {
            assert!(features.contains(&e.feature), "{} is not a feature", e.feature);
            assert_eq!(e.sentence.matches("{}").count(), 1, "{}", e.feature);
        }
    }

    #[test]
    fn the_documentation_names_every_feature_in_plain_words() {
        let doc = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/features.md"),
        )
        .unwrap();
        for e in ENTRIES {
            assert!(
                doc.contains(&format!("| `{}` | {} |", e.feature, e.label)),
                "docs/features.md lacks the row of {}",
                e.feature
            );
        }
    }

    #[test]
    fn values_read_in_natural_units() {
        assert_eq!(sentence("n_refs", 54f64.ln_1p()), "it cites 54 papers of the corpus");
        assert_eq!(sentence("a_max_h", 55.0), "the most-cited co-author had an h-index of 55");
        assert_eq!(sentence("frac_new_auth", 0.5), "50 % of its authors had no earlier paper");
        assert_eq!(sentence("weekend", 1.0), "submitted at a weekend: yes");
        assert_eq!(sentence("doy", 0.0), "it was submitted on day 1 of the year");
        assert_eq!(sentence("made_up", 1.5), "made_up = 1.500");
        assert_eq!(round_probability(0.342_123), 0.342);
        assert_eq!(round_probability(0.012_345_6), 0.0123);
        assert_eq!(round_probability(1.0), 1.0);
    }
}
