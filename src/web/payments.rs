//! Payments (SPEC §3): idempotent creation never above the unpaid remainder, settlement by
//! an operator, and the order becoming `PAID` when succeeded payments cover it. Every write
//! locks the order first, so concurrent requests on one order are serialised.

use crate::db::write_txn;
use crate::domain::{Money, OrderStatus, PaymentStatus};
use crate::error::{AppError, AppResult, ResultExt};
use crate::web::analytics::event;
use crate::web::orders::{Order, OrderService};
use crate::web::{WebDatabaseAdapter, now};
use entity::web::payments;
use rust_decimal::Decimal;
use sea_orm::TransactionTrait;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use uuid::Uuid;

type DateTime = chrono::DateTime<chrono::Utc>;

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

impl TryFrom<payments::Model> for Payment {
    type Error = AppError;

    fn try_from(m: payments::Model) -> AppResult<Self> {
        let status = PaymentStatus::from_db(&m.status).ok_or_else(|| {
            AppError::internal(anyhow::anyhow!(
                "payment {} has unknown status {:?}",
                m.id,
                m.status
            ))
        })?;
        Ok(Self {
            id: m.id,
            order_id: m.order_id,
            user_id: m.user_id,
            payment_method: m.payment_method,
            amount: m.amount.0,
            status,
            idempotency_key: m.idempotency_key,
            created_at: m.created_at,
        })
    }
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
        let key = idempotency_key.trim();
        if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(AppError::bad_input(
                "input.idempotencyKey",
                "must be 1 to 255 printable ASCII characters",
            ));
        }
        Ok(Self {
            order_id,
            payment_method: method.to_owned(),
            amount,
            idempotency_key: key.to_owned(),
        })
    }
}

/// Payments service.
pub struct PaymentService {
    adapter: WebDatabaseAdapter,
    orders: Arc<OrderService>,
}

impl PaymentService {
    /// A service over the web database.
    pub fn new(adapter: WebDatabaseAdapter, orders: Arc<OrderService>) -> Self {
        Self { adapter, orders }
    }

    /// The same key from the same user gives the same payment; with another order or
    /// amount it is a conflict.
    fn replay(existing: payments::Model, new: &NewPayment) -> AppResult<Payment> {
        if existing.order_id == new.order_id && existing.amount.0 == new.amount.get() {
            existing.try_into()
        } else {
            Err(AppError::conflict(
                "this idempotencyKey was used for another order or amount",
            ))
        }
    }

    /// Creates a pending payment on the caller's pending order.
    #[tracing::instrument(skip(self))]
    pub async fn create(&self, user_id: Uuid, new: NewPayment) -> AppResult<Payment> {
        let conn = self.adapter.conn();
        if let Some(existing) =
            WebDatabaseAdapter::payment_by_key(conn, user_id, &new.idempotency_key).await?
        {
            return Self::replay(existing, &new);
        }
        let at = now();
        let txn = conn.begin_with_options(write_txn()).await?;
        let order = OrderService::lock_own(&txn, Some(user_id), new.order_id).await?;
        // Re-check under the lock: a concurrent request with this key may have won.
        if let Some(existing) =
            WebDatabaseAdapter::payment_by_key(&txn, user_id, &new.idempotency_key).await?
        {
            return Self::replay(existing, &new);
        }
        if OrderService::expire_if_due(&txn, &order, at).await? {
            txn.commit().await?;
            self.orders.invalidate(user_id, at).await;
            return Err(AppError::conflict("the order has expired"));
        }
        if order.status != OrderStatus::Pending {
            return Err(AppError::conflict(format!(
                "only a pending order can be paid; this one is {}",
                order.status.as_str()
            )));
        }
        let open = order.amount - order.paid_amount - order.pending_amount;
        if new.amount.get() > open {
            return Err(AppError::bad_input(
                "input.amount",
                format!("exceeds what remains unpaid ({open})"),
            ));
        }
        let inserted = WebDatabaseAdapter::insert_payment(
            &txn,
            payments::Model {
                id: Uuid::now_v7(),
                order_id: order.id,
                user_id,
                payment_method: new.payment_method.clone(),
                amount: new.amount.get().into(),
                status: PaymentStatus::Pending.as_str().to_owned(),
                idempotency_key: new.idempotency_key.clone(),
                created_at: at,
                updated_at: at,
            },
        )
        .await
        .on_unique(|| AppError::conflict("duplicate idempotencyKey"));
        let payment = match inserted {
            Ok(p) => p,
            Err(AppError::Conflict(_)) => {
                drop(txn);
                let existing =
                    WebDatabaseAdapter::payment_by_key(conn, user_id, &new.idempotency_key)
                        .await?
                        .ok_or_else(|| AppError::conflict("duplicate idempotencyKey"))?;
                return Self::replay(existing, &new);
            }
            Err(e) => return Err(e),
        };
        WebDatabaseAdapter::set_order_amounts(
            &txn,
            &order,
            order.paid_amount,
            order.pending_amount + new.amount.get(),
            None,
            at,
        )
        .await?;
        WebDatabaseAdapter::record_event(
            &txn,
            Some(user_id),
            event::PAYMENT_CREATED,
            serde_json::json!({ "paymentId": payment.id, "orderId": order.id, "amount": new.amount.get() }),
            at,
        )
        .await?;
        txn.commit().await?;
        self.orders.invalidate(user_id, at).await;
        payment.try_into()
    }

    /// An operator settles a pending payment; the order becomes `PAID` when succeeded
    /// payments cover it.
    #[tracing::instrument(skip(self))]
    pub async fn settle(&self, id: Uuid, outcome: PaymentStatus) -> AppResult<Payment> {
        if outcome == PaymentStatus::Pending {
            return Err(AppError::bad_input("status", "must be SUCCEEDED or FAILED"));
        }
        let conn = self.adapter.conn();
        let at = now();
        let txn = conn.begin_with_options(write_txn()).await?;
        let order_id = WebDatabaseAdapter::payment(&txn, id)
            .await?
            .ok_or(AppError::NotFound("payment"))?
            .order_id;
        // Lock order first, then re-read the payment under that lock.
        let order: Order = OrderService::lock_own(&txn, None, order_id).await?;
        let payment: Payment = WebDatabaseAdapter::payment(&txn, id)
            .await?
            .ok_or(AppError::NotFound("payment"))?
            .try_into()?;
        if payment.status != PaymentStatus::Pending {
            return Err(AppError::conflict(format!(
                "the payment is already {}",
                payment.status.as_str()
            )));
        }
        WebDatabaseAdapter::set_payment_status(&txn, id, outcome.as_str(), at).await?;
        let pending = (order.pending_amount - payment.amount).max(Decimal::ZERO);
        let paid = if outcome == PaymentStatus::Succeeded {
            order.paid_amount + payment.amount
        } else {
            order.paid_amount
        };
        let now_paid = outcome == PaymentStatus::Succeeded && paid >= order.amount;
        WebDatabaseAdapter::set_order_amounts(
            &txn,
            &order,
            paid,
            pending,
            now_paid.then_some(at),
            at,
        )
        .await?;
        WebDatabaseAdapter::record_event(
            &txn,
            Some(payment.user_id),
            event::PAYMENT_SETTLED,
            serde_json::json!({ "paymentId": id, "orderId": order.id, "status": outcome.as_str() }),
            at,
        )
        .await?;
        if now_paid {
            OrderService::transition(&txn, &order, OrderStatus::Paid, event::ORDER_PAID, at)
                .await?;
        }
        let settled = WebDatabaseAdapter::payment(&txn, id)
            .await?
            .ok_or(AppError::NotFound("payment"))?;
        txn.commit().await?;
        self.orders.invalidate(order.user_id, at).await;
        settled.try_into()
    }

    /// A payment of the caller (`None` when it is someone else's).
    pub async fn get_own(&self, user_id: Uuid, id: Uuid) -> AppResult<Option<Payment>> {
        match WebDatabaseAdapter::payment(self.adapter.conn(), id).await? {
            Some(p) if p.user_id == user_id => Ok(Some(p.try_into()?)),
            _ => Ok(None),
        }
    }

    /// Payments of several orders by order (every order present, possibly with none),
    /// oldest first.
    pub async fn of_orders_grouped(
        &self,
        order_ids: &[Uuid],
    ) -> AppResult<std::collections::HashMap<Uuid, Vec<Payment>>> {
        let mut grouped: std::collections::HashMap<Uuid, Vec<Payment>> =
            order_ids.iter().map(|id| (*id, Vec::new())).collect();
        for payment in self.of_orders(order_ids).await? {
            grouped.entry(payment.order_id).or_default().push(payment);
        }
        Ok(grouped)
    }

    /// Payments of several orders, oldest first.
    pub async fn of_orders(&self, order_ids: &[Uuid]) -> AppResult<Vec<Payment>> {
        WebDatabaseAdapter::payments_of_orders(self.adapter.conn(), order_ids)
            .await?
            .into_iter()
            .map(Payment::try_from)
            .collect()
    }
}
