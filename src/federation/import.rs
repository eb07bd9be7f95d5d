//! Bulk import of allow or block entries: one per line, or Mastodon's domain-block CSV export.

use rusqlite::Connection;

use super::FederationError;
use super::domain::Pattern;
use super::lists::{List, insert};
use super::policy::Rules;
use super::suspension::{SuspendedFollower, suspend_where};
use crate::db::write_transaction;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportFormat {
    /// One entry per line; `#` starts a comment.
    Lines,
    /// Mastodon's domain block (or allow) CSV export.
    MastodonCsv,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedLine {
    /// 1-based line of the file where the entry starts.
    pub line: usize,
    pub text: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportReport {
    pub format: ImportFormat,
    /// Entries added, normalised.
    pub added: Vec<String>,
    pub already_present: usize,
    pub skipped: Vec<SkippedLine>,
    /// Followers suspended by the new block entries.
    pub suspended: Vec<SuspendedFollower>,
}

/// Imports many entries in one transaction.
///
/// Two formats, told apart by the first non-blank line:
/// - Mastodon's CSV export, header `#domain,#severity,#reject_media,…` (with or without the
///   `#`s). Only `domain` matters; rows with severity `noop` are skipped, and so are
///   obfuscated domains (any `*`). Mastodon applies a domain block to subdomains too, so a block
///   row `example.net` is stored as `*.example.net`; an allow row stays exact, as in Mastodon.
///   Every other severity (`silence`, `suspend`) becomes a full block here: Hortus has no
///   "limit".
/// - Anything else: one entry per line in the syntax of [`Pattern`]; `#` starts a comment,
///   blank lines are ignored.
pub fn import_domains(
    conn: &Connection,
    list: List,
    text: &str,
) -> Result<ImportReport, FederationError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let (format, rows) = parse_import(text, list);
    let tx = write_transaction(conn)?;
    let mut report = ImportReport {
        format,
        added: Vec::new(),
        already_present: 0,
        skipped: Vec::new(),
        suspended: Vec::new(),
    };
    let mut new_blocks = Rules::default();
    for row in rows {
        match row {
            ImportRow::Entry { pattern, note } => {
                if insert(&tx, list, &pattern, note.as_deref())? {
                    if list == List::Block {
                        new_blocks.insert(&pattern);
                    }
                    report.added.push(pattern.to_string());
                } else {
                    report.already_present += 1;
                }
            }
            ImportRow::Skipped(skipped) => report.skipped.push(skipped),
        }
    }
    if new_blocks.len() > 0 {
        report.suspended = suspend_where(&tx, |host| {
            new_blocks
                .entry_for(host)
                .map(|entry| format!("blocked by {entry} (import)"))
        })?;
    }
    tx.commit()?;
    Ok(report)
}

enum ImportRow {
    Entry {
        pattern: Pattern,
        note: Option<String>,
    },
    Skipped(SkippedLine),
}

fn parse_import(text: &str, list: List) -> (ImportFormat, Vec<ImportRow>) {
    let first = text.lines().map(str::trim).find(|l| !l.is_empty());
    let is_csv = first.is_some_and(|l| {
        let l = l.to_ascii_lowercase();
        l == "#domain" || l == "domain" || l.starts_with("#domain,") || l.starts_with("domain,")
    });
    if is_csv {
        (ImportFormat::MastodonCsv, parse_mastodon_csv(text, list))
    } else {
        (ImportFormat::Lines, parse_lines(text))
    }
}

fn parse_lines(text: &str) -> Vec<ImportRow> {
    let mut rows = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        rows.push(match Pattern::parse(line) {
            Ok(pattern) => ImportRow::Entry {
                pattern,
                note: None,
            },
            Err(e) => ImportRow::Skipped(SkippedLine {
                line: i + 1,
                text: clip(raw.trim()),
                reason: e.problem.to_string(),
            }),
        });
    }
    rows
}

fn parse_mastodon_csv(text: &str, list: List) -> Vec<ImportRow> {
    let mut records = csv_records(text).into_iter();
    let Some((_, Ok(header))) = records.next() else {
        return Vec::new();
    };
    let column = |name: &str| {
        header
            .iter()
            .position(|h| h.trim().trim_start_matches('#').eq_ignore_ascii_case(name))
    };
    let domain_at = column("domain").unwrap_or(0);
    let severity_at = column("severity");
    let comment_at = column("public_comment");
    let mut rows = Vec::new();
    for (line, fields) in records {
        let fields = match fields {
            Ok(fields) => fields,
            Err(reason) => {
                rows.push(ImportRow::Skipped(SkippedLine {
                    line,
                    text: String::new(),
                    reason,
                }));
                continue;
            }
        };
        let field = |i: Option<usize>| i.and_then(|i| fields.get(i)).map(|s| s.trim());
        let domain = field(Some(domain_at)).unwrap_or("");
        if domain.is_empty() && fields.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        let skip = |reason: &str| {
            ImportRow::Skipped(SkippedLine {
                line,
                text: clip(&fields.join(",")),
                reason: reason.to_string(),
            })
        };
        if field(severity_at).is_some_and(|s| s.eq_ignore_ascii_case("noop")) {
            rows.push(skip("severity noop: Mastodon does nothing with it either"));
            continue;
        }
        if domain.contains('*') {
            rows.push(skip(
                "obfuscated domain (contains '*'): the real name is unknown",
            ));
            continue;
        }
        match Pattern::parse(domain) {
            Ok(pattern) => {
                let pattern = match list {
                    List::Block => pattern.with_subdomains(),
                    List::Allow => pattern,
                };
                let note = field(comment_at).filter(|c| !c.is_empty()).map(clip);
                rows.push(ImportRow::Entry { pattern, note });
            }
            Err(e) => rows.push(skip(&e.problem.to_string())),
        }
    }
    rows
}

/// RFC 4180 records (read by the `csv` crate) with the 1-based line each starts on: quoted
/// fields may hold commas, doubled quotes and newlines (Mastodon's public comments do). A record
/// the reader cannot make sense of is kept as its error, so the report can name its line.
fn csv_records(text: &str) -> Vec<(usize, Result<Vec<String>, String>)> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut records = Vec::new();
    let mut record = csv::StringRecord::new();
    // Lines counted from byte offsets: after "\r\n" the reader may place a record at its "\n".
    let line_at = |byte: u64| {
        let bytes = text.as_bytes();
        let mut end = usize::try_from(byte).unwrap_or(usize::MAX).min(bytes.len());
        while bytes.get(end).is_some_and(|b| matches!(b, b'\r' | b'\n')) {
            end += 1;
        }
        1 + bytes[..end].iter().filter(|&&b| b == b'\n').count()
    };
    loop {
        let start = reader.position().byte();
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let at = record.position().map_or(start, |p| p.byte());
                let fields: Vec<String> = record.iter().map(str::to_string).collect();
                if !(fields.len() == 1 && fields[0].trim().is_empty()) {
                    records.push((line_at(at), Ok(fields)));
                }
            }
            Err(e) => {
                let at = e.position().map_or(start, |p| p.byte());
                // An I/O error would repeat forever; a bad record does not stop the reader.
                let stop = matches!(e.kind(), csv::ErrorKind::Io(_));
                records.push((line_at(at), Err(e.to_string())));
                if stop {
                    break;
                }
            }
        }
    }
    records
}

/// Keeps reports readable when a file holds junk.
fn clip(s: &str) -> String {
    const MAX: usize = 200;
    let head = crate::text::truncate_chars(s, MAX);
    if head.len() < s.len() {
        format!("{head}…")
    } else {
        s.to_string()
    }
}
