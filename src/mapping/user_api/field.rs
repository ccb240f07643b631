//! A legacy body field of the update and the JSON type it must have.

#[derive(Debug, Clone)]
pub struct Field {
    pub legacy: String,
    pub v4: String,
    pub ty: FieldType,
    pub nullable: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    String,
    Boolean,
    Number,
    Object,
    Array,
    Any,
}

impl FieldType {
    pub(super) fn parse(s: &str) -> Option<(Self, bool)> {
        let (base, nullable) = match s.strip_suffix('?') {
            Some(b) => (b, true),
            None => (s, false),
        };
        let ty = match base {
            "string" => Self::String,
            "boolean" => Self::Boolean,
            "number" => Self::Number,
            "object" => Self::Object,
            "array" => Self::Array,
            "any" => Self::Any,
            _ => return None,
        };
        Some((ty, nullable))
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::String => "a string",
            Self::Boolean => "a boolean",
            Self::Number => "a number",
            Self::Object => "an object",
            Self::Array => "an array",
            Self::Any => "a value",
        }
    }

    pub fn accepts(self, v: &serde_json::Value) -> bool {
        use serde_json::Value as V;
        matches!(
            (self, v),
            (Self::Any, _)
                | (Self::String, V::String(_))
                | (Self::Boolean, V::Bool(_))
                | (Self::Number, V::Number(_))
                | (Self::Object, V::Object(_))
                | (Self::Array, V::Array(_))
        )
    }
}
