//! API tests: the real server over HTTP on the backend chosen by `TEST_BACKEND`.

mod helpers;
mod process;
mod redis_server;

mod account_security;
mod analytics;
mod authorization;
mod cli;
mod connections;
mod edge;
mod graphql_http;
mod health;
mod identity;
mod instances;
mod money;
mod orders;
mod payments;
mod permissions;
mod rates;
mod readme;
mod redis_outage;
mod schema;
mod sessions;
mod sign_in;
mod store;
mod subscriptions;
mod websocket;
