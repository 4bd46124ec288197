//! The statistics the harness reports: intervals for rates, exact tests for small samples,
//! survival estimates for times with unresolved trials censored, and corrections across
//! slices. Small samples are the rule in evaluations (a few trials per fault, each costing
//! money), so every test here is exact where that is cheap, and none pretends to more
//! precision than the counts allow.

/// z for a two-sided 95 % interval.
pub const Z95: f64 = 1.959_963_984_540_054;

/// The Wilson score interval of `k` successes in `n` trials (95 %): honest at 0 and n, where
/// the normal interval collapses to a point. `None` when `n` is 0.
pub fn wilson(k: u64, n: u64) -> Option<(f64, f64)> {
    if n == 0 {
        return None;
    }
    let (k, n) = (k as f64, n as f64);
    let p = k / n;
    let z2 = Z95 * Z95;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = Z95 / (1.0 + z2 / n) * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    Some(((centre - half).max(0.0), (centre + half).min(1.0)))
}

/// The 95 % interval of the difference of two rates `k1/n1 − k2/n2` (Newcombe's hybrid
/// score method: it stays inside [−1, 1] and behaves at 0 and n, where Wald's does not).
pub fn rate_difference(k1: u64, n1: u64, k2: u64, n2: u64) -> Option<(f64, f64, f64)> {
    let (l1, u1) = wilson(k1, n1)?;
    let (l2, u2) = wilson(k2, n2)?;
    let (p1, p2) = (k1 as f64 / n1 as f64, k2 as f64 / n2 as f64);
    let d = p1 - p2;
    let low = d - ((p1 - l1).powi(2) + (u2 - p2).powi(2)).sqrt();
    let high = d + ((u1 - p1).powi(2) + (p2 - l2).powi(2)).sqrt();
    Some((d, low.max(-1.0), high.min(1.0)))
}

fn ln_factorial(n: u64) -> f64 {
    (2..=n).map(|i| (i as f64).ln()).sum()
}

fn ln_choose(n: u64, k: u64) -> f64 {
    if k > n {
        return f64::NEG_INFINITY;
    }
    ln_factorial(n) - ln_factorial(k) - ln_factorial(n - k)
}

/// C(n, k) as a float (exact for the sizes evaluations have).
pub fn choose(n: u64, k: u64) -> f64 {
    if k > n {
        return 0.0;
    }
    ln_choose(n, k).exp()
}

/// Fisher's exact test, two-sided, on the table `[[a, b], [c, d]]` (rows: the two runs;
/// columns: wins, losses). Sums the probabilities of every table with the same margins that
/// is no more likely than the one seen.
pub fn fisher_exact(a: u64, b: u64, c: u64, d: u64) -> f64 {
    let (row1, row2, col1) = (a + b, c + d, a + c);
    let n = row1 + row2;
    let ln_total = ln_choose(n, col1);
    let prob = |x: u64| (ln_choose(row1, x) + ln_choose(row2, col1 - x) - ln_total).exp();
    let lo = col1.saturating_sub(row2);
    let hi = col1.min(row1);
    let seen = prob(a);
    // Tables as likely as the one seen, up to rounding, count as "as extreme".
    let cutoff = seen * (1.0 + 1e-7);
    let p: f64 = (lo..=hi).map(prob).filter(|&q| q <= cutoff).sum();
    p.min(1.0)
}

/// McNemar's exact test for paired outcomes: `b` pairs won only by the first run, `c` only by
/// the second. Two-sided binomial test of b against n = b + c at one half.
pub fn mcnemar_exact(b: u64, c: u64) -> f64 {
    let n = b + c;
    if n == 0 {
        return 1.0;
    }
    let k = b.min(c);
    let tail: f64 = (0..=k)
        .map(|i| (ln_choose(n, i) - n as f64 * std::f64::consts::LN_2).exp())
        .sum();
    (2.0 * tail).min(1.0)
}

/// The smallest two-sided p-value Fisher's test can give for two runs of `n1` and `n2`
/// trials, whatever their outcomes: when even that is not below 0.05, the runs are too small
/// to tell apart.
pub fn fisher_floor(n1: u64, n2: u64) -> f64 {
    if n1 == 0 || n2 == 0 {
        return 1.0;
    }
    let mut best: f64 = 1.0;
    for wins in 0..=(n1 + n2) {
        for a in wins.saturating_sub(n2)..=wins.min(n1) {
            best = best.min(fisher_exact(a, n1 - a, wins - a, n2 - (wins - a)));
        }
    }
    best
}

/// The smallest two-sided p-value McNemar's exact test can give with `pairs` pairs.
pub fn mcnemar_floor(pairs: u64) -> f64 {
    mcnemar_exact(pairs, 0)
}

/// The Mann–Whitney U test, two-sided: do the values of `x` tend to be larger or smaller than
/// those of `y`? Exact (by counting every arrangement) when there are no ties and both samples
/// are small; otherwise the normal approximation with a tie correction and continuity
/// correction. `None` when either sample is empty.
///
/// Unresolved trials enter as `f64::INFINITY`: censored at the common resolve timeout, they
/// tie with each other above every resolved time (Gehan's generalization of the test).
pub fn mann_whitney(x: &[f64], y: &[f64]) -> Option<f64> {
    let (m, n) = (x.len(), y.len());
    if m == 0 || n == 0 {
        return None;
    }
    let ranks = ranks(x.iter().chain(y).copied().collect());
    let r1: f64 = ranks[..m].iter().sum();
    let u = r1 - (m * (m + 1)) as f64 / 2.0;
    let mn = (m * n) as f64;
    let mut all: Vec<f64> = x.iter().chain(y).copied().collect();
    all.sort_by(f64::total_cmp);
    let ties: Vec<usize> = all
        .chunk_by(|a, b| a.total_cmp(b).is_eq())
        .map(<[f64]>::len)
        .collect();
    let tied = ties.iter().any(|&t| t > 1);
    if !tied && m <= 30 && n <= 30 {
        return Some(exact_u_p(m, n, u));
    }
    let total = (m + n) as f64;
    let tie_term: f64 = ties.iter().map(|&t| (t as f64).powi(3) - t as f64).sum();
    let var = mn / 12.0 * ((total + 1.0) - tie_term / (total * (total - 1.0)));
    if var <= 0.0 {
        return Some(1.0);
    }
    let diff = (u - mn / 2.0).abs();
    let z = (diff - 0.5).max(0.0) / var.sqrt();
    Some((2.0 * normal_sf(z)).min(1.0))
}

/// Ranks 1..=n, ties given the mean of their ranks.
fn ranks(values: Vec<f64>) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut out = vec![0.0; values.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && values[order[j + 1]].total_cmp(&values[order[i]]).is_eq() {
            j += 1;
        }
        let mean = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            out[k] = mean;
        }
        i = j + 1;
    }
    out
}

/// Two-sided exact p of U for samples of `m` and `n` without ties: counts the arrangements
/// whose U is at least as far from its centre.
fn exact_u_p(m: usize, n: usize, u: f64) -> f64 {
    // ways[i][j][u]: arrangements of i x's and j y's with statistic u, built row by row.
    let max = m * n;
    let mut prev: Vec<Vec<f64>> = vec![vec![0.0; max + 1]; n + 1];
    for row in prev.iter_mut() {
        row[0] = 1.0;
    }
    for _ in 1..=m {
        let mut cur: Vec<Vec<f64>> = vec![vec![0.0; max + 1]; n + 1];
        cur[0][0] = 1.0;
        for j in 1..=n {
            for s in 0..=max {
                // The largest value is an x (it beats all j y's) or a y.
                let with_x = if s >= j { prev[j][s - j] } else { 0.0 };
                cur[j][s] = with_x + cur[j - 1][s];
            }
        }
        prev = cur;
    }
    let counts = &prev[n];
    let total: f64 = counts.iter().sum();
    let centre = max as f64 / 2.0;
    let far = (u - centre).abs() - 1e-9;
    let extreme: f64 = counts
        .iter()
        .enumerate()
        .filter(|(s, _)| (*s as f64 - centre).abs() >= far)
        .map(|(_, c)| c)
        .sum();
    (extreme / total).min(1.0)
}

/// The standard normal's upper tail, P(Z > z) (Abramowitz–Stegun 7.1.26 on erfc: error
/// below 1.5e-7, far under what a p-value is read to).
pub fn normal_sf(z: f64) -> f64 {
    let x = z / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs());
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erfc = poly * (-x * x).exp();
    let erfc = if x >= 0.0 { erfc } else { 2.0 - erfc };
    erfc / 2.0
}

/// Holm's step-down correction: adjusted p-values, in the order given.
pub fn holm(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let mut out = vec![0.0; m];
    let mut running: f64 = 0.0;
    for (rank, &i) in order.iter().enumerate() {
        let adjusted = ((m - rank) as f64 * p[i]).min(1.0);
        running = running.max(adjusted);
        out[i] = running;
    }
    out
}

/// One trial's time to an event, or the time it was last watched without the event.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timed {
    pub ms: f64,
    /// True when the event happened at `ms`; false when the trial ended (timed out) first.
    pub event: bool,
}

/// The Kaplan–Meier survival curve: `(t, S(t))` after each event time.
pub fn kaplan_meier(data: &[Timed]) -> Vec<(f64, f64)> {
    let mut sorted = data.to_vec();
    // At equal times, events come before censorings (the usual convention).
    sorted.sort_by(|a, b| a.ms.total_cmp(&b.ms).then(b.event.cmp(&a.event)));
    let mut at_risk = sorted.len() as f64;
    let mut s = 1.0;
    let mut curve = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let t = sorted[i].ms;
        let mut events = 0.0;
        let mut leaving = 0.0;
        while i < sorted.len() && sorted[i].ms.total_cmp(&t).is_eq() {
            if sorted[i].event {
                events += 1.0;
            }
            leaving += 1.0;
            i += 1;
        }
        if events > 0.0 {
            s *= 1.0 - events / at_risk;
            curve.push((t, s));
        }
        at_risk -= leaving;
    }
    curve
}

/// The time by which a fraction `q` of trials had the event (the median for 0.5), by
/// Kaplan–Meier: the first time the curve falls to 1 − q or below. `None` when it never does
/// within what was watched (fewer than that fraction resolved).
pub fn km_quantile(data: &[Timed], q: f64) -> Option<f64> {
    kaplan_meier(data)
        .into_iter()
        .find(|&(_, s)| s <= 1.0 - q + 1e-12)
        .map(|(t, _)| t)
}

/// The fraction of trials that had the event within `within_ms`, by Kaplan–Meier; `None`
/// when some trial stopped being watched before then without the event (its outcome at that
/// time is unknown) and no estimate covers it.
pub fn km_within(data: &[Timed], within_ms: f64) -> Option<f64> {
    if data.is_empty() {
        return None;
    }
    let watched_long_enough = data.iter().all(|d| d.event || d.ms >= within_ms);
    if !watched_long_enough {
        return None;
    }
    let s = kaplan_meier(data)
        .into_iter()
        .take_while(|&(t, _)| t <= within_ms)
        .last()
        .map_or(1.0, |(_, s)| s);
    Some(1.0 - s)
}

/// A percentile of the values (nearest rank): `None` when empty.
pub fn percentile(values: &[f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = (q * v.len() as f64).ceil() as usize;
    Some(v[rank.clamp(1, v.len()) - 1])
}

/// pass^k: the chance that `k` trials drawn from the `n` run (of which `c` won) all won —
/// reliability, which falls fast with k (τ-bench).
pub fn pass_hat_k(n: u64, c: u64, k: u64) -> Option<f64> {
    if k == 0 || k > n {
        return None;
    }
    Some(choose(c, k) / choose(n, k))
}

/// pass@k: the chance that at least one of `k` trials drawn from the `n` run won.
pub fn pass_at_k(n: u64, c: u64, k: u64) -> Option<f64> {
    if k == 0 || k > n {
        return None;
    }
    Some(1.0 - choose(n - c, k) / choose(n, k))
}

/// The Hodges–Lehmann shift between two samples (the median of all pairwise differences
/// x − y) and its distribution-free 95 % interval from the same differences. `None` when a
/// sample is empty or the difference is not finite (every trial of one side unresolved).
pub fn hodges_lehmann(x: &[f64], y: &[f64]) -> Option<(f64, f64, f64)> {
    if x.is_empty() || y.is_empty() {
        return None;
    }
    let mut d: Vec<f64> = x
        .iter()
        .flat_map(|a| y.iter().map(move |b| a - b))
        .filter(|v| v.is_finite())
        .collect();
    if d.is_empty() {
        return None;
    }
    d.sort_by(f64::total_cmp);
    let mid = percentile_linear(&d, 0.5);
    let (m, n) = (x.len() as f64, y.len() as f64);
    let k = (m * n / 2.0 - Z95 * (m * n * (m + n + 1.0) / 12.0).sqrt()).floor();
    let k = (k.max(0.0) as usize).min(d.len() - 1);
    Some((mid, d[k], d[d.len() - 1 - k]))
}

fn percentile_linear(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn wilson_matches_published_intervals() {
        // Newcombe (1998), Table I: 81/263 → 0.2553–0.3662; 15/148 → 0.0624–0.1605;
        // 0/20 → 0–0.1611; 1/29 → 0.0061–0.1718.
        for (k, n, lo, hi) in [
            (81, 263, 0.2553, 0.3662),
            (15, 148, 0.0624, 0.1605),
            (0, 20, 0.0, 0.1611),
            (1, 29, 0.0061, 0.1718),
        ] {
            let (l, h) = wilson(k, n).unwrap();
            assert!(close(l, lo, 1e-4) && close(h, hi, 1e-4), "{k}/{n}: {l} {h}");
        }
        assert_eq!(wilson(0, 0), None);
        let (l, h) = wilson(8, 8).unwrap();
        assert!(close(l, 0.6756, 1e-4) && h == 1.0, "{l} {h}");
    }

    #[test]
    fn rate_difference_matches_newcombe() {
        // Newcombe (1998), Table II, method 10: 56/70 − 48/80 = 0.2000, 0.0524 to 0.3339;
        // 9/10 − 3/10 = 0.6000, 0.1705 to 0.8090.
        let (d, l, h) = rate_difference(56, 70, 48, 80).unwrap();
        assert!(close(d, 0.2, 1e-9) && close(l, 0.0524, 2e-4) && close(h, 0.3339, 2e-4));
        let (d, l, h) = rate_difference(9, 10, 3, 10).unwrap();
        assert!(close(d, 0.6, 1e-9) && close(l, 0.1705, 2e-4) && close(h, 0.8090, 2e-4));
    }

    #[test]
    fn fisher_matches_published_values() {
        // The lady tasting tea: 3 of 4 right each way, two-sided p = 0.4857.
        assert!(close(fisher_exact(3, 1, 1, 3), 0.485_714, 1e-6));
        // 8/8 against 0/8: 2 / C(16, 8).
        assert!(close(fisher_exact(8, 0, 0, 8), 2.0 / 12870.0, 1e-9));
        // R's fisher.test(matrix(c(1, 9, 11, 3), 2)): p = 0.002759.
        assert!(close(fisher_exact(1, 11, 9, 3), 0.002_759, 1e-6));
        assert!(close(fisher_exact(4, 4, 4, 4), 1.0, 1e-12));
    }

    #[test]
    fn mcnemar_and_floors() {
        assert!(close(mcnemar_exact(8, 0), 2.0 / 256.0, 1e-12));
        assert!(close(mcnemar_exact(3, 3), 1.0, 1e-12));
        // Two-sided binomial, 1 of 10: 2 × 11/1024.
        assert!(close(mcnemar_exact(1, 9), 22.0 / 1024.0, 1e-12));
        // Three trials a side can never show a difference; four can.
        assert!(fisher_floor(3, 3) > 0.05);
        assert!(fisher_floor(4, 4) < 0.05);
        assert!(close(fisher_floor(3, 3), 0.1, 1e-9));
        assert!(mcnemar_floor(5) > 0.05 && mcnemar_floor(6) < 0.05);
    }

    #[test]
    fn mann_whitney_exact_and_approximate() {
        // Fully separated samples of 3: 2 of C(6,3) = 20 arrangements are as extreme.
        assert!(close(
            mann_whitney(&[1., 2., 3.], &[4., 5., 6.]).unwrap(),
            0.1,
            1e-12
        ));
        assert!(close(
            mann_whitney(&[1., 3., 5.], &[2., 4., 6.]).unwrap(),
            0.7,
            1e-12
        ));
        // Ties take the normal approximation; identical samples are not different.
        let p = mann_whitney(&[f64::INFINITY; 4], &[f64::INFINITY; 4]).unwrap();
        assert!(close(p, 1.0, 1e-12), "{p}");
        let fast = [100., 120., 90., 110., 105., 95., 115., 125.];
        let slow = [f64::INFINITY; 8];
        assert!(mann_whitney(&fast, &slow).unwrap() < 0.001);
        assert_eq!(mann_whitney(&[], &[1.0]), None);
    }

    #[test]
    fn normal_tail() {
        assert!(close(normal_sf(0.0), 0.5, 1e-7));
        assert!(close(normal_sf(Z95), 0.025, 1e-6));
        assert!(close(normal_sf(-1.0), 0.841_344_7, 1e-6));
    }

    #[test]
    fn holm_matches_hand_computation() {
        let adj = holm(&[0.01, 0.04, 0.03, 0.005]);
        for (a, e) in adj.iter().zip([0.03, 0.06, 0.06, 0.02]) {
            assert!(close(*a, e, 1e-12), "{adj:?}");
        }
        assert_eq!(holm(&[0.5, 0.9]), vec![1.0, 1.0]);
        assert!(holm(&[]).is_empty());
    }

    #[test]
    fn kaplan_meier_matches_the_leukaemia_data() {
        // Freireich et al. (1963), 6-MP arm, weeks in remission (+ censored): the published
        // Kaplan–Meier median is 23 weeks and S(10) = 0.7529.
        let weeks = [
            (6, true),
            (6, true),
            (6, true),
            (6, false),
            (7, true),
            (9, false),
            (10, true),
            (10, false),
            (11, false),
            (13, true),
            (16, true),
            (17, false),
            (19, false),
            (20, false),
            (22, true),
            (23, true),
            (25, false),
            (32, false),
            (32, false),
            (34, false),
            (35, false),
        ];
        let data: Vec<Timed> = weeks
            .iter()
            .map(|&(w, event)| Timed {
                ms: w as f64,
                event,
            })
            .collect();
        assert_eq!(km_quantile(&data, 0.5), Some(23.0));
        let curve = kaplan_meier(&data);
        let s10 = curve.iter().find(|(t, _)| *t == 10.0).unwrap().1;
        assert!(close(s10, 0.7529, 1e-4), "{s10}");
        // Too few events for a 90th percentile.
        assert_eq!(km_quantile(&data, 0.9), None);
    }

    #[test]
    fn resolved_within_respects_what_was_watched() {
        let d = [
            Timed {
                ms: 10.0,
                event: true,
            },
            Timed {
                ms: 50.0,
                event: true,
            },
            Timed {
                ms: 60.0,
                event: false,
            },
            Timed {
                ms: 60.0,
                event: false,
            },
        ];
        assert_eq!(km_within(&d, 30.0), Some(0.25));
        assert_eq!(km_within(&d, 60.0), Some(0.5));
        // Nobody watched the unresolved trials past 60: no answer at 300.
        assert_eq!(km_within(&d, 300.0), None);
    }

    #[test]
    fn pass_k_and_percentiles() {
        assert_eq!(pass_hat_k(3, 3, 3), Some(1.0));
        assert!(close(pass_hat_k(3, 2, 2).unwrap(), 1.0 / 3.0, 1e-12));
        assert_eq!(pass_hat_k(3, 1, 2), Some(0.0));
        assert!(close(pass_at_k(3, 1, 2).unwrap(), 2.0 / 3.0, 1e-12));
        assert_eq!(pass_hat_k(2, 2, 3), None);
        assert_eq!(percentile(&[5., 1., 3., 2., 4.], 0.5), Some(3.0));
        assert_eq!(percentile(&[5., 1., 3., 2., 4.], 0.9), Some(5.0));
        assert_eq!(percentile(&[], 0.5), None);
        let (d, lo, hi) = hodges_lehmann(&[10., 11., 12.], &[1., 2., 3.]).unwrap();
        assert_eq!(d, 9.0);
        assert!(lo <= d && d <= hi);
    }
}
