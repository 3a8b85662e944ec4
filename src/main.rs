//! Entry point: parse the command line, set up logging, run the subcommand.

use clap::Parser;
use exchanger::cli::{Cli, Command, PermissionArgs, RatesCommand};
use exchanger::config::Config;
use exchanger::context::ApplicationContext;
use exchanger::domain::{CurrencyPair, Email, Money, NewRate, Permission};
use exchanger::stack::{Role, create_web_stack_for};
use exchanger::startup::Application;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    dotenvy::dotenv().ok();
    let cli = Cli::parse();
    let config = match Config::from_raw(cli.config) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("configuration error: {message}");
            return ExitCode::from(2);
        }
    };
    exchanger::telemetry::init_subscriber(config.log_format, "info,sqlx=warn,sea_orm=warn");
    match run(cli.command.unwrap_or(Command::Serve), config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve => {
            Application::build(&config)
                .await?
                .run_until_stopped()
                .await?
        }
        Command::Migrate => {
            let dbs = exchanger::db::connect(&config).await?;
            exchanger::db::migrate(&dbs).await?;
            println!("both databases are migrated");
        }
        Command::Schema => print!("{}", exchanger::graphql::sdl()),
        Command::Grant(args) => permission(config, args, true).await?,
        Command::Revoke(args) => permission(config, args, false).await?,
        Command::Rates {
            command: RatesCommand::Set { from, to, rate },
        } => {
            let pair = CurrencyPair::parse("FROM", &from, "TO", &to).map_err(user_error)?;
            let rate = Money::parse("RATE", rate).map_err(user_error)?;
            let stack = create_web_stack_for(&config, Role::Command).await?;
            let created = stack
                .rates
                .set(NewRate {
                    pair,
                    rate,
                    valid_from: None,
                    valid_until: None,
                })
                .await
                .map_err(user_error)?;
            println!(
                "{} {} -> {} valid from {}",
                created.from_currency, created.to_currency, created.rate, created.valid_from
            );
        }
    }
    Ok(())
}

async fn permission(mut config: Config, args: PermissionArgs, grant: bool) -> anyhow::Result<()> {
    let ctx: ApplicationContext = args
        .context
        .parse()
        .map_err(|e: String| anyhow::anyhow!("--context: {e}"))?;
    let email = Email::parse("EMAIL", &args.email).map_err(user_error)?;
    let permission = Permission::parse("PERMISSION", &args.permission).map_err(user_error)?;
    // Permissions of any context are managed through that context's identity adapter.
    config.app_context = ctx;
    let stack = create_web_stack_for(&config, Role::Command).await?;
    let user = stack
        .users
        .adapter()
        .user_by_email(email.as_str())
        .await
        .map_err(user_error)?
        .ok_or_else(|| anyhow::anyhow!("no user with email {}", email.as_str()))?;
    let changed = if grant {
        stack.users.grant(user.id, &permission).await
    } else {
        stack.users.revoke(user.id, &permission).await
    }
    .map_err(user_error)?;
    let verb = match (grant, changed) {
        (true, true) => "granted",
        (true, false) => "already had",
        (false, true) => "revoked",
        (false, false) => "did not have",
    };
    println!(
        "{} {verb} {} in context {ctx}",
        email.as_str(),
        permission.as_str()
    );
    Ok(())
}

fn user_error(err: exchanger::error::AppError) -> anyhow::Error {
    match err {
        exchanger::error::AppError::BadUserInput { field, message } => {
            anyhow::anyhow!("{field} {message}")
        }
        exchanger::error::AppError::Internal(e) => anyhow::anyhow!("{e:#}"),
        other => anyhow::anyhow!("{other:?}"),
    }
}
