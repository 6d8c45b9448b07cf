//! Prometheus metrics: a small hand-written registry of atomic counters and
//! histograms, rendered in the text exposition format (version 0.0.4).
//!
//! Other modules register their own families through [`Registry::counter_vec`]:
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

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Histogram buckets, in seconds.
pub const DURATION_BUCKETS: [f64; 14] = [
    0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

// === CounterVec ===

/// A counter family with labels.
#[derive(Debug)]
pub struct CounterVec {
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
    values: RwLock<HashMap<Vec<String>, Arc<AtomicU64>>>,
}

impl CounterVec {
    /// The counter for one set of label values (created at zero on first use). Hold on
    /// to the returned handle on hot paths to skip the lookup.
    pub fn with(&self, values: &[&str]) -> Arc<AtomicU64> {
        let key: Vec<String> = values.iter().map(|v| (*v).to_owned()).collect();
        if let Ok(map) = self.values.read()
            && let Some(c) = map.get(&key)
        {
            return Arc::clone(c);
        }
        match self.values.write() {
            Ok(mut map) => Arc::clone(map.entry(key).or_default()),
            // A poisoned lock only means a panic elsewhere; count into a detached cell.
            Err(_) => Arc::new(AtomicU64::new(0)),
        }
    }

    /// Add one.
    pub fn inc(&self, values: &[&str]) {
        self.add(values, 1);
    }

    /// Add `n`.
    pub fn add(&self, values: &[&str], n: u64) {
        self.with(values).fetch_add(n, Ordering::Relaxed);
    }

    /// The current value (zero if never touched).
    pub fn get(&self, values: &[&str]) -> u64 {
        self.with(values).load(Ordering::Relaxed)
    }

    fn render(&self, out: &mut String) {
        let _ = writeln!(out, "# HELP {} {}", self.name, self.help);
        let _ = writeln!(out, "# TYPE {} counter", self.name);
        let Ok(map) = self.values.read() else { return };
        let mut rows: Vec<_> = map.iter().collect();
        rows.sort_by(|a, b| a.0.cmp(b.0));
        for (values, v) in rows {
            let _ = writeln!(
                out,
                "{}{} {}",
                self.name,
                label_set(self.labels, values, None),
                v.load(Ordering::Relaxed)
            );
        }
    }
}

// === Histogram ===

/// One histogram (a single label set).
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; DURATION_BUCKETS.len()],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl Histogram {
    /// Record one duration.
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        for (bound, bucket) in DURATION_BUCKETS.iter().zip(&self.buckets) {
            if secs <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// How many observations.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

/// A histogram family with labels.
#[derive(Debug)]
pub struct HistogramVec {
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
    values: RwLock<HashMap<Vec<String>, Arc<Histogram>>>,
}

impl HistogramVec {
    /// The histogram for one label set (hold on to it on hot paths).
    pub fn with(&self, values: &[&str]) -> Arc<Histogram> {
        let key: Vec<String> = values.iter().map(|v| (*v).to_owned()).collect();
        if let Ok(map) = self.values.read()
            && let Some(h) = map.get(&key)
        {
            return Arc::clone(h);
        }
        match self.values.write() {
            Ok(mut map) => Arc::clone(map.entry(key).or_default()),
            Err(_) => Arc::new(Histogram::default()),
        }
    }

    fn render(&self, out: &mut String) {
        let _ = writeln!(out, "# HELP {} {}", self.name, self.help);
        let _ = writeln!(out, "# TYPE {} histogram", self.name);
        let Ok(map) = self.values.read() else { return };
        let mut rows: Vec<_> = map.iter().collect();
        rows.sort_by(|a, b| a.0.cmp(b.0));
        for (values, h) in rows {
            for (bound, bucket) in DURATION_BUCKETS.iter().zip(&h.buckets) {
                let le = format!("{bound}");
                let _ = writeln!(
                    out,
                    "{}_bucket{} {}",
                    self.name,
                    label_set(self.labels, values, Some(&le)),
                    bucket.load(Ordering::Relaxed)
                );
            }
            let count = h.count.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "{}_bucket{} {count}",
                self.name,
                label_set(self.labels, values, Some("+Inf"))
            );
            let labels = label_set(self.labels, values, None);
            #[allow(clippy::cast_precision_loss)] // a sum of nanoseconds; f64 is plenty
            let sum = h.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
            let _ = writeln!(out, "{}_sum{labels} {sum}", self.name);
            let _ = writeln!(out, "{}_count{labels} {count}", self.name);
        }
    }
}

fn label_set(names: &[&str], values: &[String], le: Option<&str>) -> String {
    let mut pairs: Vec<String> = names
        .iter()
        .zip(values)
        .map(|(n, v)| format!("{n}=\"{}\"", escape(v)))
        .collect();
    if let Some(le) = le {
        pairs.push(format!("le=\"{le}\""));
    }
    if pairs.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", pairs.join(","))
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

// === Registry ===

#[derive(Debug)]
enum Family {
    Counter(Arc<CounterVec>),
    Histogram(Arc<HistogramVec>),
}

/// All metric families, in registration order.
#[derive(Debug, Default)]
pub struct Registry {
    families: RwLock<Vec<Family>>,
}

impl Registry {
    /// Register (or fetch, if the name is taken by a counter) a counter family.
    pub fn counter_vec(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
    ) -> Arc<CounterVec> {
        let mut families = match self.families.write() {
            Ok(f) => f,
            Err(p) => p.into_inner(),
        };
        for f in families.iter() {
            if let Family::Counter(c) = f
                && c.name == name
            {
                return Arc::clone(c);
            }
        }
        let c = Arc::new(CounterVec {
            name,
            help,
            labels,
            values: RwLock::default(),
        });
        families.push(Family::Counter(Arc::clone(&c)));
        c
    }

    /// Register (or fetch) a duration histogram family.
    pub fn histogram_vec(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
    ) -> Arc<HistogramVec> {
        let mut families = match self.families.write() {
            Ok(f) => f,
            Err(p) => p.into_inner(),
        };
        for f in families.iter() {
            if let Family::Histogram(h) = f
                && h.name == name
            {
                return Arc::clone(h);
            }
        }
        let h = Arc::new(HistogramVec {
            name,
            help,
            labels,
            values: RwLock::default(),
        });
        families.push(Family::Histogram(Arc::clone(&h)));
        h
    }

    /// The text exposition of every family.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let Ok(families) = self.families.read() else {
            return out;
        };
        for f in families.iter() {
            match f {
                Family::Counter(c) => c.render(&mut out),
                Family::Histogram(h) => h.render(&mut out),
            }
        }
        out
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
        let request_duration = registry.histogram_vec(
            "vaultgate_request_duration_seconds",
            "Time from request head to response head, by route.",
            &["route"],
        );
        Metrics {
            registry,
            requests,
            tokens_issued,
            request_duration,
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// The text exposition of every family. `store_flushes` is the store's fsync
    /// count, rendered as `vaultgate_store_flushes_total` (it lives in the store, not
    /// in the registry).
    pub fn render(&self, store_flushes: u64) -> String {
        let mut text = self.registry.render();
        let _ = writeln!(
            text,
            "# HELP vaultgate_store_flushes_total Store flushes (fsyncs), shared by group commit."
        );
        let _ = writeln!(text, "# TYPE vaultgate_store_flushes_total counter");
        let _ = writeln!(text, "vaultgate_store_flushes_total {store_flushes}");
        text
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
