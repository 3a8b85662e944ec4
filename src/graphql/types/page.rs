//! Relay paging shared by every connection: `PageInfo` and opaque cursors.

use crate::error::{AppError, AppResult};
use async_graphql::SimpleObject;
use uuid::Uuid;

/// Relay page information.
#[derive(SimpleObject)]
pub struct PageInfo {
    /// Whether more items follow `endCursor`.
    pub has_next_page: bool,
    /// Always false: pages only go forward.
    pub has_previous_page: bool,
    /// Cursor of the first item.
    pub start_cursor: Option<String>,
    /// Cursor of the last item; pass as `after` for the next page.
    pub end_cursor: Option<String>,
}

impl PageInfo {
    /// The page info of a forward page whose edges carry `cursors`.
    pub fn forward(cursors: &[&str], has_next_page: bool) -> Self {
        Self {
            has_next_page,
            has_previous_page: false,
            start_cursor: cursors.first().map(|c| (*c).to_owned()),
            end_cursor: cursors.last().map(|c| (*c).to_owned()),
        }
    }
}

/// An opaque cursor: the id of an item of one kind (`order`, `security_event`).
pub struct Cursor;

impl Cursor {
    /// The form handed to clients.
    pub fn encode(kind: &str, id: Uuid) -> String {
        hex::encode(format!("{kind}:{id}"))
    }

    /// The id in a client's cursor of `kind`, for the argument `field`.
    pub fn decode(field: &'static str, kind: &str, raw: &str) -> AppResult<Uuid> {
        let bad = || AppError::bad_input(field, "is not a cursor from this API");
        let bytes = hex::decode(raw).map_err(|_| bad())?;
        let text = String::from_utf8(bytes).map_err(|_| bad())?;
        let id = text
            .strip_prefix(kind)
            .and_then(|rest| rest.strip_prefix(':'))
            .ok_or_else(bad)?;
        Uuid::parse_str(id).map_err(|_| bad())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_keep_to_their_kind() {
        let id = Uuid::now_v7();
        let cursor = Cursor::encode("order", id);
        assert_eq!(Cursor::decode("after", "order", &cursor).unwrap(), id);
        assert!(Cursor::decode("after", "security_event", &cursor).is_err());
        assert!(Cursor::decode("after", "order", "zz").is_err());
    }
}
