//! The owner's home timeline (next issue): posts from the accounts the owner follows, newest
//! first. It will read `graph::following` and the notes `conversation` stores, and sits between
//! the HTTP layers (`web`, `api`) and `conversation` in the layer picture (README, Development).
//! Empty for now: the room is drawn before the code arrives.
