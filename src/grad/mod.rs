//! Gradients of ensemble losses through the solver: forward-mode pathwise sensitivities
//! here, reverse mode (a discrete adjoint) in [`reverse`].
//!
//! The gradient of a scalar loss of the ensemble statistics (mean and variance at the save
//! times) with respect to every parameter of a model, and optionally the initial state, is
//! computed by running the very same solver on [`Dual<K>`] scalars: parameters
//! `start .. start + K` are seeded into the K tangent lanes ([`ParamSeed::window`]), the
//! ensemble is solved with the same noise path, the loss is evaluated on the dual mean and
//! variance, and its tangents are the K gradient entries. That is repeated for
//! `start = 0, K, 2K, ...` until every parameter is covered. The result is the exact
//! derivative of the discrete computation (solver, ensemble statistics, loss), not an
//! approximation of the continuous one.
//!
//! Memory does not grow with the number of steps or of chunks: the only buffers are the
//! gradient itself and a statistics scratch of `2 * save_times` dual rows, both provided by
//! the caller. The number of lanes `K` is taken from the scratch's type; since lanes never
//! interact, the gradient has the same bits for every `K`.
//!
//! One entry point computes every gradient: [`loss_and_gradient`] of an [`Objective`]
//! ([`Ensemble`], [`SeriesWindows`]) in a mode given as a value ([`Forward`], [`Reverse`],
//! [`Reversible`], [`Cheaper`], [`GradientMode`]), in a [`Scratch`] of the caller's slices
//! or owned. With feature `std`, `Threads(Forward, n)` spreads the passes over threads
//! (each pass is the serial computation), and `Threads(Reverse(..), n)` splits the
//! trajectories over threads and folds their results in trajectory order: the bits do not
//! depend on the number of threads.
//!
//! ```
//! use tinysde::grad::{loss_and_gradient, Ensemble, Forward, Loss, Problem, Scratch};
//! use tinysde::nn::{Dense, Identity, Parameters, Tanh};
//! use tinysde::noise::Brownian;
//! use tinysde::sde::NeuralSde;
//! use tinysde::solve::{EulerMaruyama, Solver, TimeGrid};
//! use tinysde::{Dual, Real};
//!
//! type Model = NeuralSde<(Dense<1, 4, Tanh>, Dense<4, 1, Identity>), Dense<1, 1, Identity>>;
//! let mut model = Model::default();
//! model.init(&mut tinysde::noise::rng_from_seed(1), tinysde::nn::InitScheme::GlorotUniform)?;
//!
//! /// Half the squared ensemble mean at the last save time.
//! struct Final;
//! impl Loss<1> for Final {
//!     fn eval<T: Real>(&self, mean: &[[T; 1]], _var: &[[T; 1]]) -> T {
//!         mean.last().map_or(T::ZERO, |m| m[0] * m[0] * 0.5)
//!     }
//! }
//!
//! let save_times = [0.5, 1.0];
//! let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.0, 20)?);
//! let problem = Problem::new(solver, [1.0], 8, &save_times)?;
//! let mut stats = [[Dual::<4>::ZERO; 1]; 4]; // 2 * save_times.len() rows; K = 4 lanes
//! let mut grad = [0.0f32; Model::PARAMS];
//! let noise = Brownian::new(7);
//! let objective = Ensemble::new(&problem, &Final, &noise);
//! let loss = loss_and_gradient(&objective, &model, Forward, &mut Scratch::new(&mut stats, &mut []), &mut grad)?;
//! assert!(loss.is_finite() && grad.iter().all(|g| g.is_finite()));
//! # Ok::<(), tinysde::Error>(())
//! ```

#[cfg(feature = "std")]
mod parallel;
pub mod reverse;

mod entry;
#[cfg(feature = "std")]
pub use entry::Threads;
pub use entry::{
    loss_and_gradient, Cheaper, Ensemble, Forward, GradientMode, Mode, Objective, Reverse,
    Reversible, Scratch, SeriesWindows, TapeNeed,
};

use crate::dual::Dual;
use crate::error::{check_len, Error};
use crate::nn::{ParamSeed, Parameters};
use crate::noise::NoiseSource;
use crate::real::Real;
use crate::sde::Sde;
use crate::solve::{Method, Solver, Step};

/// A scalar loss of the ensemble statistics at the save times.
///
/// `eval` is generic over the scalar, so the same code computes the loss value (on `f32`)
/// and its derivatives (on [`Dual<K>`]). It receives the mean and the sample variance of
/// every state component at the first `mean.len()` save times (`mean.len() == var.len()`;
/// fewer than all of them while a growing-window schedule is in an early stage). Built-in
/// losses are in [`crate::train`].
///
/// ```
/// use tinysde::grad::Loss;
/// use tinysde::Real;
/// /// The sum of the variances: a loss that rewards a narrow ensemble.
/// struct Spread;
/// impl<const D: usize> Loss<D> for Spread {
///     fn eval<T: Real>(&self, _mean: &[[T; D]], var: &[[T; D]]) -> T {
///         var.iter().flatten().fold(T::ZERO, |acc, &v| acc + v)
///     }
/// }
/// let v: f32 = Spread.eval(&[[1.0f32, 2.0]], &[[0.5, 0.25]]);
/// assert_eq!(v, 0.75);
/// ```
pub trait Loss<const D: usize> {
    /// Checks, before anything is solved, that the loss can be evaluated for an ensemble
    /// saved at `saves` times (for example: its data has exactly `saves` rows). The
    /// default accepts any number.
    fn check(&self, saves: usize) -> Result<(), Error> {
        let _ = saves;
        Ok(())
    }

    /// The loss of the statistics at the first `mean.len()` save times.
    fn eval<T: Real>(&self, mean: &[[T; D]], var: &[[T; D]]) -> T;
}

impl<L: Loss<D> + ?Sized, const D: usize> Loss<D> for &L {
    fn check(&self, saves: usize) -> Result<(), Error> {
        (**self).check(saves)
    }
    fn eval<T: Real>(&self, mean: &[[T; D]], var: &[[T; D]]) -> T {
        (**self).eval(mean, var)
    }
}

/// What to simulate for a loss: a solver, the initial state, the number of trajectories,
/// the save times, how many of them are in use (the window) and whether the gradient
/// includes the initial state.
///
/// Constructed validated ([`Problem::new`]); the builder methods validate too and return
/// the problem unchanged on error.
///
/// ```
/// use tinysde::grad::Problem;
/// use tinysde::solve::{EulerMaruyama, Solver, TimeGrid};
/// let times = [0.25, 0.5, 1.0];
/// let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.0, 100).unwrap());
/// let p = Problem::new(solver, [0.5], 10, &times).unwrap().with_window(2).unwrap();
/// assert_eq!(p.active_save_times(), &[0.25, 0.5]);
/// assert!(Problem::new(solver, [0.5], 0, &times).is_err()); // zero trajectories
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Problem<'a, M, const D: usize> {
    solver: Solver<M>,
    u0: [f32; D],
    trajectories: usize,
    save_times: &'a [f32],
    window: usize,
    u0_gradient: bool,
}

impl<'a, M: Method, const D: usize> Problem<'a, M, D> {
    /// A problem using all of `save_times` (non-empty, strictly increasing times that
    /// fit the solver's grid), `trajectories >= 1` trajectories from the finite state `u0`, and
    /// the gradient with respect to the model parameters only.
    ///
    /// ```
    /// use tinysde::grad::Problem;
    /// use tinysde::solve::{EulerMaruyama, Solver, TimeGrid};
    /// let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.0, 10)?);
    /// assert!(Problem::new(solver, [1.0], 8, &[0.5, 2.0]).is_err()); // a save time past the grid
    /// assert!(Problem::new(solver, [1.0], 0, &[0.5, 1.0]).is_err()); // no trajectories
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn new(
        solver: Solver<M>,
        u0: [f32; D],
        trajectories: usize,
        save_times: &'a [f32],
    ) -> Result<Self, Error> {
        check_u0(&u0)?;
        if trajectories == 0 {
            return Err(Error::OutOfRange {
                what: "number of trajectories must be >= 1",
            });
        }
        if save_times.is_empty() {
            return Err(Error::OutOfRange {
                what: "at least one save time is needed",
            });
        }
        solver.grid.check_save_times(save_times)?;
        Ok(Self {
            solver,
            u0,
            trajectories,
            save_times,
            window: save_times.len(),
            u0_gradient: false,
        })
    }

    /// Uses only the first `window` save times (`1 ..= save_times.len()`): the solve stops
    /// at the last of them and the loss sees only their statistics.
    ///
    /// ```
    /// # use tinysde::grad::Problem;
    /// # use tinysde::solve::{EulerMaruyama, Solver, TimeGrid};
    /// # let times = [0.5, 1.0, 1.5];
    /// # let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.5, 30)?);
    /// let problem = Problem::new(solver, [1.0], 8, &times)?;
    /// let first_two = problem.with_window(2)?;
    /// assert_eq!(first_two.active_save_times(), &[0.5, 1.0]);
    /// assert!(problem.with_window(4).is_err());
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn with_window(mut self, window: usize) -> Result<Self, Error> {
        self.set_window(window)?;
        Ok(self)
    }

    /// Whether the gradient also covers the initial state: if so, its entries
    /// `PARAMS .. PARAMS + D` are the derivatives with respect to `u0[0..D]`.
    ///
    /// ```
    /// # use tinysde::grad::Problem;
    /// # use tinysde::solve::{EulerMaruyama, Solver, TimeGrid};
    /// # let times = [0.5, 1.0, 1.5];
    /// # let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.5, 30)?);
    /// let problem = Problem::new(solver, [1.0], 8, &times)?;
    /// assert_eq!(problem.with_u0_gradient(true).gradient_len(10), 11);
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    #[must_use]
    pub fn with_u0_gradient(mut self, on: bool) -> Self {
        self.u0_gradient = on;
        self
    }

    /// Replaces the initial state (must be finite).
    ///
    /// ```
    /// # use tinysde::grad::Problem;
    /// # use tinysde::solve::{EulerMaruyama, Solver, TimeGrid};
    /// # let times = [0.5, 1.0, 1.5];
    /// # let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.5, 30)?);
    /// let problem = Problem::new(solver, [1.0], 8, &times)?;
    /// assert_eq!(problem.with_u0([2.0])?.u0(), [2.0]);
    /// assert!(problem.with_u0([f32::NAN]).is_err());
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn with_u0(mut self, u0: [f32; D]) -> Result<Self, Error> {
        check_u0(&u0)?;
        self.u0 = u0;
        Ok(self)
    }

    /// Replaces the number of trajectories (must be >= 1).
    ///
    /// ```
    /// # use tinysde::grad::Problem;
    /// # use tinysde::solve::{EulerMaruyama, Solver, TimeGrid};
    /// # let times = [0.5, 1.0, 1.5];
    /// # let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.5, 30)?);
    /// let problem = Problem::new(solver, [1.0], 8, &times)?;
    /// assert_eq!(problem.with_trajectories(100)?.trajectories(), 100);
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn with_trajectories(mut self, trajectories: usize) -> Result<Self, Error> {
        self.set_trajectories(trajectories)?;
        Ok(self)
    }

    /// The solver.
    ///
    /// ```
    /// # use tinysde::grad::Problem;
    /// # use tinysde::solve::{EulerMaruyama, Solver, TimeGrid};
    /// # let times = [0.5, 1.0, 1.5];
    /// # let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.5, 30)?);
    /// let problem = Problem::new(solver, [1.0], 8, &times)?;
    /// assert_eq!(problem.solver().grid.steps(), 30);
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn solver(&self) -> &Solver<M> {
        &self.solver
    }
    /// The initial state.
    ///
    /// ```
    /// # use tinysde::grad::Problem;
    /// # use tinysde::solve::{EulerMaruyama, Solver, TimeGrid};
    /// # let times = [0.5, 1.0, 1.5];
    /// # let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.5, 30)?);
    /// let problem = Problem::new(solver, [1.0], 8, &times)?;
    /// assert_eq!(problem.u0(), [1.0]);
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn u0(&self) -> [f32; D] {
        self.u0
    }
    /// The number of trajectories in the ensemble.
    ///
    /// ```
    /// # use tinysde::grad::Problem;
    /// # use tinysde::solve::{EulerMaruyama, Solver, TimeGrid};
    /// # let times = [0.5, 1.0, 1.5];
    /// # let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.5, 30)?);
    /// let problem = Problem::new(solver, [1.0], 8, &times)?;
    /// assert_eq!(problem.trajectories(), 8);
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn trajectories(&self) -> usize {
        self.trajectories
    }
    /// All save times.
    ///
    /// ```
    /// # use tinysde::grad::Problem;
    /// # use tinysde::solve::{EulerMaruyama, Solver, TimeGrid};
    /// # let times = [0.5, 1.0, 1.5];
    /// # let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.5, 30)?);
    /// let problem = Problem::new(solver, [1.0], 8, &times)?;
    /// assert_eq!(problem.with_window(1)?.save_times(), &times); // all of them, whatever the window
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn save_times(&self) -> &'a [f32] {
        self.save_times
    }
    /// The number of save times in use.
    ///
    /// ```
    /// # use tinysde::grad::Problem;
    /// # use tinysde::solve::{EulerMaruyama, Solver, TimeGrid};
    /// # let times = [0.5, 1.0, 1.5];
    /// # let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.5, 30)?);
    /// let problem = Problem::new(solver, [1.0], 8, &times)?;
    /// assert_eq!(problem.window(), 3);
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn window(&self) -> usize {
        self.window
    }
    /// The save times in use: the first [`window`](Problem::window) of them.
    ///
    /// ```
    /// # use tinysde::grad::Problem;
    /// # use tinysde::solve::{EulerMaruyama, Solver, TimeGrid};
    /// # let times = [0.5, 1.0, 1.5];
    /// # let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.5, 30)?);
    /// let problem = Problem::new(solver, [1.0], 8, &times)?;
    /// assert_eq!(problem.with_window(1)?.active_save_times(), &[0.5]);
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn active_save_times(&self) -> &'a [f32] {
        self.save_times
            .get(..self.window)
            .unwrap_or(self.save_times)
    }
    /// Whether the gradient includes the initial state.
    ///
    /// ```
    /// # use tinysde::grad::Problem;
    /// # use tinysde::solve::{EulerMaruyama, Solver, TimeGrid};
    /// # let times = [0.5, 1.0, 1.5];
    /// # let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.5, 30)?);
    /// let problem = Problem::new(solver, [1.0], 8, &times)?;
    /// assert!(!problem.u0_gradient());
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn u0_gradient(&self) -> bool {
        self.u0_gradient
    }

    /// The length of the gradient (and of the flat parameter vector a trainer optimizes)
    /// for a model with `params` parameters: `params`, plus `D` with the initial state.
    ///
    /// ```
    /// # use tinysde::grad::Problem;
    /// # use tinysde::solve::{EulerMaruyama, Solver, TimeGrid};
    /// # let times = [0.5, 1.0, 1.5];
    /// # let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.5, 30)?);
    /// let problem = Problem::new(solver, [1.0], 8, &times)?;
    /// assert_eq!(problem.gradient_len(10), 10);
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn gradient_len(&self, params: usize) -> usize {
        if self.u0_gradient {
            params + D
        } else {
            params
        }
    }

    /// The number of statistics rows a scratch buffer needs: twice the number of save times.
    ///
    /// ```
    /// # use tinysde::grad::Problem;
    /// # use tinysde::solve::{EulerMaruyama, Solver, TimeGrid};
    /// # let times = [0.5, 1.0, 1.5];
    /// # let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.5, 30)?);
    /// let problem = Problem::new(solver, [1.0], 8, &times)?;
    /// assert_eq!(problem.stats_len(), 6); // mean and variance at 3 save times
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn stats_len(&self) -> usize {
        2 * self.save_times.len()
    }

    /// Sets the window (checked like [`Problem::with_window`]; unchanged on error).
    pub(crate) fn set_window(&mut self, window: usize) -> Result<(), Error> {
        if window == 0 || window > self.save_times.len() {
            return Err(Error::OutOfRange {
                what: "window must be between 1 and the number of save times",
            });
        }
        self.window = window;
        Ok(())
    }

    /// Sets the number of trajectories (`>= 1`; unchanged on error).
    pub(crate) fn set_trajectories(&mut self, trajectories: usize) -> Result<(), Error> {
        if trajectories == 0 {
            return Err(Error::OutOfRange {
                what: "number of trajectories must be >= 1",
            });
        }
        self.trajectories = trajectories;
        Ok(())
    }

    /// Sets the initial state without checks (the trainer has checked it).
    pub(crate) fn set_u0_unchecked(&mut self, u0: &[f32]) {
        for (dst, &src) in self.u0.iter_mut().zip(u0) {
            *dst = src;
        }
    }
}

fn check_u0<const D: usize>(u0: &[f32; D]) -> Result<(), Error> {
    match u0.iter().position(|x| !x.is_finite()) {
        Some(index) => Err(Error::NonFinite {
            what: "initial state",
            index,
        }),
        None => Ok(()),
    }
}

/// The mean and variance halves of a statistics scratch.
type MeanVar<'s, T, const D: usize> = (&'s mut [[T; D]], &'s mut [[T; D]]);

/// Splits statistics scratch into a mean and a variance part of `n` rows each.
fn split_stats<T, const D: usize>(
    stats: &mut [[T; D]],
    n: usize,
) -> Result<MeanVar<'_, T, D>, Error> {
    let found = stats.len();
    let short = Error::Length {
        what: "statistics scratch (2 rows per save time)",
        expected: 2 * n,
        found,
    };
    let (mean, rest) = stats.split_at_mut_checked(n).ok_or(short)?;
    let (var, _) = rest.split_at_mut_checked(n).ok_or(short)?;
    Ok((mean, var))
}

/// Validates the buffers of a loss evaluation over the scalar `T` without touching
/// anything: the gradient's length (if there is one), the statistics scratch, the loss's
/// number of save times, and the noise kind `S` declares over `T`.
fn check_buffers<T: Real, S: Sde<T, D> + Parameters, M: Method, L: Loss<D>, const D: usize>(
    problem: &Problem<'_, M, D>,
    loss: &L,
    stats_len: usize,
    grad_len: Option<usize>,
) -> Result<(), Error> {
    if let Some(found) = grad_len {
        check_len("gradient", problem.gradient_len(S::PARAMS), found)?;
    }
    let stats_what = "statistics scratch (2 rows per save time)";
    check_room(stats_what, problem.stats_len(), stats_len)?;
    loss.check(problem.save_times.len())?;
    let noise = <S as Sde<T, D>>::NOISE;
    if !M::supports(noise) {
        return Err(Error::UnsupportedNoise {
            method: M::NAME,
            noise,
        });
    }
    Ok(())
}

/// Returns an [`Error::Length`] if the scratch `what` has fewer than `needed` rows (more
/// is fine).
fn check_room(what: &'static str, needed: usize, found: usize) -> Result<(), Error> {
    if found < needed {
        return Err(Error::Length {
            what,
            expected: needed,
            found,
        });
    }
    Ok(())
}

impl<M, L, N, const D: usize> Ensemble<'_, M, L, N, D>
where
    N: NoiseSource,
    L: Loss<D>,
{
    /// The loss of `model` on `problem` and its gradient, by forward-mode sensitivity.
    ///
    /// `grad` must have length [`Problem::gradient_len`]`(S::PARAMS)`; it receives
    /// `dL/dparam[i]` in the model's flat parameter order, then (if the problem asks for it)
    /// `dL/du0[d]`. `stats` is scratch of at least [`Problem::stats_len`] rows; its element
    /// type `Dual<K>` chooses how many parameters are differentiated per pass (K). The noise
    /// source is replayed identically in every pass, so it must be a pure function of
    /// `(trajectory, step)`, as [`Brownian`](crate::noise::Brownian) is.
    ///
    /// Returns the loss value (bit-identical to [`loss_value`] on `f32`).
    ///
    /// Errors: wrong `grad` or `stats` length, a loss that rejects the number of save times, an
    /// unsupported noise kind: returned before anything is written. A solve that diverges
    /// returns [`Error::Diverged`] (or the noise source's error), a non-finite loss
    /// [`Error::NonFiniteLoss`], a non-finite gradient entry [`Error::NonFiniteGradientEntry`]
    /// with its index.
    ///
    /// What `grad` holds after an error, exactly: the gradient is computed in passes of K
    /// entries, and a pass's entries are written only once the whole pass succeeded. Every
    /// error of the first pass (all input errors, a diverging state value, a non-finite loss,
    /// a noise error) therefore leaves `grad` untouched, bit for bit. Only a *tangent* that
    /// overflows in a later pass (the state stays finite, a derivative does not) stops at the
    /// pass starting at entry `s`: then `grad[..s]` holds the finished entries and `grad[s..]`
    /// is untouched. `stats` is scratch: its contents are unspecified after any call.
    ///
    /// Cost: `ceil(len / K)` ensemble solves, each carrying K tangents.
    pub(crate) fn forward_gradient<const K: usize, S>(
        &self,
        model: &S,
        stats: &mut [[Dual<K>; D]],
        grad: &mut [f32],
    ) -> Result<f32, Error>
    where
        S: Sde<Dual<K>, D> + Parameters,
        M: Step<Dual<K>, S, D>,
    {
        const { assert!(K > 0, "Dual<K> needs K >= 1 lanes") };
        check_buffers::<Dual<K>, S, _, _, D>(
            self.problem,
            self.loss,
            stats.len(),
            Some(grad.len()),
        )?;
        // One pass of K gradient entries at a time; each pass's entries are written into `grad`
        // once the whole pass succeeded (see `loss_and_gradient` for what an error leaves).
        let (mean, var) = split_stats(stats, self.problem.window)?;
        let mut value = f32::NAN;
        let mut start = 0usize;
        // A model with no parameters and no u0 gradient still gets its loss value.
        let total = grad.len();
        loop {
            let end = total.min(start.saturating_add(K));
            let chunk = grad.get_mut(start..end).unwrap_or(&mut []);
            let l = self.forward_pass(model, mean, var, start, chunk)?;
            if start == 0 {
                value = l;
            }
            start = start.saturating_add(K);
            if start >= total {
                break;
            }
        }
        Ok(value)
    }

    /// The pass of [`forward_gradient`] for gradient entries `start .. start + chunk.len()`:
    /// returns the loss value, writes the entries into `chunk` once all of them are finite.
    pub(crate) fn forward_pass<const K: usize, S>(
        &self,
        model: &S,
        mean: &mut [[Dual<K>; D]],
        var: &mut [[Dual<K>; D]],
        start: usize,
        chunk: &mut [f32],
    ) -> Result<f32, Error>
    where
        S: Sde<Dual<K>, D> + Parameters,
        M: Step<Dual<K>, S, D>,
    {
        let problem = self.problem;
        let mut u0 = [Dual::<K>::ZERO; D];
        for (d, (x, &v)) in u0.iter_mut().zip(&problem.u0).enumerate() {
            *x = Dual::constant(v);
            let index = S::PARAMS + d;
            if problem.u0_gradient && index >= start && index - start < K {
                x.add_param_tangent(index - start, Dual::ONE);
            }
        }
        problem.solver.ensemble_scratch(
            model,
            self.noise,
            &u0,
            problem.trajectories,
            problem.active_save_times(),
            mean,
            var,
            ParamSeed::window(start),
        )?;
        let l = self.loss.eval::<Dual<K>>(mean, var);
        if start == 0 && !l.v.is_finite() {
            return Err(Error::NonFiniteLoss);
        }
        // The whole chunk is checked before any of it is written.
        let lanes = chunk.len();
        if let Some(lane) = (0..lanes).find(|&lane| !l.tangent(lane).is_finite()) {
            return Err(Error::NonFiniteGradientEntry {
                index: start.saturating_add(lane),
            });
        }
        for (lane, g) in chunk.iter_mut().enumerate() {
            *g = l.tangent(lane);
        }
        Ok(l.v)
    }
}

/// The loss of `model` on `problem` without derivatives (one ensemble solve on `f32`).
///
/// `stats` is scratch of at least [`Problem::stats_len`] rows (its contents are unspecified
/// after any call). Errors as [`loss_and_gradient`] (a non-finite loss is
/// [`Error::NonFiniteLoss`]).
///
/// ```
/// use tinysde::grad::{loss_value, Problem};
/// use tinysde::train::MeanSquaredError;
/// use tinysde::nn::{Dense, Identity};
/// use tinysde::noise::Brownian;
/// use tinysde::sde::NeuralSde;
/// use tinysde::solve::{EulerMaruyama, Solver, TimeGrid};
/// type Model = NeuralSde<Dense<1, 1, Identity>, Dense<1, 1, Identity>>;
/// let model = Model::default(); // f = g = 0: the state stays at u0
/// let times = [0.5, 1.0];
/// let data = [[1.0], [3.0]];
/// let problem = Problem::new(Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.0, 10)?), [2.0], 3, &times)?;
/// let mut stats = [[0.0f32; 1]; 4];
/// let l = loss_value(&problem, &model, &Brownian::new(0), &MeanSquaredError::new(&data)?, &mut stats)?;
/// assert_eq!(l, 1.0); // ((2-1)^2 + (2-3)^2) / 2
/// # Ok::<(), tinysde::Error>(())
/// ```
pub fn loss_value<S, M, N, L, const D: usize>(
    problem: &Problem<'_, M, D>,
    model: &S,
    noise: &N,
    loss: &L,
    stats: &mut [[f32; D]],
) -> Result<f32, Error>
where
    S: Sde<f32, D> + Parameters,
    M: Step<f32, S, D>,
    N: NoiseSource,
    L: Loss<D>,
{
    check_buffers::<f32, S, _, _, D>(problem, loss, stats.len(), None)?;
    let n = problem.window;
    let (mean, var) = split_stats(stats, n)?;
    problem.solver.ensemble_scratch(
        model,
        noise,
        &problem.u0,
        problem.trajectories,
        problem.active_save_times(),
        mean,
        var,
        ParamSeed::NONE,
    )?;
    let value = loss.eval::<f32>(mean, var);
    if value.is_finite() {
        Ok(value)
    } else {
        Err(Error::NonFiniteLoss)
    }
}
