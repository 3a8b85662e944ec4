use super::m20261124_000002_create_orders_table::Orders;
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
                    .table(Payments::Table)
                    .if_not_exists()
                    .col(uuid(Payments::Id).primary_key())
                    .col(uuid(Payments::OrderId))
                    .col(uuid(Payments::UserId))
                    .col(string_len(Payments::PaymentMethod, 100))
                    .col(money(backend, Payments::Amount))
                    .col(string_len(Payments::Status, 50).default("pending"))
                    .col(string_len(Payments::IdempotencyKey, 255))
                    .col(timestamp_with_time_zone(Payments::CreatedAt))
                    .col(timestamp_with_time_zone(Payments::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_payments_order_id")
                            .from(Payments::Table, Payments::OrderId)
                            .to(Orders::Table, Orders::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("payments_user_idempotency_key")
                    .table(Payments::Table)
                    .col(Payments::UserId)
                    .col(Payments::IdempotencyKey)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_payments_order_id")
                    .table(Payments::Table)
                    .col(Payments::OrderId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Payments::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Payments {
    Table,
    Id,
    OrderId,
    UserId,
    PaymentMethod,
    Amount,
    Status,
    IdempotencyKey,
    CreatedAt,
    UpdatedAt,
}
