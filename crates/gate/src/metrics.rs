//! Prometheus metrics: decisions by outcome, decision latency, held count.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use recourse_core::Verdict;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabel {
    pub status: String,
}

pub struct Metrics {
    registry: Registry,
    decisions: Family<OutcomeLabel, Counter>,
    latency: Histogram,
    writes: Family<StatusLabel, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("recourse");
        let decisions = Family::<OutcomeLabel, Counter>::default();
        registry.register("decisions", "Decisions by outcome", decisions.clone());
        // 10 µs to about 10 s.
        let latency = Histogram::new(exponential_buckets(0.00001, 4.0, 11));
        registry.register(
            "decision_latency_seconds",
            "Time from submit to decision",
            latency.clone(),
        );
        let writes = Family::<StatusLabel, Gauge>::default();
        registry.register(
            "writes",
            "Writes by status (held is the review queue)",
            writes.clone(),
        );
        Self {
            registry,
            decisions,
            latency,
            writes,
        }
    }

    pub fn observe_decision(&self, verdict: Verdict, took: std::time::Duration) {
        let outcome = match verdict {
            Verdict::Proceed => "proceed",
            Verdict::Hold => "hold",
            Verdict::Refuse => "refuse",
        };
        self.decisions
            .get_or_create(&OutcomeLabel {
                outcome: outcome.into(),
            })
            .inc();
        self.latency.observe(took.as_secs_f64());
    }

    pub fn set_counts(&self, counts: &[(recourse_client::WriteStatus, i64)]) {
        for status in recourse_client::WriteStatus::ALL {
            let n = counts
                .iter()
                .find(|(s, _)| *s == status)
                .map_or(0, |(_, n)| *n);
            self.writes
                .get_or_create(&StatusLabel {
                    status: status.as_str().into(),
                })
                .set(n);
        }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
