//! The calls sent through the gateway: classified first (legacy API call or not, read or
//! write), checked (a redacted token needs a replacement) before the first is sent, then
//! sent `--concurrency` at a time, started no faster than `--rate`, each exactly once (a
//! failed call is reported, never retried: a write must not reach v4 twice). Results come
//! back in file order whatever finishes first, so every output is the same run after run.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;

use super::call::{Body, Call};
use super::inputs::Inputs;
use super::markers;
use super::progress::Bar;
use super::report::{Outcome, Ran, Summary};
use super::target::{self, Target};
use super::verdict::{self, Judged, Kind, Secrets};
use super::{ReplayArgs, ReplayError};
use crate::context::RequestContext;
use crate::legacy::Family;
use crate::runtime::Runtime;

/// A call is no answer after this long: a hang guard (the gateway's own upstream timeout
/// answers long before).
const CALL_GUARD: Duration = Duration::from_secs(300);

/// Which legacy API call a captured request is, as the configuration's mappings say.
#[derive(Debug, Clone)]
struct Class {
    family: Family,
    part: String,
    writes: bool,
}

/// As dispatch would see the call (see `RequestContext`): a write only where it would reach
/// v4 as one; an unknown action or another method is refused before v4, so safe to send.
fn classify(rt: &Runtime, call: &Call) -> Option<Class> {
    let (parts, ()) = http::Request::builder()
        .method(call.method.clone())
        .uri(call.target.as_str())
        .body(())
        .ok()?
        .into_parts();
    let ctx = RequestContext::of(rt, &parts);
    let fallback = match ctx.family {
        Family::Registry => "unknown",
        // Not the User API route: not a call this replay knows.
        Family::UserApi if ctx.raw_id.is_none() => return None,
        Family::UserApi => "other",
    };
    Some(Class {
        family: ctx.family,
        writes: ctx.part.is_some() && ctx.writes,
        part: ctx.part.map_or_else(|| fallback.into(), |p| p.into_owned()),
    })
}

/// What the first walk over the input found.
struct Plan {
    to_send: u64,
    /// Calls walked, skipped ones included: the second walk must find as many.
    walked: u64,
    skipped: super::call::Skipped,
    redacted_token: bool,
}

/// The first walk: every call read and classified, nothing sent, so bad input, nothing to
/// replay or a missing token stop the run before the first call.
fn plan(rt: &Runtime, target: &Target, inputs: &Inputs) -> Result<Plan, ReplayError> {
    let mut p = Plan {
        to_send: 0,
        walked: 0,
        skipped: inputs.skipped.clone(),
        redacted_token: false,
    };
    for call in inputs.calls() {
        let call = call?;
        let Some(class) = classify(rt, &call) else {
            p.skipped.not_legacy += 1;
            continue;
        };
        p.walked += 1;
        if class.writes && !target.writes {
            p.skipped.writes += 1;
            continue;
        }
        p.to_send += 1;
        p.redacted_token |= call
            .headers
            .get("authorization")
            .is_some_and(|v| markers::is_marker(v));
    }
    Ok(p)
}

/// Replays the input; outcomes in file order.
pub async fn run(target: &Target, args: &ReplayArgs, inputs: &Inputs) -> Result<Ran, ReplayError> {
    let rt = target.runtime();
    let plan = plan(&rt, target, inputs)?;
    if plan.to_send == 0 {
        return Err(ReplayError::Nothing {
            files: args
                .files
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            skipped: plan.skipped.describe(),
        });
    }
    if plan.redacted_token {
        target::needs_token(target)?;
    }
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(CALL_GUARD)
        .build()
        .map_err(|e| ReplayError::Start(format!("cannot build the HTTP client: {e}")))?;
    let base = target.url();
    let bar = Bar::new(args.progress, plan.to_send);
    let started = Instant::now();
    let interval = args.rate.map(|r| Duration::from_secs_f64(1.0 / r));
    let mut sent_index = 0u32;
    // The file was read once already: a call that cannot be read now (the file changed) ends
    // the walk, and the count below tells.
    let calls = inputs.calls().map_while(Result::ok).filter_map(|call| {
        let class = classify(&rt, &call)?;
        let send = !class.writes || target.writes;
        Some((call, class, send))
    });
    let jobs = calls.map(|(call, class, send)| {
        let slot = send.then(|| {
            sent_index += 1;
            interval.map(|i| i * (sent_index - 1))
        });
        let (rt, client, base, auth) = (
            rt.clone(),
            client.clone(),
            base.clone(),
            target.authorization.clone(),
        );
        async move {
            let judged = match slot {
                None => Judged {
                    kind: Kind::Skipped,
                    differences: Vec::new(),
                    noise: Vec::new(),
                },
                Some(wait) => {
                    if let Some(wait) = wait {
                        tokio::time::sleep_until((started + wait).into()).await;
                    }
                    replay_one(&rt, &client, &base, auth.as_deref(), &call, &class).await
                }
            };
            Outcome {
                at: call.at.clone(),
                method: call.method.to_string(),
                target: call.target.clone(),
                route: class.family.name(),
                part: class.part.clone(),
                judged,
            }
        }
    });
    let mut outcomes = Vec::with_capacity(plan.walked as usize);
    let mut stream = futures_util::stream::iter(jobs).buffered(args.concurrency as usize);
    while let Some(o) = stream.next().await {
        if o.judged.kind != Kind::Skipped {
            bar.advance(o.judged.kind);
        }
        outcomes.push(o);
    }
    bar.finish();
    let elapsed = started.elapsed();
    if outcomes.len() as u64 != plan.walked {
        return Err(ReplayError::Changed);
    }
    let summary = Summary::of(&outcomes, plan.skipped, elapsed);
    Ok(Ran {
        target: target.name.clone(),
        outcomes,
        summary,
    })
}

/// Sends one call and judges its answer.
async fn replay_one(
    rt: &Runtime,
    client: &reqwest::Client,
    base: &str,
    token: Option<&str>,
    call: &Call,
    class: &Class,
) -> Judged {
    let mut generated = Vec::new();
    let target = match call.target.split_once('?') {
        Some((path, q)) => format!("{path}?{}", markers::fill_query(q, &mut generated)),
        None => call.target.clone(),
    };
    let body = match &call.body {
        Body::Json(v) => {
            let mut v = v.clone();
            markers::fill_json(&mut v, &mut generated);
            serde_json::to_vec(&v).unwrap_or_default()
        }
        other => other.bytes(),
    };
    let mut headers = http::HeaderMap::new();
    for (name, value) in &call.headers {
        if http::HeaderName::from_bytes(name.as_bytes())
            .is_ok_and(|n| crate::passthrough::not_resent(&n))
        {
            continue;
        }
        let value = match (name.as_str(), markers::is_marker(value)) {
            ("authorization", true) => match token {
                Some(t) => t.to_string(),
                None => continue,
            },
            // Another redacted header has no value to stand for it: left out.
            (_, true) => continue,
            _ => value.clone(),
        };
        if let (Ok(n), Ok(v)) = (
            http::HeaderName::from_bytes(name.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            headers.append(n, v);
        }
    }
    if class.family == Family::Registry && !headers.contains_key(http::header::HOST) {
        if let Some(v) = call
            .tenant
            .as_deref()
            .and_then(|t| http::HeaderValue::from_str(t).ok())
        {
            headers.insert(http::header::HOST, v);
        }
    }
    let secrets = secrets_of(rt, &call.method, &target, &headers, &body, generated);
    let sent = client
        .request(call.method.clone(), format!("{base}{target}"))
        .headers(headers)
        .body(body)
        .send()
        .await;
    let answer = match sent {
        Ok(resp) => {
            let status = resp.status().as_u16();
            resp.bytes().await.map(|b| (status, b))
        }
        Err(e) => Err(e),
    };
    match answer {
        Ok(replayed) => verdict::judge(
            rt,
            class.family,
            &class.part,
            (call.legacy_status, Bytes::from(call.legacy_body.bytes())),
            replayed,
            &secrets,
        ),
        Err(e) => Judged {
            kind: Kind::Failed,
            differences: vec![verdict::Difference {
                path: "status".into(),
                captured: call.legacy_status.into(),
                replayed: format!("no answer: {}", e.without_url()).into(),
                v4_pointer: None,
                mapping: None,
            }],
            noise: Vec::new(),
        },
    }
}

/// The secret keys and values of the call as sent, for masking what the reports show.
fn secrets_of(
    rt: &Runtime,
    method: &http::Method,
    target: &str,
    headers: &http::HeaderMap,
    body: &[u8],
    generated: Vec<String>,
) -> Secrets {
    let mut req = http::Request::builder()
        .method(method.clone())
        .uri(target)
        .body(())
        .unwrap_or_default();
    *req.headers_mut() = headers.clone();
    let (parts, ()) = req.into_parts();
    let (keys, mut values) = crate::shadow::secrets::of_call(rt, &parts, body);
    values.extend(generated);
    Secrets { keys, values }
}
