//! The weekly newsletter's issues: the week's papers most likely to become highly cited,
//! as the serving model saw them when the issue was built. The `newsletter` job
//! ([`job`]) builds one a week; they are kept by [`store`] and form the public archive
//! ([`routes`]).

pub mod admin;
pub mod delivery;
mod error;
pub mod job;
pub mod page;
pub mod routes;
pub mod store;
pub mod subscribers;
pub mod track;

use serde::{Deserialize, Serialize};

pub use error::NewsletterError;

/// The subject areas readers can follow, as (id, label) for forms.
pub fn topics() -> Vec<(String, String)> {
    subscribers::TOPICS.iter().map(|(id, label, _)| (id.to_string(), label.to_string())).collect()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    pub paper_id: String,
    pub title: String,
    pub authors: Vec<String>,
    pub submitted: String,
    pub probability: f64,
    /// `high` or `low` at the model's threshold.
    pub label: String,
    /// The feature that pushed the forecast most, in words.
    pub why: String,
}

impl Item {
    /// The title as readers see it: LaTeX markup turned into plain text.
    pub fn plain_title(&self) -> String {
        plain_title(&self.title)
    }

    /// The paper's arXiv page, when its id is an arXiv identifier.
    pub fn arxiv_url(&self) -> Option<String> {
        crate::papers::arxiv_url(&self.paper_id)
    }

    /// The paper's page on this server (`/papers/{id}`; the `/` of old arXiv ids stays,
    /// characters that would end or break the path are escaped).
    pub fn page_url(&self) -> String {
        let mut url = String::from("/papers/");
        for c in self.paper_id.chars() {
            match c {
                '%' | '?' | '#' | ' ' | '"' | '<' | '>' => url.push_str(&format!("%{:02X}", c as u32)),
                c if c.is_control() => url.push_str(&format!("%{:02X}", c as u32)),
                c => url.push(c),
            }
        }
        url
    }
}

/// Plain text for a title written with LaTeX: `$AdS_5 \times S^5$` becomes `AdS5 × S5`,
/// accents and common symbols become their characters, other commands and braces go.
pub fn plain_title(title: &str) -> String {
    const SYMBOLS: &[(&str, &str)] = &[
        ("\\times", "×"),
        ("\\to", "→"),
        ("\\rightarrow", "→"),
        ("\\leq", "≤"),
        ("\\geq", "≥"),
        ("\\le", "≤"),
        ("\\ge", "≥"),
        ("\\sim", "~"),
        ("\\infty", "∞"),
        ("\\partial", "∂"),
        ("\\alpha", "α"),
        ("\\beta", "β"),
        ("\\gamma", "γ"),
        ("\\delta", "δ"),
        ("\\epsilon", "ε"),
        ("\\zeta", "ζ"),
        ("\\eta", "η"),
        ("\\theta", "θ"),
        ("\\kappa", "κ"),
        ("\\lambda", "λ"),
        ("\\mu", "μ"),
        ("\\nu", "ν"),
        ("\\xi", "ξ"),
        ("\\pi", "π"),
        ("\\rho", "ρ"),
        ("\\sigma", "σ"),
        ("\\tau", "τ"),
        ("\\phi", "φ"),
        ("\\chi", "χ"),
        ("\\psi", "ψ"),
        ("\\omega", "ω"),
        ("\\Gamma", "Γ"),
        ("\\Delta", "Δ"),
        ("\\Lambda", "Λ"),
        ("\\Sigma", "Σ"),
        ("\\Phi", "Φ"),
        ("\\Psi", "Ψ"),
        ("\\Omega", "Ω"),
        ("\\hbar", "ħ"),
        ("\\pm", "±"),
        ("\\cdot", "·"),
        ("\\'e", "é"),
        ("\\'a", "á"),
        ("\\\"o", "ö"),
        ("\\\"u", "ü"),
        ("\\\"a", "ä"),
        ("\\`e", "è"),
    ];
    let mut out = title.to_string();
    for (tex, text) in SYMBOLS {
        // Longest commands first would matter for prefixes (\le, \leq): `\leq` is listed first.
        out = replace_command(&out, tex, text);
    }
    let mut plain = String::with_capacity(out.len());
    let mut chars = out.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '$' | '{' | '}' | '^' | '_' => {}
            '~' => plain.push(' '),
            '\\' => {
                // Any other command: drop its name (`\mathcal`, `\rm`), keep its argument.
                while chars.peek().is_some_and(|c| c.is_ascii_alphabetic()) {
                    chars.next();
                }
                if chars.peek() == Some(&' ') {
                    chars.next();
                }
            }
            _ => plain.push(c),
        }
    }
    plain.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Replaces the command `tex` where it is not the prefix of a longer command name.
fn replace_command(s: &str, tex: &str, text: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find(tex) {
        let after = &rest[at + tex.len()..];
        let letters_follow = tex.chars().last().is_some_and(|c| c.is_ascii_alphabetic())
            && after.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
        out.push_str(&rest[..at]);
        if letters_follow {
            out.push_str(tex);
        } else {
            out.push_str(text);
            // `\times S`: the space ended the command name, keep one.
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Issue {
    /// 1, 2, 3, ... assigned when stored.
    pub number: u32,
    /// Unix seconds.
    pub built_at: i64,
    /// The week of submissions covered, inclusive, YYYY-MM-DD.
    pub week_from: String,
    pub week_to: String,
    pub model_version: String,
    /// Papers considered (submitted in the week) and the top ones, most likely first.
    pub papers_considered: usize,
    pub items: Vec<Item>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_lose_their_latex_and_arxiv_ids_get_links() {
        assert_eq!(plain_title("Strings on $AdS_5 \\times S^5$"), "Strings on AdS5 × S5");
        assert_eq!(
            plain_title("The $\\beta$-function of $N=4$ {\\it Super} Yang-Mills"),
            "The β-function of N=4 Super Yang-Mills"
        );
        assert_eq!(plain_title("Bounds $\\leq 1$ and $\\lambda\\phi^4$"), "Bounds ≤ 1 and λφ4");
        assert_eq!(plain_title("Andr\\'e's \\mathcal{N}=2 theory"), "André's N=2 theory");
        let item = |id: &str| Item {
            paper_id: id.into(),
            title: String::new(),
            authors: vec![],
            submitted: String::new(),
            probability: 0.0,
            label: String::new(),
            why: String::new(),
        };
        assert_eq!(item("hep-th/9711200").arxiv_url().unwrap(), "https://arxiv.org/abs/hep-th/9711200");
        assert_eq!(item("2101.01234").arxiv_url().unwrap(), "https://arxiv.org/abs/2101.01234");
        assert!(item("my/0001").arxiv_url().is_none());
    }
}
