//! The mailer interface (SPEC §3) and the default outbox mailer.

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
