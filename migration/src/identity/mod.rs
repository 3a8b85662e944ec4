//! `IdentityMigrator`: the tables of `exchanger_identity`.

use sea_orm_migration::prelude::*;

mod m20261124_000001_create_users_table;
mod m20261124_000002_create_sessions_table;
mod m20261124_000003_create_user_permissions_table;
mod m20261124_000004_create_user_tokens_table;
mod m20261203_000001_create_trusted_devices_table;
mod m20261203_000002_create_outbox_table;
mod m20261203_000003_account_security;

/// Migrates the identity database; history in `seaql_migrations_identity`.
pub struct IdentityMigrator;

#[async_trait::async_trait]
impl MigratorTrait for IdentityMigrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261124_000001_create_users_table::Migration),
            Box::new(m20261124_000002_create_sessions_table::Migration),
            Box::new(m20261124_000003_create_user_permissions_table::Migration),
            Box::new(m20261124_000004_create_user_tokens_table::Migration),
            Box::new(m20261203_000001_create_trusted_devices_table::Migration),
            Box::new(m20261203_000002_create_outbox_table::Migration),
            Box::new(m20261203_000003_account_security::Migration),
        ]
    }

    fn migration_table_name() -> DynIden {
        "seaql_migrations_identity".into_iden()
    }
}
