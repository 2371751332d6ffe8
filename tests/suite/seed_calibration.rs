//! The seed task's data (y = exp(x) + U[0, 2) at x = -3..3) fitted two ways, scored by the
//! coverage of the 90 % band and the CRPS, in-sample (x = -3..1) and on the held-out tail
//! (x = 2, 3):
//!
//! - the seed article's loss: the squared error of the ensemble mean, one ensemble from the
//!   first point through all training times;
//! - the calibrated loss: the Gaussian likelihood of each observation one step ahead of the
//!   previous one (windows of length 1).
//!
//! Both are scored the same two ways: one step ahead (an ensemble from each observed value
//! to the next time) and along the whole path (one ensemble from the first point, the band
//! a plot shows). Run with `--nocapture` to see the table.

use core::ops::ControlFlow;

use rand_core::Rng;
use tinysde::grad::Problem;
use tinysde::grad::Scratch;
use tinysde::grad::SeriesWindows;
use tinysde::nn::{Cube, Dense, FastSigmoid, FastTanh, Identity, InitScheme, Parameters};
use tinysde::noise::Brownian;
use tinysde::sde::NeuralSde;
use tinysde::solve::{self, SolveRequest, Solver, Sosri, TimeGrid};
use tinysde::train::{
    score_series, Adam, AdamConfig, CalibrationScore, MeanSquaredError, NoiseMode, Series,
    SeriesObjective, SeriesProblem, TrainConfig, Trainer, Workspace,
};
use tinysde::train::{EnsembleFit, SeriesFit};
use tinysde::{Dual, Real};

type Drift = (Cube<1>, Dense<1, 20, FastTanh>, Dense<20, 1, Identity>);
type Diffusion = (Dense<1, 20, FastSigmoid>, Dense<20, 1, Identity>);
type SeedModel = NeuralSde<Drift, Diffusion>;
const SP: usize = SeedModel::PARAMS;
const TIMES: [f32; 7] = [-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0];
/// Rows 0..TRAIN are fitted; the rest is the held-out tail.
const TRAIN: usize = 5;
const SCORE_TRAJECTORIES: usize = 1_000;

fn seed_data() -> [[f32; 1]; 7] {
    let mut rng = tinysde::noise::rng_from_seed(2021);
    TIMES.map(|x| [x.exp() + 2.0 * ((rng.next_u32() >> 8) as f32 / 16_777_216.0)])
}

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

fn config() -> TrainConfig {
    TrainConfig {
        noise: NoiseMode::Fresh { seed: 1 },
        clip_norm: Some(100.0),
    }
}

/// The seed article's fit: squared error of the mean from the first point, 300 iterations.
fn fit_mean(data: &[[f32; 1]]) -> SeedModel {
    let solver = Solver::new(Sosri, TimeGrid::new(-3.0, 1.0, 20).unwrap());
    let problem = Problem::new(solver, data[0], 16, &TIMES[..TRAIN]).unwrap();
    let loss = MeanSquaredError::new(&data[..TRAIN]).unwrap();
    let mut model = seed_model();
    let mut adam = Adam::new(AdamConfig::lr(0.005), [0.0; SP], [0.0; SP]).unwrap();
    let (mut params, mut grad, mut best) = ([0.0; SP], [0.0; SP], [0.0; SP]);
    let mut stats = [[Dual::<32>::ZERO; 1]; 2 * TRAIN];
    let ws = Workspace {
        params: &mut params,
        grad: &mut grad,
        best: &mut best,
        scratch: Scratch::new(&mut stats, &mut []),
    };
    {
        let mut t = EnsembleFit::new(problem, loss)
            .and_then(|fit| Trainer::new(&mut model, &mut adam, fit, config(), ws))
            .unwrap();
        t.run(300, |_| ControlFlow::Continue(())).unwrap();
        t.restore_best();
    }
    model
}

/// The calibrated fit: one-step-ahead Gaussian likelihood on the training rows.
fn fit_likelihood(data: &[[f32; 1]]) -> SeedModel {
    let series = Series::new(&TIMES[..TRAIN], &data[..TRAIN]).unwrap();
    let problem = SeriesProblem::new(Sosri, series, 0.2, 32)
        .unwrap()
        .with_objective(SeriesObjective::GaussianNll { var_floor: 1e-3 })
        .unwrap();
    let mut model = seed_model();
    let mut adam = Adam::new(AdamConfig::lr(0.005), [0.0; SP], [0.0; SP]).unwrap();
    let (mut params, mut grad, mut best) = ([0.0; SP], [0.0; SP], [0.0; SP]);
    let mut stats = [[Dual::<32>::ZERO; 1]; 2];
    let ws = Workspace {
        params: &mut params,
        grad: &mut grad,
        best: &mut best,
        scratch: Scratch::new(&mut stats, &mut []),
    };
    {
        let mut t =
            Trainer::new(&mut model, &mut adam, SeriesFit::new(problem), config(), ws).unwrap();
        t.run(600, |_| ControlFlow::Continue(())).unwrap();
    }
    model
}

/// One-step-ahead scores of the targets in rows `targets`.
fn one_step(
    model: &SeedModel,
    data: &[[f32; 1]],
    targets: core::ops::Range<usize>,
) -> CalibrationScore {
    let series = Series::new(&TIMES, data).unwrap();
    let problem = SeriesProblem::new(Sosri, series, 0.2, SCORE_TRAJECTORIES).unwrap();
    let mut paths = vec![[0.0f32; 1]; SCORE_TRAJECTORIES];
    let mut samples = vec![0.0f32; SCORE_TRAJECTORIES];
    let mut score = CalibrationScore::new(0.9).unwrap();
    let starts = (targets.start - 1)..(targets.end - 1);
    score_series(
        &SeriesWindows::new(&problem, &Brownian::new(99), starts),
        model,
        &mut paths,
        &mut samples,
        &mut score,
    )
    .unwrap();
    score
}

/// Whole-path scores: one ensemble from the first point through every time; rows `rows`.
fn whole_path(
    model: &SeedModel,
    data: &[[f32; 1]],
    rows: core::ops::Range<usize>,
) -> CalibrationScore {
    let solver = Solver::new(Sosri, TimeGrid::new(-3.0, 3.0, 30).unwrap());
    let mut out = vec![[0.0f32; 1]; TIMES.len()];
    let mut samples_at: Vec<Vec<f32>> = vec![Vec::new(); TIMES.len()];
    let noise = Brownian::new(98);
    for m in 0..SCORE_TRAJECTORIES {
        solve::solve(
            &solver,
            model,
            &noise,
            &SolveRequest::new(data[0], &TIMES).trajectory(m),
            &mut out,
        )
        .unwrap();
        for (s, u) in samples_at.iter_mut().zip(&out) {
            s.push(u[0]);
        }
    }
    let mut score = CalibrationScore::new(0.9).unwrap();
    for i in rows {
        score.add_ensemble(data[i][0], &mut samples_at[i]).unwrap();
    }
    score
}

#[test]
fn the_likelihood_fit_is_calibrated_where_the_mean_fit_is_not() {
    let data = seed_data();
    let models = [
        ("mean squared error", fit_mean(&data)),
        ("likelihood", fit_likelihood(&data)),
    ];
    let mut table = Vec::new();
    for (name, model) in &models {
        let scores = [
            one_step(model, &data, 1..TRAIN),
            one_step(model, &data, TRAIN..7),
            whole_path(model, &data, 1..TRAIN),
            whole_path(model, &data, TRAIN..7),
        ];
        eprintln!(
            "seed data, {name:>18}: one step ahead: in-sample coverage {}/{} CRPS {:.3}, held-out {}/{} CRPS {:.3}; \
             whole path: in-sample {}/{} CRPS {:.3}, held-out {}/{} CRPS {:.3}",
            scores[0].inside(), scores[0].count(), scores[0].mean_crps(),
            scores[1].inside(), scores[1].count(), scores[1].mean_crps(),
            scores[2].inside(), scores[2].count(), scores[2].mean_crps(),
            scores[3].inside(), scores[3].count(), scores[3].mean_crps(),
        );
        table.push(scores);
    }
    let (mean_fit, calibrated) = (&table[0], &table[1]);
    // In-sample one-step-ahead: the calibrated band holds at least 3 of the 4 training
    // transitions; the mean fit's collapsed band holds fewer.
    assert!(calibrated[0].inside() >= 3, "{:?}", calibrated[0]);
    assert!(calibrated[0].inside() > mean_fit[0].inside());
    assert!(calibrated[0].mean_crps() < mean_fit[0].mean_crps());
}
