//! On-device adaptation: a [`Forecaster`] refines its model from its own recent readings.
//!
//! An [`Adaptation`] keeps a fixed ring of the last `R` fully observed readings (model
//! time and scaled state, the forecaster's own units) and, when switched on, takes a few
//! gradient steps of the calibrated loss on them after every `every`-th new reading: the
//! Gaussian negative log-likelihood of each one-step-ahead window of the ring
//! ([`SeriesProblem`] over the ring, [`SeriesWindows`] of all its windows or a batch of
//! them, [`AdaptConfig::windows`]), simulated with
//! the forecaster's own method and step on `paths` trajectories, its gradient by reverse
//! mode ([`Reverse`]`(`[`Checkpoints::All`]`)`: the windows are a few steps long). Each step
//! moves the parameter vector by `learning_rate` along the normalized negative gradient
//! (a bounded move whatever the gradient's scale). Fixed memory: the ring (`R` times and
//! `R` states) here, the gradient, parameter and scratch buffers the caller lends
//! ([`Workspace`], sized by [`Adaptation::stats_len`] and [`Adaptation::tape_len`]); no
//! allocation.
//!
//! Off by default ([`Adaptation::new`]); [`Adaptation::set_enabled`] is the switch. Switched
//! off it only records readings, and the forecaster's numbers are those without it, bit
//! for bit. The noise of step `k` (counted over the adaptation's life) is
//! `Brownian::new(seed ^ (k + 1) * 0x9E3779B97F4A7C15)`, `seed` the forecaster's: a replay
//! gives the same model bits.
//!
//! A step that fails (the loss or gradient not finite, a parameter not finite after the
//! move) leaves the model as it was and returns the error; readings taken before it stay.
//!
//! ```
//! use tinysde::forecast::adapt::{AdaptConfig, Adaptation, Workspace};
//! use tinysde::forecast::file::{self, Column, Defaults, Deployment, ModelFile, SolverSpec,
//!     TimeAxis, TimeFormat, Transform};
//! use tinysde::forecast::{Arrays, Forecaster};
//! use tinysde::nn::{Dense, Identity, Parameters};
//! use tinysde::sde::NeuralSde;
//! use tinysde::solve::Sosri;
//! use tinysde::{Dual, Real};
//!
//! type Model = NeuralSde<Dense<1, 1, Identity>, Dense<1, 1, Identity>>;
//! let mut model = Model::default();
//! model.write_params(&[-1.0, 0.0, 0.0, 0.1])?; // dx = -x dt + 0.1 dW
//! let columns = [Column { name: "x", transform: Transform::Affine, mean: 0.0, std: 1.0,
//!     state_index: 0, noise: 0.0 }];
//! let deployment = Deployment { state_dim: 1, columns: &columns,
//!     time: TimeAxis { name: "t", format: TimeFormat::Number, t0: 0.0, unit: 1.0 },
//!     solver: SolverSpec { method: "SOSRI", max_step: 0.5 },
//!     defaults: Defaults::new(16, 7, &[0.05, 0.5, 0.95])?, trends: &[], seasonal_lag: 0 };
//! let bytes = file::to_vec(&model, &deployment)?;
//! let mut f: Forecaster<Model, Sosri, 1, 1, Arrays<1, 16, 4>> =
//!     Forecaster::new(Model::default(), Sosri, &ModelFile::parse(&bytes)?, Arrays::new())?;
//!
//! let mut adapt = Adaptation::<1, 8>::new(AdaptConfig::default())?;
//! adapt.set_enabled(true); // the switch (off by default)
//! let (mut grad, mut params) = ([0.0f32; Model::PARAMS], [0.0f32; Model::PARAMS]);
//! let mut stats = [[Dual::<1>::ZERO; 1]; 64];
//! let mut tape = [[0.0f32; 1]; 512];
//! assert!(adapt.stats_len(&f) <= stats.len() && adapt.tape_len(&f) <= tape.len());
//! let mut work = Workspace { grad: &mut grad, params: &mut params, stats: &mut stats,
//!     tape: &mut tape };
//! for i in 0..12 {
//!     let (outcome, loss) = adapt.observe(&mut f, i as f64, &[Some(1.0)], &mut work)?;
//!     assert!(outcome.updated);
//!     assert_eq!(loss.is_some(), i >= 7); // once the ring of 8 is full
//! }
//! assert_eq!(adapt.steps_taken(), 5 * AdaptConfig::default().steps as u64);
//! # Ok::<(), tinysde::Error>(())
//! ```

use crate::error::{Error, WeightsError};
use crate::grad::{loss_and_gradient, Reverse, Scratch, SeriesWindows};
use crate::math::sqrt;
use crate::nn::Parameters;
use crate::noise::Brownian;
use crate::sde::SdeVjp;
use crate::solve::{Checkpoints, Method, StepVjp};
use crate::train::{Series, SeriesProblem};
use crate::weights::Describe;
use crate::Dual;

use super::{Buffers, Check, Forecaster, Outcome, GOLDEN};

/// How the adaptation learns (validated by [`Adaptation::new`]).
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct AdaptConfig {
    /// Gradient steps per adaptation (`>= 1`).
    pub steps: u32,
    /// How far one step moves the parameter vector (Euclidean length, finite, `> 0`).
    pub learning_rate: f32,
    /// Trajectories per window of the loss (`>= 1`).
    pub paths: usize,
    /// Adapt after every `every`-th fully observed reading once the ring is full (`>= 1`).
    pub every: u32,
    /// Windows of the ring per step (`>= 1`; `usize::MAX`: all `R - 1`): fewer, drawn
    /// afresh each step ([`SeriesProblem::batch`], a pure function of the seed and the
    /// step), make a step cheaper in proportion.
    pub windows: usize,
}

impl Default for AdaptConfig {
    /// One step of length `0.05` per new reading, 8 paths, all windows.
    fn default() -> Self {
        Self {
            steps: 1,
            learning_rate: 0.05,
            paths: 8,
            every: 1,
            windows: usize::MAX,
        }
    }
}

/// The buffers one adaptation step works in, lent by the caller: `grad` and `params` of
/// the model's parameter count, `stats` and `tape` at least [`Adaptation::stats_len`] and
/// [`Adaptation::tape_len`] rows.
#[derive(Debug)]
pub struct Workspace<'a, const D: usize> {
    /// The gradient.
    pub grad: &'a mut [f32],
    /// The parameters.
    pub params: &'a mut [f32],
    /// The reverse pass's statistics rows.
    pub stats: &'a mut [[Dual<1>; D]],
    /// The reverse pass's tape.
    pub tape: &'a mut [[f32; D]],
}

/// The ring of recent readings and the adaptation switch (see the module docs): `D` state
/// components, `R >= 2` readings.
#[derive(Clone, Debug, PartialEq)]
pub struct Adaptation<const D: usize, const R: usize> {
    config: AdaptConfig,
    enabled: bool,
    /// Model times and scaled states, oldest first, `len` of them.
    times: [f32; R],
    values: [[f32; D]; R],
    len: usize,
    /// Fully observed readings recorded.
    recorded: u64,
    /// Gradient steps taken.
    steps: u64,
}

impl<const D: usize, const R: usize> Adaptation<D, R> {
    /// An empty ring, switched off. Errors ([`Error::OutOfRange`]) for a configuration
    /// outside its ranges ([`AdaptConfig`]) or `R < 2`.
    pub fn new(config: AdaptConfig) -> Result<Self, Error> {
        let lr = config.learning_rate;
        if config.steps == 0
            || config.paths == 0
            || config.every == 0
            || config.windows == 0
            || !(lr.is_finite() && lr > 0.0)
            || R < 2
        {
            return Err(Error::OutOfRange {
                what: "adaptation: steps, paths, every, windows >= 1, learning rate finite > 0, ring >= 2",
            });
        }
        Ok(Self {
            config,
            enabled: false,
            times: [0.0; R],
            values: [[0.0; D]; R],
            len: 0,
            recorded: 0,
            steps: 0,
        })
    }

    /// Switches the adaptation on or off (off: readings are only recorded).
    pub fn set_enabled(&mut self, on: bool) {
        self.enabled = on;
    }

    /// Whether it is switched on.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The configuration.
    pub fn config(&self) -> AdaptConfig {
        self.config
    }

    /// The readings in the ring (at most `R`).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the ring is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Gradient steps taken so far.
    pub fn steps_taken(&self) -> u64 {
        self.steps
    }

    /// Appends a reading (model time, scaled state), dropping the oldest when full.
    fn push(&mut self, tau: f32, z: [f32; D]) {
        if self.len == R {
            self.times.copy_within(1.., 0);
            self.values.copy_within(1.., 0);
            self.len = R - 1;
        }
        if let (Some(t), Some(v)) = (self.times.get_mut(self.len), self.values.get_mut(self.len)) {
            *t = tau;
            *v = z;
            self.len += 1;
        }
    }

    /// The windows' problem over the ring, with the forecaster's method and step.
    fn problem<'s, Meth: Method + Copy>(
        &'s self,
        method: Meth,
        max_step: f32,
    ) -> Result<SeriesProblem<'s, Meth, D>, Error> {
        let times = self.times.get(..self.len).unwrap_or(&[]);
        let values = self.values.get(..self.len).unwrap_or(&[]);
        SeriesProblem::new(
            method,
            Series::new(times, values)?,
            max_step,
            self.config.paths,
        )?
        .with_batch(self.config.windows)
    }

    /// Rows of `stats` a step needs with a full ring (for [`Workspace::stats`]).
    pub fn stats_len<M, Meth, const C: usize, B>(&self, f: &Forecaster<M, Meth, D, C, B>) -> usize
    where
        Meth: Method + Copy,
    {
        self.full_problem_len(f, |p| p.stats_len())
    }

    /// Rows of `tape` a step needs with a full ring (for [`Workspace::tape`]): enough to
    /// keep every trajectory's states from a window's statistics pass
    /// ([`SeriesProblem::reverse_tape_len_keep_all`], one solve fewer per window; a step
    /// also runs, more slowly, with [`SeriesProblem::reverse_tape_len`] rows).
    pub fn tape_len<M, Meth, const C: usize, B>(&self, f: &Forecaster<M, Meth, D, C, B>) -> usize
    where
        M: Parameters,
        Meth: Method + Copy,
    {
        self.full_problem_len(f, |p| {
            p.reverse_tape_len_keep_all(<M as Parameters>::PARAMS, Checkpoints::All)
        })
    }

    /// `len(problem)` for a full ring of readings one model time unit apart.
    fn full_problem_len<M, Meth, const C: usize, B>(
        &self,
        f: &Forecaster<M, Meth, D, C, B>,
        len: impl Fn(&SeriesProblem<'_, Meth, D>) -> usize,
    ) -> usize
    where
        Meth: Method + Copy,
    {
        let mut probe = Self {
            len: 0,
            ..self.clone()
        };
        for i in 0..R {
            probe.push(i as f32, [0.0; D]);
        }
        probe.problem(f.method, f.max_step).map_or(0, |p| len(&p))
    }

    /// [`Forecaster::observe`], then: a fully observed reading goes into the ring, and when
    /// switched on with a full ring, every `every`-th such reading, the configured number
    /// of gradient steps ([`Adaptation::step`]). Returns the outcome and the loss of the
    /// last step taken (none if none was).
    ///
    /// Errors: the forecaster's (nothing changed); a step's (the model as before that step).
    pub fn observe<M, Meth, const C: usize, B>(
        &mut self,
        f: &mut Forecaster<M, Meth, D, C, B>,
        t: f64,
        values: &[Option<f64>; C],
        work: &mut Workspace<'_, D>,
    ) -> Result<(Outcome, Option<f32>), Error>
    where
        M: SdeVjp<D> + Describe,
        Meth: StepVjp<M, D> + Copy,
        B: Buffers<D>,
    {
        self.observe_checked(f, t, values, &mut [], work)
    }

    /// [`Adaptation::observe`] with [`Forecaster::observe_checked`]: each checked column's
    /// [`Check`] (its predicted band, before any step this reading triggers) into
    /// `checks[c]` (`checks` empty or `C` long).
    ///
    /// Errors: as [`Adaptation::observe`]; [`ForecastError`](crate::ForecastError)`::Output`
    /// for `checks` of another length.
    pub fn observe_checked<M, Meth, const C: usize, B>(
        &mut self,
        f: &mut Forecaster<M, Meth, D, C, B>,
        t: f64,
        values: &[Option<f64>; C],
        checks: &mut [Check],
        work: &mut Workspace<'_, D>,
    ) -> Result<(Outcome, Option<f32>), Error>
    where
        M: SdeVjp<D> + Describe,
        Meth: StepVjp<M, D> + Copy,
        B: Buffers<D>,
    {
        let outcome = f.observe_checked(t, values, checks)?;
        if !outcome.updated {
            return Ok((outcome, None));
        }
        // The scaled state of a fully observed reading (every state coordinate observed).
        let mut z = [0.0f32; D];
        let mut covered = [false; D];
        for (col, v) in f.columns.iter().zip(values) {
            if let (Some(x), Some(slot), Some(c)) =
                (*v, z.get_mut(col.index), covered.get_mut(col.index))
            {
                *slot = col.column().model_value(x).unwrap_or(0.0);
                *c = true;
            }
        }
        if !covered.iter().all(|&c| c) {
            // Latent state: the windows' loss needs every coordinate; nothing to record.
            return Ok((outcome, None));
        }
        let tau = f.last.map_or(0.0, |(_, tau)| tau);
        self.push(tau, z);
        self.recorded += 1;
        let mut loss = None;
        if self.enabled
            && self.len == R
            && self.recorded.checked_rem(u64::from(self.config.every)) == Some(0)
        {
            for _ in 0..self.config.steps {
                loss = Some(self.step(f, work)?);
            }
        }
        Ok((outcome, loss))
    }

    /// One gradient step of the windows' loss over the ring on the forecaster's model
    /// (whether switched on or not); returns the loss before the step.
    ///
    /// Errors, with the model unchanged: fewer than 2 readings in the ring
    /// ([`Error::OutOfRange`]), buffers of the wrong length ([`Error::Length`]), a loss or
    /// gradient that is not finite ([`Error::NonFiniteGradient`]), parameters not finite
    /// after the move ([`Error::NonFinite`]).
    pub fn step<M, Meth, const C: usize, B>(
        &mut self,
        f: &mut Forecaster<M, Meth, D, C, B>,
        work: &mut Workspace<'_, D>,
    ) -> Result<f32, Error>
    where
        M: SdeVjp<D> + Describe,
        Meth: StepVjp<M, D> + Copy,
    {
        let n = <M as Parameters>::PARAMS;
        let (Some(grad), Some(params)) = (work.grad.get_mut(..n), work.params.get_mut(..n)) else {
            return Err(Error::Length {
                what: "adaptation gradient and parameter buffers (model parameters)",
                expected: n,
                found: work.grad.len().min(work.params.len()),
            });
        };
        let problem = self.problem(f.method, f.max_step)?;
        let k = self.steps.wrapping_add(1);
        let noise = Brownian::new(f.defaults.seed ^ k.wrapping_mul(GOLDEN));
        let windows = SeriesWindows::new(&problem, &noise, problem.batch(f.defaults.seed ^ k));
        let mut scratch = Scratch::new(&mut *work.stats, &mut *work.tape);
        let loss = loss_and_gradient(
            &windows,
            &f.model,
            Reverse(Checkpoints::All),
            &mut scratch,
            grad,
        )?;
        let norm = sqrt(grad.iter().map(|g| g * g).sum::<f32>());
        if !(loss.is_finite() && norm.is_finite()) {
            return Err(Error::NonFiniteGradient {
                iteration: u32::try_from(self.steps).unwrap_or(u32::MAX),
            });
        }
        f.model.read_params(params)?;
        if norm > 0.0 {
            let scale = self.config.learning_rate / norm;
            for (p, g) in params.iter_mut().zip(grad.iter()) {
                *p -= scale * g;
            }
        }
        f.model.write_params(params).map_err(|e| match e {
            Error::Length { .. } => Error::Weights(WeightsError::ShapeMismatch),
            other => other,
        })?;
        self.steps = k;
        Ok(loss)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forecast::file::{
        self, Column, Defaults, Deployment, ModelFile, SolverSpec, TimeAxis, TimeFormat, Transform,
    };
    use crate::forecast::{Arrays, Check};
    use crate::nn::{Dense, Identity};
    use crate::noise::splitmix64;
    use crate::sde::NeuralSde;
    use crate::solve::Sosri;
    use crate::Real;

    type Model = NeuralSde<Dense<1, 1, Identity>, Dense<1, 1, Identity>>;
    type F = Forecaster<Model, Sosri, 1, 1, Arrays<1, 16, 4>>;
    const P: usize = <Model as Parameters>::PARAMS;

    /// A strongly mean-reverting model (dx = -2 x dt + 0.05 dW) around 0, in a file.
    fn file_bytes() -> std::vec::Vec<u8> {
        let mut model = Model::default();
        model.write_params(&[-2.0, 0.0, 0.0, 0.05]).unwrap();
        let columns = [Column {
            name: "x",
            transform: Transform::Affine,
            mean: 0.0,
            std: 1.0,
            state_index: 0,
            noise: 0.0,
        }];
        let deployment = Deployment {
            state_dim: 1,
            columns: &columns,
            time: TimeAxis {
                name: "t",
                format: TimeFormat::Number,
                t0: 0.0,
                unit: 1.0,
            },
            solver: SolverSpec {
                method: "SOSRI",
                max_step: 0.5,
            },
            defaults: Defaults::new(16, 7, &[0.05, 0.5, 0.95]).unwrap(),
            trends: &[],
            seasonal_lag: 0,
        };
        file::to_vec(&model, &deployment).unwrap()
    }

    /// The series: 0 until `SHIFT`, then `LEVEL`, with a small deterministic wiggle.
    const SHIFT: usize = 20;
    const LEVEL: f64 = 1.0;
    fn value(i: usize) -> f64 {
        let wiggle = 0.02 * ((i * 7 % 5) as f64 - 2.0) / 2.0;
        if i < SHIFT {
            wiggle
        } else {
            LEVEL + wiggle
        }
    }

    /// Streams the series through readings `0..n` (adapting if `on`) and returns the
    /// indices after the shift whose reading lay inside its predicted band, and the model.
    fn stream(on: bool, n: usize) -> (std::vec::Vec<usize>, Model, u64) {
        let (inside, _, model, steps) = stream_series(on, n, value);
        (inside, model, steps)
    }

    /// Streams `series(i)` through readings `0..n` (adapting if `on`): the indices from
    /// `SHIFT` on whose reading lay inside its predicted band, the sum of those readings'
    /// interval scores of the 5-95 % band (width + 20 x the distance outside), the model and
    /// the steps taken.
    fn stream_series(
        on: bool,
        n: usize,
        series: impl Fn(usize) -> f64,
    ) -> (std::vec::Vec<usize>, f64, Model, u64) {
        let bytes = file_bytes();
        let file = ModelFile::parse(&bytes).unwrap();
        let mut f = F::new(Model::default(), Sosri, &file, Arrays::new()).unwrap();
        let config = AdaptConfig {
            steps: 2,
            learning_rate: 0.1,
            paths: 8,
            every: 1,
            windows: usize::MAX,
        };
        let mut adapt = Adaptation::<1, 16>::new(config).unwrap();
        adapt.set_enabled(on);
        let (mut grad, mut params) = ([0.0f32; P], [0.0f32; P]);
        let mut stats = std::vec![[Dual::<1>::ZERO; 1]; adapt.stats_len(&f)];
        let mut tape = std::vec![[0.0f32; 1]; adapt.tape_len(&f)];
        let mut work = Workspace {
            grad: &mut grad,
            params: &mut params,
            stats: &mut stats,
            tape: &mut tape,
        };
        let mut inside = std::vec::Vec::new();
        let mut score = 0.0;
        for i in 0..n {
            let x = series(i);
            let mut checks = [Check::default()];
            let (outcome, _) = adapt
                .observe_checked(&mut f, i as f64, &[Some(x)], &mut checks, &mut work)
                .unwrap();
            if i >= SHIFT && outcome.checked == 1 {
                let [c] = checks;
                assert_eq!(c.outside, outcome.outside == 1);
                if outcome.outside == 0 {
                    inside.push(i);
                }
                score +=
                    (c.upper - c.lower) + 20.0 * ((c.lower - x).max(0.0) + (x - c.upper).max(0.0));
            }
        }
        (inside, score, *f.model(), adapt.steps_taken())
    }

    /// After a change of noise level (the series jumps by +-0.5 around 0 from `SHIFT` on,
    /// a pseudo-random sign; the model's one-step spread is about 0.035) the ensemble update
    /// alone keeps the band narrow: no reading inside in 40. With adaptation the diffusion
    /// grows: readings come inside their band and the mean interval score falls (by more
    /// than half); the same readings before the change, and a replay gives the same bits.
    #[test]
    fn after_a_noise_change_adaptation_widens_the_band() {
        let n = SHIFT + 40;
        let noisy = |i: usize| {
            if i < SHIFT {
                value(i)
            } else if splitmix64(i as u64) >> 63 == 0 {
                0.5
            } else {
                -0.5
            }
        };
        let (off, score_off, _, steps_off) = stream_series(false, n, noisy);
        let (on, score_on, _, steps_on) = stream_series(true, n, noisy);
        std::println!(
            "noise change: inside {} -> {} of 40, mean interval score {:.3} -> {:.3}",
            off.len(),
            on.len(),
            score_off / 40.0,
            score_on / 40.0
        );
        assert_eq!(steps_off, 0);
        assert!(steps_on > 0);
        assert!(on.len() > off.len() + 10, "inside: {off:?} vs {on:?}");
        assert!(score_on < 0.5 * score_off, "{score_on} vs {score_off}");
        assert_eq!(
            stream_series(true, n, noisy).1.to_bits(),
            score_on.to_bits()
        );
    }

    /// After the level shift the band covers the new level within 12 readings (24
    /// adaptation steps; it does at the 6th) and then mostly; without adaptation it never
    /// does in 40 readings.
    #[test]
    fn after_a_level_shift_the_band_covers_the_new_level() {
        let n = SHIFT + 40;
        let (off, model_off, steps_off) = stream(false, n);
        assert_eq!(steps_off, 0);
        assert!(off.is_empty(), "without adaptation inside at {off:?}");
        let mut p = [0.0f32; P];
        model_off.read_params(&mut p).unwrap();
        assert_eq!(p, [-2.0, 0.0, 0.0, 0.05]); // switched off: the model is untouched
        let (on, _, steps_on) = stream(true, n);
        assert_eq!(steps_on, 2 * (n as u64 - 15));
        let first = *on.first().expect("adaptation never covered the new level");
        std::println!("first covered reading after the shift: +{}", first - SHIFT);
        assert!(first - SHIFT <= 12, "first covered at +{}", first - SHIFT);
        // From there on at least half of the readings lie inside their band (a 90 % band
        // from 16 members; without adaptation: none).
        let later = on.iter().filter(|&&i| i >= first).count();
        assert!(later * 2 >= n - first, "{on:?}");
        // A replay gives the same bits.
        let (again, model_a, _) = stream(true, n);
        let (_, model_b, _) = stream(true, n);
        assert_eq!(again, on);
        let (mut a, mut b) = ([0.0f32; P], [0.0f32; P]);
        model_a.read_params(&mut a).unwrap();
        model_b.read_params(&mut b).unwrap();
        assert_eq!(a.map(f32::to_bits), b.map(f32::to_bits));
    }

    #[test]
    fn bad_configurations_and_buffers_are_typed_errors() {
        let bad = [
            AdaptConfig {
                steps: 0,
                ..AdaptConfig::default()
            },
            AdaptConfig {
                paths: 0,
                ..AdaptConfig::default()
            },
            AdaptConfig {
                every: 0,
                ..AdaptConfig::default()
            },
            AdaptConfig {
                windows: 0,
                ..AdaptConfig::default()
            },
            AdaptConfig {
                learning_rate: f32::NAN,
                ..AdaptConfig::default()
            },
        ];
        for c in bad {
            assert!(matches!(
                Adaptation::<1, 4>::new(c),
                Err(Error::OutOfRange { .. })
            ));
        }
        assert!(Adaptation::<1, 1>::new(AdaptConfig::default()).is_err());
        let bytes = file_bytes();
        let file = ModelFile::parse(&bytes).unwrap();
        let mut f = F::new(Model::default(), Sosri, &file, Arrays::new()).unwrap();
        let mut adapt = Adaptation::<1, 4>::new(AdaptConfig::default()).unwrap();
        let (mut grad, mut params) = ([0.0f32; P], [0.0f32; P - 1]);
        let mut stats = [[Dual::<1>::ZERO; 1]; 1];
        let mut tape = [[0.0f32; 1]; 1];
        let mut work = Workspace {
            grad: &mut grad,
            params: &mut params,
            stats: &mut stats,
            tape: &mut tape,
        };
        // Nothing in the ring yet.
        assert!(adapt.step(&mut f, &mut work).is_err());
        for i in 0..4 {
            adapt
                .observe(&mut f, f64::from(i), &[Some(0.5)], &mut work)
                .unwrap();
        }
        let before = *f.model();
        assert!(matches!(
            adapt.step(&mut f, &mut work),
            Err(Error::Length { .. })
        ));
        let mut params = [0.0f32; P];
        work.params = &mut params;
        // Scratch too short: a typed error, the model unchanged.
        assert!(matches!(
            adapt.step(&mut f, &mut work),
            Err(Error::Length { .. })
        ));
        assert_eq!(*f.model(), before);
        assert_eq!(adapt.steps_taken(), 0);
        // A bad reading: the forecaster's error, the ring unchanged.
        let len = adapt.len();
        assert!(adapt
            .observe(&mut f, 10.0, &[Some(f64::NAN)], &mut work)
            .is_err());
        assert_eq!(adapt.len(), len);
    }
}
