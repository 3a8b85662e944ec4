use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AnalyticsEvents::Table)
                    .if_not_exists()
                    .col(uuid(AnalyticsEvents::Id).primary_key())
                    .col(uuid_null(AnalyticsEvents::UserId))
                    .col(string_len(AnalyticsEvents::EventType, 100))
                    .col(json_binary_null(AnalyticsEvents::EventData))
                    .col(timestamp_with_time_zone(AnalyticsEvents::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_analytics_events_created_at")
                    .table(AnalyticsEvents::Table)
                    .col(AnalyticsEvents::CreatedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AnalyticsEvents::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum AnalyticsEvents {
    Table,
    Id,
    UserId,
    EventType,
    EventData,
    CreatedAt,
}
