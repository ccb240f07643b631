//! Event record translation throughput, in records per second: `translate` both ways over a
//! generated batch (parse, translate, join, serialize), and the per-record functions alone.

use std::io;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use legacy_gateway::events::{legacy_to_v4, translate, Direction, Joiner, Options};
use legacy_gateway::mapping::{EventTable, EMBEDDED_EVENTS};
use legacy_gateway::source::Source;
use serde_json::{json, Value};

/// Legacy records cycling through the table, each with the usual fields and a small nested one.
fn legacy_batch(table: &EventTable, n: usize) -> Vec<Value> {
    let events: Vec<_> = table.iter().collect();
    (0..n)
        .map(|i| {
            let ev = events[i % events.len()];
            json!({
                "EventTypeCode": ev.code, "EventId": ev.id, "CustomerRegistrationId": i.to_string(),
                "CorrelationId": format!("c-{i}"), "Timestamp": "2024-05-01T10:00:00Z",
                "Metadata": {"SourceSystem": "web", "ClientCode": "nav"}
            })
        })
        .collect()
}

/// v4 records of the batch, interleaved in windows of 32 groups with later events first, so
/// the joiner has groups open as in a real merged stream.
fn v4_batch(table: &EventTable, legacy: &[Value]) -> Vec<Value> {
    let mut out = Vec::new();
    for window in legacy.chunks(32) {
        let groups: Vec<Vec<Value>> = window
            .iter()
            .map(|r| legacy_to_v4(table, r).expect("generated records translate"))
            .collect();
        let max = groups.iter().map(Vec::len).max().unwrap_or(0);
        for member in (0..max).rev() {
            out.extend(groups.iter().filter_map(|g| g.get(member).cloned()));
        }
    }
    out
}

fn jsonl(records: &[Value]) -> Vec<u8> {
    records
        .iter()
        .flat_map(|r| format!("{r}\n").into_bytes())
        .collect()
}

fn bench(c: &mut Criterion) {
    let table =
        EventTable::load(&Source::new("events.toml", EMBEDDED_EVENTS)).expect("table loads");
    let legacy = legacy_batch(&table, 10_000);
    let v4 = v4_batch(&table, &legacy);
    let (legacy_lines, v4_lines) = (jsonl(&legacy), jsonl(&v4));
    let opts = Options::default();

    let mut g = c.benchmark_group("events/stream");
    g.throughput(Throughput::Elements(legacy.len() as u64));
    g.bench_function("to-v4", |b| {
        b.iter(|| {
            translate(
                Direction::ToV4,
                &table,
                &opts,
                &legacy_lines[..],
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
                &v4_lines[..],
                io::sink(),
                io::sink(),
                None,
            )
            .expect("runs")
        })
    });
    g.finish();

    let mut g = c.benchmark_group("events/record");
    g.throughput(Throughput::Elements(legacy.len() as u64));
    g.bench_function("legacy_to_v4", |b| {
        b.iter(|| {
            legacy
                .iter()
                .map(|r| legacy_to_v4(&table, r).map_or(0, |v| v.len()))
                .sum::<usize>()
        })
    });
    g.throughput(Throughput::Elements(v4.len() as u64));
    g.bench_function("joiner", |b| {
        b.iter_batched(
            || v4.clone(),
            |records| {
                let mut joiner = Joiner::new(&table);
                for (i, r) in records.into_iter().enumerate() {
                    let _ = joiner.push(r, i as u64 + 1);
                }
                joiner.peak_open()
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
