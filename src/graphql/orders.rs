//! Order operations (SPEC §3): thin resolvers over `OrderService`.

use super::context::ContextExt;
use super::guards::{RequirePermission, RequireSession, RequireStepUp};
use super::identity::parse_id;
use super::loaders;
use super::types::DecimalScalar;
use super::types::order::{Order, OrderConnection, OrderStatus};
use super::types::page::Cursor;
use crate::domain::{CurrencyPair, Money, Permission, idempotency_key_of};
use crate::error::{AppError, AppResult};
use crate::web::orders::MAX_PAGE;
use async_graphql::{Context, ID, InputObject, Object};

/// `createOrder` input.
#[derive(InputObject)]
pub struct CreateOrderInput {
    /// Currency sold, e.g. `USD`.
    pub from_currency: String,
    /// Currency bought, e.g. `UAH`.
    pub to_currency: String,
    /// Amount sold.
    pub amount: DecimalScalar,
    /// Client-chosen key (1 to 255 printable ASCII characters) to retry safely: the same key
    /// with the same pair and amount returns the same order; with others it is `CONFLICT`.
    pub idempotency_key: Option<String>,
}

/// Order queries.
#[derive(Default)]
pub struct OrderQuery;

#[Object]
impl OrderQuery {
    /// One of the viewer's orders; null for an unknown id or another user's order.
    #[graphql(guard = "RequireSession")]
    async fn order(&self, ctx: &Context<'_>, id: ID) -> AppResult<Option<Order>> {
        let viewer = ctx.require_viewer()?;
        let id = parse_id("id", &id)?;
        Ok(ctx
            .stack()?
            .orders
            .get(viewer.user.id, id)
            .await?
            .map(Order))
    }

    /// The viewer's orders, newest first (Relay connection; `first` 1 to 100).
    #[graphql(guard = "RequireSession")]
    async fn my_orders(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: Option<i32>,
        after: Option<String>,
        status: Option<OrderStatus>,
    ) -> AppResult<OrderConnection> {
        let viewer = ctx.require_viewer()?;
        let first = u64::try_from(first.unwrap_or(20))
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| AppError::bad_input("first", "must be between 1 and 100"))?;
        let after = after
            .as_deref()
            .map(|c| Cursor::decode("after", "order", c))
            .transpose()?;
        let page = ctx
            .stack()?
            .orders
            .list(viewer.user.id, first, after, status.map(Into::into))
            .await?;
        loaders::prime_for_orders(ctx, &page.orders).await?;
        Ok(page.into())
    }
}

/// Order mutations.
#[derive(Default)]
pub struct OrderMutation;

#[Object]
impl OrderMutation {
    /// Places an order at the rate valid now (`NOT_FOUND` without one).
    #[graphql(guard = "RequireSession")]
    async fn create_order(&self, ctx: &Context<'_>, input: CreateOrderInput) -> AppResult<Order> {
        let viewer = ctx.require_viewer()?;
        let pair = CurrencyPair::parse(
            "input.fromCurrency",
            &input.from_currency,
            "input.toCurrency",
            &input.to_currency,
        )?;
        let amount = Money::parse("input.amount", input.amount.0)?;
        let key = input
            .idempotency_key
            .as_deref()
            .map(|k| idempotency_key_of("input.idempotencyKey", k))
            .transpose()?;
        Ok(Order(
            ctx.stack()?
                .orders
                .create(viewer.user.id, pair, amount, key)
                .await?,
        ))
    }

    /// Cancels the viewer's pending order while nothing is paid or pending.
    #[graphql(guard = "RequireSession")]
    async fn cancel_order(&self, ctx: &Context<'_>, id: ID) -> AppResult<Order> {
        let viewer = ctx.require_viewer()?;
        let id = parse_id("id", &id)?;
        Ok(Order(ctx.stack()?.orders.cancel(viewer.user.id, id).await?))
    }

    /// Completes a paid order (needs `orders:write`).
    #[graphql(guard = "RequirePermission(Permission::ORDERS_WRITE).and(RequireStepUp)")]
    async fn complete_order(&self, ctx: &Context<'_>, id: ID) -> AppResult<Order> {
        let id = parse_id("id", &id)?;
        Ok(Order(ctx.stack()?.orders.complete(id).await?))
    }
}
