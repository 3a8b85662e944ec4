//! Payments (SPEC §3): idempotent creation never above the unpaid remainder, settlement by
//! an operator, and the order becoming `PAID` when succeeded payments cover it. Every write
//! locks the order first, so concurrent requests on one order are serialised.

use super::adapter::WebDatabaseAdapter;
use super::orders::OrderService;
use crate::clock::now;
use crate::domain::analytics::event;
use crate::domain::{NewEvent, NewPayment, OrderStatus, Payment, PaymentStatus};
use crate::error::{AppError, AppResult};
use rust_decimal::Decimal;
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

/// Payments service.
pub struct PaymentService {
    db: WebDatabaseAdapter,
    orders: Arc<OrderService>,
}

/// The same key from the same user gives the same payment; with another order or amount it
/// is a conflict.
fn replay(existing: Payment, new: &NewPayment) -> AppResult<Payment> {
    if new.is_replayed_by(&existing) {
        Ok(existing)
    } else {
        Err(AppError::conflict(
            "this idempotencyKey was used for another order or amount",
        ))
    }
}

impl PaymentService {
    /// A service over the web database.
    pub fn new(db: WebDatabaseAdapter, orders: Arc<OrderService>) -> Self {
        Self { db, orders }
    }

    /// Creates a pending payment on the caller's pending order.
    #[tracing::instrument(skip(self))]
    pub async fn create(&self, user_id: Uuid, new: NewPayment) -> AppResult<Payment> {
        if let Some(existing) = self
            .db
            .payment_by_key(user_id, &new.idempotency_key)
            .await?
        {
            return replay(existing, &new);
        }
        let at = now();
        let txn = self.db.begin_write().await?;
        let order = OrderService::lock_own(&txn, Some(user_id), new.order_id).await?;
        // Re-check under the lock: a concurrent request with this key may have won.
        if let Some(existing) = txn.payment_by_key(user_id, &new.idempotency_key).await? {
            return replay(existing, &new);
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
        let open = order.open();
        if new.amount.get() > open {
            return Err(AppError::bad_input(
                "input.amount",
                format!("exceeds what remains unpaid ({open})"),
            ));
        }
        let payment = match txn.insert_payment(Uuid::now_v7(), user_id, &new, at).await {
            Ok(p) => p,
            Err(AppError::Conflict(_)) => {
                // A request with this key committed after our check: it is the one.
                drop(txn);
                let existing = self
                    .db
                    .payment_by_key(user_id, &new.idempotency_key)
                    .await?
                    .ok_or_else(|| AppError::conflict("duplicate idempotencyKey"))?;
                return replay(existing, &new);
            }
            Err(e) => return Err(e),
        };
        txn.set_order_amounts(
            order.id,
            order.paid_amount,
            order.pending_amount + new.amount.get(),
            None,
            at,
        )
        .await?;
        txn.record_event(NewEvent {
            user_id: Some(user_id),
            event_type: event::PAYMENT_CREATED,
            data: serde_json::json!({ "paymentId": payment.id, "orderId": order.id, "amount": new.amount.get() }),
            at,
        })
        .await?;
        txn.commit().await?;
        self.orders.invalidate(user_id, at).await;
        Ok(payment)
    }

    /// An operator settles a pending payment; the order becomes `PAID` when succeeded
    /// payments cover it.
    #[tracing::instrument(skip(self))]
    pub async fn settle(&self, id: Uuid, outcome: PaymentStatus) -> AppResult<Payment> {
        if outcome == PaymentStatus::Pending {
            return Err(AppError::bad_input("status", "must be SUCCEEDED or FAILED"));
        }
        let at = now();
        let txn = self.db.begin_write().await?;
        let order_id = txn
            .payment(id)
            .await?
            .ok_or(AppError::NotFound("payment"))?
            .order_id;
        // Lock order first, then re-read the payment under that lock.
        let order = OrderService::lock_own(&txn, None, order_id).await?;
        let payment = txn
            .payment(id)
            .await?
            .ok_or(AppError::NotFound("payment"))?;
        if payment.status != PaymentStatus::Pending {
            return Err(AppError::conflict(format!(
                "the payment is already {}",
                payment.status.as_str()
            )));
        }
        txn.set_payment_status(id, outcome, at).await?;
        let pending = (order.pending_amount - payment.amount).max(Decimal::ZERO);
        let paid = if outcome == PaymentStatus::Succeeded {
            order.paid_amount + payment.amount
        } else {
            order.paid_amount
        };
        let now_paid = outcome == PaymentStatus::Succeeded && paid >= order.amount;
        txn.set_order_amounts(order.id, paid, pending, now_paid.then_some(at), at)
            .await?;
        txn.record_event(NewEvent {
            user_id: Some(payment.user_id),
            event_type: event::PAYMENT_SETTLED,
            data: serde_json::json!({ "paymentId": id, "orderId": order.id, "status": outcome.as_str() }),
            at,
        })
        .await?;
        if now_paid {
            OrderService::transition(&txn, &order, OrderStatus::Paid, event::ORDER_PAID, at)
                .await?;
        }
        let settled = txn
            .payment(id)
            .await?
            .ok_or(AppError::NotFound("payment"))?;
        txn.commit().await?;
        self.orders.invalidate(order.user_id, at).await;
        Ok(settled)
    }

    /// A payment of the caller (`None` when it is someone else's).
    pub async fn get_own(&self, user_id: Uuid, id: Uuid) -> AppResult<Option<Payment>> {
        Ok(self.db.payment(id).await?.filter(|p| p.user_id == user_id))
    }

    /// Payments of several orders by order (every order present, possibly with none),
    /// oldest first.
    pub async fn of_orders_grouped(
        &self,
        order_ids: &[Uuid],
    ) -> AppResult<HashMap<Uuid, Vec<Payment>>> {
        let mut grouped: HashMap<Uuid, Vec<Payment>> =
            order_ids.iter().map(|id| (*id, Vec::new())).collect();
        for payment in self.db.payments_of_orders(order_ids).await? {
            grouped.entry(payment.order_id).or_default().push(payment);
        }
        Ok(grouped)
    }
}
