//! The transcoder with a table of its caller's own, no gateway in the build: it knows the
//! events of the table it is given, and no other.

use legacy_gateway_events::{translate, Direction, EventTable, Options, TableError};

const TABLE: &str = r#"
[[events]]
code = "SIGNUP"
id = 7
v4 = [
  { code = "AUTH_SIGNUP", id = 70, side = "authsystem" },
  { code = "SUB_SIGNUP", id = 71, side = "subscribe" },
]
"#;

fn run(direction: Direction, table: &EventTable, input: &str) -> (Vec<serde_json::Value>, u64) {
    let mut out = Vec::new();
    let summary = translate(
        direction,
        table,
        &Options::default(),
        input.as_bytes(),
        &mut out,
        std::io::sink(),
        None,
    )
    .expect("the run completes");
    let records = out
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).expect("each output line is JSON"))
        .collect();
    (records, summary.unknown)
}

#[test]
fn a_table_of_its_own_translates_both_ways() {
    let table = EventTable::load(TABLE).expect("the table is valid");
    let legacy = r#"{"EventTypeCode":"SIGNUP","CorrelationId":"c-9","UserName":"ann"}"#;

    let (v4, unknown) = run(Direction::ToV4, &table, legacy);
    assert_eq!(unknown, 0);
    let codes: Vec<&str> = v4
        .iter()
        .map(|r| r["eventTypeCode"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["AUTH_SIGNUP", "SUB_SIGNUP"]);
    assert_eq!(v4[0]["userName"], "ann");
    assert_eq!(v4[1]["side"], "subscribe");

    let lines: Vec<String> = v4.iter().map(|r| r.to_string()).collect();
    let (back, _) = run(Direction::ToLegacy, &table, &lines.join("\n"));
    assert_eq!(back.len(), 1);
    assert_eq!(back[0]["EventTypeCode"], "SIGNUP");
    assert_eq!(back[0]["EventId"], 7);
    assert_eq!(back[0]["UserName"], "ann");
}

#[test]
fn an_event_only_the_gateways_table_has_is_unknown_here() {
    let table = EventTable::load(TABLE).expect("the table is valid");
    let line = r#"{"EventTypeCode":"CHGPWD","CorrelationId":"c-1"}"#;
    let (out, unknown) = run(Direction::ToV4, &table, line);
    assert_eq!(unknown, 1);
    assert_eq!(
        out,
        [serde_json::from_str::<serde_json::Value>(line).unwrap()]
    );
}

#[test]
fn a_table_with_an_event_twice_is_refused_with_its_line() {
    let twice = format!("{TABLE}\n[[events]]\ncode = \"SIGNUP\"\nid = 8\nv4 = [{{ code = \"X\", id = 80, side = \"subscribe\" }}]\n");
    let e: TableError = EventTable::load(twice.as_str()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "line 11: field `events[1].code`: duplicate legacy event code \"SIGNUP\""
    );
}
