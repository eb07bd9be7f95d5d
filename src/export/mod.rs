//! `hortus export OUT`: the public site and its ActivityPub documents as plain files, with the
//! URLs `hortus serve` answers, plus configuration for nginx, Caddy and Netlify-style hosts.
//!
//! - `plan` lists every public URL and the file it becomes (the layout is documented there).
//! - `render` asks the site's own handlers for each one, in process, so the bytes are the live
//!   server's.
//! - `tree` writes incrementally: only changed files, stale ones removed, a manifest kept.
//! - `deps` knows which documents a change touches, so only those are rendered.
//! - `hosts` generates the web-server configurations.
//!
//! Followers-only posts never enter the plan. Everything exported is public to anyone: a
//! static host cannot check HTTP signatures, so `signed_fetch` needs `hortus serve` in front.

pub mod deps;
pub mod fingerprint;
pub mod hosts;
mod manifest;
pub mod plan;
pub mod render;
pub mod tree;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

use crate::app::Site;
use hosts::HostSpec;
use plan::Plan;
use render::Rendered;
use tree::{Outcome, Tree};

/// Where the generated configurations are written, under the output directory.
pub const NGINX_CONF: &str = ".hortus/nginx.conf";
pub const CADDYFILE: &str = ".hortus/Caddyfile";
pub const HEADERS: &str = "_headers";
pub const REDIRECTS: &str = "_redirects";

#[derive(Debug, Clone, Default)]
pub struct ExportOptions {
    pub out: PathBuf,
    /// The directory the web server will read [default: `out`, absolute].
    pub root: Option<PathBuf>,
    /// nginx `listen` / Caddy `bind` [default: from `base_url`, else 80].
    pub listen: Option<String>,
    /// Where `hortus serve` answers [default: `listen` in hortus.toml].
    pub upstream: Option<String>,
    /// Write into a non-empty directory that holds no earlier export.
    pub force: bool,
    /// Draw a progress bar on stderr.
    pub progress: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Tree(#[from] tree::TreeError),
    #[error(transparent)]
    Plan(#[from] plan::PlanError),
    #[error(transparent)]
    Render(#[from] render::RenderError),
    #[error(transparent)]
    App(#[from] crate::app::AppError),
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
}

/// What an export did.
#[derive(Debug, Clone, Default)]
pub struct ExportReport {
    pub out: PathBuf,
    /// Files written (new or changed), sorted.
    pub written: Vec<String>,
    pub unchanged: usize,
    /// Files an earlier export wrote that are no longer part of the site, sorted.
    pub removed: Vec<String>,
    /// Files in the export, and their total size.
    pub files: usize,
    pub bytes: u64,
    /// Pages and documents rendered by the handlers (media not included): those a change since
    /// the last export touched (`deps`), all of them into an empty directory, 0 when nothing
    /// changed (`fingerprint`).
    pub documents: usize,
    pub seconds: f64,
    pub warnings: Vec<String>,
}

impl ExportReport {
    /// One JSON object, for scripts (a CDN purge needs exactly `written` and `removed`).
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "out": self.out,
            "written": self.written.len(),
            "unchanged": self.unchanged,
            "removed": self.removed.len(),
            "files": self.files,
            "bytes": self.bytes,
            "documents": self.documents,
            "seconds": (self.seconds * 1000.0).round() / 1000.0,
            "written_paths": self.written,
            "removed_paths": self.removed,
            "warnings": self.warnings,
        })
    }

    /// For a person at a terminal: the changes (the first few) and the counts.
    pub fn summary(&self) -> String {
        const SHOWN: usize = 20;
        let mut out = String::new();
        for (label, paths) in [("written", &self.written), ("removed", &self.removed)] {
            for p in paths.iter().take(SHOWN) {
                out.push_str(&format!("{label:8} {p}\n"));
            }
            if paths.len() > SHOWN {
                out.push_str(&format!("{label:8} … and {} more\n", paths.len() - SHOWN));
            }
        }
        out.push_str(&format!(
            "Exported {} files ({:.1} MB) to {} in {:.2} s: {} written, {} unchanged, {} removed.\n",
            self.files,
            self.bytes as f64 / 1e6,
            self.out.display(),
            self.seconds,
            self.written.len(),
            self.unchanged,
            self.removed.len()
        ));
        out
    }
}

/// Exports the site as it is in the database (run `publish` first to include file changes).
pub fn export(site: &Site, opts: &ExportOptions) -> Result<ExportReport, ExportError> {
    let started = Instant::now();
    let phase =
        |name: &str| tracing::debug!(ms = started.elapsed().as_millis() as u64, "export: {name}");
    let base = site.urls.base().to_string();
    let tree = Tree::open(&opts.out, &base, opts.force)?;
    phase("read the manifest and listed the kept files");
    let out = std::fs::canonicalize(tree.root()).unwrap_or_else(|_| tree.root().to_path_buf());
    let mut warnings = tree.warnings().to_vec();
    if site.config.federation.signed_fetch {
        warnings.push(
            "signed_fetch = true, but files on a static host are public to anyone: the exported \
             Notes and outbox can be read without a signature. Serve the JSON from `hortus serve` \
             if it must stay gated (see the README)."
                .to_string(),
        );
    }

    let conn = crate::db::open(&site.db_path())?;
    // The plan and the keys read every post's row (not its HTML, but rows share pages with
    // it): mapped, the file is read in place instead of copied page by page through `pread`,
    // a fifth of a one-edit export before (issue 15). Read-only use; SQLite falls back to
    // `pread` where mapping is unavailable.
    let _ = conn.pragma_update(None, "mmap_size", 1i64 << 30);
    let options = format!(
        "{:?}",
        (&opts.out, &opts.root, &opts.listen, &opts.upstream)
    );
    let print = fingerprint::of_site(&conn, &site.dir, &options);
    if let Some(files) = print.as_ref().and_then(|s| tree.unchanged_since(s)) {
        // Nothing the export depends on moved: what is on disk is this export.
        return Ok(ExportReport {
            out,
            written: Vec::new(),
            unchanged: files.len(),
            removed: Vec::new(),
            files: files.len(),
            bytes: files.values().map(|e| e.len).sum(),
            documents: 0,
            seconds: started.elapsed().as_secs_f64(),
            warnings,
        });
    }
    phase("fingerprinted the site");
    let plan = plan::plan(&conn, &site.config, &site.urls, &site.dir)?;
    phase("planned");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ExportError::Runtime)?;
    // The keys are read on their own thread while the site starts (keys, pools): neither
    // waits for the other.
    let per_page = site.config.site.posts_per_page;
    let (keys, ctx) = std::thread::scope(|scope| {
        let plan = &plan;
        let files = print.as_ref().map(|p| p.files.clone());
        let keys = scope.spawn(move || {
            let keys = files.map(|files| deps::keys(&conn, plan, per_page, &files));
            drop(conn);
            keys
        });
        // Every page is rendered once: the serving cache would only add work (web::cache).
        let ctx = rt.block_on(crate::app::context(site));
        (keys.join(), ctx)
    });
    let state = std::sync::Arc::new(crate::web::AppState::uncached(ctx?));
    let keys = match keys {
        Ok(Some(Ok(keys))) => Some(keys),
        Ok(Some(Err(e))) => {
            warnings.push(format!("rendering everything: {e}"));
            None
        }
        Ok(None) | Err(_) => None,
    };
    phase("keyed and started the site");
    let progress = if opts.progress {
        ProgressBar::with_draw_target(
            Some((plan.docs.len() + plan.media.len()) as u64),
            ProgressDrawTarget::stderr(),
        )
    } else {
        ProgressBar::hidden()
    };
    progress.set_style(
        ProgressStyle::with_template("{prefix:>9} [{bar:40}] {pos}/{len} {per_sec} {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    progress.set_prefix("exporting");

    // Documents kept from the last export (pages and Notes of unchanged posts): what they are
    // made of did not change and their file is still there. The rest is rendered.
    let mut rendered: Vec<Option<Rendered>> = plan
        .docs
        .iter()
        .enumerate()
        .map(|(i, doc)| {
            let key = keys.as_ref()?.get(i)?;
            let old = tree.kept(&doc.file)?;
            if old.key.as_ref() != Some(key) {
                return None;
            }
            let content_type = match &old.content_type {
                Some(t) => std::borrow::Cow::Owned(t.clone()),
                None => std::borrow::Cow::Borrowed(deps::guess_type(&doc.file)),
            };
            Some(Rendered {
                file: doc.file.clone(),
                content_type,
                entry: old.entry,
                outcome: Outcome::Unchanged,
            })
        })
        .collect();
    let todo: Vec<plan::Doc> = plan
        .docs
        .iter()
        .zip(&rendered)
        .filter(|(_, r)| r.is_none())
        .map(|(d, _)| d.clone())
        .collect();
    let documents = todo.len();
    // Once for all kept documents: a tick each (a lock and a clock read) added up over 21,000.
    progress.inc((plan.docs.len() - documents) as u64);
    let media: Vec<String> = plan.media.iter().map(|m| format!("media/{m}")).collect();
    tree.begin(
        plan.docs
            .iter()
            .map(|d| d.file.as_str())
            .chain(media.iter().map(String::as_str)),
    )?;
    phase("kept");
    // A post's blocks of text are asked for by its page, its Note and its outbox page: parsed
    // once for all three while the export renders (`text::BlocksMemo`).
    let memo = crate::text::BlocksMemo::start();
    let mut fresh = render::render_all(&state, &todo, &tree, &|| progress.inc(1))?.into_iter();
    drop(memo);
    // Nothing an export renders connects anywhere: the client (and the CA bundle it loads) is
    // built on first use, so tests/export*.rs fail here if a page starts to need it.
    debug_assert!(
        !state.ctx.http.is_built(),
        "the export built the HTTP client"
    );
    drop(state);
    for slot in rendered.iter_mut().filter(|r| r.is_none()) {
        *slot = fresh.next();
    }
    let rendered: Vec<Rendered> = rendered.into_iter().flatten().collect();

    // In the plan's order: nothing reads them by path here (an ordered map of 21,000 paths was
    // a tenth of a one-edit export, issue 15).
    let mut files: Vec<(String, tree::Entry)> =
        Vec::with_capacity(rendered.len() + plan.media.len() + HOST_FILES.len());
    let mut written = Vec::new();
    let mut unchanged = 0;
    let mut record = |file: String, entry: tree::Entry, outcome: Outcome| {
        match outcome {
            Outcome::Written => written.push(file.clone()),
            Outcome::Unchanged => unchanged += 1,
        }
        files.push((file, entry));
    };
    for r in &rendered {
        record(r.file.clone(), r.entry, r.outcome);
    }
    for m in &plan.media {
        let file = format!("media/{m}");
        let (entry, outcome) = tree.put_file(&file, &site.dir.join("media").join(m))?;
        record(file, entry, outcome);
        progress.inc(1);
    }
    progress.finish_and_clear();
    phase("rendered");

    // The host files list every document (10,000 Notes): rendering and hashing them was a fifth
    // of a one-edit export (issue 15). Keyed on what they are made of, they are kept while it
    // holds, as documents are.
    let host_key = print
        .as_ref()
        .filter(|_| keys.is_some())
        .map(|p| hosts_key(&p.files, &out, &plan, &rendered));
    let kept_hosts: Vec<Option<tree::Entry>> = HOST_FILES
        .iter()
        .map(|file| {
            let old = tree.kept(file)?;
            (host_key.is_some() && old.key == host_key).then_some(old.entry)
        })
        .collect();
    if kept_hosts.iter().all(Option::is_some) {
        for (file, entry) in HOST_FILES.iter().zip(kept_hosts.into_iter().flatten()) {
            record(file.to_string(), entry, Outcome::Unchanged);
        }
    } else {
        let spec = host_spec(site, opts, &out, &plan, &rendered);
        for (file, text) in HOST_FILES.iter().zip([
            hosts::nginx::render(&spec),
            hosts::caddy::render(&spec),
            hosts::netlify::headers(&spec),
            hosts::netlify::redirects(&spec),
        ]) {
            let (entry, outcome) = tree.put(file, text.as_bytes())?;
            record(file.to_string(), entry, outcome);
        }
    }
    phase("wrote the host files");

    let bytes = files.iter().map(|(_, e)| e.len).sum();
    let count = files.len();
    // Each document's key and content type (when its name does not say it), for the next one.
    let mut doc_keys: HashMap<&str, (tree::Key, Option<&str>)> = keys
        .as_ref()
        .map(|keys| {
            plan.docs
                .iter()
                .zip(keys)
                .zip(&rendered)
                .map(|((doc, key), r)| {
                    let t = (r.content_type != deps::guess_type(&r.file))
                        .then_some(r.content_type.as_ref());
                    (doc.file.as_str(), (*key, t))
                })
                .collect()
        })
        .unwrap_or_default();
    if let Some(key) = host_key {
        doc_keys.extend(HOST_FILES.iter().map(|f| (*f, (key, None))));
    }
    let site_print = print.filter(|_| keys.is_some());
    let removed = tree.finish(files, site_print, &doc_keys)?;
    phase("finished");
    written.sort();
    Ok(ExportReport {
        out,
        written,
        unchanged,
        removed,
        files: count,
        bytes,
        documents,
        seconds: started.elapsed().as_secs_f64(),
        warnings,
    })
}

/// The generated configurations, in the order `export` writes them.
const HOST_FILES: [&str; 4] = [NGINX_CONF, CADDYFILE, HEADERS, REDIRECTS];

/// Whether a host must be told about `doc` (its content type is not the one its name implies).
fn host_document(doc: &plan::Doc, r: &Rendered) -> bool {
    doc.status == 200
        && (r.file.ends_with(".json") || r.file.ends_with(".xml"))
        && !r.file.starts_with("static/")
}

/// A key of everything the host files are made of but the site's files (`files`: hortus.toml,
/// the binary, the options): the output directory, the Gone and WebFinger lists, each
/// document a host is told about with its URL and content type (as `host_spec` reads them).
fn hosts_key(files: &str, out: &std::path::Path, plan: &Plan, rendered: &[Rendered]) -> tree::Key {
    let mut h = openssl::sha::Sha256::new();
    let mut field = |bytes: &[u8]| {
        // Length-prefixed, so two fields never run into each other.
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    field(files.as_bytes());
    field(out.as_os_str().as_encoded_bytes());
    for g in &plan.gone {
        field(g.path.as_bytes());
        field(g.stem.as_bytes());
        field(&[u8::from(g.page)]);
    }
    for w in &plan.webfinger {
        field(w.account.as_bytes());
        field(w.file.as_bytes());
        for url in &w.urls {
            field(url.as_bytes());
        }
    }
    for (doc, r) in plan.docs.iter().zip(rendered) {
        if host_document(doc, r) {
            field(doc.url.as_bytes());
            field(r.file.as_bytes());
            field(r.content_type.as_bytes());
        }
    }
    crate::db::digest::short(h.finish())
}

fn host_spec(
    site: &Site,
    opts: &ExportOptions,
    out: &std::path::Path,
    plan: &Plan,
    rendered: &[Rendered],
) -> HostSpec {
    let root = opts.root.clone().unwrap_or_else(|| out.to_path_buf());
    // Documents whose content type a host would not guess from the file name.
    let documents = plan
        .docs
        .iter()
        .zip(rendered)
        .filter(|(d, r)| host_document(d, r))
        .map(|(d, r)| {
            let path = d.url.split('?').next().unwrap_or(&d.url).to_string();
            (path, r.file.clone(), r.content_type.to_string())
        })
        .collect();
    HostSpec {
        base_url: site.config.base_url.clone(),
        user: site.config.user.name.clone(),
        root,
        listen: opts
            .listen
            .clone()
            .unwrap_or_else(|| hosts::default_listen(&site.config.base_url)),
        upstream: hosts::upstream_url(opts.upstream.as_deref().unwrap_or(&site.config.listen)),
        gone: plan.gone.clone(),
        webfinger: plan.webfinger.clone(),
        documents,
    }
}
