//! Vault's in-memory sink (go-metrics' `InmemSink` as Vault sets it up:
//! 10-second intervals, one minute kept), which the JSON form of
//! `sys/metrics` shows: the counters and samples of the last finished
//! interval (the current one while it is the only one), each aggregated
//! as Count, Rate (per second), Sum, Min, Max, Mean and Stddev.

use super::Gauge;
use metrics::Key;
use serde_json::{Map, Value, json};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// go-metrics' interval and retention as Vault configures them.
const INTERVAL: Duration = Duration::from_secs(10);
const KEPT: usize = 6;

pub struct Inmem {
    intervals: Mutex<VecDeque<Interval>>,
}

struct Interval {
    /// Seconds since the epoch, a multiple of the interval.
    start: u64,
    counters: HashMap<Key, Aggregate>,
    samples: HashMap<Key, Aggregate>,
}

/// go-metrics' `AggregateSample`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Aggregate {
    count: u64,
    sum: f64,
    sum_sq: f64,
    min: f64,
    max: f64,
}

impl Aggregate {
    fn ingest(&mut self, v: f64) {
        self.count += 1;
        self.sum += v;
        self.sum_sq += v * v;
        if self.count == 1 || v < self.min {
            self.min = v;
        }
        if self.count == 1 || v > self.max {
            self.max = v;
        }
    }

    fn mean(&self) -> f64 {
        match self.count {
            0 => 0.0,
            n => self.sum / n as f64,
        }
    }

    /// The sample standard deviation, as go-metrics computes it.
    fn stddev(&self) -> f64 {
        let n = self.count as f64;
        let div = n * (n - 1.0);
        if div == 0.0 {
            return 0.0;
        }
        ((n * self.sum_sq - self.sum * self.sum) / div).max(0.0).sqrt()
    }
}

fn seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl Inmem {
    pub fn new() -> Inmem {
        Inmem {
            intervals: Mutex::new(VecDeque::new()),
        }
    }

    /// The interval `now` falls in, made (and the oldest dropped) if new.
    fn current(intervals: &mut VecDeque<Interval>, now: SystemTime) -> &mut Interval {
        let start = seconds(now) / INTERVAL.as_secs() * INTERVAL.as_secs();
        if intervals.back().is_none_or(|i| i.start < start) {
            intervals.push_back(Interval {
                start,
                counters: HashMap::new(),
                samples: HashMap::new(),
            });
            while intervals.len() > KEPT {
                intervals.pop_front();
            }
        }
        // Pushed above when empty.
        let last = intervals.len() - 1;
        &mut intervals[last]
    }

    fn ingest(&self, key: &Key, v: f64, counter: bool, now: SystemTime) {
        let mut intervals = self.intervals.lock().unwrap_or_else(|p| p.into_inner());
        let interval = Self::current(&mut intervals, now);
        let map = match counter {
            true => &mut interval.counters,
            false => &mut interval.samples,
        };
        match map.get_mut(key) {
            Some(agg) => agg.ingest(v),
            None => {
                let mut agg = Aggregate::default();
                agg.ingest(v);
                map.insert(key.clone(), agg);
            }
        }
    }

    pub fn counter(&self, key: &Key, v: f64) {
        self.ingest(key, v, true, SystemTime::now());
    }

    pub fn sample(&self, key: &Key, v: f64) {
        self.ingest(key, v, false, SystemTime::now());
    }

    /// go-metrics' `DisplayMetrics`: the last finished interval's counters
    /// and samples (the current interval's when it is the only one),
    /// `gauges` as read now; each list sorted by name and labels.
    pub fn display(&self, gauges: &[Gauge], now: SystemTime) -> Value {
        let mut intervals = self.intervals.lock().unwrap_or_else(|p| p.into_inner());
        Self::current(&mut intervals, now);
        let n = intervals.len();
        let shown = &intervals[if n >= 2 { n - 2 } else { n - 1 }];
        let start = UNIX_EPOCH
            .checked_add(Duration::from_secs(shown.start))
            .unwrap_or(UNIX_EPOCH);
        let timestamp = chrono::DateTime::<chrono::Utc>::from(start)
            .format("%Y-%m-%d %H:%M:%S +0000 UTC")
            .to_string();
        let mut gauge_list: Vec<(String, Value)> = gauges
            .iter()
            .map(|g| {
                let labels: Map<String, Value> = g
                    .labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), Value::String(v.clone())))
                    .collect();
                let hash = sort_key(&g.name, g.labels.iter().map(|(k, v)| (*k, v.as_str())));
                (hash, json!({"Name": g.name, "Value": g.value, "Labels": labels}))
            })
            .collect();
        gauge_list.sort_by(|a, b| a.0.cmp(&b.0));
        json!({
            "Timestamp": timestamp,
            "Gauges": gauge_list.into_iter().map(|(_, v)| v).collect::<Vec<_>>(),
            "Points": [],
            "Counters": sampled(&shown.counters),
            "Samples": sampled(&shown.samples),
        })
    }
}

/// go-metrics' hash of a series: its name, then `;label=value` each.
fn sort_key<'a>(name: &str, labels: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let mut out = name.to_string();
    for (k, v) in labels {
        out.push(';');
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// go-metrics' `SampledValue`s of one map, sorted as it sorts them.
fn sampled(map: &HashMap<Key, Aggregate>) -> Vec<Value> {
    let rate_denominator = INTERVAL.as_secs_f64();
    let mut out: Vec<(String, Value)> = map
        .iter()
        .map(|(key, agg)| {
            let labels: Map<String, Value> = key
                .labels()
                .map(|l| (l.key().to_string(), Value::String(l.value().to_string())))
                .collect();
            let hash = sort_key(key.name(), key.labels().map(|l| (l.key(), l.value())));
            let value = json!({
                "Name": key.name(),
                "Count": agg.count,
                "Rate": agg.sum / rate_denominator,
                "Sum": agg.sum,
                "Min": agg.min,
                "Max": agg.max,
                "Mean": agg.mean(),
                "Stddev": agg.stddev(),
                "Labels": labels,
            });
            (hash, value)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out.into_iter().map(|(_, v)| v).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use metrics::Label;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn aggregates_as_go_metrics() {
        let mut a = Aggregate::default();
        for v in [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0] {
            a.ingest(v);
        }
        assert_eq!((a.count, a.sum, a.min, a.max), (8, 40.0, 2.0, 9.0));
        assert_eq!(a.mean(), 5.0);
        // The sample standard deviation: sqrt(32 / 7).
        assert!((a.stddev() - (32.0f64 / 7.0).sqrt()).abs() < 1e-12);
        let mut one = Aggregate::default();
        one.ingest(3.0);
        assert_eq!(one.stddev(), 0.0);
    }

    #[test]
    fn shows_the_last_finished_interval() {
        let sink = Inmem::new();
        let key = Key::from_parts("warden.http.requests", vec![Label::new("code", "200")]);
        sink.ingest(&key, 1.0, true, at(1_000_001));
        sink.ingest(&key, 1.0, true, at(1_000_002));
        // Only the current interval: it is shown.
        let shown = sink.display(&[], at(1_000_003));
        assert_eq!(shown["Counters"][0]["Count"], 2);
        assert_eq!(shown["Timestamp"], "1970-01-12 13:46:40 +0000 UTC");
        // A new interval started: the finished one is shown, not the new one.
        sink.ingest(&key, 5.0, true, at(1_000_011));
        let shown = sink.display(&[], at(1_000_012));
        let counter = &shown["Counters"][0];
        assert_eq!(counter["Name"], "warden.http.requests");
        assert_eq!(counter["Labels"], json!({"code": "200"}));
        assert_eq!(
            (counter["Count"].clone(), counter["Sum"].clone()),
            (json!(2), json!(2.0))
        );
        assert_eq!(counter["Rate"], 0.2);
        assert_eq!(shown["Points"], json!([]));
        assert_eq!(shown["Samples"], json!([]));
        // Only a minute is kept.
        for i in 0..10u64 {
            sink.ingest(&key, 1.0, false, at(1_000_020 + i * 10));
        }
        assert_eq!(sink.intervals.lock().unwrap().len(), KEPT);
    }

    #[test]
    fn gauges_are_sorted_and_carry_their_labels() {
        let sink = Inmem::new();
        let gauges = [
            Gauge::new("warden.expire.num_leases", 3.0).label("mount_point", "z/"),
            Gauge::new("warden.expire.num_leases", 1.0).label("mount_point", "a/"),
            Gauge::new("vault.core.unsealed", 1.0),
        ];
        let shown = sink.display(&gauges, at(5));
        assert_eq!(
            shown["Gauges"],
            json!([
                {"Name": "vault.core.unsealed", "Value": 1.0, "Labels": {}},
                {"Name": "warden.expire.num_leases", "Value": 1.0, "Labels": {"mount_point": "a/"}},
                {"Name": "warden.expire.num_leases", "Value": 3.0, "Labels": {"mount_point": "z/"}},
            ])
        );
    }
}
