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
    order_hot_functions(native);
}

/// The functions `hortus serve` runs in its ordinary life first in the code, together: the
/// kernel maps code in 64-128 kB blocks, and strewn over the whole text they made it all resident
/// (11 of 12.4 MiB; 3.9 MB of it ever ran). The list is benches/hot-functions.sh's (issue 15;
/// benches/README.md). Only rust-lld, the linker rustc uses for this target since 1.90, reads
/// it; a name the list has and the binary has not (another Cargo.lock) is skipped, quietly.
fn order_hot_functions(native: bool) {
    const LIST: &str = "link/hot-functions.txt";
    println!("cargo:rerun-if-changed={LIST}");
    println!("cargo:rerun-if-env-changed=RUSTFLAGS");
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    // Another linker asked for (RUSTFLAGS' `-C linker…`, `-Z linker-features`): it may not
    // know the option, so the binary keeps the default order.
    let other_linker = var("CARGO_ENCODED_RUSTFLAGS").contains("linker");
    if !native || var("TARGET") != "x86_64-unknown-linux-gnu" || other_linker {
        return;
    }
    let list = std::path::Path::new(&var("CARGO_MANIFEST_DIR")).join(LIST);
    if list.is_file() {
        println!(
            "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
            list.display()
        );
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
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
