//! Where a differing path comes from: the v4 JSON pointer its value is translated from, and
//! the mapping entry (`file:line` under `mappings/`) that translates it, so an operator fixes
//! that line instead of guessing.

/// The origin of one legacy answer field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub v4_pointer: String,
    pub mapping: Option<String>,
}

/// Where the legacy field at `path` (as the diff names it) comes from, when the mapping says.
pub fn of(
    _rt: &crate::runtime::Runtime,
    _id: &super::report::RowId,
    _path: &str,
) -> Option<Source> {
    None
}
