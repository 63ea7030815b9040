//! Connection metrics in the shape of Ditto's connections API (checklist §8.5): per direction
//! and type (`consumed`, `mapped`, `dropped`, `enforced`, `dispatched`, `published`,
//! `acknowledged`), successes and failures counted over the last minute, hour and 24 hours, with
//! the time of the last message; for the connection, and per source and target address (the
//! configured address, so wildcards do not multiply the keys).

use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

/// Minutes kept: 24 hours.
const MINUTES: usize = 24 * 60;

/// Counts per minute over the last 24 hours.
#[derive(Debug)]
struct Meter {
    /// (minute since the epoch, count) by minute modulo [`MINUTES`].
    minutes: Vec<(i64, u64)>,
    last_at: Option<i64>,
}

impl Default for Meter {
    fn default() -> Self {
        Meter {
            minutes: vec![(i64::MIN, 0); MINUTES],
            last_at: None,
        }
    }
}

impl Meter {
    fn record(&mut self, now_millis: i64) {
        let minute = now_millis.div_euclid(60_000);
        let slot = &mut self.minutes[minute.rem_euclid(MINUTES as i64) as usize];
        if slot.0 != minute {
            *slot = (minute, 0);
        }
        slot.1 += 1;
        self.last_at = Some(now_millis);
    }

    fn within(&self, now_millis: i64, minutes: i64) -> u64 {
        let now = now_millis.div_euclid(60_000);
        self.minutes
            .iter()
            .filter(|(m, _)| *m <= now && now.saturating_sub(*m) < minutes)
            .map(|(_, c)| c)
            .sum()
    }

    fn json(&self, now_millis: i64) -> Value {
        let last = self
            .last_at
            .and_then(chrono::DateTime::from_timestamp_millis)
            .map(|t| Value::from(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)));
        json!({
            "PT1M": self.within(now_millis, 1),
            "PT1H": self.within(now_millis, 60),
            "PT24H": self.within(now_millis, MINUTES as i64),
            "lastMessageAt": last.unwrap_or(Value::Null),
        })
    }
}

/// The metric types and their direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Consumed,
    Mapped,
    Enforced,
    Dropped,
    Dispatched,
    Published,
    Acknowledged,
}

impl Kind {
    const ALL: [Kind; 7] = [
        Kind::Consumed,
        Kind::Mapped,
        Kind::Enforced,
        Kind::Dropped,
        Kind::Dispatched,
        Kind::Published,
        Kind::Acknowledged,
    ];

    fn name(self) -> &'static str {
        match self {
            Kind::Consumed => "consumed",
            Kind::Mapped => "mapped",
            Kind::Enforced => "enforced",
            Kind::Dropped => "dropped",
            Kind::Dispatched => "dispatched",
            Kind::Published => "published",
            Kind::Acknowledged => "acknowledged",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// A gauge's name and labels.
type GaugeKey = (String, Vec<(String, String)>);

/// Success and failure meters of every kind, for one address.
#[derive(Debug)]
struct Meters {
    success: Vec<Meter>,
    failure: Vec<Meter>,
}

impl Default for Meters {
    fn default() -> Self {
        Meters {
            success: (0..Kind::ALL.len()).map(|_| Meter::default()).collect(),
            failure: (0..Kind::ALL.len()).map(|_| Meter::default()).collect(),
        }
    }
}

impl Meters {
    fn json(&self, kinds: &[Kind], now: i64) -> Value {
        let mut out = Map::new();
        for kind in kinds {
            out.insert(
                kind.name().into(),
                json!({"success": self.success[kind.index()].json(now), "failure": self.failure[kind.index()].json(now)}),
            );
        }
        Value::Object(out)
    }

    fn failures(&self, now: i64) -> u64 {
        self.failure
            .iter()
            .map(|m| m.within(now, MINUTES as i64))
            .sum()
    }
}

const INBOUND: [Kind; 4] = [Kind::Consumed, Kind::Mapped, Kind::Enforced, Kind::Dropped];
const OUTBOUND: [Kind; 5] = [
    Kind::Dispatched,
    Kind::Mapped,
    Kind::Dropped,
    Kind::Published,
    Kind::Acknowledged,
];

/// The metrics of one connection.
#[derive(Debug)]
pub struct ConnectionMetrics {
    /// The connection's ID: the label of its Prometheus series.
    id: String,
    sources: Vec<(String, Mutex<Meters>)>,
    targets: Vec<(String, Mutex<Meters>)>,
    /// The adapter's gauges (e.g. Kafka consumer lag per partition), by name and labels.
    gauges: Mutex<BTreeMap<GaugeKey, f64>>,
}

impl ConnectionMetrics {
    /// Metrics for sources and targets named by their configured addresses.
    pub fn new(id: &str, sources: Vec<String>, targets: Vec<String>) -> Self {
        ConnectionMetrics {
            id: id.to_owned(),
            sources: sources.into_iter().map(|a| (a, Mutex::default())).collect(),
            targets: targets.into_iter().map(|a| (a, Mutex::default())).collect(),
            gauges: Mutex::default(),
        }
    }

    /// Sets a gauge the adapter reports.
    pub fn gauge(&self, name: &str, labels: &[(&str, &str)], value: f64) {
        let series: String = name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let mut prometheus_labels = vec![metrics::Label::new("connection", self.id.clone())];
        prometheus_labels.extend(
            labels
                .iter()
                .map(|(n, v)| metrics::Label::new((*n).to_owned(), (*v).to_owned())),
        );
        metrics::gauge!(format!("twinwire_{series}"), prometheus_labels).set(value);
        let labels = labels
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect();
        self.gauges
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert((name.to_owned(), labels), value);
    }

    /// The adapter's gauges: `{name: [{"labels": {..}, "value": v}, ..]}` (twinwire, beyond
    /// Ditto's shape).
    fn gauges_json(&self) -> Value {
        let mut out = Map::new();
        for ((name, labels), value) in self
            .gauges
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            let labels: Map<String, Value> = labels
                .iter()
                .map(|(n, v)| (n.clone(), Value::from(v.as_str())))
                .collect();
            if let Value::Array(list) = out
                .entry(name.clone())
                .or_insert_with(|| Value::Array(Vec::new()))
            {
                list.push(json!({"labels": labels, "value": value}));
            }
        }
        Value::Object(out)
    }

    /// Counts an inbound event of source `index`.
    pub fn source(&self, index: usize, kind: Kind, success: bool) {
        record(&self.sources, index, kind, success);
        self.count("inbound", kind, success);
    }

    /// The Prometheus counter of a message event: per connection, direction, type and outcome
    /// (not per address, which placeholders would multiply).
    fn count(&self, direction: &'static str, kind: Kind, success: bool) {
        metrics::counter!(
            "twinwire_connection_messages_total",
            "connection" => self.id.clone(),
            "direction" => direction,
            "type" => kind.name(),
            "outcome" => if success { "success" } else { "failure" },
        )
        .increment(1);
    }

    /// Counts an outbound event of target `index`.
    pub fn target(&self, index: usize, kind: Kind, success: bool) {
        record(&self.targets, index, kind, success);
        self.count("outbound", kind, success);
    }

    /// The total of a kind over all sources and targets in the last 24 hours.
    pub fn total(&self, kind: Kind, success: bool) -> u64 {
        let now = now_millis();
        self.sources
            .iter()
            .chain(&self.targets)
            .map(|(_, m)| {
                let m = m.lock().unwrap_or_else(PoisonError::into_inner);
                let meters = if success { &m.success } else { &m.failure };
                meters[kind.index()].within(now, MINUTES as i64)
            })
            .sum()
    }

    /// The metrics JSON of Ditto's API (`connectionMetrics`, `sourceMetrics`, `targetMetrics`).
    pub fn json(&self, connection_id: &str) -> Value {
        let now = now_millis();
        let addresses = |list: &[(String, Mutex<Meters>)], kinds: &[Kind]| {
            let mut out = Map::new();
            for (address, meters) in list {
                let meters = meters.lock().unwrap_or_else(PoisonError::into_inner);
                out.insert(address.clone(), meters.json(kinds, now));
            }
            Value::Object(out)
        };
        let sum = |list: &[(String, Mutex<Meters>)]| {
            let mut total = Meters::default();
            for (_, meters) in list {
                let meters = meters.lock().unwrap_or_else(PoisonError::into_inner);
                for (i, meter) in meters.success.iter().enumerate() {
                    merge(&mut total.success[i], meter);
                }
                for (i, meter) in meters.failure.iter().enumerate() {
                    merge(&mut total.failure[i], meter);
                }
            }
            total
        };
        let inbound = sum(&self.sources);
        let outbound = sum(&self.targets);
        let failures = inbound.failures(now) + outbound.failures(now);
        json!({
            "connectionId": connection_id,
            "containsFailures": failures > 0,
            "connectionMetrics": {"inbound": inbound.json(&INBOUND, now), "outbound": outbound.json(&OUTBOUND, now)},
            "sourceMetrics": {"addressMetrics": addresses(&self.sources, &INBOUND)},
            "targetMetrics": {"addressMetrics": addresses(&self.targets, &OUTBOUND)},
            "adapterMetrics": self.gauges_json(),
        })
    }
}

fn record(list: &[(String, Mutex<Meters>)], index: usize, kind: Kind, success: bool) {
    if let Some((_, meters)) = list.get(index) {
        let mut meters = meters.lock().unwrap_or_else(PoisonError::into_inner);
        let meter = if success {
            &mut meters.success[kind.index()]
        } else {
            &mut meters.failure[kind.index()]
        };
        meter.record(now_millis());
    }
}

fn merge(into: &mut Meter, from: &Meter) {
    for (slot, (minute, count)) in into.minutes.iter_mut().zip(&from.minutes) {
        if *minute == i64::MIN {
            continue;
        }
        if slot.0 != *minute {
            *slot = (*minute, 0);
        }
        slot.1 += count;
    }
    into.last_at = into.last_at.max(from.last_at);
}

fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adapter_gauges_keep_the_last_value_per_labels() {
        let metrics = ConnectionMetrics::new("c1", vec![], vec![]);
        metrics.gauge(
            "kafka_consumer_lag",
            &[("topic", "t"), ("partition", "0")],
            5.0,
        );
        metrics.gauge(
            "kafka_consumer_lag",
            &[("topic", "t"), ("partition", "1")],
            2.0,
        );
        metrics.gauge(
            "kafka_consumer_lag",
            &[("topic", "t"), ("partition", "0")],
            0.0,
        );
        let json = metrics.json("c1");
        assert_eq!(
            json["adapterMetrics"]["kafka_consumer_lag"],
            serde_json::json!([
                {"labels": {"topic": "t", "partition": "0"}, "value": 0.0},
                {"labels": {"topic": "t", "partition": "1"}, "value": 2.0},
            ])
        );
    }

    #[test]
    fn windows_and_shape() {
        let mut meter = Meter::default();
        let now = 1_000 * 60_000;
        meter.record(now - 2 * 60 * 60_000); // two hours ago
        meter.record(now - 30 * 60_000); // half an hour ago
        meter.record(now);
        assert_eq!(meter.within(now, 1), 1);
        assert_eq!(meter.within(now, 60), 2);
        assert_eq!(meter.within(now, MINUTES as i64), 3);
        let metrics =
            ConnectionMetrics::new("c1", vec!["q".into()], vec!["events/{{ thing:id }}".into()]);
        metrics.source(0, Kind::Consumed, true);
        metrics.source(0, Kind::Mapped, false);
        metrics.target(0, Kind::Published, true);
        let json = metrics.json("c1");
        assert_eq!(json["containsFailures"], true);
        assert_eq!(
            json["connectionMetrics"]["inbound"]["consumed"]["success"]["PT1M"],
            1
        );
        assert_eq!(
            json["sourceMetrics"]["addressMetrics"]["q"]["mapped"]["failure"]["PT24H"],
            1
        );
        assert_eq!(
            json["targetMetrics"]["addressMetrics"]["events/{{ thing:id }}"]["published"]
                ["success"]["PT1H"],
            1
        );
        assert!(
            json["connectionMetrics"]["outbound"]["published"]["success"]["lastMessageAt"]
                .is_string()
        );
        assert_eq!(metrics.total(Kind::Consumed, true), 1);
    }
}
