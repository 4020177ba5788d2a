//! Warden's integration tests: each drives a real server over HTTP, against
//! SQLite, (with WARDEN_TEST_DATABASE_URL) PostgreSQL and (with
//! WARDEN_TEST_MYSQL_URL) MySQL/MariaDB.

mod browser_env;
mod helpers;
mod mail_sink;
mod oidc_provider;
mod otlp_receiver;
mod python_env;
mod tcp_proxy;

mod admin_api;
mod admin_cli;
mod api;
mod auth;
mod ba_admin;
mod ba_api;
mod betterauth;
mod cli;
mod cluster;
mod cookies;
mod dashboard;
mod dashboard_browser;
mod db_failure;
mod email_verification;
mod gen_client;
mod migrate_concurrent;
mod observability;
mod observability_flow;
mod passkeys;
mod password_reset;
mod passwordless;
mod profile;
mod rate_limit;
mod security;
mod sessions;
mod social;
mod two_factor;
mod two_factor_email;
