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
                    .table(ExchangeRates::Table)
                    .if_not_exists()
                    .col(uuid(ExchangeRates::Id).primary_key())
                    .col(string_len(ExchangeRates::FromCurrency, 10))
                    .col(string_len(ExchangeRates::ToCurrency, 10))
                    .col(money(backend, ExchangeRates::Rate))
                    .col(timestamp_with_time_zone_default_now(
                        ExchangeRates::ValidFrom,
                    ))
                    .col(timestamp_with_time_zone_null(ExchangeRates::ValidUntil))
                    .col(timestamp_with_time_zone(ExchangeRates::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("exchange_rates_pair_valid_from_key")
                    .table(ExchangeRates::Table)
                    .col(ExchangeRates::FromCurrency)
                    .col(ExchangeRates::ToCurrency)
                    .col(ExchangeRates::ValidFrom)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ExchangeRates::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum ExchangeRates {
    Table,
    Id,
    FromCurrency,
    ToCurrency,
    Rate,
    ValidFrom,
    ValidUntil,
    CreatedAt,
}
