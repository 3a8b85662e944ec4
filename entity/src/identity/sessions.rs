//! `sessions`: a signed-in session of one user in one application context.

use sea_orm::entity::prelude::*;

/// A row of `sessions`. `id` is the public session id; the token itself is never stored,
/// only its SHA-256 (`token_hash`).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sessions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub user_id: Uuid,
    #[sea_orm(unique)]
    pub token_hash: String,
    pub application_context: String,
    /// `{"userAgent": …, "ipAddress": …}` captured at sign-in.
    pub session_data: Option<Json>,
    pub expires_at: DateTimeUtc,
    pub last_seen_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// Last time the user proved who they are in this session (sign-in or step-up); NULL in
    /// rows older than this column means `created_at`.
    pub authenticated_at: Option<DateTimeUtc>,
    /// Last time this session proved a second factor.
    pub mfa_at: Option<DateTimeUtc>,
}

/// Relations of `sessions`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The session's user.
    #[sea_orm(
        belongs_to = "super::users::Entity",
        from = "Column::UserId",
        to = "super::users::Column::Id",
        on_delete = "Cascade"
    )]
    User,
}

impl Related<super::users::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::User.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
