//! The README's walk-through, replayed as a new user would: every GraphQL block pasted as
//! written (placeholders filled from earlier answers), every command run, against a fresh
//! server with the development mailer.

use crate::helpers::{Socket, TestApp, next_payload, spawn_app_with, subscribe};
use exchanger::config::{MailerKind, Storage};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::{Duration, Instant};

const README: &str = include_str!("../../README.md");

/// A fenced block of the walk-through.
#[derive(Debug)]
enum Block {
    GraphQl(String),
    Shell(String),
}

/// The blocks between `## Walk-through` and the next section, in order.
fn walk_through() -> Vec<Block> {
    let start = README
        .find("\n## Walk-through")
        .expect("README has a walk-through");
    let section = &README[start + 1..];
    let end = section[3..].find("\n## ").map_or(section.len(), |i| i + 3);
    let mut blocks = Vec::new();
    let mut lines = section[..end].lines();
    while let Some(line) = lines.next() {
        let fence = line.trim_start();
        let Some(language) = fence.strip_prefix("```") else {
            continue;
        };
        let indent = line.len() - fence.len();
        let body: Vec<&str> = lines
            .by_ref()
            .take_while(|l| l.trim() != "```")
            .map(|l| l.get(indent..).unwrap_or(l.trim_start()))
            .collect();
        let body = body.join("\n");
        match language {
            "graphql" => blocks.push(Block::GraphQl(body)),
            "sh" => blocks.push(Block::Shell(body)),
            other => panic!("a walk-through block in {other:?}: {body}"),
        }
    }
    blocks
}

/// Splits a command line into words (double quotes group; no other shell syntax).
fn words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// Fills `<…>` placeholders from `known`; fails on one it does not know.
fn fill(block: &str, known: &HashMap<&'static str, String>) -> String {
    let mut text = block.to_owned();
    for (placeholder, value) in known {
        text = text.replace(placeholder, value);
    }
    if let Some(at) = text.find("\"<") {
        panic!(
            "the walk-through uses a placeholder this test does not know: {}",
            &text[at..]
        );
    }
    text
}

#[tokio::test]
async fn the_walk_through_runs_as_written() {
    // Arrange: a fresh server whose mail a command in the walk-through can read.
    let blocks = walk_through();
    assert!(
        blocks.len() >= 10,
        "the walk-through lost its steps: {blocks:?}"
    );
    let mail_home = tempfile::tempdir().unwrap();
    let mail_home_path = mail_home.path().to_owned();
    let app = spawn_app_with(move |config| {
        config.mailer = MailerKind::Dev;
        config.mail_dir = match &config.storage {
            Storage::Embedded { data_dir } => data_dir.join("mail"),
            Storage::External { .. } => mail_home_path.join("mail"),
        };
    })
    .await;
    let data_dir = match &app.config.storage {
        Storage::Embedded { data_dir } => data_dir.clone(),
        Storage::External { .. } => mail_home.path().to_owned(),
    };
    let mut known: HashMap<&'static str, String> = HashMap::new();
    let mut token: Option<String> = None;
    let mut subscription: Option<Socket> = None;

    for block in &blocks {
        match block {
            Block::GraphQl(text) => {
                let document = fill(text, &known);
                if document.trim_start().starts_with("subscription") {
                    subscription = Some(subscribe(&app, &document, token.as_deref()).await);
                    continue;
                }
                let mut request = app.request(&document);
                if let Some(token) = &token {
                    request = request.bearer(token);
                }
                let body = request.send().await;
                assert!(body["errors"].is_null(), "{document}\n→ {body}");
                let data = &body["data"];
                assert!(data.is_object(), "{document}\n→ {body}");
                learn(data, &mut known, &mut token);
            }
            Block::Shell(text) => {
                for line in text.lines().map(str::trim) {
                    if line.is_empty() || line.starts_with('#') {
                        continue;
                    }
                    let args = line
                        .strip_prefix("cargo run -- ")
                        .unwrap_or_else(|| panic!("not an exchanger command: {line}"));
                    let args = words(args);
                    let stdout = match subscription.as_mut() {
                        // A subscription is open: the command must reach it.
                        Some(socket) => {
                            let deadline = Instant::now() + Duration::from_secs(10);
                            loop {
                                let stdout = run(&app, &args, &data_dir).await;
                                if let Some(event) =
                                    next_payload(socket, Duration::from_millis(300)).await
                                {
                                    assert!(event["errors"].is_null(), "{event}");
                                    assert!(event["data"].is_object(), "{event}");
                                    break stdout;
                                }
                                assert!(
                                    Instant::now() < deadline,
                                    "`{line}` never reached the open subscription"
                                );
                            }
                        }
                        None => run(&app, &args, &data_dir).await,
                    };
                    if let Some(mail_token) = stdout
                        .lines()
                        .find_map(|l| l.trim().strip_prefix("token: "))
                    {
                        known.insert("<token from the mail>", mail_token.to_owned());
                    }
                }
                subscription = None;
            }
        }
    }

    // The operator steps really happened (not just answered without errors).
    let orders = app
        .gql_as(
            token.as_deref().expect("signed in"),
            "{ me { emailVerified permissions } myOrders { edges { node { status } } } }",
            json!({}),
        )
        .await;
    assert_eq!(orders["data"]["me"]["emailVerified"], true, "{orders}");
    assert_eq!(
        orders["data"]["myOrders"]["edges"][0]["node"]["status"], "COMPLETED",
        "{orders}"
    );
}

/// Remembers what later blocks refer to: the session token, the order and payment ids.
fn learn(data: &Value, known: &mut HashMap<&'static str, String>, token: &mut Option<String>) {
    for auth in ["register", "login"] {
        if let Some(t) = data[auth]["token"].as_str() {
            *token = Some(t.to_owned());
        }
    }
    if let Some(id) = data["createOrder"]["id"].as_str() {
        known.insert("<order id>", id.to_owned());
    }
    if let Some(id) = data["createPayment"]["id"].as_str() {
        known.insert("<payment id>", id.to_owned());
    }
}

/// Runs `exchanger args` over `app`'s storage; its standard output (it must succeed).
async fn run(app: &TestApp, args: &[String], data_dir: &std::path::Path) -> String {
    let out = crate::process::exchanger(app)
        .args(args)
        .env("DATA_DIR", data_dir)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "exchanger {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
