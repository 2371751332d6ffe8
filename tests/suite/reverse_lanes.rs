//! Reverse mode on lanes: every vector–Jacobian product computed on `F32x<8>` gives, lane
//! by lane, the bits of the `f32` computation on that lane's inputs; and the threaded
//! reverse mode (which runs 8 trajectories per pass) reports the serial function's errors.

use tinysde::grad::{loss_and_gradient, Reverse, Threads};
use tinysde::grad::{reverse, Problem};
use tinysde::grad::{Ensemble, Scratch};
use tinysde::lanes::{F32x, Lanes};
use tinysde::nn::{
    Backward, Cube, Dense, FastSigmoid, FastTanh, Identity, InitScheme, Layer, ParamSeed,
    Parameters, TangentBackward, Tanh,
};
use tinysde::noise::{fill_standard_normal, rng_from_seed, Brownian, Increment};
use tinysde::sde::{MilsteinVjp, NeuralSde, Sde, SdeVjp};
use tinysde::solve::{
    Checkpoints, EulerHeun, EulerMaruyama, Milstein, Solver, Sosra, Sosri, Sra1, Sriw1, StepVjp,
    TimeGrid,
};
use tinysde::train::MeanSquaredError;
use tinysde::{Dual, Error, NoiseKind, PlainReal, Real};

const L: usize = 8;
type Wide = F32x<L>;

/// Normal samples scaled by `scale`, as lanes.
fn wide_normals<const N: usize>(rng: &mut tinysde::noise::NoiseRng, scale: f32) -> [Wide; N] {
    core::array::from_fn(|_| {
        let mut lanes = [0.0f32; L];
        fill_standard_normal(rng, &mut lanes);
        F32x(lanes.map(|x| x * scale))
    })
}

fn lane<const N: usize>(x: &[Wide; N], j: usize) -> [f32; N] {
    x.map(|v| v.lane(j))
}

fn bits<const N: usize>(x: &[f32; N]) -> [u32; N] {
    x.map(f32::to_bits)
}

/// `step_vjp` on 8 lanes against 8 one-lane calls: the state and parameter cotangents
/// (added into random starting values) bit for bit, over random states, cotangents,
/// increments, times and step sizes.
fn assert_step_vjp_lanes<M, S, const D: usize>(method: M, sde: &S, seed: u64)
where
    M: StepVjp<S, D> + StepVjp<S, D, Wide>,
    S: SdeVjp<D> + SdeVjp<D, Wide> + Parameters,
{
    let mut rng = rng_from_seed(seed);
    for trial in 0..12 {
        let h = [0.01f32, 0.1, 0.37][trial % 3];
        let t = 0.3 * trial as f32 - 1.0;
        let u: [Wide; D] = wide_normals(&mut rng, 1.0);
        let u_bar: [Wide; D] = wide_normals(&mut rng, 1.0);
        let inc = Increment::<D, Wide> {
            dw: wide_normals(&mut rng, h.sqrt()),
            dz: wide_normals(&mut rng, h.sqrt()),
        };
        let mut p0 = vec![0.0f32; S::PARAMS];
        fill_standard_normal(&mut rng, &mut p0);
        let mut wide_u_bar = u_bar;
        let mut wide_p: Vec<Wide> = p0.iter().map(|&p| Wide::splat(p)).collect();
        method.step_vjp(sde, t, h, &u, &inc, &mut wide_u_bar, &mut wide_p);
        for j in 0..L {
            let one_inc = Increment::<D> {
                dw: lane(&inc.dw, j),
                dz: lane(&inc.dz, j),
            };
            let mut one_u_bar = lane(&u_bar, j);
            let mut one_p = p0.clone();
            method.step_vjp(
                sde,
                t,
                h,
                &lane(&u, j),
                &one_inc,
                &mut one_u_bar,
                &mut one_p,
            );
            assert_eq!(
                bits(&lane(&wide_u_bar, j)),
                bits(&one_u_bar),
                "state cotangent, lane {j}, trial {trial}"
            );
            let wide_lane: Vec<u32> = wide_p.iter().map(|p| p.lane(j).to_bits()).collect();
            let one: Vec<u32> = one_p.iter().map(|p| p.to_bits()).collect();
            assert_eq!(
                wide_lane, one,
                "parameter cotangent, lane {j}, trial {trial}"
            );
            assert!(
                one_p.iter().zip(&p0).any(|(a, b)| a != b),
                "nothing was added"
            );
        }
    }
}

type SeedModel = NeuralSde<
    (Cube<1>, Dense<1, 20, FastTanh>, Dense<20, 1, Identity>),
    (Dense<1, 20, FastSigmoid>, Dense<20, 1, Identity>),
>;
type Planar = NeuralSde<
    (Dense<2, 6, Tanh>, Dense<6, 2, Identity>),
    (Dense<2, 5, FastSigmoid>, Dense<5, 2, Tanh>),
>;

fn init<P: Parameters + Default + tinysde::nn::Init>(seed: u64) -> P {
    let mut model = P::default();
    tinysde::nn::init(
        &mut model,
        &mut rng_from_seed(seed),
        InitScheme::GlorotUniform,
    )
    .unwrap();
    model
}

/// Additive noise `s (1 + t/2)` with trainable scales `s` and a network drift, its
/// vector–Jacobian products written once for every lane scalar.
#[derive(Default)]
struct AdditivePlanar {
    drift: (Dense<2, 6, Tanh>, Dense<6, 2, Identity>),
    scale: [f32; 2],
}
impl Parameters for AdditivePlanar {
    const PARAMS: usize = 32 + 2;
    fn read_unchecked(&self, out: &mut [f32]) {
        self.drift.read_unchecked(&mut out[..32]);
        out[32..].copy_from_slice(&self.scale);
    }
    fn write_unchecked(&mut self, src: &[f32]) {
        self.drift.write_unchecked(&src[..32]);
        self.scale.copy_from_slice(&src[32..]);
    }
}
impl<T: Real> Sde<T, 2> for AdditivePlanar {
    const NOISE: NoiseKind = NoiseKind::Additive;
    fn drift(&self, _: f32, u: &[T; 2], seed: ParamSeed) -> [T; 2] {
        self.drift.forward(u, seed)
    }
    fn diffusion(&self, t: f32, _: &[T; 2], seed: ParamSeed) -> [T; 2] {
        [0, 1].map(|i| seed.lift::<T>(self.scale[i], 32 + i) * (1.0 + 0.5 * t))
    }
}
impl<T: PlainReal> SdeVjp<2, T> for AdditivePlanar {
    fn drift_vjp(&self, _: f32, u: &[T; 2], f_bar: &[T; 2], u_bar: &mut [T; 2], p: &mut [T]) {
        let (_, cache) = self.drift.forward_cached(u);
        let x_bar = self.drift.backward(u, &cache, f_bar, p);
        for (ub, xb) in u_bar.iter_mut().zip(x_bar) {
            *ub += xb;
        }
    }
    fn diffusion_vjp(&self, t: f32, _: &[T; 2], g_bar: &[T; 2], _: &mut [T; 2], p: &mut [T]) {
        for (i, &gb) in g_bar.iter().enumerate() {
            p[32 + i] += gb * (1.0 + 0.5 * t);
        }
    }
}

#[test]
fn every_step_vjp_on_lanes_is_the_f32_computation_lane_by_lane() {
    let seed_model: SeedModel = init(1);
    let planar: Planar = init(2);
    let mut additive: AdditivePlanar = init_additive();
    additive.scale = [0.3, -0.6];
    assert_step_vjp_lanes(EulerMaruyama, &seed_model, 10);
    assert_step_vjp_lanes(EulerMaruyama, &planar, 11);
    assert_step_vjp_lanes(EulerHeun, &planar, 12);
    assert_step_vjp_lanes(Milstein, &seed_model, 13);
    assert_step_vjp_lanes(Milstein, &planar, 14);
    assert_step_vjp_lanes(Sriw1, &planar, 15);
    assert_step_vjp_lanes(Sosri, &seed_model, 16);
    assert_step_vjp_lanes(Sra1, &additive, 17);
    assert_step_vjp_lanes(Sosra, &additive, 18);
}

fn init_additive() -> AdditivePlanar {
    let mut model = AdditivePlanar::default();
    tinysde::nn::init(
        &mut model.drift,
        &mut rng_from_seed(3),
        InitScheme::GlorotUniform,
    )
    .unwrap();
    model
}

/// The layers' products on lanes, including Milstein's second-order ones, lane by lane.
#[test]
fn layer_vjps_on_lanes_are_the_f32_computation_lane_by_lane() {
    type Chain = (
        Cube<2>,
        Dense<2, 7, FastTanh>,
        Dense<7, 3, FastSigmoid>,
        Dense<3, 2, Tanh>,
    );
    let chain: Chain = init(4);
    let mut rng = rng_from_seed(40);
    for _ in 0..10 {
        let x: [Wide; 2] = wide_normals(&mut rng, 1.5);
        let x_dot: [Wide; 2] = wide_normals(&mut rng, 1.0);
        let y_bar: [Wide; 2] = wide_normals(&mut rng, 1.0);
        let y_dot_bar: [Wide; 2] = wide_normals(&mut rng, 1.0);
        let (y, cache) = chain.forward_cached(&x);
        let mut p = vec![Wide::splat(0.0); Chain::PARAMS];
        let x_bar = chain.backward(&x, &cache, &y_bar, &mut p);
        let (ty, ty_dot, tcache) = chain.forward_tangent_cached(&x, &x_dot);
        let mut tp = vec![Wide::splat(0.0); Chain::PARAMS];
        let (tx_bar, tx_dot_bar) =
            chain.backward_tangent(&x, &x_dot, &tcache, &y_bar, &y_dot_bar, &mut tp);
        for j in 0..L {
            let (x1, xd1) = (lane(&x, j), lane(&x_dot, j));
            let (y1, c1) = chain.forward_cached(&x1);
            assert_eq!(bits(&lane(&y, j)), bits(&y1));
            let mut p1 = vec![0.0f32; Chain::PARAMS];
            let xb1 = chain.backward(&x1, &c1, &lane(&y_bar, j), &mut p1);
            assert_eq!(bits(&lane(&x_bar, j)), bits(&xb1));
            assert_eq!(p.iter().map(|v| v.lane(j)).collect::<Vec<_>>(), p1);
            let (ty1, tyd1, tc1) = chain.forward_tangent_cached(&x1, &xd1);
            assert_eq!(bits(&lane(&ty, j)), bits(&ty1));
            assert_eq!(bits(&lane(&ty_dot, j)), bits(&tyd1));
            let mut tp1 = vec![0.0f32; Chain::PARAMS];
            let (txb1, txdb1) = chain.backward_tangent(
                &x1,
                &xd1,
                &tc1,
                &lane(&y_bar, j),
                &lane(&y_dot_bar, j),
                &mut tp1,
            );
            assert_eq!(bits(&lane(&tx_bar, j)), bits(&txb1));
            assert_eq!(bits(&lane(&tx_dot_bar, j)), bits(&txdb1));
            assert_eq!(tp.iter().map(|v| v.lane(j)).collect::<Vec<_>>(), tp1);
        }
    }
    // And Milstein's product of a whole model, diagonal noise.
    let planar: Planar = init(5);
    let u: [Wide; 2] = wide_normals(&mut rng, 1.0);
    let (g_bar, q_bar): ([Wide; 2], [Wide; 2]) =
        (wide_normals(&mut rng, 1.0), wide_normals(&mut rng, 1.0));
    let (mut u_bar, mut p) = (
        [Wide::splat(0.0); 2],
        vec![Wide::splat(0.0); Planar::PARAMS],
    );
    planar.milstein_vjp(0.0, &u, &g_bar, &q_bar, &mut u_bar, &mut p);
    for j in 0..L {
        let (mut u_bar1, mut p1) = ([0.0f32; 2], vec![0.0f32; Planar::PARAMS]);
        planar.milstein_vjp(
            0.0,
            &lane(&u, j),
            &lane(&g_bar, j),
            &lane(&q_bar, j),
            &mut u_bar1,
            &mut p1,
        );
        assert_eq!(bits(&lane(&u_bar, j)), bits(&u_bar1));
        assert_eq!(p.iter().map(|v| v.lane(j)).collect::<Vec<_>>(), p1);
    }
}

/// `du = a u^3 dt + b dW`: trajectories blow up at different steps, depending on the noise.
struct Cubic {
    a: f32,
    b: f32,
}
impl Parameters for Cubic {
    const PARAMS: usize = 2;
    fn read_unchecked(&self, out: &mut [f32]) {
        out.copy_from_slice(&[self.a, self.b]);
    }
    fn write_unchecked(&mut self, src: &[f32]) {
        (self.a, self.b) = (src[0], src[1]);
    }
}
impl<T: Real> Sde<T, 1> for Cubic {
    const NOISE: NoiseKind = NoiseKind::Diagonal;
    fn drift(&self, _: f32, u: &[T; 1], seed: ParamSeed) -> [T; 1] {
        [u[0] * u[0] * u[0] * seed.lift::<T>(self.a, 0)]
    }
    fn diffusion(&self, _: f32, _: &[T; 1], seed: ParamSeed) -> [T; 1] {
        [seed.lift::<T>(self.b, 1)]
    }
}
impl<T: PlainReal> SdeVjp<1, T> for Cubic {
    fn drift_vjp(&self, _: f32, u: &[T; 1], f_bar: &[T; 1], u_bar: &mut [T; 1], p: &mut [T]) {
        u_bar[0] += u[0] * u[0] * f_bar[0] * (3.0 * self.a);
        p[0] += u[0] * u[0] * u[0] * f_bar[0];
    }
    fn diffusion_vjp(&self, _: f32, _: &[T; 1], g_bar: &[T; 1], _: &mut [T; 1], p: &mut [T]) {
        p[1] += g_bar[0];
    }
}

/// Some trajectories diverge, at different steps: the threaded reverse mode (8 per pass)
/// returns the serial function's error, the lowest diverging trajectory at its first
/// non-finite step, and leaves the gradient buffer as it was.
#[test]
fn a_diverging_lane_pass_reports_the_serial_error() {
    let model = Cubic { a: 1.0, b: 1.2 };
    let times = [0.5, 1.0, 2.0];
    let data = [[1.0f32]; 3];
    let loss = MeanSquaredError::new(&data).unwrap();
    let mut found = 0;
    for seed in 0..12 {
        let noise = Brownian::new(seed);
        let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 2.0, 400).unwrap());
        let problem = Problem::new(solver, [0.4], 21, &times).unwrap();
        let mut stats = vec![[Dual::<2>::ZERO; 1]; problem.stats_len()];
        let mut tape = vec![[0.0f32; 1]; reverse::tape_len(&problem, Checkpoints::All)];
        let mut serial = [0.0f32; 2];
        let serial_result = loss_and_gradient(
            &Ensemble::new(&problem, &loss, &noise),
            &model,
            Reverse(Checkpoints::All),
            &mut Scratch::new(&mut stats, &mut tape),
            &mut serial,
        );
        for threads in [1, 2] {
            let mut grad = [7.0f32; 2];
            let threaded = loss_and_gradient(
                &Ensemble::new(&problem, &loss, &noise),
                &model,
                Threads(Reverse(Checkpoints::Sqrt), threads),
                &mut Scratch::<8, 1>::owned(),
                &mut grad,
            );
            match (&serial_result, &threaded) {
                (Err(e), Err(t)) => {
                    assert!(matches!(e, Error::Diverged { .. }), "{e:?}");
                    assert_eq!(e, t);
                    assert_eq!(grad, [7.0; 2], "the gradient buffer was written");
                }
                (Ok(l), Ok(lt)) => assert_eq!(l.to_bits(), lt.to_bits()),
                _ => panic!("serial {serial_result:?}, threaded {threaded:?}"),
            }
        }
        if let Err(Error::Diverged { trajectory, .. }) = serial_result {
            // A diverging trajectory inside a pass, not only at its first lane.
            found += usize::from(trajectory % L != 0);
        }
    }
    assert!(found >= 2, "too few diverging cases to test ({found})");
}
