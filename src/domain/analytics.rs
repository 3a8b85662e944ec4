//! Analytics: the names of the key actions recorded (SPEC §3) and the daily report.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Event types recorded in `analytics_events` (SPEC §3 "key actions"): the one list.
pub mod event {
    /// An account was created.
    pub const USER_REGISTERED: &str = "user_registered";
    /// A sign-in succeeded.
    pub const USER_LOGGED_IN: &str = "user_logged_in";
    /// A sign-in failed.
    pub const LOGIN_FAILED: &str = "login_failed";
    /// An order was placed.
    pub const ORDER_CREATED: &str = "order_created";
    /// An order was cancelled by its owner.
    pub const ORDER_CANCELLED: &str = "order_cancelled";
    /// Succeeded payments covered an order.
    pub const ORDER_PAID: &str = "order_paid";
    /// An operator completed an order.
    pub const ORDER_COMPLETED: &str = "order_completed";
    /// An order's payment window passed.
    pub const ORDER_EXPIRED: &str = "order_expired";
    /// A payment was created.
    pub const PAYMENT_CREATED: &str = "payment_created";
    /// A payment was settled.
    pub const PAYMENT_SETTLED: &str = "payment_settled";
}

/// How many events of one type happened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventCount {
    /// Event type.
    pub event_type: String,
    /// Count.
    pub count: i64,
}

/// Order volume of one currency pair (orders paid that day).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairVolume {
    /// Currency sold.
    pub from_currency: String,
    /// Currency bought.
    pub to_currency: String,
    /// Orders paid.
    pub orders: i64,
    /// Sum of amounts sold.
    pub amount: Decimal,
    /// Sum of amounts bought.
    pub to_amount: Decimal,
}

/// One UTC day.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DailyAnalytics {
    /// The day.
    pub date: NaiveDate,
    /// Events by type.
    pub events: Vec<EventCount>,
    /// Volume by pair.
    pub volumes: Vec<PairVolume>,
}

/// A key action to record.
#[derive(Clone, Debug)]
pub struct NewEvent {
    /// Who did it, when known.
    pub user_id: Option<uuid::Uuid>,
    /// One of [`event`].
    pub event_type: &'static str,
    /// Details (ids, amounts); never secrets.
    pub data: serde_json::Value,
    /// When.
    pub at: crate::clock::DateTime,
}
