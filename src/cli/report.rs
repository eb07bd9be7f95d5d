//! What the command line prints: terminal rendering of what the handlers return. Text that may
//! hold remote strings (names, handles, errors a peer answered with) passes through
//! `text::for_terminal`: never a control character or bidi override, only our own layout.

use std::net::SocketAddr;
use std::time::SystemTime;

use crate::app::{self, Site};
use crate::delivery::schedule::unix_ms;
use crate::delivery::status::QueueStatus;
use crate::posts::SyncReport;

/// Prints command output that may hold remote strings (names, handles, actor ids, errors a
/// peer answered with): never a control character or bidi override, only our own layout.
pub fn show(out: &str) {
    print!("{}", crate::text::for_terminal(out));
}

/// What a publish looked up and queued, for the owner.
pub fn print_lookups_and_queue(published: &app::Published) {
    for line in &published.lookups {
        // Lookups quote what remote servers answered.
        println!("{}", crate::text::for_terminal(line));
    }
    let queued = &published.queued;
    if !queued.activities.is_empty() {
        println!(
            "queued {} deliveries of {} activities (hortus serve sends them)",
            queued.deliveries,
            queued.activities.len()
        );
    }
}

/// While serving, a publish that fails is reported, not fatal: what was published before
/// stays online. Its warnings and errors are log lines (stderr stays JSON with
/// `--log-format json`); what was published goes to stdout.
pub fn report_published(outcome: std::result::Result<app::Published, app::AppError>) {
    match outcome {
        Ok(published) => {
            for w in &published.report.warnings {
                tracing::warn!(warning = %w, "a post was not published");
            }
            if !published.report.is_empty() {
                print_changes(&published.report);
            }
            print_lookups_and_queue(&published);
        }
        Err(e) => tracing::warn!(
            error = %crate::text::for_terminal(&e.to_string()),
            "posts not published; what was online stays online"
        ),
    }
}

/// Warnings go to stderr, so a script reading stdout never sees them.
pub fn print_warnings(report: &SyncReport) {
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
}

pub fn print_report(report: &SyncReport) {
    print_warnings(report);
    print_changes(report);
}

/// What a publish created, updated and deleted, and the totals.
fn print_changes(report: &SyncReport) {
    for (_, slug) in &report.created {
        println!("created  {slug}");
    }
    for (_, slug) in &report.updated {
        println!("updated  {slug}");
    }
    for (_, slug) in &report.deleted {
        println!("deleted  {slug}");
    }
    println!(
        "{} created, {} updated, {} deleted, {} unchanged",
        report.created.len(),
        report.updated.len(),
        report.deleted.len(),
        report.unchanged
    );
}

/// Before `hortus export` writes: the publish it ran first. A person sees the report; a script
/// gets warnings and one summary line on stderr, so stdout holds only the export's JSON.
pub fn export_published(report: &SyncReport, human: bool) {
    if human {
        if !report.is_empty() {
            print_report(report);
        }
    } else if !report.is_empty() {
        print_warnings(report);
        eprintln!(
            "published: {} created, {} updated, {} deleted",
            report.created.len(),
            report.updated.len(),
            report.deleted.len()
        );
    }
}

/// After `hortus export`: its warnings, then a summary for a person or one JSON line for a script.
pub fn export_done(done: &crate::export::ExportReport, human: bool) {
    for w in &done.warnings {
        eprintln!("warning: {w}");
    }
    if human {
        show(&done.summary());
    } else {
        println!("{}", done.to_json());
    }
}

/// `hortus serve` is up: where, and whether saved posts go online by themselves.
pub fn serving(site: &Site, local: SocketAddr, watch_error: Option<&app::AppError>) {
    let u = &site.urls;
    println!(
        "Hortus is serving @{} on http://{local}",
        site.config.handle()
    );
    println!("  home page:  {}", u.home());
    println!("  actor:      {}", u.actor());
    println!(
        "  webfinger:  {}?resource=acct:{}",
        u.webfinger(),
        site.config.handle()
    );
    println!("  feed:       {}", u.feed());
    if let Some(e) = watch_error {
        tracing::warn!(error = %e, "content/ is not watched: run `hortus publish` after editing posts");
    }
    println!("Watching content/ for changes. Press Ctrl-C to stop.");
}

/// `hortus queue`'s text: totals, then each server that needs attention with its last error.
pub fn queue_status(st: &QueueStatus, now: SystemTime) -> String {
    let now_ms = unix_ms(now);
    let mut out = format!(
        "deliveries: {} pending, {} retrying, {} failed, {} done\n",
        st.pending, st.retrying, st.failed, st.done
    );
    if st.servers.is_empty() {
        out.push_str("every server is up to date\n");
        return out;
    }
    for s in &st.servers {
        let mut parts = Vec::new();
        if let Some(until) = s.paused_until_ms {
            parts.push(format!(
                "PAUSED for {} after {} failures in a row",
                relative(until - now_ms),
                s.consecutive_failures
            ));
        } else if s.consecutive_failures > 0 {
            parts.push(format!("{} failures in a row", s.consecutive_failures));
        }
        for (n, what) in [
            (s.pending, "pending"),
            (s.retrying, "retrying"),
            (s.failed, "failed"),
        ] {
            if n > 0 {
                parts.push(format!("{n} {what}"));
            }
        }
        if let Some(next) = s.next_attempt_ms {
            parts.push(if next <= now_ms {
                "next attempt due now".to_string()
            } else {
                format!("next attempt in {}", relative(next - now_ms))
            });
        }
        out.push_str(&format!("\n{}  {}\n", s.host, parts.join(", ")));
        if let Some(e) = &s.last_error {
            out.push_str(&format!("    last error: {e}\n"));
        }
    }
    out.push_str("\nSend a server's deliveries now: hortus queue retry SERVER\n");
    out
}

/// `45 s`, `12 min`, `3 h`, `2 d`.
fn relative(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..=89 => format!("{s} s"),
        90..=5399 => format!("{} min", (s + 30) / 60),
        5400..=172_799 => format!("{} h", (s + 1800) / 3600),
        _ => format!("{} d", (s + 43_200) / 86_400),
    }
}

/// `hortus password`: twice without echo on a terminal (a typo would lock the owner out), or
/// one line from stdin for scripts.
pub fn read_password() -> anyhow::Result<String> {
    use std::io::{BufRead, IsTerminal};
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("New password: ")?;
        let again = rpassword::prompt_password("Again: ")?;
        anyhow::ensure!(
            first == again,
            "the two passwords differ: nothing changed\n  fix: run `hortus password` again"
        );
        return Ok(first);
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let password = line.strip_suffix('\n').unwrap_or(&line);
    Ok(password.strip_suffix('\r').unwrap_or(password).to_string())
}

/// `hortus apps`: one line per app, with its scopes and last use.
pub fn apps(apps: &[crate::api::store::AppSummary]) -> String {
    use std::fmt::Write as _;
    if apps.is_empty() {
        return "(no apps: none has been registered)\n".into();
    }
    let mut out = String::new();
    for a in apps {
        let _ = writeln!(
            out,
            "{}\t{}\t{}\tsigned in: {}\tlast used: {}\tregistered {}{}",
            a.id,
            a.name,
            a.scopes,
            a.live_tokens,
            a.last_used_at.as_deref().unwrap_or("never"),
            a.created_at,
            a.website
                .as_deref()
                .map(|w| format!("\t{w}"))
                .unwrap_or_default(),
        );
    }
    out.push_str("End an app's access at once: hortus apps revoke ID\n");
    out
}

/// `hortus --version`: the OpenSSL too, since it is linked into the binary (.cargo/config.toml,
/// issue 15): an OpenSSL security update reaches Hortus only by rebuilding it, and this tells
/// the owner which one a binary carries (compare with `openssl version`).
pub(super) fn long_version() -> &'static str {
    static TEXT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TEXT.get_or_init(|| {
        format!(
            "{}\nTLS and signatures: {}",
            env!("CARGO_PKG_VERSION"),
            openssl::version::version()
        )
    })
}
