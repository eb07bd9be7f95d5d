//! Link settings for the `hortus` binary.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
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
    order_hot_functions(native);
}

/// The functions `hortus serve` runs in its ordinary life first in the code, together: the
/// kernel maps code in 64-128 kB blocks, and strewn over the whole text they made it all resident
/// (11 of 12.4 MiB; 3.9 MB of it ever ran). The list is benches/hot-functions.sh's (issue 15;
/// benches/README.md). Only lld reads it (rust-lld, the linker rustc uses for this target since
/// 1.90): ld.bfd and gold refuse the option, so another linker asked for keeps the default order.
/// Names carry a hash of the toolchain and the crate graph: a list made by another rustc or
/// Cargo.lock mostly misses (the linker skips a missing name), which costs `serve` ~6 MiB, never
/// correctness, so the build says so.
fn order_hot_functions(native: bool) {
    const LIST: &str = "link/hot-functions.txt";
    println!("cargo:rerun-if-changed={LIST}");
    println!("cargo:rerun-if-changed=Cargo.lock");
    println!("cargo:rerun-if-env-changed=RUSTFLAGS");
    // `-C linker=…`, `-C link-arg=-fuse-ld=…`, `-Z linker-features`, or a linker from Cargo's
    // configuration (`target.*.linker`, which Cargo hands build scripts as RUSTC_LINKER).
    let flags = var("CARGO_ENCODED_RUSTFLAGS");
    let other_linker = flags.contains("linker")
        || flags.contains("fuse-ld")
        || std::env::var_os("RUSTC_LINKER").is_some();
    if !native || var("TARGET") != "x86_64-unknown-linux-gnu" || other_linker {
        return;
    }
    let dir = std::path::Path::new(&var("CARGO_MANIFEST_DIR")).to_path_buf();
    let list = dir.join(LIST);
    let Ok(text) = std::fs::read_to_string(&list) else {
        return;
    };
    println!(
        "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
        list.display()
    );
    println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    let header = |key: &str| {
        text.lines()
            .map_while(|l| l.strip_prefix("# "))
            .find_map(|l| l.strip_prefix(key))
            .map(str::trim)
            .map(str::to_owned)
    };
    let rustc = Command::new(var("RUSTC")).arg("-V").output().ok();
    let rustc = rustc.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    let lock = Command::new("sha256sum")
        .arg(dir.join("Cargo.lock"))
        .output()
        .ok();
    let lock = lock.and_then(|o| {
        let text = String::from_utf8_lossy(&o.stdout).into_owned();
        text.split_whitespace().next().map(str::to_owned)
    });
    for (key, now, what) in [
        ("rustc:", rustc, "toolchain"),
        ("Cargo.lock:", lock, "Cargo.lock"),
    ] {
        if let (Some(made), Some(now)) = (header(key), now)
            && made != now
        {
            println!(
                "cargo:warning={LIST} was made with another {what} ({made}, now {now}): \
                 `hortus serve` keeps ~6 MiB more code resident until it is regenerated \
                 (benches/hot-functions.sh, then build again)"
            );
        }
    }
}

/// A variable Cargo gives build scripts, empty when unset.
fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_default()
}

/// The glibc this machine links against, from `ldd --version` ("ldd (Debian GLIBC 2.36-9) 2.36").
fn glibc_version() -> Option<(u32, u32)> {
    let out = Command::new("ldd").arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.lines().next()?.split_whitespace().last()?;
    let (major, minor) = last.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}
