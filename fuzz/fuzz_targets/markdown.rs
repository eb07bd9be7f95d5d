//! The Markdown renderer over arbitrary text: no panic, nothing executable in its output (no
//! script element, no event attribute, no link but http(s)), every collected hashtag and
//! mention non-empty; and the text helpers over the same input.
#![no_main]

use std::cell::RefCell;
use std::sync::LazyLock;

use hortus_fuzz::posts::markdown::{render, render_plain};
use hortus_fuzz::text::{html_blocks, is_unsafe_char, strip_controls, truncate_chars};
use hortus_fuzz::urls::Urls;
use html5ever::tendril::StrTendril;
use html5ever::tokenizer::{
    BufferQueue, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts,
};
use libfuzzer_sys::fuzz_target;

static URLS: LazyLock<Urls> = LazyLock::new(|| {
    Urls::new(
        &url::Url::parse("https://example.net").expect("a constant URL"),
        "alice",
    )
});

/// Collects every problem the rendered HTML's tags show.
#[derive(Default)]
struct Check(RefCell<Vec<String>>);

impl TokenSink for Check {
    type Handle = ();
    fn process_token(&self, token: Token, _line: u64) -> TokenSinkResult<()> {
        if let Token::TagToken(tag) = token {
            let name: &str = &tag.name;
            if matches!(name, "script" | "style" | "iframe" | "object" | "embed") {
                self.0.borrow_mut().push(format!("<{name}>"));
            }
            for a in &tag.attrs {
                let attr: &str = &a.name.local;
                // As a browser reads a URL: tabs, newlines and controls dropped, case folded.
                let value: String = a
                    .value
                    .chars()
                    .filter(|c| !c.is_ascii_whitespace() && !c.is_control())
                    .collect::<String>()
                    .to_ascii_lowercase();
                // Relative links (footnotes, local media) are fine; a scheme must be one of ours.
                let scheme = value
                    .split(['/', '?', '#'])
                    .next()
                    .and_then(|p| p.split_once(':'))
                    .map(|(s, _)| s)
                    // Only a well-formed scheme is one (RFC 3986 §3.1); "htt@s:x" is a path.
                    .filter(|s| {
                        s.starts_with(|c: char| c.is_ascii_alphabetic())
                            && s.chars()
                                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
                    });
                let bad_url = matches!(attr, "href" | "src")
                    && scheme.is_some_and(|s| !matches!(s, "http" | "https" | "mailto"));
                if attr.starts_with("on") || bad_url {
                    self.0.borrow_mut().push(format!("{attr}={value}"));
                }
            }
        }
        TokenSinkResult::Continue
    }
}

fuzz_target!(|text: &str| {
    let r = render(text, &URLS);
    let tokenizer = Tokenizer::new(Check::default(), TokenizerOpts::default());
    let queue = BufferQueue::default();
    queue.push_back(StrTendril::from_slice(&r.html));
    let _ = tokenizer.feed(&queue);
    tokenizer.end();
    let problems = tokenizer.sink.0.take();
    assert!(problems.is_empty(), "{problems:?} in {}", r.html);
    assert!(r.tags.iter().all(|t| !t.is_empty()));
    assert!(r.mentions.iter().all(|m| m.name.starts_with('@')));
    let _ = render_plain(text);
    let _ = html_blocks(text);
    assert!(!strip_controls(text).chars().any(is_unsafe_char));
    for n in [0, 1, 7, 500] {
        assert!(text.starts_with(truncate_chars(text, n)));
    }
});
