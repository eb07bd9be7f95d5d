use clap::Parser;

fn main() -> std::process::ExitCode {
    // Parsing the arguments starts no thread, so the arenas are still set before any does.
    let cli = hortus::cli::Cli::parse();
    limit_malloc_arenas(matches!(cli.command, hortus::cli::Command::Serve { .. }));
    let format = cli.log_format;
    hortus::ops::logs::init(format);
    match hortus::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // Errors may quote what a peer sent: no control characters reach the terminal.
            let message = hortus::text::for_terminal(&format!("{e:#}"));
            hortus::ops::logs::report_error(format, &message);
            std::process::ExitCode::FAILURE
        }
    }
}

/// glibc gives each thread that allocates an arena of its own, up to 8 per core, and `hortus
/// serve` has many threads (actix's workers, the tokio runtime, one per SQLite connection, the
/// delivery signers): each arena keeps what its thread freed, in holes between what lives on.
/// For `serve`, one arena (small blocks still come from each thread's cache, without the lock)
/// cut the memory after load by 1.7-2.5 MiB against two, its CPU per request within the noise
/// of a loaded machine (issue 15; benches/README.md has the figures). `publish` and `export`
/// allocate on every core at once for a few seconds and keep nothing: they keep two arenas, as
/// measured when their rows were met. Set before any thread starts; `MALLOC_ARENA_MAX` in the
/// environment still wins (the benchmarks measure the others with it).
fn limit_malloc_arenas(serve: bool) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        let arenas = if serve { 1 } else { 2 };
        // SAFETY: mallopt only sets an allocator parameter; nothing else runs yet.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, arenas);
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = serve;
}
