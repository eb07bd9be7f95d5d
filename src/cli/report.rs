//! What the command line prints: terminal rendering of what the handlers return. Text that may
//! hold remote strings (names, handles, errors a peer answered with) passes through
//! `text::for_terminal`: never a control character or bidi override, only our own layout.

use std::net::SocketAddr;

use crate::app::{self, Site};
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
/// stays online.
pub fn report_published(outcome: std::result::Result<app::Published, app::AppError>) {
    match outcome {
        Ok(published) => {
            if !published.report.is_empty() {
                print_report(&published.report);
            }
            print_lookups_and_queue(&published);
        }
        Err(e) => eprintln!(
            "warning: posts not published:\n{}",
            crate::text::for_terminal(&e.to_string())
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
        eprintln!("warning: {e}; run `hortus publish` after editing posts");
    }
    println!("Watching content/ for changes. Press Ctrl-C to stop.");
}
