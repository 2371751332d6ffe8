//! Optimizers, clipping, the trainer (callback, early stop, best parameters, noise per
//! iteration, growing window, non-finite gradients, bad input) and the seed task.

use std::ops::ControlFlow;

use rand_core::Rng;
use tinysde::grad::{loss_value, Loss, Problem, Scratch};
use tinysde::nn::{Cube, Dense, FastSigmoid, FastTanh, Identity, InitScheme, Parameters};
use tinysde::noise::Brownian;
use tinysde::sde::NeuralSde;
use tinysde::solve::{EulerMaruyama, Solver, Sosri, TimeGrid};
use tinysde::train::{
    clip_global_norm, global_norm, iteration_seed, Adam, AdamConfig, EnsembleFit, GrowingWindow,
    MeanSquaredError, NoiseMode, Optimizer, Progress, Sgd, SgdConfig, TrainConfig, Trainer,
    Workspace,
};
use tinysde::{Dual, Error, Real};

// ---------------------------------------------------------------- optimizers

/// f(p) = sum a_i (p_i - c_i)^2 with curvatures spread over three decades.
const A: [f32; 4] = [0.1, 1.0, 10.0, 100.0];
const C: [f32; 4] = [1.5, -2.0, 0.25, 3.0];
fn quad(p: &[f32; 4]) -> f32 {
    (0..4).map(|i| A[i] * (p[i] - C[i]) * (p[i] - C[i])).sum()
}
fn quad_grad(p: &[f32; 4]) -> [f32; 4] {
    std::array::from_fn(|i| 2.0 * A[i] * (p[i] - C[i]))
}

#[test]
fn adam_first_step_is_bias_corrected() {
    // With m and v bias-corrected, the first update is lr * g / (|g| + eps) per entry.
    let cfg = AdamConfig {
        lr: 0.1,
        beta1: 0.8,
        beta2: 0.99,
        eps: 1e-8,
    };
    let mut adam = Adam::new(cfg, [9.0f32; 3], [9.0f32; 3]).unwrap(); // zeroed by new
    let g = [0.5f32, -3.0, 1e-3];
    let mut p = [1.0f32, 1.0, 1.0];
    adam.step(&mut p, &g).unwrap();
    for i in 0..3 {
        let expected = 1.0 - 0.1 * g[i] / (g[i].abs() + 1e-8);
        assert!(
            (p[i] - expected).abs() < 1e-6,
            "{i}: {} vs {expected}",
            p[i]
        );
    }
    assert_eq!(adam.steps(), 1);
}

#[test]
fn adam_drives_a_convex_quadratic_to_its_minimum() {
    let mut adam = Adam::new(AdamConfig::lr(0.05), [0.0f32; 4], [0.0f32; 4]).unwrap();
    let mut p = [0.0f32; 4];
    let f0 = quad(&p);
    for step in 0..3000 {
        if step == 2000 {
            adam.set_lr(0.005).unwrap(); // anneal: constant-lr Adam hovers at ~lr
        }
        let g = quad_grad(&p);
        adam.step(&mut p, &g).unwrap();
    }
    for i in 0..4 {
        assert!((p[i] - C[i]).abs() < 1e-2, "p = {p:?}");
    }
    assert!(quad(&p) < 1e-5 * f0, "f = {} from {f0}", quad(&p));
}

#[test]
fn sgd_with_momentum_follows_its_recurrence_and_minimizes_a_quadratic() {
    // Two hand-computed steps: b1 = g1, p1 = p0 - lr b1; b2 = mu b1 + g2, p2 = p1 - lr b2.
    let mut sgd = Sgd::new(
        SgdConfig {
            lr: 0.1,
            momentum: 0.5,
        },
        vec![0.0f32; 1],
    )
    .unwrap();
    let mut p = [1.0f32];
    sgd.step(&mut p, &[2.0]).unwrap();
    assert_eq!(p[0], 1.0 - 0.1 * 2.0);
    sgd.step(&mut p, &[4.0]).unwrap();
    assert_eq!(p[0], 0.8 - 0.1 * (0.5 * 2.0 + 4.0));

    // lr below 2 / max curvature (2 * 100), heavy-ball momentum for the flat directions.
    let mut sgd = Sgd::new(
        SgdConfig {
            lr: 0.004,
            momentum: 0.9,
        },
        [0.0f32; 4],
    )
    .unwrap();
    let mut p = [0.0f32; 4];
    let f0 = quad(&p);
    for _ in 0..4000 {
        let g = quad_grad(&p);
        sgd.step(&mut p, &g).unwrap();
    }
    for i in 0..4 {
        assert!((p[i] - C[i]).abs() < 1e-3, "p = {p:?}");
    }
    assert!(quad(&p) < 1e-6 * f0);
}

#[test]
fn clipping_bounds_the_global_norm_and_keeps_the_direction() {
    let mut rng = tinysde::noise::rng_from_seed(8);
    for scale in [1e-3f32, 0.5, 1.0, 7.0, 1e3, 1e30] {
        let g0: Vec<f32> = (0..37)
            .map(|_| ((rng.next_u32() >> 8) as f32 / 16_777_216.0 - 0.5) * scale)
            .collect();
        let mut g = g0.clone();
        let before = clip_global_norm(&mut g, 1.0).unwrap();
        let exact = g0.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
        assert!(
            (before as f64 - exact).abs() <= 1e-5 * exact,
            "{before} vs {exact}"
        );
        let after = global_norm(&g);
        if before <= 1.0 {
            assert_eq!(g, g0, "a gradient within the bound is untouched");
        } else {
            assert!((1.0 - 1e-5..=1.0 + 1e-6).contains(&after), "norm {after}");
            let s = g[0] / g0[0];
            for (a, b) in g.iter().zip(&g0) {
                assert!((a - s * b).abs() <= 1e-6 * b.abs().max(1e-30) + 1e-12);
            }
        }
    }
    // bad bounds and non-finite gradients: errors, nothing changed
    let g0 = [3.0f32, 4.0];
    for bad in [0.0, -1.0, f32::NAN, f32::INFINITY] {
        let mut g = g0;
        assert!(clip_global_norm(&mut g, bad).is_err());
        assert_eq!(g, g0);
    }
    let mut g = [3.0, f32::NAN];
    assert!(matches!(
        clip_global_norm(&mut g, 1.0),
        Err(Error::NonFinite {
            what: "gradient",
            index: 1
        })
    ));
}

#[test]
fn optimizer_errors_leave_parameters_and_state_untouched() {
    let mut adam = Adam::new(AdamConfig::lr(0.1), [0.0f32; 2], [0.0f32; 2]).unwrap();
    let mut p = [1.0f32, 2.0];
    adam.step(&mut p, &[0.3, -0.2]).unwrap();
    let snapshot = adam.clone();
    let p0 = p;
    assert!(adam.step(&mut p, &[f32::NAN, 1.0]).is_err());
    assert!(adam.step(&mut p, &[1.0]).is_err());
    assert!(adam.step(&mut p[..1], &[1.0]).is_err());
    assert!(adam.set_lr(f32::NAN).is_err());
    assert!(adam.set_lr(-0.1).is_err());
    assert!(adam
        .set_config(AdamConfig {
            beta2: 1.0,
            ..AdamConfig::default()
        })
        .is_err());
    assert_eq!(adam, snapshot);
    assert_eq!(p, p0);
    assert!(matches!(
        Adam::new(AdamConfig::lr(f32::INFINITY), [0.0f32; 2], [0.0f32; 2]),
        Err(Error::NonFinite {
            what: "learning rate",
            ..
        })
    ));
    assert!(Adam::new(AdamConfig::lr(0.1), vec![0.0f32; 2], vec![0.0f32; 3]).is_err());
    assert!(Sgd::new(
        SgdConfig {
            lr: f32::NAN,
            momentum: 0.0
        },
        [0.0f32; 2]
    )
    .is_err());
    assert!(Sgd::new(
        SgdConfig {
            lr: 0.1,
            momentum: 1.0
        },
        [0.0f32; 2]
    )
    .is_err());
}

// ---------------------------------------------------------------- trainer

/// du = (a u + b) dt + (c u + d) dW: four parameters, fast even in debug builds.
type Tiny = NeuralSde<Dense<1, 1, Identity>, Dense<1, 1, Identity>>;
const TP: usize = Tiny::PARAMS;
const TIMES: [f32; 4] = [0.5, 1.0, 1.5, 2.0];
const DECAY: [[f32; 1]; 4] = [[1.4], [1.2], [1.1], [1.05]];

fn tiny_problem(times: &[f32]) -> Problem<'_, EulerMaruyama, 1> {
    let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 2.0, 40).unwrap());
    Problem::new(solver, [2.0], 8, times).unwrap()
}

fn tiny_model() -> Tiny {
    let mut m = Tiny::default();
    m.write_params(&[-0.2, 0.1, 0.05, 0.1]).unwrap();
    m
}

fn bits(x: &[f32]) -> Vec<u32> {
    x.iter().map(|v| v.to_bits()).collect()
}

fn model_bits<M: Parameters>(m: &M) -> Vec<u32> {
    let mut p = vec![0.0; M::PARAMS];
    m.read_params(&mut p).unwrap();
    bits(&p)
}

#[test]
fn trainer_stops_on_request_and_keeps_the_best_parameters() {
    let mut model = tiny_model();
    let problem = tiny_problem(&TIMES);
    let loss = MeanSquaredError::new(&DECAY).unwrap();
    let mut adam = Adam::new(AdamConfig::lr(0.05), [0.0; TP], [0.0; TP]).unwrap();
    let (mut params, mut grad, mut best) = ([0.0; TP], [0.0; TP], [0.0; TP]);
    let mut stats = [[Dual::<3>::ZERO; 1]; 8];
    let noise = NoiseMode::Fresh { seed: 42 };
    let config = TrainConfig {
        noise,
        clip_norm: Some(10.0),
    };
    let ws = Workspace {
        params: &mut params,
        grad: &mut grad,
        best: &mut best,
        scratch: Scratch::new(&mut stats, &mut []),
    };
    let mut trainer = EnsembleFit::new(problem, loss)
        .and_then(|fit| Trainer::new(&mut model, &mut adam, fit, config, ws))
        .unwrap();
    let mut seen: Vec<Progress> = Vec::new();
    let report = trainer
        .run(1000, |p| {
            seen.push(*p);
            if p.iteration == 30 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .unwrap();
    assert!(report.stopped);
    assert_eq!(report.iterations, 31);
    assert_eq!(trainer.iteration(), 31);
    assert_eq!(
        seen.iter().map(|p| p.iteration).collect::<Vec<_>>(),
        (0..31).collect::<Vec<_>>()
    );
    assert!(seen.iter().all(|p| p.window == 4 && p.stage == 0));
    assert_eq!(report.last_loss, seen[30].loss);

    // The best loss is the smallest one reported, and re-evaluating the stored best
    // parameters on that iteration's noise reproduces it bit for bit.
    let (arg, min) = seen
        .iter()
        .enumerate()
        .min_by(|a, b| a.1.loss.total_cmp(&b.1.loss))
        .map(|(i, p)| (i as u32, p.loss))
        .unwrap();
    let (best_params, best_loss) = trainer.best();
    assert_eq!(best_loss, min);
    assert_eq!(report.best_loss, min);
    assert!(arg > 0 && min < seen[0].loss, "training made progress");
    let mut at_best = Tiny::default();
    at_best.write_params(best_params).unwrap();
    let mut st = [[0.0f32; 1]; 8];
    let again = loss_value(
        &tiny_problem(&TIMES),
        &at_best,
        &noise.brownian(arg),
        &MeanSquaredError::new(&DECAY).unwrap(),
        &mut st,
    )
    .unwrap();
    assert_eq!(again.to_bits(), min.to_bits());
    assert_eq!(
        noise.brownian(arg),
        Brownian::new(iteration_seed(42, arg)),
        "fresh noise per iteration"
    );

    // Stopping happens before the update: the model is at the parameters evaluated last.
    let current = bits(trainer.params());
    assert_eq!(model_bits(trainer.model()), current);
    let last = loss_value(
        &tiny_problem(&TIMES),
        trainer.model(),
        &noise.brownian(30),
        &MeanSquaredError::new(&DECAY).unwrap(),
        &mut st,
    )
    .unwrap();
    assert_eq!(last.to_bits(), seen[30].loss.to_bits());

    let best_copy = best_params.to_vec();
    trainer.restore_best();
    assert_eq!(model_bits(trainer.model()), bits(&best_copy));
    // Training continues from where it stopped: iteration numbers keep counting.
    let mut next = None;
    trainer
        .run(1, |p| {
            next = Some(p.iteration);
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(next, Some(31));
}

#[test]
fn fixed_noise_makes_the_objective_deterministic() {
    // With NoiseMode::Fixed and a learning rate too small to move f32 parameters by more
    // than rounding, every iteration sees the same loss; with fresh noise they differ.
    let run = |noise: NoiseMode| {
        let mut model = tiny_model();
        let mut sgd = Sgd::new(
            SgdConfig {
                lr: 1e-30,
                momentum: 0.0,
            },
            [0.0; TP],
        )
        .unwrap();
        let (mut params, mut grad, mut best) = ([0.0; TP], [0.0; TP], [0.0; TP]);
        let mut stats = [[Dual::<4>::ZERO; 1]; 8];
        let ws = Workspace {
            params: &mut params,
            grad: &mut grad,
            best: &mut best,
            scratch: Scratch::new(&mut stats, &mut []),
        };
        let config = TrainConfig {
            noise,
            clip_norm: None,
        };
        let loss = MeanSquaredError::new(&DECAY).unwrap();
        let mut t = EnsembleFit::new(tiny_problem(&TIMES), loss)
            .and_then(|fit| Trainer::new(&mut model, &mut sgd, fit, config, ws))
            .unwrap();
        let mut losses = Vec::new();
        t.run(4, |p| {
            losses.push(p.loss);
            ControlFlow::Continue(())
        })
        .unwrap();
        losses
    };
    let fixed = run(NoiseMode::Fixed { seed: 3 });
    assert!(fixed.iter().all(|&l| l == fixed[0]), "{fixed:?}");
    let fresh = run(NoiseMode::Fresh { seed: 3 });
    assert!(fresh.windows(2).all(|w| w[0] != w[1]), "{fresh:?}");
}

#[test]
fn growing_window_runs_its_stages_and_tracks_the_best_on_the_last() {
    let mut model = tiny_model();
    let mut adam = Adam::new(AdamConfig::lr(0.02), vec![0.0; TP], vec![0.0; TP]).unwrap();
    let (mut params, mut grad, mut best) = ([0.0; TP], [0.0; TP], [0.0; TP]);
    let mut stats = vec![[Dual::<2>::ZERO; 1]; 8];
    let ws = Workspace {
        params: &mut params,
        grad: &mut grad,
        best: &mut best,
        scratch: Scratch::new(&mut stats, &mut []),
    };
    let loss = MeanSquaredError::new(&DECAY).unwrap();
    let mut t = EnsembleFit::new(tiny_problem(&TIMES), loss)
        .and_then(|fit| Trainer::new(&mut model, &mut adam, fit, TrainConfig::default(), ws))
        .unwrap();
    let schedule = GrowingWindow {
        start: 2,
        add: 1,
        iters_per_stage: 3,
    };
    let mut seen = Vec::new();
    let report = t
        .run_schedule(&schedule, |p| {
            seen.push(*p);
            ControlFlow::Continue(())
        })
        .unwrap();
    let windows: Vec<usize> = seen.iter().map(|p| p.window).collect();
    let stages: Vec<u32> = seen.iter().map(|p| p.stage).collect();
    assert_eq!(windows, [2, 2, 2, 3, 3, 3, 4, 4, 4]);
    assert_eq!(stages, [0, 0, 0, 1, 1, 1, 2, 2, 2]);
    assert_eq!(report.iterations, 9);
    let last_stage_min = seen[6..]
        .iter()
        .map(|p| p.loss)
        .fold(f32::INFINITY, f32::min);
    assert_eq!(report.best_loss, last_stage_min);
    assert_eq!(t.best().1, last_stage_min);
    // The window is the prefix: a stage-0 loss is the loss on the first two points only.
    let first = loss_value(
        &tiny_problem(&TIMES[..2]),
        &tiny_model(),
        &NoiseMode::default().brownian(0),
        &MeanSquaredError::new(&DECAY[..2]).unwrap(),
        &mut [[0.0f32; 1]; 4],
    )
    .unwrap();
    assert_eq!(first.to_bits(), seen[0].loss.to_bits());
}

#[test]
fn trainer_can_fit_the_initial_state() {
    // The model starts from u0 = 2 but the data start near 0.5: with the initial state
    // trained, u0 moves toward the data.
    let data = [[0.5f32], [0.5], [0.5], [0.5]];
    let mut model = Tiny::default(); // f = g = 0: the state stays at u0
    let problem = tiny_problem(&TIMES).with_u0_gradient(true);
    const N: usize = TP + 1;
    let mut adam = Adam::new(AdamConfig::lr(0.05), [0.0; N], [0.0; N]).unwrap();
    let (mut params, mut grad, mut best) = ([0.0; N], [0.0; N], [0.0; N]);
    let mut stats = [[Dual::<5>::ZERO; 1]; 8];
    let ws = Workspace {
        params: &mut params,
        grad: &mut grad,
        best: &mut best,
        scratch: Scratch::new(&mut stats, &mut []),
    };
    let loss = MeanSquaredError::new(&data).unwrap();
    let mut t = EnsembleFit::new(problem, loss)
        .and_then(|fit| Trainer::new(&mut model, &mut adam, fit, TrainConfig::default(), ws))
        .unwrap();
    assert_eq!(t.params()[TP], 2.0);
    let report = t.run(150, |_| ControlFlow::Continue(())).unwrap();
    let u0 = t.fit().problem().u0()[0];
    assert_eq!(t.params()[TP], u0);
    assert!(report.best_loss < 0.05, "{report:?}");
    assert!((u0 - 0.5).abs() < 0.3, "u0 = {u0}");
}

/// A loss whose gradient becomes infinite (its value stays finite) once the ensemble mean
/// at the last save time exceeds a threshold.
struct Tripwire<'a> {
    inner: MeanSquaredError<'a, 1>,
    threshold: f32,
}
impl Loss<1> for Tripwire<'_> {
    fn check(&self, saves: usize) -> Result<(), Error> {
        self.inner.check(saves)
    }
    fn eval<T: Real>(&self, mean: &[[T; 1]], var: &[[T; 1]]) -> T {
        let base = self.inner.eval(mean, var);
        let m = mean[mean.len() - 1][0];
        // value + 0, tangents * 1e76: finite loss, infinite gradient
        let spike = base + (m - T::from_value(m.value())) * 1e38 * 1e38;
        T::select(m.gt(T::cst(self.threshold)), spike, base)
    }
}

#[test]
fn non_finite_gradient_stops_training_and_keeps_the_best() {
    let high = [[2.5f32], [3.0], [3.5], [4.0]]; // pulls the mean up through the tripwire
    let mut model = tiny_model();
    let loss = Tripwire {
        inner: MeanSquaredError::new(&high).unwrap(),
        threshold: 2.5,
    };
    let mut adam = Adam::new(AdamConfig::lr(0.02), [0.0; TP], [0.0; TP]).unwrap();
    let (mut params, mut grad, mut best) = ([0.0; TP], [0.0; TP], [0.0; TP]);
    let mut stats = [[Dual::<4>::ZERO; 1]; 8];
    let ws = Workspace {
        params: &mut params,
        grad: &mut grad,
        best: &mut best,
        scratch: Scratch::new(&mut stats, &mut []),
    };
    let mut t = EnsembleFit::new(tiny_problem(&TIMES), loss)
        .and_then(|fit| Trainer::new(&mut model, &mut adam, fit, TrainConfig::default(), ws))
        .unwrap();
    let mut seen = Vec::new();
    let err = t
        .run(500, |p| {
            seen.push(p.loss);
            ControlFlow::Continue(())
        })
        .unwrap_err();
    let n = seen.len() as u32;
    assert!(n > 3, "the tripwire should not fire at once: {seen:?}");
    assert_eq!(err, Error::NonFiniteGradient { iteration: n });
    let min = seen.iter().copied().fold(f32::INFINITY, f32::min);
    let (best, best_loss) = t.best();
    assert_eq!(best_loss, min);
    let best = best.to_vec();
    t.restore_best();
    assert_eq!(model_bits(t.model()), bits(&best));
}

#[test]
fn bad_input_is_an_error_and_leaves_model_and_optimizer_untouched() {
    let mut model = tiny_model();
    let mut adam = Adam::new(AdamConfig::lr(0.05), [0.0; TP], [0.0; TP]).unwrap();
    let mut p = [0.0; TP];
    model.read_params(&mut p).unwrap();
    adam.step(&mut p, &[0.1, -0.2, 0.3, -0.4]).unwrap(); // non-trivial optimizer state
    let model0 = model_bits(&model);
    let adam0 = adam.clone();
    let (mut params, mut grad, mut best) = ([7.0; TP], [7.0; TP], [7.0; TP]);
    let mut stats = [[Dual::<4>::ZERO; 1]; 8];
    let sentinel = bits(&[7.0; TP]);

    macro_rules! attempt {
        ($problem:expr, $loss:expr, $config:expr, $stats:expr) => {{
            let ws = Workspace {
                params: &mut params,
                grad: &mut grad,
                best: &mut best,
                scratch: Scratch::new($stats, &mut []),
            };
            EnsembleFit::new($problem, $loss)
                .and_then(|fit| Trainer::new(&mut model, &mut adam, fit, $config, ws))
                .err()
        }};
    }
    let short_data = MeanSquaredError::new(&DECAY[..3]).unwrap();
    let e = attempt!(
        tiny_problem(&TIMES),
        short_data,
        TrainConfig::default(),
        &mut stats
    );
    assert_eq!(
        e,
        Some(Error::Length {
            what: "data",
            expected: 4,
            found: 3
        })
    );
    let ok_loss = MeanSquaredError::new(&DECAY).unwrap();
    let bad_clip = TrainConfig {
        clip_norm: Some(f32::NAN),
        ..TrainConfig::default()
    };
    let e = attempt!(tiny_problem(&TIMES), ok_loss, bad_clip, &mut stats);
    assert!(matches!(e, Some(Error::NonFinite { .. })), "{e:?}");
    let e = attempt!(
        tiny_problem(&TIMES),
        ok_loss,
        TrainConfig::default(),
        &mut stats[..7]
    );
    assert!(matches!(e, Some(Error::Length { .. })), "{e:?}");
    // u0 trained: the buffers (TP long) are one short
    let e = attempt!(
        tiny_problem(&TIMES).with_u0_gradient(true),
        ok_loss,
        TrainConfig::default(),
        &mut stats
    );
    assert!(
        matches!(
            e,
            Some(Error::Length {
                what: "parameters",
                ..
            })
        ),
        "{e:?}"
    );
    assert_eq!(model_bits(&model), model0);
    assert_eq!(adam, adam0);
    assert_eq!(bits(&params), sentinel);
    assert_eq!(bits(&best), sentinel);

    // Inputs rejected before a trainer can exist.
    assert!(MeanSquaredError::new(&[[1.0], [f32::NAN], [1.0], [1.0]]).is_err());
    let solver = Solver::new(EulerMaruyama, TimeGrid::new(0.0, 2.0, 40).unwrap());
    assert!(Problem::new(solver, [2.0], 0, &TIMES).is_err());
    assert!(AdamConfig::lr(f32::NAN).validate().is_err());

    // A valid trainer: a bad schedule or trajectory count is rejected without any change.
    let ws = Workspace {
        params: &mut params,
        grad: &mut grad,
        best: &mut best,
        scratch: Scratch::new(&mut stats, &mut []),
    };
    let mut t = EnsembleFit::new(tiny_problem(&TIMES), ok_loss)
        .and_then(|fit| Trainer::new(&mut model, &mut adam, fit, TrainConfig::default(), ws))
        .unwrap();
    for bad in [
        GrowingWindow {
            start: 0,
            add: 1,
            iters_per_stage: 5,
        },
        GrowingWindow {
            start: 2,
            add: 0,
            iters_per_stage: 5,
        },
        GrowingWindow {
            start: 2,
            add: 1,
            iters_per_stage: 0,
        },
    ] {
        assert!(t.run_schedule(&bad, |_| ControlFlow::Continue(())).is_err());
    }
    assert!(t.fit_mut().set_trajectories(0).is_err());
    assert_eq!(t.fit().problem().trajectories(), 8);
    assert_eq!(t.iteration(), 0);
    assert_eq!(model_bits(t.model()), model0);
    assert_eq!(**t.optimizer(), adam0);
}

// ---------------------------------------------------------------- the seed task

type SeedModel = NeuralSde<
    (Cube<1>, Dense<1, 20, FastTanh>, Dense<20, 1, Identity>),
    (Dense<1, 20, FastSigmoid>, Dense<20, 1, Identity>),
>;
const SP: usize = SeedModel::PARAMS;
const SEED_TIMES: [f32; 7] = [-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0];
/// Steps per unit time (SOSRI on [-3, 3]).
const STEPS_PER_UNIT: u32 = 5;
const TRAJECTORIES: usize = 16;
const LR: f32 = 0.005;

/// y = exp(x) + U[0, 2) at x = -3..3, from a fixed generator.
fn seed_data() -> [[f32; 1]; 7] {
    let mut rng = tinysde::noise::rng_from_seed(2021);
    SEED_TIMES.map(|x| [x.exp() + 2.0 * ((rng.next_u32() >> 8) as f32 / 16_777_216.0)])
}

/// The seed model with Glorot-uniform weights, except the first drift layer, whose input
/// is u^3 (up to ~8000 on this data): it starts at U(-0.01, 0.01) so its tanh units are
/// not all saturated from the start. (With Glorot weights every unit saturates for u > 2,
/// the drift is constant there, and training stalls on a straight-line fit.)
fn seed_model() -> SeedModel {
    let mut model = SeedModel::default();
    let mut rng = tinysde::noise::rng_from_seed(7);
    model.init(&mut rng, InitScheme::GlorotUniform).unwrap();
    tinysde::nn::init(
        &mut model.drift.1,
        &mut rng,
        InitScheme::Uniform { limit: 0.01 },
    )
    .unwrap();
    model
}

/// The loss on a large fixed ensemble (256 trajectories, its own noise): the yardstick
/// for "before" and "after".
fn seed_eval(
    model: &SeedModel,
    problem: &Problem<'_, Sosri, 1>,
    loss: &MeanSquaredError<'_, 1>,
) -> f32 {
    let p = problem.with_trajectories(256).unwrap();
    loss_value(&p, model, &Brownian::new(99), loss, &mut [[0.0f32; 1]; 14]).unwrap()
}

fn train_seed_task(schedule: Option<GrowingWindow>, iterations: u32) -> (f32, f32) {
    let data = seed_data();
    let loss = MeanSquaredError::new(&data).unwrap();
    let solver = Solver::new(Sosri, TimeGrid::new(-3.0, 3.0, 6 * STEPS_PER_UNIT).unwrap());
    let problem = Problem::new(solver, data[0], TRAJECTORIES, &SEED_TIMES).unwrap();
    let mut model = seed_model();
    let before = seed_eval(&model, &problem, &loss);
    let mut adam = Adam::new(AdamConfig::lr(LR), [0.0; SP], [0.0; SP]).unwrap();
    let (mut params, mut grad, mut best) = ([0.0; SP], [0.0; SP], [0.0; SP]);
    let mut stats = [[Dual::<32>::ZERO; 1]; 14];
    let ws = Workspace {
        params: &mut params,
        grad: &mut grad,
        best: &mut best,
        scratch: Scratch::new(&mut stats, &mut []),
    };
    let config = TrainConfig {
        noise: NoiseMode::Fresh { seed: 1 },
        clip_norm: None,
    };
    let mut t = EnsembleFit::new(problem, loss)
        .and_then(|fit| Trainer::new(&mut model, &mut adam, fit, config, ws))
        .unwrap();
    let go = |_: &Progress| ControlFlow::Continue(());
    let report = match schedule {
        None => t.run(iterations, go),
        Some(s) => t.run_schedule(&s, go),
    }
    .unwrap();
    assert!(report.best_loss.is_finite());
    t.restore_best();
    let after = seed_eval(t.model(), &problem, &loss);
    (before, after)
}

#[test]
fn seed_task_plain_training_cuts_the_loss_tenfold() {
    let start = std::time::Instant::now();
    let (before, after) = train_seed_task(None, 300);
    eprintln!(
        "seed task, plain: loss {before} -> {after} ({:.1}x) in {:.1} s",
        before / after,
        start.elapsed().as_secs_f64()
    );
    assert!(after * 10.0 <= before, "{before} -> {after}");
}

#[test]
fn seed_task_growing_window_cuts_the_loss_tenfold() {
    let start = std::time::Instant::now();
    let schedule = GrowingWindow {
        start: 2,
        add: 1,
        iters_per_stage: 200,
    };
    let (before, after) = train_seed_task(Some(schedule), 0);
    eprintln!(
        "seed task, growing window: loss {before} -> {after} ({:.1}x) in {:.1} s",
        before / after,
        start.elapsed().as_secs_f64()
    );
    assert!(after * 10.0 <= before, "{before} -> {after}");
}

/// The clipping norm is checked by one function everywhere: `clip_global_norm`, a trainer
/// on an ensemble fit or a series fit (caller buffers), and the owned trainer's
/// `with_config` all refuse a subnormal norm (and accept `f32::MIN_POSITIVE`), before
/// anything is written.
#[test]
fn every_trainer_refuses_a_subnormal_clipping_norm() {
    use tinysde::train::{Series, SeriesFit, SeriesProblem};
    let subnormal = f32::MIN_POSITIVE / 2.0;
    assert!(subnormal > 0.0 && !subnormal.is_normal());
    let mut g = [3.0f32, 4.0];
    assert!(matches!(
        clip_global_norm(&mut g, subnormal),
        Err(Error::OutOfRange { .. })
    ));
    assert_eq!(g, [3.0, 4.0]);
    assert!(clip_global_norm(&mut g, f32::MIN_POSITIVE).is_ok());

    let config = |norm: f32| TrainConfig {
        clip_norm: Some(norm),
        ..TrainConfig::default()
    };
    let mut stats = [[Dual::<4>::ZERO; 1]; 8];
    let (mut params, mut grad, mut best) = ([7.0; TP], [7.0; TP], [7.0; TP]);
    let loss = MeanSquaredError::new(&DECAY).unwrap();
    for (norm, ok) in [(subnormal, false), (f32::MIN_POSITIVE, true)] {
        // An ensemble fit.
        let mut model = tiny_model();
        let mut adam = Adam::new(AdamConfig::lr(0.05), [0.0; TP], [0.0; TP]).unwrap();
        let ws = Workspace {
            params: &mut params,
            grad: &mut grad,
            best: &mut best,
            scratch: Scratch::new(&mut stats, &mut []),
        };
        let fit = EnsembleFit::new(tiny_problem(&TIMES), loss).unwrap();
        let r = Trainer::new(&mut model, &mut adam, fit, config(norm), ws);
        assert_eq!(r.is_ok(), ok, "ensemble fit, norm {norm:e}");
        if !ok {
            assert!(matches!(r, Err(Error::OutOfRange { .. })));
            assert_eq!(bits(&params), bits(&[7.0; TP]));
        }
    }
    let times: Vec<f32> = (0..8).map(|i| i as f32 * 0.25).collect();
    let values: Vec<[f32; 1]> = (0..8).map(|i| [1.0 / (1.0 + i as f32)]).collect();
    let problem = SeriesProblem::new(
        EulerMaruyama,
        Series::new(&times, &values).unwrap(),
        0.05,
        4,
    )
    .unwrap();
    for (norm, ok) in [(subnormal, false), (f32::MIN_POSITIVE, true)] {
        // A series fit (before this check was shared, this one accepted subnormal norms).
        let mut model = tiny_model();
        let mut adam = Adam::new(AdamConfig::lr(0.05), [0.0; TP], [0.0; TP]).unwrap();
        let (mut params, mut grad, mut best) = ([7.0; TP], [7.0; TP], [7.0; TP]);
        let ws = Workspace {
            params: &mut params,
            grad: &mut grad,
            best: &mut best,
            scratch: Scratch::new(&mut stats, &mut []),
        };
        let r = Trainer::new(
            &mut model,
            &mut adam,
            SeriesFit::new(problem),
            config(norm),
            ws,
        );
        assert_eq!(r.is_ok(), ok, "series fit, norm {norm:e}");
        drop(r);
        if !ok {
            assert_eq!(bits(&params), bits(&[7.0; TP]));
        }
        // The owned trainer.
        let owned = Trainer::owned(tiny_model(), SeriesFit::new(problem), AdamConfig::lr(0.05))
            .unwrap()
            .with_config(config(norm));
        assert_eq!(owned.is_ok(), ok, "owned trainer, norm {norm:e}");
    }
}
