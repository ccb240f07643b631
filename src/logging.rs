//! Structured logs (tracing) on stderr, text or JSON; stdout stays free for command output
//! such as `events`. The filter comes from `RUST_LOG` (default `info`).
//!
//! Lines are formatted on the request's thread but written by a thread of their own
//! (tracing-appender's non-blocking writer, issue #15): a `write` system call per access-log
//! line on a worker cost about 13% of throughput. The writer is not lossy: when it falls
//! 16k lines behind, requests wait rather than audit lines being dropped.

use tracing_appender::non_blocking::{NonBlocking, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Keeps the log writer thread running; dropping it flushes what is queued.
#[must_use = "dropping the guard stops the log writer"]
pub struct LogGuard {
    _writer: Option<WorkerGuard>,
}

pub fn init(format: LogFormat) -> LogGuard {
    init_with(format, None)
}

fn writer() -> (NonBlocking, WorkerGuard) {
    NonBlockingBuilder::default()
        .lossy(false)
        // 128k lines by default: a channel that size is 4 MiB resident from the start.
        .buffered_lines_limit(16 * 1024)
        .thread_name("gateway-log")
        .finish(std::io::stderr())
}

/// [`init`], with the OpenTelemetry layer when traces are exported. Without it the
/// subscriber is exactly the plain one: telemetry off changes nothing.
pub fn init_with(format: LogFormat, otel: Option<crate::telemetry::OtelLayer>) -> LogGuard {
    if let Some(otel) = otel {
        return init_layered(format, otel);
    }
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let (writer, guard) = writer();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(ansi);
    // A second init (tests) is not an error worth failing for.
    let installed = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
    LogGuard {
        _writer: installed.is_ok().then_some(guard),
    }
}

/// Logs filtered by `RUST_LOG` as usual; the OTel layer with its own filter, so `RUST_LOG=warn`
/// does not silence the spans it exports.
fn init_layered(format: LogFormat, otel: crate::telemetry::OtelLayer) -> LogGuard {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let (writer, guard) = writer();
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(ansi);
    let fmt = match format {
        LogFormat::Json => fmt
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_filter(filter)
            .boxed(),
        LogFormat::Text => fmt.with_filter(filter).boxed(),
    };
    let installed = tracing_subscriber::registry()
        .with(otel)
        .with(fmt)
        .try_init();
    LogGuard {
        _writer: installed.is_ok().then_some(guard),
    }
}
