//! The owner's conversation commands (`hortus inbox`, `hortus replies …`): text for the
//! terminal, or JSON for scripts. The CLI only parses and prints.

use rusqlite::Connection;

use super::{notifications, store};
use crate::posts;
use crate::urls::Urls;

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("database error: {0}")]
    Db(String),
    #[error("{0}")]
    Usage(String),
}

impl From<rusqlite::Error> for CommandError {
    fn from(e: rusqlite::Error) -> Self {
        CommandError::Db(e.to_string())
    }
}

/// `hortus inbox [--json] [--limit N]`.
pub fn inbox(
    conn: &Connection,
    urls: &Urls,
    limit: usize,
    json: bool,
) -> Result<String, CommandError> {
    let list = notifications::list(conn, urls, limit).map_err(CommandError::Db)?;
    if json {
        let mut out =
            serde_json::to_string_pretty(&list).map_err(|e| CommandError::Db(e.to_string()))?;
        out.push('\n');
        return Ok(out);
    }
    Ok(notifications::render(&list))
}

/// `hortus replies hide|show REPLY`: REPLY is the reply's id or its page URL.
pub fn hide(conn: &Connection, reply: &str, hidden: bool) -> Result<String, CommandError> {
    if store::set_hidden(conn, reply, hidden)? == 0 {
        return Err(CommandError::Usage(format!(
            "no stored reply is {reply}; `hortus inbox` lists them with their URLs"
        )));
    }
    Ok(if hidden {
        format!("hidden: {reply} (and the answers under it) no longer shows on the page\n")
    } else {
        format!("shown again: {reply}\n")
    })
}

/// `hortus replies off|on [SLUG]`: one post, or (without a slug) the whole site.
pub fn switch(conn: &Connection, slug: Option<&str>, off: bool) -> Result<String, CommandError> {
    let word = if off { "off" } else { "on" };
    match slug {
        None => {
            store::set_site_replies(conn, off)?;
            Ok(format!("replies are {word} on every page\n"))
        }
        Some(slug) => {
            let post = posts::by_slug(conn, slug)?
                .filter(|p| p.deleted_at.is_none())
                .ok_or_else(|| CommandError::Usage(format!("no post has the slug {slug:?}")))?;
            store::set_post_replies(conn, post.id, off)?;
            let mut out = format!("replies are {word} for {slug}\n");
            if !off && store::site_replies_off(conn)? {
                out.push_str("  (but they are off site-wide: `hortus replies on` turns them on)\n");
            }
            Ok(out)
        }
    }
}
