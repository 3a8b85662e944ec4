//! `exchange_rates`: the timeline of rates of each currency pair.

use crate::ExactDecimal;
use sea_orm::entity::prelude::*;

/// A row of `exchange_rates`, valid from `valid_from` until `valid_until` (open when null).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "exchange_rates")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub from_currency: String,
    pub to_currency: String,
    #[sea_orm(column_type = "Decimal(Some((18, 8)))")]
    pub rate: ExactDecimal,
    pub valid_from: DateTimeUtc,
    pub valid_until: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
}

/// `exchange_rates` has no relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
