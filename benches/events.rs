//! Event record translation throughput, in records per second: `translate` both ways over a
//! generated batch (parse, translate, join, write), for small records (~150 bytes, the usual
//! log line) and large ones (~2 KB, nested objects and arrays), and the per-record byte paths
//! alone (`ToV4::write`, `Joiner::push_line`). `bench/events.sh` measures the binary end to
//! end (stdin to stdout, peak RSS) on 1M and 10M records.

use std::io;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use legacy_gateway::events::{translate, Direction, Joiner, Options, ToV4};
use legacy_gateway::mapping::{EventTable, EMBEDDED_EVENTS};
use legacy_gateway::source::Source;

const RECORDS: usize = 10_000;

/// Legacy records cycling through the table. `large`: a nested profile with an address list
/// and a few dozen flags, about 2 KB a line.
fn legacy_lines(table: &EventTable, n: usize, large: bool) -> Vec<String> {
    let events: Vec<_> = table.iter().collect();
    let extra = if large {
        let flags: Vec<String> = (0..40)
            .map(|k| format!("\"Flag{k:02}Enabled\":{}", k % 3 == 0))
            .collect();
        format!(
            r#","Profile":{{"FirstName":"Ann","LastName":"Example","Addresses":[{{"StreetName":"Main Street","HouseNumber":"12b","PostalCode":"1234 AB","City":"Springfield","CountryCode":"NL"}},{{"StreetName":"Side Road","HouseNumber":"7","PostalCode":"9876 ZX","City":"Shelbyville","CountryCode":"BE"}}],"Preferences":{{{}}}}},"UserAgent":"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36","Note":"caf\u00e9 \"quoted\" text"}}"#,
            flags.join(",")
        )
    } else {
        r#","SourceSystem":"web"}"#.to_string()
    };
    (0..n)
        .map(|i| {
            let ev = events[i % events.len()];
            format!(
                r#"{{"EventTypeCode":"{}","EventId":{},"CustomerRegistrationId":"{}","CorrelationId":"c-{i:08}","Timestamp":"2024-05-01T10:00:00Z"{extra}"#,
                ev.code,
                ev.id,
                1_000_000 + i
            )
        })
        .collect()
}

/// The v4 lines of `legacy`, interleaved in windows of 32 groups with later events first, so
/// the joiner has groups open as in a real merged stream.
fn v4_lines(table: &EventTable, legacy: &[String]) -> Vec<String> {
    let mut to_v4 = ToV4::new(table);
    let mut out = Vec::new();
    for window in legacy.chunks(32) {
        let groups: Vec<Vec<String>> = window
            .iter()
            .map(|r| {
                let mut buf = Vec::new();
                to_v4
                    .write(r, &mut buf)
                    .expect("generated records translate");
                String::from_utf8(buf)
                    .expect("UTF-8")
                    .lines()
                    .map(str::to_string)
                    .collect()
            })
            .collect();
        let max = groups.iter().map(Vec::len).max().unwrap_or(0);
        for member in (0..max).rev() {
            out.extend(groups.iter().filter_map(|g| g.get(member).cloned()));
        }
    }
    out
}

fn jsonl(lines: &[String]) -> Vec<u8> {
    lines
        .iter()
        .flat_map(|l| format!("{l}\n").into_bytes())
        .collect()
}

fn bench(c: &mut Criterion) {
    let table =
        EventTable::load(&Source::new("events.toml", EMBEDDED_EVENTS)).expect("table loads");
    let opts = Options::default();
    for (size, large) in [("small", false), ("large", true)] {
        let legacy = legacy_lines(&table, RECORDS, large);
        let v4 = v4_lines(&table, &legacy);
        let (legacy_bytes, v4_bytes) = (jsonl(&legacy), jsonl(&v4));

        let mut g = c.benchmark_group(format!("events/stream/{size}"));
        g.throughput(Throughput::Elements(legacy.len() as u64));
        g.bench_function("to-v4", |b| {
            b.iter(|| {
                translate(
                    Direction::ToV4,
                    &table,
                    &opts,
                    &legacy_bytes[..],
                    io::sink(),
                    io::sink(),
                    None,
                )
                .expect("runs")
            })
        });
        g.throughput(Throughput::Elements(v4.len() as u64));
        g.bench_function("to-legacy", |b| {
            b.iter(|| {
                translate(
                    Direction::ToLegacy,
                    &table,
                    &opts,
                    &v4_bytes[..],
                    io::sink(),
                    io::sink(),
                    None,
                )
                .expect("runs")
            })
        });
        g.finish();

        let mut g = c.benchmark_group(format!("events/record/{size}"));
        g.throughput(Throughput::Elements(legacy.len() as u64));
        g.bench_function("ToV4::write", |b| {
            let mut to_v4 = ToV4::new(&table);
            let mut out = Vec::with_capacity(1 << 20);
            b.iter(|| {
                let mut n = 0;
                for r in &legacy {
                    out.clear();
                    n += to_v4.write(r, &mut out).expect("translates");
                }
                n
            })
        });
        g.throughput(Throughput::Elements(v4.len() as u64));
        g.bench_function("Joiner::push_line", |b| {
            let mut out = Vec::with_capacity(1 << 20);
            b.iter(|| {
                let mut joiner = Joiner::new(&table);
                for (i, r) in v4.iter().enumerate() {
                    out.clear();
                    let _ = joiner.push_line(r, i as u64 + 1, &mut out);
                }
                joiner.peak_open()
            })
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
