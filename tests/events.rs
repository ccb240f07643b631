//! Event record translation through the public API (`events::translate`, `Joiner`), with
//! in-memory readers and writers: round trips for every row of the shipped table, grouping in
//! any order, incomplete groups, unknown events, malformed lines, key case, and a large lazily
//! generated stream that must not grow the joiner.

use std::collections::HashMap;
use std::io::{self, BufReader, Read, Write};

use legacy_gateway::events::{
    legacy_to_v4, translate, Direction, EventsError, Joined, Joiner, Options, Summary,
};
use legacy_gateway::mapping::EventTable;
use legacy_gateway::source::Source;
use proptest::prelude::*;
use serde_json::{json, Value};

fn table() -> EventTable {
    EventTable::load(&Source::new(
        "events.toml",
        include_str!("../mappings/events.toml"),
    ))
    .expect("shipped table loads")
}

/// What one run produced.
struct Run {
    result: Result<Summary, EventsError>,
    out: Vec<Value>,
    report: String,
    unmatched: Vec<Value>,
}

fn run(direction: Direction, opts: Options, input: &str) -> Run {
    let t = table();
    let (mut out, mut report, mut unmatched) = (Vec::new(), Vec::new(), Vec::new());
    let result = translate(
        direction,
        &t,
        &opts,
        input.as_bytes(),
        &mut out,
        &mut report,
        Some(&mut unmatched),
    );
    Run {
        result,
        out: lines(&out),
        report: String::from_utf8(report).expect("report is UTF-8"),
        unmatched: lines(&unmatched),
    }
}

fn lines(bytes: &[u8]) -> Vec<Value> {
    std::str::from_utf8(bytes)
        .expect("output is UTF-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("output line is JSON"))
        .collect()
}

fn jsonl(records: &[Value]) -> String {
    records.iter().map(|r| format!("{r}\n")).collect()
}

/// A full legacy record of `code` with nested other fields.
fn legacy(t: &EventTable, code: &str, cid: &str) -> Value {
    let ev = t.get(code).expect("code in table");
    json!({
        "EventTypeCode": code, "EventId": ev.id, "CustomerRegistrationId": "1001",
        "CorrelationId": cid, "Timestamp": "2024-05-01T10:00:00Z",
        "Metadata": {"SourceSystem": "web", "Tags": [{"TagName": "a"}]}
    })
}

#[test]
fn every_row_round_trips_legacy_to_v4_to_legacy() {
    let t = table();
    for ev in t.iter() {
        let rec = legacy(&t, &ev.code, "c-1");
        let v4 = run(
            Direction::ToV4,
            Options::default(),
            &jsonl(std::slice::from_ref(&rec)),
        );
        assert_eq!(
            v4.result.unwrap().written,
            ev.v4.len() as u64,
            "{}",
            ev.code
        );
        let codes: Vec<&str> = v4
            .out
            .iter()
            .filter_map(|r| r["eventTypeCode"].as_str())
            .collect();
        let expected: Vec<&str> = ev.v4.iter().map(|e| e.code.as_str()).collect();
        assert_eq!(codes, expected, "table order for {}", ev.code);
        for (r, e) in v4.out.iter().zip(&ev.v4) {
            assert_eq!(r["eventId"], json!(e.id));
            assert_eq!(r["customerRegistrationId"], json!("1001"));
            assert_eq!(r["metadata"]["tags"][0]["tagName"], json!("a"));
            assert!(r["side"].is_string());
        }
        let back = run(Direction::ToLegacy, Options::default(), &jsonl(&v4.out));
        assert_eq!(back.result.unwrap().unmatched_groups, 0);
        assert_eq!(back.out, [rec], "round trip of {}", ev.code);
        assert_eq!(back.report, "");
    }
}

#[test]
fn every_row_round_trips_v4_to_legacy_to_v4() {
    let t = table();
    for ev in t.iter() {
        let group: Vec<Value> = ev
            .v4
            .iter()
            .map(|e| {
                let side = serde_json::to_value(e.side).expect("side serializes");
                json!({"eventTypeCode": e.code, "eventId": e.id, "side": side,
                       "correlationId": "c-9", "customerRegistrationId": "7",
                       "metadata": {"ipAddress": "10.0.0.1"}})
            })
            .collect();
        let legacy = run(Direction::ToLegacy, Options::default(), &jsonl(&group));
        assert_eq!(legacy.out.len(), 1, "{}", ev.code);
        assert_eq!(legacy.out[0]["EventTypeCode"], json!(ev.code));
        assert_eq!(legacy.out[0]["Metadata"]["IpAddress"], json!("10.0.0.1"));
        assert!(legacy.out[0].get("Side").is_none());
        let v4 = run(Direction::ToV4, Options::default(), &jsonl(&legacy.out));
        assert_eq!(v4.out, group, "round trip of {}", ev.code);
    }
}

#[test]
fn groups_join_out_of_order_and_interleaved() {
    let t = table();
    // Three groups; each v4 stream reversed and the groups interleaved.
    let mut per_group: Vec<Vec<Value>> = [("CHGPWD", "a"), ("CHGEMAIL", "b"), ("GETUSERBYID", "c")]
        .iter()
        .map(|(code, cid)| {
            let mut v = legacy_to_v4(&t, &legacy(&t, code, cid)).expect("translates");
            v.reverse();
            v
        })
        .collect();
    let mut input = Vec::new();
    while per_group.iter().any(|g| !g.is_empty()) {
        for g in per_group.iter_mut().filter(|g| !g.is_empty()) {
            input.push(g.remove(0));
        }
    }
    let r = run(Direction::ToLegacy, Options::default(), &jsonl(&input));
    let summary = r.result.unwrap();
    assert_eq!(
        (summary.lines, summary.written, summary.unmatched_groups),
        (6, 3, 0)
    );
    let got: Vec<(&str, &str)> = r
        .out
        .iter()
        .filter_map(|v| Some((v["EventTypeCode"].as_str()?, v["CorrelationId"].as_str()?)))
        .collect();
    // Written as each group completes: in the order of their last member.
    assert_eq!(
        got,
        [("CHGPWD", "a"), ("CHGEMAIL", "b"), ("GETUSERBYID", "c")]
    );
    assert_eq!(r.out[0], legacy(&t, "CHGPWD", "a"));
}

#[test]
fn incomplete_group_is_reported_and_written_to_unmatched() {
    let auth =
        json!({"eventTypeCode": "AUTHSYSTEM_USER_CHANGEPASSWORD", "correlationId": "x-1", "n": 1});
    let pwdreq =
        json!({"eventTypeCode": "SUBSCRIBE_USER_STARTFORGOTPASSWORD", "correlationId": "x-2"});
    let r = run(
        Direction::ToLegacy,
        Options::default(),
        &jsonl(&[auth.clone(), pwdreq]),
    );
    let s = r.result.unwrap();
    assert_eq!((s.written, s.unmatched_groups), (1, 1));
    assert!(r.report.contains("x-1"), "{}", r.report);
    assert!(
        r.report.contains("missing SUBSCRIBE_USER_CHANGEPASSWORD"),
        "{}",
        r.report
    );
    assert!(r.report.starts_with("line 1:"), "{}", r.report);
    assert_eq!(r.unmatched, [auth]);
}

#[test]
fn records_without_correlation_id() {
    // Single v4 event: completes at once. Several: unmatched immediately.
    let input = jsonl(&[
        json!({"eventTypeCode": "SUBSCRIBE_USER_STARTFORGOTPASSWORD", "email": "a@b.c"}),
        json!({"eventTypeCode": "AUTHSYSTEM_USER_GETBYID"}),
    ]);
    let r = run(Direction::ToLegacy, Options::default(), &input);
    let s = r.result.unwrap();
    assert_eq!((s.written, s.unmatched_groups), (1, 1));
    assert_eq!(
        r.out,
        [json!({"EventTypeCode": "PWDREQ", "EventId": 64, "Email": "a@b.c"})]
    );
    assert!(r.report.contains("correlationId (none)"), "{}", r.report);
    assert_eq!(r.unmatched.len(), 1);
    // to-v4 invents no correlation id.
    let r = run(
        Direction::ToV4,
        Options::default(),
        "{\"EventTypeCode\":\"CHGPWD\"}\n",
    );
    assert!(r.out.iter().all(|v| v.get("correlationId").is_none()));
}

#[test]
fn duplicate_is_reported_first_kept_and_written_to_unmatched() {
    let a1 = json!({"eventTypeCode": "AUTHSYSTEM_USER_GETBYID", "correlationId": "d", "n": 1});
    let a2 = json!({"eventTypeCode": "AUTHSYSTEM_USER_GETBYID", "correlationId": "d", "n": 2});
    let s = json!({"eventTypeCode": "SUBSCRIBE_USER_GETBYID", "correlationId": "d"});
    let r = run(
        Direction::ToLegacy,
        Options::default(),
        &jsonl(&[a1, a2.clone(), s]),
    );
    let summary = r.result.unwrap();
    assert_eq!((summary.written, summary.unmatched_groups), (1, 0));
    assert_eq!(r.out[0]["N"], json!(1));
    assert!(
        r.report
            .contains("line 2: duplicate AUTHSYSTEM_USER_GETBYID"),
        "{}",
        r.report
    );
    assert_eq!(r.unmatched, [a2]);
}

#[test]
fn unknown_codes_pass_through_unless_strict() {
    let raw_legacy = r#"{"EventTypeCode":"NOPE",  "Keep":"As Is"}"#;
    let raw_v4 = r#"{ "eventId": 1, "x": 1 }"#;
    for (dir, raw, name) in [
        (Direction::ToV4, raw_legacy, "NOPE"),
        (Direction::ToLegacy, raw_v4, "id 1"),
    ] {
        let t = table();
        let (mut out, mut report) = (Vec::new(), Vec::new());
        let input = format!("{raw}\r\n");
        let s = translate(
            dir,
            &t,
            &Options::default(),
            input.as_bytes(),
            &mut out,
            &mut report,
            None,
        )
        .unwrap();
        assert_eq!((s.unknown, s.written), (1, 1));
        assert_eq!(
            out,
            format!("{raw}\n").into_bytes(),
            "passed through byte for byte"
        );
        assert!(String::from_utf8_lossy(&report).contains(name));

        let strict = Options {
            strict: true,
            skip_invalid: true,
        };
        let r = run(dir, strict, &format!("\n{raw}\n"));
        match r.result {
            Err(EventsError::Unknown { line: 2, code }) => assert_eq!(code, name),
            other => panic!("expected an unknown-event error on line 2, got {other:?}"),
        }
    }
}

#[test]
fn malformed_line_names_its_line_or_is_skipped() {
    // A good record, three malformed lines (not JSON, not an object, colliding keys), good again.
    let input = |good: &str| {
        format!("{good}\nnot json\n[1,2]\n{{\"EventTypeCode\":\"PWDREQ\",\"Foo\":1,\"foo\":2}}\n{good}\n")
    };
    let legacy_in = input(r#"{"EventTypeCode":"PWDREQ","CorrelationId":"p"}"#);
    let v4_in = input(r#"{"eventTypeCode":"SUBSCRIBE_USER_STARTFORGOTPASSWORD"}"#);
    for (dir, text) in [(Direction::ToV4, &legacy_in), (Direction::ToLegacy, &v4_in)] {
        let r = run(dir, Options::default(), text);
        match r.result {
            Err(e @ EventsError::Invalid { line: 2, .. }) => {
                assert!(e.to_string().starts_with("line 2:"), "{e}")
            }
            other => panic!("expected invalid line 2, got {other:?}"),
        }
    }
    let skip = Options {
        skip_invalid: true,
        ..Options::default()
    };
    let r = run(Direction::ToV4, skip, &legacy_in);
    let s = r.result.unwrap();
    assert_eq!((s.lines, s.invalid, s.written), (5, 3, 2));
    for n in [2, 3, 4] {
        assert!(
            r.report
                .contains(&format!("line {n}: skipped invalid record")),
            "{}",
            r.report
        );
    }
    assert!(
        r.report.contains("`Foo`") && r.report.contains("`foo`"),
        "{}",
        r.report
    );
}

#[test]
fn invalid_utf8_is_a_malformed_line_not_an_io_error() {
    let t = table();
    let input: &[u8] = b"{\"EventTypeCode\":\"\xff\"}\n";
    let err = translate(
        Direction::ToV4,
        &t,
        &Options::default(),
        input,
        io::sink(),
        io::sink(),
        None,
    )
    .unwrap_err();
    assert!(
        matches!(err, EventsError::Invalid { line: 1, .. }),
        "{err:?}"
    );
}

#[test]
fn other_fields_change_case_at_every_depth() {
    let rec = json!({"EventTypeCode": "CHGEMAIL", "CorrelationId": "k",
        "NewEmail": "n@x", "Profile": {"FirstName": "Ann", "Addresses": [{"StreetName": "Main"}]},
        "Flags": [1, "Two"]});
    let r = run(Direction::ToV4, Options::default(), &jsonl(&[rec]));
    assert_eq!(
        r.out[0],
        json!({"eventTypeCode": "AUTHSYSTEM_USER_CHANGEEMAIL", "eventId": 4610, "side": "authsystem",
            "correlationId": "k", "newEmail": "n@x",
            "profile": {"firstName": "Ann", "addresses": [{"streetName": "Main"}]},
            "flags": [1, "Two"]})
    );
    // Nested collision on the way back is an invalid line too.
    let bad =
        json!({"eventTypeCode": "SUBSCRIBE_USER_STARTFORGOTPASSWORD", "meta": {"a": 1, "A": 2}});
    let r = run(Direction::ToLegacy, Options::default(), &jsonl(&[bad]));
    assert!(matches!(
        r.result,
        Err(EventsError::Invalid { line: 1, .. })
    ));
}

// ---- property: any arrival order joins every group exactly once ----

proptest! {
    #[test]
    fn any_interleaving_joins_every_group(keys in prop::collection::vec(any::<u32>(), 64)) {
        let t = table();
        let codes: Vec<String> = t.iter().map(|e| e.code.clone()).collect();
        let groups = 2 * codes.len();
        let mut records = Vec::new();
        for g in 0..groups {
            let code = &codes[g % codes.len()];
            records.extend(legacy_to_v4(&t, &legacy(&t, code, &format!("g{g:02}"))).expect("translates"));
        }
        prop_assert!(records.len() <= keys.len());
        // Shuffle: sort the records by a random key each.
        let mut order: Vec<usize> = (0..records.len()).collect();
        order.sort_by_key(|&i| keys[i]);
        let input: Vec<Value> = order.iter().map(|&i| records[i].clone()).collect();
        let r = run(Direction::ToLegacy, Options::default(), &jsonl(&input));
        let s = r.result.expect("runs");
        prop_assert_eq!((s.written, s.unmatched_groups), (groups as u64, 0));
        let mut cids: Vec<String> =
            r.out.iter().filter_map(|v| v["CorrelationId"].as_str().map(String::from)).collect();
        cids.sort();
        prop_assert_eq!(cids, (0..groups).map(|g| format!("g{g:02}")).collect::<Vec<_>>());
    }
}

// ---- a large stream, generated lazily ----

/// v4 records of `groups` groups, produced on demand: groups are taken in batches of `window`;
/// within a batch, every group's later v4 events come first and the groups are interleaved.
/// At most `window` groups are ever open.
struct Generator {
    events: Vec<(String, Vec<String>)>, // legacy code → its v4 codes, for cycling
    window: u64,
    groups: u64,
    next_batch: u64,
    pending: Vec<u8>,
    pos: usize,
    records: u64,
}

impl Generator {
    fn new(t: &EventTable, groups: u64, window: u64) -> Self {
        let events = t
            .iter()
            .map(|e| {
                (
                    e.code.clone(),
                    e.v4.iter().map(|v| v.code.clone()).collect(),
                )
            })
            .collect();
        Self {
            events,
            window,
            groups,
            next_batch: 0,
            pending: Vec::new(),
            pos: 0,
            records: 0,
        }
    }

    fn fill(&mut self) {
        self.pending.clear();
        self.pos = 0;
        let start = self.next_batch * self.window;
        let end = (start + self.window).min(self.groups);
        self.next_batch += 1;
        let max_members = self.events.iter().map(|e| e.1.len()).max().unwrap_or(0);
        for member in (0..max_members).rev() {
            for g in start..end {
                let (_, v4) = &self.events[(g % self.events.len() as u64) as usize];
                if let Some(code) = v4.get(member) {
                    let _ = writeln!(
                        self.pending,
                        r#"{{"eventTypeCode":"{code}","correlationId":"g{g}","customerRegistrationId":"{g}","timestamp":"2024-05-01T10:00:00Z"}}"#
                    );
                    self.records += 1;
                }
            }
        }
    }
}

impl Read for Generator {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.pending.len() {
            if self.next_batch * self.window >= self.groups {
                return Ok(0);
            }
            self.fill();
        }
        let n = buf.len().min(self.pending.len() - self.pos);
        buf[..n].copy_from_slice(&self.pending[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Counts lines written and keeps nothing.
#[derive(Default)]
struct CountingSink {
    lines: u64,
}

impl Write for CountingSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.lines += buf.iter().filter(|b| **b == b'\n').count() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn large_interleaved_stream_keeps_few_groups_open() {
    const GROUPS: u64 = 300_000; // 525k v4 records with the shipped table; fast in debug builds
    const WINDOW: u64 = 64;
    let t = table();

    // Through the stream: every group out, none unmatched.
    let mut out = CountingSink::default();
    let input = BufReader::new(Generator::new(&t, GROUPS, WINDOW));
    let s = translate(
        Direction::ToLegacy,
        &t,
        &Options::default(),
        input,
        &mut out,
        io::sink(),
        None,
    )
    .expect("runs");
    assert_eq!(
        (s.written, out.lines, s.unmatched_groups, s.invalid),
        (GROUPS, GROUPS, 0, 0)
    );
    assert!(s.lines > 500_000, "{} records", s.lines);

    // The joiner directly, to read its peak.
    let mut gen = BufReader::new(Generator::new(&t, GROUPS / 10, WINDOW));
    let mut joiner = Joiner::new(&t);
    let mut line = String::new();
    let mut n = 0;
    let mut complete = 0;
    let mut per_code: HashMap<String, u64> = HashMap::new();
    while io::BufRead::read_line(&mut gen, &mut line).expect("reads") > 0 {
        n += 1;
        let v: Value = serde_json::from_str(&line).expect("generated JSON");
        if let Joined::Complete(r) = joiner.push(v, n).expect("known") {
            complete += 1;
            *per_code.entry(r["EventTypeCode"].to_string()).or_default() += 1;
        }
        line.clear();
    }
    assert_eq!(complete, GROUPS / 10);
    assert_eq!(per_code.len(), t.iter().count());
    assert!(
        joiner.peak_open() <= WINDOW as usize,
        "peak {}",
        joiner.peak_open()
    );
    assert!(joiner.peak_open() > 1, "the generator should interleave");
    assert!(joiner.finish().is_empty());
}
