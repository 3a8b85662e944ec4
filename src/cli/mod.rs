//! The command line (SPEC §5): `serve` (the default), `migrate`, `schema`, `grant`,
//! `revoke`, `rates set|import`, `mail list`. Every setting is a global option, so it may
//! come before or after the subcommand, and each is also read from its environment variable.

mod commands;
mod rates_csv;

pub use commands::run;
pub use rates_csv::{RateLine, parse_rates_csv};

use crate::config::RawConfig;
use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{CommandFactory, Parser, Subcommand};
use rust_decimal::Decimal;
use std::error::Error as _;
use std::path::PathBuf;

/// The GraphQL API server of a currency-exchange web service.
#[derive(Debug, Parser)]
#[command(
    version,
    about,
    after_help = "Every option is also read from the environment variable named beside it \
                  (and from a `.env` file). `-h` shows the common ones, `--help` all of them."
)]
pub struct Cli {
    /// Settings.
    #[command(flatten)]
    pub config: RawConfig,
    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default).
    Serve,
    /// Apply the migrations of both databases.
    Migrate,
    /// Print the GraphQL schema (SDL).
    Schema,
    /// Grant a permission to a user.
    Grant(PermissionArgs),
    /// Revoke a permission from a user.
    Revoke(PermissionArgs),
    /// Set or import exchange rates.
    Rates {
        /// What to do with rates.
        #[command(subcommand)]
        command: RatesCommand,
    },
    /// Read the mails the development mailer wrote (`MAILER=dev`).
    Mail {
        /// What to do with mails.
        #[command(subcommand)]
        command: MailCommand,
    },
}

/// Arguments of `grant` and `revoke`.
#[derive(Debug, clap::Args)]
pub struct PermissionArgs {
    /// The user's email.
    pub email: String,
    /// The permission: rates:write, orders:write, payments:write, analytics:read or
    /// permissions:write.
    pub permission: String,
    /// The application context of the permission.
    #[arg(long, default_value = "web")]
    pub context: String,
}

/// `rates` subcommands.
#[derive(Debug, Subcommand)]
pub enum RatesCommand {
    /// Set the current rate of a pair (closes the previous one).
    Set {
        /// Currency sold, e.g. USD.
        from: String,
        /// Currency bought, e.g. UAH.
        to: String,
        /// Units of `to` per unit of `from`, e.g. 41.25.
        rate: Decimal,
    },
    /// Set many rates from a CSV file, all or none: lines `from,to,rate[,valid_from[,valid_until]]`
    /// (RFC 3339 times; a header line and `#` comments are allowed).
    Import {
        /// The CSV file (`-` reads standard input).
        file: PathBuf,
    },
}

/// `mail` subcommands.
#[derive(Debug, Subcommand)]
pub enum MailCommand {
    /// List the mails written to `DATA_DIR/mail`, oldest first, tokens included.
    List {
        /// Only mails to this address.
        #[arg(long)]
        to: Option<String>,
        /// Only the last N mails.
        #[arg(long, value_name = "N")]
        last: Option<usize>,
    },
}

/// Parses the command line and the environment, or exits with clap's message, naming the
/// environment variable when a bad value came from one.
pub fn parse() -> Cli {
    Cli::try_parse().unwrap_or_else(|err| {
        let err = match env_value_error(&err) {
            Some(message) => Cli::command().error(ErrorKind::ValueValidation, message),
            None => err,
        };
        err.exit()
    })
}

/// For an invalid value read from an environment variable: a message naming the variable
/// (clap names only the flag).
fn env_value_error(err: &clap::Error) -> Option<String> {
    if !matches!(
        err.kind(),
        ErrorKind::InvalidValue | ErrorKind::ValueValidation
    ) {
        return None;
    }
    let Some(ContextValue::String(arg)) = err.get(ContextKind::InvalidArg) else {
        return None;
    };
    let Some(ContextValue::String(value)) = err.get(ContextKind::InvalidValue) else {
        return None;
    };
    let long = arg.trim_start_matches("--").split([' ', '=']).next()?;
    let command = Cli::command();
    let env = command
        .get_arguments()
        .find(|a| a.get_long() == Some(long))?
        .get_env()?
        .to_str()?
        .to_owned();
    // Only when the bad value is the variable's (a flag's bad value names the flag).
    if std::env::var(&env).ok().as_deref() != Some(value.as_str()) {
        return None;
    }
    let reason = err
        .source()
        .map(|s| format!(": {s}"))
        .or_else(|| match err.get(ContextKind::ValidValue) {
            Some(ContextValue::Strings(valid)) => {
                Some(format!(": expected one of {}", valid.join(", ")))
            }
            _ => None,
        })
        .unwrap_or_default();
    Some(format!(
        "invalid value '{value}' in {env} (--{long}){reason}"
    ))
}
