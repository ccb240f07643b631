//! The embedded v4 sandbox (stub; owned by a helper).
