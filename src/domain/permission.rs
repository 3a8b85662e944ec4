//! `Permission`: a permission name such as `rates:write`.

use crate::error::AppError;

/// `area:action`, lower-case letters, digits and `_`, at most 100 bytes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Permission(String);

impl Permission {
    /// Set exchange rates.
    pub const RATES_WRITE: &str = "rates:write";
    /// Complete orders.
    pub const ORDERS_WRITE: &str = "orders:write";
    /// Settle payments.
    pub const PAYMENTS_WRITE: &str = "payments:write";
    /// Read daily analytics.
    pub const ANALYTICS_READ: &str = "analytics:read";
    /// Grant and revoke permissions.
    pub const PERMISSIONS_WRITE: &str = "permissions:write";

    /// Every permission this server checks, for the contexts it serves.
    pub const KNOWN: [&'static str; 5] = [
        Self::RATES_WRITE,
        Self::ORDERS_WRITE,
        Self::PAYMENTS_WRITE,
        Self::ANALYTICS_READ,
        Self::PERMISSIONS_WRITE,
    ];

    /// A permission to grant: one of [`Permission::KNOWN`] (a typo would grant nothing and
    /// look granted).
    pub fn known(field: &'static str, value: &str) -> Result<Self, AppError> {
        let permission = Self::parse(field, value)?;
        if !Self::KNOWN.contains(&permission.as_str()) {
            return Err(AppError::bad_input(
                field,
                format!(
                    "is not a permission; known ones: {}",
                    Self::KNOWN.join(", ")
                ),
            ));
        }
        Ok(permission)
    }

    /// Validates the form of `value` (`area:action`) for the input field `field`; any
    /// name of that form may be revoked, also one stored before it was checked.
    pub fn parse(field: &'static str, value: &str) -> Result<Self, AppError> {
        let valid_part = |p: &str| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        };
        match value.split_once(':') {
            Some((area, action))
                if value.len() <= 100 && valid_part(area) && valid_part(action) =>
            {
                Ok(Self(value.to_owned()))
            }
            _ => Err(AppError::bad_input(
                field,
                "must look like `area:action`, e.g. rates:write",
            )),
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_known_permissions_are_granted() {
        assert!(Permission::known("permission", "rates:write").is_ok());
        let typo = Permission::known("permission", "rates:writ").unwrap_err();
        assert!(format!("{typo:?}").contains("analytics:read"), "{typo:?}");
        assert!(Permission::parse("permission", "rates:writ").is_ok());
    }

    #[test]
    fn names_are_checked() {
        assert!(Permission::parse("permission", "rates:write").is_ok());
        for bad in [
            "",
            "rates",
            "Rates:write",
            "rates:",
            ":write",
            "a:b:c",
            "rates write",
        ] {
            assert!(Permission::parse("permission", bad).is_err(), "{bad}");
        }
    }
}
