//! Orders (SPEC §3): creation at a locked rate, the only legal transitions, expiry of unpaid
//! orders, and the user's order list with its first page cached under
//! `cache:{ctx}:orders:{user_id}`.

use crate::cache::{Cache, keys};
use crate::db::write_txn;
use crate::domain::{CurrencyPair, Money, OrderStatus, round_money};
use crate::error::{AppError, AppResult};
use crate::web::analytics::{AnalyticsService, event};
use crate::web::rates::RateService;
use crate::web::{WebDatabaseAdapter, now};
use entity::web::orders;
use rust_decimal::Decimal;
use sea_orm::{ConnectionTrait, DatabaseTransaction, TransactionTrait};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

type DateTime = chrono::DateTime<chrono::Utc>;

/// Orders kept in the cached first page of a user's list: the default page size of
/// `myOrders` (SPEC §3), so the common request is served whole from the cache.
pub const CACHED_PAGE: u64 = 20;
/// Largest page `myOrders` serves.
pub const MAX_PAGE: u64 = 100;

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
}

impl Order {
    /// What is still unpaid (succeeded payments only).
    pub fn remaining(&self) -> Decimal {
        (self.amount - self.paid_amount).max(Decimal::ZERO)
    }
}

impl TryFrom<orders::Model> for Order {
    type Error = AppError;

    fn try_from(m: orders::Model) -> AppResult<Self> {
        let status = OrderStatus::from_db(&m.status).ok_or_else(|| {
            AppError::internal(anyhow::anyhow!(
                "order {} has unknown status {:?}",
                m.id,
                m.status
            ))
        })?;
        Ok(Self {
            id: m.id,
            user_id: m.user_id,
            from_currency: m.from_currency,
            to_currency: m.to_currency,
            amount: m.amount.0,
            exchange_rate: m.exchange_rate.0,
            to_amount: m.to_amount.0,
            status,
            paid_amount: m.paid_amount.0,
            pending_amount: m.pending_amount.0,
            expires_at: m.expires_at,
            created_at: m.created_at,
            updated_at: m.updated_at,
        })
    }
}

/// A page of a user's orders, newest first.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OrderPage {
    /// The orders.
    pub orders: Vec<Order>,
    /// Whether older orders follow.
    pub has_next_page: bool,
}

/// Position in a user's order list (opaque to clients).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor(pub Uuid);

impl Cursor {
    /// The opaque form handed to clients.
    pub fn encode(self) -> String {
        hex::encode(format!("order:{}", self.0))
    }

    /// Parses a client's cursor.
    pub fn decode(field: &'static str, raw: &str) -> AppResult<Self> {
        let bad = || AppError::bad_input(field, "is not a cursor from this API");
        let bytes = hex::decode(raw).map_err(|_| bad())?;
        let text = String::from_utf8(bytes).map_err(|_| bad())?;
        let id = text.strip_prefix("order:").ok_or_else(bad)?;
        Uuid::parse_str(id).map(Cursor).map_err(|_| bad())
    }
}

/// Orders service.
pub struct OrderService {
    adapter: WebDatabaseAdapter,
    cache: Arc<Cache>,
    keys: keys::Keys,
    analytics: Arc<AnalyticsService>,
    rates: Arc<RateService>,
    payment_window: Duration,
}

impl OrderService {
    /// A service over the web database and the cache.
    pub fn new(
        adapter: WebDatabaseAdapter,
        cache: Arc<Cache>,
        keys: keys::Keys,
        analytics: Arc<AnalyticsService>,
        rates: Arc<RateService>,
        payment_window: Duration,
    ) -> Self {
        Self {
            adapter,
            cache,
            keys,
            analytics,
            rates,
            payment_window,
        }
    }

    /// Drops what a write to `user_id`'s orders or payments at `at` made stale: the first
    /// page of their orders and the analytics of that UTC day.
    pub async fn invalidate(&self, user_id: Uuid, at: DateTime) {
        self.cache
            .invalidate_all([self.keys.orders(user_id), self.analytics.day_key(at)])
            .await;
    }

    /// Places an order at the rate valid now (SPEC §3).
    #[tracing::instrument(skip(self))]
    pub async fn create(
        &self,
        user_id: Uuid,
        pair: CurrencyPair,
        amount: Money,
    ) -> AppResult<Order> {
        let at = now();
        // The rates cache is replaced by every rate write before it commits, so it holds
        // the rate valid now.
        let rate = self
            .rates
            .current(&pair)
            .await?
            .ok_or(AppError::NotFound("exchange rate"))?;
        let to_amount = amount
            .get()
            .checked_mul(rate.rate)
            .map(round_money)
            .filter(|t| *t <= Money::max())
            .ok_or_else(|| {
                AppError::bad_input("input.amount", "converts to more than an order can hold")
            })?;
        if to_amount.is_zero() {
            return Err(AppError::bad_input(
                "input.amount",
                "is too small to convert at this rate",
            ));
        }
        let window = chrono::Duration::from_std(self.payment_window).map_err(AppError::internal)?;
        let row = orders::Model {
            id: Uuid::now_v7(),
            user_id,
            from_currency: pair.from.as_str().to_owned(),
            to_currency: pair.to.as_str().to_owned(),
            amount: amount.get().into(),
            exchange_rate: rate.rate.into(),
            to_amount: to_amount.into(),
            paid_amount: Decimal::ZERO.into(),
            pending_amount: Decimal::ZERO.into(),
            status: OrderStatus::Pending.as_str().to_owned(),
            expires_at: at + window,
            paid_at: None,
            created_at: at,
            updated_at: at,
        };
        let event = serde_json::json!({
            "orderId": row.id,
            "pair": format!("{}_{}", pair.from, pair.to),
            "amount": amount.get(),
        });
        let created = WebDatabaseAdapter::insert_order_with_event(
            self.adapter.conn(),
            row,
            event::ORDER_CREATED,
            event,
        )
        .await?;
        self.invalidate(user_id, at).await;
        created.try_into()
    }

    /// The caller's order, or `None` (also for another user's order).
    pub async fn get(&self, user_id: Uuid, id: Uuid) -> AppResult<Option<Order>> {
        match WebDatabaseAdapter::order(self.adapter.conn(), id).await? {
            Some(m) if m.user_id == user_id => Ok(Some(m.try_into()?)),
            _ => Ok(None),
        }
    }

    /// Orders by id, for the DataLoader (no ownership check: callers only pass ids they
    /// reached through their own objects).
    pub async fn by_ids(&self, ids: &[Uuid]) -> AppResult<Vec<Order>> {
        WebDatabaseAdapter::orders_by_ids(self.adapter.conn(), ids)
            .await?
            .into_iter()
            .map(Order::try_from)
            .collect()
    }

    /// A page of the user's orders, newest first, after `after`, optionally of one status.
    /// The first page without filter comes from `cache:{ctx}:orders:{user_id}`.
    pub async fn list(
        &self,
        user_id: Uuid,
        first: u64,
        after: Option<Cursor>,
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
        after: Option<Cursor>,
        status: Option<OrderStatus>,
    ) -> AppResult<OrderPage> {
        let mut rows = WebDatabaseAdapter::orders_of(
            self.adapter.conn(),
            user_id,
            first + 1,
            after.map(|c| c.0),
            status.map(|s| s.as_str()),
        )
        .await?;
        let has_next_page = rows.len() as u64 > first;
        rows.truncate(first as usize);
        Ok(OrderPage {
            orders: rows
                .into_iter()
                .map(Order::try_from)
                .collect::<AppResult<_>>()?,
            has_next_page,
        })
    }

    /// Locks the caller's order for a write; `NOT_FOUND` when it is not theirs.
    pub async fn lock_own(
        txn: &DatabaseTransaction,
        user_id: Option<Uuid>,
        id: Uuid,
    ) -> AppResult<Order> {
        let row = WebDatabaseAdapter::lock_order(txn, id).await?;
        match row {
            Some(m) if user_id.is_none_or(|u| u == m.user_id) => m.try_into(),
            _ => Err(AppError::NotFound("order")),
        }
    }

    /// Moves a locked order to `next`, recording `event_type`; refuses illegal transitions.
    pub async fn transition(
        conn: &impl ConnectionTrait,
        order: &Order,
        next: OrderStatus,
        event_type: &str,
        at: DateTime,
    ) -> AppResult<()> {
        if !order.status.can_become(next) {
            return Err(AppError::conflict(format!(
                "an order that is {} cannot become {}",
                order.status.as_str(),
                next.as_str()
            )));
        }
        WebDatabaseAdapter::set_order_status(conn, order.id, next.as_str(), at).await?;
        WebDatabaseAdapter::record_event(
            conn,
            Some(order.user_id),
            event_type,
            serde_json::json!({ "orderId": order.id }),
            at,
        )
        .await?;
        Ok(())
    }

    /// Whether a pending order's window has passed with no payment pending under it.
    pub fn is_due(order: &Order, at: DateTime) -> bool {
        order.status == OrderStatus::Pending
            && order.expires_at <= at
            && order.pending_amount.is_zero()
    }

    /// Expires the order when it is due, inside the caller's transaction (the caller
    /// commits and then reports `CONFLICT`).
    pub async fn expire_if_due(
        conn: &impl ConnectionTrait,
        order: &Order,
        at: DateTime,
    ) -> AppResult<bool> {
        if !Self::is_due(order, at) {
            return Ok(false);
        }
        Self::transition(conn, order, OrderStatus::Expired, event::ORDER_EXPIRED, at).await?;
        Ok(true)
    }

    /// The owner cancels a pending order on which nothing is paid or pending.
    #[tracing::instrument(skip(self))]
    pub async fn cancel(&self, user_id: Uuid, id: Uuid) -> AppResult<Order> {
        let at = now();
        let txn = self.adapter.conn().begin_with_options(write_txn()).await?;
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
        let txn = self.adapter.conn().begin_with_options(write_txn()).await?;
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
        txn: DatabaseTransaction,
        order: &Order,
        next: OrderStatus,
        event_type: &str,
        at: DateTime,
    ) -> AppResult<Order> {
        Self::transition(&txn, order, next, event_type, at).await?;
        let updated = WebDatabaseAdapter::order(&txn, order.id)
            .await?
            .ok_or(AppError::NotFound("order"))?;
        txn.commit().await?;
        self.invalidate(order.user_id, at).await;
        updated.try_into()
    }

    /// Expires every order whose payment window has passed (the sweeper); returns how many.
    pub async fn expire_due(&self) -> AppResult<usize> {
        let at = now();
        let due = WebDatabaseAdapter::due_orders(self.adapter.conn(), at, 500).await?;
        let mut expired = 0;
        for id in due {
            let txn = self.adapter.conn().begin_with_options(write_txn()).await?;
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
