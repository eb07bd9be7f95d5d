//! The client API for apps (next issue): a Mastodon-compatible subset with OAuth, as HTTP
//! handlers over `timeline`, `conversation` and `owner`. It sits beside `web` and `inbox` in the
//! layer picture (README, Development) and, like them, takes the application context from the
//! server. Empty for now: the room is drawn before the code arrives.
