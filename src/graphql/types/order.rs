//! `Order`, `Payment`, their statuses, and the Relay connection of `myOrders`.

use super::page::{Cursor, PageInfo};
use super::scalars::{DateTimeScalar, DecimalScalar};
use crate::domain;
use crate::error::{AppError, AppResult};
use crate::graphql::loaders::{orders_loader, payments_loader};
use crate::web::orders::OrderPage;
use async_graphql::{Context, Enum, ID, Object, SimpleObject};

/// Status of an order.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(name = "OrderStatus", remote = "crate::domain::OrderStatus")]
pub enum OrderStatus {
    /// Waiting for payment.
    Pending,
    /// Succeeded payments cover the amount.
    Paid,
    /// Delivered.
    Completed,
    /// Cancelled by its owner before anything was paid.
    Cancelled,
    /// Not paid within its payment window.
    Expired,
}

/// Status of a payment.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(name = "PaymentStatus", remote = "crate::domain::PaymentStatus")]
pub enum PaymentStatus {
    /// Created, not settled.
    Pending,
    /// Money received.
    Succeeded,
    /// Money not received.
    Failed,
}

/// An exchange order.
pub struct Order(pub domain::Order);

/// An exchange order at a locked rate.
#[Object]
impl Order {
    /// Order id.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// Currency sold.
    async fn from_currency(&self) -> &str {
        &self.0.from_currency
    }
    /// Currency bought.
    async fn to_currency(&self) -> &str {
        &self.0.to_currency
    }
    /// Amount sold.
    async fn amount(&self) -> DecimalScalar {
        DecimalScalar(self.0.amount)
    }
    /// Rate locked when the order was placed.
    async fn exchange_rate(&self) -> DecimalScalar {
        DecimalScalar(self.0.exchange_rate)
    }
    /// Amount bought: `amount × exchangeRate`, half-even to 8 places.
    async fn to_amount(&self) -> DecimalScalar {
        DecimalScalar(self.0.to_amount)
    }
    /// Status.
    async fn status(&self) -> OrderStatus {
        self.0.status.into()
    }
    /// Sum of succeeded payments.
    async fn paid_amount(&self) -> DecimalScalar {
        DecimalScalar(self.0.paid_amount)
    }
    /// What remains unpaid (succeeded payments only).
    async fn remaining_amount(&self) -> DecimalScalar {
        DecimalScalar(self.0.remaining())
    }
    /// End of the payment window (meaningful while pending).
    async fn expires_at(&self) -> DateTimeScalar {
        DateTimeScalar(self.0.expires_at)
    }
    /// Creation time.
    async fn created_at(&self) -> DateTimeScalar {
        DateTimeScalar(self.0.created_at)
    }
    /// Last change.
    async fn updated_at(&self) -> DateTimeScalar {
        DateTimeScalar(self.0.updated_at)
    }
    /// Payments of this order, oldest first.
    async fn payments(&self, ctx: &Context<'_>) -> AppResult<Vec<Payment>> {
        Ok(payments_loader(ctx)?
            .load_one(self.0.id)
            .await?
            .unwrap_or_default()
            .into_iter()
            .map(Payment)
            .collect())
    }
}

/// A payment.
pub struct Payment(pub domain::Payment);

/// A payment towards an order.
#[Object]
impl Payment {
    /// Payment id.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// The order paid.
    async fn order(&self, ctx: &Context<'_>) -> AppResult<Order> {
        orders_loader(ctx)?
            .load_one(self.0.order_id)
            .await?
            .map(Order)
            .ok_or(AppError::NotFound("order"))
    }
    /// e.g. `card`.
    async fn payment_method(&self) -> &str {
        &self.0.payment_method
    }
    /// Amount.
    async fn amount(&self) -> DecimalScalar {
        DecimalScalar(self.0.amount)
    }
    /// Status.
    async fn status(&self) -> PaymentStatus {
        self.0.status.into()
    }
    /// The idempotency key it was created with.
    async fn idempotency_key(&self) -> &str {
        &self.0.idempotency_key
    }
    /// Creation time.
    async fn created_at(&self) -> DateTimeScalar {
        DateTimeScalar(self.0.created_at)
    }
}

/// An order and its cursor.
#[derive(SimpleObject)]
pub struct OrderEdge {
    /// Opaque cursor.
    pub cursor: String,
    /// The order.
    pub node: Order,
}

/// A page of orders, newest first.
#[derive(SimpleObject)]
pub struct OrderConnection {
    /// The orders.
    pub edges: Vec<OrderEdge>,
    /// Paging.
    pub page_info: PageInfo,
}

impl From<OrderPage> for OrderConnection {
    fn from(page: OrderPage) -> Self {
        let edges: Vec<OrderEdge> = page
            .orders
            .into_iter()
            .map(|o| OrderEdge {
                cursor: Cursor::encode("order", o.id),
                node: Order(o),
            })
            .collect();
        let cursors: Vec<&str> = edges.iter().map(|e| e.cursor.as_str()).collect();
        let page_info = PageInfo::forward(&cursors, page.has_next_page);
        Self { edges, page_info }
    }
}
