//! The newsletter's public pages on the real `App` over the fixture: `/newsletter`, the
//! archive and its pages, the permanent issue pages, the Atom feed (parsed back), and the
//! track record (what became of every pick, checked against the labels computed from the
//! fixture's files, and unknown outcomes never counted as misses).

use actix_web::test;
use citecast::newsletter::{Issue, Item};
use citecast_actors::actors::GetCitations;
use citecast_actors::dates;
use citecast_actors::forecast::corpus::Corpus;
use citecast_actors::forecast::task::{Labels, LABEL_WINDOW};
use citecast_actors::store::Direction;

use crate::common::*;

/// Hand-made issues stored before the job's real one: enough for two archive pages.
const MADE: usize = 24;

macro_rules! fetch {
    ($app:expr, $uri:expr) => {{
        let req = test::TestRequest::get().uri($uri).insert_header(("accept", "text/html"));
        let resp = test::call_service(&$app, req.to_request()).await;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = String::from_utf8(test::read_body(resp).await.to_vec()).unwrap();
        (status, headers, body)
    }};
}

/// Runs the `newsletter` job in-process, as the scheduler would.
async fn run_newsletter_job(h: &Harness) {
    let config = citecast::config::Config::new(h.dir.path().to_path_buf());
    let ctx = citecast::ops::jobs::JobContext {
        engine: h.state.engine.clone(),
        accounts: h.state.accounts.clone(),
        issues: h.state.issues.clone(),
        config: config.jobs(),
        billing: None,
        budget: None,
    };
    let job = citecast::newsletter::job::jobs().into_iter().find(|j| j.spec.name == "newsletter").unwrap();
    let built = (job.run)(ctx).await.unwrap();
    assert!(built >= 1, "the job built no issue");
}

/// A pick of a hand-made issue: fixture paper `p`, marked `label`.
fn pick(corpus: &Corpus, p: usize, label: &str, title: &str) -> Item {
    Item {
        paper_id: corpus.ids[p].clone(),
        title: title.to_string(),
        authors: vec!["A. Author".into()],
        submitted: dates::format(corpus.day[p]),
        probability: if label == "high" { 0.6 } else { 0.1 },
        label: label.into(),
        why: "it cites 54 papers of the corpus".into(),
    }
}

/// Hand-made issue `i` (0-based) covers a week of 1996 and picks papers whose two years
/// are over: one that reached its year's top 10 % and one that did not, both marked high
/// when `i` is even, the second marked low when odd, and a third that did not, marked
/// low. Its high picks' hit rate is thus 1 of 2 (even) or 1 of 1 (odd).
fn made_issue(corpus: &Corpus, labels: &Labels, i: usize) -> Issue {
    let known = |reached: bool| -> Vec<usize> {
        (0..corpus.len()).filter(|&p| labels.label[p] == Some(reached)).collect()
    };
    let (hits, misses) = (known(true), known(false));
    assert!(hits.len() >= 3 && misses.len() >= 2 * MADE, "the fixture has too few labelled papers");
    let week_to = dates::from_ymd(1996, 1, 7) + 7 * i as i32;
    // One title with markup and characters HTML and XML must escape.
    let odd_title = "Strings & <branes> on $AdS_5$";
    let title = if i == 0 { odd_title.to_string() } else { corpus.title[hits[i % hits.len()]].clone() };
    Issue {
        number: 0,
        built_at: 1_700_000_000 + i as i64 * 604_800,
        week_from: dates::format(week_to - 6),
        week_to: dates::format(week_to),
        model_version: "made-by-the-test".into(),
        papers_considered: 40,
        items: vec![
            pick(corpus, hits[i % hits.len()], "high", &title),
            pick(
                corpus,
                misses[2 * i],
                if i.is_multiple_of(2) { "high" } else { "low" },
                &corpus.title[misses[2 * i]],
            ),
            pick(corpus, misses[2 * i + 1], "low", &corpus.title[misses[2 * i + 1]]),
        ],
    }
}

/// Citations of `id` dated after `after`, counted over every citing paper in the store.
async fn citations_after(h: &Harness, id: &str, after: &str) -> u64 {
    let after = dates::parse(after).unwrap();
    let msg = GetCitations { id: id.into(), direction: Direction::In, cursor: None, limit: 100_000 };
    let (_, page) = h.state.engine.store.send(msg).await.unwrap().unwrap().unwrap();
    page.items.iter().filter(|c| dates::parse(&c.date).unwrap() > after).count() as u64
}

/// The `<li>` of the page that names `id`.
fn item_of<'a>(page: &'a str, id: &str) -> &'a str {
    page.split("<li>")
        .find(|li| li.contains(&format!(">{id}</a>")))
        .unwrap_or_else(|| panic!("{id} not in {page}"))
}

/// The fixture loaded, 24 hand-made issues and then the job's real one (issue 25).
async fn with_issues() -> (Harness, Corpus, Labels, Vec<Issue>) {
    let h = Harness::new().await;
    let corpus = Corpus::from_files(&fixture_files()).unwrap();
    let labels = Labels::compute(&corpus, &citecast_actors::forecast::task::TaskSpec::bundled());
    for i in 0..MADE {
        let issue = made_issue(&corpus, &labels, i);
        let (n, new) = h.state.issues.save(issue).unwrap();
        assert_eq!((n, new), (i as u32 + 1, true));
    }
    run_newsletter_job(&h).await;
    let issues = h.state.issues.list().unwrap();
    assert_eq!(issues.len(), MADE + 1);
    (h, corpus, labels, issues)
}

#[actix_web::test]
async fn the_newsletter_page_pitches_the_form_and_lists_the_latest_five_issues() {
    let (h, _, _, issues) = with_issues().await;
    let app = app!(h);
    let (status, headers, page) = fetch!(app, "/newsletter");
    assert_eq!(status, 200, "{page}");
    // A site page, with the form's token: never stored by a shared cache.
    assert!(page.contains("class=\"brand\"") && page.contains("name=\"viewport\""), "{page}");
    assert_eq!(headers.get("cache-control").unwrap(), "no-store");
    assert!(page.contains("<form method=\"post\" action=\"/newsletter/subscribe\">"), "{page}");
    let token = page.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap();
    assert!(token.len() > 20, "{page}");
    assert!(page.contains("name=\"email\"") && page.contains("name=\"name\""), "{page}");
    for n in 21..=25 {
        assert!(page.contains(&format!("href=\"/newsletter/{n}\"")), "issue {n}: {page}");
    }
    assert!(!page.contains("href=\"/newsletter/20\""), "only the latest five: {page}");
    assert!(page.contains("href=\"/newsletter/archive\"") && page.contains("href=\"/newsletter/feed.atom\""));
    assert!(page.contains("href=\"/newsletter/track-record\""), "{page}");
    // The JSON view still lists every issue.
    let (status, _, json) = fetch!(app, "/newsletter?format=json");
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["issues"].as_array().unwrap().len(), issues.len());
}

#[actix_web::test]
async fn the_archive_pages_twenty_issues_newest_first_and_bad_pages_get_a_readable_answer() {
    let (h, _, _, _) = with_issues().await;
    let app = app!(h);
    let listed = |page: &str| -> Vec<u32> {
        let list = page.split("<ul id=\"issues\">").nth(1).unwrap().split("</ul>").next().unwrap();
        list.split("href=\"/newsletter/")
            .skip(1)
            .map(|s| s.split('"').next().unwrap().parse().unwrap())
            .collect()
    };
    let (status, headers, first) = fetch!(app, "/newsletter/archive");
    assert_eq!(status, 200, "{first}");
    assert_eq!(listed(&first), (6..=25).rev().collect::<Vec<u32>>());
    assert!(first.contains("page 1 of 2") && first.contains("class=\"brand\""), "{first}");
    assert!(
        first.contains("rel=\"next\" href=\"/newsletter/archive?page=2\"") && !first.contains("rel=\"prev\"")
    );
    // Public and short-lived, and no session for a reader who is not signed in.
    assert_eq!(headers.get("cache-control").unwrap(), "public, max-age=300");
    assert!(headers.get("set-cookie").is_none(), "{headers:?}");
    let (status, _, same) = fetch!(app, "/newsletter/archive?page=1");
    assert_eq!((status, listed(&same)), (200, listed(&first)));

    let (status, _, second) = fetch!(app, "/newsletter/archive?page=2");
    assert_eq!(status, 200, "{second}");
    assert_eq!(listed(&second), vec![5, 4, 3, 2, 1]);
    assert!(second.contains("rel=\"prev\" href=\"/newsletter/archive\"") && !second.contains("rel=\"next\""));

    for bad in ["0", "-1", "abc", "1.5", "%3Cscript%3E", "99999999999999999999999"] {
        let (status, headers, page) = fetch!(app, &format!("/newsletter/archive?page={bad}"));
        assert_eq!(status, 400, "{bad}: {page}");
        assert!(page.contains("<html") && page.contains("is not a page number"), "{bad}: {page}");
        assert!(!page.contains("<script>"), "{page}");
        assert_eq!(headers.get("cache-control").unwrap(), "public, max-age=0");
    }
    let (status, _, page) = fetch!(app, "/newsletter/archive?page=3");
    assert_eq!(status, 404, "{page}");
    assert!(page.contains("There is no page 3: the archive has 2 pages of 25 issues"), "{page}");
}

#[actix_web::test]
async fn an_issue_page_is_permanent_and_tells_what_became_of_its_picks() {
    let (h, corpus, labels, issues) = with_issues().await;
    let app = app!(h);
    let first = issues.iter().find(|i| i.number == 1).unwrap();
    let (status, headers, page) = fetch!(app, "/newsletter/1");
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("class=\"brand\"") && page.contains("Issue 1</h1>"), "{page}");
    assert_eq!(headers.get("cache-control").unwrap(), "public, max-age=300");
    // Escaped, and without its LaTeX.
    assert!(
        page.contains("Strings &#38; &#60;branes&#62; on AdS5")
            || page.contains("Strings &amp; &lt;branes&gt; on AdS5")
    );
    assert!(!page.contains("<branes>"), "{page}");
    // Issue 1 (even): two picks marked high with known outcomes, one reached.
    assert!(page.contains("reached their year's top 10&nbsp;%:\n1 of 2 known (50 %)"), "{page}");
    for it in &first.items {
        let li = item_of(&page, &it.paper_id);
        let p = corpus.by_id[&it.paper_id] as usize;
        let since = citations_after(&h, &it.paper_id, &first.week_to).await;
        let words = if since == 1 {
            "1 citation since the issue".to_string()
        } else {
            format!("{since} citations since the issue")
        };
        assert!(li.contains(&words), "{words}: {li}");
        let (reached, count) = (labels.label[p].unwrap(), labels.count[p]);
        let told = if reached { "reached" } else { "did not reach" };
        let citations = if count == 1 { "citation" } else { "citations" };
        let words = format!("{told} its year&#39;s top 10 %: {count} {citations} in its two years");
        assert!(li.contains(&words), "{words}: {li}");
    }
    // The job's issue: papers of the fixture's last week, whose outcome is not known yet.
    let (status, _, latest) = fetch!(app, "/newsletter/25");
    assert_eq!(status, 200, "{latest}");
    let real = issues.iter().find(|i| i.number == 25).unwrap();
    for it in &real.items {
        let until = dates::format(dates::parse(&it.submitted).unwrap() + LABEL_WINDOW);
        assert!(item_of(&latest, &it.paper_id).contains(&format!("not known until {until}")), "{latest}");
    }
    let highs = real.items.iter().filter(|i| i.label == "high").count();
    let expected =
        if highs == 0 { "no pick marked high".to_string() } else { format!("none of {highs} known yet") };
    assert!(latest.contains(&expected), "waiting picks are no misses: {latest}");
    // The model's honesty note and the links stay.
    assert!(latest.contains("threshold. On the papers of its test years"), "{latest}");
    assert!(latest.contains("href=\"/papers/") && latest.contains("https://arxiv.org/abs/"), "{latest}");

    // Still JSON on asking, and readable pages for numbers that are no issue.
    let (status, _, json) = fetch!(app, "/newsletter/25?format=json");
    assert_eq!(status, 200);
    assert_eq!(serde_json::from_str::<Issue>(&json).unwrap(), *real);
    for (path, text) in
        [("/newsletter/99", "There is no issue 99"), ("/newsletter/abc", "not an issue number")]
    {
        let (status, _, page) = fetch!(app, path);
        assert_eq!(status, 404, "{path}");
        assert!(page.contains(text) && page.contains("class=\"brand\""), "{page}");
    }
}

#[actix_web::test]
async fn the_track_record_gives_each_issue_its_hit_rate_and_the_running_rate() {
    let (h, _, _, issues) = with_issues().await;
    let app = app!(h);
    let (status, headers, page) = fetch!(app, "/newsletter/track-record");
    assert_eq!(status, 200, "{page}");
    assert_eq!(headers.get("cache-control").unwrap(), "public, max-age=300");
    assert!(page.contains("class=\"brand\"") && page.contains("<table class=\"reflow\">"), "{page}");
    // Oldest first, summed by hand: even issues 1 of 2 known, odd ones 1 of 1, the job's
    // issue none known (its high picks, if any, are waiting: not misses).
    let real = issues.iter().find(|i| i.number == 25).unwrap();
    let waiting = real.items.iter().filter(|i| i.label == "high").count();
    let (mut hits, mut known) = (0, 0);
    let pct = |h: u32, k: u32| format!("{h} of {k} known ({:.0} %)", f64::from(h) * 100.0 / f64::from(k));
    for n in 1..=MADE as u32 {
        let (h, k) = if n % 2 == 1 { (1, 2) } else { (1, 1) };
        hits += h;
        known += k;
        let row = page
            .split("<tr>")
            .find(|r| r.contains(&format!("href=\"#issue-{n}\">{n}</a>")))
            .unwrap_or_else(|| panic!("no row for issue {n}: {page}"));
        assert!(row.contains(&format!("<td data-label=\"This issue\">{}</td>", pct(h, k))), "{row}");
        assert!(row.contains(&format!("<td data-label=\"Running\">{}</td>", pct(hits, known))), "{row}");
    }
    let mut overall = pct(hits, known);
    if waiting > 0 {
        overall.push_str(&format!(", {waiting} not known yet"));
    }
    assert!(page.contains(&format!("Over all 25 issues:</strong>\npicks marked high that reached their year's top 10&nbsp;%: {overall}.")), "{overall}: {page}");
    // Every pick of every issue is there, newest issue first.
    let at = |n: u32| page.find(&format!("<section id=\"issue-{n}\">")).unwrap();
    assert!(at(25) < at(24) && at(2) < at(1));
    for issue in &issues {
        for it in &issue.items {
            assert!(page.contains(&format!("href=\"{}\"", it.page_url())), "{}", it.paper_id);
        }
    }
    assert!(!page.contains("$"), "titles without LaTeX");
}

#[actix_web::test]
async fn the_feed_is_atom_with_one_entry_per_issue_at_its_permanent_address() {
    let (h, _, _, issues) = with_issues().await;
    let app = app!(h);
    let (status, headers, body) = fetch!(app, "/newsletter/feed.atom");
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers.get("content-type").unwrap(), "application/atom+xml; charset=utf-8");
    let feed: atom_syndication::Feed = body.parse().unwrap_or_else(|e| panic!("{e}: {body}"));
    let base = h.state.site.base_url.trim_end_matches('/').to_string();
    assert!(base.starts_with("http"), "{base}");
    assert_eq!(feed.id, format!("{base}/newsletter/feed.atom"));
    assert!(feed.links.iter().any(|l| l.rel == "self" && l.href == format!("{base}/newsletter/feed.atom")));
    assert!(!feed.authors.is_empty());
    assert_eq!(feed.entries.len(), issues.len());
    assert_eq!(feed.updated.timestamp(), issues[0].built_at);
    for (entry, issue) in feed.entries.iter().zip(&issues) {
        let url = format!("{base}/newsletter/{}", issue.number);
        assert_eq!(entry.id, url);
        assert_eq!(entry.links.len(), 1);
        assert_eq!((entry.links[0].rel.as_str(), entry.links[0].href.as_str()), ("alternate", url.as_str()));
        assert_eq!(entry.updated.timestamp(), issue.built_at);
        let content = entry.content.as_ref().unwrap();
        assert_eq!(content.content_type.as_deref(), Some("html"));
        let html = content.value.as_deref().unwrap();
        for it in &issue.items {
            assert!(html.contains(&format!("href=\"{base}{}\"", it.page_url())), "{html}");
        }
    }
    // The odd title is escaped inside the entry's HTML, not taken as markup.
    let first = feed.entries.iter().find(|e| e.id.ends_with("/newsletter/1")).unwrap();
    let html = first.content.as_ref().unwrap().value.as_deref().unwrap();
    assert!(html.contains("Strings &amp; &lt;branes&gt; on AdS5"), "{html}");
    // Every entry's link opens its issue.
    let (status, _, _) = fetch!(app, "/newsletter/1");
    assert_eq!(status, 200);
}
