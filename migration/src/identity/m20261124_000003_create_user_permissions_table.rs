use super::m20261124_000001_create_users_table::Users;
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(UserPermissions::Table)
                    .if_not_exists()
                    .col(uuid(UserPermissions::Id).primary_key())
                    .col(uuid(UserPermissions::UserId))
                    .col(string_len(UserPermissions::Permission, 100))
                    .col(string_len(UserPermissions::ApplicationContext, 50).default("web"))
                    .col(timestamp_with_time_zone(UserPermissions::GrantedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_user_permissions_user_id")
                            .from(UserPermissions::Table, UserPermissions::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("user_permissions_user_permission_context_key")
                    .table(UserPermissions::Table)
                    .col(UserPermissions::UserId)
                    .col(UserPermissions::Permission)
                    .col(UserPermissions::ApplicationContext)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_user_permissions_context_user")
                    .table(UserPermissions::Table)
                    .col(UserPermissions::ApplicationContext)
                    .col(UserPermissions::UserId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(UserPermissions::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum UserPermissions {
    Table,
    Id,
    UserId,
    Permission,
    ApplicationContext,
    GrantedAt,
}
