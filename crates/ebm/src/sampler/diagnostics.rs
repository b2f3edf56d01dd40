//! Chain diagnostics: effective sample size, split R-hat, traces and acceptance summaries.
//!
//! # Input
//! The estimators take the draws of one scalar quantity as `&[Vec<f64>]`: one `Vec` per chain,
//! in the order drawn, all of the same length (`chains[c][t]` is draw `t` of chain `c`). A
//! [`Trace`] holds the positions of a batch of chains as a tensor `[n_draws, n_chains, ...]`
//! and applies the estimators to each component of the position (flattened row-major over the
//! trailing dimensions), returning one value per component.
//!
//! # Estimators
//! Two flavours, as in Stan and ArviZ (Vehtari, Gelman, Simpson, Carpenter & Bürkner,
//! "Rank-normalization, folding, and localization: an improved R-hat for assessing convergence
//! of MCMC", Bayesian Analysis 2021):
//! * plain: [`effective_sample_size`] and [`split_rhat`] work on the draws themselves (Stan's
//!   `ess_basic` and `rhat_basic`; BDA3's split R-hat). They measure the precision of the mean
//!   and assume finite variance.
//! * rank-normalised: [`bulk_effective_sample_size`] and [`rank_normalized_split_rhat`] first
//!   replace every draw by the normal quantile of its pooled rank,
//!   `z = Phi^-1((r - 3/8) / (S + 1/4))` (`S` draws in all, average ranks for ties). They work
//!   for heavy tails, and the R-hat also checks the folded draws `|x - median|`, so that chains
//!   with equal location but different scales are caught.
//!
//! All four split each chain into halves first (dropping the middle draw of an odd length), so
//! that a trend within a chain shows up as disagreement between chains. The autocovariances
//! are computed directly, lag by lag, only up to where Geyer's sequence stops: O(S * lags)
//! for S draws, without an FFT.

use super::{ChainState, Sampler, StepInfo};
use crate::Error;
use crate::energy::Energy;
use ebm_tensor::{Float, Tensor};
use rand::Rng;

/// Effective sample size of the mean of one scalar quantity, from several chains.
///
/// With `M` split chains of `N` draws (chain means `m_c`, within-chain variances `W_c`, biased
/// autocovariances `acov_c(t)`), the multi-chain autocorrelation at lag `t` is
///
/// ```text
/// var+   = (N - 1) / N * mean_c W_c + var_c(m_c)           (the pooled variance)
/// rho(t) = 1 - (mean_c W_c - mean_c acov_c(t)) / var+
/// ESS    = M N / tau,   tau = -1 + 2 sum_{t < K} rho(t) + rho(K)
/// ```
///
/// where the sum runs over Geyer's initial positive sequence (pairs `rho(2k) + rho(2k + 1)`,
/// stopped before the first negative pair) made monotone (initial monotone sequence), and
/// `tau >= 1 / log10(M N)`. This is Stan's `ess_basic` (split chains, no rank
/// normalisation): for independent draws it is about the number of draws; for an AR(1) chain
/// with coefficient `rho`, about `n (1 - rho) / (1 + rho)`.
///
/// Geyer, "Practical Markov chain Monte Carlo", Statistical Science 1992; Stan reference
/// manual, "Effective sample size"; Vehtari et al. 2021.
///
/// # Cost
/// O(S * K) for S draws in all and K lags before the sequence stops.
///
/// # Returns
/// The effective sample size; NaN when a draw is not finite or every draw is the same.
///
/// # Errors
/// [`Error::Shape`] when there are no chains, the chains differ in length or have fewer than
/// 4 draws.
///
/// # Example
/// ```
/// use ebm::sampler::effective_sample_size;
/// use rand::{RngExt, SeedableRng};
///
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let chains: Vec<Vec<f64>> = (0..4)
///     .map(|_| (0..500).map(|_| rng.random::<f64>()).collect())
///     .collect();
/// let ess = effective_sample_size(&chains).unwrap();
/// assert!((ess - 2000.0).abs() < 400.0);
/// ```
pub fn effective_sample_size(chains: &[Vec<f64>]) -> Result<f64, Error> {
    check_chains(chains)?;
    Ok(ess_of_split(&split_chains(chains)))
}

/// The effective sample size of the rank-normalised draws: Stan's and ArviZ's "bulk" ESS.
///
/// [`effective_sample_size`] of `z = Phi^-1((r - 3/8) / (S + 1/4))`, where `r` is the rank
/// of each draw among all `S` draws of all chains. It measures how well the centre of the
/// distribution is explored and is defined for heavy-tailed distributions too.
///
/// Vehtari et al., "Rank-normalization, folding, and localization", Bayesian Analysis 2021.
///
/// # Returns
/// The bulk effective sample size; NaN when a draw is not finite or every draw is the same.
///
/// # Errors
/// As [`effective_sample_size`].
pub fn bulk_effective_sample_size(chains: &[Vec<f64>]) -> Result<f64, Error> {
    check_chains(chains)?;
    if has_non_finite(chains) {
        return Ok(f64::NAN);
    }
    Ok(ess_of_split(&rank_normalize(&split_chains(chains))))
}

/// Split R-hat (potential scale reduction factor) of one scalar quantity.
///
/// With the chains split into `M` halves of `N` draws, chain means `m_c` and within-chain
/// variances `W_c` (divisor `N - 1`):
///
/// ```text
/// W     = mean_c W_c,       B / N = var_c(m_c)
/// R-hat = sqrt(((N - 1) / N * W + B / N) / W)
/// ```
///
/// About 1 when all chains sample the same distribution; values above 1.01 say the chains
/// have not mixed (Vehtari et al. 2021 recommend 1.01 as the threshold).
///
/// Gelman, Carlin, Stern, Dunson, Vehtari & Rubin, "Bayesian Data Analysis", 3rd ed., 2013,
/// section 11.4; Stan's `rhat_basic`.
///
/// # Returns
/// R-hat; NaN when a draw is not finite or every chain half is constant.
///
/// # Errors
/// As [`effective_sample_size`].
///
/// # Example
/// ```
/// use ebm::sampler::split_rhat;
///
/// // Two chains stuck in different places.
/// let chains = vec![vec![0.0, 0.1, -0.1, 0.0], vec![5.0, 5.1, 4.9, 5.0]];
/// assert!(split_rhat(&chains).unwrap() > 10.0);
/// ```
pub fn split_rhat(chains: &[Vec<f64>]) -> Result<f64, Error> {
    check_chains(chains)?;
    Ok(rhat_of_split(&split_chains(chains)))
}

/// Rank-normalised split R-hat: the larger of the split R-hat of the rank-normalised draws and
/// that of the rank-normalised folded draws `|x - median(x)|`.
///
/// The folded version detects chains that agree in location but not in scale, which the
/// plain [`split_rhat`] misses. This is the R-hat of Stan and ArviZ since 2021.
///
/// Vehtari et al., "Rank-normalization, folding, and localization", Bayesian Analysis 2021.
///
/// # Returns
/// R-hat; NaN when a draw is not finite or every draw is the same.
///
/// # Errors
/// As [`effective_sample_size`].
pub fn rank_normalized_split_rhat(chains: &[Vec<f64>]) -> Result<f64, Error> {
    check_chains(chains)?;
    if has_non_finite(chains) {
        return Ok(f64::NAN);
    }
    let split = split_chains(chains);
    let bulk = rhat_of_split(&rank_normalize(&split));

    let mut pooled: Vec<f64> = split.iter().flatten().copied().collect();
    pooled.sort_by(f64::total_cmp);
    let median = median_of_sorted(&pooled);
    let folded: Vec<Vec<f64>> = split
        .iter()
        .map(|c| c.iter().map(|x| (x - median).abs()).collect())
        .collect();
    let tail = rhat_of_split(&rank_normalize(&folded));
    Ok(bulk.max(tail))
}

/// `Ok(())` when there is at least one chain, all of one length of at least 4 draws.
fn check_chains(chains: &[Vec<f64>]) -> Result<(), Error> {
    let n = chains.first().map_or(0, Vec::len);
    if n < 4 || chains.iter().any(|c| c.len() != n) {
        return Err(Error::Shape {
            what: "chain diagnostics (lengths of the chains)".into(),
            expected: "at least one chain, all chains of the same length, at least 4 draws each"
                .into(),
            found: chains.iter().map(Vec::len).collect(),
        });
    }
    Ok(())
}

fn has_non_finite(chains: &[Vec<f64>]) -> bool {
    chains.iter().flatten().any(|x| !x.is_finite())
}

/// Each chain cut into its first and second halves; the middle draw of an odd length is
/// dropped.
fn split_chains(chains: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let half = chains[0].len() / 2;
    chains
        .iter()
        .flat_map(|c| [c[..half].to_vec(), c[c.len() - half..].to_vec()])
        .collect()
}

fn mean(x: &[f64]) -> f64 {
    x.iter().sum::<f64>() / x.len() as f64
}

/// The sample variance (divisor `n - 1`); 0 for a single value.
fn sample_variance(x: &[f64]) -> f64 {
    if x.len() < 2 {
        return 0.0;
    }
    let m = mean(x);
    x.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / (x.len() - 1) as f64
}

fn median_of_sorted(x: &[f64]) -> f64 {
    let n = x.len();
    if n % 2 == 1 {
        x[n / 2]
    } else {
        0.5 * (x[n / 2 - 1] + x[n / 2])
    }
}

/// The split R-hat of chains that are already split.
fn rhat_of_split(chains: &[Vec<f64>]) -> f64 {
    if has_non_finite(chains) {
        return f64::NAN;
    }
    let n = chains[0].len() as f64;
    let means: Vec<f64> = chains.iter().map(|c| mean(c)).collect();
    let within = mean(
        &chains
            .iter()
            .map(|c| sample_variance(c))
            .collect::<Vec<_>>(),
    );
    if within <= 0.0 {
        return f64::NAN;
    }
    let between_over_n = sample_variance(&means);
    let var_plus = (n - 1.0) / n * within + between_over_n;
    (var_plus / within).sqrt()
}

/// The effective sample size of chains that are already split (see
/// [`effective_sample_size`] for the formula).
fn ess_of_split(chains: &[Vec<f64>]) -> f64 {
    if has_non_finite(chains) {
        return f64::NAN;
    }
    let m = chains.len();
    let n = chains[0].len();
    let means: Vec<f64> = chains.iter().map(|c| mean(c)).collect();
    let centred: Vec<Vec<f64>> = chains
        .iter()
        .zip(&means)
        .map(|(c, mu)| c.iter().map(|x| x - mu).collect())
        .collect();

    // Mean over chains of the biased autocovariance at lag t.
    let mean_acov = |t: usize| -> f64 {
        let total: f64 = centred
            .iter()
            .map(|c| {
                c[..n - t]
                    .iter()
                    .zip(&c[t..])
                    .map(|(a, b)| a * b)
                    .sum::<f64>()
            })
            .sum();
        total / (n as f64 * m as f64)
    };
    let acov0 = mean_acov(0);
    let mean_var = acov0 * n as f64 / (n as f64 - 1.0);
    let mut var_plus = mean_var * (n as f64 - 1.0) / n as f64;
    if m > 1 {
        var_plus += sample_variance(&means);
    }
    if var_plus <= 0.0 {
        return f64::NAN;
    }
    let rho_at = |t: usize| 1.0 - (mean_var - mean_acov(t)) / var_plus;

    // Geyer's initial positive sequence: pairs of lags while their sum stays positive.
    let mut rho = vec![0.0; n];
    rho[0] = 1.0;
    let mut rho_even = 1.0;
    let mut rho_odd = rho_at(1);
    rho[1] = rho_odd;
    let mut t = 0;
    while t + 5 < n && rho_even + rho_odd > 0.0 {
        t += 2;
        rho_even = rho_at(t);
        rho_odd = rho_at(t + 1);
        if rho_even + rho_odd >= 0.0 {
            rho[t] = rho_even;
            rho[t + 1] = rho_odd;
        }
    }
    let max_t = t;
    if rho_even > 0.0 {
        rho[max_t] = rho_even;
    }

    // Geyer's initial monotone sequence: pair sums may not increase.
    let mut t = 0;
    while t + 4 <= max_t {
        t += 2;
        let previous = rho[t - 2] + rho[t - 1];
        if rho[t] + rho[t + 1] > previous {
            rho[t] = previous / 2.0;
            rho[t + 1] = previous / 2.0;
        }
    }

    let draws = (m * n) as f64;
    let tau = -1.0 + 2.0 * rho[..max_t].iter().sum::<f64>() + rho[max_t];
    let tau = tau.max(1.0 / draws.log10());
    draws / tau
}

/// Every draw replaced by `Phi^-1((r - 3/8) / (S + 1/4))`, `r` its average rank among all
/// `S` draws.
fn rank_normalize(chains: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let pooled: Vec<f64> = chains.iter().flatten().copied().collect();
    let s = pooled.len();
    let mut order: Vec<usize> = (0..s).collect();
    order.sort_by(|&a, &b| pooled[a].total_cmp(&pooled[b]));

    // Average ranks (1-based) over runs of ties.
    let mut ranks = vec![0.0; s];
    let mut i = 0;
    while i < s {
        let mut j = i;
        while j + 1 < s && pooled[order[j + 1]] == pooled[order[i]] {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            ranks[k] = rank;
        }
        i = j + 1;
    }

    let z: Vec<f64> = ranks
        .iter()
        .map(|r| normal_quantile((r - 0.375) / (s as f64 + 0.25)))
        .collect();
    z.chunks(chains[0].len()).map(<[f64]>::to_vec).collect()
}

/// The standard normal quantile Phi^-1(p) for p in (0, 1), by Acklam's rational
/// approximation (relative error below 1.2e-9, ample for rank normalisation).
fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.38357751867269e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e1,
        1.615858368580409e2,
        -1.556989798598866e2,
        6.680131188771972e1,
        -1.328068155288572e1,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [
        7.784695709041462e-3,
        3.224671290700398e-1,
        2.445134137142996,
        3.754408661907416,
    ];
    const P_LOW: f64 = 0.02425;

    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < P_LOW {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - P_LOW {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

/// A sampler state whose positions a [`Trace`] records.
pub trait HasPosition<T: Float> {
    /// The positions of the chains, `[n_chains, ...]`.
    fn position(&self) -> &Tensor<T>;
}

impl<T: Float> HasPosition<T> for ChainState<T> {
    fn position(&self) -> &Tensor<T> {
        &self.position
    }
}

/// A step's info record that reports per-chain acceptance and divergence, for
/// [`acceptance_summary`].
pub trait HasAcceptance {
    /// The Metropolis-Hastings acceptance probability of each chain's proposal (1 for
    /// unadjusted samplers).
    fn acceptance_probabilities(&self) -> Vec<f64>;

    /// Whether each chain diverged at this step.
    fn divergent(&self) -> &[bool];
}

impl<T: Float> HasAcceptance for StepInfo<T> {
    fn acceptance_probabilities(&self) -> Vec<f64> {
        self.acceptance_probability.to_f64s()
    }

    fn divergent(&self) -> &[bool] {
        &self.is_divergent
    }
}

/// Acceptance and divergences over the steps of a run.
#[derive(Clone, Debug, PartialEq)]
pub struct AcceptanceSummary {
    /// The number of steps summarised.
    pub n_steps: usize,
    /// The mean acceptance probability over steps and chains (NaN for no steps).
    pub mean: f64,
    /// The mean acceptance probability of each chain over the steps.
    pub per_chain: Vec<f64>,
    /// The number of (step, chain) pairs flagged divergent.
    pub n_divergent: usize,
}

/// The acceptance summary of the info records of a run (as [`super::run`] returns them).
///
/// # Panics
/// When the records disagree on the number of chains.
#[track_caller]
pub fn acceptance_summary<I: HasAcceptance>(infos: &[I]) -> AcceptanceSummary {
    let n_chains = infos.first().map_or(0, |i| i.divergent().len());
    let mut per_chain = vec![0.0; n_chains];
    let mut n_divergent = 0;
    for info in infos {
        let p = info.acceptance_probabilities();
        assert_eq!(
            p.len(),
            n_chains,
            "acceptance_summary: a step reports {} chains, the first {n_chains}",
            p.len()
        );
        for (total, v) in per_chain.iter_mut().zip(p) {
            *total += v;
        }
        n_divergent += info.divergent().iter().filter(|&&d| d).count();
    }
    let n_steps = infos.len();
    per_chain.iter_mut().for_each(|v| *v /= n_steps as f64);
    AcceptanceSummary {
        n_steps,
        mean: mean(&per_chain),
        per_chain,
        n_divergent,
    }
}

/// The positions of a batch of chains, recorded every `thin` steps, with the acceptance
/// summary of the run: what [`trace`] returns.
#[derive(Clone, Debug)]
pub struct Trace<T: Float> {
    /// The recorded positions, `[n_draws, n_chains, ...]`: draw `k` is the position after step
    /// `(k + 1) * thin`.
    pub draws: Tensor<T>,
    /// Steps between recorded draws.
    pub thin: usize,
    /// Acceptance over every step of the run (thinned or not).
    pub acceptance: AcceptanceSummary,
}

impl<T: Float> Trace<T> {
    /// The number of recorded draws per chain.
    pub fn n_draws(&self) -> usize {
        self.draws.dim(0)
    }

    /// The number of chains.
    pub fn n_chains(&self) -> usize {
        self.draws.dim(1)
    }

    /// The number of scalar components of a position (the product of the trailing
    /// dimensions).
    pub fn n_components(&self) -> usize {
        self.draws.dims()[2..].iter().product()
    }

    /// The draws of component `j` (row-major over the trailing dimensions), one `Vec` per
    /// chain: the input of the estimators of this module.
    ///
    /// # Panics
    /// When `j` is not below [`Trace::n_components`].
    #[track_caller]
    pub fn component(&self, j: usize) -> Vec<Vec<f64>> {
        let d = self.n_components();
        assert!(j < d, "component {j} of a trace with {d} components");
        let values = self.draws.to_f64s();
        let (n_draws, n_chains) = (self.n_draws(), self.n_chains());
        (0..n_chains)
            .map(|c| {
                (0..n_draws)
                    .map(|t| values[(t * n_chains + c) * d + j])
                    .collect()
            })
            .collect()
    }

    /// [`effective_sample_size`] of every component.
    ///
    /// # Errors
    /// [`Error::Shape`] when the trace has fewer than 4 draws.
    pub fn effective_sample_size(&self) -> Result<Vec<f64>, Error> {
        self.per_component(effective_sample_size)
    }

    /// [`bulk_effective_sample_size`] of every component.
    ///
    /// # Errors
    /// [`Error::Shape`] when the trace has fewer than 4 draws.
    pub fn bulk_effective_sample_size(&self) -> Result<Vec<f64>, Error> {
        self.per_component(bulk_effective_sample_size)
    }

    /// [`split_rhat`] of every component.
    ///
    /// # Errors
    /// [`Error::Shape`] when the trace has fewer than 4 draws.
    pub fn split_rhat(&self) -> Result<Vec<f64>, Error> {
        self.per_component(split_rhat)
    }

    /// [`rank_normalized_split_rhat`] of every component.
    ///
    /// # Errors
    /// [`Error::Shape`] when the trace has fewer than 4 draws.
    pub fn rank_normalized_split_rhat(&self) -> Result<Vec<f64>, Error> {
        self.per_component(rank_normalized_split_rhat)
    }

    fn per_component(
        &self,
        estimator: fn(&[Vec<f64>]) -> Result<f64, Error>,
    ) -> Result<Vec<f64>, Error> {
        (0..self.n_components())
            .map(|j| estimator(&self.component(j)))
            .collect()
    }
}

/// Runs `n_steps` steps of `sampler` from `state`, recording the positions after every
/// `thin`-th step.
///
/// # Returns
/// The final state and the [`Trace`]: `n_steps / thin` draws (steps past the last multiple of
/// `thin` are run but not recorded) and the acceptance summary of all steps.
///
/// # Errors
/// [`Error::InvalidConfig`] when `thin` is 0 or larger than `n_steps` (no draws); the first
/// error of [`Sampler::step`].
///
/// # Example
/// ```
/// use ebm::sampler::{Langevin, LangevinConfig, Sampler, trace};
/// use ebm_tensor::Tensor;
/// use rand::SeedableRng;
///
/// let energy = |x: &Tensor<f64>| x.square().sum_axes(&[1], false).mul_scalar(0.5);
/// let sampler = Langevin::new(LangevinConfig::new(0.1)).unwrap();
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let state = sampler.init(Tensor::zeros([8, 2]), &energy).unwrap();
/// let (_, trace) = trace(&sampler, &mut rng, state, &energy, 100, 5).unwrap();
/// assert_eq!(trace.draws.dims(), &[20, 8, 2]);
/// assert_eq!(trace.effective_sample_size().unwrap().len(), 2);
/// ```
pub fn trace<T, S, E, R>(
    sampler: &S,
    rng: &mut R,
    mut state: S::State,
    energy: &E,
    n_steps: usize,
    thin: usize,
) -> Result<(S::State, Trace<T>), Error>
where
    T: Float,
    S: Sampler<T>,
    S::State: HasPosition<T>,
    S::Info: HasAcceptance,
    E: Energy<T> + ?Sized,
    R: Rng + ?Sized,
{
    if thin == 0 || thin > n_steps {
        return Err(Error::config(
            "trace thin",
            format!("{thin} (with n_steps = {n_steps})"),
            "1 <= thin <= n_steps, so that at least one draw is recorded",
        ));
    }
    let mut draws = Vec::with_capacity(n_steps / thin);
    let mut infos = Vec::with_capacity(n_steps);
    for step in 1..=n_steps {
        let (next, info) = sampler.step(rng, state, energy)?;
        state = next;
        infos.push(info);
        if step % thin == 0 {
            draws.push(state.position().detach());
        }
    }
    let trace = Trace {
        draws: Tensor::stack(&draws, 0),
        thin,
        acceptance: acceptance_summary(&infos),
    };
    Ok((state, trace))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_quantile_matches_known_values() {
        assert_eq!(normal_quantile(0.5), 0.0);
        for (p, z) in [
            (0.975, 1.959963984540054),
            (0.9, 1.2815515655446004),
            (0.001, -3.090232306167813),
            (1e-6, -4.753424308822899),
        ] {
            assert!((normal_quantile(p) - z).abs() < 2e-9 * z.abs(), "p = {p}");
            assert!(
                (normal_quantile(1.0 - p) + z).abs() < 2e-9 * z.abs(),
                "1 - p = {p}"
            );
        }
    }

    #[test]
    fn rank_normalize_averages_ties() {
        let z = rank_normalize(&[vec![1.0, 2.0], vec![2.0, 3.0]]);
        assert_eq!(z[0][1], z[1][0]);
        assert_eq!(z[0][1], 0.0);
        assert!(z[0][0] < 0.0 && (z[1][1] + z[0][0]).abs() < 1e-12);
    }

    #[test]
    fn odd_lengths_drop_the_middle_draw() {
        let split = split_chains(&[vec![1.0, 2.0, 3.0, 4.0, 5.0]]);
        assert_eq!(split, [vec![1.0, 2.0], vec![4.0, 5.0]]);
    }

    #[test]
    fn constant_or_non_finite_draws_give_nan() {
        let constant = vec![vec![1.0; 10]; 2];
        assert!(effective_sample_size(&constant).unwrap().is_nan());
        assert!(split_rhat(&constant).unwrap().is_nan());
        let mut bad = vec![vec![0.0, 1.0, 2.0, 3.0]; 2];
        bad[1][2] = f64::NAN;
        assert!(bulk_effective_sample_size(&bad).unwrap().is_nan());
        assert!(rank_normalized_split_rhat(&bad).unwrap().is_nan());
    }

    #[test]
    fn ragged_or_short_chains_are_refused() {
        let err = split_rhat(&[vec![0.0; 5], vec![0.0; 6]]).unwrap_err();
        assert!(matches!(err, Error::Shape { ref found, .. } if found == &[5, 6]));
        assert!(effective_sample_size(&[vec![0.0; 3]]).is_err());
        assert!(effective_sample_size(&[]).is_err());
    }
}
