//! Text handling that no input can make panic or misbehave (issue 9): the visible text of HTML
//! as a browser parses it (html5ever, through ammonia), cuts at character boundaries, and remote
//! strings stripped of the control characters that could rewrite a terminal or flip the text
//! around them before they are stored or printed.
//!
//! Never slice a string by byte offsets taken from another string (an escaped copy, a decoded
//! copy): that is how `東京&amp;大阪府` once panicked the teaser.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

use ammonia::Builder;
use html5ever::tendril::StrTendril;
use html5ever::tokenizer::{
    BufferQueue, TagKind, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts,
};

/// The first `max_chars` characters (Unicode scalar values) of `s`.
pub fn truncate_chars(s: &str, max_chars: usize) -> &str {
    match s.char_indices().nth(max_chars) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Characters that must never reach storage or a terminal from a remote peer: C0 (ESC, BEL,
/// CR, LF, TAB…), DEL and C1 (CSI, OSC…) controls, which a terminal obeys; the bidirectional
/// marks, embeddings, overrides and isolates, which reorder the text around them ("Trojan
/// Source", CVE-2021-42574); and the line and paragraph separators.
pub fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{200E}'
                | '\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}'
        )
}

/// A remote string as one safe line: every [`is_unsafe_char`] removed (tabs and line breaks
/// too, so a field cannot fake extra lines or columns). Right-to-left text itself is kept.
pub fn strip_controls(s: &str) -> String {
    s.chars().filter(|&c| !is_unsafe_char(c)).collect()
}

/// Output for the terminal that may hold remote strings: each line and tab-separated column
/// passes through [`strip_controls`]; only the layout's own `\n` and `\t` are kept.
pub fn for_terminal(s: &str) -> String {
    s.split('\n')
        .map(|line| {
            line.split('\t')
                .map(strip_controls)
                .collect::<Vec<_>>()
                .join("\t")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Elements that end a block of text.
const BLOCKS: [&str; 22] = [
    "p",
    "div",
    "li",
    "ul",
    "ol",
    "dl",
    "dt",
    "dd",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "blockquote",
    "table",
    "tr",
    "hr",
    "section",
    "article",
    "header",
    "footer",
];

/// Keeps only the elements [`html_blocks`] reads; the text of every other element stays, and
/// `<script>`/`<style>` are dropped with their content (ammonia's default).
static STRUCTURE: LazyLock<Builder<'static>> = LazyLock::new(|| {
    let mut tags: HashSet<&'static str> = BLOCKS.into_iter().collect();
    tags.extend(["br", "pre", "td", "th"]);
    let mut b = Builder::empty();
    b.tags(tags).strip_comments(true);
    b
});

/// The visible text of an HTML fragment, one string per block (paragraph, list item, heading,
/// quote, code block). Line breaks (`<br>`) inside a block are kept as `\n`; runs of white space
/// collapse except inside `<pre>`; list items start with "• ".
///
/// Two html5ever passes: ammonia's tree builder first turns any markup (unclosed, misnested,
/// scripts) into well-formed HTML of the few elements read here, then html5ever's tokenizer reads
/// it, decoding character references as a browser does. The tokenizer streams, so no nesting
/// depth reaches the call stack.
pub fn html_blocks(html: &str) -> Vec<String> {
    if MEMO_USERS.load(Ordering::Acquire) == 0 {
        return parse_blocks(html);
    }
    let key = memo_key(html);
    let known = lock_memo().as_ref().and_then(|m| m.get(&key).cloned());
    if let Some(blocks) = known {
        return blocks.to_vec();
    }
    let blocks = parse_blocks(html);
    if let Some(memo) = lock_memo().as_mut() {
        memo.insert(key, blocks.as_slice().into());
    }
    blocks
}

/// How many [`BlocksMemo`]s are alive: [`html_blocks`] looks in the memo only when one is.
static MEMO_USERS: AtomicUsize = AtomicUsize::new(0);
/// [`html_blocks`]' answers by a hash of the HTML, while a [`BlocksMemo`] lives.
static MEMO: Mutex<Option<Memo>> = Mutex::new(None);

/// Blocks by the first 128 bits of the SHA-256 of their HTML.
type Memo = HashMap<[u8; 16], Arc<[String]>>;

fn lock_memo() -> std::sync::MutexGuard<'static, Option<Memo>> {
    // A panic elsewhere while holding it leaves a map that is still whole.
    MEMO.lock().unwrap_or_else(|e| e.into_inner())
}

/// `db::digest::short_sha256`'s bytes, written here because the fuzz crate compiles this file
/// without the database layer (fuzz/src/lib.rs).
fn memo_key(html: &str) -> [u8; 16] {
    let mut h = openssl::sha::Sha256::new();
    h.update(html.as_bytes());
    let mut key = [0; 16];
    key.copy_from_slice(&h.finish()[..16]);
    key
}

/// While one lives, [`html_blocks`] parses each distinct HTML once. An export asks for the same
/// post's blocks for its page (description), its Note (teaser) and the Note again on its outbox
/// page: that parsing was a quarter of a full export (issue 15). Only an export holds one, for
/// the time it renders (entries are a few kB per post, dropped with the last memo); `serve`
/// keeps rendered pages instead (`web::cache`).
pub struct BlocksMemo(());

impl BlocksMemo {
    pub fn start() -> BlocksMemo {
        let mut memo = lock_memo();
        memo.get_or_insert_with(HashMap::new);
        MEMO_USERS.fetch_add(1, Ordering::AcqRel);
        BlocksMemo(())
    }
}

impl Drop for BlocksMemo {
    fn drop(&mut self) {
        let mut memo = lock_memo();
        if MEMO_USERS.fetch_sub(1, Ordering::AcqRel) == 1 {
            *memo = None;
        }
    }
}

/// The end of the prefix of a long `html` that the excerpts parse first: just before the first
/// `<` at or after `at_least` bytes (a `<` byte never falls inside a character, and `content_html`
/// is sanitised HTML, where it never falls inside a character reference), or `None` when `html`
/// is not longer than that or has no tag after it. The teaser (`activitypub::teaser`) and a
/// page's description ([`text_of_two`]) cut at the same place from [`PREFIX_BYTES`], so one parse
/// serves both while a [`BlocksMemo`] lives.
pub fn cut_before_tag(html: &str, at_least: usize) -> Option<usize> {
    let rest = html.as_bytes().get(at_least..).filter(|r| !r.is_empty())?;
    rest.iter().position(|&b| b == b'<').map(|i| at_least + i)
}

/// Where the excerpts of a long post start looking: about four times a 500-character teaser, as
/// CJK text is three bytes a character and markup (links, emphasis) adds more.
pub const PREFIX_BYTES: usize = 2000;

fn parse_blocks(html: &str) -> Vec<String> {
    let normal = STRUCTURE.clean(html).to_string();
    let sink = BlockSink::default();
    let tokenizer = Tokenizer::new(sink, TokenizerOpts::default());
    let queue = BufferQueue::default();
    queue.push_back(StrTendril::from_slice(&normal));
    // Our sink never asks to stop for a script, so one feed reads everything.
    let _ = tokenizer.feed(&queue);
    tokenizer.end();
    let mut out = tokenizer.sink.0.take();
    out.flush();
    out.blocks
}

#[derive(Default)]
struct BlockSink(RefCell<Blocks>);

impl TokenSink for BlockSink {
    type Handle = ();

    fn process_token(&self, token: Token, _line: u64) -> TokenSinkResult<()> {
        let mut out = self.0.borrow_mut();
        match token {
            Token::CharacterTokens(text) => out.text(&text),
            Token::TagToken(tag) => out.tag(&tag.name, tag.kind == TagKind::EndTag),
            _ => {}
        }
        TokenSinkResult::Continue
    }
}

#[derive(Default)]
struct Blocks {
    blocks: Vec<String>,
    current: String,
    /// Depth of `<pre>` elements around the text.
    pre: usize,
}

impl Blocks {
    fn flush(&mut self) {
        let text = self.current.trim();
        if !text.is_empty() && text != "•" {
            self.blocks.push(text.to_string());
        }
        self.current.clear();
    }

    fn tag(&mut self, name: &str, closing: bool) {
        match name {
            "br" => self.current.push('\n'),
            "pre" => {
                self.flush();
                self.pre = if closing {
                    self.pre.saturating_sub(1)
                } else {
                    self.pre + 1
                };
            }
            "td" | "th" if closing => self.current.push(' '),
            t if BLOCKS.contains(&t) => {
                self.flush();
                if t == "li" && !closing {
                    self.current.push_str("• ");
                }
            }
            _ => {}
        }
    }

    fn text(&mut self, text: &str) {
        if self.pre > 0 {
            self.current.push_str(text);
            return;
        }
        // HTML collapses runs of white space, and so do we.
        for (i, word) in text.split(char::is_whitespace).enumerate() {
            if i > 0 && !self.current.is_empty() && !self.current.ends_with([' ', '\n']) {
                self.current.push(' ');
            }
            self.current.push_str(word);
        }
    }
}

/// Plain text from a remote field shown as text (names, content warnings): control characters
/// and bidirectional overrides, embeddings and isolates removed (a display name must not flip
/// the text around it: "moc.elgoog" spoofing), length bounded. Templates escape it and isolate
/// names in `<bdi>`; right-to-left names themselves are untouched.
pub fn plain_text(value: &str, max_chars: usize) -> String {
    let clean = strip_controls(value);
    truncate_chars(&clean, max_chars).trim().to_string()
}

/// Plain text from remote HTML (for excerpts in `hortus inbox`): tags dropped, entities decoded.
pub fn text_of(html: &str, max_chars: usize) -> String {
    words_within(&text_for(html, max_chars), max_chars).0
}

/// [`text_of`] at two lengths, `long` and `short <= long`, from one parse of `html`: a post's
/// page shows both (its description and its title), and parsing was a quarter of a full export
/// (issue 15). The words are the same, so the shorter cut is the longer one's start.
pub fn text_of_two(html: &str, long: usize, short: usize) -> (String, String) {
    let text = text_for(html, long.max(short));
    (words_within(&text, long).0, words_within(&text, short).0)
}

/// The text blocks of `html` joined by spaces, or of a prefix of it that holds more than
/// `max_chars` characters of words (all a cut at `max_chars` reads).
fn text_for(html: &str, max_chars: usize) -> String {
    // Pages ask for 60–200 characters of posts that may be long: parse only a generous prefix
    // (markup included), and the whole only when that prefix held too little text.
    // From the same place as the teaser's (`cut_before_tag`), so an export parses it once.
    let budget = max_chars
        .saturating_mul(8)
        .saturating_add(256)
        .max(PREFIX_BYTES);
    // A long run with no tag after the budget (one huge paragraph) is cut inside the text.
    let cut = cut_before_tag(html, budget).or_else(|| {
        let mut cut = (html.len() > budget).then_some(budget)?;
        while !html.is_char_boundary(cut) {
            cut -= 1;
        }
        Some(cut)
    });
    if let Some(cut) = cut {
        let text = html_blocks(&html[..cut]).join(" ");
        if words_within(&text, max_chars).1 {
            return text;
        }
    }
    html_blocks(html).join(" ")
}

/// The text of `html`, whole words only, cut at `max_chars` with an ellipsis; and whether it
/// was cut (so a longer input would not have changed it).
#[cfg(test)]
fn words_of(html: &str, max_chars: usize) -> (String, bool) {
    words_within(&html_blocks(html).join(" "), max_chars)
}

/// `text`'s whole words up to `max_chars`, with an ellipsis when some were left out; and
/// whether they were.
fn words_within(text: &str, max_chars: usize) -> (String, bool) {
    let mut out = String::new();
    let mut chars = 0;
    for w in text.split_whitespace() {
        let n = w.chars().count();
        if chars + n + 1 > max_chars {
            out.push('…');
            return (out, true);
        }
        if !out.is_empty() {
            out.push(' ');
            chars += 1;
        }
        out.push_str(w);
        chars += n;
    }
    (out, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_counts_characters_of_every_script() {
        assert_eq!(truncate_chars("東京&大阪府", 3), "東京&");
        assert_eq!(truncate_chars("مرحبا", 2), "مر");
        assert_eq!(
            truncate_chars("e\u{301}x", 1),
            "e",
            "a combining mark is a character"
        );
        assert_eq!(truncate_chars("👩‍👩‍👧", 1), "👩");
        assert_eq!(truncate_chars("short", 99), "short");
        for s in ["東京&大阪府", "👩‍👩‍👧é", "שלום"] {
            for n in 0..12 {
                assert!(s.starts_with(truncate_chars(s, n)));
            }
        }
    }

    #[test]
    fn controls_and_bidi_overrides_are_removed_right_to_left_text_stays() {
        let evil = "\x1b]0;pwned\x07東京\u{202e}gnp.exe\u{2066}\u{9b}31m مرحبا\r\n\tשלום\u{7f}";
        assert_eq!(strip_controls(evil), "]0;pwned東京gnp.exe31m مرحباשלום");
        assert_eq!(
            for_terminal("a\x1b[2J\tb\u{202e}c\nנ\u{85}d\n"),
            "a[2J\tbc\nנd\n",
            "layout kept, controls gone"
        );
        assert_eq!(
            strip_controls("👩‍👩‍👧 e\u{301}"),
            "👩‍👩‍👧 e\u{301}",
            "ZWJ and marks stay"
        );
    }

    #[test]
    fn text_is_extracted_and_entities_decoded_by_the_html_parser() {
        let p = html_blocks(
            "<p>a &lt;b&gt; &amp;&#39;c&#x27;\n  d<br>e</p><pre><code>x  y\nz</code></pre><li>i</li>",
        );
        assert_eq!(p, ["a <b> &'c' d\ne", "x  y\nz", "• i"]);
        assert_eq!(
            html_blocks(
                "<p>東京&amp;大阪府 &#x1F600;&nbsp;مرحبا</p><h2>見出し</h2><script>x</script>"
            ),
            ["東京&大阪府 😀 مرحبا", "見出し"],
            "a no-break space is white space too"
        );
        // What a browser does with broken references and markup.
        assert_eq!(
            html_blocks("&amp大阪 &#0; &#xD800; &unknown; <b>未<i>閉"),
            ["&大阪 \u{FFFD} \u{FFFD} &unknown; 未閉"]
        );
        assert_eq!(
            html_blocks("<table><tr><td>一</td><td>二</td></tr></table>"),
            ["一 二"]
        );
        assert!(html_blocks("").is_empty());
    }

    #[test]
    fn deep_nesting_does_not_overflow_the_stack() {
        let html = format!("{}深い{}", "<div>".repeat(3_000), "</div>".repeat(3_000));
        assert_eq!(html_blocks(&html), ["深い"]);
    }

    #[test]
    fn excerpts_of_long_posts_read_only_a_prefix_and_match_the_whole() {
        // Markup-heavy paragraphs: the prefix alone may hold too little text.
        let link = "<a href=\"https://example.org/a/very/long/path/that/takes/bytes\">w</a> ";
        let heavy = format!("<p>{}</p><p>{}</p>", link.repeat(300), "word ".repeat(3000));
        let plain = format!("<p>{}</p>", "Ünïcode wörds &amp; more ".repeat(2000));
        for html in [&heavy, &plain] {
            for max in [10, 60, 200, 1000] {
                assert_eq!(text_of(html, max), words_of(html, max).0, "{max}");
                assert!(text_of(html, max).chars().count() <= max + 1, "{max}");
            }
        }
        assert_eq!(text_of("<p>short</p>", 200), "short");
        // Both lengths from one parse, as each alone.
        let thai = format!("<p>{}</p>", "ภาษาไทย عربي 😀e\u{301} ".repeat(400));
        for html in [&heavy, &plain, &thai, &"<p>short</p>".to_string()] {
            assert_eq!(
                text_of_two(html, 200, 60),
                (words_of(html, 200).0, words_of(html, 60).0)
            );
        }
    }

    /// With a memo alive, each distinct HTML gets its own blocks (the same as without), the
    /// page's description and the teaser share one parse, and the memo is dropped with it.
    #[test]
    fn the_blocks_memo_answers_what_parsing_does_and_shares_the_prefix() {
        let para = |s: &str| format!("<p>{}</p>", s.repeat(40));
        let html = [
            para("日本語の文章、もう少し。"),
            para("نص عربي طويل "),
            para("emoji 😀 and e\u{301} "),
            "<p>short</p>".to_string(),
        ]
        .concat();
        let alone: Vec<Vec<String>> = [&html, "<p>a</p><p>b</p>", "<ul><li>x</li></ul>"]
            .iter()
            .map(|h| html_blocks(h))
            .collect();
        let description = text_of_two(&html, 200, 60);
        let memo = BlocksMemo::start();
        for _ in 0..2 {
            for (h, want) in [&html[..], "<p>a</p><p>b</p>", "<ul><li>x</li></ul>"]
                .iter()
                .zip(&alone)
            {
                assert_eq!(&html_blocks(h), want);
            }
        }
        let entries = || lock_memo().as_ref().map_or(0, HashMap::len);
        let cut = cut_before_tag(&html, PREFIX_BYTES).unwrap();
        assert!(cut > PREFIX_BYTES && html[cut..].starts_with('<'));
        let known = |h: &str| {
            lock_memo()
                .as_ref()
                .is_some_and(|m| m.contains_key(&memo_key(h)))
        };
        assert!(!known(&html[..cut]));
        assert_eq!(text_of_two(&html, 200, 60), description);
        // The page's description parsed the teaser's prefix (`activitypub::teaser`).
        assert!(known(&html[..cut]));
        drop(memo);
        assert_eq!(entries(), 0, "dropped with the last memo");
        assert_eq!(cut_before_tag("<p>x</p>", PREFIX_BYTES), None);
        assert_eq!(cut_before_tag("abc<", 3), Some(3));
        assert_eq!(cut_before_tag("abc", 3), None);
    }
}
