//! A post's Note content from arbitrary text (issue 9.3: `東京&大阪府` once panicked it): the
//! first line is the title, the rest Markdown, rendered as `hortus publish` does; and the whole
//! input once more as if it were already HTML. No panic; a teaser stays within 500 characters.
#![no_main]

use hortus_fuzz::activitypub::teaser::{TEASER_CHARS, federated_content};
use hortus_fuzz::posts::markdown::render;
use hortus_fuzz::text::html_blocks;
use hortus_fuzz::urls::Urls;
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

static URLS: LazyLock<Urls> = LazyLock::new(|| {
    Urls::new(
        &url::Url::parse("https://example.net").expect("a constant URL"),
        "alice",
    )
});

const PAGE: &str = "https://example.net/posts/%E6%9D%B1%E4%BA%AC";

fn visible_chars(html: &str) -> usize {
    let blocks = html_blocks(html);
    blocks.iter().map(|b| b.chars().count()).sum::<usize>() + 2 * blocks.len().saturating_sub(1)
}

fuzz_target!(|text: &str| {
    let (title, body) = text.split_once('\n').unwrap_or(("", text));
    let title = (!title.is_empty()).then_some(title);
    let html = render(body, &URLS).html;
    for (title, html) in [(title, html.as_str()), (None, text)] {
        let out = federated_content(title, html, PAGE);
        if out != html && out.ends_with("</a></p>") && !out.starts_with("<p><strong>") {
            // Cut to a teaser (untitled): its visible text fits the budget.
            assert!(visible_chars(&out) <= TEASER_CHARS + 2, "{out}");
        }
    }
});
