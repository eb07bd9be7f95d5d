use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = hortus::cli::Cli::parse();
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
