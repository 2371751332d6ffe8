//! Binomial checkpointing: the same bits as keeping every state, for every method with an
//! adjoint, on uniform grids and grids through the save times; the number of recomputed
//! steps, counted, against the schedule's count and against the fewest any schedule with
//! as many snapshots can take (a dynamic program); the tape lengths.

use std::sync::atomic::{AtomicU64, Ordering};

use tinysde::grad::{loss_and_gradient, Reverse};
use tinysde::grad::{reverse, Loss, Problem};
use tinysde::grad::{Ensemble, Scratch, SeriesWindows};
use tinysde::nn::{
    Backward, Cube, Dense, FastSigmoid, FastTanh, Identity, InitScheme, Layer, ParamSeed,
    Parameters, Tanh,
};
use tinysde::noise::Brownian;
use tinysde::sde::{NeuralSde, Sde, SdeVjp};
use tinysde::solve::{
    Checkpoints, EulerHeun, EulerMaruyama, Method, Milstein, Solver, Sosra, Sosri, Sra1, Sriw1,
    StepVjp, TimeGrid, MAX_BINOMIAL_SNAPSHOTS,
};
use tinysde::train::{MeanSquaredError, MomentMatching};
use tinysde::{Dual, Error, NoiseKind, Real};

type Small = NeuralSde<
    (Cube<1>, Dense<1, 6, FastTanh>, Dense<6, 1, Identity>),
    (Dense<1, 6, FastSigmoid>, Dense<6, 1, Identity>),
>;

fn small_model(seed: u64) -> Small {
    let mut m = Small::default();
    m.init(
        &mut tinysde::noise::rng_from_seed(seed),
        InitScheme::Uniform { limit: 0.8 },
    )
    .unwrap();
    m
}

/// du = F(u) dt + s (1 + t/2) dW: additive noise, for SRA1 and SOSRA.
#[derive(Default)]
struct Additive {
    drift: (Dense<1, 6, Tanh>, Dense<6, 1, Identity>),
    scale: f32,
}
impl Parameters for Additive {
    const PARAMS: usize = 19 + 1;
    fn read_unchecked(&self, out: &mut [f32]) {
        self.drift.read_unchecked(&mut out[..19]);
        out[19] = self.scale;
    }
    fn write_unchecked(&mut self, src: &[f32]) {
        self.drift.write_unchecked(&src[..19]);
        self.scale = src[19];
    }
}
impl<T: Real> Sde<T, 1> for Additive {
    const NOISE: NoiseKind = NoiseKind::Additive;
    fn drift(&self, _: f32, u: &[T; 1], seed: ParamSeed) -> [T; 1] {
        self.drift.forward(u, seed)
    }
    fn diffusion(&self, t: f32, _: &[T; 1], seed: ParamSeed) -> [T; 1] {
        [seed.lift::<T>(self.scale, 19) * (1.0 + 0.5 * t)]
    }
}
impl SdeVjp<1> for Additive {
    fn drift_vjp(&self, _: f32, u: &[f32; 1], fb: &[f32; 1], ub: &mut [f32; 1], p: &mut [f32]) {
        let (_, cache) = self.drift.forward_cached(u);
        ub[0] += self.drift.backward(u, &cache, fb, p)[0];
    }
    fn diffusion_vjp(&self, t: f32, _: &[f32; 1], gb: &[f32; 1], _: &mut [f32; 1], p: &mut [f32]) {
        p[19] += gb[0] * (1.0 + 0.5 * t);
    }
}

fn additive_model() -> Additive {
    Additive {
        drift: (
            Dense::new(
                [[0.5], [-0.4], [0.3], [0.7], [-0.6], [0.2]],
                [0.1, -0.2, 0.3, 0.0, -0.1, 0.2],
            ),
            Dense::new([[0.3, -0.2, 0.1, 0.4, -0.3, 0.2]], [0.05]),
        ),
        scale: 0.4,
    }
}

fn gradient<S, M, L>(
    problem: &Problem<'_, M, 1>,
    model: &S,
    loss: &L,
    checkpoints: Checkpoints,
    tape_len: usize,
) -> Result<(u32, Vec<u32>), Error>
where
    S: SdeVjp<1> + Parameters,
    M: StepVjp<S, 1>,
    L: Loss<1>,
{
    let mut stats = vec![[Dual::<4>::ZERO; 1]; problem.stats_len()];
    let mut tape = vec![[0.0f32; 1]; tape_len];
    let mut grad = vec![0.0f32; problem.gradient_len(S::PARAMS)];
    let l = loss_and_gradient(
        &Ensemble::new(problem, loss, &Brownian::new(23)),
        model,
        Reverse(checkpoints),
        &mut Scratch::new(&mut stats, &mut tape),
        &mut grad,
    )?;
    Ok((l.to_bits(), grad.iter().map(|g| g.to_bits()).collect()))
}

const SNAPSHOTS: [u32; 8] = [0, 1, 2, 3, 5, 8, 64, 1000];

/// Binomial(s) for every s, with one trajectory's tape or every trajectory's, against
/// `Checkpoints::All`: the same loss and gradient bits.
fn assert_binomial_bits<S, M, L>(problem: &Problem<'_, M, 1>, model: &S, loss: &L, what: &str)
where
    S: SdeVjp<1> + Parameters,
    M: StepVjp<S, 1>,
    L: Loss<1>,
{
    let all = reverse::tape_len(problem, Checkpoints::All);
    let reference = gradient(problem, model, loss, Checkpoints::All, all).unwrap();
    assert!(reference.1.iter().any(|&g| g != 0), "{what}: zero gradient");
    for s in SNAPSHOTS {
        let c = Checkpoints::Binomial(s);
        let short = gradient(problem, model, loss, c, reverse::tape_len(problem, c)).unwrap();
        assert_eq!(short, reference, "{what}: {c:?}");
        let long = reverse::tape_len_keep_all(problem, c);
        let kept = gradient(problem, model, loss, c, long).unwrap();
        assert_eq!(
            kept, reference,
            "{what}: {c:?}, every trajectory's snapshots kept"
        );
    }
}

#[test]
fn binomial_gives_the_bits_of_all_for_every_method() {
    const TIMES: [f32; 4] = [0.25, 0.5, 0.75, 1.0];
    const UNEVEN: [f32; 4] = [0.13, 0.3, 0.317, 1.0];
    let data = [[1.2f32], [1.5], [1.4], [1.9]];
    let var = [[0.01f32], [0.03], [0.05], [0.08]];
    let moments = MomentMatching::new(&data, &var).unwrap();
    let mse = MeanSquaredError::new(&data).unwrap();
    let neural = small_model(5);
    let additive = additive_model();
    for (grid, times) in [
        (TimeGrid::new(0.0, 1.0, 40).unwrap(), &TIMES),
        (TimeGrid::through(0.0, 1.0, 40).unwrap(), &UNEVEN),
    ] {
        fn problem<'a, M: Method>(m: M, grid: TimeGrid, times: &'a [f32]) -> Problem<'a, M, 1> {
            Problem::new(Solver::new(m, grid), [1.0], 6, times)
                .unwrap()
                .with_u0_gradient(true)
        }
        let what = |m: &str| format!("{m} on {:?}", grid.spacing());
        assert_binomial_bits(
            &problem(EulerMaruyama, grid, times),
            &neural,
            &moments,
            &what("EM"),
        );
        assert_binomial_bits(
            &problem(EulerHeun, grid, times),
            &neural,
            &moments,
            &what("EulerHeun"),
        );
        assert_binomial_bits(
            &problem(Milstein, grid, times),
            &neural,
            &moments,
            &what("Milstein"),
        );
        assert_binomial_bits(
            &problem(Sriw1, grid, times),
            &neural,
            &moments,
            &what("SRIW1"),
        );
        assert_binomial_bits(&problem(Sosri, grid, times), &neural, &mse, &what("SOSRI"));
        assert_binomial_bits(&problem(Sra1, grid, times), &additive, &mse, &what("SRA1"));
        assert_binomial_bits(
            &problem(Sosra, grid, times),
            &additive,
            &moments,
            &what("SOSRA"),
        );
        let windowed = problem(Sosri, grid, times).with_window(2).unwrap();
        assert_binomial_bits(&windowed, &neural, &moments, &what("SOSRI window 2"));
    }
}

/// du = a u dt + b dW, counting its drift evaluations: with Euler–Maruyama, one per step
/// advanced (the vector–Jacobian products never evaluate the drift).
struct Counting {
    p: [f32; 2],
    drifts: AtomicU64,
}
impl Parameters for Counting {
    const PARAMS: usize = 2;
    fn read_unchecked(&self, out: &mut [f32]) {
        out.copy_from_slice(&self.p);
    }
    fn write_unchecked(&mut self, src: &[f32]) {
        self.p.copy_from_slice(src);
    }
}
impl<T: Real> Sde<T, 1> for Counting {
    const NOISE: NoiseKind = NoiseKind::Additive;
    fn drift(&self, _: f32, u: &[T; 1], seed: ParamSeed) -> [T; 1] {
        self.drifts.fetch_add(1, Ordering::Relaxed);
        [u[0] * seed.lift::<T>(self.p[0], 0)]
    }
    fn diffusion(&self, _: f32, _: &[T; 1], seed: ParamSeed) -> [T; 1] {
        [seed.lift::<T>(self.p[1], 1)]
    }
}
impl SdeVjp<1> for Counting {
    fn drift_vjp(&self, _: f32, u: &[f32; 1], fb: &[f32; 1], ub: &mut [f32; 1], p: &mut [f32]) {
        ub[0] += self.p[0] * fb[0];
        p[0] += u[0] * fb[0];
    }
    fn diffusion_vjp(&self, _: f32, _: &[f32; 1], gb: &[f32; 1], _: &mut [f32; 1], p: &mut [f32]) {
        p[1] += gb[0];
    }
}

/// The fewest steps any schedule with `s` free snapshots advances to reverse `n` steps
/// from a held start state (`advances[n][s]`), and the fewest it recomputes when the
/// forward pass may store its snapshots on its way (`recomputed[n][s]`: the advance to a
/// snapshot is then free, the tail after it too, the head not): the reverse sweep of step
/// `k` needs the state at `k`; a snapshot splits the steps into a head reversed after the
/// tail.
fn optimal_counts(max_n: usize, max_s: usize) -> (Vec<Vec<u64>>, Vec<Vec<u64>>) {
    let mut advances = vec![vec![0u64; max_s + 1]; max_n + 1];
    let mut recomputed = vec![vec![0u64; max_s + 1]; max_n + 1];
    for n in 2..=max_n {
        // No snapshot: every step recomputed from the start (the forward pass keeps none).
        let sequential = (n * (n - 1) / 2) as u64;
        for s in 0..=max_s {
            let (mut best, mut best_swept) = (sequential, sequential);
            if s > 0 {
                for m in 1..n {
                    best = best.min(m as u64 + advances[n - m][s - 1] + advances[m][s]);
                    best_swept = best_swept.min(recomputed[n - m][s - 1] + advances[m][s]);
                }
            }
            advances[n][s] = best;
            recomputed[n][s] = best_swept;
        }
    }
    (advances, recomputed)
}

fn choose(n: u64, k: u64) -> u64 {
    (0..k).fold(1, |acc, i| acc * (n - i) / (i + 1))
}

/// The documented count `R = r N - C(s + r + 1, r - 1)` is the fewest advances; the steps
/// each solve takes, counted, equal [`Checkpoints::forward_steps`]; and for binomial
/// checkpoints the recomputation is the fewest any schedule with as many snapshots can do.
#[test]
fn recomputed_steps_match_the_schedule_and_are_the_fewest() {
    const MAX_N: usize = 48;
    const MAX_S: usize = 5;
    let (advances, recomputed) = optimal_counts(MAX_N, MAX_S);
    for n in 1..=MAX_N as u64 {
        for s in 0..=MAX_S as u64 {
            let r = (0..).find(|&r| choose(s + 1 + r, r) >= n).unwrap();
            let formula = if r == 0 {
                0
            } else {
                r * n - choose(s + r + 1, r - 1)
            };
            assert_eq!(formula, advances[n as usize][s as usize], "R({n}, {s})");
        }
    }
    let loss_data = [[1.0f32]];
    let loss = MeanSquaredError::new(&loss_data).unwrap();
    const TRAJECTORIES: u64 = 3;
    for n in 1..=MAX_N as u32 {
        let grid = TimeGrid::new(0.0, 1.0, n).unwrap();
        let problem = Problem::new(Solver::new(EulerMaruyama, grid), [1.0], 3, &[1.0]).unwrap();
        let mut cases: Vec<Checkpoints> = (0..=MAX_S as u32).map(Checkpoints::Binomial).collect();
        cases.extend([Checkpoints::All, Checkpoints::Sqrt, Checkpoints::Every(5)]);
        for c in cases {
            let steps = c.forward_steps(n);
            if let Checkpoints::Binomial(s) = c {
                let s = (s as usize).min(n as usize - 1);
                assert_eq!(
                    steps - u64::from(n),
                    recomputed[n as usize][s],
                    "{c:?}, {n} steps: not the fewest recomputed steps"
                );
            }
            let model = Counting {
                p: [0.3, 0.2],
                drifts: AtomicU64::new(0),
            };
            let short = reverse::tape_len(&problem, c);
            gradient(&problem, &model, &loss, c, short).unwrap();
            // Statistics pass, then per trajectory the forward pass and the recomputation.
            let expected = TRAJECTORIES * (u64::from(n) + steps);
            assert_eq!(
                model.drifts.load(Ordering::Relaxed),
                expected,
                "{c:?}, {n} steps"
            );
            // With every trajectory's checkpoints kept, the statistics pass is the forward pass.
            model.drifts.store(0, Ordering::Relaxed);
            let long = reverse::tape_len_keep_all(&problem, c);
            gradient(&problem, &model, &loss, c, long).unwrap();
            let expected = TRAJECTORIES * steps;
            assert_eq!(
                model.drifts.load(Ordering::Relaxed),
                expected,
                "{c:?} kept, {n} steps"
            );
        }
    }
}

/// Memory: `s` snapshots per trajectory (at most 64, and at most `steps - 1`), no segment;
/// a shorter tape is a length error that writes nothing.
#[test]
fn binomial_tape_lengths() {
    let times = [0.5f32, 1.0];
    let grid = TimeGrid::new(0.0, 1.0, 600).unwrap();
    let p = Problem::new(Solver::new(EulerMaruyama, grid), [1.0], 10, &times).unwrap();
    for (s, rows) in [
        (0u32, 0usize),
        (1, 1),
        (8, 8),
        (64, 64),
        (65, 64),
        (5000, 64),
    ] {
        let c = Checkpoints::Binomial(s);
        assert_eq!(c.states(600), rows, "{c:?}");
        assert_eq!(reverse::tape_len(&p, c), 4 * 2 + rows, "{c:?}");
        assert_eq!(
            reverse::tape_len_keep_all(&p, c),
            4 * 2 + 10 * (rows + 1),
            "{c:?}"
        );
    }
    assert_eq!(MAX_BINOMIAL_SNAPSHOTS, 64);
    assert_eq!(Checkpoints::Binomial(100).states(10), 9); // never more than steps - 1
    assert_eq!(Checkpoints::Binomial(100).forward_steps(10), 10); // and then no recomputation
                                                                  // r = 4 for 600 steps and 8 snapshots: fewer than 5 passes.
    let steps = Checkpoints::Binomial(8).forward_steps(600);
    assert!(steps > 600 * 3 && steps < 600 * 5, "{steps}");

    let model = small_model(1);
    let data = [[1.0f32], [1.5]];
    let mse = MeanSquaredError::new(&data).unwrap();
    let c = Checkpoints::Binomial(8);
    let need = reverse::tape_len(&p, c);
    let mut stats = vec![[Dual::<4>::ZERO; 1]; p.stats_len()];
    let mut tape = vec![[5.0f32; 1]; need - 1];
    let mut grad = vec![7.0f32; Small::PARAMS];
    let e = loss_and_gradient(
        &Ensemble::new(&p, &mse, &Brownian::new(1)),
        &model,
        Reverse(c),
        &mut Scratch::new(&mut stats, &mut tape),
        &mut grad,
    );
    assert!(
        matches!(e, Err(Error::Length { expected, .. }) if expected == need),
        "{e:?}"
    );
    assert!(grad.iter().all(|&g| g == 7.0) && tape.iter().all(|t| t[0] == 5.0));
}

/// The series fit's reverse mode takes binomial checkpoints too: per window the same bits
/// as every state kept, with one trajectory's tape or every trajectory's.
#[test]
fn series_reverse_mode_takes_binomial_checkpoints() {
    use tinysde::train::{Series, SeriesProblem};
    let model = small_model(3);
    let times = [0.0f32, 0.5, 1.5, 2.0, 3.0, 3.2];
    let values = [[1.0f32], [0.8], [0.5], [0.3], [0.2], [0.25]];
    let problem =
        SeriesProblem::new(Milstein, Series::new(&times, &values).unwrap(), 0.1, 8).unwrap();
    let noise = Brownian::new(3);
    let run = |c: Checkpoints, len: usize| {
        let mut stats = [[Dual::<4>::ZERO; 1]; 2];
        let mut tape = vec![[0.0f32; 1]; len];
        let mut g = [0.0f32; Small::PARAMS];
        let l = loss_and_gradient(
            &SeriesWindows::new(&problem, &noise, problem.batch(0)),
            &model,
            Reverse(c),
            &mut Scratch::new(&mut stats, &mut tape),
            &mut g,
        )
        .unwrap();
        (l.to_bits(), g.map(f32::to_bits))
    };
    let all = run(
        Checkpoints::All,
        problem.reverse_tape_len(Small::PARAMS, Checkpoints::All),
    );
    assert!(all.1.iter().any(|&g| g != 0));
    for s in [0, 1, 2, 5] {
        let c = Checkpoints::Binomial(s);
        let short = problem.reverse_tape_len(Small::PARAMS, c);
        assert!(short < problem.reverse_tape_len(Small::PARAMS, Checkpoints::All));
        assert_eq!(run(c, short), all, "{c:?}");
        let long = problem.reverse_tape_len_keep_all(Small::PARAMS, c);
        assert_eq!(run(c, long), all, "{c:?} keeping all");
    }
}
