//! Noise learned from the legacy backend itself, as Diffy's primary and secondary do: for a
//! sampled share of shadowed reads (`shadow.noise_sample_percent`), the read is asked of the
//! legacy backend a second time, and every path where its two answers differ (a timestamp of
//! the moment, a counter) is noise for that row: shown apart, kept out of the verdict, never
//! blamed on v4. Declared noise (`shadow_noise` in the mapping) needs someone to know the
//! field first; this finds it.
//!
//! Only reads: asking twice changes nothing. The second call runs on the shadow lane, after
//! the client's answer, with a client of its own (a connection opened at idle priority must
//! never carry a client's request), and it is marked `X-Shadow-Of` like every copy.

use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::{compare, LegacyAnswer, Original, Shadow};
use crate::legacy::Family;
use crate::routes::SHADOW_OF;
use crate::runtime::Runtime;

impl Shadow {
    /// Whether this read is asked twice: every `100 / percent`-th read, counted, so the share
    /// is exact and the first reads of a gateway are not the sampled ones.
    fn noise_sampled(&self, rt: &Runtime, call: &Original) -> bool {
        let percent = u64::from(rt.config.shadow.noise_sample_percent);
        if percent == 0
            || call.ctx.family != Family::UserApi
            || call.parts.method != http::Method::GET
        {
            return false;
        }
        let n = self.noise_reads.fetch_add(1, Ordering::Relaxed);
        n % 100 >= 100 - percent.min(100)
    }

    /// The paths where a second legacy answer to the call differs from the first; empty when
    /// the read is not sampled or the second call fails (nothing learned).
    pub(super) async fn learn_noise(
        &self,
        rt: &Runtime,
        call: &Original,
        first: &LegacyAnswer,
    ) -> Vec<String> {
        if !self.noise_sampled(rt, call) {
            return Vec::new();
        }
        let Some((status, body)) = self.ask_again(rt, call).await else {
            return Vec::new();
        };
        compare::answers(rt, call.ctx.family, first, status, &body)
            .into_iter()
            .map(|d| d.path)
            .collect()
    }

    async fn ask_again(&self, rt: &Runtime, call: &Original) -> Option<(u16, Bytes)> {
        let base = rt.config.user_api_url.as_ref()?;
        let client = self.noise_client.get_or_init(|| {
            reqwest::Client::builder()
                .no_proxy()
                .timeout(rt.config.limits.upstream_timeout)
                .build()
                .unwrap_or_default()
        });
        let path = call.parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let url = format!("{}{path}", base.as_str().trim_end_matches('/'));
        // Not passed on: what a second sending leaves out, and the client's own `Host`.
        let mut headers = call.parts.headers.clone();
        let dropped: Vec<http::HeaderName> = headers
            .keys()
            .filter(|n| *n == http::header::HOST || crate::passthrough::not_resent(n))
            .cloned()
            .collect();
        for name in dropped {
            headers.remove(name);
        }
        if let Ok(v) = http::HeaderValue::from_str(call.ctx.request_id()) {
            headers.insert(SHADOW_OF, v);
        }
        let resp = client.get(url).headers(headers).send().await.ok()?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await.ok()?;
        Some((status, body))
    }
}
