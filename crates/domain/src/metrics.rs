//! Evaluation metrics over the runs of a job: pure functions, no I/O.
//!
//! The formulas, for `n` scored runs with rewards `x_1..x_n`:
//! - **mean reward** `m = Σx_i / n`;
//! - **standard error** `se = sqrt(s² / n)` with the sample variance
//!   `s² = Σ(x_i − m)² / (n − 1)`; undefined (`None`) for `n < 2`;
//! - **success rate**: the share of runs with `x_i ≥ threshold` (default 1.0);
//! - **pass@k** of one task with `n` scored runs of which `c` succeeded: the unbiased estimator
//!   `1 − C(n−c, k) / C(n, k)` (Chen et al. 2021), computed as `1 − Π_{i=n−c+1..n} (1 − k/i)`
//!   for numerical stability, and `1` when `n − c < k`; defined for `1 ≤ k ≤ n`. For a model,
//!   pass@k is the mean of its tasks' pass@k over the tasks with at least `k` scored runs;
//! - **percentiles** (p50, p95) interpolate linearly between the closest ranks: rank
//!   `p·(n−1)` of the sorted values (numpy's default);
//! - **paired comparison** of models `a` and `b` on the tasks both have scored runs for:
//!   per task `d_t = mean_a(t) − mean_b(t)`; the difference is `mean(d)` and its standard
//!   error `sqrt(s_d² / T)` over the `T` paired tasks (undefined for `T < 2`).
//!
//! Runs that failed (infrastructure errors) are counted, not scored: they have no reward.
//! Runs that timed out were graded and are scored with their reward.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The default reward at or above which a run counts as a success.
pub const DEFAULT_SUCCESS_THRESHOLD: f64 = 1.0;

/// One finished run, as metrics see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub model: String,
    /// The task's id (or index) within the taskset.
    pub task: String,
    /// The reward; `None` for a run that failed without being graded.
    pub reward: Option<f64>,
    pub duration_seconds: Option<f64>,
    pub steps: i64,
    pub tokens: u64,
    /// The run's cost in USD, when its model's price is known.
    pub cost_usd: Option<f64>,
}

/// Mean and percentiles of a quantity.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Distribution {
    pub mean: Option<f64>,
    pub p50: Option<f64>,
    pub p95: Option<f64>,
}

/// The metrics of a group of runs (a job, a model, a task).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Runs with a reward.
    pub scored: usize,
    /// Runs that failed without a reward.
    pub failed: usize,
    pub mean_reward: Option<f64>,
    pub reward_stderr: Option<f64>,
    pub success_rate: Option<f64>,
    /// pass@k by k, for k from 1 to the most scored runs of one task.
    #[serde(deserialize_with = "k_from_text")]
    pub pass_at_k: BTreeMap<usize, f64>,
    pub duration_seconds: Distribution,
    pub steps: Distribution,
    pub tokens: Distribution,
    /// Cost per run in USD, over the runs whose cost is known.
    pub cost_usd: Distribution,
    /// The summed cost in USD of the runs whose cost is known.
    pub total_cost_usd: Option<f64>,
}

/// One task's metrics within a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskMetrics {
    pub task: String,
    #[serde(flatten)]
    pub summary: Summary,
}

/// One model's metrics, overall and per task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelMetrics {
    pub model: String,
    #[serde(flatten)]
    pub summary: Summary,
    pub tasks: Vec<TaskMetrics>,
}

/// A job's metrics: overall, per model (and per task within each model).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobMetrics {
    pub threshold: f64,
    pub overall: Summary,
    pub models: Vec<ModelMetrics>,
}

/// One task of a paired comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairedTask {
    pub task: String,
    pub a: f64,
    pub b: f64,
    pub difference: f64,
}

/// Model `a` against model `b` on the tasks both were scored on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub a: String,
    pub b: String,
    /// Tasks with scored runs of both models.
    pub paired_tasks: usize,
    /// Mean over paired tasks of model a's per-task mean reward.
    pub mean_a: Option<f64>,
    pub mean_b: Option<f64>,
    /// Mean of the per-task differences a − b.
    pub difference: Option<f64>,
    pub difference_stderr: Option<f64>,
    pub tasks: Vec<PairedTask>,
}

/// The arithmetic mean; `None` for no values.
pub fn mean(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        None
    } else {
        Some(values.iter().sum::<f64>() / values.len() as f64)
    }
}

/// The standard error of the mean, `sqrt(s²/n)` with the `n − 1` sample variance; `None`
/// for fewer than two values.
pub fn standard_error(values: &[f64]) -> Option<f64> {
    let n = values.len();
    if n < 2 {
        return None;
    }
    let m = mean(values)?;
    let variance = values.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1) as f64;
    Some((variance / n as f64).sqrt())
}

/// The unbiased pass@k of one task with `n` scored runs, `c` of them successes:
/// `1 − C(n−c, k)/C(n, k)`. `None` unless `1 ≤ k ≤ n` and `c ≤ n`.
pub fn pass_at_k(n: usize, c: usize, k: usize) -> Option<f64> {
    if k == 0 || k > n || c > n {
        return None;
    }
    if n - c < k {
        return Some(1.0);
    }
    let all_fail: f64 = ((n - c + 1)..=n)
        .map(|i| 1.0 - k as f64 / i as f64)
        .product();
    Some(1.0 - all_fail)
}

/// The `p`-th quantile (0..=1) by linear interpolation between closest ranks.
pub fn percentile(values: &[f64], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = p.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let low = rank.floor() as usize;
    let high = rank.ceil() as usize;
    let fraction = rank - low as f64;
    Some(sorted[low] + (sorted[high] - sorted[low]) * fraction)
}

/// Mean, p50 and p95 of `values`.
pub fn distribution(values: &[f64]) -> Distribution {
    Distribution {
        mean: mean(values),
        p50: percentile(values, 0.5),
        p95: percentile(values, 0.95),
    }
}

/// The metrics of a group of samples, which may span several tasks.
pub fn summarize(samples: &[&Sample], threshold: f64) -> Summary {
    let rewards: Vec<f64> = samples.iter().filter_map(|s| s.reward).collect();
    let successes = rewards.iter().filter(|r| **r >= threshold).count();
    let durations: Vec<f64> = samples.iter().filter_map(|s| s.duration_seconds).collect();
    let steps: Vec<f64> = samples.iter().map(|s| s.steps as f64).collect();
    let tokens: Vec<f64> = samples.iter().map(|s| s.tokens as f64).collect();
    let costs: Vec<f64> = samples.iter().filter_map(|s| s.cost_usd).collect();
    Summary {
        scored: rewards.len(),
        failed: samples.len() - rewards.len(),
        mean_reward: mean(&rewards),
        reward_stderr: standard_error(&rewards),
        success_rate: (!rewards.is_empty()).then(|| successes as f64 / rewards.len() as f64),
        pass_at_k: pass_at_k_over_tasks(samples, threshold),
        duration_seconds: distribution(&durations),
        steps: distribution(&steps),
        tokens: distribution(&tokens),
        cost_usd: distribution(&costs),
        total_cost_usd: (!costs.is_empty()).then(|| costs.iter().sum()),
    }
}

/// pass@k for every k up to the largest number of scored runs of one task: the mean over
/// tasks with at least k scored runs of each task's pass@k.
fn pass_at_k_over_tasks(samples: &[&Sample], threshold: f64) -> BTreeMap<usize, f64> {
    let mut per_task: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for sample in samples {
        if let Some(reward) = sample.reward {
            let entry = per_task.entry(sample.task.as_str()).or_default();
            entry.0 += 1;
            if reward >= threshold {
                entry.1 += 1;
            }
        }
    }
    let most = per_task.values().map(|(n, _)| *n).max().unwrap_or(0);
    (1..=most)
        .filter_map(|k| {
            let values: Vec<f64> = per_task
                .values()
                .filter_map(|(n, c)| pass_at_k(*n, *c, k))
                .collect();
            mean(&values).map(|value| (k, value))
        })
        .collect()
}

/// Metrics of a whole job: overall, per model (in first-seen order) and per task within each
/// model (in first-seen order).
pub fn job_metrics(samples: &[Sample], threshold: f64) -> JobMetrics {
    let all: Vec<&Sample> = samples.iter().collect();
    let models = first_seen(samples.iter().map(|s| s.model.as_str()))
        .into_iter()
        .map(|model| {
            let of_model: Vec<&Sample> = samples.iter().filter(|s| s.model == model).collect();
            let tasks = first_seen(of_model.iter().map(|s| s.task.as_str()))
                .into_iter()
                .map(|task| {
                    let of_task: Vec<&Sample> = of_model
                        .iter()
                        .copied()
                        .filter(|s| s.task == task)
                        .collect();
                    TaskMetrics {
                        task: task.to_string(),
                        summary: summarize(&of_task, threshold),
                    }
                })
                .collect();
            ModelMetrics {
                model: model.to_string(),
                summary: summarize(&of_model, threshold),
                tasks,
            }
        })
        .collect();
    JobMetrics {
        threshold,
        overall: summarize(&all, threshold),
        models,
    }
}

/// Compares model `a` with model `b`, paired by task (tasks in first-seen order).
pub fn compare(samples: &[Sample], a: &str, b: &str) -> Comparison {
    let task_mean = |model: &str, task: &str| {
        let rewards: Vec<f64> = samples
            .iter()
            .filter(|s| s.model == model && s.task == task)
            .filter_map(|s| s.reward)
            .collect();
        mean(&rewards)
    };
    let tasks: Vec<PairedTask> = first_seen(samples.iter().map(|s| s.task.as_str()))
        .into_iter()
        .filter_map(|task| {
            let mean_a = task_mean(a, task)?;
            let mean_b = task_mean(b, task)?;
            Some(PairedTask {
                task: task.to_string(),
                a: mean_a,
                b: mean_b,
                difference: mean_a - mean_b,
            })
        })
        .collect();
    let column = |f: fn(&PairedTask) -> f64| tasks.iter().map(f).collect::<Vec<f64>>();
    let differences = column(|t| t.difference);
    Comparison {
        a: a.to_string(),
        b: b.to_string(),
        paired_tasks: tasks.len(),
        mean_a: mean(&column(|t| t.a)),
        mean_b: mean(&column(|t| t.b)),
        difference: mean(&differences),
        difference_stderr: standard_error(&differences),
        tasks,
    }
}

fn first_seen<'a>(items: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut seen = Vec::new();
    for item in items {
        if !seen.contains(&item) {
            seen.push(item);
        }
    }
    seen
}

/// `pass_at_k`'s keys as JSON writes them (`"1"`). serde reads number keys from text only
/// outside `#[serde(flatten)]`, and `Summary` is flattened into the model and task metrics.
fn k_from_text<'de, D>(deserializer: D) -> Result<BTreeMap<usize, f64>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let by_text: BTreeMap<String, f64> = serde::Deserialize::deserialize(deserializer)?;
    by_text
        .into_iter()
        .map(|(k, v)| {
            k.parse()
                .map(|k| (k, v))
                .map_err(|_| serde::de::Error::custom(format!("pass_at_k: '{k}' is not a k")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(actual: Option<f64>, expected: f64) {
        let actual = actual.unwrap();
        assert!((actual - expected).abs() < 1e-12, "{actual} != {expected}");
    }

    #[test]
    fn metrics_read_back_from_their_json() {
        let samples = vec![
            sample("m", "t1", Some(1.0), 1.0),
            sample("m", "t1", Some(0.0), 1.0),
            sample("m", "t2", Some(1.0), 1.0),
        ];
        let metrics = job_metrics(&samples, 1.0);
        assert!(!metrics.models[0].summary.pass_at_k.is_empty());
        let text = serde_json::to_string(&metrics).unwrap();
        let back: JobMetrics = serde_json::from_str(&text).unwrap();
        assert_eq!(back, metrics);
    }

    fn sample(model: &str, task: &str, reward: Option<f64>, duration: f64) -> Sample {
        Sample {
            model: model.into(),
            task: task.into(),
            reward,
            duration_seconds: Some(duration),
            steps: 2,
            tokens: 100,
            cost_usd: Some(0.5),
        }
    }

    #[test]
    fn mean_and_standard_error_match_hand_computation() {
        // mean 0.5; s² = (0.25 * 4) / 3 = 1/3; se = sqrt(1/12).
        let values = [0.0, 1.0, 0.0, 1.0];
        close(mean(&values), 0.5);
        close(standard_error(&values), (1.0f64 / 12.0).sqrt());
        assert_eq!(standard_error(&[1.0]), None);
        assert_eq!(mean(&[]), None);
    }

    #[test]
    fn pass_at_k_is_the_unbiased_estimator() {
        // n = 3, c = 1: pass@1 = 1/3, pass@2 = 1 - C(2,2)/C(3,2) = 2/3, pass@3 = 1.
        close(pass_at_k(3, 1, 1), 1.0 / 3.0);
        close(pass_at_k(3, 1, 2), 2.0 / 3.0);
        close(pass_at_k(3, 1, 3), 1.0);
        // n = 5, c = 2, k = 2: 1 - C(3,2)/C(5,2) = 1 - 3/10.
        close(pass_at_k(5, 2, 2), 0.7);
        close(pass_at_k(4, 0, 2), 0.0);
        close(pass_at_k(4, 4, 1), 1.0);
        assert_eq!(pass_at_k(3, 1, 4), None);
        assert_eq!(pass_at_k(3, 1, 0), None);
    }

    #[test]
    fn percentiles_interpolate_between_ranks() {
        let values = [4.0, 1.0, 3.0, 2.0];
        // rank 1.5 → 2.5; rank 2.85 → 3 + 0.85.
        close(percentile(&values, 0.5), 2.5);
        close(percentile(&values, 0.95), 3.85);
        close(percentile(&[7.0], 0.95), 7.0);
        assert_eq!(percentile(&[], 0.5), None);
    }

    #[test]
    fn job_metrics_per_model_and_task() {
        let samples = vec![
            sample("m", "t1", Some(1.0), 1.0),
            sample("m", "t1", Some(0.0), 2.0),
            sample("m", "t1", Some(1.0), 3.0),
            sample("m", "t2", Some(0.0), 4.0),
            sample("m", "t2", Some(0.5), 5.0),
            sample("m", "t2", None, 6.0),
        ];
        let metrics = job_metrics(&samples, 1.0);
        let model = &metrics.models[0];
        assert_eq!(model.summary.scored, 5);
        assert_eq!(model.summary.failed, 1);
        close(model.summary.mean_reward, 2.5 / 5.0);
        // rewards 1,0,1,0,.5: Σ(x-.5)² = 1.0; s² = .25; se = sqrt(.25/5).
        close(model.summary.reward_stderr, (0.05f64).sqrt());
        close(model.summary.success_rate, 0.4);
        // t1: n=3, c=2 → pass@1 = 2/3, pass@2 = 1, pass@3 = 1; t2: n=2, c=0 → 0, 0.
        close(model.summary.pass_at_k.get(&1).copied(), (2.0 / 3.0) / 2.0);
        close(model.summary.pass_at_k.get(&2).copied(), 0.5);
        close(model.summary.pass_at_k.get(&3).copied(), 1.0);
        close(model.summary.duration_seconds.mean, 3.5);
        close(model.summary.duration_seconds.p50, 3.5);
        close(model.summary.duration_seconds.p95, 5.75);
        assert_eq!(model.tasks.len(), 2);
        assert_eq!(model.tasks[0].task, "t1");
        close(model.tasks[0].summary.mean_reward, 2.0 / 3.0);
        assert_eq!(metrics.overall, model.summary);
    }

    #[test]
    fn paired_comparison_of_two_models() {
        let samples = vec![
            sample("a", "t1", Some(1.0), 1.0),
            sample("a", "t1", Some(1.0), 1.0),
            sample("a", "t2", Some(0.0), 1.0),
            sample("a", "t3", Some(1.0), 1.0),
            sample("b", "t1", Some(0.0), 1.0),
            sample("b", "t1", Some(1.0), 1.0),
            sample("b", "t2", Some(0.0), 1.0),
            sample("b", "t3", Some(0.0), 1.0),
            sample("b", "t4", Some(1.0), 1.0),
        ];
        let comparison = compare(&samples, "a", "b");
        // d = (0.5, 0, 1): mean 0.5, s² = (0 + .25 + .25)/2 = .25, se = sqrt(.25/3).
        assert_eq!(comparison.paired_tasks, 3);
        close(comparison.difference, 0.5);
        close(comparison.difference_stderr, (0.25f64 / 3.0).sqrt());
        close(comparison.mean_a, 2.0 / 3.0);
        close(comparison.mean_b, 1.0 / 6.0);
        assert_eq!(comparison.tasks[0].difference, 0.5);
    }
}
