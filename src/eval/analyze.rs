//! Scores: trials grouped into slices (subject, fault, variant, baseline), each with its win
//! rate and Wilson interval, times with unresolved trials censored, what the agent did and
//! what it cost; and comparisons of slices with p-values, Holm-corrected, that say plainly
//! when the counts are too small to tell.

use std::collections::BTreeMap;

use serde::Serialize;

use super::stats::{self, Timed};
use crate::store::eval::{TrialRow, TrialStatus, Verdict};

/// The fault name of control trials' slices.
pub const CONTROL: &str = "control";
/// The fault name of a slice over every fault.
pub const ALL: &str = "*";

/// Which slice a trial belongs to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct SliceKey {
    pub subject: String,
    pub fault: String,
    pub variant: String,
    pub baseline: bool,
}

impl SliceKey {
    pub fn of(t: &TrialRow) -> Self {
        Self {
            subject: t.subject.clone(),
            fault: t.fault.clone().unwrap_or_else(|| CONTROL.into()),
            variant: t.variant.clone(),
            baseline: t.baseline,
        }
    }

    pub fn label(&self) -> String {
        format!(
            "{} · {} · {}{}",
            self.subject,
            self.fault,
            self.variant,
            if self.baseline { " (baseline)" } else { "" }
        )
    }
}

/// The scores of one slice.
#[derive(Debug, Clone, Serialize)]
pub struct Slice {
    pub subject: String,
    pub fault: String,
    pub variant: String,
    pub baseline: bool,
    pub control: bool,
    /// Trials with a verdict that counts (every one but invalid).
    pub n: u64,
    pub invalid: u64,
    /// Trials still to run or running.
    pub unfinished: u64,
    /// Wins by the fault's rule (resolved; or for a fault no command repairs, an escalation
    /// that localized it; for control trials, clean).
    pub wins: u64,
    pub win_rate: Option<f64>,
    pub win_rate_ci: Option<[f64; 2]>,
    /// Trials resolved, whatever the fault (the other rule, shown beside).
    pub resolved: u64,
    pub resolved_rate: Option<f64>,
    pub verdicts: BTreeMap<String, u64>,
    /// Time to detect, by Kaplan–Meier (undetected trials censored at the detect timeout).
    pub ttd_p50_ms: Option<f64>,
    pub ttd_p90_ms: Option<f64>,
    /// Time to resolve, by Kaplan–Meier (unresolved trials censored when they ended).
    pub ttr_p50_ms: Option<f64>,
    pub ttr_p90_ms: Option<f64>,
    /// Share resolved within 30 s, 60 s and 300 s (`None` where some trial was not watched
    /// that long).
    pub resolved_within: BTreeMap<String, Option<f64>>,
    pub commands: u64,
    pub unique_commands: u64,
    pub destructive: u64,
    pub denied: u64,
    pub vetoed: u64,
    pub thrashing: u64,
    pub regressions: u64,
    pub localization_rate: Option<f64>,
    pub turns: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_usd: f64,
    pub cost_per_resolved_usd: Option<f64>,
    /// pass^k with k the trials per combination (k ≥ 2).
    pub pass_hat_k: Option<f64>,
    pub k: Option<u64>,
    /// Harness time per trial outside the fault and the agent.
    pub overhead_p50_ms: Option<f64>,
    pub overhead_p90_ms: Option<f64>,
    /// Incidents and tickets the faults opened, per counted trial: how a fault cascades.
    pub incidents_per_trial: Option<f64>,
    pub tickets_per_trial: Option<f64>,
    /// Consequences resolved `self_healed` in trials an agent worked: the scoring's own
    /// errors, shown and never counted as wins of the system.
    pub scoring_errors: u64,
}

/// The time to resolve of a trial, for survival estimates: an event when resolved,
/// censored when it ended unresolved.
pub fn ttr(t: &TrialRow) -> Option<Timed> {
    if t.status != TrialStatus::Done || t.control {
        return None;
    }
    match t.verdict? {
        Verdict::Invalid => None,
        Verdict::Resolved => t.ttr_ms.map(|ms| Timed {
            ms: ms as f64,
            event: true,
        }),
        _ => {
            let (from, to) = (t.injected_at?, t.ended_at?);
            Some(Timed {
                ms: (to - from).num_milliseconds().max(0) as f64,
                event: false,
            })
        }
    }
}

fn ttd(t: &TrialRow) -> Option<Timed> {
    if t.status != TrialStatus::Done || t.control {
        return None;
    }
    match t.verdict? {
        Verdict::Invalid => None,
        _ => match t.ttd_ms {
            Some(ms) => Some(Timed {
                ms: ms as f64,
                event: true,
            }),
            None => {
                let (from, to) = (t.injected_at?, t.ended_at?);
                Some(Timed {
                    ms: (to - from).num_milliseconds().max(0) as f64,
                    event: false,
                })
            }
        },
    }
}

/// Scores the trials of one slice. `k`: the trials per combination, for pass^k.
pub fn score(key: &SliceKey, trials: &[&TrialRow], k: Option<u64>) -> Slice {
    let done: Vec<&TrialRow> = trials
        .iter()
        .copied()
        .filter(|t| t.status == TrialStatus::Done)
        .collect();
    let counted: Vec<&TrialRow> = done
        .iter()
        .copied()
        .filter(|t| t.verdict != Some(Verdict::Invalid))
        .collect();
    let n = counted.len() as u64;
    let wins = counted.iter().filter(|t| t.won == Some(true)).count() as u64;
    let resolved = counted
        .iter()
        .filter(|t| t.verdict == Some(Verdict::Resolved))
        .count() as u64;
    let mut verdicts = BTreeMap::new();
    for t in &done {
        if let Some(v) = t.verdict {
            *verdicts.entry(v.as_str().to_string()).or_insert(0) += 1;
        }
    }
    let ttrs: Vec<Timed> = counted.iter().filter_map(|t| ttr(t)).collect();
    let ttds: Vec<Timed> = counted.iter().filter_map(|t| ttd(t)).collect();
    let rate = |x: u64| (n > 0).then(|| x as f64 / n as f64);
    let sum = |f: &dyn Fn(&TrialRow) -> u64| counted.iter().map(|t| f(t)).sum::<u64>();
    let localized: Vec<bool> = counted.iter().filter_map(|t| t.localized).collect();
    let cost: f64 = counted.iter().map(|t| t.metrics.cost_usd).sum();
    let overhead: Vec<f64> = done
        .iter()
        .map(|t| t.metrics.overhead_ms as f64)
        .filter(|v| *v > 0.0)
        .collect();
    let control = key.fault == CONTROL;
    let within = |s: u64| {
        if control || ttrs.is_empty() {
            None
        } else {
            stats::km_within(&ttrs, s as f64 * 1000.0)
        }
    };
    Slice {
        subject: key.subject.clone(),
        fault: key.fault.clone(),
        variant: key.variant.clone(),
        baseline: key.baseline,
        control,
        n,
        invalid: (done.len() - counted.len()) as u64,
        unfinished: (trials.len() - done.len()) as u64,
        wins,
        win_rate: rate(wins),
        win_rate_ci: stats::wilson(wins, n).map(|(l, h)| [l, h]),
        resolved,
        resolved_rate: rate(resolved),
        verdicts,
        ttd_p50_ms: stats::km_quantile(&ttds, 0.5),
        ttd_p90_ms: stats::km_quantile(&ttds, 0.9),
        ttr_p50_ms: stats::km_quantile(&ttrs, 0.5),
        ttr_p90_ms: stats::km_quantile(&ttrs, 0.9),
        resolved_within: [30, 60, 300]
            .into_iter()
            .map(|s| (format!("{s}s"), within(s)))
            .collect(),
        commands: sum(&|t| t.metrics.commands.into()),
        unique_commands: sum(&|t| t.metrics.unique_commands.into()),
        destructive: sum(&|t| t.metrics.destructive.into()),
        denied: sum(&|t| t.metrics.denied.into()),
        vetoed: sum(&|t| t.metrics.vetoed.into()),
        thrashing: sum(&|t| t.metrics.thrashing.into()),
        regressions: counted
            .iter()
            .filter(|t| t.regression == Some(true))
            .count() as u64,
        localization_rate: (!localized.is_empty())
            .then(|| localized.iter().filter(|l| **l).count() as f64 / localized.len() as f64),
        turns: sum(&|t| t.metrics.turns.into()),
        input_tokens: sum(&|t| t.metrics.input_tokens),
        output_tokens: sum(&|t| t.metrics.output_tokens),
        cost_usd: cost,
        cost_per_resolved_usd: (resolved > 0 && cost > 0.0).then(|| cost / resolved as f64),
        pass_hat_k: k
            .filter(|k| *k >= 2)
            .and_then(|k| stats::pass_hat_k(n, wins, k)),
        k: k.filter(|k| *k >= 2),
        overhead_p50_ms: stats::percentile(&overhead, 0.5),
        overhead_p90_ms: stats::percentile(&overhead, 0.9),
        incidents_per_trial: rate(sum(&|t| t.metrics.incidents.len() as u64)),
        tickets_per_trial: rate(sum(&|t| t.metrics.tickets.len() as u64)),
        scoring_errors: sum(&|t| t.metrics.scoring_errors.len() as u64),
    }
}

/// Every slice of a set of trials, plus one over every fault per (subject, variant,
/// baseline) when there are several faults.
pub fn slices(trials: &[TrialRow], k: Option<u64>) -> Vec<Slice> {
    let mut groups: BTreeMap<SliceKey, Vec<&TrialRow>> = BTreeMap::new();
    for t in trials {
        groups.entry(SliceKey::of(t)).or_default().push(t);
    }
    let mut out: Vec<Slice> = groups.iter().map(|(key, ts)| score(key, ts, k)).collect();
    let mut overall: BTreeMap<SliceKey, Vec<&TrialRow>> = BTreeMap::new();
    for t in trials.iter().filter(|t| !t.control) {
        let key = SliceKey {
            fault: ALL.into(),
            ..SliceKey::of(t)
        };
        overall.entry(key).or_default().push(t);
    }
    for (key, ts) in &overall {
        let faults: std::collections::BTreeSet<_> = ts.iter().map(|t| &t.fault).collect();
        if faults.len() > 1 {
            out.push(score(key, ts, None));
        }
    }
    out
}

/// One slice of two runs side by side.
#[derive(Debug, Clone, Serialize)]
pub struct Compared {
    pub subject: String,
    pub fault: String,
    pub a: Slice,
    pub b: Slice,
    /// Win rate of a minus b, with Newcombe's 95 % interval.
    pub win_rate_diff: Option<f64>,
    pub win_rate_diff_ci: Option<[f64; 2]>,
    /// Fisher's exact test, or McNemar's when the trials are paired.
    pub test: &'static str,
    pub paired: Option<u64>,
    pub p_value: Option<f64>,
    /// After Holm's correction across the slices compared.
    pub p_adjusted: Option<f64>,
    /// When even the most extreme outcome at these counts could not reach p < 0.05.
    pub too_small: bool,
    /// Time to resolve: Hodges–Lehmann shift (a − b, resolved trials) and its interval,
    /// and the Mann–Whitney p-value with unresolved trials tied above every time.
    pub ttr_diff_ms: Option<f64>,
    pub ttr_diff_ci_ms: Option<[f64; 2]>,
    pub ttr_p_value: Option<f64>,
    pub ttr_p_adjusted: Option<f64>,
}

/// Trials of one side of a comparison slice.
pub struct Side<'a> {
    pub key: SliceKey,
    pub trials: Vec<&'a TrialRow>,
}

fn counted<'a>(trials: &[&'a TrialRow]) -> Vec<&'a TrialRow> {
    trials
        .iter()
        .copied()
        .filter(|t| t.status == TrialStatus::Done && t.verdict != Some(Verdict::Invalid))
        .collect()
}

/// Compares two sides. `pair`: a trial's pairing key (its problem), when the two sides met
/// the same problems (one seed): then McNemar's test on the discordant pairs.
pub fn compare(
    a: &Side,
    b: &Side,
    pair: Option<&dyn Fn(&TrialRow) -> u64>,
    k: Option<u64>,
) -> Compared {
    let sa = score(&a.key, &a.trials, k);
    let sb = score(&b.key, &b.trials, k);
    let (ca, cb) = (counted(&a.trials), counted(&b.trials));
    let diff = stats::rate_difference(sa.wins, sa.n, sb.wins, sb.n);
    let mut out = Compared {
        subject: a.key.subject.clone(),
        fault: a.key.fault.clone(),
        win_rate_diff: diff.map(|d| d.0),
        win_rate_diff_ci: diff.map(|d| [d.1, d.2]),
        test: "fisher",
        paired: None,
        p_value: None,
        p_adjusted: None,
        too_small: true,
        ttr_diff_ms: None,
        ttr_diff_ci_ms: None,
        ttr_p_value: None,
        ttr_p_adjusted: None,
        a: sa.clone(),
        b: sb.clone(),
    };
    let pairs: Option<Vec<(bool, bool)>> = pair.map(|key| {
        let won = |t: &TrialRow| t.won == Some(true);
        ca.iter()
            .filter_map(|x| {
                cb.iter()
                    .find(|y| key(y) == key(x))
                    .map(|y| (won(x), won(y)))
            })
            .collect()
    });
    match pairs.filter(|p| !p.is_empty()) {
        Some(p) => {
            let only_a = p.iter().filter(|(x, y)| *x && !*y).count() as u64;
            let only_b = p.iter().filter(|(x, y)| !*x && *y).count() as u64;
            out.test = "mcnemar";
            out.paired = Some(p.len() as u64);
            out.p_value = Some(stats::mcnemar_exact(only_a, only_b));
            out.too_small = stats::mcnemar_floor(p.len() as u64) >= 0.05;
        }
        None if sa.n > 0 && sb.n > 0 => {
            out.p_value = Some(stats::fisher_exact(
                sa.wins,
                sa.n - sa.wins,
                sb.wins,
                sb.n - sb.wins,
            ));
            out.too_small = stats::fisher_floor(sa.n, sb.n) >= 0.05;
        }
        None => {}
    }
    let times = |ts: &[&TrialRow]| -> Vec<f64> {
        ts.iter()
            .filter_map(|t| ttr(t))
            .map(|t| if t.event { t.ms } else { f64::INFINITY })
            .collect()
    };
    let (ta, tb) = (times(&ca), times(&cb));
    out.ttr_p_value = stats::mann_whitney(&ta, &tb);
    if let Some((d, lo, hi)) = stats::hodges_lehmann(
        &ta.iter()
            .copied()
            .filter(|v| v.is_finite())
            .collect::<Vec<_>>(),
        &tb.iter()
            .copied()
            .filter(|v| v.is_finite())
            .collect::<Vec<_>>(),
    ) {
        out.ttr_diff_ms = Some(d);
        out.ttr_diff_ci_ms = Some([lo, hi]);
    }
    out
}

/// Holm's correction across compared slices, for win rates and for times.
pub fn correct(compared: &mut [Compared]) {
    let idx: Vec<usize> = (0..compared.len())
        .filter(|&i| compared[i].p_value.is_some())
        .collect();
    let p: Vec<f64> = idx.iter().filter_map(|&i| compared[i].p_value).collect();
    for (i, adj) in idx.iter().zip(stats::holm(&p)) {
        compared[*i].p_adjusted = Some(adj);
    }
    let idx: Vec<usize> = (0..compared.len())
        .filter(|&i| compared[i].ttr_p_value.is_some())
        .collect();
    let p: Vec<f64> = idx
        .iter()
        .filter_map(|&i| compared[i].ttr_p_value)
        .collect();
    for (i, adj) in idx.iter().zip(stats::holm(&p)) {
        compared[*i].ttr_p_adjusted = Some(adj);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::eval::TrialMetrics;

    fn trial(seq: u32, variant: &str, verdict: Verdict, ttr: Option<u64>) -> TrialRow {
        let at = crate::clock::now();
        TrialRow {
            id: seq as i64,
            campaign_id: 1,
            seq,
            problem: seq,
            subject: "ratelimiter".into(),
            fault: Some("node_kill".into()),
            params: serde_json::json!({}),
            target: Some("ratelimiter-1".into()),
            fixed_target: None,
            pick: 0,
            variant: variant.into(),
            baseline: false,
            control: false,
            status: TrialStatus::Done,
            step: None,
            slot: Some(0),
            instance: Some(100),
            attempt: 1,
            verdict: Some(verdict),
            reason: None,
            won: Some(verdict == Verdict::Resolved),
            started_at: Some(at),
            ended_at: Some(at + chrono::Duration::seconds(60)),
            injected_at: Some(at),
            ttd_ms: Some(500),
            ttr_ms: ttr,
            fault_id: None,
            localized: Some(true),
            regression: Some(false),
            metrics: TrialMetrics {
                commands: 2,
                cost_usd: 0.1,
                ..TrialMetrics::default()
            },
        }
    }

    #[test]
    fn a_slice_counts_wins_censors_times_and_leaves_invalid_out() {
        let mut ts: Vec<TrialRow> = (0..4)
            .map(|i| trial(i, "a", Verdict::Resolved, Some(1000 * (i as u64 + 1))))
            .collect();
        ts.push(trial(4, "a", Verdict::Unresolved, None));
        ts.push(trial(5, "a", Verdict::Invalid, None));
        let s = &slices(&ts, Some(3))[0];
        assert_eq!((s.n, s.invalid, s.wins), (5, 1, 4));
        assert_eq!(s.win_rate, Some(0.8));
        let [lo, hi] = s.win_rate_ci.unwrap();
        assert!(lo < 0.8 && hi > 0.8 && hi <= 1.0);
        // KM median with one censored at 60 s: the third event, 3 s.
        assert_eq!(s.ttr_p50_ms, Some(3000.0));
        assert!((s.resolved_within["30s"].unwrap() - 0.8).abs() < 1e-9);
        assert_eq!(
            s.resolved_within["300s"], None,
            "the unresolved one was watched 60 s"
        );
        assert_eq!(s.commands, 10, "invalid trials do not count");
        assert!((s.cost_per_resolved_usd.unwrap() - 0.125).abs() < 1e-9);
        assert!((s.pass_hat_k.unwrap() - 0.4).abs() < 1e-9, "C(4,3)/C(5,3)");
    }

    #[test]
    fn compare_says_when_n_is_too_small_and_finds_8_of_8_against_0_of_8() {
        let a: Vec<TrialRow> = (0..8)
            .map(|i| trial(i, "a", Verdict::Resolved, Some(900)))
            .collect();
        let b: Vec<TrialRow> = (0..8)
            .map(|i| trial(i, "b", Verdict::Unresolved, None))
            .collect();
        fn side<'a>(ts: &'a [TrialRow], v: &str) -> Side<'a> {
            Side {
                key: SliceKey {
                    subject: "ratelimiter".into(),
                    fault: "node_kill".into(),
                    variant: v.into(),
                    baseline: false,
                },
                trials: ts.iter().collect(),
            }
        }
        let c = compare(&side(&a, "a"), &side(&b, "b"), None, None);
        assert_eq!(c.test, "fisher");
        assert!((c.p_value.unwrap() - 0.000_155_4).abs() < 1e-6);
        assert!(!c.too_small);
        assert!(c.ttr_p_value.unwrap() < 0.001);
        let paired = compare(
            &side(&a, "a"),
            &side(&b, "b"),
            Some(&|t: &TrialRow| t.problem as u64),
            None,
        );
        assert_eq!((paired.test, paired.paired), ("mcnemar", Some(8)));
        assert!((paired.p_value.unwrap() - 2.0 / 256.0).abs() < 1e-12);
        let small = compare(&side(&a[..3], "a"), &side(&b[..3], "b"), None, None);
        assert!(small.too_small);
        let mut all = vec![c, small];
        correct(&mut all);
        assert!(all[0].p_adjusted.unwrap() >= all[0].p_value.unwrap());
    }
}
