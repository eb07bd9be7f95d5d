//! The `hortus` binary run on a site directory, as the owner runs it from a shell.

use std::path::Path;
use std::process::{Command, Output};

/// Runs `hortus --dir DIR ARGS…` with extra environment variables (e.g. `EDITOR`).
pub fn hortus_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hortus"));
    cmd.arg("--dir")
        .arg(dir)
        .args(args)
        .env_remove("HORTUS_DIR");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run hortus")
}

/// Runs `hortus --dir DIR ARGS…`.
pub fn hortus(dir: &Path, args: &[&str]) -> Output {
    hortus_env(dir, args, &[])
}

/// Runs the command, which must succeed; its standard output.
pub fn hortus_ok(dir: &Path, args: &[&str]) -> String {
    let out = hortus(dir, args);
    assert!(
        out.status.success(),
        "hortus {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// Runs the command, which must fail; its standard error.
pub fn hortus_err(dir: &Path, args: &[&str]) -> String {
    let out = hortus(dir, args);
    assert!(!out.status.success(), "hortus {args:?} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The text of the counts line under a post in `html`, e.g. "2 replies 1 like 0 boosts 0
/// quotes" (tags dropped, whitespace collapsed); empty when the page has none.
pub fn counts(html: &str) -> String {
    let Some(start) = html.find("<ul class=\"counts\"") else {
        return String::new();
    };
    let end = html[start..]
        .find("</ul>")
        .map_or(html.len(), |e| start + e);
    let mut text = String::new();
    let mut in_tag = false;
    for c in html[start..end].chars() {
        match c {
            '<' => {
                in_tag = true;
                text.push(' ');
            }
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
