//! `analytics_events`: one key action (SPEC §3), written with the change it describes.

use sea_orm::entity::prelude::*;

/// A row of `analytics_events`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "analytics_events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: Option<Uuid>,
    pub event_type: String,
    pub event_data: Option<Json>,
    pub created_at: DateTimeUtc,
}

/// `analytics_events` has no relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
