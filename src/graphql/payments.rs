//! Payment operations (SPEC §3): thin resolvers over `PaymentService`.

use super::context::ContextExt;
use super::guards::{RequirePermission, RequireSession, RequireStepUp};
use super::identity::parse_id;
use super::types::DecimalScalar;
use super::types::order::{Payment, PaymentStatus};
use crate::domain::{Money, NewPayment, Permission};
use crate::error::AppResult;
use async_graphql::{Context, ID, InputObject, Object};

/// `createPayment` input.
#[derive(InputObject)]
pub struct CreatePaymentInput {
    /// The viewer's pending order.
    pub order_id: ID,
    /// e.g. `card` (1 to 100 characters).
    pub payment_method: String,
    /// At most what remains unpaid.
    pub amount: DecimalScalar,
    /// Client-chosen key (1 to 255 printable ASCII characters): the same key returns the
    /// same payment.
    pub idempotency_key: String,
}

/// Payment queries.
#[derive(Default)]
pub struct PaymentQuery;

#[Object]
impl PaymentQuery {
    /// One of the viewer's payments; null for an unknown id or another user's payment.
    #[graphql(guard = "RequireSession")]
    async fn payment(&self, ctx: &Context<'_>, id: ID) -> AppResult<Option<Payment>> {
        let viewer = ctx.require_viewer()?;
        let id = parse_id("id", &id)?;
        Ok(ctx
            .stack()?
            .payments
            .get_own(viewer.user.id, id)
            .await?
            .map(Payment))
    }
}

/// Payment mutations.
#[derive(Default)]
pub struct PaymentMutation;

#[Object]
impl PaymentMutation {
    /// Pays (part of) the viewer's pending order. Idempotent per `idempotencyKey`.
    #[graphql(guard = "RequireSession")]
    async fn create_payment(
        &self,
        ctx: &Context<'_>,
        input: CreatePaymentInput,
    ) -> AppResult<Payment> {
        let viewer = ctx.require_viewer()?;
        let order_id = parse_id("input.orderId", &input.order_id)?;
        let amount = Money::parse("input.amount", input.amount.0)?;
        let new = NewPayment::parse(
            order_id,
            &input.payment_method,
            amount,
            &input.idempotency_key,
        )?;
        Ok(Payment(
            ctx.stack()?.payments.create(viewer.user.id, new).await?,
        ))
    }

    /// Settles a pending payment as SUCCEEDED or FAILED (needs `payments:write`).
    #[graphql(guard = "RequirePermission(Permission::PAYMENTS_WRITE).and(RequireStepUp)")]
    async fn settle_payment(
        &self,
        ctx: &Context<'_>,
        id: ID,
        status: PaymentStatus,
    ) -> AppResult<Payment> {
        let id = parse_id("id", &id)?;
        Ok(Payment(
            ctx.stack()?.payments.settle(id, status.into()).await?,
        ))
    }
}
