//! HTTP Signatures (see issue 3).
