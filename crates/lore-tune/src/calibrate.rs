//! Fitting a reranker's [`Calibration`] on held-out questions: logistic regression of relevance
//! on its score and the first-stage rank.

use std::path::Path;

use lore_core::{Calibration, Error, Result};

/// A candidate of a held-out question: the reranker's score, its 1-based rank in the search
/// that found it (when there was one), and whether it is relevant.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Judged {
    /// The reranker's raw score.
    pub score: f32,
    /// The first-stage rank; `None` for candidates that were not ranked by a search.
    pub rank: Option<usize>,
    /// Whether the candidate is relevant.
    pub relevant: bool,
}

/// Saves `calibration` beside the reranker in model folder `dir`, as the `calibration.json` that
/// `lore-models` reads with it; written whole or not at all.
pub fn write_calibration(dir: &Path, calibration: &Calibration) -> Result<()> {
    crate::train::write_json(&dir.join("calibration.json"), calibration)
}

/// Fits a [`Calibration`] to `samples` by maximum likelihood (Newton's method). A small L2
/// penalty on the weights keeps them finite when the scores separate the classes perfectly;
/// without ranks the rank weight stays 0.
///
/// ```
/// use lore_tune::{Judged, fit_calibration};
/// let samples: Vec<Judged> = (0..40)
///     .map(|i| Judged { score: i as f32 / 10.0 - 2.0, rank: None, relevant: i % 3 == 0 || i > 30 })
///     .collect();
/// let calibration = fit_calibration(&samples).unwrap();
/// assert!(calibration.score_weight > 0.0 && calibration.rank_weight == 0.0);
/// assert!(calibration.probability(2.0, 1) > calibration.probability(-2.0, 1));
/// ```
pub fn fit_calibration(samples: &[Judged]) -> Result<Calibration> {
    if !samples.iter().any(|s| s.relevant) || samples.iter().all(|s| s.relevant) {
        return Err(Error::InvalidInput(
            "calibration needs held-out candidates both relevant and not: hold out more questions (--validation)"
                .into(),
        ));
    }
    let ranked = samples.iter().all(|s| s.rank.is_some());
    let features = |s: &Judged| -> [f64; 3] {
        let rank = if ranked { -(s.rank.unwrap_or(1).max(1) as f64).ln() } else { 0.0 };
        [s.score as f64, rank, 1.0]
    };
    const PENALTY: f64 = 1e-2;
    let mut theta = [0.0f64; 3];
    for _ in 0..100 {
        let mut gradient = [PENALTY * theta[0], PENALTY * theta[1], 0.0];
        let mut hessian = [[PENALTY, 0.0, 0.0], [0.0, PENALTY, 0.0], [0.0, 0.0, 1e-9]];
        for sample in samples {
            let x = features(sample);
            let p = 1.0 / (1.0 + (-(theta[0] * x[0] + theta[1] * x[1] + theta[2] * x[2])).exp());
            let residual = p - if sample.relevant { 1.0 } else { 0.0 };
            for i in 0..3 {
                gradient[i] += residual * x[i];
                for j in 0..3 {
                    hessian[i][j] += p * (1.0 - p) * x[i] * x[j];
                }
            }
        }
        let step = solve(hessian, gradient);
        for i in 0..3 {
            theta[i] -= step[i];
        }
        if step.iter().all(|d| d.abs() < 1e-9) {
            break;
        }
    }
    if theta.iter().any(|t| !t.is_finite()) {
        return Err(Error::Model("the calibration did not converge: the held-out scores are not finite".into()));
    }
    Ok(Calibration { score_weight: theta[0] as f32, rank_weight: theta[1] as f32, bias: theta[2] as f32 })
}

/// Solves `a · x = b` by Gaussian elimination with partial pivoting (`a` is positive definite).
fn solve(mut a: [[f64; 3]; 3], mut b: [f64; 3]) -> [f64; 3] {
    for column in 0..3 {
        let pivot = (column..3).max_by(|&i, &j| a[i][column].abs().total_cmp(&a[j][column].abs())).unwrap_or(column);
        a.swap(column, pivot);
        b.swap(column, pivot);
        let pivot_row = a[column];
        for row in column + 1..3 {
            let factor = a[row][column] / pivot_row[column];
            for (value, above) in a[row].iter_mut().zip(pivot_row).skip(column) {
                *value -= factor * above;
            }
            b[row] -= factor * b[column];
        }
    }
    let mut x = [0.0; 3];
    for row in (0..3).rev() {
        let tail: f64 = (row + 1..3).map(|k| a[row][k] * x[k]).sum();
        x[row] = (b[row] - tail) / a[row][row];
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn recovers_the_weights_that_generated_the_labels() {
        let truth = Calibration { score_weight: 1.5, rank_weight: 0.8, bias: -0.5 };
        let mut rng = Rng::new(3);
        let samples: Vec<Judged> = (0..20_000)
            .map(|_| {
                let score = rng.normal() * 2.0;
                let rank = 1 + (rng.next_u64() % 20) as usize;
                Judged { score, rank: Some(rank), relevant: rng.unit() < truth.probability(score, rank) }
            })
            .collect();
        let fitted = fit_calibration(&samples).unwrap();
        assert!((fitted.score_weight - 1.5).abs() < 0.1, "{fitted:?}");
        assert!((fitted.rank_weight - 0.8).abs() < 0.1, "{fitted:?}");
        assert!((fitted.bias + 0.5).abs() < 0.15, "{fitted:?}");
    }

    #[test]
    fn one_class_is_refused() {
        let samples = [Judged { score: 1.0, rank: None, relevant: true }];
        assert!(fit_calibration(&samples).unwrap_err().to_string().contains("--validation"));
    }
}
