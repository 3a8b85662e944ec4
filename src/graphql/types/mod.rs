//! GraphQL objects and inputs: the API's own types, built from domain values, never
//! entities (STYLE §5).

pub mod order;
pub mod page;
pub mod rate;
pub mod scalars;
pub mod security;
pub mod user;

pub use rate::{ExchangeRate, Quote};
pub use scalars::{DateScalar, DateTimeScalar, DecimalScalar};
pub use user::{AuthPayload, Session, User};
