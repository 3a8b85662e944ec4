//! What each subcommand does.

use super::rates_csv::{RateLine, describe, parse_rates_csv};
use super::{Command, MailCommand, PermissionArgs, RatesCommand};
use crate::clock::DateTime;
use crate::config::{Config, MailerKind};
use crate::context::ApplicationContext;
use crate::domain::{CurrencyPair, Email, ExchangeRate, Money, NewRate, Permission};
use crate::error::AppError;
use crate::identity::mailer::written_mails;
use crate::stack::{Role, create_web_stack_for};
use crate::startup::Application;
use anyhow::Context;
use std::io::Read;

/// Runs `command` with `config`.
pub async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve => {
            Application::build(&config)
                .await?
                .run_until_stopped()
                .await?
        }
        Command::Migrate => {
            let dbs = crate::db::connect(&config).await?;
            crate::db::migrate(&dbs).await?;
            println!("both databases are migrated");
        }
        Command::Schema => print!("{}", crate::graphql::sdl()),
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
            print_rate(&created);
        }
        Command::Rates {
            command: RatesCommand::Import { file },
        } => import_rates(&config, &file).await?,
        Command::Mail {
            command: MailCommand::List { to, last },
        } => list_mail(&config, to.as_deref(), last)?,
    }
    Ok(())
}

async fn permission(mut config: Config, args: PermissionArgs, grant: bool) -> anyhow::Result<()> {
    let ctx: ApplicationContext = args
        .context
        .parse()
        .map_err(|e: String| anyhow::anyhow!("--context: {e}"))?;
    let email = Email::parse("EMAIL", &args.email).map_err(user_error)?;
    // A typo must not be stored as if granted; any well-formed name may be revoked.
    let permission = if grant {
        Permission::known("PERMISSION", &args.permission)
    } else {
        Permission::parse("PERMISSION", &args.permission)
    }
    .map_err(user_error)?;
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
    if grant && config.security.require_mfa_for_operators && user.totp_secret.is_none() {
        eprintln!(
            "note: operators need two-factor sign-in here (REQUIRE_MFA_FOR_OPERATORS); {} \
             can use this permission once they turn it on (enrollTotp, confirmTotp)",
            email.as_str()
        );
    }
    Ok(())
}

/// `rates import FILE`: every line checked first, then all rates in one transaction.
async fn import_rates(config: &Config, file: &std::path::Path) -> anyhow::Result<()> {
    let text = if file.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading standard input")?;
        text
    } else {
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?
    };
    let lines = parse_rates_csv(&text).map_err(|errors| {
        anyhow::anyhow!(
            "{}\nnothing was imported ({} error{})",
            errors.join("\n"),
            errors.len(),
            if errors.len() == 1 { "" } else { "s" }
        )
    })?;
    let numbers: Vec<usize> = lines.iter().map(|l| l.line).collect();
    let stack = create_web_stack_for(config, Role::Command).await?;
    let created = stack
        .rates
        .set_all(
            lines
                .into_iter()
                .map(|RateLine { rate, .. }| rate)
                .collect(),
        )
        .await
        .map_err(|(index, err)| match numbers.get(index) {
            Some(line) => anyhow::anyhow!("line {line}: {}\nnothing was imported", describe(err)),
            None => anyhow::anyhow!("{}\nnothing was imported", describe(err)),
        })?;
    created.iter().for_each(print_rate);
    println!("imported {} rates", created.len());
    Ok(())
}

fn print_rate(rate: &ExchangeRate) {
    let time = |t: DateTime| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
    println!(
        "{} -> {}: {} valid from {}{}",
        rate.from_currency,
        rate.to_currency,
        rate.rate.normalize(),
        time(rate.valid_from),
        rate.valid_until
            .map(|u| format!(" until {}", time(u)))
            .unwrap_or_default()
    );
}

/// `mail list`: what the development mailer wrote, oldest first.
fn list_mail(config: &Config, to: Option<&str>, last: Option<usize>) -> anyhow::Result<()> {
    if config.mailer != MailerKind::Dev {
        eprintln!(
            "note: MAILER is not `dev`; a server with this configuration writes no mail files"
        );
    }
    let mut mails = written_mails(&config.mail_dir)
        .with_context(|| format!("cannot read {}", config.mail_dir.display()))?;
    if let Some(to) = to {
        mails.retain(|m| m.mail.to.eq_ignore_ascii_case(to));
    }
    if let Some(last) = last {
        mails.drain(..mails.len().saturating_sub(last));
    }
    if mails.is_empty() {
        println!("no mail in {}", config.mail_dir.display());
        return Ok(());
    }
    for written in mails {
        let mail = &written.mail;
        println!("{}  to {}  {}", written.date, mail.to, mail.subject);
        // Notices (a sign-in from a new device) carry no token.
        if !mail.token.is_empty() {
            println!("  token: {}", mail.token);
        }
        println!("  file:  {}\n", written.path.display());
    }
    Ok(())
}

/// A service error as the command line shows it.
fn user_error(err: AppError) -> anyhow::Error {
    anyhow::anyhow!(plain(err))
}

/// A service error in plain words.
pub(super) fn plain(err: AppError) -> String {
    match err {
        AppError::BadUserInput { field, message } => format!("{field} {message}"),
        AppError::Conflict(message) => message.into_owned(),
        AppError::NotFound(what) => format!("no such {what}"),
        AppError::Timeout => "the database timed out; nothing was changed".to_owned(),
        AppError::Internal(e) => format!("{e:#}"),
        other => format!("{other:?}"),
    }
}
