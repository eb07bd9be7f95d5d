//! Markdown files → drafts: finding the post files under `content/`, reading their front
//! matter, rendering them, and hashing the source so unchanged files are skipped.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::error::{PostError, Problem};
use super::post::{Attachment, hex_sha256, slugify, valid_slug};
use super::{Mention, Visibility, front_matter, markdown};
use crate::urls::Urls;

/// Bumped when rendering changes, so the next publish re-renders every post.
const RENDER_VERSION: &str = "1";

/// A post file parsed and rendered, ready to store.
#[derive(Debug, Clone)]
pub struct Draft {
    pub slug: String,
    pub source_path: String,
    pub source_hash: String,
    pub title: Option<String>,
    pub summary: Option<String>,
    pub content_html: String,
    pub visibility: Visibility,
    pub language: Option<String>,
    pub in_reply_to: Option<String>,
    pub quote: Option<String>,
    pub quotes: Option<crate::config::QuotePolicy>,
    pub sensitive: bool,
    pub tags: Vec<String>,
    pub mentions: Vec<Mention>,
    pub attachments: Vec<Attachment>,
    pub date: Option<OffsetDateTime>,
}

fn media_type(path: &str) -> Option<&'static str> {
    let ext = Path::new(path).extension()?.to_str()?.to_ascii_lowercase();
    Some(match ext.as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "avif" => "image/avif",
        _ => return None,
    })
}

/// Parses a `date` front matter value: a TOML datetime or a string, RFC 3339 or `YYYY-MM-DD`.
fn parse_date(value: &toml::Value) -> Option<OffsetDateTime> {
    let text = match value {
        toml::Value::Datetime(d) => d.to_string(),
        toml::Value::String(s) => s.clone(),
        _ => return None,
    };
    if let Ok(d) = OffsetDateTime::parse(&text, &Rfc3339) {
        return Some(d.to_offset(time::UtcOffset::UTC));
    }
    let date = time::Date::parse(
        text.get(..10)?,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .ok()?;
    (text.len() == 10).then(|| date.midnight().assume_utc())
}

/// Line (1-based) of the first line starting with `key` in the front matter, for messages.
fn line_of(text: &str, key: &str) -> usize {
    text.lines()
        .position(|l| l.trim_start().starts_with(key))
        .map_or(1, |i| i + 1)
}

/// What identifies a version of a post file: its bytes and the renderer's version.
pub fn source_hash(text: &str) -> String {
    let mut hashed = Vec::with_capacity(text.len() + 8);
    hashed.extend_from_slice(RENDER_VERSION.as_bytes());
    hashed.push(0);
    hashed.extend_from_slice(text.as_bytes());
    hex_sha256(&hashed)
}

/// The slug a file publishes under, from its front matter alone (no rendering); `None` for
/// drafts and files whose front matter does not parse (the full parse reports those).
fn quick_slug(rel: &str, text: &str) -> Option<String> {
    let (fm, _) = front_matter::split(text).ok()?;
    if fm.draft {
        return None;
    }
    Some(fm.slug.unwrap_or_else(|| slug_from_path(rel)))
}

fn slug_from_path(rel: &str) -> String {
    let stem = Path::new(rel)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    slugify(stem)
}

/// A post file as publishing found it: rendered because it is new or changed, or known unchanged
/// (same bytes as the live post with its slug), which skips Markdown rendering and sanitising.
#[derive(Debug, Clone)]
pub enum Loaded {
    Changed(Box<Draft>),
    Unchanged { slug: String },
}

impl Loaded {
    pub fn slug(&self) -> &str {
        match self {
            Loaded::Changed(d) => &d.slug,
            Loaded::Unchanged { slug } => slug,
        }
    }
}

/// Parses and renders one post file. `rel` is its path relative to the site directory.
pub fn parse_file(
    site_dir: &Path,
    rel: &str,
    text: &str,
    urls: &Urls,
) -> Result<Option<Draft>, Vec<Problem>> {
    let path = PathBuf::from(rel);
    let problem = |line: usize, message: String, fix: &str| Problem {
        path: path.clone(),
        line,
        message,
        fix: fix.to_string(),
    };
    let (fm, body) = front_matter::split(text).map_err(|e| {
        vec![Problem {
            path: path.clone(),
            line: e.line,
            message: e.message,
            fix: e.fix,
        }]
    })?;
    if fm.draft {
        return Ok(None);
    }
    let mut problems = Vec::new();
    let slug = match &fm.slug {
        Some(s) => s.clone(),
        None => slug_from_path(rel),
    };
    if !valid_slug(&slug) {
        problems.push(problem(
            line_of(text, "slug"),
            format!("the slug {slug:?} cannot be used in a URL"),
            "use lower-case letters, digits and dashes, e.g. slug = \"my-first-post\"",
        ));
    }
    let date = match &fm.date {
        None => None,
        Some(v) => match parse_date(v) {
            Some(d) => Some(d),
            None => {
                problems.push(problem(
                    line_of(text, "date"),
                    format!("cannot read the date {v}"),
                    "write it as date = 2026-11-22T10:30:00Z or date = \"2026-11-22\"",
                ));
                None
            }
        },
    };
    if let Some(lang) = &fm.language
        && (lang.is_empty()
            || lang.len() > 35
            || !lang.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
    {
        problems.push(problem(
            line_of(text, "language"),
            format!("{lang:?} is not a language tag"),
            "use a BCP 47 tag such as \"en\" or \"pt-BR\"",
        ));
    }
    if let Some(reply) = &fm.in_reply_to
        && url::Url::parse(reply).map_or(true, |u| !matches!(u.scheme(), "http" | "https"))
    {
        problems.push(problem(
            line_of(text, "in_reply_to"),
            format!("in_reply_to {reply:?} is not an http(s) URL"),
            "paste the URL of the post you answer",
        ));
    }
    if let Some(quote) = &fm.quote
        && url::Url::parse(quote).map_or(true, |u| {
            !matches!(u.scheme(), "http" | "https") || u.host_str().is_none()
        })
    {
        problems.push(problem(
            line_of(text, "quote"),
            format!("quote {quote:?} is not an absolute http(s) URL"),
            "paste the full address of the post you quote, e.g. quote = \"https://example.social/@bob/1\"",
        ));
    }
    for tag in &fm.tags {
        if tag.is_empty()
            || !tag
                .trim_start_matches('#')
                .chars()
                .all(|c| c.is_alphanumeric() || c == '_')
        {
            problems.push(problem(
                line_of(text, "tags"),
                format!("the tag {tag:?} has characters a hashtag cannot have"),
                "use letters, digits and underscores, e.g. tags = [\"rust\", \"fediverse\"]",
            ));
        }
    }
    let mut attachments = Vec::new();
    for image in &fm.images {
        let line =
            line_of(text, &format!("src = \"{}\"", image.src)).max(line_of(text, "[[images]]"));
        let clean = image.src.trim_start_matches('/');
        if clean.split('/').any(|c| c == ".." || c.is_empty()) || !clean.starts_with("media/") {
            problems.push(problem(
                line,
                format!("the image {:?} is not under media/", image.src),
                "put images in the site's media/ folder and write src = \"media/name.jpg\"",
            ));
            continue;
        }
        let Some(mt) = media_type(clean) else {
            problems.push(problem(
                line,
                format!(
                    "{:?} is not a JPEG, PNG, GIF, WebP or AVIF image",
                    image.src
                ),
                "convert it to one of those formats",
            ));
            continue;
        };
        let file = site_dir.join(clean);
        if !file.is_file() {
            problems.push(problem(
                line,
                format!("the image {} does not exist", file.display()),
                "check the file name, or copy the image into media/",
            ));
            continue;
        }
        if image.alt.trim().is_empty() {
            problems.push(problem(
                line,
                format!("the image {:?} has no alt text", image.src),
                "describe it for people who cannot see it: alt = \"…\"",
            ));
        }
        let size = imagesize::size(&file).ok();
        attachments.push(Attachment {
            path: clean.to_string(),
            media_type: mt.to_string(),
            alt: image.alt.chars().take(1500).collect(),
            width: size.as_ref().map(|s| s.width as u32),
            height: size.as_ref().map(|s| s.height as u32),
        });
    }
    if !problems.is_empty() {
        return Err(problems);
    }

    let rendered = markdown::render(body, urls);
    let mut tags = rendered.tags;
    for tag in &fm.tags {
        let tag = tag.trim_start_matches('#');
        if !tags.iter().any(|t| t.eq_ignore_ascii_case(tag)) {
            tags.push(tag.to_string());
        }
    }
    Ok(Some(Draft {
        slug,
        source_path: rel.to_string(),
        source_hash: source_hash(text),
        title: fm.title.filter(|t| !t.trim().is_empty()),
        summary: fm.summary.filter(|s| !s.trim().is_empty()),
        content_html: rendered.html,
        visibility: fm.visibility,
        language: fm.language,
        in_reply_to: fm.in_reply_to,
        quote: fm.quote,
        quotes: fm.quotes,
        sensitive: fm.sensitive,
        tags,
        mentions: rendered.mentions,
        attachments,
        date,
    }))
}

/// Every `.md` file under `content/`, sorted, as paths relative to the site directory. Files and
/// folders starting with `.` or `_` are skipped.
pub fn content_files(site_dir: &Path) -> Result<Vec<String>, PostError> {
    let mut out = Vec::new();
    let root = site_dir.join("content");
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && dir == root => return Ok(out),
            Err(reason) => return Err(PostError::Io { path: dir, reason }),
        };
        for entry in entries {
            let entry = entry.map_err(|reason| PostError::Io {
                path: dir.clone(),
                reason,
            })?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') || name.starts_with('_') {
                continue;
            }
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if name.ends_with(".md")
                && let Ok(rel) = path.strip_prefix(site_dir)
            {
                out.push(rel.to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    Ok(out)
}

/// One file, read and (when new or changed) parsed and rendered.
enum Read {
    Entry(Loaded),
    Skip,
    Problems(Vec<Problem>),
}

fn read_one(
    site_dir: &Path,
    rel: &str,
    urls: &Urls,
    live: &HashMap<String, String>,
) -> Result<Read, PostError> {
    let bytes = std::fs::read(site_dir.join(rel)).map_err(|reason| PostError::Io {
        path: site_dir.join(rel),
        reason,
    })?;
    let Ok(text) = String::from_utf8(bytes) else {
        return Ok(Read::Problems(vec![Problem {
            path: rel.into(),
            line: 1,
            message: "the file is not UTF-8 text".into(),
            fix: "save it as UTF-8".into(),
        }]));
    };
    Ok(match quick_slug(rel, &text) {
        Some(slug) if live.get(&slug) == Some(&source_hash(&text)) => {
            Read::Entry(Loaded::Unchanged { slug })
        }
        _ => match parse_file(site_dir, rel, &text, urls) {
            Ok(Some(draft)) => Read::Entry(Loaded::Changed(Box::new(draft))),
            Ok(None) => Read::Skip,
            Err(p) => Read::Problems(p),
        },
    })
}

/// `f` over `items` on every core (Markdown rendering is most of a first publish, building
/// each new post's activity much of the rest: issue 15), results in the order of `items`.
pub fn map_on_all_cores<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    const CHUNK: usize = 64;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads == 1 || items.len() <= CHUNK {
        return items.iter().map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let mut chunks: Vec<(usize, Vec<R>)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(chunk) = items.chunks(CHUNK).nth(i) else {
                            break;
                        };
                        done.push((i, chunk.iter().map(&f).collect()));
                    }
                    done
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    chunks.sort_by_key(|(i, _)| *i);
    chunks.into_iter().flat_map(|(_, r)| r).collect()
}

/// Reads every post file and renders those that are new or changed: `live` maps the slugs of
/// live posts to their source hash. Files are parsed in parallel; all problems are collected,
/// in file order, before anything is written.
pub fn load_drafts(
    site_dir: &Path,
    urls: &Urls,
    live: &HashMap<String, String>,
) -> Result<Vec<Loaded>, PostError> {
    let mut loaded = Vec::new();
    let mut problems = Vec::new();
    let mut seen: HashMap<String, String> = HashMap::new();
    let files = content_files(site_dir)?;
    let read = map_on_all_cores(&files, |rel| read_one(site_dir, rel, urls, live));
    for (rel, result) in files.iter().zip(read) {
        let entry = match result? {
            Read::Entry(entry) => entry,
            Read::Skip => continue,
            Read::Problems(mut p) => {
                problems.append(&mut p);
                continue;
            }
        };
        if let Some(other) = seen.insert(entry.slug().to_string(), rel.clone()) {
            problems.push(Problem {
                path: rel.clone().into(),
                line: 1,
                message: format!("the slug {:?} is also used by {other}", entry.slug()),
                fix: "give one of them another slug = \"…\" in its front matter".into(),
            });
        }
        loaded.push(entry);
    }
    if problems.is_empty() {
        Ok(loaded)
    } else {
        Err(PostError::Invalid(problems))
    }
}
