//! Orders and payments: their statuses, the only transitions SPEC §3 allows, and the values
//! the services and the web database exchange.

use super::{CurrencyPair, Money};
use crate::clock::DateTime;
use crate::error::{AppError, AppResult};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

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

/// An order as the API and the cache see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// Order id (UUIDv7: ordered by creation).
    pub id: Uuid,
    /// Owner (identity user).
    pub user_id: Uuid,
    /// Currency sold.
    pub from_currency: String,
    /// Currency bought.
    pub to_currency: String,
    /// Amount sold.
    pub amount: Decimal,
    /// Rate locked at creation.
    pub exchange_rate: Decimal,
    /// `amount × exchange_rate`, half-even to 8 places.
    pub to_amount: Decimal,
    /// Status.
    pub status: OrderStatus,
    /// Sum of succeeded payments.
    pub paid_amount: Decimal,
    /// Sum of pending payments.
    pub pending_amount: Decimal,
    /// End of the payment window.
    pub expires_at: DateTime,
    /// Creation.
    pub created_at: DateTime,
    /// Last change.
    pub updated_at: DateTime,
    /// The key the client placed it with, if any.
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

impl Order {
    /// What is still unpaid (succeeded payments only).
    pub fn remaining(&self) -> Decimal {
        (self.amount - self.paid_amount).max(Decimal::ZERO)
    }

    /// What a new payment may still cover: neither paid nor pending.
    pub fn open(&self) -> Decimal {
        self.amount - self.paid_amount - self.pending_amount
    }

    /// Whether a pending order's window has passed with no payment pending under it.
    pub fn is_due(&self, at: DateTime) -> bool {
        self.status == OrderStatus::Pending
            && self.expires_at <= at
            && self.pending_amount.is_zero()
    }
}

/// A client's idempotency key: 1 to 255 printable ASCII characters (surrounding spaces
/// dropped).
pub fn idempotency_key_of(field: &'static str, raw: &str) -> AppResult<String> {
    let key = raw.trim();
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(AppError::bad_input(
            field,
            "must be 1 to 255 printable ASCII characters",
        ));
    }
    Ok(key.to_owned())
}

/// An order to place, priced and validated.
#[derive(Clone, Debug)]
pub struct NewOrder {
    /// Id of the new order.
    pub id: Uuid,
    /// Owner.
    pub user_id: Uuid,
    /// The pair.
    pub pair: CurrencyPair,
    /// Amount sold.
    pub amount: Money,
    /// The rate locked into the order: its row (which must still be valid when the order
    /// is stored) and value.
    pub rate_id: Uuid,
    /// Its value.
    pub rate: Decimal,
    /// `amount × rate`.
    pub to_amount: Decimal,
    /// End of the payment window.
    pub expires_at: DateTime,
    /// Creation time.
    pub created_at: DateTime,
    /// The client's key for retrying safely.
    pub idempotency_key: Option<String>,
}

impl NewOrder {
    /// Whether `existing`, found under the same key, was placed by this very request (same
    /// pair and amount; the rate may have moved since).
    pub fn is_replayed_by(&self, existing: &Order) -> bool {
        existing.from_currency == self.pair.from.as_str()
            && existing.to_currency == self.pair.to.as_str()
            && existing.amount == self.amount.get()
    }
}

/// A payment as the API sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    /// Payment id.
    pub id: Uuid,
    /// The order paid.
    pub order_id: Uuid,
    /// Payer.
    pub user_id: Uuid,
    /// e.g. `card`.
    pub payment_method: String,
    /// Amount.
    pub amount: Decimal,
    /// Status.
    pub status: PaymentStatus,
    /// The client's idempotency key.
    pub idempotency_key: String,
    /// Creation.
    pub created_at: DateTime,
}

/// What `createPayment` asks for, validated.
#[derive(Clone, Debug)]
pub struct NewPayment {
    /// The order.
    pub order_id: Uuid,
    /// Method, 1–100 characters.
    pub payment_method: String,
    /// Amount.
    pub amount: Money,
    /// Idempotency key, 1–255 characters.
    pub idempotency_key: String,
}

impl NewPayment {
    /// Validates the free-text fields.
    pub fn parse(
        order_id: Uuid,
        payment_method: &str,
        amount: Money,
        idempotency_key: &str,
    ) -> AppResult<Self> {
        let method = payment_method.trim();
        if method.is_empty() || method.chars().count() > 100 {
            return Err(AppError::bad_input(
                "input.paymentMethod",
                "must be 1 to 100 characters",
            ));
        }
        Ok(Self {
            order_id,
            payment_method: method.to_owned(),
            amount,
            idempotency_key: idempotency_key_of("input.idempotencyKey", idempotency_key)?,
        })
    }

    /// Whether `existing`, found under the same key, was made by this very request.
    pub fn is_replayed_by(&self, existing: &Payment) -> bool {
        existing.order_id == self.order_id && existing.amount == self.amount.get()
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
