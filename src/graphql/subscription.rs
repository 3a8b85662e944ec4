//! The `Subscription` root.

use super::rates::RateSubscription;
use async_graphql::MergedSubscription;

/// Root of all subscriptions.
#[derive(MergedSubscription, Default)]
pub struct Subscription(RateSubscription);
