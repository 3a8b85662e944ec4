//! API tests: the real server over HTTP on the backend chosen by `TEST_BACKEND`.

mod helpers;

mod cli;
mod graphql_http;
mod health;
mod money;
mod orders;
mod payments;
mod rates;
mod schema;
mod store;
