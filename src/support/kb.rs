//! The knowledge base: Markdown articles in `docs/kb/`, compiled into the binary (a
//! fresh clone and an installed binary serve the same pages), rendered with
//! pulldown-cmark and cleaned by ammonia, and searched by simple term matching.

use std::sync::OnceLock;

/// What an article is, for the index page's grouping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    GettingStarted,
    Guide,
    Tutorial,
    Faq,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::GettingStarted => "Getting started",
            Kind::Guide => "Guides",
            Kind::Tutorial => "Tutorials",
            Kind::Faq => "Questions",
        }
    }
}

/// The articles, in the order the index lists them: slug, kind, Markdown.
const SOURCES: &[(&str, Kind, &str)] = &[
    ("getting-started", Kind::GettingStarted, include_str!("../../docs/kb/getting-started.md")),
    ("api-guide", Kind::Guide, include_str!("../../docs/kb/api-guide.md")),
    ("limits-and-plans", Kind::Guide, include_str!("../../docs/kb/limits-and-plans.md")),
    (
        "tutorial-forecast-a-reading-list",
        Kind::Tutorial,
        include_str!("../../docs/kb/tutorial-forecast-a-reading-list.md"),
    ),
    ("tutorial-explore-a-topic", Kind::Tutorial, include_str!("../../docs/kb/tutorial-explore-a-topic.md")),
    (
        "tutorial-score-a-new-paper",
        Kind::Tutorial,
        include_str!("../../docs/kb/tutorial-score-a-new-paper.md"),
    ),
    ("faq", Kind::Faq, include_str!("../../docs/kb/faq.md")),
];

/// One article: its title (the first `# ` line), summary (the first paragraph), the
/// Markdown and its safe HTML.
#[derive(Debug, Clone)]
pub struct Article {
    pub slug: &'static str,
    pub kind: Kind,
    pub title: String,
    pub summary: String,
    pub markdown: &'static str,
    pub html: String,
    /// Lower-cased title and text, for search.
    title_lc: String,
    text_lc: String,
}

/// Markdown to HTML that is safe to put in a page: ammonia keeps harmless tags only
/// (no scripts, no event handlers, no `javascript:` links). Our own files, but a page
/// never trusts what it renders.
pub fn render(markdown: &str) -> String {
    use pulldown_cmark::{html, Options, Parser};
    let mut raw = String::new();
    html::push_html(
        &mut raw,
        Parser::new_ext(markdown, Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH),
    );
    ammonia::Builder::default()
        .url_schemes(["http", "https", "mailto"].into_iter().collect())
        .clean(&raw)
        .to_string()
}

fn parse(slug: &'static str, kind: Kind, markdown: &'static str) -> Article {
    let title = markdown
        .lines()
        .find_map(|l| l.strip_prefix("# "))
        .map(|t| t.trim().to_string())
        .unwrap_or_else(|| slug.replace('-', " "));
    // The first paragraph after the title, as plain text.
    let summary = markdown
        .split("\n\n")
        .map(str::trim)
        .find(|p| !p.is_empty() && !p.starts_with('#'))
        .map(|p| p.replace('\n', " ").replace(['`', '*', '_'], ""))
        .unwrap_or_default();
    Article {
        slug,
        kind,
        title_lc: title.to_lowercase(),
        text_lc: markdown.to_lowercase(),
        title,
        summary,
        markdown,
        html: render(markdown),
    }
}

/// Every article, parsed and rendered once.
pub fn articles() -> &'static [Article] {
    static ARTICLES: OnceLock<Vec<Article>> = OnceLock::new();
    ARTICLES.get_or_init(|| SOURCES.iter().map(|&(slug, kind, md)| parse(slug, kind, md)).collect())
}

pub fn article(slug: &str) -> Option<&'static Article> {
    articles().iter().find(|a| a.slug == slug)
}

/// Longest query searched, in characters.
pub const MAX_QUERY_CHARS: usize = 200;

/// The words of a query: lower-cased runs of letters and digits, each once, at most 10.
pub fn terms(query: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in query.split(|c: char| !c.is_alphanumeric()).filter(|t| !t.is_empty()) {
        let t = t.to_lowercase();
        if !out.contains(&t) && out.len() < 10 {
            out.push(t);
        }
    }
    out
}

/// One search result: the article, its score and a line of text around the first match.
#[derive(Debug, Clone)]
pub struct Hit {
    pub article: &'static Article,
    pub score: u32,
    pub snippet: String,
}

/// Articles matching `query`, best first: a term in the title counts 10, each
/// occurrence in the text 1 (at most 20 per term, so one long page cannot drown the
/// rest), and an article holding every term gets a bonus of 5 per term. Ties keep the
/// index order.
pub fn search(query: &str) -> Vec<Hit> {
    search_in(articles(), query)
}

fn search_in(articles: &'static [Article], query: &str) -> Vec<Hit> {
    let terms = terms(query);
    if terms.is_empty() {
        return Vec::new();
    }
    let mut hits: Vec<Hit> = articles
        .iter()
        .filter_map(|a| {
            let mut score = 0u32;
            let mut all = true;
            for t in &terms {
                let in_title = a.title_lc.contains(t.as_str());
                let in_text = a.text_lc.matches(t.as_str()).count().min(20) as u32;
                if in_title {
                    score += 10;
                }
                score += in_text;
                all &= in_title || in_text > 0;
            }
            if all {
                score += 5 * terms.len() as u32;
            }
            (score > 0).then(|| Hit { article: a, score, snippet: snippet(a.markdown, &terms) })
        })
        .collect();
    hits.sort_by_key(|h| std::cmp::Reverse(h.score));
    hits
}

/// The first line of text holding a term (headings and code fences skipped), cut to
/// about 200 characters around it.
fn snippet(markdown: &str, terms: &[String]) -> String {
    let line = markdown
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with("```"))
        .find(|l| {
            let lc = l.to_lowercase();
            terms.iter().any(|t| lc.contains(t.as_str()))
        })
        .unwrap_or_default();
    let plain: String = line.replace(['`', '*'], "");
    if plain.chars().count() <= 200 {
        return plain;
    }
    let lc = plain.to_lowercase();
    let at = terms.iter().filter_map(|t| lc.find(t.as_str())).min().unwrap_or(0);
    // Byte offsets of the lower-cased text can differ from the original's; count chars.
    let at_char = lc[..at].chars().count();
    let start = at_char.saturating_sub(60);
    let cut: String = plain.chars().skip(start).take(200).collect();
    format!("{}{cut}…", if start > 0 { "…" } else { "" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_article_has_a_title_a_summary_and_clean_html() {
        let all = articles();
        assert!(all.len() >= 5);
        for a in all {
            assert!(!a.title.is_empty() && !a.summary.is_empty(), "{}", a.slug);
            assert!(a.html.contains("<h1>"), "{}", a.slug);
            assert!(!a.html.contains("<script"), "{}", a.slug);
        }
        assert_eq!(all.iter().filter(|a| a.kind == Kind::Tutorial).count(), 3);
    }

    #[test]
    fn rendering_drops_scripts_and_handlers() {
        let html = render("# T\n\n<script>alert(1)</script>\n\n[x](javascript:alert(1)) <a href=\"/\" onclick=\"x()\">y</a>");
        assert!(
            !html.contains("<script") && !html.contains("javascript:") && !html.contains("onclick"),
            "{html}"
        );
    }

    #[test]
    fn search_ranks_title_matches_first_and_needs_a_real_term() {
        let hits = search("forecast reading list");
        assert_eq!(
            hits[0].article.slug,
            "tutorial-forecast-a-reading-list",
            "{:?}",
            hits.iter().map(|h| h.article.slug).collect::<Vec<_>>()
        );
        assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
        assert!(search("").is_empty());
        assert!(search("<>;'--").is_empty());
        assert!(search("zzqxjv").is_empty());
        let faq = search("refund");
        assert!(faq.iter().any(|h| h.article.slug == "faq"));
        assert!(faq.iter().all(|h| !h.snippet.is_empty()));
    }

    #[test]
    fn terms_are_lower_case_unique_and_bounded() {
        assert_eq!(terms("Rate-LIMIT rate limit 429"), vec!["rate", "limit", "429"]);
        assert_eq!(terms(&"a ".repeat(100)).len(), 1);
        assert_eq!(terms(&(0..50).map(|i| format!("w{i} ")).collect::<String>()).len(), 10);
    }
}
