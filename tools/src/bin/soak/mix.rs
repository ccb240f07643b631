//! The soak's request mix: every legacy route, weighted, with about 10 % bad input, generated
//! from a seeded generator so that every run sends the same sequence (a leak that shows in one
//! run shows in the next).

use serde_json::{json, Value};

/// One request of the mix.
pub struct Planned {
    pub route: &'static str,
    pub method: reqwest::Method,
    pub path: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Option<String>,
}

/// A small deterministic generator (xorshift), one per worker: no dependency, same mix
/// every run.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

const REGISTRY: &str = "/$dwo3rd-userregistry-api/profileserviceregistration";
const PASSWORDS: [&str; 3] = ["Abcdefg1", "Bcdefgh2", "Cdefghi3"];

fn user_headers() -> Vec<(&'static str, String)> {
    vec![
        ("Authorization", "Bearer soak-token".into()),
        ("X-SourceSystem", "soak".into()),
        ("X-ClientCode", "SOAK".into()),
        ("X-PaperCode", "SOAK".into()),
        ("X-ClientGroupCode", "SOAK".into()),
        ("Content-Type", "application/json".into()),
    ]
}

pub fn plan(rng: &mut Rng, n: u64, token: &str) -> Planned {
    let pw = PASSWORDS[(n % 3) as usize];
    let user = |route, id: &str, body: Value| Planned {
        route,
        method: reqwest::Method::PUT,
        path: format!("/User/{id}"),
        headers: user_headers(),
        body: Some(body.to_string()),
    };
    let action = |route, query: String, auth: bool, body: Value| Planned {
        route,
        method: reqwest::Method::POST,
        path: format!("{REGISTRY}?{query}"),
        headers: if auth {
            vec![("Authorization", token.to_string())]
        } else {
            Vec::new()
        },
        body: Some(body.to_string()),
    };
    match rng.next() % 100 {
        0..18 => user("user-api.password", "1001", json!({"Password": pw})),
        18..32 => user(
            "user-api.email",
            "1002",
            json!({"Email": format!("bob-{}@example.test", n % 1000)}),
        ),
        32..46 => user(
            "user-api.profile",
            "auth0%7Cabc123",
            json!({"FirstName": "Carol", "Metadata": {"SoakRound": n % 100, "Tags": ["a", "b"]}}),
        ),
        46..55 => user(
            "user-api.mixed",
            "1001",
            json!({"FirstName": "Alice", "Email": format!("alice-{}@example.test", n % 1000), "Password": pw}),
        ),
        55..70 => action(
            "registry.updatechangepassword",
            "action=updatechangepassword".into(),
            true,
            json!({"oldpassword": "whatever", "password": pw}),
        ),
        70..82 => action(
            "registry.registernewpassword",
            "action=registernewpassword".into(),
            false,
            json!({"email": "carol@example.test"}),
        ),
        82..86 => action(
            "registry.activatenewpassword",
            format!("action=activatenewpassword&id=soak-{}", n % 1000),
            false,
            json!({"password": pw}),
        ),
        86..90 => action(
            "registry.activate",
            format!("action=activate&cid=soak-{}", n % 1000),
            false,
            json!({"password": pw}),
        ),
        // About 10 % bad input, every kind answered without reaching v4.
        r => {
            let mut p = match r % 7 {
                0 => user("bad.malformed", "1001", Value::Null),
                1 => user("bad.unknown-field", "1001", json!({"Nickname": "x"})),
                2 => user("bad.id", "..%2F1002", json!({"Password": pw})),
                3 => user("bad.oversized", "1001", Value::Null),
                4 => action(
                    "bad.no-token",
                    "action=updatechangepassword".into(),
                    false,
                    json!({"oldpassword": "a", "password": pw}),
                ),
                5 => action(
                    "bad.unknown-action",
                    "action=nosuchaction".into(),
                    true,
                    json!({}),
                ),
                _ => Planned {
                    headers: vec![("Authorization", "Bearer soak-token".into())],
                    ..user("bad.missing-headers", "1001", json!({"Password": pw}))
                },
            };
            match p.route {
                "bad.malformed" => p.body = Some(r#"{"Password": "Abcdefg1""#.into()),
                "bad.oversized" => {
                    p.body = Some(format!(r#"{{"Password": "{}"}}"#, "x".repeat(70 * 1024)));
                    // The gateway closes the connection after an early 413 without saying
                    // so (see tests/fuzz_http.rs, ignored BUG test): asking for the close
                    // keeps the pooled connection of the next request out of it.
                    p.headers.push(("Connection", "close".into()));
                }
                _ => {}
            }
            p
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn every_route_is_sent_and_a_tenth_is_bad_input() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut seen: BTreeMap<&str, u64> = BTreeMap::new();
        for n in 0..10_000 {
            *seen.entry(plan(&mut rng, n, "Bearer t").route).or_default() += 1;
        }
        let bad: u64 = seen
            .iter()
            .filter(|(r, _)| r.starts_with("bad."))
            .map(|(_, n)| n)
            .sum();
        assert!((800..1200).contains(&bad), "{bad} bad of 10000");
        for route in [
            "user-api.password",
            "user-api.email",
            "user-api.profile",
            "user-api.mixed",
            "registry.updatechangepassword",
            "registry.registernewpassword",
            "registry.activatenewpassword",
            "registry.activate",
            "bad.malformed",
            "bad.oversized",
            "bad.missing-headers",
        ] {
            assert!(seen.contains_key(route), "{route} never sent: {seen:?}");
        }
    }

    #[test]
    fn the_oversized_body_asks_for_a_close() {
        let mut rng = Rng(1);
        let p = (0..)
            .map(|n| plan(&mut rng, n, ""))
            .find(|p| p.route == "bad.oversized")
            .unwrap();
        assert!(p.body.unwrap().len() > 64 * 1024);
        assert!(p.headers.contains(&("Connection", "close".to_string())));
    }
}
