//! Property tests of the pure translation functions, on arbitrary and hostile input: recursive
//! arbitrary JSON, nesting far beyond 128 levels built in code, megabyte strings, odd Unicode
//! (combining marks, RTL overrides, emoji, NUL, case-changing letters such as `ß`/`İ`/Kelvin
//! sign), lone-surrogate escapes inside JSON text, and keys that collide after case conversion.
//!
//! What it proves:
//! - `translate::case::{to_camel, to_pascal}` never panic; they refuse exactly the objects
//!   where two keys convert to one (`CaseError::Collision`, naming both) and values nested
//!   deeper than `MAX_DEPTH` (`TooDeep`), and otherwise convert every key and nothing else;
//!   `to_pascal ∘ to_camel` and `to_camel ∘ to_pascal` are the identity on PascalCase-ish /
//!   camelCase-ish keys; anything serde_json can parse is shallow enough to convert.
//! - `translate::key::Case` (the one key-case rule: a fast path for plain `fooBar` /
//!   `FooBar` keys, heck for the rest) gives heck's key for any key, and so does every path
//!   that recases keys: trees, the byte copy of bodies and answers, event records both ways.
//! - `routes::user_api::plan` with the shipped mapping never panics, answers the documented
//!   refusal for each kind of bad body (empty, unknown fields named, duplicate keys, wrong
//!   type, colliding `Metadata` keys → `DuplicateKeys`) and, when it accepts, produces only
//!   the mapping's v4 field names, each in its own part, parts in the mapping's order.
//! - `translate::envelope::parse` never panics and agrees with a reference reading of the v4
//!   envelope; an error status is always usable, a success must be an envelope.
//! - `translate::path::decode_id` + `PathTemplate::render`: a rendered id is always exactly one
//!   path segment (no `/ ? # \`, never `.`/`..`, only unreserved characters and `%XX`), decodes
//!   back to the id, and survives URL parsing unchanged.
//! - `redact::scrub` never panics, and a secret that stands alone in a text never survives it.
//!
//! Every property runs from a fixed seed (deterministic), 256 cases or fewer, in a few seconds.

use std::collections::HashSet;

use legacy_gateway::error::GatewayError;
use legacy_gateway::events::{translate, Direction, Options};
use legacy_gateway::mapping::Mappings;
use legacy_gateway::mapping::UserApi;
use legacy_gateway::redact::scrub;
use legacy_gateway::request::json_object;
use legacy_gateway::routes::user_api::{self, plan_tree};
use legacy_gateway::translate::case::{self, CaseError, MAX_DEPTH};
use legacy_gateway::translate::envelope::{self, EnvelopeError};
use legacy_gateway::translate::key::Case;
use legacy_gateway::translate::path::{self, BadId, PathTemplate};
use legacy_gateway::translate::rekey;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{RngAlgorithm, RngSeed};
use serde_json::{json, Map, Value};

use heck::{ToLowerCamelCase, ToUpperCamelCase};

/// Fixed seed (override with `PROPS_SEED=<u64>` to explore), no regression files written
/// into the source tree.
fn cfg(cases: u32) -> ProptestConfig {
    let seed = std::env::var("PROPS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_0007);
    ProptestConfig {
        cases,
        failure_persistence: None,
        rng_algorithm: RngAlgorithm::ChaCha,
        rng_seed: RngSeed::Fixed(seed),
        max_shrink_iters: 2048,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------- strategies

/// Characters that break naive string handling: combining marks, bidi overrides, zero-width
/// and BOM, NUL and controls, letters whose case mapping changes length (`ß` → `SS`,
/// `İ` → `i̇`), the Kelvin sign (lower-cases to ASCII `k`), final sigma, emoji with ZWJ.
const ODD: &[char] = &[
    '\u{301}', '\u{202E}', '\u{200F}', '\u{200B}', '\u{FEFF}', '\0', '\u{1}', '\u{7F}', '\n', 'ß',
    'İ', 'ı', 'ﬁ', '\u{212A}', 'ſ', 'Σ', 'ς', 'ǅ', '😀', '\u{200D}', '👩', '_', '-', ' ', '.', '/',
    '%', '\\', '"', '$', 'A', 'a', 'Z', 'z', '0', '9',
];

fn odd_char() -> impl Strategy<Value = char> {
    prop_oneof![any::<char>(), select(ODD)]
}

fn odd_string() -> impl Strategy<Value = String> {
    prop_oneof![
        vec(odd_char(), 0..12).prop_map(|c| c.into_iter().collect::<String>()),
        "[A-Za-z0-9_ .-]{0,10}",
    ]
}

/// Object keys: PascalCase, camelCase, snake/kebab/space separated, and odd ones.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        "([A-Z][a-z]{1,6}){1,3}",
        "[a-z]{1,6}([A-Z][a-z]{1,6}){0,2}",
        "[a-zA-Z0-9_ .-]{0,8}",
        odd_string(),
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        odd_string().prop_map(Value::String),
    ]
}

/// Any JSON value, objects keyed by [`key`].
fn arb_json() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..8).prop_map(Value::Array),
            vec((key(), inner), 0..8).prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// JSON whose keys are all built from `word` (PascalCase-ish or camelCase-ish words).
fn json_with_keys(word: &'static str) -> impl Strategy<Value = Value> {
    leaf().prop_recursive(5, 48, 6, move |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            vec((word, inner), 0..6).prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// `depth` containers around a scalar, built in code (no parser limit applies).
fn nested(depth: usize, objects: bool) -> Value {
    let mut v = json!("bottom");
    for i in 0..depth {
        // Built by hand: `json!` would serialise `v` again at every level (quadratic).
        v = if objects && i % 2 == 0 {
            Value::Object(Map::from_iter([("Level".to_string(), v)]))
        } else {
            Value::Array(vec![v])
        };
    }
    v
}

// ---------------------------------------------------------------- reference models

type CaseFn = fn(&str) -> String;

fn camel(k: &str) -> String {
    k.to_lower_camel_case()
}

fn pascal(k: &str) -> String {
    k.to_upper_camel_case()
}

/// Does any object in `v` hold two keys that `f` turns into one?
fn collides(v: &Value, f: CaseFn) -> bool {
    match v {
        Value::Object(m) => {
            let mut seen = HashSet::new();
            m.iter().any(|(k, c)| !seen.insert(f(k)) || collides(c, f))
        }
        Value::Array(a) => a.iter().any(|x| collides(x, f)),
        _ => false,
    }
}

/// `v` with every key converted by `f`, assuming no collisions.
fn convert_ref(v: &Value, f: CaseFn) -> Value {
    match v {
        Value::Object(m) => {
            Value::Object(m.iter().map(|(k, c)| (f(k), convert_ref(c, f))).collect())
        }
        Value::Array(a) => Value::Array(a.iter().map(|x| convert_ref(x, f)).collect()),
        other => other.clone(),
    }
}

fn depth_of(v: &Value) -> usize {
    match v {
        Value::Object(m) => 1 + m.values().map(depth_of).max().unwrap_or(0),
        Value::Array(a) => 1 + a.iter().map(depth_of).max().unwrap_or(0),
        _ => 0,
    }
}

/// Checks one conversion against the reference: refused exactly on collisions, otherwise
/// every key converted and every value kept.
fn check_case(v: &Value, f: CaseFn, conv: fn(Value) -> Result<Value, CaseError>) {
    let got = conv(v.clone());
    if collides(v, f) {
        match got {
            Err(CaseError::Collision {
                first,
                second,
                converted,
                path,
            }) => {
                assert_ne!(first, second, "a collision names two different keys");
                assert_eq!(f(&first), converted);
                assert_eq!(f(&second), converted);
                assert!(path.starts_with('$'), "{path}");
            }
            other => panic!("colliding keys must be refused, got {other:?} for {v}"),
        }
    } else {
        assert_eq!(got, Ok(convert_ref(v, f)), "for {v}");
    }
}

// ---------------------------------------------------------------- case conversion

proptest! {
    #![proptest_config(cfg(256))]

    #[test]
    fn case_conversion_matches_the_reference_or_refuses_collisions(v in arb_json()) {
        prop_assume!(depth_of(&v) <= MAX_DEPTH);
        check_case(&v, camel, case::to_camel);
        check_case(&v, pascal, case::to_pascal);
    }

    /// `Password` and `password` (and every other pair that converts to one key) in one
    /// object, at any depth: always the documented refusal.
    #[test]
    fn colliding_keys_are_always_refused(
        word in "([A-Z][a-z]{1,6}){1,3}",
        variant in 0usize..5,
        around in arb_json(),
        depth in 0usize..6,
    ) {
        let other = match variant {
            0 => word.to_lowercase(),
            1 => word.to_lower_camel_case(),
            2 => heck::ToSnakeCase::to_snake_case(word.as_str()),
            3 => heck::ToKebabCase::to_kebab_case(word.as_str()),
            _ => format!(" {word} "),
        };
        prop_assume!(other != word && camel(&other) == camel(&word) && pascal(&other) == pascal(&word));
        let mut obj = Map::new();
        obj.insert(word.clone(), around.clone());
        obj.insert(other.clone(), json!(1));
        let mut v = Value::Object(obj);
        for _ in 0..depth {
            v = json!({ "Wrap": [v] });
        }
        for (name, result) in [("camel", case::to_camel(v.clone())), ("pascal", case::to_pascal(v.clone()))] {
            match result {
                Err(CaseError::Collision { first, second, .. }) => {
                    let pair: HashSet<_> = [first, second].into_iter().collect();
                    // The first collision found may sit inside `around`, but the pair we built
                    // is found when nothing inside `around` collides.
                    if !collides(&around, if name == "camel" { camel } else { pascal }) {
                        prop_assert_eq!(pair, [word.clone(), other.clone()].into_iter().collect::<HashSet<_>>());
                    }
                }
                other => prop_assert!(false, "{name}: expected a collision, got {other:?}"),
            }
        }
    }

    #[test]
    fn pascal_keys_survive_a_round_trip(v in json_with_keys("([A-Z][a-z][a-z0-9]{0,5}){1,3}")) {
        let there = case::to_camel(v.clone()).expect("PascalCase keys never collide");
        prop_assert_eq!(case::to_pascal(there).unwrap(), v);
    }

    #[test]
    fn camel_keys_survive_a_round_trip(v in json_with_keys("[a-z][a-z0-9]{0,5}([A-Z][a-z][a-z0-9]{0,4}){0,2}")) {
        let there = case::to_pascal(v.clone()).expect("camelCase keys never collide");
        prop_assert_eq!(case::to_camel(there).unwrap(), v);
    }

    /// Deeper than `MAX_DEPTH`, built in code: refused without overflowing the stack.
    #[test]
    fn deep_values_are_refused_not_overflowed(depth in (MAX_DEPTH + 1)..1500, objects in any::<bool>()) {
        let v = nested(depth, objects);
        prop_assert_eq!(case::to_camel(v.clone()), Err(CaseError::TooDeep));
        prop_assert_eq!(case::to_pascal(v), Err(CaseError::TooDeep));
    }

    /// Whatever serde_json accepts as a request body is shallow enough to convert: the depth
    /// refusal is only for values built in code.
    #[test]
    fn parsed_bodies_are_never_too_deep(depth in 1usize..400, objects in any::<bool>()) {
        let mut text = String::new();
        for i in 0..depth {
            text.push_str(if objects && i % 2 == 0 { "{\"a\":" } else { "[" });
        }
        text.push('1');
        for i in (0..depth).rev() {
            text.push(if objects && i % 2 == 0 { '}' } else { ']' });
        }
        if let Ok(v) = serde_json::from_str::<Value>(&text) {
            prop_assert!(case::to_camel(v).is_ok(), "depth {depth} parsed but cannot convert");
        }
        let body = format!("{{\"Metadata\":{{\"x\":{text}}}}}");
        if let Ok(obj) = json_object(body.as_bytes()) {
            let m = mappings();
            if let Err(e) = plan(&m.user_api, obj) {
                prop_assert!(!e.to_string().contains("nested less deeply"), "{e}");
            }
        }
    }
}

proptest! {
    #![proptest_config(cfg(8))]

    /// Megabyte keys and values: converted, not truncated, no quadratic blow-up.
    #[test]
    fn huge_strings_convert(n in (1usize << 20)..(1usize << 20) + 64, c in select(&['a', 'Z', 'é', '😀', '_', '\u{301}'][..])) {
        let big: String = std::iter::repeat_n(c, n / c.len_utf8()).collect();
        let key = format!("Key{big}");
        let v = json!({ key.clone(): big.clone(), "Other": [big.clone()] });
        let out = case::to_camel(v).unwrap();
        let obj = out.as_object().unwrap();
        prop_assert_eq!(obj.len(), 2);
        prop_assert!(obj.contains_key(&key.to_lower_camel_case()));
        prop_assert_eq!(&obj["other"][0], &Value::String(big.clone()));

        let m = mappings();
        let body: Map<String, Value> = [("Password".to_string(), Value::String(big.clone()))].into_iter().collect();
        let p = plan(&m.user_api, body).unwrap();
        prop_assert_eq!(&p[0].body["password"], &Value::String(big));
    }
}

// ---------------------------------------------------------------- one key-case rule

/// Translates one JSON line through `events::translate` and returns the first output record.
fn events_line(direction: Direction, record: &Value) -> Result<Value, String> {
    let mut out = Vec::new();
    translate(
        direction,
        &mappings().events,
        &Options::default(),
        format!("{record}\n").as_bytes(),
        &mut out,
        std::io::sink(),
        None,
    )
    .map_err(|e| e.to_string())?;
    let first = out.split(|b| *b == b'\n').next().unwrap_or_default();
    serde_json::from_slice(first).map_err(|e| format!("{e}: {}", String::from_utf8_lossy(&out)))
}

/// The identity keys the event translator writes itself, on either side: a field converting
/// to one of them is refused (tested in `tests/events.rs`), not recased.
const EVENT_KEYS: &[&str] = &[
    "eventTypeCode",
    "eventId",
    "side",
    "correlationId",
    "EventTypeCode",
    "EventId",
    "CorrelationId",
];

proptest! {
    #![proptest_config(cfg(256))]

    /// `translate::key::Case` is heck, for any key: its fast path (plain ASCII `fooBar` /
    /// `FooBar` keys) only skips heck's formatting machinery, never changes a result.
    #[test]
    fn the_key_case_rule_is_hecks(
        k in prop_oneof![
            key(),
            "\\PC{0,12}",
            // mostly keys the fast path takes, and ASCII keys just outside it
            "[a-zA-Z][a-z0-9]{0,3}([A-Z0-9][a-z0-9]{0,3}){0,3}",
            "[a-zA-Z][a-zA-Z0-9_-]{0,10}",
        ],
    ) {
        for (case, heck) in [(Case::Camel, camel(&k)), (Case::Pascal, pascal(&k))] {
            prop_assert_eq!(case.convert(&k), heck.clone());
            prop_assert_eq!(case.cased(&k), heck.clone());
            let mut out = Vec::new();
            case.write(&mut out, &k);
            prop_assert_eq!(out, serde_json::to_vec(&heck).unwrap());
        }
    }

    /// Every user of key case gets heck's key: the tree converter, the byte copy of request
    /// bodies and answers, and event records in both directions (through their key cache).
    #[test]
    fn every_path_recases_a_key_as_heck_does(
        k in prop_oneof![key(), "\\PC{0,12}", "[a-zA-Z][a-zA-Z0-9_-]{0,10}"],
    ) {
        let (c, p) = (camel(&k), pascal(&k));
        let nested = json!({ "Outer": [{ k.clone(): 1 }] });

        let tree = case::to_camel(nested.clone()).unwrap();
        prop_assert_eq!(&tree["outer"][0][&c], &json!(1));

        let mut copied = Vec::new();
        rekey::copy_document(nested.to_string().as_bytes(), Case::Pascal, &mut copied).unwrap();
        let copied: Value = serde_json::from_slice(&copied).unwrap();
        prop_assert_eq!(&copied["Outer"][0][&p], &json!(1));

        prop_assume!(!EVENT_KEYS.contains(&c.as_str()) && !EVENT_KEYS.contains(&p.as_str()));
        prop_assume!(!EVENT_KEYS.contains(&k.as_str()));
        let legacy = json!({ "EventTypeCode": "PWDREQ", k.clone(): 1, "Tags": [{ k.clone(): 2 }] });
        let v4 = events_line(Direction::ToV4, &legacy).unwrap();
        prop_assert_eq!(&v4[&c], &json!(1), "{}", v4);
        prop_assert_eq!(&v4["tags"][0][&c], &json!(2), "{}", v4);

        let v4 = json!({
            "eventTypeCode": "SUBSCRIBE_USER_STARTFORGOTPASSWORD", "eventId": 4009,
            "side": "subscribe", k.clone(): 1, "tags": [{ k.clone(): 2 }],
        });
        let legacy = events_line(Direction::ToLegacy, &v4).unwrap();
        prop_assert_eq!(&legacy[&p], &json!(1), "{}", legacy);
        prop_assert_eq!(&legacy["Tags"][0][&p], &json!(2), "{}", legacy);
    }
}

// ---------------------------------------------------------------- plan

/// One planned v4 call, its body read back as an object: the properties speak of objects.
#[derive(Debug)]
struct Planned {
    part: usize,
    body: Map<String, Value>,
}

/// `v` written and parsed again, as the request path parses what a client wrote.
fn reparsed(v: &Value) -> Value {
    serde_json::from_slice(&serde_json::to_vec(v).unwrap()).unwrap()
}

fn reparsed_map(m: &Map<String, Value>) -> Map<String, Value> {
    serde_json::from_slice(&serde_json::to_vec(m).unwrap()).unwrap()
}

/// `user_api::plan` on the object's bytes.
fn plan(ua: &UserApi, body: Map<String, Value>) -> Result<Vec<Planned>, GatewayError> {
    let bytes = serde_json::to_vec(&body).expect("an object serialises");
    Ok(user_api::plan(ua, &bytes)?
        .into_iter()
        .map(|p| Planned {
            part: p.part,
            body: serde_json::from_slice(&p.body).expect("a v4 body is a JSON object"),
        })
        .collect())
}

/// A legacy field name with its letters' case scrambled (the legacy API bound JSON
/// case-insensitively), or the name itself.
fn field_key(names: Vec<String>) -> impl Strategy<Value = String> {
    (select(names), vec(any::<bool>(), 32)).prop_map(|(n, flips)| {
        n.chars()
            .zip(flips.into_iter().cycle())
            .map(|(c, up)| {
                if up {
                    c.to_ascii_uppercase()
                } else {
                    c.to_ascii_lowercase()
                }
            })
            .collect()
    })
}

/// A value of the type a field wants, so that many generated bodies are accepted.
fn typed_value(name: &str) -> BoxedStrategy<Value> {
    match name {
        "Metadata" => prop_oneof![
            Just(Value::Null),
            vec((key(), arb_json()), 0..6).prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
        .boxed(),
        "IgnoreProvider" | "Verified" | "RemoveLastLogoutDate" => {
            any::<bool>().prop_map(Value::Bool).boxed()
        }
        "FirstName" | "LastName" | "LastLogoutDate" => {
            prop_oneof![Just(Value::Null), odd_string().prop_map(Value::String)].boxed()
        }
        _ => odd_string().prop_map(Value::String).boxed(),
    }
}

/// The shipped mappings, parsed once (their regexes are slow to build in debug).
fn mappings() -> &'static Mappings {
    static M: std::sync::OnceLock<Mappings> = std::sync::OnceLock::new();
    M.get_or_init(|| Mappings::embedded().expect("shipped mappings"))
}

fn legacy_names() -> Vec<String> {
    mappings()
        .user_api
        .parts
        .iter()
        .flat_map(|p| p.fields.iter().map(|f| f.legacy.clone()))
        .collect()
}

/// Bodies: known fields (scrambled case, typed or arbitrary values) and unknown keys.
fn legacy_body() -> impl Strategy<Value = Map<String, Value>> {
    let names = legacy_names();
    let entry = prop_oneof![
        6 => select(names.clone()).prop_flat_map(|n| (Just(n.clone()), typed_value(&n))),
        2 => (field_key(names.clone()), arb_json()),
        1 => (key(), arb_json()),
    ];
    vec(entry, 0..6).prop_map(|kv| kv.into_iter().collect())
}

proptest! {
    #![proptest_config(cfg(256))]

    #[test]
    fn plan_refuses_as_documented_or_produces_only_mapped_fields(body in legacy_body()) {
        let m = mappings();
        let ua = &m.user_api;
        let names = legacy_names();
        let known = |k: &str| names.iter().find(|n| n.to_lowercase() == k.to_lowercase()).cloned();
        let result = plan(ua, body.clone());

        if body.is_empty() {
            prop_assert!(matches!(result, Err(GatewayError::EmptyBody)), "{result:?}");
            return Ok(());
        }
        let unknown: Vec<String> = body.keys().filter(|k| known(k).is_none()).cloned().collect();
        if !unknown.is_empty() {
            match result {
                Err(GatewayError::UnknownFields(named)) => prop_assert_eq!(named, unknown),
                other => prop_assert!(false, "unknown fields must be named: {other:?}"),
            }
            return Ok(());
        }
        let mut lower = HashSet::new();
        let duplicated = body.keys().any(|k| !lower.insert(k.to_lowercase()));
        let wrong_type = body.iter().any(|(k, v)| {
            let (_, f) = ua.field(k).unwrap();
            let null_ok = v.is_null() && f.nullable;
            !null_ok && !f.ty.accepts(v)
        });
        let metadata_collides = body.iter().any(|(k, v)| known(k).as_deref() == Some("Metadata") && collides(v, camel));
        if duplicated || metadata_collides {
            match &result {
                Err(GatewayError::DuplicateKeys(_)) => {}
                Err(GatewayError::WrongType { .. }) if wrong_type => {}
                other => prop_assert!(false, "duplicates must be refused: {other:?}"),
            }
            if !wrong_type {
                prop_assert!(matches!(result, Err(GatewayError::DuplicateKeys(_))), "{result:?}");
            }
            return Ok(());
        }
        if wrong_type {
            match result {
                Err(GatewayError::WrongType { field, .. }) => {
                    prop_assert!(names.contains(&field), "names the mapped field: {field}")
                }
                other => prop_assert!(false, "a wrong type must be refused: {other:?}"),
            }
            return Ok(());
        }
        let planned = match result {
            Ok(p) => p,
            Err(e) => return Err(TestCaseError::fail(format!("a valid body was refused: {e}"))),
        };
        // Parts strictly in the mapping's order, each with only its own v4 names.
        prop_assert!(planned.windows(2).all(|w| w[0].part < w[1].part));
        let mut sent = 0;
        for p in &planned {
            let part = &ua.parts[p.part];
            prop_assert!(!p.body.is_empty());
            for (k, v) in &p.body {
                let field = part.fields.iter().find(|f| &f.v4 == k);
                prop_assert!(field.is_some(), "{k} is not a v4 name of part {}", part.name);
                let (orig_key, orig) = body.iter().find(|(bk, _)| bk.to_lowercase() == field.unwrap().legacy.to_lowercase()).unwrap();
                // The body went through the parser twice (plan, then read back here), as
                // floats do on the wire (serde_json parses a float within an ULP).
                let orig = reparsed(&reparsed(orig));
                prop_assert_eq!(v, &case::to_camel(orig).unwrap(), "value of {}", orig_key);
                sent += 1;
            }
        }
        prop_assert_eq!(sent, body.len(), "every field sent exactly once");
    }

    /// The one-pass reading of the bytes and the reference reading of the parsed object
    /// agree on every body: the same refusal, or the same v4 calls with equal bodies.
    #[test]
    fn the_byte_reading_is_the_reference_reading(body in legacy_body()) {
        let ua = &mappings().user_api;
        let bytes = plan(ua, body.clone()).map(|p| {
            p.into_iter().map(|p| (p.part, p.body)).collect::<Vec<_>>()
        });
        // The reference reads what the byte reading reads, and its output is read back
        // like the byte reading's.
        let tree = plan_tree(ua, reparsed_map(&body)).map(|t| {
            t.into_iter().map(|(p, m)| (p, reparsed_map(&m))).collect::<Vec<_>>()
        });
        match (bytes, tree) {
            (Ok(b), Ok(t)) => prop_assert_eq!(b, t),
            (Err(b), Err(t)) => prop_assert_eq!(b.to_string(), t.to_string()),
            (b, t) => prop_assert!(false, "bytes {b:?}, tree {t:?}"),
        }
    }

    /// `Password` and `password`, and any two spellings of one field, in one body.
    #[test]
    fn two_spellings_of_one_field_are_refused(
        name in select(legacy_names()),
        flips in vec(any::<bool>(), 32),
        value in prop_oneof![Just(json!("Abcdefg1")), Just(json!(true)), Just(json!(null))],
    ) {
        let other: String = name.chars().zip(flips).map(|(c, up)| if up { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() }).collect();
        prop_assume!(other != name);
        let m = mappings();
        let body: Map<String, Value> = [(name.clone(), value.clone()), (other, value)].into_iter().collect();
        match plan(&m.user_api, body) {
            Err(GatewayError::DuplicateKeys(_)) | Err(GatewayError::WrongType { .. }) => {}
            other => prop_assert!(false, "{other:?}"),
        }
    }

    /// `Metadata` holding keys that become one key in camelCase, at any depth.
    #[test]
    fn colliding_metadata_keys_are_refused(word in "([A-Z][a-z]{1,6}){1,3}", depth in 0usize..5) {
        let mut inner = json!({ word.clone(): 1, word.to_lower_camel_case(): 2 });
        for _ in 0..depth {
            inner = json!({ "Nested": [inner] });
        }
        let m = mappings();
        let body: Map<String, Value> = [("Metadata".to_string(), inner)].into_iter().collect();
        let e = plan(&m.user_api, body).unwrap_err();
        prop_assert!(matches!(e, GatewayError::DuplicateKeys(_)), "{e:?}");
        prop_assert!(e.to_string().contains("Metadata"), "{e}");
    }

    /// Deep `Metadata` built in code: refused as a field error, no overflow.
    #[test]
    fn deep_metadata_is_a_field_error(depth in (MAX_DEPTH + 1)..1500) {
        let m = mappings();
        let deep = Value::Object(Map::from_iter([("x".to_string(), nested(depth, true))]));
        let body: Map<String, Value> = [("Metadata".to_string(), deep)].into_iter().collect();
        match plan_tree(&m.user_api, body.clone()) {
            Err(GatewayError::WrongType { field, .. }) => prop_assert_eq!(field, "Metadata"),
            other => prop_assert!(false, "{other:?}"),
        }
        // As text it cannot reach the tree: the parser refuses it first.
        let e = plan(&m.user_api, body).unwrap_err();
        prop_assert!(matches!(e, GatewayError::MalformedJson { .. }), "{e:?}");
    }
}

// ---------------------------------------------------------------- request bodies

proptest! {
    #![proptest_config(cfg(256))]

    /// Bytes, JSON text with lone surrogate escapes, NULs, BOMs: parsed or refused with a
    /// 400-class reason, never a panic.
    #[test]
    fn request_bodies_parse_or_are_refused(
        bytes in prop_oneof![
            vec(any::<u8>(), 0..256),
            arb_json().prop_map(|v| v.to_string().into_bytes()),
            (arb_json(), select(&[
                "\"\\ud800\"", "\"\\udc00x\"", "\"\\ud83d\\ude00\"", "\"\\u0000\"", "\"\\uDBFF\\uDFFF\"",
                "\"\\ud800\\u0041\"", "\u{FEFF}", "\"a\0b\"", "1e999", "-0", "[]", "{}", "tru", ",",
            ][..])).prop_map(|(v, s)| format!("{{\"Password\":{s},\"X\":{v}}}").into_bytes()),
        ]
    ) {
        match json_object(&bytes) {
            Ok(obj) => {
                let reparsed: Value = serde_json::from_slice(&bytes).unwrap();
                prop_assert_eq!(Value::Object(obj.clone()), reparsed);
                let m = mappings();
                let _ = plan(&m.user_api, obj);
            }
            Err(e) => {
                prop_assert_eq!(e.status().as_u16(), 400, "{}", e);
                prop_assert!(matches!(e, GatewayError::EmptyBody | GatewayError::NotAnObject | GatewayError::MalformedJson { .. }), "{e:?}");
            }
        }
    }
}

proptest! {
    #![proptest_config(cfg(256))]

    /// Raw texts, a key given twice included: the one-pass reading of the bytes answers what
    /// the reference reading (parse, then plan the object) answers, or refuses the repeat,
    /// which a parsed object no longer shows.
    #[test]
    fn raw_bodies_are_read_as_the_reference_reads_them(
        entries in vec((
            prop_oneof![select(legacy_names()), field_key(legacy_names()), key()],
            prop_oneof![
                arb_json().prop_map(|v| v.to_string()),
                select(&[
                    "\"\\ud800\"", "\"a\\\"b\\u00e9\"", "1e999", "-0", "1.0", "tru", "[1,]",
                    "{\"A\":1,\"A\":2}", "{\"A\":1,\"a\":2}", "{\"B\":[{\"C\":1,\"C\":2}]}",
                ][..]).prop_map(String::from),
            ],
        ), 0..5),
        repeat in any::<bool>(),
    ) {
        let mut members: Vec<String> = entries
            .iter()
            .map(|(k, v)| format!("{}:{v}", Value::from(k.as_str())))
            .collect();
        if repeat && !members.is_empty() {
            members.push(members[0].clone());
        }
        let text = format!("{{{}}}", members.join(","));
        let ua = &mappings().user_api;
        let reference = json_object(text.as_bytes()).and_then(|o| plan_tree(ua, o));
        match (user_api::plan(ua, text.as_bytes()), reference) {
            (Ok(b), Ok(t)) => {
                let b: Vec<(usize, Map<String, Value>)> = b
                    .into_iter()
                    .map(|p| (p.part, serde_json::from_slice(&p.body).unwrap()))
                    .collect();
                prop_assert_eq!(b, t);
            }
            (Err(b), Err(t)) => prop_assert_eq!(b.to_string(), t.to_string()),
            (Err(GatewayError::DuplicateKeys(m)), Ok(_)) => {
                prop_assert!(m.contains("appears twice"), "{m}");
                let mut keys = HashSet::new();
                let twice = entries.iter().any(|(k, _)| !keys.insert(k));
                prop_assert!(repeat || twice || text.contains(":2}"), "{text}");
            }
            (b, t) => prop_assert!(false, "{text}: bytes {b:?}, tree {t:?}"),
        }
    }
}

#[test]
fn lone_surrogates_in_json_text_are_malformed_not_panics() {
    for text in [
        r#"{"Password":"\ud800"}"#,
        r#"{"Password":"\udfff"}"#,
        r#"{"\ud800":"x"}"#,
        r#"{"Metadata":{"\udc00":1}}"#,
    ] {
        assert!(
            matches!(
                json_object(text.as_bytes()),
                Err(GatewayError::MalformedJson { .. })
            ),
            "{text}"
        );
    }
    // A valid pair is one character.
    let obj = json_object(br#"{"Password":"\ud83d\ude00"}"#).unwrap();
    assert_eq!(obj["Password"], "😀");
}

// ---------------------------------------------------------------- v4 envelope

/// Reference reading of SPEC 1.1's envelope.
fn envelope_ref(
    status: u16,
    body: &[u8],
) -> Result<(String, String, Option<Value>), EnvelopeError> {
    let read = || -> Result<(String, String, Option<Value>), EnvelopeError> {
        let v: Value = serde_json::from_slice(body).map_err(|_| EnvelopeError::NotJson)?;
        let msg = v
            .get("message")
            .and_then(Value::as_object)
            .ok_or(EnvelopeError::NotEnvelope)?;
        let code = msg
            .get("code")
            .and_then(Value::as_str)
            .ok_or(EnvelopeError::NotEnvelope)?;
        let text = match msg.get("text") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err(EnvelopeError::NotEnvelope),
        };
        if matches!(
            msg.get("type"),
            Some(Value::Bool(_) | Value::Array(_) | Value::Object(_))
        ) {
            return Err(EnvelopeError::NotEnvelope);
        }
        Ok((
            code.to_string(),
            text,
            v.get("data").filter(|d| !d.is_null()).cloned(),
        ))
    };
    match read() {
        Ok(x) => Ok(x),
        Err(e) if status < 400 => Err(e),
        Err(_) => Ok((format!("E{status}"), String::new(), None)),
    }
}

/// Bodies that are envelopes, almost envelopes, other JSON, or not JSON.
fn v4_body() -> impl Strategy<Value = Vec<u8>> {
    let part = || {
        prop_oneof![
            Just(None),
            arb_json().prop_map(Some),
            odd_string().prop_map(|s| Some(Value::String(s)))
        ]
    };
    prop_oneof![
        (part(), part(), part(), part()).prop_map(|(code, text, ty, data)| {
            let mut msg = Map::new();
            for (k, v) in [("code", code), ("text", text), ("type", ty)] {
                if let Some(v) = v {
                    msg.insert(k.into(), v);
                }
            }
            let mut env = json!({ "message": msg, "meta": null });
            if let Some(d) = data {
                env["data"] = d;
            }
            env.to_string().into_bytes()
        }),
        arb_json().prop_map(|v| v.to_string().into_bytes()),
        vec(any::<u8>(), 0..128),
        Just(br#"{"message":{"code":"\ud800","text":"x"}}"#.to_vec()),
        Just(b"<html>502 Bad Gateway</html>".to_vec()),
    ]
}

proptest! {
    #![proptest_config(cfg(256))]

    #[test]
    fn envelope_parse_agrees_with_the_reference(
        status in prop_oneof![100u16..600, any::<u16>()],
        body in v4_body(),
    ) {
        let got = envelope::parse(status, &body);
        match (envelope_ref(status, &body), &got) {
            (Ok((code, text, data)), Ok(a)) => {
                prop_assert_eq!(a.status, status);
                prop_assert_eq!(&a.code, &code);
                if code != format!("E{status}") || !text.is_empty() {
                    prop_assert_eq!(&a.text, &text);
                }
                // `data` is kept as v4's text: compared as JSON.
                let got: Option<Value> = a.data.as_deref().map(|d| serde_json::from_str(d).unwrap());
                prop_assert_eq!(&got, &data);
                prop_assert_eq!(a.is_success(), (200..300).contains(&status));
            }
            (Err(e), Err(g)) => prop_assert_eq!(&e, g),
            (want, got) => prop_assert!(false, "want {want:?}, got {got:?}"),
        }
        if status >= 400 {
            prop_assert!(got.is_ok(), "an error status is always usable");
        }
    }
}

// ---------------------------------------------------------------- ids in v4 paths

/// Raw legacy path segments: percent-escapes (valid, invalid, of separators, of dots, of
/// overlong/invalid UTF-8), dots, slashes and odd Unicode.
fn raw_segment() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        "[A-Za-z0-9|@!$&'()*+,;=:~_-]{1,4}",
        select(
            &[
                ".",
                "..",
                "/",
                "\\",
                "%2F",
                "%2f",
                "%5C",
                "%2E",
                "%2e",
                "%2E%2E",
                "%00",
                "%0A",
                "%25",
                "%252F",
                "%252E%252E",
                "%3F",
                "%23",
                "%FF",
                "%C0%AF",
                "%E2%80%AE",
                "%F0%9F%98%80",
                "%",
                "%Z",
                "%%",
                "?",
                "#",
                " ",
                "%20",
            ][..]
        )
        .prop_map(str::to_string),
        any::<u8>().prop_map(|b| format!("%{b:02X}")),
        odd_char().prop_map(|c| c.to_string()),
    ];
    vec(piece, 1..8).prop_map(|p| p.concat())
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// The rendered segment is one RFC 3986 segment of unreserved characters and `%XX`.
fn assert_one_segment(template: &str, id: &str) {
    let t = PathTemplate::parse(template).unwrap();
    let rendered = t.render(Some(id));
    let (before, after) = template.split_once("{id}").unwrap();
    let seg = rendered
        .strip_prefix(before)
        .and_then(|r| r.strip_suffix(after))
        .unwrap_or_else(|| panic!("{rendered} keeps the template around the id"));
    assert!(!seg.is_empty());
    assert!(seg != "." && seg != "..", "dot segment {seg}");
    let b = seg.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            assert!(
                i + 2 < b.len() && b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit(),
                "bad escape in {seg}"
            );
            i += 3;
        } else {
            assert!(is_unreserved(b[i]), "{:?} in {seg}", b[i] as char);
            i += 1;
        }
    }
    let decoded = percent_encoding::percent_decode_str(seg)
        .decode_utf8()
        .unwrap();
    assert_eq!(decoded, id, "decodes back to the id");
    assert!(!decoded.contains(['/', '\\']));
    // A URL parser (reqwest's) keeps the path as rendered: no normalisation moved the id.
    let url = url::Url::parse(&format!("http://v4.test{rendered}")).unwrap();
    assert_eq!(url.path(), rendered);
    let n = template.split('/').count();
    assert_eq!(url.path_segments().unwrap().count(), n - 1, "{rendered}");
}

proptest! {
    #![proptest_config(cfg(256))]

    #[test]
    fn a_decoded_id_renders_as_exactly_one_segment(raw in raw_segment()) {
        match path::decode_id(&raw) {
            Ok(id) => {
                prop_assert!(path::check_id(&id).is_ok());
                for t in ["/v4/Users/{id}/Password", "/v4/Users/{id}/", "/v4/Users/{id}"] {
                    assert_one_segment(t, &id);
                }
            }
            Err(BadId::Unsafe) => {
                let d = percent_encoding::percent_decode_str(&raw).decode_utf8_lossy();
                prop_assert!(d == "." || d == ".." || d.contains(['/', '\\']) || d.chars().any(char::is_control), "{raw} → {d}");
            }
            Err(_) => {}
        }
    }

    /// Any id that passes `check_id`, however odd, is one segment too.
    #[test]
    fn any_checked_id_is_one_segment(id in prop_oneof![odd_string(), "[./%A-Fa-f0-9]{1,8}", ".{1,300}"]) {
        if path::check_id(&id).is_ok() {
            assert_one_segment("/v4/Users/{id}/Email", &id);
        }
    }

    #[test]
    fn template_parsing_never_panics(raw in prop_oneof![odd_string(), "/[a-z{}/]{0,20}"], id in odd_string()) {
        if let Some(t) = PathTemplate::parse(&raw) {
            let out = t.render(Some(&id));
            prop_assert!(out.starts_with('/'));
            if !t.needs_id() {
                prop_assert_eq!(out, raw);
            }
        }
    }
}

#[test]
fn traversal_and_separator_spellings_are_refused() {
    for raw in [
        ".",
        "..",
        "%2e",
        "%2E%2e",
        ".%2E",
        "%2F",
        "a%2Fb",
        "%5C",
        "a%5cb",
        "..%2F..%2Fv4",
        "%00",
        "a%0Ab",
        "%7F",
    ] {
        assert_eq!(path::decode_id(raw), Err(BadId::Unsafe), "{raw}");
    }
    // Double-encoded separators stay data: one decode only, re-encoded on the way out.
    let id = path::decode_id("%252F..%252F").unwrap();
    assert_eq!(id, "%2F..%2F");
    assert_one_segment("/v4/Users/{id}/Password", &id);
    assert_eq!(
        PathTemplate::parse("/v4/Users/{id}/Password")
            .unwrap()
            .render(Some(&id)),
        "/v4/Users/%252F..%252F/Password"
    );
}

// ---------------------------------------------------------------- redaction

const SEPARATORS: &[&str] = &[
    " ", "'", "\"", ":", "=", ", ", ".", "(", ")", "\n", "\t", "/", "-", "_", "***", "😀",
    "\u{202E}",
];

proptest! {
    #![proptest_config(cfg(256))]

    #[test]
    fn scrub_never_panics(text in odd_string(), secrets in vec(odd_string(), 0..4)) {
        let refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
        let out = scrub(&text, &refs);
        if refs.iter().all(|s| s.is_empty() || !text.contains(s)) {
            prop_assert_eq!(out, text);
        }
    }

    /// A secret standing as a token of its own (between separators, at either end), once
    /// or many times, in any sentence: gone from the result.
    #[test]
    fn a_standalone_secret_never_survives(
        secret in "[A-Za-z0-9]{1,16}",
        words in vec(prop_oneof![Just(None), "[A-Za-z0-9]{0,6}".prop_map(Some)], 1..12),
        seps in vec(select(SEPARATORS), 12),
    ) {
        let mut text = String::new();
        for (w, sep) in words.iter().zip(seps) {
            let w = match w {
                None => secret.as_str(),
                Some(w) if w.contains(&secret) => "word",
                Some(w) => w.as_str(),
            };
            text.push_str(w);
            text.push_str(sep);
        }
        let out = scrub(&text, &[&secret, ""]);
        prop_assert!(!out.contains(&secret) || secret == "word" || "word".contains(&secret), "{text:?} → {out:?}");
        if words.iter().any(Option::is_none) {
            prop_assert!(out.contains("***"));
        }
    }

    /// The token and the whole header value, as `authorization_secrets` gives them.
    #[test]
    fn bearer_tokens_are_scrubbed_with_and_without_scheme(
        token in "[A-Za-z0-9._~+/-]{8,40}",
        sep in select(SEPARATORS),
        with_scheme in any::<bool>(),
    ) {
        prop_assume!(token.starts_with(|c: char| c.is_ascii_alphanumeric()) && token.ends_with(|c: char| c.is_ascii_alphanumeric()));
        let header = format!("Bearer {token}");
        let mut h = http::HeaderMap::new();
        h.insert(http::header::AUTHORIZATION, header.parse().unwrap());
        let secrets = legacy_gateway::redact::authorization_secrets(&h);
        let shown = if with_scheme { header.clone() } else { token.clone() };
        let text = format!("Token{sep}{shown}{sep}is expired");
        let out = scrub(&text, &secrets);
        prop_assert!(!out.contains(&token), "{text:?} → {out:?}");
    }
}

/// The documented rule is "replaced where it stands as a token of its own (not inside a
/// longer word)". When a secret follows itself directly, the second copy is judged by its
/// right neighbour only (the left one is looked up in the remainder of the text, which starts
/// at the copy), so `SecretSecret` becomes `Secret***`: half a word masked, the other half
/// now standing alone. Over-scrubbing, not a leak of anything not already visible, but the
/// result contradicts the rule and is not idempotent (`scrub(scrub(t)) != scrub(t)`).
#[test]
fn scrub_treats_back_to_back_repeats_as_one_word() {
    let out = scrub("Hunter2xHunter2x.", &["Hunter2x"]);
    assert_eq!(out, "Hunter2xHunter2x.", "inside a longer word: kept whole");
    assert_eq!(scrub(&out, &["Hunter2x"]), out, "idempotent");
}
