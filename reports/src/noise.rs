//! Telling a change from noise: the statistics of repeated runs.
//!
//! Two runs of one commit differ — a `smoke` pair was seen 42% apart at e2e
//! p99 — so one run a side cannot say whether a metric moved. With several
//! runs a side ([`crate::aggregate`]) this module gives, per metric:
//!
//! - [`Summary`]: the runs' values, their median, minimum and maximum, and
//!   a distribution-free confidence interval of the median from order
//!   statistics ([`median_ci`]: the interval between the k-th smallest and
//!   k-th largest value covers the true median with a probability the
//!   binomial distribution gives, whatever the metric's distribution);
//! - [`mann_whitney`]: the two-sided p-value of the Mann–Whitney U test
//!   (Wilcoxon rank-sum) that the two sets come from one distribution.
//!   Exact (the permutation distribution of U, counted) when the sets hold
//!   no ties and are small; otherwise the normal approximation with the
//!   tie correction and a continuity correction, as statistics packages
//!   (SciPy's `mannwhitneyu`, R's `wilcox.test`) compute it.
//!
//! Rank tests suit benchmark numbers: they need no normality, and one slow
//! outlier run moves a rank by one, not the mean by a lot. Their limit is
//! the sample size: with three runs a side no result can be significant at
//! α = 0.05 (the smallest two-sided exact p is 0.1), so
//! [`min_runs_for`] says how many each side needs, and a comparison with
//! fewer says its verdict is weak.
//!
//! Pure arithmetic on small slices; no I/O.

/// The runs' values of one metric, summarised.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    /// Each run's value, in run order.
    pub values: Vec<f64>,
    /// Their median (the mean of the middle two for an even count).
    pub median: f64,
    /// The smallest value.
    pub min: f64,
    /// The largest value.
    pub max: f64,
    /// The confidence interval of the median, `[low, high]` ([`median_ci`]).
    pub ci: [f64; 2],
    /// The interval's coverage, e.g. 0.961 for 9 runs; below 0.95 when
    /// there are too few runs for 95% (5 or fewer: then it is `[min, max]`).
    pub ci_level: f64,
}

impl Summary {
    /// The summary of `values`; `None` when empty or when one is not finite.
    pub fn of(values: &[f64]) -> Option<Summary> {
        if values.is_empty() || values.iter().any(|v| !v.is_finite()) {
            return None;
        }
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let (ci, ci_level) = median_ci(&sorted, 0.95);
        Some(Summary {
            values: values.to_vec(),
            median: median_sorted(&sorted),
            min: sorted[0],
            max: sorted[sorted.len() - 1],
            ci,
            ci_level,
        })
    }

    /// `(max − min) / |median|` in percent: how far apart the runs were.
    pub fn spread_pct(&self) -> Option<f64> {
        (self.median != 0.0).then(|| (self.max - self.min) / self.median.abs() * 100.0)
    }
}

/// The median of sorted `v` (not empty).
fn median_sorted(v: &[f64]) -> f64 {
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
}

/// The distribution-free confidence interval of the median of sorted `v`
/// (not empty): `[v(k), v(n+1−k)]` for the largest k whose coverage
/// `1 − 2·P(B ≤ k−1)`, B ~ Binomial(n, ½), is at least `level`; with too
/// few values for `level`, `[min, max]` and its own coverage `1 − 2·½ⁿ`.
/// Returns the interval and its coverage.
pub fn median_ci(v: &[f64], level: f64) -> ([f64; 2], f64) {
    let n = v.len();
    // P(B ≤ j) for j = 0..n, B ~ Binomial(n, ½).
    let mut cdf = Vec::with_capacity(n + 1);
    let mut coeff = 1.0f64;
    let mut sum = 0.0;
    let half_n = 0.5f64.powi(i32::try_from(n).unwrap_or(i32::MAX));
    for j in 0..=n {
        if j > 0 {
            coeff *= (n + 1 - j) as f64 / j as f64;
        }
        sum += coeff * half_n;
        cdf.push(sum);
    }
    let coverage = |k: usize| 1.0 - 2.0 * cdf[k - 1];
    let mut k = 1;
    while k < n.div_ceil(2) && coverage(k + 1) >= level {
        k += 1;
    }
    ([v[k - 1], v[n - k]], if n == 1 { 0.0 } else { coverage(k) })
}

/// The two-sided p-value of the Mann–Whitney U test of `a` against `b`
/// (both non-empty, finite): the probability, were both drawn from one
/// distribution, of a U at least as far from its mean as the one seen.
pub fn mann_whitney(a: &[f64], b: &[f64]) -> f64 {
    let (n1, n2) = (a.len(), b.len());
    let mut all: Vec<(f64, usize)> = a.iter().map(|&v| (v, 0)).chain(b.iter().map(|&v| (v, 1))).collect();
    all.sort_by(|x, y| x.0.total_cmp(&y.0));
    // Mid-ranks, and Σ(t³ − t) over the groups of ties.
    let mut rank_sum_a = 0.0;
    let mut ties = 0.0;
    let mut i = 0;
    while i < all.len() {
        let mut j = i + 1;
        while j < all.len() && all[j].0 == all[i].0 {
            j += 1;
        }
        let rank = (i + j + 1) as f64 / 2.0;
        rank_sum_a += rank * all[i..j].iter().filter(|x| x.1 == 0).count() as f64;
        let t = (j - i) as f64;
        ties += t * t * t - t;
        i = j;
    }
    let u = rank_sum_a - (n1 * (n1 + 1)) as f64 / 2.0;
    let (n1f, n2f) = (n1 as f64, n2 as f64);
    let mean = n1f * n2f / 2.0;
    if ties == 0.0 && n1 * n2 <= EXACT_MAX_CELLS {
        return exact_two_sided(n1, n2, u);
    }
    let n = n1f + n2f;
    let variance = n1f * n2f / 12.0 * ((n + 1.0) - ties / (n * (n - 1.0)));
    if variance <= 0.0 {
        // Every value equal: no evidence of any difference.
        return 1.0;
    }
    let z = ((u - mean).abs() - 0.5).max(0.0) / variance.sqrt();
    (2.0 * normal_upper_tail(z)).min(1.0)
}

/// Up to this many (n1·n2) the exact distribution of U is counted.
const EXACT_MAX_CELLS: usize = 400;

/// `P(|U − mean| ≥ |u − mean|)` under the null, from the exact distribution:
/// the number of ways `n1` ranks out of `n1 + n2` give each U, counted by
/// the recurrence c(n1, n2, u) = c(n1 − 1, n2, u − n2) + c(n1, n2 − 1, u).
fn exact_two_sided(n1: usize, n2: usize, u: f64) -> f64 {
    let max_u = n1 * n2;
    // counts[j][k]: the distribution of U for (i, j) at the current i.
    let mut counts: Vec<Vec<f64>> = (0..=n2).map(|_| vec![1.0]).collect();
    for i in 1..=n1 {
        let mut next: Vec<Vec<f64>> = Vec::with_capacity(n2 + 1);
        next.push(vec![1.0]);
        for j in 1..=n2 {
            let mut row = vec![0.0; i * j + 1];
            for (k, slot) in row.iter_mut().enumerate() {
                // The largest of the i + j values is an `a` (U grows by j) or a `b`.
                let from_a = if k >= j { counts[j].get(k - j).copied().unwrap_or(0.0) } else { 0.0 };
                let from_b = next[j - 1].get(k).copied().unwrap_or(0.0);
                *slot = from_a + from_b;
            }
            next.push(row);
        }
        counts = next;
    }
    let dist = &counts[n2];
    let total: f64 = dist.iter().sum();
    let mean = max_u as f64 / 2.0;
    let far = (u - mean).abs();
    let tail: f64 =
        dist.iter().enumerate().filter(|(k, _)| (*k as f64 - mean).abs() >= far - 1e-9).map(|(_, c)| c).sum();
    (tail / total).min(1.0)
}

/// `P(Z ≥ z)` for a standard normal Z (Abramowitz–Stegun 7.1.26 through
/// erfc; absolute error below 1.5e-7, plenty for a p-value).
fn normal_upper_tail(z: f64) -> f64 {
    let x = z / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs());
    let poly =
        t * (0.254_829_592 + t * (-0.284_496_736 + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erfc = poly * (-x * x).exp();
    if x >= 0.0 { erfc / 2.0 } else { 1.0 - erfc / 2.0 }
}

/// The fewest runs each side needs (equal sides) before an exact two-sided
/// Mann–Whitney test can reach `alpha` at all: 4 for α = 0.05.
pub fn min_runs_for(alpha: f64) -> usize {
    (1..=20).find(|&n| 2.0 / binomial(2 * n, n) < alpha).unwrap_or(21)
}

/// n choose k, as a float.
fn binomial(n: usize, k: usize) -> f64 {
    (0..k).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_is_median_range_and_an_order_statistic_interval() {
        let s = Summary::of(&[5.0, 1.0, 3.0]).unwrap();
        assert_eq!((s.median, s.min, s.max), (3.0, 1.0, 5.0));
        assert_eq!(s.ci, [1.0, 5.0], "three runs: the interval is the range");
        assert!((s.ci_level - 0.75).abs() < 1e-12, "1 − 2·(½)³: {}", s.ci_level);
        assert_eq!(Summary::of(&[1.0, 2.0, 3.0, 4.0]).unwrap().median, 2.5);
        assert!(Summary::of(&[]).is_none());
        assert!(Summary::of(&[1.0, f64::NAN]).is_none());
        assert_eq!(Summary::of(&[2.0, 4.0]).unwrap().spread_pct(), Some(2.0 / 3.0 * 100.0));
    }

    #[test]
    fn the_median_interval_has_the_binomial_coverage() {
        // n = 9: [x(2), x(8)] covers with 1 − 2·P(B ≤ 1) = 1 − 2·10/512 = 0.9609.
        let v: Vec<f64> = (1..=9).map(f64::from).collect();
        let (ci, level) = median_ci(&v, 0.95);
        assert_eq!(ci, [2.0, 8.0]);
        assert!((level - (1.0 - 20.0 / 512.0)).abs() < 1e-12, "{level}");
        // n = 20: k = 6, coverage 0.9586 (tables of the sign test).
        let v: Vec<f64> = (1..=20).map(f64::from).collect();
        let (ci, level) = median_ci(&v, 0.95);
        assert_eq!(ci, [6.0, 15.0]);
        assert!((level - 0.958_610_5).abs() < 1e-6, "{level}");
    }

    #[test]
    fn exact_p_values_match_the_published_tables() {
        // Complete separation, 3 v 3: U = 0, p = 2/20 (SciPy: 0.1).
        assert!((mann_whitney(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]) - 0.1).abs() < 1e-12);
        // 5 v 5 separated: 2/252.
        let a = [1.0, 2.0, 3.0, 4.0, 5.0];
        let b = [6.0, 7.0, 8.0, 9.0, 10.0];
        assert!((mann_whitney(&a, &b) - 2.0 / 252.0).abs() < 1e-12);
        assert!((mann_whitney(&b, &a) - 2.0 / 252.0).abs() < 1e-12, "symmetric");
        // SciPy mannwhitneyu([1,3,5,7,9],[2,4,6,8,10], method='exact'): U = 10, p = 0.6904761904761905.
        assert!(
            (mann_whitney(&[1.0, 3.0, 5.0, 7.0, 9.0], &[2.0, 4.0, 6.0, 8.0, 10.0]) - 0.690_476_190_476_190_5).abs()
                < 1e-12
        );
        // Interleaved perfectly: p = 1.
        assert!((mann_whitney(&[1.0, 4.0], &[2.0, 3.0]) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn ties_use_the_corrected_normal_approximation() {
        // SciPy mannwhitneyu([1,2,2,3,3,3],[3,4,4,5,5,6], method='asymptotic',
        // use_continuity=True): U = 1.5, p = 0.008732768512539242 (SciPy 1.x).
        let p = mann_whitney(&[1.0, 2.0, 2.0, 3.0, 3.0, 3.0], &[3.0, 4.0, 4.0, 5.0, 5.0, 6.0]);
        assert!((p - 0.008_732_768_512_539_242).abs() < 1e-6, "{p}");
        assert_eq!(mann_whitney(&[2.0, 2.0], &[2.0, 2.0]), 1.0, "all equal: nothing differs");
    }

    #[test]
    fn four_runs_a_side_are_the_fewest_that_can_reach_five_percent() {
        assert_eq!(min_runs_for(0.05), 4, "3 v 3 can do no better than p = 0.1");
        assert_eq!(min_runs_for(0.01), 5, "5 v 5 reaches 2/252 = 0.0079");
    }
}
