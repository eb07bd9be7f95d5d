//! Federation policy (see issue 3).
