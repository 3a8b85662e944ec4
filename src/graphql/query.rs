//! The `Query` root, merged from each area's queries.

use super::analytics::AnalyticsQuery;
use super::identity::IdentityQuery;
use super::orders::OrderQuery;
use super::payments::PaymentQuery;
use super::rates::RateQuery;
use async_graphql::MergedObject;

/// Root of all queries.
#[derive(MergedObject, Default)]
pub struct Query(
    IdentityQuery,
    RateQuery,
    OrderQuery,
    PaymentQuery,
    AnalyticsQuery,
);
