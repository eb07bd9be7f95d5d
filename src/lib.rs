//! Hortus: a single-user ActivityPub microblog. One binary, one SQLite file, one person's actor
//! under their own domain, federating only with the servers its owner allows.

pub mod activitypub;
pub mod actors;
pub mod api;
pub mod app;
pub mod cli;
pub mod config;
pub mod context;
pub mod conversation;
pub mod db;
pub mod delivery;
pub mod export;
pub mod federation;
pub mod graph;
pub mod httpsig;
pub mod inbox;
pub mod keys;
pub mod metrics;
pub mod ops;
pub mod owner;
pub mod posts;
pub mod sanitize;
pub mod scaffold;
pub mod text;
pub mod timeline;
pub mod times;
pub mod urls;
pub mod web;
