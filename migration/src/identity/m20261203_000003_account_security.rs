//! Account security: two-factor secrets on `users` (sealed under the server key), the
//! second-factor time and last authentication of each session, recovery codes (hashes
//! only) and the security activity log.

use super::m20261124_000001_create_users_table::Users;
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite alters one column per statement.
        for column in [
            text_null(Security::TotpSecret),
            text_null(Security::TotpPendingSecret),
            big_integer_null(Security::TotpLastStep),
            timestamp_with_time_zone_null(Security::TotpEnabledAt),
        ] {
            add_column(manager, Users::Table, column).await?;
        }
        for column in [
            timestamp_with_time_zone_null(Security::AuthenticatedAt),
            timestamp_with_time_zone_null(Security::MfaAt),
        ] {
            add_column(manager, Sessions::Table, column).await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(RecoveryCodes::Table)
                    .if_not_exists()
                    .col(uuid(RecoveryCodes::Id).primary_key())
                    .col(uuid(RecoveryCodes::UserId))
                    .col(string_len(RecoveryCodes::CodeHash, 64))
                    .col(timestamp_with_time_zone_null(RecoveryCodes::UsedAt))
                    .col(timestamp_with_time_zone(RecoveryCodes::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_recovery_codes_user_id")
                            .from(RecoveryCodes::Table, RecoveryCodes::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_recovery_codes_user_code")
                    .table(RecoveryCodes::Table)
                    .col(RecoveryCodes::UserId)
                    .col(RecoveryCodes::CodeHash)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SecurityEvents::Table)
                    .if_not_exists()
                    .col(uuid(SecurityEvents::Id).primary_key())
                    .col(uuid(SecurityEvents::UserId))
                    .col(string_len(SecurityEvents::ApplicationContext, 50))
                    .col(string_len(SecurityEvents::Kind, 40))
                    .col(timestamp_with_time_zone(SecurityEvents::OccurredAt))
                    .col(string_len_null(SecurityEvents::IpAddress, 64))
                    .col(string_len_null(SecurityEvents::UserAgent, 255))
                    .col(boolean(SecurityEvents::NewDevice).default(false))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_security_events_user_id")
                            .from(SecurityEvents::Table, SecurityEvents::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_security_events_user_id")
                    .table(SecurityEvents::Table)
                    .col(SecurityEvents::UserId)
                    .col(SecurityEvents::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(SecurityEvents::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(RecoveryCodes::Table).to_owned())
            .await?;
        for column in [Security::AuthenticatedAt, Security::MfaAt] {
            drop_column(manager, Sessions::Table, column).await?;
        }
        for column in [
            Security::TotpSecret,
            Security::TotpPendingSecret,
            Security::TotpLastStep,
            Security::TotpEnabledAt,
        ] {
            drop_column(manager, Users::Table, column).await?;
        }
        Ok(())
    }
}

async fn add_column(
    manager: &SchemaManager<'_>,
    table: impl IntoIden,
    column: ColumnDef,
) -> Result<(), DbErr> {
    let mut column = column;
    manager
        .alter_table(
            Table::alter()
                .table(table)
                .add_column(&mut column)
                .to_owned(),
        )
        .await
}

async fn drop_column(
    manager: &SchemaManager<'_>,
    table: impl IntoIden,
    column: Security,
) -> Result<(), DbErr> {
    manager
        .alter_table(Table::alter().table(table).drop_column(column).to_owned())
        .await
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
}

/// The new columns of `users` and `sessions`.
#[derive(DeriveIden)]
enum Security {
    TotpSecret,
    TotpPendingSecret,
    TotpLastStep,
    TotpEnabledAt,
    AuthenticatedAt,
    MfaAt,
}

#[derive(DeriveIden)]
enum RecoveryCodes {
    Table,
    Id,
    UserId,
    CodeHash,
    UsedAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum SecurityEvents {
    Table,
    Id,
    UserId,
    ApplicationContext,
    Kind,
    OccurredAt,
    IpAddress,
    UserAgent,
    NewDevice,
}
