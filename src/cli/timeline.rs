//! The timeline's commands (issue 12): `hortus timeline` and the six actions on a remote post.
//! Flattened into [`super::Command`], so they read as top-level commands.

use anyhow::Result;
use clap::Subcommand;

use crate::app::Site;
use crate::timeline::act::{self, Action};

#[derive(Subcommand, Debug)]
pub enum TimelineCommand {
    /// Your home timeline, newest first: what the accounts you follow post and boost.
    Timeline {
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Only entries older than this one (the `[ID]` a line starts with).
        #[arg(long)]
        before: Option<i64>,
        /// Print a JSON array, for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Like a post (its id or its web URL); the Like goes to its author.
    Like(PostArg),
    /// Undo your like of a post.
    Unlike(PostArg),
    /// Boost a public or unlisted post to your followers (an Announce, also to its author).
    Boost(PostArg),
    /// Undo your boost of a post.
    Unboost(PostArg),
    /// Keep a post in your bookmarks (local only: nothing is sent).
    Bookmark(PostArg),
    /// Remove a post from your bookmarks.
    Unbookmark(PostArg),
}

#[derive(clap::Args, Debug)]
pub struct PostArg {
    /// The post: its id, or its page on its own server.
    pub url: String,
    /// Print what was done as one JSON object.
    #[arg(long)]
    pub json: bool,
}

pub fn run(dir: &std::path::Path, command: TimelineCommand) -> Result<()> {
    let (action, arg) = match command {
        TimelineCommand::Timeline {
            limit,
            before,
            json,
        } => {
            let site = Site::open(dir)?;
            let conn = crate::db::open(&site.db_path())?;
            let out = crate::timeline::show::timeline(&conn, limit.max(1), before, json)?;
            print!("{}", crate::text::for_terminal(&out));
            return Ok(());
        }
        TimelineCommand::Like(a) => (Action::Like, a),
        TimelineCommand::Unlike(a) => (Action::Unlike, a),
        TimelineCommand::Boost(a) => (Action::Boost, a),
        TimelineCommand::Unboost(a) => (Action::Unboost, a),
        TimelineCommand::Bookmark(a) => (Action::Bookmark, a),
        TimelineCommand::Unbookmark(a) => (Action::Unbookmark, a),
    };
    // The same runtime and server state as the other networked commands (`follow`): the
    // actions fetch (signed, guarded) and queue through the site's context.
    let site = Site::open(dir)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let done = rt.block_on(async {
        let state = crate::app::state(&site).await?;
        anyhow::Ok(act::act(&state, action, &arg.url).await?)
    })?;
    if arg.json {
        println!("{}", serde_json::to_string(&done)?);
    } else {
        println!("{}", crate::text::for_terminal(&done.line()));
    }
    Ok(())
}
