//! Domain types, parsed once at the edge and valid by construction (SPEC §4), and the typed
//! values the services exchange with the adapters and the caches.

pub mod analytics;
mod change;
mod currency;
mod email;
mod identity;
mod money;
mod order;
mod page;
mod password;
mod permission;
mod rate;
pub mod token;

pub use analytics::{DailyAnalytics, NewEvent};
pub use change::{Change, Recorded};
pub use currency::{CurrencyCode, CurrencyPair};
pub use email::Email;
pub use identity::{AuthUser, SecurityEvent, SecurityEventKind, SessionRecord};
pub use money::{MONEY_SCALE, Money, convert, round_money};
pub use order::{
    NewOrder, NewPayment, Order, OrderStatus, Payment, PaymentStatus, idempotency_key_of,
};
pub use page::split_page;
pub use password::Password;
pub use permission::Permission;
pub use rate::{ExchangeRate, NewRate, Quote};
pub use token::SessionToken;
