//! The mailer interface (SPEC §3) and its implementations: the development mailer (a file
//! per mail, token included, and a log line), the log-only mailer, and the in-memory outbox
//! (tests).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// One message.
#[derive(Clone, Debug)]
pub struct Mail {
    /// Recipient.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text body (holds the one-time token).
    pub body: String,
    /// The one-time token the mail carries.
    pub token: String,
}

/// Sends mail. Swap the outbox for an SMTP or API mailer in production.
#[async_trait::async_trait]
pub trait Mailer: Send + Sync {
    /// Sends `mail`.
    async fn send(&self, mail: Mail) -> anyhow::Result<()>;
    /// Messages sent so far, where the mailer keeps them (the outbox); empty otherwise.
    fn outbox(&self) -> Vec<Mail> {
        Vec::new()
    }
}

/// Keeps messages in memory and logs that they were sent (never their tokens).
#[derive(Default)]
pub struct OutboxMailer {
    sent: Mutex<Vec<Mail>>,
}

#[async_trait::async_trait]
impl Mailer for OutboxMailer {
    async fn send(&self, mail: Mail) -> anyhow::Result<()> {
        tracing::info!(to = %mail.to, subject = %mail.subject, "mail queued in the outbox");
        let mut sent = self.sent.lock().unwrap_or_else(|p| p.into_inner());
        // Bounded: a long-running dev server keeps the latest messages only.
        if sent.len() >= 1000 {
            sent.remove(0);
        }
        sent.push(mail);
        Ok(())
    }

    fn outbox(&self) -> Vec<Mail> {
        self.sent.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Development: each mail becomes a file in a folder (and a log line), token included, so
/// that email verification and password reset can be tried without a mail server.
/// `exchanger mail list` shows them.
pub struct DevMailer {
    dir: PathBuf,
}

impl DevMailer {
    /// Mails into `dir` (created when needed).
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }
}

#[async_trait::async_trait]
impl Mailer for DevMailer {
    async fn send(&self, mail: Mail) -> anyhow::Result<()> {
        let at = crate::clock::now();
        let name = format!(
            "{}-{}.txt",
            at.format("%Y%m%dT%H%M%S%.6fZ"),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let path = self.dir.join(name);
        let text = format!(
            "Date: {}\nTo: {}\nSubject: {}\nToken: {}\n\n{}\n",
            at.to_rfc3339(),
            mail.to,
            mail.subject,
            mail.token,
            mail.body
        );
        tokio::fs::create_dir_all(&self.dir).await?;
        tokio::fs::write(&path, text).await?;
        tracing::info!(
            to = %mail.to,
            subject = %mail.subject,
            token = %mail.token,
            file = %path.display(),
            "development mail written (not sent)"
        );
        Ok(())
    }
}

/// A mail as the development mailer wrote it.
#[derive(Clone, Debug)]
pub struct WrittenMail {
    /// When (RFC 3339).
    pub date: String,
    /// The mail.
    pub mail: Mail,
    /// Its file.
    pub path: PathBuf,
}

/// The mails the development mailer wrote to `dir`, oldest first.
pub fn written_mails(dir: &Path) -> std::io::Result<Vec<WrittenMail>> {
    let mut paths: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "txt"))
            .collect(),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err),
    };
    paths.sort();
    let mut mails = Vec::with_capacity(paths.len());
    for path in paths {
        let text = std::fs::read_to_string(&path)?;
        let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
        let header = |name: &str| {
            head.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
                .unwrap_or_default()
                .to_owned()
        };
        mails.push(WrittenMail {
            date: header("Date"),
            mail: Mail {
                to: header("To"),
                subject: header("Subject"),
                token: header("Token"),
                body: body.trim_end().to_owned(),
            },
            path,
        });
    }
    Ok(mails)
}

/// Production without a mail service wired in: says in the log that a mail went out, never
/// its token. Replace it with an SMTP or API mailer implementing [`Mailer`].
#[derive(Default)]
pub struct LogMailer;

#[async_trait::async_trait]
impl Mailer for LogMailer {
    async fn send(&self, mail: Mail) -> anyhow::Result<()> {
        tracing::warn!(to = %mail.to, subject = %mail.subject, "no mailer is configured; mail not sent");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn development_mails_are_written_and_read_back() {
        let dir = tempfile_dir();
        let mailer = DevMailer::new(dir.clone());
        for to in ["a@example.com", "b@example.com"] {
            mailer
                .send(Mail {
                    to: to.into(),
                    subject: "Reset your password".into(),
                    body: "Your password reset token: abc".into(),
                    token: "abc".into(),
                })
                .await
                .unwrap();
        }
        let mails = written_mails(&dir).unwrap();
        assert_eq!(mails.len(), 2);
        assert_eq!(mails[0].mail.to, "a@example.com");
        assert_eq!(mails[1].mail.token, "abc");
        assert_eq!(mails[1].mail.body, "Your password reset token: abc");
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn tempfile_dir() -> PathBuf {
        std::env::temp_dir().join(format!("exchanger-mail-{}", uuid::Uuid::new_v4().simple()))
    }
}
