//! Migrations of both databases, one migrator each with its own history table (SPEC §2).
//!
//! `IdentityMigrator` owns `exchanger_identity`, `WebMigrator` owns `exchanger_web`. Applied
//! migrations are never edited; a change is a new file.

pub use sea_orm_migration::prelude::*;

mod identity;
mod outbox;
mod web;

pub use identity::IdentityMigrator;
pub use web::WebMigrator;

use sea_orm_migration::sea_orm::DbBackend;

/// A `DECIMAL(18,8)` money column. SQLite has no exact decimal type (its NUMERIC affinity
/// turns `9999999999.99999999` into a float), so there the column holds canonical text
/// written and read by `entity::ExactDecimal`.
pub(crate) fn money<T: IntoIden>(backend: DbBackend, col: T) -> ColumnDef {
    match backend {
        DbBackend::Sqlite => sea_orm_migration::schema::text(col),
        _ => sea_orm_migration::schema::decimal_len(col, 18, 8),
    }
}
