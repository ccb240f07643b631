//! JSON copied from the parser straight into output bytes, every object key recased on the
//! way: no tree, no map, no key or string allocated where the input holds it without escapes.
//! The parser (serde_json) still checks every byte, so what is copied is valid JSON, and
//! numbers and strings are written as serde_json writes a parsed tree: the copy equals the
//! tree path's output.
//!
//! The checks of the tree path stay: two keys of one object becoming one key are refused
//! (naming both), as is one key twice (a tree would keep one silently), and nesting deeper
//! than [`MAX_DEPTH`]. The caller may refuse the top value's kind (a field's type).
//!
//! A refusal stops the parse with a placeholder parser error; the reason is kept in the
//! [`Rekey`] and taken with [`Rekey::take_stop`]. Error paths are built only then.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::case::{CaseError, MAX_DEPTH};
use super::key::{push_json_str, Case};

/// The kind of a JSON value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Null,
    Bool,
    Number,
    String,
    Array,
    Object,
}

/// Why a copy was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    Case(CaseError),
    /// The top value is of a kind the caller does not accept.
    Kind(Kind),
}

/// Objects with more keys than this find repeated keys through a hash set; below it a scan
/// of the few keys written is cheaper.
const SCAN_KEYS: usize = 12;

/// The state of the copies of one document: its case, the keys of the objects open now
/// (to find collisions without a set per object), and why a copy stopped.
pub struct Rekey<'de> {
    case: Case,
    keys: Vec<Written<'de>>,
    stop: Option<Stop>,
    hasher: Option<RandomState>,
}

/// One key written: where its converted form is in the output, and how it was read.
struct Written<'de> {
    start: usize,
    end: usize,
    source: Cow<'de, str>,
}

impl<'de> Rekey<'de> {
    pub fn new(case: Case) -> Self {
        Self {
            case,
            keys: Vec::new(),
            stop: None,
            hasher: None,
        }
    }

    /// A seed that copies the next value of a parser into `out`, refused unless `accept`
    /// takes its kind.
    pub fn seed<'a>(
        &'a mut self,
        out: &'a mut Vec<u8>,
        accept: &'a dyn Fn(Kind) -> bool,
    ) -> Copier<'a, 'de> {
        self.stop = None;
        Copier {
            rk: self,
            out,
            depth: 0,
            accept: Some(accept),
        }
    }

    /// Why the last copy was refused; `None` when its error came from the parser.
    pub fn take_stop(&mut self) -> Option<Stop> {
        self.stop.take()
    }

    fn refuse<E: de::Error>(&mut self, stop: Stop) -> E {
        self.stop = Some(stop);
        E::custom("refused")
    }
}

/// Copies one value (a [`DeserializeSeed`] and its visitor).
pub struct Copier<'a, 'de> {
    rk: &'a mut Rekey<'de>,
    out: &'a mut Vec<u8>,
    depth: usize,
    accept: Option<&'a dyn Fn(Kind) -> bool>,
}

impl<'de> Copier<'_, 'de> {
    fn child(&mut self) -> Copier<'_, 'de> {
        Copier {
            rk: &mut *self.rk,
            out: &mut *self.out,
            depth: self.depth + 1,
            accept: None,
        }
    }

    fn check<E: de::Error>(&mut self, kind: Kind) -> Result<(), E> {
        if self.depth > MAX_DEPTH {
            return Err(self.rk.refuse(Stop::Case(CaseError::TooDeep)));
        }
        match self.accept {
            Some(accept) if !accept(kind) => Err(self.rk.refuse(Stop::Kind(kind))),
            _ => Ok(()),
        }
    }

    /// A refusal below `segment` (`.Key`, `[3]`) is reported with it in its path.
    fn under(&mut self, segment: impl FnOnce() -> String) {
        if let Some(Stop::Case(e)) = self.rk.stop.take() {
            self.rk.stop = Some(Stop::Case(e.within(&segment())));
        }
    }

    fn number<E: de::Error, N: serde::Serialize>(mut self, n: N) -> Result<(), E> {
        self.check(Kind::Number)?;
        serde_json::to_writer(&mut *self.out, &n).map_err(E::custom)
    }

    /// The written key equal to the one at `ks..ke`, among those of the object open since
    /// `base`; `index` holds their hashes once the object has more than [`SCAN_KEYS`].
    fn repeated(
        &mut self,
        base: usize,
        ks: usize,
        ke: usize,
        index: &mut Option<Hashes>,
    ) -> Option<usize> {
        let keys = &self.rk.keys[base..];
        let new = &self.out[ks..ke];
        let scan = || {
            keys.iter()
                .position(|w| w.end - w.start == new.len() && &self.out[w.start..w.end] == new)
        };
        if let Some(set) = index {
            let h = self
                .rk
                .hasher
                .get_or_insert_with(RandomState::new)
                .hash_one(new);
            return if set.insert(h) { None } else { scan() };
        }
        let found = scan();
        if found.is_none() && keys.len() == SCAN_KEYS {
            // Random keys per gateway process: hashes a client cannot make collide.
            let hasher = self.rk.hasher.get_or_insert_with(RandomState::new);
            let mut set = Hashes::with_capacity_and_hasher(4 * SCAN_KEYS, Default::default());
            for w in keys {
                set.insert(hasher.hash_one(&self.out[w.start..w.end]));
            }
            set.insert(hasher.hash_one(new));
            *index = Some(set);
        }
        found
    }
}

impl<'de> DeserializeSeed<'de> for Copier<'_, 'de> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Copier<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(mut self) -> Result<(), E> {
        self.check(Kind::Null)?;
        self.out.extend_from_slice(b"null");
        Ok(())
    }

    fn visit_bool<E: de::Error>(mut self, v: bool) -> Result<(), E> {
        self.check(Kind::Bool)?;
        self.out
            .extend_from_slice(if v { b"true" } else { b"false" });
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.number(v)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.number(v)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.number(v)
    }

    fn visit_str<E: de::Error>(mut self, v: &str) -> Result<(), E> {
        self.check(Kind::String)?;
        push_json_str(self.out, v);
        Ok(())
    }

    /// A string the input held without escapes has nothing to escape (the parser refuses
    /// raw control characters): its bytes are copied as they are.
    fn visit_borrowed_str<E: de::Error>(mut self, v: &'de str) -> Result<(), E> {
        self.check(Kind::String)?;
        self.out.reserve(v.len() + 2);
        self.out.push(b'"');
        self.out.extend_from_slice(v.as_bytes());
        self.out.push(b'"');
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        self.check(Kind::Array)?;
        self.out.push(b'[');
        let mut i = 0usize;
        loop {
            let at = self.out.len();
            if i > 0 {
                self.out.push(b',');
            }
            match seq.next_element_seed(self.child()) {
                Ok(Some(())) => i += 1,
                Ok(None) => {
                    self.out.truncate(at);
                    break;
                }
                Err(e) => {
                    self.under(|| format!("[{i}]"));
                    return Err(e);
                }
            }
        }
        self.out.push(b']');
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        self.check(Kind::Object)?;
        self.out.push(b'{');
        let base = self.rk.keys.len();
        let mut index = None;
        let result = (|| {
            while let Some(Key(key)) = map.next_key_seed(KeySeed)? {
                if self.rk.keys.len() > base {
                    self.out.push(b',');
                }
                let ks = self.out.len();
                self.rk.case.write(self.out, &key);
                let ke = self.out.len();
                if let Some(at) = self.repeated(base, ks, ke, &mut index) {
                    let first = &self.rk.keys[base + at].source;
                    let stop = if *first == key {
                        CaseError::Repeated {
                            path: "$".into(),
                            key: key.into_owned(),
                        }
                    } else {
                        CaseError::Collision {
                            path: "$".into(),
                            first: first.to_string(),
                            converted: self.rk.case.convert(&key),
                            second: key.into_owned(),
                        }
                    };
                    return Err(self.rk.refuse(Stop::Case(stop)));
                }
                self.out.push(b':');
                if let Err(e) = map.next_value_seed(self.child()) {
                    self.under(|| format!(".{key}"));
                    return Err(e);
                }
                self.rk.keys.push(Written {
                    start: ks,
                    end: ke,
                    source: key,
                });
            }
            Ok(())
        })();
        self.rk.keys.truncate(base);
        result?;
        self.out.push(b'}');
        Ok(())
    }
}

/// The keyed hashes of an object's keys: already hashes, so the set does not hash them again.
type Hashes = HashSet<u64, BuildHasherDefault<Identity>>;

#[derive(Default)]
struct Identity(u64);

impl Hasher for Identity {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// An object key, borrowed from the input unless escapes made the parser decode it.
pub struct Key<'de>(pub Cow<'de, str>);

/// Reads a [`Key`].
pub struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Key<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Key<'de>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Key<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
        Ok(Key(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
        Ok(Key(Cow::Owned(v.to_owned())))
    }
}

/// Copies the JSON document `text` (one value) into `out` with every key in `case`.
pub fn copy_document(text: &[u8], case: Case, out: &mut Vec<u8>) -> Result<(), CopyError> {
    let mut rk = Rekey::new(case);
    let mut de = serde_json::Deserializer::from_slice(text);
    let result = rk
        .seed(out, &|_| true)
        .deserialize(&mut de)
        .and_then(|()| de.end());
    result.map_err(|e| match rk.take_stop() {
        Some(Stop::Case(c)) => CopyError::Case(c),
        Some(Stop::Kind(_)) | None => CopyError::Json(e.to_string()),
    })
}

/// Why [`copy_document`] wrote no document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CopyError {
    #[error(transparent)]
    Case(CaseError),
    #[error("not JSON: {0}")]
    Json(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn copy(v: &str, case: Case) -> Result<Value, CopyError> {
        let mut out = Vec::new();
        copy_document(v.as_bytes(), case, &mut out)?;
        Ok(serde_json::from_slice(&out).expect("the copy is JSON"))
    }

    #[test]
    fn keys_are_recased_at_every_depth_and_values_kept() {
        let v = copy(
            r#"{"FirstName":"A\"b\u00e9","N":[1,-2,3.5,1e3,18446744073709551615,null,true],
               "Metadata":{"Tags":[{"TagName":"x"}],"IPAddress":"1","snake_key":{}}}"#,
            Case::Camel,
        )
        .unwrap();
        assert_eq!(
            v,
            json!({"firstName": "A\"bé", "n": [1, -2, 3.5, 1000.0, 18446744073709551615u64, null, true],
                   "metadata": {"tags": [{"tagName": "x"}], "ipAddress": "1", "snakeKey": {}}})
        );
    }

    #[test]
    fn collisions_and_repeats_name_the_keys_and_their_object() {
        match copy(r#"{"Metadata":{"Tags":[{"Foo":1,"foo":2}]}}"#, Case::Camel) {
            Err(CopyError::Case(CaseError::Collision {
                path,
                first,
                second,
                converted,
            })) => {
                assert_eq!(path, "$.Metadata.Tags[0]");
                assert_eq!((first.as_str(), second.as_str()), ("Foo", "foo"));
                assert_eq!(converted, "foo");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            copy(r#"{"A":{"B":1,"B":2}}"#, Case::Camel),
            Err(CopyError::Case(CaseError::Repeated {
                path: "$.A".into(),
                key: "B".into()
            }))
        );
    }

    #[test]
    fn large_objects_find_repeats_through_the_index() {
        let keys: Vec<String> = (0..200).map(|i| format!("\"Key{i}\":{i}")).collect();
        let ok = format!("{{{}}}", keys.join(","));
        assert_eq!(copy(&ok, Case::Camel).unwrap()["key199"], json!(199));
        for repeat in ["Key3", "key150", "KEY7"] {
            let bad = format!("{{{},\"{repeat}\":0}}", keys.join(","));
            let e = copy(&bad, Case::Camel).unwrap_err();
            // heck makes `KEY7` `key7`, another key than `key7`'s twin.
            if repeat == "KEY7" {
                assert!(
                    matches!(&e, CopyError::Case(CaseError::Collision { first, .. }) if first == "Key7"),
                    "{e:?}"
                );
            } else {
                assert!(matches!(e, CopyError::Case(_)), "{e:?}");
            }
        }
    }

    proptest::proptest! {
        /// Strings copied as read come out as serde_json writes them.
        #[test]
        fn strings_are_written_as_serde_json_writes_them(s in "\\PC{0,16}|[ -~\u{7f}\u{80}-\u{10ffff}]{0,16}") {
            for text in [serde_json::to_string(&s).unwrap(), format!("{:?}", s)] {
                let mut out = Vec::new();
                if copy_document(text.as_bytes(), Case::Camel, &mut out).is_ok() {
                    let want: String = serde_json::from_str(&text).unwrap();
                    proptest::prop_assert_eq!(out, serde_json::to_vec(&want).unwrap());
                }
            }
        }
    }

    #[test]
    fn malformed_json_is_the_parsers_error() {
        assert!(matches!(
            copy(r#"{"A":1"#, Case::Camel),
            Err(CopyError::Json(_))
        ));
        assert!(matches!(
            copy(r#"{"A":"\ud800"}"#, Case::Camel),
            Err(CopyError::Json(_))
        ));
        assert!(matches!(
            copy(r#"{"A":1} x"#, Case::Camel),
            Err(CopyError::Json(_))
        ));
    }
}
