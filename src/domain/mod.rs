//! Domain types, parsed once at the edge and valid by construction (SPEC §4).

mod currency;
mod email;
mod money;
mod order;
mod password;
mod permission;

pub use currency::{CurrencyCode, CurrencyPair};
pub use email::Email;
pub use money::{MONEY_SCALE, Money, round_money};
pub use order::{OrderStatus, PaymentStatus};
pub use password::Password;
pub use permission::Permission;
