//! Out-of-distribution detection by energy: how well E(x) tells the data a model was trained
//! on from data it was not, as the area under the ROC curve.

use crate::Error;
use serde::{Deserialize, Serialize};

/// What [`auroc`] returns.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Auroc {
    /// The area under the ROC curve of the detector "x is out of distribution when E(x) > t":
    /// the probability that a random outlier has a higher energy than a random inlier, ties
    /// counting one half. 1 separates perfectly, 0.5 is chance, below 0.5 the model prefers
    /// the outliers (as likelihood models notoriously can, Nalisnick et al. 2019).
    pub auroc: f64,
    /// Its standard error by the formula of Hanley & McNeil (1982), which treats the two sets
    /// as independent samples.
    pub standard_error: f64,
    /// Inliers scored.
    pub n_inliers: usize,
    /// Outliers scored.
    pub n_outliers: usize,
}

/// The AUROC of energies as an out-of-distribution score: `inliers` are the energies of
/// held-out data from the training distribution, `outliers` those of another set.
///
/// ```text
/// AUROC = 1/(m n) sum_{i, j} ( [E_out_j > E_in_i] + 1/2 [E_out_j = E_in_i] )
/// ```
///
/// computed from ranks (the Mann-Whitney U statistic) in O((m + n) log(m + n)).
///
/// ```
/// let a = ebm::eval::auroc(&[0.0, 1.0, 2.0], &[1.5, 3.0]).unwrap();
/// // Outlier 1.5 beats 2 of the 3 inliers, 3.0 beats all 3: (2 + 3) / 6.
/// assert!((a.auroc - 5.0 / 6.0).abs() < 1e-12);
/// ```
///
/// # Errors
/// [`Error::InvalidConfig`] for an empty set or a non-finite energy, naming the set and the
/// index.
pub fn auroc(inliers: &[f64], outliers: &[f64]) -> Result<Auroc, Error> {
    for (name, set) in [("inlier", inliers), ("outlier", outliers)] {
        if set.is_empty() {
            return Err(Error::config(
                format!("{name} energies"),
                "an empty set",
                "at least one energy",
            ));
        }
        if let Some(i) = set.iter().position(|e| !e.is_finite()) {
            return Err(Error::config(
                format!("{name} energy {i}"),
                set[i],
                "a finite number (the model's energy is broken at that point)",
            ));
        }
    }
    let (m, n) = (inliers.len(), outliers.len());
    // Pool, sort, and give tied values their mean rank (ranks from 1).
    let mut pooled: Vec<(f64, bool)> = inliers
        .iter()
        .map(|&e| (e, false))
        .chain(outliers.iter().map(|&e| (e, true)))
        .collect();
    pooled.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut outlier_rank_sum = 0.0;
    let mut start = 0;
    while start < pooled.len() {
        let mut end = start + 1;
        while end < pooled.len() && pooled[end].0 == pooled[start].0 {
            end += 1;
        }
        let mean_rank = (start + 1 + end) as f64 / 2.0;
        let tied_outliers = pooled[start..end].iter().filter(|p| p.1).count();
        outlier_rank_sum += mean_rank * tied_outliers as f64;
        start = end;
    }
    // U counts the (inlier, outlier) pairs with the outlier above, ties one half.
    let u = outlier_rank_sum - (n * (n + 1)) as f64 / 2.0;
    let a = u / (m as f64 * n as f64);

    // Hanley & McNeil: Q1 = P(two outliers both above one inlier), Q2 alike.
    let q1 = a / (2.0 - a);
    let q2 = 2.0 * a * a / (1.0 + a);
    let (mf, nf) = (m as f64, n as f64);
    let var = (a * (1.0 - a) + (nf - 1.0) * (q1 - a * a) + (mf - 1.0) * (q2 - a * a)) / (mf * nf);
    Ok(Auroc {
        auroc: a,
        standard_error: var.max(0.0).sqrt(),
        n_inliers: m,
        n_outliers: n,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_distr::{Distribution, StandardNormal};

    /// The direct O(m n) count, for comparison.
    fn by_pairs(inliers: &[f64], outliers: &[f64]) -> f64 {
        let mut s = 0.0;
        for &i in inliers {
            for &o in outliers {
                s += if o > i {
                    1.0
                } else if o == i {
                    0.5
                } else {
                    0.0
                };
            }
        }
        s / (inliers.len() * outliers.len()) as f64
    }

    #[test]
    fn ranks_agree_with_counting_pairs_ties_included() {
        // Values on a coarse grid so that many tie, within and across the sets; both ways
        // are sums of halves over at most 70 * 50 pairs, exact in f64.
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let draw = |rng: &mut rand::rngs::StdRng, shift: f64, n: usize| -> Vec<f64> {
            (0..n)
                .map(|_| {
                    let z: f64 = StandardNormal.sample(rng);
                    (2.0 * (z + shift)).round()
                })
                .collect()
        };
        let inliers = draw(&mut rng, 0.0, 70);
        let outliers = draw(&mut rng, 0.7, 50);
        let a = auroc(&inliers, &outliers).unwrap();
        assert_eq!(a.auroc, by_pairs(&inliers, &outliers));
        assert_eq!((a.n_inliers, a.n_outliers), (70, 50));
        // Swapping the sets turns the AUROC around 1/2.
        let b = auroc(&outliers, &inliers).unwrap();
        assert!((a.auroc + b.auroc - 1.0).abs() < 1e-12);
    }

    #[test]
    fn two_gaussians_give_the_closed_form_and_its_standard_error() {
        // Inliers N(0, 1), outliers N(mu, 1): AUROC = P(Y > X) = Phi(mu / sqrt 2). For
        // mu = 1, Phi(0.7071) = 0.76025. With 2,000 of each the Hanley-McNeil standard error
        // is ~0.0074; over 200 repetitions the mean must be within 4 standard errors of the
        // mean (0.0074 * 4 / sqrt 200 = 0.0021), and the spread of the estimates must match
        // the formula within 15% (the spread of a standard deviation from 200 draws is ~5%).
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let (reps, n) = (200, 2000);
        let mut values = Vec::new();
        let mut se = 0.0;
        for _ in 0..reps {
            let x: Vec<f64> = (0..n).map(|_| StandardNormal.sample(&mut rng)).collect();
            let y: Vec<f64> = (0..n)
                .map(|_| 1.0 + Distribution::<f64>::sample(&StandardNormal, &mut rng))
                .collect();
            let a = auroc(&x, &y).unwrap();
            values.push(a.auroc);
            se += a.standard_error / reps as f64;
        }
        let mean = values.iter().sum::<f64>() / reps as f64;
        let sd =
            (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (reps - 1) as f64).sqrt();
        assert!(
            (mean - 0.76025).abs() < 4.0 * se / (reps as f64).sqrt(),
            "mean {mean}"
        );
        assert!((sd / se - 1.0).abs() < 0.15, "spread {sd} vs formula {se}");
    }

    #[test]
    fn perfect_separation_and_bad_input() {
        let a = auroc(&[1.0, 2.0], &[3.0, 4.0, 5.0]).unwrap();
        assert_eq!(a.auroc, 1.0);
        assert_eq!(a.standard_error, 0.0);
        let e = auroc(&[], &[1.0]).unwrap_err().to_string();
        assert!(e.contains("inlier energies"), "{e}");
        let e = auroc(&[0.0], &[1.0, f64::NAN]).unwrap_err().to_string();
        assert!(e.contains("outlier energy 1") && e.contains("NaN"), "{e}");
    }
}
