//! Entry point: parse the command line, set up logging, run the subcommand.

use exchanger::cli::{self, Command};
use exchanger::config::Config;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    dotenvy::dotenv().ok();
    let cli = cli::parse();
    let config = match Config::from_raw(cli.config) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("configuration error: {message}");
            return ExitCode::from(2);
        }
    };
    exchanger::telemetry::init_subscriber(config.log_format, "info,sqlx=warn,sea_orm=warn");
    match cli::run(cli.command.unwrap_or(Command::Serve), config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
