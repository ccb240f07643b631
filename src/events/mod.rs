//! Event record translation (stub; owned by a helper).
