//! DataLoaders (SPEC §3, issue 4): one batched query per relation per request.

use crate::error::AppError;
use crate::startup::WebStack;
use crate::web::{orders, payments};
use async_graphql::dataloader::Loader;
use std::collections::HashMap;
use uuid::Uuid;

/// `Order.payments`: payments of many orders in one query.
pub struct PaymentsByOrder(pub WebStack);

impl Loader<Uuid> for PaymentsByOrder {
    type Value = Vec<payments::Payment>;
    type Error = AppError;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        let mut by_order: HashMap<Uuid, Self::Value> =
            keys.iter().map(|k| (*k, Vec::new())).collect();
        for payment in self.0.payments.of_orders(keys).await? {
            by_order.entry(payment.order_id).or_default().push(payment);
        }
        Ok(by_order)
    }
}

/// `Payment.order`: orders by id in one query.
pub struct OrderById(pub WebStack);

impl Loader<Uuid> for OrderById {
    type Value = orders::Order;
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
