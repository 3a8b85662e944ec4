//! DataLoaders: one batched query per relation per request, cached per request so a list
//! can prime them with what it already read.

use super::context::ContextExt;
use crate::domain::{Order, Payment};
use crate::error::{AppError, AppResult};
use crate::stack::WebStack;
use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};
use async_graphql::{Context, Request};
use std::collections::HashMap;
use uuid::Uuid;

/// `Order.payments`: payments of many orders in one query.
pub struct PaymentsByOrder(pub WebStack);

/// `Payment.order`: orders by id in one query.
pub struct OrderById(pub WebStack);

/// The per-request loader of `Order.payments`.
pub type PaymentsLoader = DataLoader<PaymentsByOrder, HashMapCache>;
/// The per-request loader of `Payment.order`.
pub type OrdersLoader = DataLoader<OrderById, HashMapCache>;

impl Loader<Uuid> for PaymentsByOrder {
    type Value = Vec<Payment>;
    type Error = AppError;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        self.0.payments.of_orders_grouped(keys).await
    }
}

impl Loader<Uuid> for OrderById {
    type Value = Order;
    type Error = AppError;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        Ok(self
            .0
            .orders
            .by_ids(keys)
            .await?
            .into_iter()
            .map(|o| (o.id, o))
            .collect())
    }
}

/// Adds fresh loaders to a request (per request: a cached value never outlives it).
pub fn attach(req: Request, stack: &WebStack) -> Request {
    req.data(PaymentsLoader::with_cache(
        PaymentsByOrder(stack.clone()),
        tokio::spawn,
        HashMapCache::default(),
    ))
    .data(OrdersLoader::with_cache(
        OrderById(stack.clone()),
        tokio::spawn,
        HashMapCache::default(),
    ))
}

fn loader<'a, T: Send + Sync + 'static>(ctx: &'a Context<'_>) -> AppResult<&'a T> {
    ctx.data::<T>().map_err(|_| {
        AppError::internal(anyhow::anyhow!(
            "BUG: DataLoaders were not attached to the request"
        ))
    })
}

/// The per-request payments loader.
pub fn payments_loader<'a>(ctx: &'a Context<'_>) -> AppResult<&'a PaymentsLoader> {
    loader(ctx)
}

/// The per-request orders loader.
pub fn orders_loader<'a>(ctx: &'a Context<'_>) -> AppResult<&'a OrdersLoader> {
    loader(ctx)
}

/// Primes the loaders for a page of orders, as far as the query selects them: all their
/// payments in one query, and the orders themselves for `Payment.order`. Listing N orders with
/// their payments then costs the same number of queries for any N, however the resolvers
/// happen to be scheduled.
pub async fn prime_for_orders(ctx: &Context<'_>, page: &[Order]) -> AppResult<()> {
    let payments = ctx
        .look_ahead()
        .field("edges")
        .field("node")
        .field("payments");
    if payments.field("order").exists() {
        orders_loader(ctx)?
            .feed_many(page.iter().map(|o| (o.id, o.clone())))
            .await;
    }
    if payments.exists() && !page.is_empty() {
        let ids: Vec<Uuid> = page.iter().map(|o| o.id).collect();
        let grouped = ctx.stack()?.payments.of_orders_grouped(&ids).await?;
        payments_loader(ctx)?.feed_many(grouped).await;
    }
    Ok(())
}
