//! Tables for people, JSON lines for machines, and the DESIGN.md targets checked.

use std::fmt::Write as _;
use std::time::Duration;

use crate::cases::Value;

/// Every figure of one run: (runtime, case, system) → the value of each round.
#[derive(Default)]
pub(crate) struct Report {
    rows: Vec<Row>,
}

pub(crate) struct Row {
    pub(crate) runtime: &'static str,
    pub(crate) case: &'static str,
    pub(crate) system: &'static str,
    pub(crate) rounds: Vec<Value>,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn median_d(v: Vec<Duration>) -> Duration {
    Duration::from_secs_f64(median(v.iter().map(Duration::as_secs_f64).collect()))
}

/// The median of the rounds of one row.
pub(crate) fn summary(rounds: &[Value]) -> Value {
    match &rounds[0] {
        Value::Rate(_) => Value::Rate(median(rounds.iter().map(rate).collect())),
        Value::Latency { n, .. } => Value::Latency {
            p50: median_d(rounds.iter().map(p50).collect()),
            p99: median_d(rounds.iter().map(p99).collect()),
            n: *n,
        },
        Value::Hol { n, .. } => {
            let field = |f: fn(&Value) -> f64| median(rounds.iter().map(f).collect());
            Value::Hol {
                p50: median_d(rounds.iter().map(p50).collect()),
                p99: median_d(rounds.iter().map(p99).collect()),
                n: *n,
                bulk: field(|v| if let Value::Hol { bulk, .. } = v { *bulk } else { 0.0 }),
                solo: field(|v| if let Value::Hol { solo, .. } = v { *solo } else { 0.0 }),
            }
        }
        Value::Calls { n, .. } => Value::Calls {
            rate: median(rounds.iter().map(rate).collect()),
            p50: median_d(rounds.iter().map(p50).collect()),
            p99: median_d(rounds.iter().map(p99).collect()),
            n: *n,
        },
        Value::Memory { items, .. } => Value::Memory {
            per_item: median(
                rounds
                    .iter()
                    .map(|v| if let Value::Memory { per_item, .. } = v { *per_item } else { 0.0 })
                    .collect(),
            ),
            items: *items,
        },
    }
}

fn rate(v: &Value) -> f64 {
    match v {
        Value::Rate(r) | Value::Calls { rate: r, .. } => *r,
        _ => 0.0,
    }
}

fn p50(v: &Value) -> Duration {
    match v {
        Value::Latency { p50, .. } | Value::Hol { p50, .. } | Value::Calls { p50, .. } => *p50,
        _ => Duration::ZERO,
    }
}

fn p99(v: &Value) -> Duration {
    match v {
        Value::Latency { p99, .. } | Value::Hol { p99, .. } | Value::Calls { p99, .. } => *p99,
        _ => Duration::ZERO,
    }
}

fn us(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

impl Report {
    pub(crate) fn add(
        &mut self,
        runtime: &'static str,
        case: &'static str,
        system: &'static str,
        value: Value,
    ) {
        match self
            .rows
            .iter_mut()
            .find(|r| r.runtime == runtime && r.case == case && r.system == system)
        {
            Some(row) => row.rounds.push(value),
            None => self.rows.push(Row { runtime, case, system, rounds: vec![value] }),
        }
    }

    pub(crate) fn has(&self, runtime: &str, case: &str) -> bool {
        self.rows.iter().any(|r| r.runtime == runtime && r.case == case)
    }

    pub(crate) fn get(&self, runtime: &str, case: &str, system: &str) -> Option<Value> {
        self.rows
            .iter()
            .find(|r| r.runtime == runtime && r.case == case && r.system == system)
            .map(|r| summary(&r.rounds))
    }

    /// The table of one case on one runtime.
    pub(crate) fn table(&self, runtime: &'static str, case: &'static str, title: &str) -> String {
        let rows: Vec<&Row> =
            self.rows.iter().filter(|r| r.runtime == runtime && r.case == case).collect();
        let mut out =
            format!("\n{title}  [{runtime}, median of {} round(s)]\n", rows[0].rounds.len());
        let raw = self.get(runtime, case, "raw-batch");
        let yamux = self.get(runtime, case, "yamux");
        let raw_echo = self.get(runtime, "echo", "raw");
        for row in rows {
            let v = summary(&row.rounds);
            let _ = match &v {
                Value::Rate(r) => {
                    let unit = if case.starts_with("small") {
                        format!("{:>10.3} M msg/s", r / 1e6)
                    } else {
                        format!("{:>10.0} MB/s", r / 1e6)
                    };
                    let vs = |other: &Option<Value>, name: &str| match other {
                        Some(o) if rate(o) > 0.0 => format!("  {:>5.2}x {name}", r / rate(o)),
                        _ => String::new(),
                    };
                    writeln!(
                        out,
                        "  {:<12}{unit}{}{}",
                        row.system,
                        vs(&raw, "raw-batch"),
                        vs(&yamux, "yamux")
                    )
                }
                Value::Latency { p50: a, p99: b, n } => {
                    let vs_raw = match (&raw_echo, case) {
                        (Some(e), "echo" | "open") if p50(e) > Duration::ZERO => {
                            format!("  p50 {:.2}x raw echo", a.as_secs_f64() / p50(e).as_secs_f64())
                        }
                        _ => String::new(),
                    };
                    writeln!(
                        out,
                        "  {:<12}p50 {:>8}  p99 {:>8}  ({n} samples){vs_raw}",
                        row.system,
                        us(*a),
                        us(*b)
                    )
                }
                Value::Hol { p50: a, p99: b, n, bulk, solo } => {
                    let idle = self.get(
                        runtime,
                        "echo",
                        if row.system == "raw-2conn" { "raw" } else { row.system },
                    );
                    let vs_idle = match idle {
                        Some(i) if p50(&i) > Duration::ZERO => {
                            format!("  p50 {:.1}x idle", a.as_secs_f64() / p50(&i).as_secs_f64())
                        }
                        _ => String::new(),
                    };
                    writeln!(
                        out,
                        "  {:<12}echo p50 {:>8}  p99 {:>8}  ({n}){vs_idle};  bulk {:.0} MB/s = {:.2}x its solo {:.0} MB/s",
                        row.system,
                        us(*a),
                        us(*b),
                        bulk / 1e6,
                        bulk / solo,
                        solo / 1e6
                    )
                }
                Value::Memory { per_item, items } => {
                    writeln!(
                        out,
                        "  {:<12}{:>10.0} bytes each ({items} items)",
                        row.system, per_item
                    )
                }
                Value::Calls { rate: r, p50: a, p99: b, n } => {
                    // wsmux-N beside raw-N: the same number in flight.
                    let raw = row.system.replace("wsmux", "raw");
                    let vs = match self.get(runtime, case, &raw) {
                        Some(o) if rate(&o) > 0.0 => format!("  {:.2}x {raw}", r / rate(&o)),
                        _ => String::new(),
                    };
                    writeln!(
                        out,
                        "  {:<12}{:>8.0} /s  p50 {:>8}  p99 {:>8}  ({n}){vs}",
                        row.system,
                        r,
                        us(*a),
                        us(*b)
                    )
                }
            };
        }
        out
    }

    /// One JSON object per line for each (runtime, case, system).
    pub(crate) fn json_lines(&self) -> String {
        let mut out = String::new();
        for row in &self.rows {
            let fields = match summary(&row.rounds) {
                Value::Rate(r) => format!("\"per_second\":{r:.1}"),
                Value::Latency { p50, p99, n } => {
                    format!("\"p50_us\":{:.1},\"p99_us\":{:.1},\"samples\":{n}", p50.as_secs_f64() * 1e6, p99.as_secs_f64() * 1e6)
                }
                Value::Hol { p50, p99, n, bulk, solo } => format!(
                    "\"p50_us\":{:.1},\"p99_us\":{:.1},\"samples\":{n},\"bulk_bytes_per_second\":{bulk:.1},\"solo_bytes_per_second\":{solo:.1}",
                    p50.as_secs_f64() * 1e6,
                    p99.as_secs_f64() * 1e6
                ),
                Value::Memory { per_item, items } => format!("\"bytes_per_item\":{per_item:.1},\"items\":{items}"),
                Value::Calls { rate, p50, p99, n } => format!(
                    "\"per_second\":{rate:.1},\"p50_us\":{:.1},\"p99_us\":{:.1},\"samples\":{n}",
                    p50.as_secs_f64() * 1e6,
                    p99.as_secs_f64() * 1e6
                ),
            };
            let _ = writeln!(
                out,
                "{{\"runtime\":\"{}\",\"case\":\"{}\",\"system\":\"{}\",\"rounds\":{},{fields}}}",
                row.runtime,
                row.case,
                row.system,
                row.rounds.len()
            );
        }
        out
    }

    /// DESIGN.md section 7's targets, each with its figure and whether it is met.
    pub(crate) fn targets(&self, runtime: &'static str) -> String {
        let mut out = format!("\nTargets (DESIGN.md section 7) [{runtime}]\n");
        let mut check = |name: String, ok: Option<bool>| {
            let mark = match ok {
                Some(true) => "met   ",
                Some(false) => "MISSED",
                None => "n/a   ",
            };
            let _ = writeln!(out, "  {mark} {name}");
        };
        let ratio = |case: &str, a: &str, b: &str| -> Option<f64> {
            let (x, y) = (rate(&self.get(runtime, case, a)?), rate(&self.get(runtime, case, b)?));
            (y > 0.0).then(|| x / y)
        };
        for case in ["bulk-16k", "bulk-1m", "bulk-64ch"] {
            let r = ratio(case, "wsmux", "raw-batch");
            check(
                format!("{case}: wsmux >= 0.9x raw batched ({})", fmt_ratio(r)),
                r.map(|r| r >= 0.9),
            );
            let y = ratio(case, "wsmux", "yamux");
            check(format!("{case}: wsmux >= 1.8x yamux ({})", fmt_ratio(y)), y.map(|r| r >= 1.8));
        }
        let s = ratio("small-64ch", "wsmux", "raw-batch");
        check(
            format!("small-64ch: wsmux >= 0.5x raw batched ({})", fmt_ratio(s)),
            s.map(|r| r >= 0.5),
        );
        let lat =
            |case: &str, sys: &str| self.get(runtime, case, sys).map(|v| p50(&v).as_secs_f64());
        let e = lat("echo", "wsmux").zip(lat("echo", "raw")).map(|(w, r)| w / r);
        check(format!("echo: wsmux p50 <= 1.1x raw ({})", fmt_ratio(e)), e.map(|r| r <= 1.1));
        if let (Some(Value::Hol { p50: h50, p99: h99, bulk, solo, .. }), Some(idle)) =
            (self.get(runtime, "hol", "wsmux"), lat("echo", "wsmux"))
        {
            let r = h50.as_secs_f64() / idle;
            check(format!("hol: echo p50 <= 3x idle ({r:.2}x)"), Some(r <= 3.0));
            check(
                format!("hol: echo p99 <= 1 ms ({})", us(h99)),
                Some(h99 <= Duration::from_millis(1)),
            );
            check(
                format!("hol: bulk >= 0.8x solo ({:.2}x)", bulk / solo),
                Some(bulk / solo >= 0.8),
            );
        } else {
            check("hol".into(), None);
        }
        let o = lat("open", "wsmux").zip(lat("echo", "raw")).map(|(w, r)| w / r);
        check(
            format!("open: wsmux open+echo p50 <= 1.2x raw echo ({})", fmt_ratio(o)),
            o.map(|r| r <= 1.2),
        );
        let n = lat("open", "new-conn").zip(lat("open", "wsmux")).map(|(c, w)| c / w);
        check(
            format!("open: >= 2.5x faster than a new connection ({})", fmt_ratio(n)),
            n.map(|r| r >= 2.5),
        );
        let u = ratio("rpc", "wsmux-1", "raw-1");
        check(
            format!("rpc: unary rate at 1 in flight >= 0.8x raw echo ({})", fmt_ratio(u)),
            u.map(|r| r >= 0.8),
        );
        let mem = |case: &str, sys: &str| match self.get(runtime, case, sys) {
            Some(Value::Memory { per_item, .. }) => Some(per_item),
            _ => None,
        };
        let c = mem("mem-channels", "wsmux");
        check(
            format!(
                "memory: <= 1 KiB per idle channel ({})",
                c.map_or("n/a".into(), |b| format!("{b:.0} B, both ends"))
            ),
            c.map(|b| b <= 1024.0),
        );
        let k = mem("mem-connections", "wsmux");
        check(
            format!(
                "memory: <= 64 KiB per idle connection ({})",
                k.map_or("n/a".into(), |b| format!("{:.1} KiB", b / 1024.0))
            ),
            k.map(|b| b <= 65536.0),
        );
        out
    }
}

fn fmt_ratio(r: Option<f64>) -> String {
    r.map_or("n/a".into(), |r| format!("{r:.2}x"))
}
