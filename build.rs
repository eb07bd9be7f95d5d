//! Link settings for the `hortus` binary.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    let native = var("HOST") == var("TARGET");
    if native && var("CARGO_CFG_TARGET_OS") == "linux" && var("CARGO_CFG_TARGET_ENV") == "gnu" {
        // Packed relative relocations (DT_RELR): the 36,000 relocations of the position-
        // independent `hortus` take 18 kB instead of 877 kB, which the dynamic loader reads at
        // every start and which then stays resident in `serve` (issue 15; benches/README.md).
        // The binary then needs glibc 2.36 (Debian 12, Ubuntu 22.10) to run: asked only of a
        // glibc that has it, so a build on an older system still runs there.
        if glibc_version().is_some_and(|v| v >= (2, 36)) {
            println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
        }
    }
}

/// The glibc this machine links against, from `ldd --version` ("ldd (Debian GLIBC 2.36-9) 2.36").
fn glibc_version() -> Option<(u32, u32)> {
    let out = Command::new("ldd").arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.lines().next()?.split_whitespace().last()?;
    let (major, minor) = last.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}
