//! `hortus timeline`: the home timeline for the terminal (plain text, every remote string through
//! `text::for_terminal`) or as JSON for scripts.

use std::fmt::Write as _;

use rusqlite::Connection;

use super::store::{self, Entry, PostView};

/// What a boost of a post on a refused server says: Hortus knows only its link.
pub const REFUSED_BOOST: &str = "a boost of a post on a server you have not allowed";

fn who(a: &store::Actor) -> String {
    match &a.handle {
        Some(h) => format!("@{h}"),
        None => a.id.clone(),
    }
}

fn count(n: Option<i64>, one: &str, many: &str) -> Option<String> {
    n.map(|n| format!("{n} {}", if n == 1 { one } else { many }))
}

fn post_lines(out: &mut String, p: &PostView) {
    let edited = p
        .updated
        .as_deref()
        .map(|u| format!(", edited {u}"))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "  {}\t{}\t{}{edited}\t{}",
        who(&p.author),
        p.server,
        p.published,
        p.visibility
    );
    if let Some(cw) = &p.summary {
        let _ = writeln!(out, "  CW: {cw}");
    }
    let text = crate::text::text_of(&p.content_html, 5000);
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let _ = writeln!(out, "  {}", line.trim());
    }
    if let Some(q) = &p.quote {
        // FEP-044f: a quote shows as one only with its author's stamp (`timeline::quotes`).
        if p.quote_authorized {
            let _ = writeln!(out, "  quoting {q} (authorised by its author)");
        } else {
            let _ = writeln!(out, "  RE: {q} (a quote its author has not authorised)");
        }
    }
    if let Some(poll) = &p.poll {
        let _ = writeln!(
            out,
            "  poll ({}{}):",
            if poll.multiple {
                "several choices"
            } else {
                "one choice"
            },
            if poll.closed { ", closed" } else { "" }
        );
        for o in &poll.options {
            let votes = o.votes.map_or("?".to_string(), |v| v.to_string());
            let _ = writeln!(out, "    [{votes}] {}", o.name);
        }
    }
    for a in &p.attachments {
        let what = a
            .name
            .as_deref()
            .or(a.media_type.as_deref())
            .unwrap_or("media");
        let _ = writeln!(out, "  media: {} ({what})", a.url);
    }
    let counts: Vec<String> = [
        count(p.replies, "reply", "replies"),
        count(p.likes, "like", "likes"),
        count(p.boosts, "boost", "boosts"),
    ]
    .into_iter()
    .flatten()
    .collect();
    let mut last = counts.join(", ");
    if !p.mine.is_empty() {
        if !last.is_empty() {
            last.push_str("; ");
        }
        let _ = write!(last, "you: {}", p.mine.join(", "));
    }
    if !last.is_empty() {
        let _ = writeln!(out, "  {last}");
    }
}

fn entry_text(out: &mut String, e: &Entry) {
    let head = match &e.booster {
        Some(b) => format!("[{}] {} boosted", e.id, who(b)),
        None => format!("[{}]", e.id),
    };
    let _ = writeln!(out, "{head}\t{}", e.received_at);
    match &e.post {
        Some(p) => {
            post_lines(out, p);
            let _ = writeln!(out, "  {}", p.url.as_deref().unwrap_or(&e.object_id));
            if p.url.as_deref().is_some_and(|u| u != e.object_id) {
                let _ = writeln!(out, "  id: {}", e.object_id);
            }
        }
        None => {
            let _ = writeln!(out, "  {REFUSED_BOOST}: {}", e.object_id);
        }
    }
}

/// The page of the timeline, newest first.
pub fn timeline(
    conn: &Connection,
    limit: usize,
    before: Option<i64>,
    json: bool,
) -> rusqlite::Result<String> {
    let entries = store::page(conn, before, limit)?;
    if json {
        let mut s = serde_json::to_string_pretty(&entries).unwrap_or_else(|_| "[]".into());
        s.push('\n');
        return Ok(s);
    }
    let mut out = String::new();
    if entries.is_empty() {
        out.push_str(if before.is_some() {
            "Nothing older.\n"
        } else {
            "Your timeline is empty: it shows what the accounts you follow post and boost (`hortus follow user@host`).\n"
        });
    }
    for e in &entries {
        let mut block = String::new();
        entry_text(&mut block, e);
        out.push_str(&crate::text::for_terminal(&block));
        out.push('\n');
    }
    if let Some(last) = entries.last()
        && entries.len() == limit
    {
        let _ = writeln!(out, "older: hortus timeline --before {}", last.id);
    }
    Ok(out)
}
