use clap::Parser;

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HORTUS_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match hortus::cli::run(hortus::cli::Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // Errors may quote what a peer sent: no control characters reach the terminal.
            eprintln!("error: {}", hortus::text::for_terminal(&format!("{e:#}")));
            std::process::ExitCode::FAILURE
        }
    }
}
