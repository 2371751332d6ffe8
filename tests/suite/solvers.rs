//! Properties of the fixed-step solvers and ensembles: exactness on pure Brownian motion,
//! determinism, serial/parallel agreement, shared paths, exact Milstein derivatives, the
//! drift-only RK4, and bad input (typed errors, buffers untouched). Fixed seeds throughout.

use std::cell::Cell;

use tinysde::nn::{Cube, Dense, FastSigmoid, FastTanh, Identity, InitScheme, ParamSeed};
use tinysde::noise::{rng_from_seed, Brownian, Coarsened, Increment, NoiseSource};
use tinysde::sde::{NeuralSde, Sde};
use tinysde::solve::{
    self, Calculus, EnsembleBuffers, EnsembleRequest, EulerHeun, EulerMaruyama, Integrator,
    LaneIntegrator, Method, Milstein, Rk4, Seeded, SolveRequest, Solver, Sosra, Sosri, Sra1, Sriw1,
    Step, TimeGrid, PARALLEL_LANES,
};
use tinysde::{Directional, Dual, Error, NoiseKind, Real, Widen};

// ---------------------------------------------------------------- test SDEs

macro_rules! brownian_motion {
    ($name:ident, $kind:expr) => {
        /// Pure Brownian motion: f = 0, g = 1.
        struct $name;
        impl<T: Real, const D: usize> Sde<T, D> for $name {
            const NOISE: NoiseKind = $kind;
            fn drift(&self, _: f32, _: &[T; D], _: ParamSeed) -> [T; D] {
                [T::ZERO; D]
            }
            fn diffusion(&self, _: f32, _: &[T; D], _: ParamSeed) -> [T; D] {
                [T::ONE; D]
            }
        }
    };
}
brownian_motion!(BmDiagonal, NoiseKind::Diagonal);
brownian_motion!(BmScalar, NoiseKind::Scalar);
brownian_motion!(BmAdditive, NoiseKind::Additive);

/// Geometric Brownian motion `du = a u dt + b u dW` on `D` components, with `a` and `b`
/// trainable parameters 0 and 1 and noise kind chosen by `SCALAR`.
struct Gbm<const SCALAR: bool>;
impl<T: Real, const D: usize, const SCALAR: bool> Sde<T, D> for Gbm<SCALAR> {
    const NOISE: NoiseKind = if SCALAR {
        NoiseKind::Scalar
    } else {
        NoiseKind::Diagonal
    };
    fn drift(&self, _: f32, u: &[T; D], seed: ParamSeed) -> [T; D] {
        let a: T = seed.lift(1.01, 0);
        u.map(|x| x * a)
    }
    fn diffusion(&self, _: f32, u: &[T; D], seed: ParamSeed) -> [T; D] {
        let b: T = seed.lift(0.87, 1);
        u.map(|x| x * b)
    }
}

/// `du = -u^3 dt + dW`: explodes for large steps.
struct Cubic;
impl<T: Real> Sde<T, 1> for Cubic {
    const NOISE: NoiseKind = NoiseKind::Diagonal;
    fn drift(&self, _: f32, u: &[T; 1], _: ParamSeed) -> [T; 1] {
        [-(u[0] * u[0] * u[0])]
    }
    fn diffusion(&self, _: f32, _: &[T; 1], _: ParamSeed) -> [T; 1] {
        [T::ONE]
    }
}

/// `du = -u dt + 0.5 dW`: additive noise.
struct Ou;
impl<T: Real> Sde<T, 1> for Ou {
    const NOISE: NoiseKind = NoiseKind::Additive;
    fn drift(&self, _: f32, u: &[T; 1], _: ParamSeed) -> [T; 1] {
        [-u[0]]
    }
    fn diffusion(&self, _: f32, _: &[T; 1], _: ParamSeed) -> [T; 1] {
        [T::cst(0.5)]
    }
}

type SeedDrift = (Cube<1>, Dense<1, 20, FastTanh>, Dense<20, 1, Identity>);
type SeedDiffusion = (Dense<1, 20, FastSigmoid>, Dense<20, 1, Identity>);
type SeedModel = NeuralSde<SeedDrift, SeedDiffusion>;

fn seed_model() -> SeedModel {
    let mut model = SeedModel::default();
    model
        .init(&mut rng_from_seed(0), InitScheme::GlorotUniform)
        .unwrap();
    model
}

const SEED_TIMES: [f32; 7] = [-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0];

fn bits<const D: usize>(rows: &[[f32; D]]) -> Vec<[u32; D]> {
    rows.iter().map(|r| r.map(f32::to_bits)).collect()
}

/// The ensemble variants to exercise: serial (`None`) and, with feature `std`, lanes and
/// threads (`Some(threads)`).
fn ensemble_modes() -> Vec<Option<usize>> {
    if cfg!(feature = "std") {
        // One thread: the lane path alone (8 trajectories per pass).
        vec![None, Some(1), Some(2), Some(3)]
    } else {
        vec![None]
    }
}

/// An ensemble one trajectory at a time (`threads = None`) or in lane groups on threads
/// (feature `std`).
#[allow(
    clippy::too_many_arguments,
    reason = "a test helper mirroring the request's fields"
)]
fn run_ensemble<M, S, T, const D: usize>(
    solver: &Solver<M>,
    sde: &S,
    noise: &Brownian,
    u0: &[T; D],
    trajectories: usize,
    times: &[f32],
    out: EnsembleBuffers<'_, T, D>,
    threads: Option<usize>,
) -> Result<(), Error>
where
    M: Sync,
    Solver<M>: Integrator<T, S, Brownian, D, Stats = ()>
        + LaneIntegrator<PARALLEL_LANES, T, S, Brownian, D>,
    S: Sde<T, D> + Sync,
    T: Widen<PARALLEL_LANES> + Send + Sync,
{
    let request = EnsembleRequest::new(*u0, trajectories, times);
    match threads {
        None => solve::simulate_into(solver, sde, noise, &request, out),
        #[cfg(feature = "std")]
        Some(t) => {
            let request = request.in_lanes::<PARALLEL_LANES>().on_threads(t);
            solve::simulate_into(solver, sde, noise, &request, out)
        }
        #[cfg(not(feature = "std"))]
        Some(_) => unreachable!("threaded ensembles need feature std"),
    }
}

// ---------------------------------------------------------------- pure Brownian motion

/// Solves `sde` (pure Brownian motion) from 0 saving at every grid point and checks each
/// saved state is bit for bit the running f32 sum of the increments the noise source gives.
fn assert_reproduces_brownian_motion<M, S, const D: usize>(method: M, sde: &S)
where
    M: Method + Copy,
    Solver<M>: Integrator<f32, S, Brownian, D>,
    S: Sde<f32, D>,
{
    let noise = Brownian::new(11);
    let grid = TimeGrid::new(0.0, 2.0, 50).unwrap();
    let times: Vec<f32> = (0..=grid.steps()).map(|k| grid.time(k)).collect();
    let solver = Solver::new(method, grid);
    for m in [0, 1, 7] {
        let mut out = vec![[f32::NAN; D]; times.len()];
        solve::solve(
            &solver,
            sde,
            &noise,
            &SolveRequest::new([0.0; D], &times).trajectory(m),
            &mut out,
        )
        .unwrap();
        let mut w = [0.0f32; D];
        for (k, saved) in out.iter().enumerate() {
            assert_eq!(
                saved.map(f32::to_bits),
                w.map(f32::to_bits),
                "{} ({:?} noise), trajectory {m}, step {k}: {saved:?} != {w:?}",
                M::NAME,
                S::NOISE
            );
            let dw: [f32; D] = if S::NOISE == NoiseKind::Scalar {
                let one = noise.increment::<1>(m, k as u32, grid.h(), M::NEEDS_DZ);
                [one.unwrap().dw[0]; D]
            } else {
                noise
                    .increment::<D>(m, k as u32, grid.h(), M::NEEDS_DZ)
                    .unwrap()
                    .dw
            };
            for (wc, d) in w.iter_mut().zip(dw) {
                *wc += d;
            }
        }
    }
}

#[test]
fn every_stochastic_method_reproduces_brownian_motion_bit_for_bit() {
    macro_rules! check_all_kinds {
        ($($method:expr),*) => {$(
            assert_reproduces_brownian_motion::<_, _, 3>($method, &BmDiagonal);
            assert_reproduces_brownian_motion::<_, _, 2>($method, &BmScalar);
            assert_reproduces_brownian_motion::<_, _, 3>($method, &BmAdditive);
            assert_reproduces_brownian_motion::<_, _, 1>($method, &BmDiagonal);
        )*};
    }
    check_all_kinds!(EulerMaruyama, EulerHeun, Milstein, Sriw1, Sosri);
    assert_reproduces_brownian_motion::<_, _, 3>(Sra1, &BmAdditive);
    assert_reproduces_brownian_motion::<_, _, 3>(Sosra, &BmAdditive);
    assert_reproduces_brownian_motion::<_, _, 1>(Sra1, &BmAdditive);
    assert_reproduces_brownian_motion::<_, _, 1>(Sosra, &BmAdditive);
}

#[test]
fn a_constant_diffusion_adds_exactly_g_dw_in_the_order_15_methods() {
    // f = 0, g = 0.3 (not 1): the difference-form quadrature cancels equal stages exactly.
    struct Scaled;
    impl<T: Real> Sde<T, 2> for Scaled {
        const NOISE: NoiseKind = NoiseKind::Additive;
        fn drift(&self, _: f32, _: &[T; 2], _: ParamSeed) -> [T; 2] {
            [T::ZERO; 2]
        }
        fn diffusion(&self, _: f32, _: &[T; 2], _: ParamSeed) -> [T; 2] {
            [T::cst(0.3); 2]
        }
    }
    let inc = Increment {
        dw: [0.123, -0.456],
        dz: [0.789, 0.0101],
    };
    let u = [1.5f32, -2.25];
    let expected = [u[0] + 0.3 * inc.dw[0], u[1] + 0.3 * inc.dw[1]];
    let h = 0.01;
    assert_eq!(
        Sriw1.step(&Scaled, 0.0, h, &u, &inc, ParamSeed::NONE),
        expected
    );
    assert_eq!(
        Sosri.step(&Scaled, 0.0, h, &u, &inc, ParamSeed::NONE),
        expected
    );
    assert_eq!(
        Sra1.step(&Scaled, 0.0, h, &u, &inc, ParamSeed::NONE),
        expected
    );
    assert_eq!(
        Sosra.step(&Scaled, 0.0, h, &u, &inc, ParamSeed::NONE),
        expected
    );
}

#[test]
fn order_15_steps_stay_finite_for_a_zero_step() {
    // chi1 and chi3 divide by sqrt(h) and h: a zero step must not produce NaN.
    let inc = Increment {
        dw: [0.0],
        dz: [0.0],
    };
    let u = [0.7f32];
    let gbm = Gbm::<false>;
    assert_eq!(Sriw1.step(&gbm, 0.0, 0.0, &u, &inc, ParamSeed::NONE), u);
    assert_eq!(Sosri.step(&gbm, 0.0, 0.0, &u, &inc, ParamSeed::NONE), u);
}

// ---------------------------------------------------------------- metadata

#[test]
fn methods_declare_calculus_orders_and_noise_kinds_as_the_literature() {
    use NoiseKind::{Additive, Diagonal, Scalar};
    /// Name, calculus, strong and weak order, whether it draws dZ, noise kinds accepted.
    fn row<M: Method>() -> (&'static str, Calculus, f32, f32, bool, [bool; 3]) {
        (
            M::NAME,
            M::CALCULUS,
            M::STRONG_ORDER,
            M::WEAK_ORDER,
            M::NEEDS_DZ && M::USES_NOISE,
            [Diagonal, Scalar, Additive].map(M::supports),
        )
    }
    let ito = Calculus::Ito;
    let all = [true; 3];
    assert_eq!(
        row::<EulerMaruyama>(),
        ("EulerMaruyama", ito, 0.5, 1.0, false, all)
    );
    let strat = Calculus::Stratonovich;
    assert_eq!(
        row::<EulerHeun>(),
        ("EulerHeun", strat, 0.5, 1.0, false, all)
    );
    assert_eq!(row::<Milstein>(), ("Milstein", ito, 1.0, 1.0, false, all));
    assert_eq!(row::<Sriw1>(), ("SRIW1", ito, 1.5, 2.0, true, all));
    assert_eq!(row::<Sosri>(), ("SOSRI", ito, 1.5, 2.0, true, all));
    let additive = [false, false, true];
    let both = Calculus::Both;
    assert_eq!(row::<Sra1>(), ("SRA1", both, 1.5, 2.0, true, additive));
    assert_eq!(row::<Sosra>(), ("SOSRA", both, 1.5, 2.0, true, additive));
    assert_eq!(row::<Rk4>(), ("RK4", both, 4.0, 4.0, false, all));
    let noise_users = [
        EulerMaruyama::USES_NOISE,
        Sosri::USES_NOISE,
        Sra1::USES_NOISE,
    ];
    assert_eq!((Rk4::USES_NOISE, noise_users), (false, [true; 3]));
}

// ---------------------------------------------------------------- RK4

/// A noise source that counts its calls and otherwise behaves as `Brownian::new(seed)`.
struct CountingNoise {
    inner: Brownian,
    calls: Cell<usize>,
}
impl NoiseSource for CountingNoise {
    fn increment<const C: usize>(
        &self,
        trajectory: usize,
        step: u32,
        h: f32,
        with_dz: bool,
    ) -> Result<Increment<C>, Error> {
        self.calls.set(self.calls.get() + 1);
        self.inner.increment(trajectory, step, h, with_dz)
    }
}

/// `du = u dt` with a diffusion that is NaN: any method that used it would diverge.
struct GrowthNanNoise;
impl<T: Real> Sde<T, 1> for GrowthNanNoise {
    const NOISE: NoiseKind = NoiseKind::Diagonal;
    fn drift(&self, _: f32, u: &[T; 1], _: ParamSeed) -> [T; 1] {
        [u[0]]
    }
    fn diffusion(&self, _: f32, _: &[T; 1], _: ParamSeed) -> [T; 1] {
        [T::cst(f32::NAN)]
    }
}

#[test]
fn rk4_integrates_the_drift_alone_with_order_four_and_draws_no_noise() {
    let mut points = Vec::new();
    for steps in [1u32, 2, 4, 8] {
        let noise = CountingNoise {
            inner: Brownian::new(1),
            calls: Cell::new(0),
        };
        let solver = Solver::new(Rk4, TimeGrid::new(0.0, 1.0, steps).unwrap());
        let mut out = [[0.0f32; 1]];
        solve::solve(
            &solver,
            &GrowthNanNoise,
            &noise,
            &SolveRequest::new([1.0], &[1.0]),
            &mut out,
        )
        .unwrap();
        assert_eq!(noise.calls.get(), 0, "RK4 drew noise");
        // For du = u, RK4 multiplies by 1 + h + h^2/2 + h^3/6 + h^4/24 per step.
        let h = 1.0 / f64::from(steps);
        let factor = 1.0 + h + h * h / 2.0 + h * h * h / 6.0 + h * h * h * h / 24.0;
        let discrete = factor.powi(steps as i32);
        assert!((f64::from(out[0][0]) - discrete).abs() < 1e-6 * discrete);
        let err = (f64::from(out[0][0]) - 1f64.exp()).abs();
        points.push((1.0 / f64::from(steps), err));
    }
    // Order 4 from h = 1/2 to 1/8 (h = 1 is not yet asymptotic; below 1/8 f32 rounding
    // is as large as the error).
    let slope = (points[3].1 / points[1].1).ln() / (points[3].0 / points[1].0).ln();
    assert!((slope - 4.0).abs() < 0.3, "RK4 order {slope}: {points:?}");
    // Euler–Maruyama on the same SDE does use the noise (and so diverges on the NaN g).
    let noise = CountingNoise {
        inner: Brownian::new(1),
        calls: Cell::new(0),
    };
    let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.0, 4).unwrap());
    let mut out = [[0.0f32; 1]];
    let err = solve::solve(
        &solver,
        &GrowthNanNoise,
        &noise,
        &SolveRequest::new([1.0], &[1.0]),
        &mut out,
    );
    // The state is checked at each save time, so the report names the last step of the
    // save interval in which it became non-finite (here the only interval, steps 0..=3).
    assert_eq!(
        err,
        Err(Error::Diverged {
            trajectory: 0,
            step: 3
        })
    );
    assert_eq!(noise.calls.get(), 4);
}

// ---------------------------------------------------------------- Milstein

#[test]
fn milstein_diagonal_correction_uses_the_diagonal_derivative() {
    /// g_i depends on u_i only: g = [0.5 u0^2, 0.4 sin u1].
    struct Diag;
    impl<T: Real> Sde<T, 2> for Diag {
        const NOISE: NoiseKind = NoiseKind::Diagonal;
        fn drift(&self, _: f32, u: &[T; 2], _: ParamSeed) -> [T; 2] {
            [u[0] * 0.3, u[1] * -0.2]
        }
        fn diffusion(&self, _: f32, u: &[T; 2], _: ParamSeed) -> [T; 2] {
            [u[0] * u[0] * 0.5, u[1].sin() * 0.4]
        }
    }
    let (u, h) = ([0.8f32, 1.3], 0.05f32);
    let inc = Increment {
        dw: [0.21, -0.17],
        dz: [0.0; 2],
    };
    let got = Milstein.step(&Diag, 0.0, h, &u, &inc, ParamSeed::NONE);
    let (u0, u1, h64) = (f64::from(u[0]), f64::from(u[1]), f64::from(h));
    let (w0, w1) = (f64::from(inc.dw[0]), f64::from(inc.dw[1]));
    let g = [0.5 * u0 * u0, 0.4 * u1.sin()];
    let dg = [u0, 0.4 * u1.cos()];
    let expected = [
        u0 + 0.3 * u0 * h64 + g[0] * w0 + 0.5 * g[0] * dg[0] * (w0 * w0 - h64),
        u1 - 0.2 * u1 * h64 + g[1] * w1 + 0.5 * g[1] * dg[1] * (w1 * w1 - h64),
    ];
    for i in 0..2 {
        assert!(
            (f64::from(got[i]) - expected[i]).abs() < 1e-6,
            "component {i}: {} vs {}",
            got[i],
            expected[i]
        );
    }
}

#[test]
fn milstein_scalar_correction_uses_the_jacobian_along_g() {
    /// One Wiener process; g = [u1^2, u0 u1] couples the components.
    struct Coupled;
    impl<T: Real> Sde<T, 2> for Coupled {
        const NOISE: NoiseKind = NoiseKind::Scalar;
        fn drift(&self, _: f32, u: &[T; 2], _: ParamSeed) -> [T; 2] {
            [u[1], -u[0]]
        }
        fn diffusion(&self, _: f32, u: &[T; 2], _: ParamSeed) -> [T; 2] {
            [u[1] * u[1], u[0] * u[1]]
        }
    }
    let (u, h) = ([0.6f32, -0.9], 0.02f32);
    let dw = 0.13f32;
    let inc = Increment {
        dw: [dw; 2],
        dz: [0.0; 2],
    };
    let got = Milstein.step(&Coupled, 0.0, h, &u, &inc, ParamSeed::NONE);
    let (a, b, h64, w) = (
        f64::from(u[0]),
        f64::from(u[1]),
        f64::from(h),
        f64::from(dw),
    );
    let g = [b * b, a * b];
    // J = [[0, 2b], [b, a]]; J g.
    let jg = [2.0 * b * g[1], b * g[0] + a * g[1]];
    let expected = [
        a + b * h64 + g[0] * w + 0.5 * jg[0] * (w * w - h64),
        b - a * h64 + g[1] * w + 0.5 * jg[1] * (w * w - h64),
    ];
    for i in 0..2 {
        assert!(
            (f64::from(got[i]) - expected[i]).abs() < 1e-6,
            "component {i}: {} vs {}",
            got[i],
            expected[i]
        );
    }
}

#[test]
fn milstein_gradients_are_exact_through_the_correction() {
    // For GBM the Milstein map is u_{k+1} = u_k F_k with
    // F_k = 1 + a h + b dW_k + b^2 (dW_k^2 - h) / 2, so
    // du_N/da = u_N sum_k h / F_k and du_N/db = u_N sum_k (dW_k + b (dW_k^2 - h)) / F_k.
    let noise = Brownian::new(5);
    let grid = TimeGrid::new(0.0, 1.0, 40).unwrap();
    let solver = Solver::new(Milstein, grid);
    for m in 0..4 {
        let mut out = [[Dual::<2>::constant(0.0); 1]];
        let u0 = [Dual::<2>::constant(0.5)];
        solve::solve(
            &solver,
            &Seeded {
                sde: &Gbm::<false>,
                seed: ParamSeed::window(0),
            },
            &noise,
            &SolveRequest::new(u0, &[1.0]).trajectory(m),
            &mut out,
        )
        .unwrap();
        let (a, b, h) = (1.01f64, 0.87f64, f64::from(grid.h()));
        let (mut u, mut da, mut db) = (0.5f64, 0.0, 0.0);
        for k in 0..grid.steps() {
            let w = f64::from(noise.increment::<1>(m, k, grid.h(), false).unwrap().dw[0]);
            let f = 1.0 + a * h + b * w + 0.5 * b * b * (w * w - h);
            u *= f;
            da += h / f;
            db += (w + b * (w * w - h)) / f;
        }
        let got = out[0][0];
        assert!(
            (f64::from(got.v) - u).abs() < 1e-5 * u,
            "value {} vs {u}",
            got.v
        );
        assert!((f64::from(got.t[0]) - u * da).abs() < 1e-4 * (u * da).abs());
        assert!(
            (f64::from(got.t[1]) - u * db).abs() < 1e-4 * (u * db).abs().max(1e-3),
            "d/db {} vs {}",
            got.t[1],
            u * db
        );
    }
}

#[test]
fn milstein_uses_the_same_directional_derivative_as_directional_arithmetic() {
    // The diagonal pass is Directional arithmetic: its value part is exactly g.
    let u = [0.4f32];
    let x = [Directional::variable(u[0])];
    let y = <Gbm<false> as Sde<Directional<f32>, 1>>::diffusion(&Gbm, 0.0, &x, ParamSeed::NONE);
    let g = <Gbm<false> as Sde<f32, 1>>::diffusion(&Gbm, 0.0, &u, ParamSeed::NONE);
    assert_eq!(y[0].v, g[0]);
    assert_eq!(y[0].d, 0.87);
}

// ---------------------------------------------------------------- scalar noise

#[test]
fn scalar_noise_broadcasts_one_increment_to_every_component() {
    // Two identical GBM components driven by one Wiener process follow, bit for bit, the
    // one-component diagonal solve with the same noise (dW and dZ both broadcast).
    let noise = Brownian::new(21);
    let grid = TimeGrid::new(0.0, 1.0, 32).unwrap();
    let times = [0.25, 0.5, 1.0];
    fn both<M: Method + Copy>(method: M, grid: TimeGrid, noise: &Brownian, times: &[f32; 3])
    where
        Solver<M>:
            Integrator<f32, Gbm<true>, Brownian, 2> + Integrator<f32, Gbm<false>, Brownian, 1>,
    {
        let solver = Solver::new(method, grid);
        let mut two = [[0.0f32; 2]; 3];
        let mut one = [[0.0f32; 1]; 3];
        solve::solve(
            &solver,
            &Gbm::<true>,
            noise,
            &SolveRequest::new([0.5, 0.5], times).trajectory(3),
            &mut two,
        )
        .unwrap();
        solve::solve(
            &solver,
            &Gbm::<false>,
            noise,
            &SolveRequest::new([0.5], times).trajectory(3),
            &mut one,
        )
        .unwrap();
        for (t, o) in two.iter().zip(&one) {
            assert_eq!(t[0].to_bits(), o[0].to_bits(), "{}", M::NAME);
            assert_eq!(t[1].to_bits(), o[0].to_bits(), "{}", M::NAME);
        }
    }
    both(EulerMaruyama, grid, &noise, &times);
    both(EulerHeun, grid, &noise, &times);
    both(Milstein, grid, &noise, &times);
    both(Sriw1, grid, &noise, &times);
    both(Sosri, grid, &noise, &times);
}

// ---------------------------------------------------------------- determinism

#[test]
fn same_seed_gives_the_same_bits_and_another_seed_does_not() {
    let model = seed_model();
    let grid = TimeGrid::new(-3.0, 3.0, 120).unwrap();
    fn check<M: Method + Copy, S: Sde<f32, 1>>(m: M, s: &S, g: TimeGrid)
    where
        Solver<M>: Integrator<f32, S, Brownian, 1>,
    {
        let solver = Solver::new(m, g);
        let run = |seed: u64, trajectory: usize| {
            let mut out = [[0.0f32; 1]; 7];
            solve::solve(
                &solver,
                s,
                &Brownian::new(seed),
                &SolveRequest::new([0.05], &SEED_TIMES).trajectory(trajectory),
                &mut out,
            )
            .unwrap();
            bits(&out)
        };
        assert_eq!(run(1, 0), run(1, 0), "{}", M::NAME);
        assert_eq!(run(1, 4), run(1, 4), "{}", M::NAME);
        assert_ne!(run(1, 0), run(2, 0), "{}", M::NAME);
        assert_ne!(run(1, 0), run(1, 1), "{}", M::NAME);
    }
    check(EulerMaruyama, &model, grid);
    check(EulerHeun, &model, grid);
    check(Milstein, &model, grid);
    check(Sriw1, &model, grid);
    check(Sosri, &model, grid);
    check(Sra1, &Ou, grid);
    check(Sosra, &Ou, grid);
}

#[test]
#[cfg(feature = "std")]
fn parallel_ensemble_is_bit_identical_to_the_serial_one() {
    let model = seed_model();
    let noise = Brownian::new(77);
    let solver = Solver::new(Sosri, TimeGrid::new(-3.0, 3.0, 60).unwrap());
    for trajectories in [1usize, 2, 37] {
        let mut mean = [[0.0f32; 1]; 7];
        let mut var = [[0.0f32; 1]; 7];
        let mut paths = vec![[0.0f32; 1]; 7 * trajectories];
        solve::simulate_into(
            &solver,
            &model,
            &noise,
            &EnsembleRequest::new([0.05], trajectories, &SEED_TIMES),
            EnsembleBuffers {
                mean: &mut mean,
                variance: &mut var,
                paths: Some(&mut paths),
            },
        )
        .unwrap();
        for threads in [0usize, 1, 2, 3, 5, 64] {
            let mut pmean = [[f32::NAN; 1]; 7];
            let mut pvar = [[f32::NAN; 1]; 7];
            let mut ppaths = vec![[f32::NAN; 1]; 7 * trajectories];
            solve::simulate_into(
                &solver,
                &model,
                &noise,
                &EnsembleRequest::new([0.05], trajectories, &SEED_TIMES)
                    .in_lanes::<PARALLEL_LANES>()
                    .on_threads(threads),
                EnsembleBuffers {
                    mean: &mut pmean,
                    variance: &mut pvar,
                    paths: Some(&mut ppaths),
                },
            )
            .unwrap();
            assert_eq!(
                bits(&pmean),
                bits(&mean),
                "M = {trajectories}, {threads} threads"
            );
            assert_eq!(
                bits(&pvar),
                bits(&var),
                "M = {trajectories}, {threads} threads"
            );
            assert_eq!(
                bits(&ppaths),
                bits(&paths),
                "M = {trajectories}, {threads} threads"
            );
        }
    }
    // The statistics are those of the paths: a check that the ensemble saw real data.
    let mut mean = [[0.0f32; 1]; 7];
    let mut var = [[0.0f32; 1]; 7];
    let mut paths = vec![[0.0f32; 1]; 7 * 37];
    solve::simulate_into(
        &solver,
        &model,
        &noise,
        &EnsembleRequest::new([0.05], 37, &SEED_TIMES)
            .in_lanes::<PARALLEL_LANES>()
            .on_threads(2),
        EnsembleBuffers {
            mean: &mut mean,
            variance: &mut var,
            paths: Some(&mut paths),
        },
    )
    .unwrap();
    let last: Vec<f64> = (0..37).map(|m| f64::from(paths[m * 7 + 6][0])).collect();
    let avg = last.iter().sum::<f64>() / 37.0;
    let sample_var = last.iter().map(|x| (x - avg) * (x - avg)).sum::<f64>() / 36.0;
    assert!((f64::from(mean[6][0]) - avg).abs() < 1e-5 * avg.abs().max(1.0));
    assert!((f64::from(var[6][0]) - sample_var).abs() < 1e-4 * sample_var.max(1e-3));
    assert!(sample_var > 0.0);
}

#[test]
#[cfg(feature = "std")]
fn parallel_ensemble_over_duals_is_bit_identical_to_the_serial_one() {
    let noise = Brownian::new(3);
    let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.0, 25).unwrap());
    let times = [0.2, 0.6, 1.0];
    let u0 = [Dual::<2>::constant(0.5); 2];
    let zero = [Dual::<2>::constant(0.0); 2];
    let (mut mean, mut var) = ([zero; 3], [zero; 3]);
    solve::simulate_into(
        &solver,
        &Seeded {
            sde: &Gbm::<false>,
            seed: ParamSeed::window(0),
        },
        &noise,
        &EnsembleRequest::new(u0, 29, &times),
        EnsembleBuffers::new(&mut mean, &mut var),
    )
    .unwrap();
    let (mut pmean, mut pvar) = ([zero; 3], [zero; 3]);
    solve::simulate_into(
        &solver,
        &Seeded {
            sde: &Gbm::<false>,
            seed: ParamSeed::window(0),
        },
        &noise,
        &EnsembleRequest::new(u0, 29, &times)
            .in_lanes::<PARALLEL_LANES>()
            .on_threads(2),
        EnsembleBuffers::new(&mut pmean, &mut pvar),
    )
    .unwrap();
    assert_eq!(pmean, mean);
    assert_eq!(pvar, var);
    assert!(mean[2][0].t[1] != 0.0, "the tangents were carried");
}

#[test]
fn coarsened_noise_shares_one_path_across_step_sizes() {
    let fine = Brownian::new(8);
    let times = [0.25, 0.5, 0.75, 1.0];
    fn brownian_path<N: NoiseSource>(steps: u32, noise: &N, times: &[f32; 4]) -> [[f32; 1]; 4] {
        let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 1.0, steps).unwrap());
        let mut out = [[0.0f32; 1]; 4];
        solve::solve(
            &solver,
            &BmDiagonal,
            noise,
            &SolveRequest::new([0.0], times).trajectory(2),
            &mut out,
        )
        .unwrap();
        out
    }
    let run_fine = brownian_path(64, &fine, &times);
    let run_coarse = brownian_path(16, &Coarsened::new(fine, 4).unwrap(), &times);
    // Same path; only the order of the f32 additions differs.
    for (f, c) in run_fine.iter().zip(&run_coarse) {
        assert!((f[0] - c[0]).abs() < 1e-5, "{f:?} vs {c:?}");
    }
    assert!(run_fine[3][0] != 0.0);
    // Factor 1 is the fine source itself, bit for bit, for an order-1.5 method too.
    let same = Coarsened::new(fine, 1).unwrap();
    let model = seed_model();
    let solver = Solver::new(Sosri, TimeGrid::new(-3.0, 3.0, 30).unwrap());
    let (mut a, mut b) = ([[0.0f32; 1]; 7], [[0.0f32; 1]; 7]);
    solve::solve(
        &solver,
        &model,
        &fine,
        &SolveRequest::new([0.05], &SEED_TIMES).trajectory(1),
        &mut a,
    )
    .unwrap();
    solve::solve(
        &solver,
        &model,
        &same,
        &SolveRequest::new([0.05], &SEED_TIMES).trajectory(1),
        &mut b,
    )
    .unwrap();
    assert_eq!(bits(&a), bits(&b));
}

// ---------------------------------------------------------------- bad input

const SENTINEL: f32 = -7.25;

/// Runs `solve`, `ensemble` and `ensemble_parallel` with the given inputs on buffers filled
/// with a sentinel, checks each returns `expected` and leaves every buffer untouched.
#[allow(clippy::too_many_arguments)]
fn assert_rejected<M, S, const D: usize>(
    method: M,
    sde: &S,
    u0: [f32; D],
    times: &[f32],
    out_len: usize,
    trajectories: usize,
    stats_len: (usize, usize),
    paths_len: Option<usize>,
    expected_solve: Option<Error>,
    expected_ensemble: Error,
) where
    M: Method + Copy + Sync,
    Solver<M>: Integrator<f32, S, Brownian, D, Stats = ()>
        + LaneIntegrator<PARALLEL_LANES, f32, S, Brownian, D>,
    S: Sde<f32, D> + Sync,
{
    let solver = Solver::new(method, TimeGrid::new(0.0, 1.0, 10).unwrap());
    let noise = Brownian::new(1);
    if let Some(expected) = expected_solve {
        let mut out = vec![[SENTINEL; D]; out_len];
        let r = solve::solve(
            &solver,
            sde,
            &noise,
            &SolveRequest::new(u0, times),
            &mut out,
        );
        assert_eq!(r, Err(expected));
        assert!(out.iter().flatten().all(|&x| x == SENTINEL), "solve wrote");
    }
    for threads in ensemble_modes() {
        let mut mean = vec![[SENTINEL; D]; stats_len.0];
        let mut var = vec![[SENTINEL; D]; stats_len.1];
        let mut paths = paths_len.map(|n| vec![[SENTINEL; D]; n]);
        let r = run_ensemble(
            &solver,
            sde,
            &noise,
            &u0,
            trajectories,
            times,
            EnsembleBuffers {
                mean: &mut mean,
                variance: &mut var,
                paths: paths.as_deref_mut(),
            },
            threads,
        );
        assert_eq!(r, Err(expected_ensemble), "threads {threads:?}");
        let untouched = mean
            .iter()
            .chain(&var)
            .chain(paths.iter().flatten())
            .flatten()
            .all(|&x| x == SENTINEL);
        assert!(untouched, "ensemble wrote (threads {threads:?})");
    }
}

#[test]
fn unsupported_noise_kinds_are_refused() {
    for noise in [NoiseKind::Diagonal, NoiseKind::Scalar] {
        let times = [0.5, 1.0];
        let e = |method| Error::UnsupportedNoise { method, noise };
        if noise == NoiseKind::Diagonal {
            assert_rejected(
                Sra1,
                &BmDiagonal,
                [0.0; 2],
                &times,
                2,
                4,
                (2, 2),
                Some(8),
                Some(e("SRA1")),
                e("SRA1"),
            );
            assert_rejected(
                Sosra,
                &BmDiagonal,
                [0.0; 2],
                &times,
                2,
                4,
                (2, 2),
                None,
                Some(e("SOSRA")),
                e("SOSRA"),
            );
        } else {
            assert_rejected(
                Sra1,
                &BmScalar,
                [0.0; 2],
                &times,
                2,
                4,
                (2, 2),
                Some(8),
                Some(e("SRA1")),
                e("SRA1"),
            );
            assert_rejected(
                Sosra,
                &BmScalar,
                [0.0; 2],
                &times,
                2,
                4,
                (2, 2),
                None,
                Some(e("SOSRA")),
                e("SOSRA"),
            );
        }
    }
}

#[test]
fn non_finite_initial_states_are_refused() {
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let e = Error::NonFinite {
            what: "initial state",
            index: 1,
        };
        let u0 = [0.0, bad, 1.0];
        assert_rejected(
            EulerMaruyama,
            &BmDiagonal,
            u0,
            &[1.0],
            1,
            3,
            (1, 1),
            Some(3),
            Some(e),
            e,
        );
        assert_rejected(
            Sosri,
            &BmDiagonal,
            u0,
            &[1.0],
            1,
            3,
            (1, 1),
            None,
            Some(e),
            e,
        );
        assert_rejected(
            Milstein,
            &BmScalar,
            u0,
            &[1.0],
            1,
            3,
            (1, 1),
            None,
            Some(e),
            e,
        );
    }
}

#[test]
fn bad_save_times_are_refused() {
    let cases: [(&[f32], usize); 7] = [
        (&[0.5, 0.2], 1),  // not increasing
        (&[0.5, 0.5], 1),  // repeated
        (&[0.1, 1.5], 1),  // after the span
        (&[-0.1], 0),      // before the span
        (&[0.2, 0.35], 1), // off the step grid (h = 0.1)
        (&[f32::NAN], 0),  // not a number
        (&[0.0, 0.3, 0.2, 1.0], 2),
    ];
    for (times, index) in cases {
        let e = Error::SaveTime { index };
        let n = times.len();
        assert_rejected(
            EulerMaruyama,
            &BmDiagonal,
            [0.0],
            times,
            n,
            2,
            (n, n),
            Some(2 * n),
            Some(e),
            e,
        );
        assert_rejected(
            Sosri,
            &BmDiagonal,
            [0.0],
            times,
            n,
            2,
            (n, n),
            None,
            Some(e),
            e,
        );
    }
}

#[test]
fn wrong_buffer_lengths_and_zero_trajectories_are_refused() {
    let times = [0.5, 1.0];
    let length = |what, expected, found| Error::Length {
        what,
        expected,
        found,
    };
    let out = Some(length("saved states", 2, 3));
    let mean = length("ensemble mean", 2, 1);
    assert_rejected(
        EulerMaruyama,
        &BmDiagonal,
        [0.0],
        &times,
        3,
        4,
        (1, 2),
        None,
        out,
        mean,
    );
    let var = length("ensemble variance", 2, 3);
    assert_rejected(
        Sriw1,
        &BmDiagonal,
        [0.0],
        &times,
        3,
        4,
        (2, 3),
        None,
        out,
        var,
    );
    let paths = length("ensemble paths", 8, 7);
    assert_rejected(
        Milstein,
        &BmDiagonal,
        [0.0],
        &times,
        3,
        4,
        (2, 2),
        Some(7),
        out,
        paths,
    );
    let zero = Error::OutOfRange {
        what: "number of trajectories must be >= 1",
    };
    assert_rejected(
        EulerHeun,
        &BmDiagonal,
        [0.0],
        &times,
        3,
        0,
        (2, 2),
        Some(0),
        out,
        zero,
    );
}

// ---------------------------------------------------------------- divergence

/// First step at which Euler–Maruyama on [`Cubic`] from 0 with step `h` becomes non-finite,
/// computed here directly from the increments (the reference for the solver's report).
fn cubic_blow_up(noise: &Brownian, m: usize, steps: u32, h: f32) -> Option<u32> {
    let mut u = 0.0f32;
    for k in 0..steps {
        let dw = noise.increment::<1>(m, k, h, false).unwrap().dw[0];
        u += -(u * u * u) * h + dw;
        if !u.is_finite() {
            return Some(k);
        }
    }
    None
}

#[test]
fn divergence_names_the_trajectory_and_the_step() {
    let grid = TimeGrid::new(0.0, 20.0, 20).unwrap(); // h = 1: -u^3 overshoots and explodes
    let times: Vec<f32> = (0..=20).map(|k| grid.time(k)).collect();
    let solver = Solver::new(EulerMaruyama, grid);
    // The first seed whose first diverging trajectory is not trajectory 0, so that the
    // reported index means something.
    let (noise, blow_ups, first) = (0..100)
        .find_map(|seed| {
            let noise = Brownian::new(seed);
            let blow_ups: Vec<Option<u32>> =
                (0..40).map(|m| cubic_blow_up(&noise, m, 20, 1.0)).collect();
            let first = blow_ups.iter().position(Option::is_some)?;
            (first > 0).then_some((noise, blow_ups, first))
        })
        .unwrap();
    let step = blow_ups[first].unwrap();
    assert!(blow_ups[..first].iter().all(Option::is_none));

    // One trajectory: `out` is written only on success, so it is left untouched.
    let mut out = vec![[SENTINEL]; times.len()];
    let r = solve::solve(
        &solver,
        &Cubic,
        &noise,
        &SolveRequest::new([0.0], &times).trajectory(first),
        &mut out,
    );
    assert_eq!(
        r,
        Err(Error::Diverged {
            trajectory: first,
            step
        })
    );
    assert!(out.iter().all(|x| x[0] == SENTINEL));

    // The ensembles stop at the same place, serial and threaded alike, leaving the buffers
    // untouched.
    let n = times.len();
    let mut serial = (
        vec![[SENTINEL]; n],
        vec![[SENTINEL]; n],
        vec![[SENTINEL]; n * 40],
    );
    let r = solve::simulate_into(
        &solver,
        &Cubic,
        &noise,
        &EnsembleRequest::new([0.0], 40, &times),
        EnsembleBuffers {
            mean: &mut serial.0,
            variance: &mut serial.1,
            paths: Some(&mut serial.2),
        },
    );
    assert_eq!(
        r,
        Err(Error::Diverged {
            trajectory: first,
            step
        })
    );
    for threads in ensemble_modes()
        .into_iter()
        .chain([Some(7)].into_iter().filter(|_| cfg!(feature = "std")))
    {
        let mut par = (
            vec![[SENTINEL]; n],
            vec![[SENTINEL]; n],
            vec![[SENTINEL]; n * 40],
        );
        let r = run_ensemble(
            &solver,
            &Cubic,
            &noise,
            &[0.0],
            40,
            &times,
            EnsembleBuffers {
                mean: &mut par.0,
                variance: &mut par.1,
                paths: Some(&mut par.2),
            },
            threads,
        );
        assert_eq!(
            r,
            Err(Error::Diverged {
                trajectory: first,
                step
            })
        );
        assert_eq!(bits(&par.0), bits(&serial.0));
        assert_eq!(bits(&par.1), bits(&serial.1));
        assert_eq!(bits(&par.2), bits(&serial.2));
    }
    assert!(serial
        .0
        .iter()
        .chain(&serial.1)
        .chain(&serial.2)
        .all(|x| x[0] == SENTINEL));
}

/// Geometric Brownian motion with fixed coefficients, written as a `FixedSde` (no
/// `ParamSeed`) and as an `Sde`.
struct FixedGbm;
impl tinysde::sde::FixedSde<1> for FixedGbm {
    const NOISE: NoiseKind = NoiseKind::Diagonal;
    fn drift<T: Real>(&self, _: f32, u: &[T; 1]) -> [T; 1] {
        [u[0] * 0.3]
    }
    fn diffusion<T: Real>(&self, t: f32, u: &[T; 1]) -> [T; 1] {
        [u[0] * (0.4 + 0.1 * t)]
    }
}
struct SeededGbm;
impl<T: Real> Sde<T, 1> for SeededGbm {
    const NOISE: NoiseKind = NoiseKind::Diagonal;
    fn drift(&self, _: f32, u: &[T; 1], _: ParamSeed) -> [T; 1] {
        [u[0] * 0.3]
    }
    fn diffusion(&self, t: f32, u: &[T; 1], _: ParamSeed) -> [T; 1] {
        [u[0] * (0.4 + 0.1 * t)]
    }
}

/// A `FixedSde` runs with every method, one lane or many, with the bits of the same SDE
/// written as an `Sde`.
#[test]
fn a_fixed_sde_solves_as_the_same_sde_written_with_a_seed() {
    use tinysde::solve::{EnsembleRequest, EulerHeun, EulerMaruyama, Milstein, Sosri, Sriw1};
    fn same<M>(method: M)
    where
        M: Method + Sync,
        Solver<M>: Integrator<f32, FixedGbm, Brownian, 1, Stats = ()>
            + LaneIntegrator<PARALLEL_LANES, f32, FixedGbm, Brownian, 1>
            + Integrator<f32, SeededGbm, Brownian, 1, Stats = ()>
            + LaneIntegrator<PARALLEL_LANES, f32, SeededGbm, Brownian, 1>,
    {
        let solver = Solver::new(method, TimeGrid::new(0.0, 1.0, 50).unwrap());
        let times = [0.2, 1.0];
        let request = EnsembleRequest::new([1.0f32], 21, &times)
            .with_paths()
            .in_lanes::<PARALLEL_LANES>()
            .on_threads(0);
        let noise = Brownian::new(9);
        let fixed = solve::simulate(&solver, &FixedGbm, &noise, &request).unwrap();
        let seeded = solve::simulate(&solver, &SeededGbm, &noise, &request).unwrap();
        assert_eq!(fixed, seeded);
        assert!(fixed.mean[1][0] > 1.0 && fixed.variance[1][0] > 0.0);
    }
    same(EulerMaruyama);
    same(EulerHeun);
    same(Milstein);
    same(Sriw1);
    same(Sosri);
}
