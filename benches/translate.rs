//! Translation micro benchmarks, in bytes per second of legacy (or v4) JSON:
//!
//! - `case/to_camel`: recursive PascalCase → lowerCamelCase of a parsed body;
//! - `user_api/plan_tree`: the reference check-and-split of a `PUT /User/{id}` body into v4
//!   calls (`routes::user_api::plan_tree` with the embedded mappings), from a parsed object;
//! - `user_api/request`: what the request path does with the body bytes: `plan`, which
//!   checks and splits them into each v4 call's body bytes in one pass;
//! - `user_api/request_tree`: the same through a tree (the path before the one-pass
//!   reading): parse, `plan_tree`, serialise each v4 body;
//! - `envelope/parse`: reading a v4 answer envelope (`translate::envelope::parse`).
//!
//! Bodies: `small` (`{"Password":…}`, the common call), ~16 KiB and ~63 KiB (just under the
//! default 64 KiB body limit) profile updates whose `Metadata` nests objects and arrays.
//!
//! `cargo bench --bench translate -- --warm-up-time 1 --measurement-time 3`

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use legacy_gateway::mapping::Mappings;
use legacy_gateway::request::json_object;
use legacy_gateway::routes::user_api::{plan, plan_tree};
use legacy_gateway::translate::{case, envelope};
use serde_json::{json, Map, Value};

/// A `Metadata` object of about `target` bytes once serialised: preferences, newsletters
/// with channels, devices, addresses; PascalCase keys at every depth, as legacy clients send.
fn metadata(target: usize) -> Value {
    let mut newsletters = Vec::new();
    let mut devices = Vec::new();
    let mut addresses = Vec::new();
    let mut i = 0usize;
    loop {
        newsletters.push(json!({
            "NewsLetterId": i, "DisplayName": format!("Morning briefing {i}"), "Subscribed": i % 3 != 0,
            "Channels": ["Email", "Push"], "Schedule": {"DayOfWeek": i % 7, "LocalTime": "06:30", "TimeZone": "Europe/Oslo"},
        }));
        devices.push(json!({
            "DeviceId": format!("dev-{i:08}"), "Platform": if i % 2 == 0 { "iOS" } else { "Android" },
            "PushToken": format!("tok{i:032x}"), "LastSeenUtc": "2024-05-01T10:00:00Z", "AppVersion": "5.12.3",
        }));
        addresses.push(json!({
            "AddressType": "Delivery", "StreetName": "Karl Johans gate", "HouseNumber": i.to_string(),
            "PostalCode": "0154", "City": "Oslo", "CountryCode": "NO", "DeliveryNotes": null,
        }));
        i += 1;
        let m = json!({
            "PreferredLanguage": "nb-NO", "MarketingConsent": true,
            "Preferences": {"NewsLetters": newsletters, "Topics": ["Sport", "Culture", "Economy"]},
            "Devices": devices, "Addresses": addresses,
        });
        if serde_json::to_vec(&m).map_or(0, |v| v.len()) >= target {
            return m;
        }
    }
}

/// The three legacy bodies: (name, object).
fn bodies() -> Vec<(&'static str, Map<String, Value>)> {
    let profile = |target: usize| {
        let v = json!({
            "FirstName": "Kari", "LastName": "Nordmann", "Verified": true,
            "Metadata": metadata(target),
        });
        v.as_object().cloned().expect("object")
    };
    let small = json!({"Password": "Abcdefg1"})
        .as_object()
        .cloned()
        .expect("object");
    vec![
        ("small", small),
        ("16KiB", profile(16 * 1024 - 200)),
        ("63KiB", profile(63 * 1024 - 200)),
    ]
}

/// v4 answer envelopes of similar sizes: the seed's success answer, and answers whose
/// `data` is a user with nested metadata.
fn envelopes() -> Vec<(&'static str, Vec<u8>)> {
    let small = br#"{"message":{"code":"UsersOrchestrator_S200_11","text":"Update password completed.","type":"Success"},"meta":null}"#.to_vec();
    let with_data = |target: usize| {
        let camel = case::to_camel(metadata(target)).expect("converts");
        serde_json::to_vec(&json!({
            "message": {"code": "UsersOrchestrator_S200_00", "text": "Get user completed.", "type": "Success"},
            "meta": null,
            "data": {"customerRegistrationId": "1001", "firstName": "Kari", "metadata": camel},
        }))
        .expect("serialises")
    };
    vec![
        ("small", small),
        ("16KiB", with_data(16 * 1024 - 200)),
        ("63KiB", with_data(63 * 1024 - 200)),
    ]
}

fn bench(c: &mut Criterion) {
    let mappings = Mappings::embedded().expect("embedded mappings load");
    let ua = &mappings.user_api;
    let bodies = bodies();

    let mut g = c.benchmark_group("case/to_camel");
    for (name, body) in &bodies {
        let bytes = serde_json::to_vec(body).expect("serialises");
        g.throughput(Throughput::Bytes(bytes.len() as u64));
        let value = Value::Object(body.clone());
        g.bench_with_input(BenchmarkId::from_parameter(name), &value, |b, v| {
            b.iter_batched(
                || v.clone(),
                |v| case::to_camel(v).expect("converts"),
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();

    let mut g = c.benchmark_group("user_api/plan_tree");
    for (name, body) in &bodies {
        let bytes = serde_json::to_vec(body).expect("serialises");
        g.throughput(Throughput::Bytes(bytes.len() as u64));
        g.bench_with_input(BenchmarkId::from_parameter(name), body, |b, body| {
            b.iter_batched(
                || body.clone(),
                |body| plan_tree(ua, body).expect("plans"),
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();

    let mut g = c.benchmark_group("user_api/request");
    for (name, body) in &bodies {
        let bytes = serde_json::to_vec(body).expect("serialises");
        g.throughput(Throughput::Bytes(bytes.len() as u64));
        g.bench_with_input(BenchmarkId::from_parameter(name), &bytes, |b, bytes| {
            b.iter(|| {
                plan(ua, bytes)
                    .expect("plans")
                    .iter()
                    .map(|p| p.body.len())
                    .sum::<usize>()
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("user_api/request_tree");
    for (name, body) in &bodies {
        let bytes = serde_json::to_vec(body).expect("serialises");
        g.throughput(Throughput::Bytes(bytes.len() as u64));
        g.bench_with_input(BenchmarkId::from_parameter(name), &bytes, |b, bytes| {
            b.iter(|| {
                let obj = json_object(bytes).expect("an object");
                plan_tree(ua, obj)
                    .expect("plans")
                    .into_iter()
                    .map(|(_, body)| {
                        serde_json::to_vec(&Value::Object(body))
                            .expect("serialises")
                            .len()
                    })
                    .sum::<usize>()
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("envelope/parse");
    for (name, bytes) in &envelopes() {
        g.throughput(Throughput::Bytes(bytes.len() as u64));
        g.bench_with_input(BenchmarkId::from_parameter(name), bytes, |b, bytes| {
            b.iter(|| envelope::parse(200, bytes).expect("an envelope"))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
