use crate::money;
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        manager
            .create_table(
                Table::create()
                    .table(Orders::Table)
                    .if_not_exists()
                    .col(uuid(Orders::Id).primary_key())
                    .col(uuid(Orders::UserId))
                    .col(string_len(Orders::FromCurrency, 10))
                    .col(string_len(Orders::ToCurrency, 10))
                    .col(money(backend, Orders::Amount))
                    .col(money(backend, Orders::ExchangeRate))
                    .col(money(backend, Orders::ToAmount))
                    .col(money(backend, Orders::PaidAmount))
                    .col(money(backend, Orders::PendingAmount))
                    .col(string_len(Orders::Status, 50).default("pending"))
                    .col(timestamp_with_time_zone(Orders::ExpiresAt))
                    .col(timestamp_with_time_zone_null(Orders::PaidAt))
                    .col(timestamp_with_time_zone(Orders::CreatedAt))
                    .col(timestamp_with_time_zone(Orders::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        // Keyset pagination of `myOrders` walks (user_id, id desc); ids are UUIDv7.
        manager
            .create_index(
                Index::create()
                    .name("idx_orders_user_id")
                    .table(Orders::Table)
                    .col(Orders::UserId)
                    .col(Orders::Id)
                    .to_owned(),
            )
            .await?;
        // The expiry sweeper looks for pending orders past their window.
        manager
            .create_index(
                Index::create()
                    .name("idx_orders_status_expires_at")
                    .table(Orders::Table)
                    .col(Orders::Status)
                    .col(Orders::ExpiresAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_orders_paid_at")
                    .table(Orders::Table)
                    .col(Orders::PaidAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Orders::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
pub(crate) enum Orders {
    Table,
    Id,
    UserId,
    FromCurrency,
    ToCurrency,
    Amount,
    ExchangeRate,
    ToAmount,
    PaidAmount,
    PendingAmount,
    Status,
    ExpiresAt,
    PaidAt,
    CreatedAt,
    UpdatedAt,
}
