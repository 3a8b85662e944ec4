//! The `Mutation` root, merged from each area's mutations.

use super::identity::IdentityMutation;
use super::orders::OrderMutation;
use super::payments::PaymentMutation;
use super::rates::RateMutation;
use async_graphql::MergedObject;

/// Root of all mutations.
#[derive(MergedObject, Default)]
pub struct Mutation(
    IdentityMutation,
    RateMutation,
    OrderMutation,
    PaymentMutation,
);
