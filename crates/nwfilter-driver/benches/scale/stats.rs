//! Order statistics of a handful of samples: median and quartiles, as the
//! pps part reports them (a mean would let one disturbed run move it).

/// Median, quartiles and extremes of some samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    pub min: f64,
    pub q1: f64,
    pub median: f64,
    pub q3: f64,
    pub max: f64,
}

impl Spread {
    /// `None` for no samples.
    pub fn of(samples: &[f64]) -> Option<Spread> {
        if samples.is_empty() {
            return None;
        }
        let mut v = samples.to_vec();
        v.sort_by(f64::total_cmp);
        Some(Spread {
            min: v[0],
            q1: quantile(&v, 0.25),
            median: quantile(&v, 0.5),
            q3: quantile(&v, 0.75),
            max: v[v.len() - 1],
        })
    }

    /// A distribution-free ~95 % confidence interval of the median: the
    /// order statistics at ranks n/2 − 0.98·√n and n/2 + 1 + 0.98·√n,
    /// rounded (the normal approximation of the binomial; for 30 samples
    /// the 10th and 21st). `None` below 6
    /// samples: there even the whole range covers the median less surely.
    pub fn median_ci(samples: &[f64]) -> Option<(f64, f64)> {
        let n = samples.len();
        if n < 6 {
            return None;
        }
        let mut v = samples.to_vec();
        v.sort_by(f64::total_cmp);
        let half = 0.98 * (n as f64).sqrt();
        let lo = (n as f64 / 2.0 - half).round().max(1.0) as usize;
        let hi = (n as f64 / 2.0 + half + 1.0).round().min(n as f64) as usize;
        Some((v[lo - 1], v[hi - 1]))
    }

    /// The interquartile range as a percentage of the median.
    pub fn iqr_percent(&self) -> f64 {
        (self.q3 - self.q1) / self.median * 100.0
    }
}

/// Linear interpolation between the closest ranks of sorted `v`.
fn quantile(v: &[f64], p: f64) -> f64 {
    let pos = p * (v.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
}
