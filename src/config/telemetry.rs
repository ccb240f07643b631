//! `[telemetry]`, OpenTelemetry traces: read at start only, and the standard `OTEL_*`
//! variables win, so the usual OpenTelemetry deployment recipes work unchanged.

use serde::Deserialize;

/// Off unless an endpoint is set here or in the environment.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// OTLP/HTTP base URL (`/v1/traces` is appended), like `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub otlp_endpoint: Option<String>,
    /// Like `OTEL_SERVICE_NAME` [default: legacy-gateway].
    pub service_name: Option<String>,
    /// Share of traces kept (0..=1), like `OTEL_TRACES_SAMPLER_ARG` [default: 1].
    pub sample_ratio: Option<f64>,
}
