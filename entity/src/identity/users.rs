//! `users`: one account, shared by every application context.

use sea_orm::entity::prelude::*;

/// A row of `users`. Holds the password hash and the sealed two-factor secret: never expose
/// them through the API.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(unique)]
    pub email: String,
    pub password_hash: String,
    pub email_verified: bool,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// The enabled TOTP secret, sealed under the server key (never in the clear).
    pub totp_secret: Option<String>,
    /// A TOTP secret enrolled but not yet confirmed, sealed likewise.
    pub totp_pending_secret: Option<String>,
    /// The last TOTP time step accepted (a code is never accepted twice).
    pub totp_last_step: Option<i64>,
    pub totp_enabled_at: Option<DateTimeUtc>,
}

/// Relations of `users`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The user's sessions.
    #[sea_orm(has_many = "super::sessions::Entity")]
    Sessions,
    /// The user's permissions in every context.
    #[sea_orm(has_many = "super::user_permissions::Entity")]
    UserPermissions,
}

impl Related<super::sessions::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Sessions.def()
    }
}

impl Related<super::user_permissions::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::UserPermissions.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
