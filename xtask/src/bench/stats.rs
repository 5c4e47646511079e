//! The statistics of a row: the median and the spread of its samples.
//!
//! Why the median and not the mean: a container start sometimes waits for the kernel (an
//! RCU grace period on the first write to a cgroup v1 `cgroup.procs`, a page cache miss),
//! so a few runs take several times longer than the others, and they would drag a mean
//! around from one run of the benchmark to the next. The median ignores them; the spread
//! (p25–p75, the middle half of the runs) shows how noisy the row was.

/// What a list of samples comes to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// How many samples.
    pub n: usize,
    /// The middle sample (the mean of the two middle ones for an even count).
    pub median: f64,
    /// The first quartile: a quarter of the samples are at most this.
    pub p25: f64,
    /// The third quartile: three quarters of the samples are at most this.
    pub p75: f64,
    /// The smallest sample.
    pub min: f64,
    /// The largest sample.
    pub max: f64,
}

impl Summary {
    /// The summary of `samples`, or `None` if there are none (or one is not a number).
    pub fn of(samples: &[f64]) -> Option<Summary> {
        if samples.is_empty() || samples.iter().any(|s| s.is_nan()) {
            return None;
        }
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        Some(Summary {
            n: sorted.len(),
            median: quantile(&sorted, 0.5),
            p25: quantile(&sorted, 0.25),
            p75: quantile(&sorted, 0.75),
            min: sorted[0],
            max: sorted[sorted.len() - 1],
        })
    }
}

/// The `q`-quantile (0 ≤ q ≤ 1) of `sorted` (ascending, not empty), interpolated linearly
/// between the two nearest samples: the usual definition (numpy's default, R's type 7), so
/// that the median of an even count is the mean of the two middle samples.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    assert!(!sorted.is_empty(), "the quantile of no samples");
    let q = q.clamp(0.0, 1.0);
    let pos = q * (sorted.len() - 1) as f64;
    let below = pos.floor() as usize;
    let above = pos.ceil() as usize;
    let weight = pos - below as f64;
    sorted[below] + (sorted[above] - sorted[below]) * weight
}

/// `ours / theirs`, the number every target is stated in ("mini-docker takes at most 0.1
/// times podman's time"), or `None` when `theirs` is zero.
pub fn ratio(ours: f64, theirs: f64) -> Option<f64> {
    (theirs != 0.0).then(|| ours / theirs)
}

/// The mean of `samples`, `None` if there are none. Only for the breakdown, whose steps
/// add up to the total: means do, medians do not.
pub fn mean(samples: &[f64]) -> Option<f64> {
    (!samples.is_empty()).then(|| samples.iter().sum::<f64>() / samples.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_of_an_odd_count_is_the_middle_sample() {
        let s = Summary::of(&[5.0, 1.0, 3.0]).unwrap();
        assert_eq!(s.median, 3.0);
        assert_eq!((s.min, s.max, s.n), (1.0, 5.0, 3));
    }

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_two_middle_ones() {
        assert_eq!(Summary::of(&[4.0, 1.0, 2.0, 3.0]).unwrap().median, 2.5);
    }

    #[test]
    fn one_outlier_does_not_move_the_median() {
        let calm = Summary::of(&[10.0, 11.0, 12.0, 13.0, 14.0]).unwrap();
        let spiked = Summary::of(&[10.0, 11.0, 12.0, 13.0, 400.0]).unwrap();
        assert_eq!(calm.median, spiked.median);
        assert_eq!(spiked.max, 400.0);
    }

    #[test]
    fn quartiles_are_interpolated_between_samples() {
        // positions 0..=4: p25 at 1.0, p75 at 3.0
        let s = Summary::of(&[1.0, 2.0, 3.0, 4.0, 5.0]).unwrap();
        assert_eq!((s.p25, s.p75), (2.0, 4.0));
        // positions 0..=3: p25 at 0.75 (between 10 and 20), p75 at 2.25 (between 30 and 40)
        let s = Summary::of(&[40.0, 10.0, 30.0, 20.0]).unwrap();
        assert!((s.p25 - 17.5).abs() < 1e-9, "{}", s.p25);
        assert!((s.p75 - 32.5).abs() < 1e-9, "{}", s.p75);
    }

    #[test]
    fn a_single_sample_is_its_own_spread() {
        let s = Summary::of(&[7.5]).unwrap();
        assert_eq!(
            (s.median, s.p25, s.p75, s.min, s.max),
            (7.5, 7.5, 7.5, 7.5, 7.5)
        );
    }

    #[test]
    fn no_samples_or_a_nan_make_no_summary() {
        assert_eq!(Summary::of(&[]), None);
        assert_eq!(Summary::of(&[1.0, f64::NAN]), None);
    }

    #[test]
    fn quantile_bounds_are_the_extremes() {
        let sorted = [1.0, 2.0, 9.0];
        assert_eq!(quantile(&sorted, 0.0), 1.0);
        assert_eq!(quantile(&sorted, 1.0), 9.0);
    }

    #[test]
    fn ratios_and_means() {
        assert_eq!(ratio(5.0, 50.0), Some(0.1));
        assert_eq!(ratio(5.0, 0.0), None);
        assert_eq!(mean(&[1.0, 2.0, 6.0]), Some(3.0));
        assert_eq!(mean(&[]), None);
    }
}
