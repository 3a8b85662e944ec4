//! `WebMigrator`: the tables of `exchanger_web`.

use sea_orm_migration::prelude::*;

mod m20261124_000001_create_exchange_rates_table;
mod m20261124_000002_create_orders_table;
mod m20261124_000003_create_payments_table;
mod m20261124_000004_create_analytics_events_table;
mod m20261203_000001_create_outbox_table;
mod m20261203_000002_add_orders_idempotency_key;
mod m20261203_000003_create_leases_table;

/// Migrates the web database; history in `seaql_migrations_web`.
pub struct WebMigrator;

#[async_trait::async_trait]
impl MigratorTrait for WebMigrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261124_000001_create_exchange_rates_table::Migration),
            Box::new(m20261124_000002_create_orders_table::Migration),
            Box::new(m20261124_000003_create_payments_table::Migration),
            Box::new(m20261124_000004_create_analytics_events_table::Migration),
            Box::new(m20261203_000001_create_outbox_table::Migration),
            Box::new(m20261203_000002_add_orders_idempotency_key::Migration),
            Box::new(m20261203_000003_create_leases_table::Migration),
        ]
    }

    fn migration_table_name() -> DynIden {
        "seaql_migrations_web".into_iden()
    }
}
