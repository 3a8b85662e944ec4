//! The `outbox` table, the same in both databases: changes recorded in the transaction that
//! made them, which every server process then applies to the caches and subscribers (SPEC §4:
//! a write made while Redis is unreachable is never served stale later).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveIden)]
enum Outbox {
    Table,
    Id,
    Change,
    CreatedAt,
}

/// Creates `outbox`.
pub(crate) async fn create(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(Outbox::Table)
                .if_not_exists()
                .col(uuid(Outbox::Id).primary_key())
                .col(text(Outbox::Change))
                .col(timestamp_with_time_zone(Outbox::CreatedAt))
                .to_owned(),
        )
        .await
}

/// Drops `outbox`.
pub(crate) async fn drop(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .drop_table(Table::drop().table(Outbox::Table).to_owned())
        .await
}
