//! The command line: clap types, and one dispatch arm per command that calls the command's
//! handler beside its domain (`owner`, `conversation::commands`, `delivery::queue`, `scaffold`,
//! `app`, `export`) and prints what it returns; terminal rendering is `report`'s. Users script
//! against it: keep names and flags stable.

pub mod apps;
pub mod report;
pub mod timeline;

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use crate::app::{self, Site};
use crate::federation::List;
use crate::owner;
use crate::scaffold;
use report::show;

#[derive(Parser, Debug)]
#[command(
    name = "hortus",
    version,
    long_version = report::long_version(),
    about = "A single-user ActivityPub microblog: your domain, your posts, a gate that opens only for the servers you choose."
)]
pub struct Cli {
    /// The site directory (holds hortus.toml, hortus.db, content/ and media/).
    #[arg(long, global = true, env = "HORTUS_DIR", default_value = ".")]
    pub dir: PathBuf,
    /// Log lines as text (coloured only on a terminal) or as JSON, one object per line.
    #[arg(long, global = true, value_enum, env = "HORTUS_LOG_FORMAT", default_value_t = crate::ops::logs::LogFormat::Text)]
    pub log_format: crate::ops::logs::LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a new site: hortus.toml, the database, key pairs and an example post.
    Init {
        /// The domain of your handle (user@DOMAIN).
        #[arg(long)]
        domain: String,
        /// Your username (the USER in USER@domain).
        #[arg(long)]
        user: String,
        /// Your display name.
        #[arg(long)]
        name: Option<String>,
        /// Where the site is reached [default: https://DOMAIN].
        #[arg(long)]
        base_url: Option<String>,
        /// Address to listen on [default: 127.0.0.1:8080].
        #[arg(long)]
        listen: Option<String>,
    },
    /// Create a new post file with its front matter filled in, and print its path.
    New {
        #[arg(long)]
        title: Option<String>,
    },
    /// Answer a post (its id or page URL): writes a new post file with `in_reply_to` and the
    /// author mentioned, opens $EDITOR unless -m gives the text, then publishes it.
    Reply {
        url: String,
        /// The text of the reply (after the mention); without it, $EDITOR opens.
        #[arg(short = 'm', long = "message")]
        message: Option<String>,
        /// Print what was done as JSON, for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Sync content/ into the database: new, edited and removed posts.
    Publish,
    /// Publish, then serve the site and its ActivityPub endpoints.
    Serve {
        /// Address to listen on [default: `listen` in hortus.toml].
        #[arg(long)]
        listen: Option<String>,
    },
    /// Servers allowed to federate (allowlist mode: nobody else).
    Allow {
        #[command(subcommand)]
        action: ListAction,
    },
    /// Servers refused in any mode (a block always wins over an allow), and single accounts
    /// (`user@host` or an actor URL) whose posts, replies and reactions are hidden everywhere.
    Block {
        #[command(subcommand)]
        action: ListAction,
    },
    /// Keep an account (user@host or actor URL) out of `hortus inbox` and the timeline.
    Mute { account: String },
    /// Undo `hortus mute`.
    Unmute { account: String },
    /// Servers that tried to reach you and were refused.
    Knocks {
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Who follows you; approve or reject pending follows.
    Followers {
        #[command(subcommand)]
        action: Option<FollowersAction>,
    },
    /// Follow a remote account (user@host or actor URL).
    Follow { account: String },
    /// Stop following a remote account.
    Unfollow { account: String },
    /// Accounts you follow and whether they accepted.
    Following,
    /// The delivery queue: pending, retrying and failed deliveries, paused servers, last errors.
    Queue {
        #[command(subcommand)]
        action: Option<QueueAction>,
    },
    /// Notifications, newest first: followers, replies, mentions, quotes, likes, boosts, knocks
    /// and moves.
    Inbox {
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Print a JSON array, for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Quotes of the owner's posts (FEP-044f): approve or reject a waiting request, or revoke
    /// a granted one (its stamp answers 410 and the quoting server gets a Delete).
    Quotes {
        /// approve or reject a waiting request; revoke a granted one.
        #[arg(value_parser = ["approve", "reject", "revoke"])]
        action: String,
        /// The quoting post, as `hortus inbox` lists it.
        url: String,
    },
    /// Replies shown under posts: hide one, or turn them off for a post or the whole site.
    Replies {
        #[command(subcommand)]
        action: RepliesAction,
    },
    /// Move this account to ACCOUNT (user@host or actor URL): sends Move to every follower. The
    /// new account must already list this one among its aliases (alsoKnownAs).
    Move { account: String },
    /// Print the accepted followers as a CSV in Mastodon's format.
    ExportFollowers,
    /// Follow every account listed in a followers or following CSV (Mastodon's format, or one
    /// user@host per line) whose server is allowed.
    ImportFollows { file: PathBuf },
    /// Publish, then write the public site and its ActivityPub documents to OUT as static files,
    /// with configuration for nginx, Caddy and Netlify-style hosts. Rewrites only what changed.
    Export {
        /// The output directory (created if missing).
        out: PathBuf,
        /// The directory the web server reads, as written into the configurations [default: OUT].
        #[arg(long)]
        root: Option<PathBuf>,
        /// The web server's address: nginx `listen`, Caddy `bind` [default: base_url's port, else 80].
        #[arg(long)]
        listen: Option<String>,
        /// Where `hortus serve` answers, for the inbox proxies [default: `listen` in hortus.toml].
        #[arg(long)]
        upstream: Option<String>,
        /// Write into a non-empty directory that holds no earlier export.
        #[arg(long)]
        force: bool,
    },
    /// Write a backup of the site to FILE (a new .tar.gz; `hortus serve` may keep running):
    /// hortus.toml, a consistent copy of hortus.db, content/ and media/. It holds the keys.
    Backup { file: PathBuf },
    /// Restore a backup made by `hortus backup` into DIR, which must be new or empty.
    Restore {
        file: PathBuf,
        #[arg(value_name = "DIR")]
        into: PathBuf,
    },
    /// Check the live deployment from outside, as another server would: DNS, TLS, WebFinger,
    /// the actor, a signed request through the proxy, the inbox, the clock, the policy pages and
    /// the answers of the public URL against hortus serve's. Exits non-zero when a check fails.
    Check {
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Reach NAME at ADDRESS instead of its DNS answer (as curl --resolve; the URL's port
        /// is used): to check a server before the DNS points at it. Repeatable.
        #[arg(long, value_name = "NAME:ADDRESS", value_parser = crate::ops::check::parse_resolve)]
        resolve: Vec<(String, std::net::IpAddr)>,
        /// Trust this CA certificate (PEM) besides the system's, e.g. a staging or private CA.
        #[arg(long, value_name = "FILE")]
        cacert: Option<PathBuf>,
    },
    #[command(flatten)]
    Apps(apps::AppsCommand),
    /// Print a systemd unit that runs `hortus serve` for this site as USER, sandboxed.
    Service {
        #[arg(long)]
        user: String,
    },
    #[command(flatten)]
    Timeline(timeline::TimelineCommand),
    /// Create a demo site with sample posts (if absent) and serve it on http://127.0.0.1:8080.
    Demo {
        /// Where the demo site lives.
        #[arg(long, default_value = "demo-site")]
        path: PathBuf,
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum ListAction {
    /// Add a server: `example.net` (exactly) or `*.example.net` (it and its subdomains); for
    /// `block`, also one account: `user@host` or its actor URL.
    Add { domain: String },
    /// Remove a server (or, for `block`, an account).
    Remove { domain: String },
    /// Show the list (`block show`: the servers, then the blocked and muted accounts).
    #[command(visible_alias = "show")]
    List,
    /// Import domains from a file: one per line, or Mastodon's domain-block CSV export.
    Import { file: PathBuf },
}

#[derive(Subcommand, Debug)]
pub enum QueueAction {
    /// Send every pending and failed delivery to SERVER now (`example.net`, `host:port` or a
    /// URL) and close its circuit breaker; a running `hortus serve` picks them up.
    Retry { server: String },
}

#[derive(Subcommand, Debug)]
pub enum RepliesAction {
    /// Hide a reply (its id or page URL, as `hortus inbox` shows) and the answers under it.
    Hide { reply: String },
    /// Show a hidden reply again.
    Show { reply: String },
    /// Stop showing replies under the post SLUG, or under every post without a slug.
    Off { slug: Option<String> },
    /// Show replies again under the post SLUG, or site-wide without a slug.
    On { slug: Option<String> },
}

#[derive(Subcommand, Debug)]
pub enum FollowersAction {
    /// All followers (the default).
    List,
    /// Follows waiting for your approval.
    Pending,
    /// Approve a pending follow (actor URL or user@host).
    Approve { account: String },
    /// Reject a pending follow, or remove a follower.
    Reject { account: String },
    /// Restore followers suspended when their server was refused (after allowing it again).
    Restore { domain: String },
}

/// Runs `f` with the site's server state (database, keys, policy, HTTP client) on a runtime.
fn with_state<T>(
    dir: &std::path::Path,
    f: impl AsyncFnOnce(&crate::web::AppState) -> Result<T>,
) -> Result<T> {
    let site = Site::open(dir)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async {
        let state = app::state(&site).await?;
        f(&state).await
    })
}

fn answer(dir: &std::path::Path, account: &str, approve: bool) -> Result<()> {
    let out = with_state(dir, async |state| {
        let mut conn = crate::db::open(&state.site_dir.join(crate::config::DB_FILE))?;
        Ok(owner::answer_follower(&mut conn, state, account, approve)?)
    })?;
    show(&out);
    Ok(())
}

fn mute(dir: &std::path::Path, account: &str, muted: bool) -> Result<()> {
    show(&with_state(dir, async |s| {
        Ok(owner::accounts::mute(s, account, muted).await?)
    })?);
    Ok(())
}

fn list_command(dir: &std::path::Path, list: List, action: ListAction) -> Result<()> {
    use owner::accounts::{self, is_account};
    // `hortus block add|remove` takes one account as well as a server.
    let account = match (&list, &action) {
        (List::Block, ListAction::Add { domain } | ListAction::Remove { domain })
            if is_account(domain) =>
        {
            Some((domain.clone(), matches!(action, ListAction::Add { .. })))
        }
        _ => None,
    };
    if let Some((account, add)) = account {
        show(&with_state(dir, async |s| {
            Ok(if add {
                accounts::block(s, &account).await?
            } else {
                accounts::unblock(s, &account).await?
            })
        })?);
        return Ok(());
    }
    let site = Site::open(dir)?;
    let conn = crate::db::open(&site.db_path())?;
    let mode = site.config.federation.mode;
    let out = match action {
        ListAction::Add { domain } => owner::list_add(&conn, list, &domain)?,
        ListAction::Remove { domain } => owner::list_remove(&conn, mode, list, &domain)?,
        ListAction::List if list == List::Block => accounts::block_show(&conn)?,
        ListAction::List => owner::list_show(&conn, list)?,
        ListAction::Import { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            owner::list_import(&conn, list, &text)?
        }
    };
    show(&out);
    Ok(())
}

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Init {
            domain,
            user,
            name,
            base_url,
            listen,
        } => {
            let opts = scaffold::InitOptions {
                dir: cli.dir.clone(),
                domain,
                user,
                name,
                base_url,
                listen,
            };
            let config = scaffold::init(&opts)?;
            println!("{}", scaffold::init_summary(&config, &cli.dir));
            Ok(())
        }
        Command::New { title } => {
            let path =
                scaffold::new_post(&cli.dir, title.as_deref(), time::OffsetDateTime::now_utc())?;
            println!("{}", path.display());
            Ok(())
        }
        Command::Reply { url, message, json } => {
            let site = Site::open(&cli.dir)?;
            let editor = std::env::var("EDITOR").ok();
            let replied = with_state(&cli.dir, async |state| {
                Ok(scaffold::reply::reply(
                    &site,
                    state,
                    &url,
                    message.as_deref(),
                    editor.as_deref(),
                    time::OffsetDateTime::now_utc(),
                )
                .await?)
            })?;
            if json {
                println!("{}", serde_json::to_string(&replied)?);
            } else {
                print!("{}", replied.line());
            }
            Ok(())
        }
        Command::Publish => {
            let site = Site::open(&cli.dir)?;
            let published =
                with_state(
                    &cli.dir,
                    async |state| Ok(app::publish(&site, state).await?),
                )?;
            report::print_report(&published.report);
            report::print_lookups_and_queue(&published);
            Ok(())
        }
        Command::Queue { action } => {
            let site = Site::open(&cli.dir)?;
            let conn = crate::db::open(&site.db_path())?;
            let now = std::time::SystemTime::now();
            if let Some(QueueAction::Retry { server }) = action {
                let n = crate::delivery::queue::retry_server(&conn, &server, now)?;
                let host = crate::delivery::queue::normalise_server(&server);
                println!("{n} deliveries to {host} are due now");
                return Ok(());
            }
            let status = crate::delivery::queue::status(&conn, now)?;
            show(&report::queue_status(&status, now));
            Ok(())
        }
        Command::Serve { listen } => {
            let site = Site::open(&cli.dir)?;
            let addr = listen.unwrap_or_else(|| site.config.listen.clone());
            serve(site, &addr)
        }
        Command::Allow { action } => list_command(&cli.dir, List::Allow, action),
        Command::Block { action } => list_command(&cli.dir, List::Block, action),
        Command::Mute { account } => mute(&cli.dir, &account, true),
        Command::Unmute { account } => mute(&cli.dir, &account, false),
        Command::Knocks { limit } => {
            let site = Site::open(&cli.dir)?;
            show(&owner::knocks(&crate::db::open(&site.db_path())?, limit)?);
            Ok(())
        }
        Command::Followers { action } => {
            let site = Site::open(&cli.dir)?;
            let conn = crate::db::open(&site.db_path())?;
            let mode = site.config.federation.mode;
            match action.unwrap_or(FollowersAction::List) {
                FollowersAction::List => show(&owner::followers(&conn, None)?),
                FollowersAction::Pending => show(&owner::followers(&conn, Some("pending"))?),
                FollowersAction::Restore { domain } => show(&owner::restore(&conn, mode, &domain)?),
                FollowersAction::Approve { account } => answer(&cli.dir, &account, true)?,
                FollowersAction::Reject { account } => answer(&cli.dir, &account, false)?,
            }
            Ok(())
        }
        Command::Follow { account } => {
            show(&with_state(&cli.dir, async |s| {
                Ok(owner::follow(s, &account).await?)
            })?);
            Ok(())
        }
        Command::Unfollow { account } => {
            show(&with_state(&cli.dir, async |s| {
                Ok(owner::unfollow(s, &account).await?)
            })?);
            Ok(())
        }
        Command::Following => {
            let site = Site::open(&cli.dir)?;
            show(&owner::following(&crate::db::open(&site.db_path())?)?);
            Ok(())
        }
        Command::Inbox { limit, json } => {
            let site = Site::open(&cli.dir)?;
            let conn = crate::db::open(&site.db_path())?;
            show(&crate::conversation::commands::inbox(
                &conn, &site.urls, limit, json,
            )?);
            Ok(())
        }
        Command::Quotes { action, url } => {
            let site = Site::open(&cli.dir)?;
            let mut conn = crate::db::open(&site.db_path())?;
            let out = crate::conversation::consent::decide(&mut conn, &site.urls, &action, &url)
                .map_err(anyhow::Error::msg)?;
            show(&format!("{out}\n"));
            Ok(())
        }
        Command::Replies { action } => {
            use crate::conversation::commands;
            let site = Site::open(&cli.dir)?;
            let conn = crate::db::open(&site.db_path())?;
            let out = match action {
                RepliesAction::Hide { reply } => commands::hide(&conn, &reply, true)?,
                RepliesAction::Show { reply } => commands::hide(&conn, &reply, false)?,
                RepliesAction::Off { slug } => commands::switch(&conn, slug.as_deref(), true)?,
                RepliesAction::On { slug } => commands::switch(&conn, slug.as_deref(), false)?,
            };
            show(&out);
            Ok(())
        }
        Command::Move { account } => {
            show(&with_state(&cli.dir, async |s| {
                Ok(crate::conversation::moving::move_to(s, &account).await?)
            })?);
            Ok(())
        }
        Command::ExportFollowers => {
            let site = Site::open(&cli.dir)?;
            let conn = crate::db::open(&site.db_path())?;
            show(&crate::conversation::moving::export_followers(&conn)?);
            Ok(())
        }
        Command::ImportFollows { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            show(&with_state(&cli.dir, async |s| {
                Ok(crate::conversation::moving::import_follows(s, &text).await)
            })?);
            Ok(())
        }
        Command::Export {
            out,
            root,
            listen,
            upstream,
            force,
        } => export(
            &cli.dir,
            crate::export::ExportOptions {
                out,
                root,
                listen,
                upstream,
                force,
                progress: false,
            },
        ),
        Command::Backup { file } => {
            show(&crate::ops::backup::backup(&cli.dir, &file)?.summary());
            Ok(())
        }
        Command::Restore { file, into } => {
            show(&crate::ops::restore::restore(&file, &into)?.summary());
            Ok(())
        }
        Command::Check {
            json,
            resolve,
            cacert,
        } => check(&cli.dir, json, resolve, cacert),
        Command::Apps(command) => apps::run(&cli.dir, command),
        Command::Service { user } => {
            let exe = std::env::current_exe().context("finding the running hortus binary")?;
            print!("{}", crate::ops::service::unit(&user, &cli.dir, &exe)?);
            Ok(())
        }
        Command::Timeline(command) => timeline::run(&cli.dir, command),
        Command::Demo { path, listen } => {
            if scaffold::ensure_demo(&path, &listen)? {
                println!("Created a demo site in {}", path.display());
            }
            let site = Site::open(&path)?;
            scaffold::check_demo_address(&path, &site.config.base_url, &listen)?;
            serve(site, &listen)
        }
    }
}

/// `hortus export`: a person at a terminal gets a progress bar and a summary; a script gets one
/// JSON line on stdout and nothing else there.
fn export(dir: &std::path::Path, mut opts: crate::export::ExportOptions) -> Result<()> {
    use std::io::IsTerminal;
    let site = Site::open(dir)?;
    let published = with_state(dir, async |state| Ok(app::publish(&site, state).await?))?;
    let report = published.report;
    let human = std::io::stdout().is_terminal();
    report::export_published(&report, human);
    opts.progress = std::io::stderr().is_terminal();
    let done = crate::export::export(&site, &opts)?;
    report::export_done(&done, human);
    Ok(())
}

/// `hortus check`: the report on stdout (text or JSON); an error, so a non-zero exit, when any
/// check failed.
fn check(
    dir: &std::path::Path,
    json: bool,
    resolve: Vec<(String, std::net::IpAddr)>,
    cacert: Option<PathBuf>,
) -> Result<()> {
    let ca_pem = match cacert {
        Some(path) => {
            Some(std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?)
        }
        None => None,
    };
    let opts = crate::ops::check::Options { resolve, ca_pem };
    let report = with_state(dir, async |s| Ok(crate::ops::check::run(s, &opts).await?))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", crate::text::for_terminal(&report.text()));
    }
    if report.ok {
        Ok(())
    } else {
        anyhow::bail!(
            "{} of {} checks failed",
            report.failed(),
            report.checks.len()
        )
    }
}

fn serve(site: Site, addr: &str) -> Result<()> {
    Ok(app::serve_site(
        site,
        addr,
        report::report_published,
        report::serving,
    )?)
}
