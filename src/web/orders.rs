//! Orders (SPEC §3): creation at a locked rate, the only legal transitions, expiry of unpaid
//! orders, and the user's order list with its first page cached under
//! `cache:{ctx}:orders:{user_id}`.

use super::adapter::{OrderInsert, WebDatabaseAdapter, WebTransaction};
use super::rates::RateService;
use crate::cache::{Cache, keys};
use crate::clock::{DateTime, now};
use crate::coherence::{Coherence, Outbox};
use crate::domain::analytics::event;
use crate::domain::{
    Change, CurrencyPair, Money, NewEvent, NewOrder, Order, OrderStatus, convert, split_page,
};
use crate::error::{AppError, AppResult};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// Orders kept in the cached first page of a user's list: the default page size of
/// `myOrders` (SPEC §3), so the common request is served whole from the cache.
pub const CACHED_PAGE: u64 = 20;
/// Largest page `myOrders` serves.
pub const MAX_PAGE: u64 = 100;

/// A page of a user's orders, newest first.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OrderPage {
    /// The orders.
    pub orders: Vec<Order>,
    /// Whether older orders follow.
    pub has_next_page: bool,
}

/// Orders service.
pub struct OrderService {
    db: WebDatabaseAdapter,
    coherence: Arc<Coherence>,
    rates: Arc<RateService>,
    payment_window: Duration,
    cache: Arc<Cache>,
    keys: keys::Keys,
}

impl OrderService {
    /// A service over the web database and the cache.
    pub fn new(
        db: WebDatabaseAdapter,
        cache: Arc<Cache>,
        keys: keys::Keys,
        coherence: Arc<Coherence>,
        rates: Arc<RateService>,
        payment_window: Duration,
    ) -> Self {
        Self {
            db,
            coherence,
            rates,
            payment_window,
            cache,
            keys,
        }
    }

    /// Drops what a write to `user_id`'s orders or payments at `at` made stale: the first
    /// page of their orders and the analytics of that UTC day (everywhere; kept in the
    /// outbox when the store cannot be reached).
    pub async fn invalidate(&self, user_id: Uuid, at: DateTime) {
        self.coherence
            .apply_or_record(Outbox::Web, Change::OrdersChanged { user_id, at })
            .await;
    }

    /// Places an order at the rate valid now (SPEC §3). With an `idempotency_key`, the
    /// same key and input give the same order; the same key with other input is `CONFLICT`.
    #[tracing::instrument(skip(self))]
    pub async fn create(
        &self,
        user_id: Uuid,
        pair: CurrencyPair,
        amount: Money,
        idempotency_key: Option<String>,
    ) -> AppResult<Order> {
        let window = chrono::Duration::from_std(self.payment_window).map_err(AppError::internal)?;
        let at = now();
        let mut new = NewOrder {
            id: Uuid::now_v7(),
            user_id,
            pair,
            amount,
            rate_id: Uuid::nil(),
            rate: Default::default(),
            to_amount: Default::default(),
            expires_at: at + window,
            created_at: at,
            idempotency_key,
        };
        if let Some(existing) = self.replayed(&new).await? {
            return Ok(existing);
        }
        // The cached rate is checked against the database as the order is stored: a rate
        // closed since it was cached (by another process, while Redis stalled…) is read
        // again, so an order never locks a rate that is no longer valid.
        let mut from_database = false;
        loop {
            let rate = if from_database {
                self.rates.current_from_database(&new.pair).await?
            } else {
                self.rates.current(&new.pair).await?
            }
            .ok_or(AppError::NotFound("exchange rate"))?;
            new.rate_id = rate.id;
            new.rate = rate.rate;
            new.to_amount = convert("input.amount", amount, rate.rate)?;
            match self.place(&new).await? {
                OrderInsert::Placed(order) => {
                    self.invalidate(user_id, new.created_at).await;
                    return Ok(*order);
                }
                OrderInsert::RateClosed if !from_database => from_database = true,
                OrderInsert::RateClosed => {
                    return Err(AppError::conflict("the rate changed; try again"));
                }
                OrderInsert::KeyUsed => {
                    return self.replayed(&new).await?.ok_or_else(|| {
                        AppError::conflict("this idempotencyKey was used for another order")
                    });
                }
            }
        }
    }

    /// The order placed earlier with `new`'s idempotency key: `Some` when it is the same
    /// request again, `CONFLICT` when the key was used for another order.
    async fn replayed(&self, new: &NewOrder) -> AppResult<Option<Order>> {
        let Some(key) = &new.idempotency_key else {
            return Ok(None);
        };
        match self.db.order_by_key(new.user_id, key).await? {
            Some(existing) if new.is_replayed_by(&existing) => Ok(Some(existing)),
            Some(_) => Err(AppError::conflict(
                "this idempotencyKey was used for another order or amount",
            )),
            None => Ok(None),
        }
    }

    /// Stores `new` with its analytics event.
    async fn place(&self, new: &NewOrder) -> AppResult<OrderInsert> {
        let event = NewEvent {
            user_id: Some(new.user_id),
            event_type: event::ORDER_CREATED,
            data: serde_json::json!({
                "orderId": new.id,
                "pair": format!("{}_{}", new.pair.from, new.pair.to),
                "amount": new.amount.get(),
            }),
            at: new.created_at,
        };
        self.db.insert_order_with_event(new, event).await
    }

    /// The caller's order, or `None` (also for another user's order).
    pub async fn get(&self, user_id: Uuid, id: Uuid) -> AppResult<Option<Order>> {
        Ok(self.db.order(id).await?.filter(|o| o.user_id == user_id))
    }

    /// Orders by id, for the DataLoader (no ownership check: callers only pass ids they
    /// reached through their own objects).
    pub async fn by_ids(&self, ids: &[Uuid]) -> AppResult<Vec<Order>> {
        self.db.orders_by_ids(ids).await
    }

    /// A page of the user's orders, newest first, after `after`, optionally of one status.
    /// The first page without filter comes from `cache:{ctx}:orders:{user_id}`.
    pub async fn list(
        &self,
        user_id: Uuid,
        first: u64,
        after: Option<Uuid>,
        status: Option<OrderStatus>,
    ) -> AppResult<OrderPage> {
        let first_page = after.is_none() && status.is_none() && first <= CACHED_PAGE;
        if first_page {
            let key = self.keys.orders(user_id);
            let page = match self.cache.get::<OrderPage>(&key).await {
                (Some(page), _) => page,
                (None, token) => {
                    let page = self.load_page(user_id, CACHED_PAGE, None, None).await?;
                    self.cache.fill(&key, token, &page, keys::ORDERS_TTL).await;
                    page
                }
            };
            let n = first as usize;
            return Ok(OrderPage {
                has_next_page: page.orders.len() > n || page.has_next_page,
                orders: page.orders.into_iter().take(n).collect(),
            });
        }
        self.load_page(user_id, first, after, status).await
    }

    async fn load_page(
        &self,
        user_id: Uuid,
        first: u64,
        after: Option<Uuid>,
        status: Option<OrderStatus>,
    ) -> AppResult<OrderPage> {
        let rows = self.db.orders_of(user_id, first + 1, after, status).await?;
        let (orders, has_next_page) = split_page(rows, first);
        Ok(OrderPage {
            orders,
            has_next_page,
        })
    }

    /// Locks the caller's order for a write (any order when `user_id` is `None`);
    /// `NOT_FOUND` when it is not theirs.
    pub async fn lock_own(
        txn: &WebTransaction,
        user_id: Option<Uuid>,
        id: Uuid,
    ) -> AppResult<Order> {
        match txn.lock_order(id).await? {
            Some(order) if user_id.is_none_or(|u| u == order.user_id) => Ok(order),
            _ => Err(AppError::NotFound("order")),
        }
    }

    /// Moves a locked order to `next`, recording `event_type`; refuses illegal transitions.
    pub async fn transition(
        txn: &WebTransaction,
        order: &Order,
        next: OrderStatus,
        event_type: &'static str,
        at: DateTime,
    ) -> AppResult<()> {
        if !order.status.can_become(next) {
            return Err(AppError::conflict(format!(
                "an order that is {} cannot become {}",
                order.status.as_str(),
                next.as_str()
            )));
        }
        txn.set_order_status(order.id, next, at).await?;
        txn.record_event(NewEvent {
            user_id: Some(order.user_id),
            event_type,
            data: serde_json::json!({ "orderId": order.id }),
            at,
        })
        .await
    }

    /// Expires the order when it is due, inside the caller's transaction (the caller
    /// commits and then reports `CONFLICT`).
    pub async fn expire_if_due(
        txn: &WebTransaction,
        order: &Order,
        at: DateTime,
    ) -> AppResult<bool> {
        if !order.is_due(at) {
            return Ok(false);
        }
        Self::transition(txn, order, OrderStatus::Expired, event::ORDER_EXPIRED, at).await?;
        Ok(true)
    }

    /// The owner cancels a pending order on which nothing is paid or pending.
    #[tracing::instrument(skip(self))]
    pub async fn cancel(&self, user_id: Uuid, id: Uuid) -> AppResult<Order> {
        let at = now();
        let txn = self.db.begin_write().await?;
        let order = Self::lock_own(&txn, Some(user_id), id).await?;
        if Self::expire_if_due(&txn, &order, at).await? {
            txn.commit().await?;
            self.invalidate(user_id, at).await;
            return Err(AppError::conflict("the order has expired"));
        }
        if order.status == OrderStatus::Pending
            && !(order.paid_amount.is_zero() && order.pending_amount.is_zero())
        {
            return Err(AppError::conflict(
                "an order with payments cannot be cancelled",
            ));
        }
        self.commit_transition(
            txn,
            &order,
            OrderStatus::Cancelled,
            event::ORDER_CANCELLED,
            at,
        )
        .await
    }

    /// An operator completes a paid order.
    #[tracing::instrument(skip(self))]
    pub async fn complete(&self, id: Uuid) -> AppResult<Order> {
        let at = now();
        let txn = self.db.begin_write().await?;
        let order = Self::lock_own(&txn, None, id).await?;
        self.commit_transition(
            txn,
            &order,
            OrderStatus::Completed,
            event::ORDER_COMPLETED,
            at,
        )
        .await
    }

    /// Moves a locked order to `next` (recording `event_type`), commits, drops the caches
    /// the change made stale and returns the order as stored.
    async fn commit_transition(
        &self,
        txn: WebTransaction,
        order: &Order,
        next: OrderStatus,
        event_type: &'static str,
        at: DateTime,
    ) -> AppResult<Order> {
        Self::transition(&txn, order, next, event_type, at).await?;
        let updated = txn
            .order(order.id)
            .await?
            .ok_or(AppError::NotFound("order"))?;
        txn.commit().await?;
        self.invalidate(order.user_id, at).await;
        Ok(updated)
    }

    /// Takes (or keeps) the lease on housekeeping for `holder` for one `interval` (plus a
    /// margin, so the holder keeps it from round to round); whether `holder` has it.
    pub async fn take_housekeeping_lease(
        &self,
        holder: &str,
        interval: Duration,
    ) -> AppResult<bool> {
        let at = now();
        let span = chrono::Duration::from_std(interval * 2).map_err(AppError::internal)?;
        self.db
            .take_lease("housekeeping", holder, at, at + span)
            .await
    }

    /// Expires every order whose payment window has passed (the sweeper); returns how many.
    pub async fn expire_due(&self) -> AppResult<usize> {
        let at = now();
        let due = self.db.due_orders(at, 500).await?;
        let mut expired = 0;
        for id in due {
            let txn = self.db.begin_write().await?;
            let order = Self::lock_own(&txn, None, id).await?;
            if Self::expire_if_due(&txn, &order, at).await? {
                txn.commit().await?;
                self.invalidate(order.user_id, at).await;
                expired += 1;
            }
        }
        Ok(expired)
    }
}
