//! The secrets of the configuration itself (tenant service tokens, the HMAC secret, the admin
//! token, OTLP header values): known from the moment a configuration is loaded and masked in
//! every text the gateway writes, whether or not the call at hand used them. A v4 that echoes
//! the service token it was sent, or a library that logs a header at trace level, must not
//! carry it to a client, a log or a diff file.
//!
//! Process-wide, because logs are: the log writer has no runtime at hand. Secrets are only
//! added (a rotated token stays masked after a reload), up to a bound.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

use arc_swap::ArcSwap;

/// Secrets kept (each with its forms); past this the oldest are forgotten.
const MAX_SECRETS: usize = 256;

/// One snapshot of what is known: the forms to mask, and one search for all of them.
pub struct Known {
    pub forms: Vec<String>,
    pub any: Option<regex::Regex>,
}

static SECRETS: Mutex<Vec<String>> = Mutex::new(Vec::new());
/// Whether anything is known: a configuration without secrets (the sandbox, a dev setup)
/// pays one relaxed load per log line.
static ANY: AtomicBool = AtomicBool::new(false);
static KNOWN: LazyLock<ArcSwap<Known>> = LazyLock::new(|| {
    ArcSwap::from_pointee(Known {
        forms: Vec::new(),
        any: None,
    })
});

/// Masks `secret` everywhere from now on.
pub fn remember(secret: &str) {
    if secret.trim().is_empty() {
        return;
    }
    let mut secrets = SECRETS.lock().unwrap_or_else(|e| e.into_inner());
    if secrets.iter().any(|s| s == secret) {
        return;
    }
    if secrets.len() >= MAX_SECRETS {
        secrets.remove(0);
    }
    secrets.push(secret.to_string());
    let mut forms: Vec<String> = secrets.iter().flat_map(|s| super::forms::of(s)).collect();
    forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
    forms.dedup();
    let pattern = forms
        .iter()
        .map(|f| regex::escape(f))
        .collect::<Vec<_>>()
        .join("|");
    // Literal alternatives: cannot fail to compile short of the size limit; without the
    // search, every line is checked form by form instead.
    let any = regex::RegexBuilder::new(&pattern)
        .size_limit(64 << 20)
        .build()
        .ok();
    KNOWN.store(Arc::new(Known { forms, any }));
    ANY.store(true, Ordering::Release);
}

/// Whether any secret is known yet.
#[inline]
pub fn any() -> bool {
    ANY.load(Ordering::Acquire)
}

/// What is known now. A guard, not a counted reference: every log line of every worker
/// reads this, and a shared reference count would be one contended cache line.
pub fn snapshot() -> arc_swap::Guard<Arc<Known>> {
    KNOWN.load()
}

/// Whether `text` may hold a known secret (cheap: one search over the text).
pub fn may_hold(known: &Known, text: &str) -> bool {
    match &known.any {
        Some(re) => re.is_match(text),
        None => known.forms.iter().any(|f| text.contains(f.as_str())),
    }
}
