//! Command line (SPEC §3/§5): serve | migrate | schema | grant | revoke | rates set.

use crate::config::RawConfig;
use clap::{Parser, Subcommand};
use rust_decimal::Decimal;

/// exchanger: the GraphQL API server of a currency-exchange web service.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    /// Settings (each also read from its environment variable).
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
    /// Manage exchange rates.
    Rates {
        /// What to do with rates.
        #[command(subcommand)]
        command: RatesCommand,
    },
}

/// Arguments of `grant` and `revoke`.
#[derive(Debug, clap::Args)]
pub struct PermissionArgs {
    /// The user's email.
    pub email: String,
    /// The permission, e.g. `rates:write`.
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
}
