//! A status as a Markdown file in `content/posts/`: the API writes, rewrites and removes the
//! same files the owner edits by hand, and publishing does the rest. Front matter is written
//! with the `toml` crate (never by string pasting), and a rewrite keeps every key it does not
//! manage (a title, tags, a date the owner set). Writes go to a dot-file beside the target (the
//! publisher skips those) and are renamed into place, so a half-written post is never published.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use toml::{Table, Value};

use super::error::ApiError;
use crate::posts::Visibility;

/// What an app sends for a status.
#[derive(Debug, Clone, Default)]
pub struct Input {
    pub text: String,
    pub spoiler: Option<String>,
    pub visibility: Visibility,
    pub language: Option<String>,
    pub sensitive: bool,
    pub in_reply_to: Option<String>,
    /// What it quotes (front matter `quote`): a post's URI.
    pub quote: Option<String>,
    /// (path under the site, alt text)
    pub images: Vec<(String, String)>,
}

fn posts_dir(site_dir: &Path) -> PathBuf {
    site_dir.join("content/posts")
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> ApiError + '_ {
    move |e| ApiError::Internal(format!("{}: {e}", path.display()))
}

/// Sets the keys the API manages; the others stay as they are.
fn apply(table: &mut Table, input: &Input, edit: bool) {
    let mut set = |key: &str, value: Option<Value>| match value {
        Some(v) => {
            table.insert(key.to_string(), v);
        }
        None => {
            table.remove(key);
        }
    };
    set("summary", input.spoiler.clone().map(Value::String));
    set("language", input.language.clone().map(Value::String));
    set("sensitive", input.sensitive.then_some(Value::Boolean(true)));
    let images: Vec<Value> = input
        .images
        .iter()
        .map(|(src, alt)| {
            let mut t = Table::new();
            t.insert("src".into(), Value::String(src.clone()));
            t.insert("alt".into(), Value::String(alt.clone()));
            Value::Table(t)
        })
        .collect();
    set(
        "images",
        (!images.is_empty()).then_some(Value::Array(images)),
    );
    // Mastodon keeps a status's visibility and reply target on edit.
    if !edit {
        set(
            "visibility",
            Some(Value::String(input.visibility.as_str().into())),
        );
        set("in_reply_to", input.in_reply_to.clone().map(Value::String));
        set("quote", input.quote.clone().map(Value::String));
    }
}

fn file_text(table: &Table, body: &str) -> Result<String, ApiError> {
    let front = toml::to_string(table).map_err(ApiError::internal)?;
    let mut body = body.trim_end().to_string();
    body.push('\n');
    Ok(format!("+++\n{front}+++\n{body}"))
}

/// Writes `text` into `path` through a dot-file in the same folder and a rename; with
/// `new_only`, an existing file is never replaced.
fn write_atomic(path: &Path, text: &str, new_only: bool) -> Result<bool, ApiError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".api-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(io(dir))?;
    tmp.write_all(text.as_bytes()).map_err(io(path))?;
    tmp.as_file().sync_all().map_err(io(path))?;
    if new_only {
        match tmp.persist_noclobber(path) {
            Ok(_) => Ok(true),
            Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(io(path)(e.error)),
        }
    } else {
        tmp.persist(path).map_err(|e| io(path)(e.error))?;
        Ok(true)
    }
}

/// A new post file for a status; returns its path relative to the site and its slug. The slug
/// is the time of writing (`2026-11-29-104512`, then `-2`, `-3`… when `taken` says it is used).
pub fn create(
    site_dir: &Path,
    input: &Input,
    now: time::OffsetDateTime,
    taken: impl Fn(&str) -> bool,
) -> Result<(String, String), ApiError> {
    let dir = posts_dir(site_dir);
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    let now = now.replace_nanosecond(0).unwrap_or(now);
    let base = format!(
        "{}-{:02}{:02}{:02}",
        now.date(),
        now.hour(),
        now.minute(),
        now.second()
    );
    let mut table = Table::new();
    table.insert("date".into(), Value::String(crate::times::rfc3339(now)));
    for n in 1..1000 {
        let slug = if n == 1 {
            base.clone()
        } else {
            format!("{base}-{n}")
        };
        if taken(&slug) {
            continue;
        }
        table.insert("slug".into(), Value::String(slug.clone()));
        apply(&mut table, input, false);
        let rel = format!("content/posts/{slug}.md");
        if write_atomic(&site_dir.join(&rel), &file_text(&table, &input.text)?, true)? {
            return Ok((rel, slug));
        }
    }
    Err(ApiError::Internal(format!(
        "no free file name for {base} in {}",
        dir.display()
    )))
}

/// The front matter table and body of a post file.
fn read(site_dir: &Path, rel: &str) -> Result<(Table, String), ApiError> {
    let path = site_dir.join(rel);
    let text = std::fs::read_to_string(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ApiError::NotFound("Record not found"),
        _ => io(&path)(e),
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let Some((front, body)) = crate::posts::front_matter::raw_parts(text) else {
        return Ok((Table::new(), text.to_string()));
    };
    let table: Table = front.parse().map_err(|e| {
        ApiError::Unprocessable(format!("{rel}: the front matter does not parse: {e}"))
    })?;
    Ok((table, body.to_string()))
}

/// Rewrites a post file with an edited status, keeping what the API does not manage.
pub fn rewrite(site_dir: &Path, rel: &str, input: &Input) -> Result<(), ApiError> {
    let (mut table, _) = read(site_dir, rel)?;
    apply(&mut table, input, true);
    write_atomic(&site_dir.join(rel), &file_text(&table, &input.text)?, false)?;
    Ok(())
}

/// The text and content warning as written (`GET /api/v1/statuses/:id/source`).
pub fn source(site_dir: &Path, rel: &str) -> Result<(String, String), ApiError> {
    let (table, body) = read(site_dir, rel)?;
    let spoiler = table
        .get("summary")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    Ok((body.trim().to_string(), spoiler))
}

/// Changes the alt text of one image of a post file.
pub fn set_alt(site_dir: &Path, rel: &str, src: &str, alt: &str) -> Result<(), ApiError> {
    let (mut table, body) = read(site_dir, rel)?;
    if let Some(Value::Array(images)) = table.get_mut("images") {
        for image in images.iter_mut() {
            if let Value::Table(t) = image
                && t.get("src").and_then(Value::as_str) == Some(src)
            {
                t.insert("alt".into(), Value::String(alt.to_string()));
            }
        }
    }
    let mut text = file_text(&table, "")?;
    text.truncate(text.len() - 1);
    text.push_str(&body);
    write_atomic(&site_dir.join(rel), &text, false)?;
    Ok(())
}

/// Removes a post file (publishing then federates the Delete).
pub fn remove(site_dir: &Path, rel: &str) -> Result<(), ApiError> {
    let path = site_dir.join(rel);
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io(&path)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_becomes_a_file_the_publisher_reads_and_an_edit_keeps_the_owners_keys() {
        let tmp = tempfile::tempdir().unwrap();
        let input = Input {
            text: "庭に雨 🌧️ — مطر في الحديقة\n\n#garden".into(),
            spoiler: Some("weather \"talk\"\n+++".into()),
            visibility: Visibility::Followers,
            language: Some("ja".into()),
            images: vec![("media/api/x.png".into(), "a wet rose, ٣ petals".into())],
            ..Input::default()
        };
        let now = time::macros::datetime!(2026-11-29 10:45:12 UTC);
        let (rel, slug) = create(tmp.path(), &input, now, |s| s == "2026-11-29-104512").unwrap();
        assert_eq!(slug, "2026-11-29-104512-2");
        let text = std::fs::read_to_string(tmp.path().join(&rel)).unwrap();
        let (fm, body) = crate::posts::front_matter::split(&text).unwrap();
        assert_eq!(fm.summary.as_deref(), Some("weather \"talk\"\n+++"));
        assert_eq!(fm.visibility, Visibility::Followers);
        assert_eq!(fm.images[0].alt, "a wet rose, ٣ petals");
        assert_eq!(body.trim(), input.text);
        // The owner adds a title by hand; an edit from an app keeps it.
        std::fs::write(
            tmp.path().join(&rel),
            text.replacen("+++\n", "+++\ntitle = \"Rain\"\n", 1),
        )
        .unwrap();
        let edited = Input {
            text: "edited ✍️".into(),
            ..input.clone()
        };
        rewrite(tmp.path(), &rel, &edited).unwrap();
        let text = std::fs::read_to_string(tmp.path().join(&rel)).unwrap();
        let (fm, body) = crate::posts::front_matter::split(&text).unwrap();
        assert_eq!(fm.title.as_deref(), Some("Rain"));
        assert_eq!(fm.slug.as_deref(), Some(slug.as_str()));
        assert_eq!(body.trim(), "edited ✍️");
        assert_eq!(source(tmp.path(), &rel).unwrap().0, "edited ✍️");
        set_alt(tmp.path(), &rel, "media/api/x.png", "a rose after rain").unwrap();
        let text = std::fs::read_to_string(tmp.path().join(&rel)).unwrap();
        let (fm, body) = crate::posts::front_matter::split(&text).unwrap();
        assert_eq!(fm.images[0].alt, "a rose after rain");
        assert_eq!(body.trim(), "edited ✍️");
    }
}
