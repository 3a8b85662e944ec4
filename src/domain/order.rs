//! Order and payment statuses, and the only transitions SPEC §3 allows.

/// Status of an order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OrderStatus {
    /// Waiting for payment.
    Pending,
    /// Succeeded payments cover the amount.
    Paid,
    /// Delivered by an operator.
    Completed,
    /// Cancelled by its owner before anything was paid.
    Cancelled,
    /// Not paid within its payment window.
    Expired,
}

impl OrderStatus {
    /// Stored value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Paid => "paid",
            Self::Completed => "completed",
            Self::Cancelled => "cancelled",
            Self::Expired => "expired",
        }
    }

    /// Parses a stored value.
    pub fn from_db(value: &str) -> Option<Self> {
        Some(match value {
            "pending" => Self::Pending,
            "paid" => Self::Paid,
            "completed" => Self::Completed,
            "cancelled" => Self::Cancelled,
            "expired" => Self::Expired,
            _ => return None,
        })
    }

    /// SPEC §3: PENDING → PAID → COMPLETED, PENDING → CANCELLED, PENDING → EXPIRED.
    pub fn can_become(self, next: Self) -> bool {
        matches!(
            (self, next),
            (Self::Pending, Self::Paid)
                | (Self::Paid, Self::Completed)
                | (Self::Pending, Self::Cancelled)
                | (Self::Pending, Self::Expired)
        )
    }
}

/// Status of a payment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PaymentStatus {
    /// Created, not settled.
    Pending,
    /// Money received.
    Succeeded,
    /// Money not received.
    Failed,
}

impl PaymentStatus {
    /// Stored value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }

    /// Parses a stored value.
    pub fn from_db(value: &str) -> Option<Self> {
        Some(match value {
            "pending" => Self::Pending,
            "succeeded" => Self::Succeeded,
            "failed" => Self::Failed,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::OrderStatus::*;

    #[test]
    fn only_the_spec_transitions_are_allowed() {
        let all = [Pending, Paid, Completed, Cancelled, Expired];
        let allowed = [
            (Pending, Paid),
            (Paid, Completed),
            (Pending, Cancelled),
            (Pending, Expired),
        ];
        for from in all {
            for to in all {
                assert_eq!(
                    from.can_become(to),
                    allowed.contains(&(from, to)),
                    "{from:?} -> {to:?}"
                );
            }
            assert_eq!(super::OrderStatus::from_db(from.as_str()), Some(from));
        }
    }
}
