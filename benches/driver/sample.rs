//! Latency samples and their percentiles.

use std::time::Duration;

#[derive(Debug, Default, Clone)]
pub struct Samples(Vec<Duration>);

impl Samples {
    pub fn push(&mut self, d: Duration) {
        self.0.push(d);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Nearest-rank percentile (`p` in 0..=100); None without samples.
    pub fn percentile(&self, p: f64) -> Option<Duration> {
        if self.0.is_empty() {
            return None;
        }
        let mut v = self.0.clone();
        v.sort();
        let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
        Some(v[rank.clamp(1, v.len()) - 1])
    }

    pub fn p50(&self) -> Option<Duration> {
        self.percentile(50.0)
    }

    pub fn p99(&self) -> Option<Duration> {
        self.percentile(99.0)
    }
}

/// Median of plain numbers (ratios); None when empty.
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

pub fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// "p50 / p99" of a sample set, in milliseconds.
pub fn p50_p99(s: &Samples) -> String {
    match (s.p50(), s.p99()) {
        (Some(a), Some(b)) => format!("{} / {}", ms(a), ms(b)),
        _ => "no samples".into(),
    }
}

pub fn self_check() -> Result<(), String> {
    let mut s = Samples::default();
    for i in 1..=100 {
        s.push(Duration::from_millis(i));
    }
    if s.p50() != Some(Duration::from_millis(50)) || s.p99() != Some(Duration::from_millis(99)) {
        return Err(format!("percentiles: p50 {:?} p99 {:?}", s.p50(), s.p99()));
    }
    if median(&[3.0, 1.0, 2.0]) != Some(2.0) || median(&[1.0, 2.0]) != Some(1.5) {
        return Err("median of small sets".into());
    }
    Ok(())
}
