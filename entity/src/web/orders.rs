//! `orders`: an exchange order at a locked rate.

use crate::ExactDecimal;
use sea_orm::entity::prelude::*;

/// A row of `orders`. `user_id` is an identity user (no cross-database foreign key).
/// `status` is the lower-case order status (`pending`, `paid`, …).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "orders")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: Uuid,
    pub from_currency: String,
    pub to_currency: String,
    #[sea_orm(column_type = "Decimal(Some((18, 8)))")]
    pub amount: ExactDecimal,
    #[sea_orm(column_type = "Decimal(Some((18, 8)))")]
    pub exchange_rate: ExactDecimal,
    #[sea_orm(column_type = "Decimal(Some((18, 8)))")]
    pub to_amount: ExactDecimal,
    /// Sum of succeeded payments.
    #[sea_orm(column_type = "Decimal(Some((18, 8)))")]
    pub paid_amount: ExactDecimal,
    /// Sum of payments still pending.
    #[sea_orm(column_type = "Decimal(Some((18, 8)))")]
    pub pending_amount: ExactDecimal,
    pub status: String,
    /// End of the payment window of a pending order.
    pub expires_at: DateTimeUtc,
    pub paid_at: Option<DateTimeUtc>,
    /// The client's key for retrying `createOrder` safely (unique per user).
    pub idempotency_key: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

/// Relations of `orders`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The order's payments.
    #[sea_orm(has_many = "super::payments::Entity")]
    Payments,
}

impl Related<super::payments::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Payments.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
