//! The one gradient entry point: [`loss_and_gradient`] of an [`Objective`] in a mode.
//!
//! An objective says *what* is differentiated: [`Ensemble`] (a [`Problem`], a [`Loss`] of
//! its statistics and the noise) or [`SeriesWindows`] (windows of an observed series,
//! [`SeriesProblem`]). A mode says *how*, as a value: [`Forward`] (K tangents per pass, K
//! from the scratch's type), [`Reverse`] (the discrete adjoint with [`Checkpoints`]),
//! [`Reversible`] (reversible Heun: no checkpoints), [`Cheaper`] (whichever of forward and
//! reverse costs less for this gradient length and K), and, with feature `std`,
//! [`Threads`] (any of them on threads, the bits independent of the thread count). The
//! buffers are one [`Scratch`]: the caller's slices (`no_std`) or owned and sized on first
//! use (`std`).

use super::{Loss, Problem};
use crate::dual::Dual;
use crate::error::Error;
use crate::nn::Parameters;
use crate::noise::NoiseSource;
use crate::real::Real;
use crate::sde::{Sde, SdeVjp};
use crate::solve::{Checkpoints, Method, ReversibleHeun, Step, StepVjp};
use crate::train::SeriesProblem;

#[cfg(feature = "std")]
use super::reverse::REVERSE_LANES;
#[cfg(feature = "std")]
use crate::lanes::F32x;
#[cfg(feature = "std")]
use std::vec::Vec;

/// What a gradient is taken of: a scalar loss of a model's simulations, with the sizes of
/// the buffers its modes need. Implemented by [`Ensemble`] and [`SeriesWindows`].
///
/// ```
/// use tinysde::grad::{Ensemble, Objective, Problem};
/// use tinysde::noise::Brownian;
/// use tinysde::solve::{Checkpoints, EulerMaruyama, Solver, TimeGrid};
/// use tinysde::train::MeanSquaredError;
/// let times = [0.5, 1.0];
/// let data = [[1.0], [0.8]];
/// let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.0, 16)?);
/// let problem = Problem::new(solver, [1.5], 8, &times)?.with_u0_gradient(true);
/// let loss = MeanSquaredError::new(&data)?;
/// let noise = Brownian::new(1);
/// let objective = Ensemble::new(&problem, &loss, &noise);
/// assert_eq!(objective.gradient_len(4), 5); // 4 parameters and u0
/// assert_eq!(objective.stats_len(), 4); // mean and variance rows
/// assert!(objective.tape_len(4, Checkpoints::All) >= 16);
/// # Ok::<(), tinysde::Error>(())
/// ```
pub trait Objective<const D: usize> {
    /// The gradient's length for a model with `params` parameters.
    fn gradient_len(&self, params: usize) -> usize;
    /// The rows of statistics scratch (`[Dual<K>; D]`) every mode needs.
    fn stats_len(&self) -> usize;
    /// The rows of tape (`[f32; D]`) [`Reverse`] needs with these checkpoints, for a model
    /// with `params` parameters ([`Reversible`] needs at most as many).
    fn tape_len(&self, params: usize, checkpoints: Checkpoints) -> usize;
}

/// An ensemble objective: the loss of the statistics (mean and variance at the save times)
/// of `problem`'s ensemble, simulated on `noise`.
///
/// ```
/// use tinysde::grad::{loss_and_gradient, Ensemble, Forward, Reverse, Scratch, Problem};
/// use tinysde::nn::{Dense, Identity, Parameters};
/// use tinysde::noise::Brownian;
/// use tinysde::sde::NeuralSde;
/// use tinysde::solve::{Checkpoints, EulerMaruyama, Solver, TimeGrid};
/// use tinysde::train::MeanSquaredError;
/// use tinysde::{Dual, Real};
///
/// // du = (a u + b) dt + (c u + d) dW; gradient in a, b, c, d and u0
/// type Model = NeuralSde<Dense<1, 1, Identity>, Dense<1, 1, Identity>>;
/// let mut model = Model::default();
/// model.write_params(&[-0.5, 0.2, 0.1, 0.05])?;
/// let times = [0.5, 1.0];
/// let data = [[1.0], [0.8]];
/// let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.0, 50)?);
/// let problem = Problem::new(solver, [1.5], 16, &times)?.with_u0_gradient(true);
/// let loss = MeanSquaredError::new(&data)?;
/// let noise = Brownian::new(3);
/// let objective = Ensemble::new(&problem, &loss, &noise);
///
/// // Forward mode into the caller's buffers, K = 1 and K = 5: the same bits.
/// let mut g1 = [0.0f32; Model::PARAMS + 1];
/// let mut g5 = [0.0f32; Model::PARAMS + 1];
/// let mut stats1 = [[Dual::<1>::ZERO; 1]; 4];
/// let mut stats5 = [[Dual::<5>::ZERO; 1]; 4];
/// let l1 = loss_and_gradient(&objective, &model, Forward, &mut Scratch::new(&mut stats1, &mut []), &mut g1)?;
/// let l5 = loss_and_gradient(&objective, &model, Forward, &mut Scratch::new(&mut stats5, &mut []), &mut g5)?;
/// assert_eq!((l1, g1), (l5, g5));
/// assert!(g1[4] > 0.0); // starting higher raises the mean above the data
///
/// // Reverse mode: the same loss bits, the gradient to rounding.
/// let mut tape = [[0.0f32; 1]; 64];
/// let mut gr = [0.0f32; Model::PARAMS + 1];
/// let mut scratch = Scratch::new(&mut stats5, &mut tape);
/// let lr = loss_and_gradient(&objective, &model, Reverse(Checkpoints::Sqrt), &mut scratch, &mut gr)?;
/// assert_eq!(lr, l1);
/// for (r, f) in gr.iter().zip(&g1) {
///     assert!((r - f).abs() <= 1e-4 * (1.0 + f.abs()));
/// }
/// # Ok::<(), tinysde::Error>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Ensemble<'a, M, L, N, const D: usize> {
    /// What is simulated.
    pub problem: &'a Problem<'a, M, D>,
    /// The loss of the ensemble's statistics.
    pub loss: &'a L,
    /// The noise, replayed identically by every pass (a pure function of trajectory and
    /// step, as [`Brownian`](crate::noise::Brownian) is).
    pub noise: &'a N,
}

impl<'a, M, L, N, const D: usize> Ensemble<'a, M, L, N, D> {
    /// The loss `loss` of `problem`'s ensemble on `noise`.
    ///
    /// ```
    /// # use tinysde::grad::{Ensemble, Problem};
    /// # use tinysde::noise::Brownian;
    /// # use tinysde::solve::{EulerMaruyama, Solver, TimeGrid};
    /// # use tinysde::train::MeanSquaredError;
    /// # let (times, data) = ([0.5, 1.0], [[1.0], [0.8]]);
    /// # let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.0, 16)?);
    /// # let problem = Problem::new(solver, [1.5], 8, &times)?;
    /// # let loss = MeanSquaredError::new(&data)?;
    /// let noise = Brownian::new(1);
    /// let objective = Ensemble::new(&problem, &loss, &noise);
    /// assert_eq!(objective.problem.trajectories(), 8);
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn new(problem: &'a Problem<'a, M, D>, loss: &'a L, noise: &'a N) -> Self {
        Self {
            problem,
            loss,
            noise,
        }
    }
}

impl<M: Method, L, N, const D: usize> Objective<D> for Ensemble<'_, M, L, N, D> {
    fn gradient_len(&self, params: usize) -> usize {
        self.problem.gradient_len(params)
    }
    fn stats_len(&self) -> usize {
        self.problem.stats_len()
    }
    fn tape_len(&self, _params: usize, checkpoints: Checkpoints) -> usize {
        super::reverse::tape_len(self.problem, checkpoints)
    }
}

/// A series objective: the per-observation loss over the windows of a [`SeriesProblem`]
/// starting at `starts` (iterated once per pass, so it must replay the same starts when
/// cloned, as [`SeriesProblem::batch`] does), simulated on `noise`.
///
/// ```
/// use tinysde::grad::{loss_and_gradient, Forward, Reverse, Scratch, SeriesWindows};
/// use tinysde::nn::{Dense, Identity, Parameters, Tanh};
/// use tinysde::noise::Brownian;
/// use tinysde::sde::NeuralSde;
/// use tinysde::solve::{Checkpoints, EulerMaruyama};
/// use tinysde::train::{Series, SeriesProblem};
///
/// type Model = NeuralSde<(Dense<1, 8, Tanh>, Dense<8, 1, Identity>), Dense<1, 1, Identity>>;
/// let mut model = Model::default();
/// model.init(&mut tinysde::noise::rng_from_seed(1), tinysde::nn::InitScheme::GlorotUniform)?;
/// let times = [0.0, 0.5, 1.5, 2.0, 3.0];
/// let values = [[1.0], [0.8], [0.5], [0.3], [0.2]];
/// let problem = SeriesProblem::new(EulerMaruyama, Series::new(&times, &values)?, 0.1, 16)?;
/// let noise = Brownian::new(3);
/// let windows = SeriesWindows::new(&problem, &noise, problem.batch(0));
/// let mut scratch = Scratch::<4, 1>::owned(); // sized on first use
/// let mut g_rev = [0.0f32; Model::PARAMS];
/// let l_rev = loss_and_gradient(&windows, &model, Reverse(Checkpoints::All), &mut scratch, &mut g_rev)?;
/// let mut g_fwd = [0.0f32; Model::PARAMS];
/// let l_fwd = loss_and_gradient(&windows, &model, Forward, &mut scratch, &mut g_fwd)?;
/// assert_eq!(l_rev, l_fwd); // the same loss bits
/// for (r, f) in g_rev.iter().zip(&g_fwd) {
///     assert!((r - f).abs() <= 1e-4 * (1.0 + f.abs()));
/// }
/// # Ok::<(), tinysde::Error>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct SeriesWindows<'a, M, N, I, const D: usize> {
    /// The series and how its windows are simulated.
    pub problem: &'a SeriesProblem<'a, M, D>,
    /// The noise (each window's trajectories take their own paths of it).
    pub noise: &'a N,
    /// The rows the windows start at.
    pub starts: I,
}

impl<'a, M, N, I, const D: usize> SeriesWindows<'a, M, N, I, D> {
    /// The windows of `problem` starting at `starts`, on `noise`.
    ///
    /// ```
    /// use tinysde::grad::SeriesWindows;
    /// use tinysde::noise::Brownian;
    /// use tinysde::solve::EulerMaruyama;
    /// use tinysde::train::{Series, SeriesProblem};
    /// let (times, values) = ([0.0, 0.5, 1.0], [[1.0], [0.8], [0.7]]);
    /// let problem = SeriesProblem::new(EulerMaruyama, Series::new(&times, &values)?, 0.1, 16)?;
    /// let noise = Brownian::new(1);
    /// let windows = SeriesWindows::new(&problem, &noise, problem.all_windows());
    /// assert_eq!(windows.starts.clone().count(), 2);
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn new(problem: &'a SeriesProblem<'a, M, D>, noise: &'a N, starts: I) -> Self {
        Self {
            problem,
            noise,
            starts,
        }
    }
}

impl<M: Method + Copy, N, I, const D: usize> Objective<D> for SeriesWindows<'_, M, N, I, D> {
    fn gradient_len(&self, params: usize) -> usize {
        params + self.problem.noise_params()
    }
    fn stats_len(&self) -> usize {
        self.problem.stats_len()
    }
    fn tape_len(&self, params: usize, checkpoints: Checkpoints) -> usize {
        self.problem.reverse_tape_len(params, checkpoints)
    }
}

/// Forward-mode sensitivity: `ceil(len / K)` passes carrying K tangents each (K from the
/// [`Scratch`]'s type; lanes never interact, so the gradient has the same bits for every
/// K), constant memory: [`Objective::stats_len`] rows of `Dual<K>`, no tape.
///
/// ```
/// # use tinysde::grad::{loss_and_gradient, Ensemble, Problem, Scratch};
/// # use tinysde::nn::{Dense, Identity, Parameters};
/// # use tinysde::noise::Brownian;
/// # use tinysde::sde::NeuralSde;
/// # use tinysde::solve::{Checkpoints, EulerMaruyama, Solver, TimeGrid};
/// # use tinysde::train::MeanSquaredError;
/// # type Model = NeuralSde<Dense<1, 1, Identity>, Dense<1, 1, Identity>>;
/// # let (times, data) = ([0.5, 1.0], [[1.0], [0.8]]);
/// # let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.0, 16)?);
/// # let problem = Problem::new(solver, [1.5], 8, &times)?;
/// # let loss = MeanSquaredError::new(&data)?;
/// # let noise = Brownian::new(1);
/// # let objective = Ensemble::new(&problem, &loss, &noise);
/// # let model = Model::default();
/// let mut scratch = Scratch::<4, 1>::owned();
/// let mut grad = [0.0f32; Model::PARAMS];
/// use tinysde::grad::Forward;
/// let loss = loss_and_gradient(&objective, &model, Forward, &mut scratch, &mut grad)?;
/// assert!(loss.is_finite());
/// # Ok::<(), tinysde::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Forward;

/// Reverse mode, the discrete adjoint of the solver from these checkpoints: about four
/// to five `f32` solves whatever the gradient's length, and a tape of
/// [`Objective::tape_len`] rows (see [`reverse`](super::reverse)). The loss value has
/// forward mode's bits, the gradient equals it to rounding.
///
/// ```
/// # use tinysde::grad::{loss_and_gradient, Ensemble, Problem, Scratch};
/// # use tinysde::nn::{Dense, Identity, Parameters};
/// # use tinysde::noise::Brownian;
/// # use tinysde::sde::NeuralSde;
/// # use tinysde::solve::{Checkpoints, EulerMaruyama, Solver, TimeGrid};
/// # use tinysde::train::MeanSquaredError;
/// # type Model = NeuralSde<Dense<1, 1, Identity>, Dense<1, 1, Identity>>;
/// # let (times, data) = ([0.5, 1.0], [[1.0], [0.8]]);
/// # let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.0, 16)?);
/// # let problem = Problem::new(solver, [1.5], 8, &times)?;
/// # let loss = MeanSquaredError::new(&data)?;
/// # let noise = Brownian::new(1);
/// # let objective = Ensemble::new(&problem, &loss, &noise);
/// # let model = Model::default();
/// let mut scratch = Scratch::<4, 1>::owned();
/// let mut grad = [0.0f32; Model::PARAMS];
/// use tinysde::grad::Reverse;
/// let loss = loss_and_gradient(&objective, &model, Reverse(Checkpoints::Sqrt), &mut scratch, &mut grad)?;
/// assert!(loss.is_finite());
/// # Ok::<(), tinysde::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reverse(pub Checkpoints);

/// Reverse mode for an [`Ensemble`] solved by [`ReversibleHeun`]: the backward pass
/// rebuilds each state from the next one, so the tape has four rows per save time
/// whatever the number of steps ([`reverse::reversible_heun_tape_len`](super::reverse::reversible_heun_tape_len)).
///
/// ```
/// use tinysde::grad::{loss_and_gradient, Ensemble, Problem, Reversible, Scratch};
/// use tinysde::nn::{Dense, Identity, Parameters};
/// use tinysde::noise::Brownian;
/// use tinysde::sde::NeuralSde;
/// use tinysde::solve::{ReversibleHeun, Solver, TimeGrid};
/// use tinysde::train::MeanSquaredError;
/// type Model = NeuralSde<Dense<1, 1, Identity>, Dense<1, 1, Identity>>;
/// let (times, data) = ([0.5, 1.0], [[1.0], [0.8]]);
/// let solver = Solver::new(ReversibleHeun, TimeGrid::new(0.0, 1.0, 16)?);
/// let problem = Problem::new(solver, [1.5], 8, &times)?;
/// let loss = MeanSquaredError::new(&data)?;
/// let noise = Brownian::new(1);
/// let mut grad = [0.0f32; Model::PARAMS];
/// let objective = Ensemble::new(&problem, &loss, &noise);
/// let l = loss_and_gradient(&objective, &Model::default(), Reversible, &mut Scratch::<4, 1>::owned(), &mut grad)?;
/// assert!(l.is_finite());
/// # Ok::<(), tinysde::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reversible;

/// Whichever of [`Forward`] and [`Reverse`] (with these checkpoints) is estimated cheaper
/// for this gradient length and K ([`forward_is_cheaper`](crate::train::forward_is_cheaper)):
/// forward mode for a few parameters, reverse mode beyond.
///
/// ```
/// # use tinysde::grad::{loss_and_gradient, Ensemble, Problem, Scratch};
/// # use tinysde::nn::{Dense, Identity, Parameters};
/// # use tinysde::noise::Brownian;
/// # use tinysde::sde::NeuralSde;
/// # use tinysde::solve::{Checkpoints, EulerMaruyama, Solver, TimeGrid};
/// # use tinysde::train::MeanSquaredError;
/// # type Model = NeuralSde<Dense<1, 1, Identity>, Dense<1, 1, Identity>>;
/// # let (times, data) = ([0.5, 1.0], [[1.0], [0.8]]);
/// # let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.0, 16)?);
/// # let problem = Problem::new(solver, [1.5], 8, &times)?;
/// # let loss = MeanSquaredError::new(&data)?;
/// # let noise = Brownian::new(1);
/// # let objective = Ensemble::new(&problem, &loss, &noise);
/// # let model = Model::default();
/// let mut scratch = Scratch::<4, 1>::owned();
/// let mut grad = [0.0f32; Model::PARAMS];
/// use tinysde::grad::Cheaper;
/// // 4 parameters, K = 4: one forward pass is the cheaper mode.
/// assert!(tinysde::train::forward_is_cheaper(Model::PARAMS, 4));
/// let loss = loss_and_gradient(&objective, &model, Cheaper(Checkpoints::All), &mut scratch, &mut grad)?;
/// assert!(loss.is_finite());
/// # Ok::<(), tinysde::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cheaper(pub Checkpoints);

/// A mode on threads (feature `std`; 0: as many as the machine has): [`Forward`] shares
/// its passes among the threads, [`Reverse`] runs [`REVERSE_LANES`] trajectories
/// (ensembles) or one window (series) per task, and [`Cheaper`] chooses between the two.
/// The bits do not depend on the number of threads; `grad` is written only on success.
/// Threaded reverse mode on an ensemble sums the trajectories' cotangents in trajectory
/// order, so its gradient equals the serial one to rounding (the loss bit for bit).
///
/// ```
/// # use tinysde::grad::{loss_and_gradient, Ensemble, Problem, Scratch};
/// # use tinysde::nn::{Dense, Identity, Parameters};
/// # use tinysde::noise::Brownian;
/// # use tinysde::sde::NeuralSde;
/// # use tinysde::solve::{Checkpoints, EulerMaruyama, Solver, TimeGrid};
/// # use tinysde::train::MeanSquaredError;
/// # type Model = NeuralSde<Dense<1, 1, Identity>, Dense<1, 1, Identity>>;
/// # let (times, data) = ([0.5, 1.0], [[1.0], [0.8]]);
/// # let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.0, 16)?);
/// # let problem = Problem::new(solver, [1.5], 8, &times)?;
/// # let loss = MeanSquaredError::new(&data)?;
/// # let noise = Brownian::new(1);
/// # let objective = Ensemble::new(&problem, &loss, &noise);
/// # let model = Model::default();
/// let mut scratch = Scratch::<4, 1>::owned();
/// let mut grad = [0.0f32; Model::PARAMS];
/// use tinysde::grad::{Forward, Threads};
/// let mut serial = [0.0f32; Model::PARAMS];
/// loss_and_gradient(&objective, &model, Forward, &mut scratch, &mut serial)?;
/// loss_and_gradient(&objective, &model, Threads(Forward, 2), &mut scratch, &mut grad)?;
/// assert_eq!(grad, serial); // forward mode on threads: the serial bits
/// # Ok::<(), tinysde::Error>(())
/// ```
#[cfg(feature = "std")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Threads<Md>(pub Md, pub usize);

/// Forward or reverse mode chosen at run time (a command-line flag, a configuration):
/// computes as [`Forward`] or as [`Reverse`] with these checkpoints.
///
/// ```
/// use tinysde::grad::GradientMode;
/// use tinysde::solve::Checkpoints;
/// let reverse_flag = true; // from a command line, say
/// let mode = if reverse_flag { GradientMode::Reverse(Checkpoints::All) } else { GradientMode::Forward };
/// assert_eq!(mode, GradientMode::Reverse(Checkpoints::All));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum GradientMode {
    /// As [`Forward`]: constant memory, cost about `ceil(N / K)` solves carrying K
    /// tangents, N the gradient's length.
    Forward,
    /// As [`Reverse`]: about four `f32` solves whatever N, a tape of
    /// [`Objective::tape_len`] rows.
    Reverse(Checkpoints),
}

/// The tape a mode needs in a caller's [`Scratch`]: the checkpoints of the serial reverse
/// pass it runs, if it runs one. Lets a trainer check a caller's scratch once, before
/// anything runs. Implemented by every mode.
///
/// ```
/// use tinysde::grad::{Cheaper, Forward, Reverse, TapeNeed};
/// use tinysde::solve::Checkpoints;
/// assert_eq!(Forward.tape_checkpoints(false), None);
/// assert_eq!(Reverse(Checkpoints::Sqrt).tape_checkpoints(true), Some(Checkpoints::Sqrt));
/// assert_eq!(Cheaper(Checkpoints::All).tape_checkpoints(true), None); // forward chosen
/// ```
pub trait TapeNeed {
    /// The checkpoints whose [`Objective::tape_len`] the mode needs (`None`: no tape),
    /// given whether forward mode is the cheaper one for the gradient at hand.
    fn tape_checkpoints(&self, forward_is_cheaper: bool) -> Option<Checkpoints>;
}

impl TapeNeed for Forward {
    fn tape_checkpoints(&self, _: bool) -> Option<Checkpoints> {
        None
    }
}

impl TapeNeed for Reverse {
    fn tape_checkpoints(&self, _: bool) -> Option<Checkpoints> {
        Some(self.0)
    }
}

/// [`Reversible`] needs at most the tape of [`Reverse`]`(`[`Checkpoints::All`]`)`.
impl TapeNeed for Reversible {
    fn tape_checkpoints(&self, _: bool) -> Option<Checkpoints> {
        Some(Checkpoints::All)
    }
}

impl TapeNeed for Cheaper {
    fn tape_checkpoints(&self, forward_is_cheaper: bool) -> Option<Checkpoints> {
        (!forward_is_cheaper).then_some(self.0)
    }
}

impl TapeNeed for GradientMode {
    fn tape_checkpoints(&self, _: bool) -> Option<Checkpoints> {
        match *self {
            GradientMode::Forward => None,
            GradientMode::Reverse(c) => Some(c),
        }
    }
}

/// Threaded modes allocate their own buffers.
#[cfg(feature = "std")]
impl<Md> TapeNeed for Threads<Md> {
    fn tape_checkpoints(&self, _: bool) -> Option<Checkpoints> {
        None
    }
}

/// One buffer of a [`Scratch`]: the caller's slice, or (feature `std`) an owned vector.
#[derive(Debug)]
enum Buf<'a, T> {
    Slice(&'a mut [T]),
    #[cfg(feature = "std")]
    Owned(Vec<T>),
}

impl<T: Copy> Buf<'_, T> {
    /// A slice's length if it is shorter than `len` (an owned buffer grows: `None`).
    fn short(&self, len: usize) -> Option<usize> {
        match self {
            Buf::Slice(s) => (s.len() < len).then_some(s.len()),
            #[cfg(feature = "std")]
            Buf::Owned(_) => None,
        }
    }

    /// The buffer, an owned one first grown to at least `len` elements of `zero`; a slice
    /// as it is (the gradient functions check its length).
    fn get(&mut self, len: usize, zero: T) -> &mut [T] {
        #[cfg(not(feature = "std"))]
        let _ = (len, zero);
        match self {
            Buf::Slice(s) => s,
            #[cfg(feature = "std")]
            Buf::Owned(v) => {
                if v.len() < len {
                    v.resize(len, zero);
                }
                v
            }
        }
    }
}

/// The buffers of a gradient: statistics scratch of `Dual<K>` rows (K: the forward-mode
/// lanes per pass, and the lanes that differentiate a loss in its statistics) and a
/// reverse-mode tape of `[f32; D]` rows. Either the caller's slices
/// ([`Scratch::new`], for `no_std`: checked, never resized) or owned and grown to what
/// each call needs ([`Scratch::owned`], feature `std`). Its contents are unspecified
/// after any call.
///
/// ```
/// use tinysde::grad::Scratch;
/// use tinysde::{Dual, Real};
/// let mut stats = [[Dual::<8>::ZERO; 2]; 6];
/// let forward_only = Scratch::new(&mut stats, &mut []); // no tape: forward mode
/// # let _ = forward_only;
/// ```
#[derive(Debug)]
pub struct Scratch<'a, const K: usize, const D: usize> {
    stats: Buf<'a, [Dual<K>; D]>,
    tape: Buf<'a, [f32; D]>,
}

impl<'a, const K: usize, const D: usize> Scratch<'a, K, D> {
    /// The caller's buffers: `stats` of at least [`Objective::stats_len`] rows and `tape`
    /// of at least [`Objective::tape_len`] rows for reverse modes (empty for [`Forward`]).
    ///
    /// ```
    /// use tinysde::grad::Scratch;
    /// use tinysde::{Dual, Real};
    /// let (mut stats, mut tape) = ([[Dual::<4>::ZERO; 1]; 4], [[0.0f32; 1]; 64]);
    /// let scratch = Scratch::new(&mut stats, &mut tape);
    /// # let _ = scratch;
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    pub fn new(stats: &'a mut [[Dual<K>; D]], tape: &'a mut [[f32; D]]) -> Self {
        Self {
            stats: Buf::Slice(stats),
            tape: Buf::Slice(tape),
        }
    }

    /// Owned buffers, empty until a call sizes them (feature `std`).
    ///
    /// ```
    /// use tinysde::grad::Scratch;
    /// let scratch = Scratch::<8, 2>::owned(); // empty until a gradient sizes it
    /// # let _ = scratch;
    /// # Ok::<(), tinysde::Error>(())
    /// ```
    #[cfg(feature = "std")]
    pub fn owned() -> Scratch<'static, K, D> {
        Scratch {
            stats: Buf::Owned(Vec::new()),
            tape: Buf::Owned(Vec::new()),
        }
    }

    /// Checks that the caller's slices have at least `stats` and `tape` rows (owned
    /// buffers grow: always fine).
    pub(crate) fn check(&self, stats: usize, tape: usize) -> Result<(), Error> {
        if let Some(found) = self.stats.short(stats) {
            return Err(Error::Length {
                what: "statistics scratch (Objective::stats_len rows)",
                expected: stats,
                found,
            });
        }
        if let Some(found) = self.tape.short(tape) {
            return Err(Error::Length {
                what: "reverse-mode tape (Objective::tape_len rows)",
                expected: tape,
                found,
            });
        }
        Ok(())
    }

    /// The statistics scratch and the tape, owned ones grown to `stats` and `tape` rows.
    fn parts(&mut self, stats: usize, tape: usize) -> (&mut [[Dual<K>; D]], &mut [[f32; D]]) {
        (
            self.stats.get(stats, [Dual::ZERO; D]),
            self.tape.get(tape, [0.0; D]),
        )
    }
}

/// How a mode computes the loss and gradient of an objective `O` for a model `S` in a
/// [`Scratch`] of `K` lanes: implemented by [`Forward`], [`Reverse`], [`Reversible`],
/// [`Cheaper`] and [`Threads`] for the objectives and models they apply to. Call it
/// through [`loss_and_gradient`].
///
/// ```
/// # use tinysde::grad::{loss_and_gradient, Ensemble, Problem, Scratch};
/// # use tinysde::nn::{Dense, Identity, Parameters};
/// # use tinysde::noise::Brownian;
/// # use tinysde::sde::NeuralSde;
/// # use tinysde::solve::{Checkpoints, EulerMaruyama, Solver, TimeGrid};
/// # use tinysde::train::MeanSquaredError;
/// # type Model = NeuralSde<Dense<1, 1, Identity>, Dense<1, 1, Identity>>;
/// # let (times, data) = ([0.5, 1.0], [[1.0], [0.8]]);
/// # let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.0, 16)?);
/// # let problem = Problem::new(solver, [1.5], 8, &times)?;
/// # let loss = MeanSquaredError::new(&data)?;
/// # let noise = Brownian::new(1);
/// # let objective = Ensemble::new(&problem, &loss, &noise);
/// # let model = Model::default();
/// let mut scratch = Scratch::<4, 1>::owned();
/// let mut grad = [0.0f32; Model::PARAMS];
/// use tinysde::grad::{Forward, Mode};
/// // A mode is a value; `loss_and_gradient` calls its `Mode` implementation.
/// let loss = Forward.loss_and_gradient(&objective, &model, &mut scratch, &mut grad)?;
/// assert!(loss.is_finite());
/// # Ok::<(), tinysde::Error>(())
/// ```
pub trait Mode<O, S, const K: usize, const D: usize> {
    /// See [`loss_and_gradient`].
    fn loss_and_gradient(
        self,
        objective: &O,
        model: &S,
        scratch: &mut Scratch<'_, K, D>,
        grad: &mut [f32],
    ) -> Result<f32, Error>;
}

/// The loss of `model` on `objective` and its gradient, computed in `mode`, in `scratch`.
///
/// `grad` must have [`Objective::gradient_len`]`(S::PARAMS)` entries; it receives
/// `dL/dparam[i]` in the model's flat parameter order, then (an [`Ensemble`] whose problem
/// asks for it) `dL/du0[d]`. Returns the loss value: the same bits in every mode
/// (bit-identical to [`loss_value`](super::loss_value) on an ensemble).
///
/// Errors: a wrong `grad` length, scratch too short, a loss that rejects the number of
/// save times, an unsupported noise kind, a bad window start: returned before anything
/// is written. A solve that diverges returns [`Error::Diverged`] (or the noise source's
/// error), a non-finite loss [`Error::NonFiniteLoss`], a non-finite gradient entry
/// [`Error::NonFiniteGradientEntry`] with its index. After a run-time error, `grad`
/// holds: nothing new for [`Threads`] and for the first pass of [`Forward`] (every error
/// but a tangent overflowing in a later pass, which leaves the finished passes' entries);
/// partial results for serial [`Reverse`] and [`Reversible`].
///
/// A compile-time check refuses `K = 0`.
///
/// ```
/// use tinysde::grad::{loss_and_gradient, Cheaper, Ensemble, Problem, Scratch};
/// use tinysde::nn::{Dense, Identity, Parameters, Tanh};
/// use tinysde::noise::Brownian;
/// use tinysde::sde::NeuralSde;
/// use tinysde::solve::{Checkpoints, EulerMaruyama, Solver, TimeGrid};
/// use tinysde::train::MeanSquaredError;
///
/// type Model = NeuralSde<(Dense<1, 8, Tanh>, Dense<8, 1, Identity>), Dense<1, 1, Identity>>;
/// let mut model = Model::default();
/// model.init(&mut tinysde::noise::rng_from_seed(1), tinysde::nn::InitScheme::GlorotUniform)?;
/// let (times, data) = ([0.5, 1.0], [[0.9], [0.7]]);
/// let loss = MeanSquaredError::new(&data)?;
/// let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.0, 100)?);
/// let problem = Problem::new(solver, [1.0], 16, &times)?;
/// let noise = Brownian::new(5);
/// let objective = Ensemble::new(&problem, &loss, &noise);
/// let mut grad = [0.0f32; Model::PARAMS];
/// let mut scratch = Scratch::<8, 1>::owned();
/// let l = loss_and_gradient(&objective, &model, Cheaper(Checkpoints::All), &mut scratch, &mut grad)?;
/// assert!(l.is_finite() && grad.iter().any(|g| *g != 0.0));
/// # Ok::<(), tinysde::Error>(())
/// ```
pub fn loss_and_gradient<O, S, Md, const K: usize, const D: usize>(
    objective: &O,
    model: &S,
    mode: Md,
    scratch: &mut Scratch<'_, K, D>,
    grad: &mut [f32],
) -> Result<f32, Error>
where
    O: Objective<D>,
    Md: Mode<O, S, K, D>,
{
    const { assert!(K > 0, "the scratch's Dual<K> needs K >= 1 lanes") };
    mode.loss_and_gradient(objective, model, scratch, grad)
}

/// Implements [`Mode`] for a mode on an objective: the trait's signature is written here
/// once. The invocation gives the impl's generics (besides `S`, `K`, `D`), the mode, the
/// objective, the bounds, and the body as a closure naming the mode and the arguments.
macro_rules! mode {
    ($(#[$attr:meta])*
     impl<$($g:ident),*> $mode:ty, $obj:ty where [$($bound:tt)*]
     |$this:pat_param, $o:ident, $model:ident, $scratch:pat_param, $grad:ident| $body:block) => {
        $(#[$attr])*
        impl<$($g,)* S, const K: usize, const D: usize> Mode<$obj, S, K, D> for $mode
        where
            $($bound)*
        {
            fn loss_and_gradient(
                self,
                $o: &$obj,
                $model: &S,
                $scratch: &mut Scratch<'_, K, D>,
                $grad: &mut [f32],
            ) -> Result<f32, Error> {
                let $this = self;
                $body
            }
        }
    };
}

mode! {
    impl<M, L, N> Forward, Ensemble<'_, M, L, N, D>
    where [S: Sde<Dual<K>, D> + Parameters, M: Step<Dual<K>, S, D>, N: NoiseSource, L: Loss<D>]
    |_, o, model, scratch, grad| {
        let (stats, _) = scratch.parts(o.problem.stats_len(), 0);
        o.forward_gradient(model, stats, grad)
    }
}

mode! {
    impl<M, L, N> Reverse, Ensemble<'_, M, L, N, D>
    where [S: SdeVjp<D> + Parameters, M: StepVjp<S, D>, N: NoiseSource, L: Loss<D>]
    |Reverse(checkpoints), o, model, scratch, grad| {
        let tape = super::reverse::tape_len(o.problem, checkpoints);
        let (stats, tape) = scratch.parts(o.problem.stats_len(), tape);
        super::reverse::checkpoint_gradient(
            o.problem, model, o.noise, o.loss, checkpoints, stats, tape, grad,
        )
    }
}

mode! {
    impl<L, N> Reversible, Ensemble<'_, ReversibleHeun, L, N, D>
    where [S: SdeVjp<D> + Parameters, N: NoiseSource, L: Loss<D>]
    |_, o, model, scratch, grad| {
        let tape = super::reverse::reversible_heun_tape_len(o.problem);
        let (stats, tape) = scratch.parts(o.problem.stats_len(), tape);
        super::reverse::reversible_gradient(o.problem, model, o.noise, o.loss, stats, tape, grad)
    }
}

/// Whether [`Cheaper`] takes forward mode for a gradient of `len` entries.
fn forward_is_cheaper<const K: usize>(len: usize) -> bool {
    crate::train::forward_is_cheaper(len, K)
}

mode! {
    impl<O> Cheaper, O
    where [O: Objective<D>, S: Parameters, Forward: Mode<O, S, K, D>, Reverse: Mode<O, S, K, D>]
    |Cheaper(checkpoints), objective, model, scratch, grad| {
        if forward_is_cheaper::<K>(objective.gradient_len(S::PARAMS)) {
            Forward.loss_and_gradient(objective, model, scratch, grad)
        } else {
            Reverse(checkpoints).loss_and_gradient(objective, model, scratch, grad)
        }
    }
}

mode! {
    impl<M, N, I> Forward, SeriesWindows<'_, M, N, I, D>
    where [
        S: Sde<Dual<K>, D> + Parameters,
        M: Step<Dual<K>, S, D> + Copy,
        N: NoiseSource,
        I: Iterator<Item = usize> + Clone,
    ]
    |_, o, model, scratch, grad| {
        let (stats, _) = scratch.parts(o.problem.stats_len(), 0);
        crate::train::series_forward(o.problem, model, o.noise, o.starts.clone(), stats, grad)
    }
}

mode! {
    impl<M, N, I> Reverse, SeriesWindows<'_, M, N, I, D>
    where [
        S: SdeVjp<D> + Parameters,
        M: StepVjp<S, D> + Copy,
        N: NoiseSource,
        I: Iterator<Item = usize> + Clone,
    ]
    |Reverse(checkpoints), o, model, scratch, grad| {
        let tape = o.problem.reverse_tape_len(S::PARAMS, checkpoints);
        let (stats, tape) = scratch.parts(o.problem.stats_len(), tape);
        let starts = o.starts.clone();
        crate::train::series_reverse(o.problem, model, o.noise, starts, checkpoints, stats, tape, grad)
    }
}

mode! {
    impl<O> GradientMode, O
    where [O: Objective<D>, Forward: Mode<O, S, K, D>, Reverse: Mode<O, S, K, D>]
    |this, objective, model, scratch, grad| {
        match this {
            GradientMode::Forward => Forward.loss_and_gradient(objective, model, scratch, grad),
            GradientMode::Reverse(c) => Reverse(c).loss_and_gradient(objective, model, scratch, grad),
        }
    }
}

mode! {
    #[cfg(feature = "std")]
    impl<O> Threads<GradientMode>, O
    where [O: Objective<D>, Threads<Forward>: Mode<O, S, K, D>, Threads<Reverse>: Mode<O, S, K, D>]
    |Threads(mode, t), objective, model, scratch, grad| {
        match mode {
            GradientMode::Forward => Threads(Forward, t).loss_and_gradient(objective, model, scratch, grad),
            GradientMode::Reverse(c) => {
                Threads(Reverse(c), t).loss_and_gradient(objective, model, scratch, grad)
            }
        }
    }
}

/// The lane scalar of threaded reverse mode on ensembles.
#[cfg(feature = "std")]
type Wide = F32x<REVERSE_LANES>;

mode! {
    #[cfg(feature = "std")]
    impl<M, L, N> Threads<Forward>, Ensemble<'_, M, L, N, D>
    where [
        S: Sde<Dual<K>, D> + Parameters + Sync,
        M: Step<Dual<K>, S, D> + Sync,
        N: NoiseSource + Sync,
        L: Loss<D> + Sync,
    ]
    |Threads(_, threads), o, model, scratch, grad| {
        let (stats, _) = scratch.parts(o.problem.stats_len(), 0);
        super::parallel::forward_gradient_parallel(o, model, stats, grad, threads)
    }
}

mode! {
    #[cfg(feature = "std")]
    impl<M, L, N> Threads<Reverse>, Ensemble<'_, M, L, N, D>
    where [
        S: SdeVjp<D> + SdeVjp<D, Wide> + Parameters + Sync,
        M: StepVjp<S, D> + StepVjp<S, D, Wide> + Sync,
        N: NoiseSource + Sync,
        L: Loss<D>,
    ]
    |Threads(Reverse(checkpoints), threads), o, model, _, grad| {
        let keep = super::parallel::KEEP_ALL_BYTES;
        super::parallel::reverse_gradient_parallel(
            o.problem, model, o.noise, o.loss, checkpoints, grad, threads, keep,
        )
    }
}

mode! {
    #[cfg(feature = "std")]
    impl<M, N, I> Threads<Forward>, SeriesWindows<'_, M, N, I, D>
    where [
        S: Sde<Dual<K>, D> + Parameters + Sync,
        M: Step<Dual<K>, S, D> + Copy + Sync,
        N: NoiseSource + Sync,
        I: Iterator<Item = usize> + Clone + Send + Sync,
    ]
    |Threads(_, threads), o, model, _, grad| {
        let starts = o.starts.clone();
        crate::train::series_forward_parallel::<K, S, M, N, I, D>(
            o.problem, model, o.noise, starts, grad, threads,
        )
    }
}

mode! {
    #[cfg(feature = "std")]
    impl<M, N, I> Threads<Reverse>, SeriesWindows<'_, M, N, I, D>
    where [
        S: SdeVjp<D> + Parameters + Sync,
        M: StepVjp<S, D> + Copy + Sync,
        N: NoiseSource + Sync,
        I: Iterator<Item = usize> + Clone,
    ]
    |Threads(Reverse(checkpoints), threads), o, model, _, grad| {
        let starts = o.starts.clone();
        crate::train::series_reverse_parallel::<K, S, M, N, I, D>(
            o.problem, model, o.noise, starts, checkpoints, grad, threads,
        )
    }
}

mode! {
    #[cfg(feature = "std")]
    impl<O> Threads<Cheaper>, O
    where [
        O: Objective<D>,
        S: Parameters,
        Threads<Forward>: Mode<O, S, K, D>,
        Threads<Reverse>: Mode<O, S, K, D>,
    ]
    |Threads(Cheaper(checkpoints), threads), objective, model, scratch, grad| {
        if forward_is_cheaper::<K>(objective.gradient_len(S::PARAMS)) {
            Threads(Forward, threads).loss_and_gradient(objective, model, scratch, grad)
        } else {
            Threads(Reverse(checkpoints), threads).loss_and_gradient(objective, model, scratch, grad)
        }
    }
}
