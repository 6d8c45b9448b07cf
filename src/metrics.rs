//! Prometheus metrics through the `metrics` facade and its Prometheus exporter, with
//! one local recorder per [`Metrics`] (no process-global state, so tests can run
//! several servers in one process).
//!
//! Families are declared once, with their label names, and their series are resolved
//! to handles where they are used (per route at start-up, say), so the hot path is one
//! atomic add:
//!
//! ```
//! # let metrics = vaultgate::metrics::Metrics::new();
//! let limited = metrics.registry.counter_vec(
//!     "vaultgate_rate_limited_total", "Reveal requests refused by the rate limit.", &["client"]);
//! limited.inc(&["billing"]);
//! ```
//!
//! Label values must never carry request data (no paths, no tokens): route names,
//! outcome codes, data classes and client names only.

use std::sync::Arc;
use std::time::Duration;

use metrics::{Key, Label, Level, Metadata, Recorder};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

pub use metrics::{Counter, Gauge};

/// Histogram buckets, in seconds.
pub const DURATION_BUCKETS: [f64; 14] = [
    0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

const METADATA: Metadata<'static> = Metadata::new("vaultgate", Level::INFO, None);

/// One family: its name, label names, and the recorder that holds its series.
#[derive(Debug)]
struct Family {
    name: &'static str,
    labels: &'static [&'static str],
    recorder: Arc<PrometheusRecorder>,
}

impl Family {
    fn key(&self, values: &[&str]) -> Key {
        let labels: Vec<Label> = self
            .labels
            .iter()
            .zip(values)
            .map(|(k, v)| Label::new(*k, (*v).to_owned()))
            .collect();
        Key::from_parts(self.name, labels)
    }
}

// === CounterVec ===

/// A counter family with labels.
#[derive(Debug)]
pub struct CounterVec(Family);

impl CounterVec {
    /// The counter for these label values (in the family's label order).
    pub fn with(&self, values: &[&str]) -> Counter {
        self.0
            .recorder
            .register_counter(&self.0.key(values), &METADATA)
    }

    /// Add one.
    pub fn inc(&self, values: &[&str]) {
        self.with(values).increment(1);
    }

    /// Add `n`.
    pub fn add(&self, values: &[&str], n: u64) {
        self.with(values).increment(n);
    }

    /// The current value of one series, read back from the exposition (0 when it
    /// has no sample yet). For checks and tools, not for the request path.
    pub fn get(&self, values: &[&str]) -> u64 {
        let labels: Vec<String> = self
            .0
            .labels
            .iter()
            .zip(values)
            .map(|(k, v)| format!("{k}=\"{v}\""))
            .collect();
        let series = if labels.is_empty() {
            format!("{} ", self.0.name)
        } else {
            format!("{}{{{}}} ", self.0.name, labels.join(","))
        };
        self.0
            .recorder
            .handle()
            .render()
            .lines()
            .find_map(|l| l.strip_prefix(series.as_str()))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .map_or(0, |v| v as u64)
    }
}

// === GaugeVec ===

/// A gauge family with labels.
#[derive(Debug)]
pub struct GaugeVec(Family);

impl GaugeVec {
    /// The gauge for these label values.
    pub fn with(&self, values: &[&str]) -> Gauge {
        self.0
            .recorder
            .register_gauge(&self.0.key(values), &METADATA)
    }

    /// Set the gauge.
    pub fn set(&self, values: &[&str], value: f64) {
        self.with(values).set(value);
    }
}

// === Histogram ===

/// One histogram series (seconds).
#[derive(Clone)]
pub struct Histogram(metrics::Histogram);

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Histogram")
    }
}

impl Histogram {
    /// Record one duration.
    pub fn observe(&self, d: Duration) {
        self.0.record(d.as_secs_f64());
    }
}

/// A histogram family with labels.
#[derive(Debug)]
pub struct HistogramVec(Family);

impl HistogramVec {
    /// The histogram for these label values.
    pub fn with(&self, values: &[&str]) -> Histogram {
        Histogram(
            self.0
                .recorder
                .register_histogram(&self.0.key(values), &METADATA),
        )
    }
}

// === Registry ===

/// The families of one server, rendered together.
#[derive(Debug)]
pub struct Registry {
    recorder: Arc<PrometheusRecorder>,
    handle: PrometheusHandle,
}

impl Default for Registry {
    fn default() -> Self {
        let builder = PrometheusBuilder::new();
        // The buckets are a non-empty constant, so this cannot fail; summaries are
        // the exporter's fallback if it ever did.
        let builder = builder
            .set_buckets(&DURATION_BUCKETS)
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        Registry {
            recorder: Arc::new(recorder),
            handle,
        }
    }
}

impl Registry {
    fn family(
        &self,
        name: &'static str,
        labels: &'static [&'static str],
        help: &'static str,
        describe: fn(&PrometheusRecorder, metrics::KeyName, &'static str),
    ) -> Family {
        describe(&self.recorder, metrics::KeyName::from_const_str(name), help);
        Family {
            name,
            labels,
            recorder: Arc::clone(&self.recorder),
        }
    }

    /// Declare a counter family.
    pub fn counter_vec(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
    ) -> Arc<CounterVec> {
        Arc::new(CounterVec(self.family(name, labels, help, |r, k, h| {
            r.describe_counter(k, None, h.into());
        })))
    }

    /// Declare a gauge family.
    pub fn gauge_vec(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
    ) -> Arc<GaugeVec> {
        Arc::new(GaugeVec(self.family(name, labels, help, |r, k, h| {
            r.describe_gauge(k, None, h.into());
        })))
    }

    /// Declare a histogram family (seconds, [`DURATION_BUCKETS`]).
    pub fn histogram_vec(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
    ) -> Arc<HistogramVec> {
        Arc::new(HistogramVec(self.family(name, labels, help, |r, k, h| {
            r.describe_histogram(k, None, h.into());
        })))
    }

    /// The text exposition (format 0.0.4) of every series.
    pub fn render(&self) -> String {
        self.handle.render()
    }

    /// Fold buffered histogram samples into their buckets. Rendering does it too; a
    /// periodic call bounds the buffer when nobody scrapes.
    pub fn upkeep(&self) {
        self.handle.run_upkeep();
    }
}

// === Ops ===

/// The operational families: API and reveal counts, connections, readiness,
/// certificates, reloads, audit and store health.
struct Ops {
    api_requests: Arc<CounterVec>,
    reveals: Arc<CounterVec>,
    upstream_responses: Arc<CounterVec>,
    upstream_connections: Arc<CounterVec>,
    open_connections: Arc<GaugeVec>,
    ready: Arc<GaugeVec>,
    tls_expiry: Arc<GaugeVec>,
    config_generation: Gauge,
    config_reload_ok: Gauge,
    audit_write_failures: Counter,
    store_ops: Arc<HistogramVec>,
}

impl Ops {
    fn new(registry: &Registry) -> Ops {
        let config_generation = registry
            .gauge_vec(
                "vaultgate_config_generation",
                "The config in use: 1 at start, +1 per successful reload.",
                &[],
            )
            .with(&[]);
        config_generation.set(1.0);
        let config_reload_ok = registry
            .gauge_vec(
                "vaultgate_config_last_reload_success",
                "1 if the last config reload (or the start) succeeded, 0 if it was refused.",
                &[],
            )
            .with(&[]);
        config_reload_ok.set(1.0);
        let audit_write_failures = registry
            .counter_vec(
                "vaultgate_audit_write_failures_total",
                "Audit log writes that failed (the request they covered was refused).",
                &[],
            )
            .with(&[]);
        audit_write_failures.absolute(0);
        Ops {
            api_requests: registry.counter_vec(
                "vaultgate_api_requests_total",
                "Vault API requests by endpoint, client and outcome.",
                &["endpoint", "client", "outcome"],
            ),
            reveals: registry.counter_vec(
                "vaultgate_reveals_total",
                "Values revealed through the API or the outbound proxy, by class.",
                &["class"],
            ),
            upstream_responses: registry.counter_vec(
                "vaultgate_upstream_responses_total",
                "Upstream responses by route and status class.",
                &["route", "status_class"],
            ),
            upstream_connections: registry.counter_vec(
                "vaultgate_upstream_connections_opened_total",
                "HTTP/1.1 connections the proxy opened to each plain-HTTP upstream; a rate \
                 near the request rate means connections are not being reused.",
                &["upstream"],
            ),
            open_connections: registry.gauge_vec(
                "vaultgate_open_connections",
                "Open client connections per listener.",
                &["listener"],
            ),
            ready: registry.gauge_vec(
                "vaultgate_ready",
                "The checks behind /readyz: 1 when the check holds.",
                &["check"],
            ),
            tls_expiry: registry.gauge_vec(
                "vaultgate_tls_cert_expiry_timestamp_seconds",
                "notAfter of each listener's TLS leaf certificate, in Unix seconds.",
                &["listener"],
            ),
            config_generation,
            config_reload_ok,
            audit_write_failures,
            store_ops: registry.histogram_vec(
                "vaultgate_store_operation_duration_seconds",
                "Vault store operations (tokenize, detokenize, durable) by operation.",
                &["op"],
            ),
        }
    }
}

/// The status classes, as the `status_class` label spells them.
pub const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// The index in [`STATUS_CLASSES`] of an HTTP status's class.
pub fn status_class_index(status: u16) -> usize {
    match status {
        100..=199 => 0,
        200..=299 => 1,
        300..=399 => 2,
        400..=499 => 3,
        _ => 4,
    }
}

// === Metrics ===

/// The registry plus the families the proxy itself uses.
#[derive(Debug)]
pub struct Metrics {
    pub registry: Registry,
    /// `vaultgate_requests_total{route,outcome}`; outcome is `ok` (forwarded and
    /// answered) or an error code (`no_route`, `body_too_large`, `upstream_timeout`…).
    pub requests: Arc<CounterVec>,
    /// `vaultgate_tokens_issued_total{class}`.
    pub tokens_issued: Arc<CounterVec>,
    /// `vaultgate_request_duration_seconds{route}`.
    pub request_duration: Arc<HistogramVec>,
    /// `vaultgate_api_requests_total{endpoint,client,outcome}`.
    pub api_requests: Arc<CounterVec>,
    /// `vaultgate_reveals_total{class}`: values revealed (in full or masked).
    pub reveals: Arc<CounterVec>,
    /// `vaultgate_upstream_responses_total{route,status_class}` (`2xx`…`5xx`).
    pub upstream_responses: Arc<CounterVec>,
    /// `vaultgate_upstream_connections_opened_total{upstream}`.
    pub upstream_connections: Arc<CounterVec>,
    /// `vaultgate_open_connections{listener}`.
    pub open_connections: Arc<GaugeVec>,
    /// `vaultgate_ready{check}`: 1 when the `/readyz` check holds.
    pub ready: Arc<GaugeVec>,
    /// `vaultgate_tls_cert_expiry_timestamp_seconds{listener}`: the leaf's notAfter.
    pub tls_expiry: Arc<GaugeVec>,
    /// `vaultgate_config_generation`: 1 at start, +1 per successful reload.
    pub config_generation: Gauge,
    /// `vaultgate_config_last_reload_success`: 1 if the last reload worked, else 0.
    pub config_reload_ok: Gauge,
    /// `vaultgate_audit_write_failures_total`.
    pub audit_write_failures: Counter,
    /// `vaultgate_store_operation_duration_seconds{op}`.
    pub store_ops: Arc<HistogramVec>,
    /// `vaultgate_store_flushes_total`: the store's fsyncs, shared by group commit.
    store_flushes: Counter,
    /// `process_*`: memory, descriptors and CPU of this process.
    process: ProcessGauges,
}

#[derive(Debug)]
struct ProcessGauges {
    resident: Gauge,
    open_fds: Gauge,
    cpu: Counter,
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::default();
        let requests = registry.counter_vec(
            "vaultgate_requests_total",
            "Proxied requests by route and outcome.",
            &["route", "outcome"],
        );
        let tokens_issued = registry.counter_vec(
            "vaultgate_tokens_issued_total",
            "Tokens issued by data class.",
            &["class"],
        );
        for class in crate::sensitive::DataClass::ALL {
            tokens_issued.add(&[class.as_str()], 0);
        }
        let request_duration = registry.histogram_vec(
            "vaultgate_request_duration_seconds",
            "Time from request head to response head, by route.",
            &["route"],
        );
        let store_flushes = registry
            .counter_vec(
                "vaultgate_store_flushes_total",
                "Store flushes (fsyncs), shared by group commit.",
                &[],
            )
            .with(&[]);
        registry
            .gauge_vec(
                "vaultgate_build_info",
                "The running build: always 1, with the version as a label.",
                &["version"],
            )
            .set(&[env!("CARGO_PKG_VERSION")], 1.0);
        let process = ProcessGauges {
            resident: registry
                .gauge_vec(
                    "process_resident_memory_bytes",
                    "Resident memory size in bytes.",
                    &[],
                )
                .with(&[]),
            open_fds: registry
                .gauge_vec("process_open_fds", "Open file descriptors.", &[])
                .with(&[]),
            cpu: registry
                .counter_vec(
                    "process_cpu_seconds_total",
                    "User and system CPU time spent, in seconds.",
                    &[],
                )
                .with(&[]),
        };
        let ops = Ops::new(&registry);
        Metrics {
            registry,
            requests,
            tokens_issued,
            request_duration,
            api_requests: ops.api_requests,
            reveals: ops.reveals,
            upstream_responses: ops.upstream_responses,
            upstream_connections: ops.upstream_connections,
            open_connections: ops.open_connections,
            ready: ops.ready,
            tls_expiry: ops.tls_expiry,
            config_generation: ops.config_generation,
            config_reload_ok: ops.config_reload_ok,
            audit_write_failures: ops.audit_write_failures,
            store_ops: ops.store_ops,
            store_flushes,
            process,
        }
    }

    /// The text exposition of every family. `store_flushes` is the store's fsync
    /// count (it lives in the store, not in the registry); process figures are read
    /// from `/proc` now.
    pub fn render(&self, store_flushes: u64) -> String {
        self.store_flushes.absolute(store_flushes);
        self.sample_process();
        self.registry.render()
    }

    /// Read this process's memory, descriptors and CPU time (Linux `/proc`; elsewhere
    /// the gauges stay at zero).
    fn sample_process(&self) {
        // statm counts pages; 4 KiB pages are the norm on the platforms we ship for.
        if let Ok(statm) = std::fs::read_to_string("/proc/self/statm")
            && let Some(pages) = statm
                .split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<f64>().ok())
        {
            self.process.resident.set(pages * 4096.0);
        }
        if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
            self.process.open_fds.set(dir.count() as f64);
        }
        // utime and stime, fields 14 and 15, in clock ticks (USER_HZ, 100 on Linux).
        if let Ok(stat) = std::fs::read_to_string("/proc/self/stat")
            && let Some(after) = stat.rsplit_once(") ").map(|(_, rest)| rest)
        {
            let mut fields = after.split_whitespace().skip(11);
            let utime = fields.next().and_then(|f| f.parse::<u64>().ok());
            let stime = fields.next().and_then(|f| f.parse::<u64>().ok());
            if let (Some(u), Some(s)) = (utime, stime) {
                self.process.cpu.absolute((u + s) / 100);
            }
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms() {
        let m = Metrics::new();
        m.requests.inc(&["cards", "ok"]);
        m.requests.add(&["cards", "ok"], 2);
        m.requests.inc(&["we\"ird", "no_route"]);
        m.request_duration
            .with(&["cards"])
            .observe(Duration::from_millis(3));
        let extra = m
            .registry
            .counter_vec("vaultgate_cvv_swept_total", "CVVs swept.", &[]);
        extra.inc(&[]);
        let text = m.registry.render();
        assert!(text.contains("vaultgate_requests_total{route=\"cards\",outcome=\"ok\"} 3"));
        assert!(text.contains("route=\"we\\\"ird\""));
        assert!(text.contains(
            "vaultgate_request_duration_seconds_bucket{route=\"cards\",le=\"0.0025\"} 0"
        ));
        assert!(
            text.contains(
                "vaultgate_request_duration_seconds_bucket{route=\"cards\",le=\"0.005\"} 1"
            )
        );
        assert!(
            text.contains(
                "vaultgate_request_duration_seconds_bucket{route=\"cards\",le=\"+Inf\"} 1"
            )
        );
        assert!(text.contains("vaultgate_request_duration_seconds_count{route=\"cards\"} 1"));
        assert!(text.contains("vaultgate_cvv_swept_total 1"));
        assert!(text.contains("# TYPE vaultgate_tokens_issued_total counter"));
    }
}
