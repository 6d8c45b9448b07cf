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

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crossbeam_utils::CachePadded;
use metrics::{Key, Label, Level, Metadata, Recorder};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

use crate::commit::FlushFigures;
use crate::net::shard;

pub use metrics::{Counter, Gauge};

/// Histogram buckets (upper bounds, in nanoseconds; rendered in seconds): 25 µs
/// to 10 s. The lowest resolve what a pass-through request adds and what one disk
/// flush takes (tens of microseconds on a fast disk).
pub const BUCKETS_NS: [u64; 17] = [
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    10_000_000_000,
];

const METADATA: Metadata<'static> = Metadata::new("vaultgate", Level::INFO, None);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

// === Per-shard cells ===

/// One value per shard ([`shard::current`]), each on a cache line of its own: a
/// series counted on every request is written by each core in its own cell, and
/// the cells are summed when the metrics are read. A shared atomic instead would
/// be one cache line that every core pulls back and forth on every request.
struct PerShard<T>(Box<[CachePadded<T>]>);

impl<T: Default> PerShard<T> {
    fn new() -> Self {
        // One cell per CPU (the proxy's default shard count) plus one for the
        // threads off any shard; a listener with more shards shares cells round
        // robin, which stays correct (they are atomics).
        let n = std::thread::available_parallelism().map_or(1, NonZeroUsize::get) + 1;
        PerShard((0..n).map(|_| CachePadded::new(T::default())).collect())
    }
}

impl<T> PerShard<T> {
    /// The calling thread's cell.
    fn here(&self) -> Option<&T> {
        shard::current()
            .checked_rem(self.0.len())
            .and_then(|i| self.0.get(i))
            .map(|c| &**c)
    }

    fn iter(&self) -> impl Iterator<Item = &T> {
        self.0.iter().map(|c| &**c)
    }
}

// === ShardedCounter ===

/// A counter for the request path: counted per shard, and added to its series in
/// the registry when the metrics are rendered. Handles for the same series share
/// their cells, so a config reload (new handles) neither loses nor repeats counts.
#[derive(Clone)]
pub struct ShardedCounter(Arc<CounterCells>);

struct CounterCells {
    cells: PerShard<AtomicU64>,
    /// The series in the registry.
    out: Counter,
    /// How much of the cells' sum `out` has been given.
    folded: Mutex<u64>,
}

impl std::fmt::Debug for ShardedCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ShardedCounter")
    }
}

impl ShardedCounter {
    pub fn increment(&self, n: u64) {
        if let Some(cell) = self.0.cells.here() {
            cell.fetch_add(n, Ordering::Relaxed);
        }
    }
}

impl CounterCells {
    /// Give the registry's series what was counted since the last fold.
    fn fold(&self) {
        let sum: u64 = self.cells.iter().map(|c| c.load(Ordering::Relaxed)).sum();
        let mut folded = lock(&self.folded);
        if sum > *folded {
            self.out.increment(sum - *folded);
            *folded = sum;
        }
    }
}

/// The sharded series of one registry, and its histogram families.
#[derive(Default)]
struct Sharded {
    counters: Mutex<HashMap<Key, Arc<CounterCells>>>,
    histograms: Mutex<Vec<Arc<HistogramVec>>>,
}

impl std::fmt::Debug for Sharded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sharded")
    }
}

/// One family: its name, label names, and the recorder that holds its series.
#[derive(Debug)]
struct Family {
    name: &'static str,
    labels: &'static [&'static str],
    recorder: Arc<PrometheusRecorder>,
    sharded: Arc<Sharded>,
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
    /// The per-shard counter for these label values, for the request path.
    pub fn sharded(&self, values: &[&str]) -> ShardedCounter {
        let key = self.0.key(values);
        let mut counters = lock(&self.0.sharded.counters);
        let cells = counters.entry(key).or_insert_with(|| {
            Arc::new(CounterCells {
                cells: PerShard::new(),
                out: self.with(values),
                folded: Mutex::new(0),
            })
        });
        ShardedCounter(Arc::clone(cells))
    }

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

/// One histogram series (seconds, [`BUCKETS_NS`]), counted per shard and
/// summed when rendered.
#[derive(Clone)]
pub struct Histogram(Arc<PerShard<HistogramCell>>);

#[derive(Default)]
struct HistogramCell {
    /// Observations per bucket (not cumulative); the last is above every bound.
    buckets: [AtomicU64; BUCKETS_NS.len() + 1],
    sum_ns: AtomicU64,
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Histogram")
    }
}

impl Histogram {
    /// Record one duration.
    pub fn observe(&self, d: Duration) {
        let Some(cell) = self.0.here() else {
            return;
        };
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let bucket = BUCKETS_NS
            .iter()
            .position(|b| ns <= *b)
            .unwrap_or(BUCKETS_NS.len());
        if let Some(b) = cell.buckets.get(bucket) {
            b.fetch_add(1, Ordering::Relaxed);
        }
        cell.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// Cumulative counts per bound (the last is `+Inf`, the count) and the sum in
    /// seconds.
    fn totals(&self) -> ([u64; BUCKETS_NS.len() + 1], f64) {
        let mut counts = [0u64; BUCKETS_NS.len() + 1];
        let mut sum_ns: u128 = 0;
        for cell in self.0.iter() {
            for (total, b) in counts.iter_mut().zip(&cell.buckets) {
                *total += b.load(Ordering::Relaxed);
            }
            sum_ns += u128::from(cell.sum_ns.load(Ordering::Relaxed));
        }
        let mut running = 0;
        for c in &mut counts {
            running += *c;
            *c = running;
        }
        #[allow(clippy::cast_precision_loss)] // a sum of durations: f64 is plenty
        let sum = sum_ns as f64 / 1e9;
        (counts, sum)
    }
}

/// A histogram family with labels. vaultgate renders these itself (the exporter's
/// histograms share one sample buffer per series across every core).
pub struct HistogramVec {
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
    /// Series by label values; handles for the same values share one series.
    series: Mutex<BTreeMap<Vec<String>, Histogram>>,
}

impl std::fmt::Debug for HistogramVec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HistogramVec")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl HistogramVec {
    /// The histogram for these label values.
    pub fn with(&self, values: &[&str]) -> Histogram {
        let values: Vec<String> = values.iter().map(|v| (*v).to_owned()).collect();
        lock(&self.series)
            .entry(values)
            .or_insert_with(|| Histogram(Arc::new(PerShard::new())))
            .clone()
    }

    /// The family in the text exposition format (nothing while it has no series).
    fn render(&self, out: &mut String) {
        let series = lock(&self.series);
        if series.is_empty() {
            return;
        }
        let name = self.name;
        let _ = writeln!(out, "# HELP {name} {}", self.help);
        let _ = writeln!(out, "# TYPE {name} histogram");
        for (values, h) in series.iter() {
            let mut labels = String::new();
            for (k, v) in self.labels.iter().zip(values) {
                let _ = write!(labels, "{k}=\"{}\",", escape_label(v));
            }
            let (counts, sum) = h.totals();
            let bounds = BUCKETS_NS
                .iter()
                .map(|ns| Duration::from_nanos(*ns).as_secs_f64().to_string());
            for (le, count) in bounds.chain(["+Inf".to_owned()]).zip(counts) {
                let _ = writeln!(out, "{name}_bucket{{{labels}le=\"{le}\"}} {count}");
            }
            let plain = labels.trim_end_matches(',');
            let braced = if plain.is_empty() {
                String::new()
            } else {
                format!("{{{plain}}}")
            };
            let count = counts.last().copied().unwrap_or(0);
            let _ = writeln!(out, "{name}_sum{braced} {sum}");
            let _ = writeln!(out, "{name}_count{braced} {count}");
        }
        out.push('\n');
    }
}

/// A label value as the exposition format quotes it.
fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

// === Registry ===

/// The families of one server, rendered together.
#[derive(Debug)]
pub struct Registry {
    recorder: Arc<PrometheusRecorder>,
    handle: PrometheusHandle,
    sharded: Arc<Sharded>,
}

impl Default for Registry {
    fn default() -> Self {
        // Counters and gauges only: histograms are vaultgate's own (`HistogramVec`).
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        Registry {
            recorder: Arc::new(recorder),
            handle,
            sharded: Arc::default(),
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
            sharded: Arc::clone(&self.sharded),
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

    /// Declare a histogram family (seconds, [`BUCKETS_NS`]).
    pub fn histogram_vec(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
    ) -> Arc<HistogramVec> {
        let family = Arc::new(HistogramVec {
            name,
            help,
            labels,
            series: Mutex::new(BTreeMap::new()),
        });
        lock(&self.sharded.histograms).push(Arc::clone(&family));
        family
    }

    /// The text exposition (format 0.0.4) of every series.
    pub fn render(&self) -> String {
        let counters: Vec<Arc<CounterCells>> =
            lock(&self.sharded.counters).values().cloned().collect();
        for c in counters {
            c.fold();
        }
        let mut out = self.handle.render();
        for h in lock(&self.sharded.histograms).iter() {
            h.render(&mut out);
        }
        out
    }
}

// === Ops ===

/// The operational families: API and reveal counts, connections, readiness,
/// certificates, reloads, audit and store health.
struct Ops {
    api_requests: Arc<CounterVec>,
    reveals: Arc<CounterVec>,
    outbound_echoes: Arc<CounterVec>,
    outbound_answer_tokens: Arc<CounterVec>,
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
            outbound_echoes: registry.counter_vec(
                "vaultgate_outbound_echoes_total",
                "Outbound answers that showed a value revealed into their request, by route and \
                 outcome: swapped (each swapped back for its token) or refused (502, not swappable).",
                &["route", "outcome"],
            ),
            outbound_answer_tokens: registry.counter_vec(
                "vaultgate_outbound_answer_tokens_total",
                "Card numbers in outbound answers that their request did not reveal, by route \
                 and outcome: tokenized (each one a new token in place) or refused (the answer \
                 refused with 502, counted once per answer).",
                &["route", "outcome"],
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
                "Store operations of the vault API (tokenize, detokenize, durable), by operation; \
                 the proxy's tokenizing is in vaultgate_request_duration_seconds and \
                 vaultgate_store_flush_duration_seconds.",
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
    /// `vaultgate_outbound_echoes_total{route,outcome}`: outbound answers that showed a
    /// revealed value; `swapped` or `refused`.
    pub outbound_echoes: Arc<CounterVec>,
    /// `vaultgate_outbound_answer_tokens_total{route,outcome}`: card numbers an outbound
    /// answer showed that its request did not reveal; `tokenized` or `refused`.
    pub outbound_answer_tokens: Arc<CounterVec>,
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
    /// `vaultgate_store_flush_timeouts_total`: store calls that gave up on a hung
    /// flush (`vault.flush_timeout_ms`) or were refused while it hung: 503s.
    store_flush_timeouts: Counter,
    /// `vaultgate_store_flush_pending_seconds`: how long the flush in progress has
    /// been running (0 when none is): a hung disk shows as a number that grows.
    store_flush_pending: Gauge,
    /// `vaultgate_store_flush_duration_seconds`: how long each of those took (the
    /// disk's share of a tokenizing request's latency).
    pub store_flush_duration: Histogram,
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
        let store_flush_timeouts = registry
            .counter_vec(
                "vaultgate_store_flush_timeouts_total",
                "Embedded store writes and durability waits refused because a flush hung past vault.flush_timeout_ms.",
                &[],
            )
            .with(&[]);
        let store_flush_pending = registry
            .gauge_vec(
                "vaultgate_store_flush_pending_seconds",
                "How long the embedded store's flush in progress has been running (0: none).",
                &[],
            )
            .with(&[]);
        let store_flush_duration = registry
            .histogram_vec(
                "vaultgate_store_flush_duration_seconds",
                "Duration of each store flush (group commit's fsync) of an embedded store.",
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
            outbound_echoes: ops.outbound_echoes,
            outbound_answer_tokens: ops.outbound_answer_tokens,
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
            store_flush_timeouts,
            store_flush_pending,
            store_flush_duration,
            process,
        }
    }

    /// The text exposition of every family. `store` is the store's flush figures
    /// count (it lives in the store, not in the registry); process figures are read
    /// from `/proc` now.
    pub fn render(&self, store: FlushFigures) -> String {
        self.store_flushes.absolute(store.flushes);
        self.store_flush_timeouts.absolute(store.timeouts);
        self.store_flush_pending.set(store.pending.as_secs_f64());
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

    #[test]
    fn sharded_counters_add_up_once_across_threads_handles_and_renders() {
        let m = Metrics::new();
        let a = m.requests.sharded(&["cards", "ok"]);
        std::thread::scope(|s| {
            for _ in 0..4 {
                let a = a.clone();
                s.spawn(move || {
                    for _ in 0..1000 {
                        a.increment(1);
                    }
                });
            }
        });
        let line = |text: &str| {
            text.lines()
                .find(|l| l.starts_with("vaultgate_requests_total{route=\"cards\",outcome=\"ok\"}"))
                .map(str::to_owned)
        };
        assert_eq!(
            line(&m.registry.render()).as_deref(),
            Some("vaultgate_requests_total{route=\"cards\",outcome=\"ok\"} 4000")
        );
        // A second handle on the series (a reloaded config's) counts into the same
        // series; counting outside the shards adds too; a render counts nothing twice.
        let b = m.requests.sharded(&["cards", "ok"]);
        b.increment(5);
        m.requests.inc(&["cards", "ok"]);
        assert_eq!(
            line(&m.registry.render()).as_deref(),
            Some("vaultgate_requests_total{route=\"cards\",outcome=\"ok\"} 4006")
        );
        assert_eq!(
            line(&m.registry.render()).as_deref(),
            Some("vaultgate_requests_total{route=\"cards\",outcome=\"ok\"} 4006")
        );
    }

    #[test]
    fn histograms_render_cumulative_buckets_sum_and_count() {
        let m = Metrics::new();
        let h = m.request_duration.with(&["a\\b\"c"]);
        for ms in [0, 1, 3, 3, 20_000] {
            h.observe(Duration::from_millis(ms));
        }
        // The same labels: the same series.
        m.request_duration
            .with(&["a\\b\"c"])
            .observe(Duration::from_micros(100));
        let none = m
            .registry
            .histogram_vec("vaultgate_test_seconds", "Unlabelled.", &[]);
        none.with(&[]).observe(Duration::from_millis(2));
        let text = m.registry.render();
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("vaultgate_request_duration_seconds"))
            .collect();
        let labels = r#"route="a\\b\"c""#;
        let expect = |le: &str, n: u32| {
            format!("vaultgate_request_duration_seconds_bucket{{{labels},le=\"{le}\"}} {n}")
        };
        assert_eq!(lines.first().copied(), Some(expect("0.000025", 1).as_str()));
        assert!(lines.contains(&expect("0.00005", 1).as_str()), "{text}");
        assert!(lines.contains(&expect("0.0001", 2).as_str()), "{text}");
        assert!(lines.contains(&expect("0.00025", 2).as_str()), "{text}");
        assert!(lines.contains(&expect("0.001", 3).as_str()), "{text}");
        assert!(lines.contains(&expect("0.0025", 3).as_str()), "{text}");
        assert!(lines.contains(&expect("0.005", 5).as_str()), "{text}");
        assert!(lines.contains(&expect("10", 5).as_str()), "{text}");
        assert!(lines.contains(&expect("+Inf", 6).as_str()), "{text}");
        assert!(
            lines.contains(
                &format!("vaultgate_request_duration_seconds_sum{{{labels}}} 20.0071").as_str()
            ),
            "{text}"
        );
        assert!(
            lines.contains(
                &format!("vaultgate_request_duration_seconds_count{{{labels}}} 6").as_str()
            ),
            "{text}"
        );
        assert!(text.contains("# TYPE vaultgate_request_duration_seconds histogram\n"));
        assert!(text.contains("vaultgate_test_seconds_bucket{le=\"0.0025\"} 1\n"));
        assert!(text.contains("vaultgate_test_seconds_sum 0.002\n"));
        assert!(text.contains("vaultgate_test_seconds_count 1\n"));
        // A family with no series renders nothing.
        assert!(!text.contains("vaultgate_store_operation_duration_seconds"));
    }
}
