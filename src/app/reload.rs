//! hortus.toml edited by hand while `hortus serve` runs (issue 13). The serve process watches
//! the file as it watches content/ (`app::watch_content`) and, once the editor is done saving,
//! reads it again. A file with a mistake changes nothing: the error names the file, the line
//! and the fix, and the running settings stay. A good file's `[user]` table (the profile) goes
//! live through the same path as an app's `update_credentials` (`api::profile::apply`): pages
//! show it at once, and followers get an `Update` of the actor only when the actor document
//! changed. What is built once at start (the address, `base_url`, the federation settings…)
//! is named in a warning saying a restart is needed.

use std::path::Path;
use std::sync::Arc;

use serde_json::Value;

use super::watch::debounced;
use crate::config::{CONFIG_FILE, Config};
use crate::web::AppState;

/// Keeps hortus.toml watched while it lives; its thread ends when it is dropped.
pub struct ConfigWatcher {
    _watcher: notify::RecommendedWatcher,
}

/// Calls `on_change` (on the watcher's own thread) once hortus.toml has been quiet for
/// `app::WATCH_QUIET` after a change. The site folder is watched, not the file: editors save
/// by writing a new file and renaming it over the old one, which a watch on the old file's
/// inode would never see.
pub fn watch_config(
    dir: &Path,
    on_change: impl Fn() + Send + 'static,
) -> std::io::Result<ConfigWatcher> {
    use notify::{EventKind, RecursiveMode, Watcher};

    // The database beside it changes all the time, and reading the file is an event too.
    fn touches_config(event: &notify::Result<notify::Event>) -> bool {
        match event {
            Ok(e) => {
                !matches!(e.kind, EventKind::Access(_))
                    && e.paths
                        .iter()
                        .any(|p| p.file_name().is_some_and(|n| n == CONFIG_FILE))
            }
            Err(_) => true,
        }
    }
    let (tx, rx) = std::sync::mpsc::channel::<notify::Result<notify::Event>>();
    let cannot =
        |e: notify::Error| std::io::Error::other(format!("cannot watch {CONFIG_FILE}: {e}"));
    let mut watcher = notify::recommended_watcher(tx).map_err(cannot)?;
    watcher
        .watch(dir, RecursiveMode::NonRecursive)
        .map_err(cannot)?;
    debounced("hortus-config", rx, touches_config, on_change)?;
    Ok(ConfigWatcher { _watcher: watcher })
}

/// Reads hortus.toml again and applies what can change live; logs what happened. Never fails:
/// the running server goes on with what it had.
pub async fn reload(dir: &Path, state: &Arc<AppState>) {
    let file = dir.join(CONFIG_FILE);
    let dir = dir.to_path_buf();
    let loaded = match tokio::task::spawn_blocking(move || Config::load(&dir)).await {
        Ok(loaded) => loaded,
        Err(e) => {
            tracing::error!(error = %e, "reading {CONFIG_FILE} again");
            return;
        }
    };
    let new = match loaded {
        Ok(new) => new,
        Err(e) => {
            tracing::error!(
                "{e}\n  the running server keeps the settings it had until the file is fixed"
            );
            return;
        }
    };
    for key in needs_restart(&state.ctx.config, &new) {
        tracing::warn!(
            "{}: `{key}` changed: it takes effect when `hortus serve` is restarted",
            file.display()
        );
    }
    let config = with_new_profile(&state.live(), new);
    match crate::api::profile::apply(state, config).await {
        Ok(inboxes) => tracing::info!(
            inboxes,
            "{CONFIG_FILE} read again: the profile shown is the file's"
        ),
        Err(e) => tracing::error!(error = %e, "applying {CONFIG_FILE}"),
    }
}

/// The running config with the file's `[user]` table, except `name`: every id is built from
/// it (as from `base_url`), so it changes only with a restart.
fn with_new_profile(running: &Config, new: Config) -> Config {
    let mut config = running.clone();
    let name = std::mem::take(&mut config.user.name);
    config.user = new.user;
    config.user.name = name;
    config
}

/// The keys (as written in hortus.toml) whose new value the running server does not use:
/// everything outside `[user]`, and `user.name`. Compared with what the server started with.
fn needs_restart(started: &Config, new: &Config) -> Vec<String> {
    let (Ok(Value::Object(a)), Ok(Value::Object(b))) =
        (serde_json::to_value(started), serde_json::to_value(new))
    else {
        return Vec::new();
    };
    let mut keys: Vec<String> = a.keys().chain(b.keys()).cloned().collect();
    keys.sort();
    keys.dedup();
    let mut changed = Vec::new();
    for key in keys {
        let (old, new) = (a.get(&key), b.get(&key));
        match (key.as_str(), old, new) {
            ("user", Some(old), Some(new)) if old.get("name") != new.get("name") => {
                changed.push("user.name".to_string());
            }
            ("user", Some(_), Some(_)) => {}
            (_, Some(Value::Object(old)), Some(Value::Object(new))) => {
                let mut sub: Vec<&String> = old.keys().chain(new.keys()).collect();
                sub.sort();
                sub.dedup();
                changed.extend(
                    sub.into_iter()
                        .filter(|k| old.get(*k) != new.get(*k))
                        .map(|k| format!("{key}.{k}")),
                );
            }
            _ if old != new => changed.push(key),
            _ => {}
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    const SITE: &str = "domain = \"example.net\"\nbase_url = \"https://example.net\"\n\n[user]\nname = \"alice\"\ndisplay_name = \"Alice\"\n";

    fn parse(text: &str) -> Config {
        Config::parse(text, Path::new("hortus.toml")).unwrap()
    }

    #[test]
    fn only_what_is_built_at_start_needs_a_restart() {
        let started = parse(SITE);
        let profile = parse(&SITE.replace("\"Alice\"", "\"アリス 🌷 أليس\""));
        assert!(needs_restart(&started, &profile).is_empty());
        let moved = parse(
            &SITE
                .replace("https://example.net", "https://other.example")
                .replace("name = \"alice\"", "name = \"alicia\"")
                .replace("[user]", "listen = \"127.0.0.1:9999\"\n\n[user]"),
        );
        assert_eq!(
            needs_restart(&started, &moved),
            ["base_url", "listen", "user.name"]
        );
        let quotes = parse(&format!("{SITE}\n[site]\nquotes = \"nobody\"\n"));
        assert_eq!(needs_restart(&started, &quotes), ["site.quotes"]);
    }

    #[test]
    fn the_profile_goes_live_but_never_the_name() {
        let running = parse(SITE);
        let new = parse(
            &SITE
                .replace("\"Alice\"", "\"Ａｌｉｃｅ ✿\"")
                .replace("name = \"alice\"", "name = \"bob\"")
                .replace("https://example.net\"", "https://b.example\""),
        );
        let live = with_new_profile(&running, new);
        assert_eq!(live.user.display_name, "Ａｌｉｃｅ ✿");
        assert_eq!(live.user.name, "alice");
        assert_eq!(live.base_url.as_str(), "https://example.net/");
    }
}
