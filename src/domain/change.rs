//! Changes that caches and subscribers must learn about, recorded in the transaction that
//! makes them (the `outbox` of each database) and applied by every server process: no write
//! is lost to a Redis stall or a crash between the commit and the cache.

use super::ExchangeRate;
use crate::clock::DateTime;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    /// Sessions ended (logout, revocation, password change or reset) or changed (a second
    /// factor proved), by context and token hash: their cached copies are dropped.
    #[serde(alias = "sessions_ended")]
    SessionsChanged {
        /// `(context, token hash)` of each.
        sessions: Vec<(String, String)>,
    },
    /// A user's record or permissions changed (in any context).
    UserChanged {
        /// The user.
        user_id: Uuid,
    },
    /// A rate was set: the pair's current rate and the list of current rates may differ,
    /// and `rateChanged` subscribers hear of it.
    RateSet {
        /// The new rate.
        rate: ExchangeRate,
    },
    /// A user's orders or payments changed at `at` (their first page, that day's analytics).
    OrdersChanged {
        /// The owner.
        user_id: Uuid,
        /// When.
        at: DateTime,
    },
}

/// A change as recorded in an outbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorded {
    /// Outbox row id (UUIDv7: in the order recorded).
    pub id: Uuid,
    /// The change.
    pub change: Change,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_ended_recorded_by_an_earlier_version_still_read_back() {
        let earlier = r#"{"kind":"sessions_ended","sessions":[["web","ab12"]]}"#;
        let change: Change = serde_json::from_str(earlier).unwrap();
        assert_eq!(
            change,
            Change::SessionsChanged {
                sessions: vec![("web".to_owned(), "ab12".to_owned())]
            }
        );
    }
}
