//! Structured logs (tracing) on stderr, text or JSON; stdout stays free for command output
//! such as `events`. The filter comes from `RUST_LOG` (default `info`).
//!
//! Lines are formatted on the request's thread but written by a thread of their own
//! (tracing-appender's non-blocking writer): a `write` system call per access-log
//! line on a worker cost about 13% of throughput. The writer is not lossy: when it falls
//! 16k batches behind, requests wait rather than audit lines being dropped.
//!
//! A worker thread does not even hand each line over: it collects its lines in a buffer of its
//! own ([`batch_this_thread`]) and passes the buffer on when it holds 32 KiB, and every 100 ms
//! ([`flush_this_thread`], from a task on the worker's runtime). One hand-over per line, an
//! allocation and a cross-thread queue operation each, cost the access log another 30% of
//! throughput on the 16-core benchmark machine. Lines stay whole and in order per thread;
//! lines of different workers interleave by batch (each line has its timestamp).

use std::cell::RefCell;
use std::io::Write;
use std::sync::OnceLock;

use tracing_appender::non_blocking::{NonBlocking, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

mod json;

/// Keeps the log writer thread running; dropping it flushes what is queued.
#[must_use = "dropping the guard stops the log writer"]
pub struct LogGuard {
    _writer: Option<WorkerGuard>,
}

pub fn init(format: LogFormat) -> LogGuard {
    init_with(format, None)
}

fn writer() -> (Batching, WorkerGuard) {
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(false)
        // 128k lines by default: a channel that size is 4 MiB resident from the start.
        .buffered_lines_limit(16 * 1024)
        .thread_name("gateway-log")
        .finish(std::io::stderr());
    // The first subscriber's writer is the one that logs; a second init (tests) is ignored.
    let _ = WRITER.set(writer.clone());
    (Batching(writer), guard)
}

/// Where batches go: the writer of the installed subscriber.
static WRITER: OnceLock<NonBlocking> = OnceLock::new();

/// A worker's unsent lines.
const BATCH_BYTES: usize = 32 * 1024;

thread_local! {
    /// `Some` on threads that batch (the workers), `None` elsewhere.
    static BATCH: RefCell<Option<Vec<u8>>> = const { RefCell::new(None) };
}

/// From now on this thread's lines are collected and passed on in batches; the thread must
/// call [`flush_this_thread`] now and then (a worker does, every 100 ms) and before it ends.
pub fn batch_this_thread() {
    BATCH.with(|b| *b.borrow_mut() = Some(Vec::with_capacity(BATCH_BYTES)));
}

/// Passes this thread's collected lines on to the log writer.
pub fn flush_this_thread() {
    BATCH.with(|b| {
        if let Some(buf) = b.borrow_mut().as_mut() {
            hand_over(buf);
        }
    });
}

fn hand_over(buf: &mut Vec<u8>) {
    if buf.is_empty() {
        return;
    }
    if let Some(w) = WRITER.get() {
        let _ = w.clone().write_all(buf);
    }
    buf.clear();
}

/// The subscriber's writer: to this thread's batch when it has one, else straight on.
#[derive(Clone)]
pub struct Batching(NonBlocking);

impl<'a> MakeWriter<'a> for Batching {
    type Writer = LineWriter;
    fn make_writer(&'a self) -> LineWriter {
        LineWriter(self.0.clone())
    }
}

pub struct LineWriter(NonBlocking);

impl Write for LineWriter {
    /// Every line, from this crate or a library at any level, leaves with the configuration's
    /// secrets masked: this is the one place all of them pass.
    fn write(&mut self, raw: &[u8]) -> std::io::Result<usize> {
        use std::borrow::Cow;
        let masked = match std::str::from_utf8(raw) {
            Ok(text) => crate::redact::scrub_known(text),
            // Not expected from the formatters; written as text, masked all the same.
            Err(_) => {
                Cow::Owned(crate::redact::scrub_known(&String::from_utf8_lossy(raw)).into_owned())
            }
        };
        let line = match &masked {
            Cow::Owned(m) => m.as_bytes(),
            Cow::Borrowed(_) => raw,
        };
        let batched = BATCH.with(|b| match b.borrow_mut().as_mut() {
            Some(buf) => {
                buf.extend_from_slice(line);
                if buf.len() >= BATCH_BYTES {
                    hand_over(buf);
                }
                true
            }
            None => false,
        });
        if !batched {
            self.0.write_all(line)?;
        }
        Ok(raw.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
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
            .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
            .event_format(json::LeanJson)
            .try_init(),
        LogFormat::Text if !ansi => builder.fmt_fields(plain_fields()).try_init(),
        LogFormat::Text => builder.try_init(),
    };
    LogGuard {
        _writer: installed.is_ok().then_some(guard),
    }
}

/// `message key=value …` as tracing-subscriber's default writes it without colours, but
/// without passing every field name through its styling code (a third of the cost of an
/// access or audit line when colours are off, as in every deployment: `bench/profile.sh`).
fn plain_fields() -> impl for<'w> tracing_subscriber::fmt::FormatFields<'w> + 'static {
    use tracing_subscriber::field::MakeExt;
    tracing_subscriber::fmt::format::debug_fn(|w, field, value| {
        if field.name() == "message" {
            write!(w, "{value:?}")
        } else {
            write!(w, "{field}={value:?}")
        }
    })
    .delimited(" ")
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
            .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
            .event_format(json::LeanJson)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_leave_with_the_configurations_secrets_masked() {
        crate::redact::known::remember("svc-unit-\"t0ken/42");
        let (writer, _guard) = NonBlockingBuilder::default().finish(std::io::sink());
        batch_this_thread();
        let line = "DEBUG v4 said: Bearer svc-unit-\\\"t0ken/42, svc-unit-%22t0ken%2F42, svc-unit-\"t0ken/42\n";
        let n = LineWriter(writer).write(line.as_bytes()).unwrap();
        assert_eq!(n, line.len(), "the caller's line counts as written whole");
        let written = BATCH.with(|b| String::from_utf8(b.borrow_mut().take().unwrap()).unwrap());
        assert_eq!(written, "DEBUG v4 said: Bearer ***, ***, ***\n");
    }
}
