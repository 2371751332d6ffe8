//! The firmware's numbers, computed on the host.
//!
//! The QEMU firmware (`boards/qemu`, on the Cortex-M4F `mps2-an386`) loads `boards/app/model/seed-quick.tsw`, runs an
//! ensemble forecast of the seed model and a few on-device training iterations, and prints
//! `CONFIG`, `FORECAST` and `TRAIN` records with every `f32` as its bit pattern. This test
//! loads the same file, computes the same records with the same library code, checks their
//! properties, and prints them (to stdout, and to the file named by the environment
//! variable `TINYSDE_PARITY_OUT` if set). `boards/ci.sh` compares the two outputs byte for
//! byte: the host (x86-64, SSE) and the Cortex-M4F must agree to the last bit.
//!
//! The tests that run on the target (`boards/app/src/checks.rs`: noise, layers, one solve
//! per method, one gradient) are compiled here from the same file: this test requires every
//! check to pass on the host and writes their `CHECK` records (to the file named by
//! `TINYSDE_CHECKS_OUT`), which `boards/ci.sh` compares with each emulated core's.
//!
//! The constants mirror `boards/app/src/seed.rs`; the `CONFIG` record (sizes, span, u0,
//! noise seed, weights checksum) is compared too, so the two copies cannot drift apart
//! unnoticed.

/// The on-target checks, compiled from the firmware's own source.
#[path = "../../boards/app/src/checks.rs"]
#[allow(dead_code)]
mod checks;

use core::ops::ControlFlow;
use std::fmt::Write as _;

use tinysde::grad::Scratch;
use tinysde::grad::{loss_and_gradient, reverse, Problem};
use tinysde::grad::{Ensemble, Forward, Reverse};
use tinysde::nn::{Cube, Dense, Identity, Parameters, QuickSigmoid, QuickTanh};
use tinysde::noise::{rng_from_seed, Brownian, BrownianTree};
use tinysde::sde::NeuralSde;
use tinysde::solve::{
    self, Adaptive, AdaptiveStats, Checkpoints, EnsembleBuffers, EnsembleRequest, EulerMaruyama,
    SolveRequest, Solver, Sosri, TimeGrid,
};
use tinysde::train::{
    Adam, AdamConfig, MeanSquaredError, NoiseMode, TrainConfig, Trainer, Workspace,
};
use tinysde::train::{EnsembleFit, GradientMode};
use tinysde::{weights, Dual, Error, Real, WeightsError};

type Drift = (Cube<1>, Dense<1, 20, QuickTanh>, Dense<20, 1, Identity>);
type Diffusion = (Dense<1, 20, QuickSigmoid>, Dense<20, 1, Identity>);
type SeedModel = NeuralSde<Drift, Diffusion>;
const PARAMS: usize = SeedModel::PARAMS;

// The firmware's configuration (boards/app/src/seed.rs).
const T0: f32 = -3.0;
const T1: f32 = 3.0;
const STEPS: u32 = 60;
const SAVES: usize = 7;
const SAVE_TIMES: [f32; SAVES] = [-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0];
const TRAJECTORIES: usize = 32;
const NOISE_SEED: u64 = 0x5EED_2021;
const DATA_SEED: u64 = 7;
const TRAIN_NOISE_SEED: u64 = 11;
const TRAIN_TRAJECTORIES: usize = 8;
const TRAIN_LEARNING_RATE: f32 = 5e-4;
const TRAIN_ITERATIONS: u32 = 5;
const LANES: usize = 8;
// On-device training's reverse mode (boards/app/src/training.rs).
const TRAIN_CHECKPOINTS: Checkpoints = Checkpoints::All;
const TAPE_ROWS: usize = 4 * SAVES + TRAIN_TRAJECTORIES * (STEPS as usize + 1) + 1;
const ADAPTIVE_TRAJECTORIES: usize = 32;
const ADAPTIVE_DEPTH: u32 = 16;
const ADAPTIVE_TOLERANCE: f32 = 1e-2;

fn blob() -> Vec<u8> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/boards/app/model/seed-quick.tsw"
    );
    std::fs::read(path).unwrap_or_else(|e| {
        panic!("{path}: {e} (regenerate with `cargo run --release --features examples --example firmware_weights`)")
    })
}

fn data() -> [f32; SAVES] {
    use rand_core::Rng;
    let mut rng = rng_from_seed(DATA_SEED);
    let mut out = [0.0f32; SAVES];
    for (y, &x) in out.iter_mut().zip(SAVE_TIMES.iter()) {
        let u = (rng.next_u32() >> 8) as f32 * (1.0 / 16_777_216.0);
        *y = tinysde::math::exp(x) + u * 2.0;
    }
    out
}

/// A model's weights blob (without `weights::to_vec`, so that the test also builds
/// without feature `std`).
fn encode<M: weights::Describe>(model: &M) -> Vec<u8> {
    let mut buf = vec![0u8; weights::encoded_len::<M>()];
    let n = weights::write(model, &mut buf).unwrap();
    buf.truncate(n);
    buf
}

fn load(bytes: &[u8]) -> Result<SeedModel, Error> {
    let mut model = SeedModel::default();
    weights::read_into(&mut model, bytes)?;
    Ok(model)
}

fn solver(steps: u32) -> Solver<EulerMaruyama> {
    Solver::new(EulerMaruyama, TimeGrid::new(T0, T1, steps).unwrap())
}

/// Ensemble mean and standard deviation at the save times, as the firmware computes them.
fn forecast(model: &SeedModel, u0: f32) -> Result<([f32; SAVES], [f32; SAVES]), Error> {
    let mut mean = [[0.0f32; 1]; SAVES];
    let mut var = [[0.0f32; 1]; SAVES];
    solve::simulate_into(
        &solver(STEPS),
        model,
        &Brownian::new(NOISE_SEED),
        &EnsembleRequest::new([u0], TRAJECTORIES, &SAVE_TIMES),
        EnsembleBuffers::new(&mut mean, &mut var),
    )?;
    Ok((mean.map(|m| m[0]), var.map(|v| tinysde::math::sqrt(v[0]))))
}

/// The adaptive forecast (SOSRI, absolute and relative tolerance `tol`, Brownian tree of
/// depth `ADAPTIVE_DEPTH` over the span): ensemble mean, variance and step counts.
fn adaptive_forecast(
    model: &SeedModel,
    u0: f32,
    tol: f32,
) -> Result<([f32; SAVES], [f32; SAVES], AdaptiveStats), Error> {
    let tree = BrownianTree::new(NOISE_SEED, T0, T1, ADAPTIVE_DEPTH)?;
    let solver = Adaptive::new(Sosri, tol, tol)?;
    let mut mean = [[0.0f32; 1]; SAVES];
    let mut var = [[0.0f32; 1]; SAVES];
    let stats = solve::simulate_into(
        &solver,
        model,
        &tree,
        &EnsembleRequest::new([u0], ADAPTIVE_TRAJECTORIES, &SAVE_TIMES),
        EnsembleBuffers::new(&mut mean, &mut var),
    )?;
    Ok((mean.map(|m| m[0]), var.map(|v| v[0]), stats))
}

/// The losses of the firmware's on-device training from the committed weights, computed
/// once for all tests (it is the slow part in a debug build).
fn training_losses() -> &'static [f32] {
    static LOSSES: std::sync::OnceLock<Vec<f32>> = std::sync::OnceLock::new();
    LOSSES.get_or_init(|| {
        let mut model = load(&blob()).unwrap();
        train(&mut model, data()[0]).unwrap()
    })
}

/// The loss before each of the firmware's on-device training iterations: gradients by
/// reverse mode, with the firmware's checkpoints and tape length.
fn train(model: &mut SeedModel, u0: f32) -> Result<Vec<f32>, Error> {
    train_in_mode(model, u0, Some(TAPE_ROWS))
}

/// The training losses with gradients by reverse mode on a tape of `tape_rows` rows, or by
/// forward mode (`LANES` tangents per pass) if `None`.
fn train_in_mode(
    model: &mut SeedModel,
    u0: f32,
    tape_rows: Option<usize>,
) -> Result<Vec<f32>, Error> {
    let rows = data().map(|y| [y]);
    let loss = MeanSquaredError::new(&rows)?;
    let problem = Problem::new(solver(STEPS), [u0], TRAIN_TRAJECTORIES, &SAVE_TIMES)?;
    let mut adam = Adam::new(
        AdamConfig::lr(TRAIN_LEARNING_RATE),
        [0.0f32; PARAMS],
        [0.0f32; PARAMS],
    )?;
    let (mut params, mut grad, mut best) = ([0.0f32; PARAMS], [0.0f32; PARAMS], [0.0f32; PARAMS]);
    let mut stats = [[Dual::<LANES>::ZERO; 1]; 2 * SAVES];
    let mut tape = vec![[0.0f32; 1]; tape_rows.unwrap_or(0)];
    let ws = Workspace {
        params: &mut params,
        grad: &mut grad,
        best: &mut best,
        scratch: Scratch::new(&mut stats, &mut tape),
    };
    let config = TrainConfig {
        noise: NoiseMode::Fixed {
            seed: TRAIN_NOISE_SEED,
        },
        clip_norm: None,
    };
    let mode = match tape_rows {
        Some(_) => GradientMode::Reverse(TRAIN_CHECKPOINTS),
        None => GradientMode::Forward,
    };
    let fit = EnsembleFit::new(problem, loss)?;
    let mut trainer = Trainer::new(model, &mut adam, fit, config, ws)?.with_mode(mode)?;
    let mut losses = Vec::new();
    trainer.run(TRAIN_ITERATIONS, |p| {
        losses.push(p.loss);
        ControlFlow::Continue(())
    })?;
    Ok(losses)
}

fn hex(x: f32) -> String {
    format!("{:08x}", x.to_bits())
}

/// The records the QEMU firmware prints, in its format.
pub(crate) fn expected_records() -> String {
    let bytes = blob();
    let model = load(&bytes).expect("the committed weights load into the seed model");
    let u0 = data()[0];
    let (mean, std) = forecast(&model, u0).expect("the forecast succeeds");
    let mut out = String::new();
    writeln!(
        out,
        "CONFIG {PARAMS} {TRAJECTORIES} {STEPS} {SAVES} {} {} {} {NOISE_SEED:016x} {:08x}",
        hex(T0),
        hex(T1),
        hex(u0),
        weights::crc32(&bytes[..bytes.len() - 4]),
    )
    .unwrap();
    for (i, ((t, m), s)) in SAVE_TIMES.iter().zip(&mean).zip(&std).enumerate() {
        writeln!(out, "FORECAST {i} {} {} {}", hex(*t), hex(*m), hex(*s)).unwrap();
    }
    let (mean, var, stats) =
        adaptive_forecast(&model, u0, ADAPTIVE_TOLERANCE).expect("the adaptive forecast succeeds");
    for (i, ((t, m), v)) in SAVE_TIMES.iter().zip(&mean).zip(&var).enumerate() {
        writeln!(out, "ADAPTIVE {i} {} {} {}", hex(*t), hex(*m), hex(*v)).unwrap();
    }
    writeln!(
        out,
        "ADAPTIVE_STEPS {ADAPTIVE_TRAJECTORIES} {ADAPTIVE_DEPTH} {} {} {}",
        hex(ADAPTIVE_TOLERANCE),
        stats.accepted,
        stats.rejected
    )
    .unwrap();
    for (i, l) in training_losses().iter().enumerate() {
        writeln!(out, "TRAIN {i} {}", hex(*l)).unwrap();
    }
    out
}

#[test]
fn firmware_records() {
    let records = expected_records();
    // Human-readable view next to the bit patterns.
    for line in records.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let decode = |s: &str| f32::from_bits(u32::from_str_radix(s, 16).unwrap());
        match fields[0] {
            "FORECAST" => println!(
                "{line}    # t = {:5.2}  mean = {:10.5}  std = {:9.5}",
                decode(fields[2]),
                decode(fields[3]),
                decode(fields[4])
            ),
            "TRAIN" => println!("{line}    # loss = {:.6}", decode(fields[2])),
            "ADAPTIVE" => println!(
                "{line}    # t = {:5.2}  mean = {:10.5}  var = {:10.5}",
                decode(fields[2]),
                decode(fields[3]),
                decode(fields[4])
            ),
            _ => println!("{line}"),
        }
    }
    if let Some(path) = std::env::var_os("TINYSDE_PARITY_OUT") {
        std::fs::write(&path, &records).expect("write TINYSDE_PARITY_OUT");
    }
    assert_eq!(
        records.lines().count(),
        1 + SAVES + SAVES + 1 + TRAIN_ITERATIONS as usize
    );
}

#[test]
fn forecast_properties() {
    let model = load(&blob()).unwrap();
    let u0 = data()[0];
    let (mean, std) = forecast(&model, u0).unwrap();
    // Every trajectory starts at u0: the first save time is t0.
    assert_eq!(mean[0], u0);
    assert_eq!(std[0], 0.0);
    assert!(mean.iter().chain(&std).all(|x| x.is_finite()));
    assert!(
        std[1..].iter().all(|&s| s > 0.0),
        "noise spreads the ensemble: {std:?}"
    );
    // Deterministic: the same call gives the same bits.
    assert_eq!(forecast(&model, u0).unwrap(), (mean, std));

    // The ensemble statistics are those of the individual trajectories (solved one by one).
    let mut paths = vec![[0.0f32; 1]; TRAJECTORIES * SAVES];
    for (m, chunk) in paths.chunks_mut(SAVES).enumerate() {
        solve::solve(
            &solver(STEPS),
            &model,
            &Brownian::new(NOISE_SEED),
            &SolveRequest::new([u0], &SAVE_TIMES).trajectory(m),
            chunk,
        )
        .unwrap();
    }
    for i in 0..SAVES {
        let xs: Vec<f64> = (0..TRAJECTORIES)
            .map(|m| paths[m * SAVES + i][0] as f64)
            .collect();
        let n = xs.len() as f64;
        let mu = xs.iter().sum::<f64>() / n;
        let sd = (xs.iter().map(|x| (x - mu) * (x - mu)).sum::<f64>() / (n - 1.0)).sqrt();
        assert!(
            (mean[i] as f64 - mu).abs() <= 1e-5 * (1.0 + mu.abs()),
            "mean {i}"
        );
        assert!((std[i] as f64 - sd).abs() <= 1e-4 * (1.0 + sd), "std {i}");
    }
}

#[test]
fn on_device_training_lowers_the_loss() {
    let losses = training_losses();
    assert_eq!(losses.len(), TRAIN_ITERATIONS as usize);
    assert!(losses.iter().all(|l| l.is_finite() && *l >= 0.0));
    assert!(
        losses.windows(2).all(|w| w[1] < w[0]),
        "the loss falls at every iteration: {losses:?}"
    );
}

#[test]
fn the_firmware_tape_keeps_every_trajectory_and_no_more() {
    // TAPE_ROWS mirrors boards/app/src/training.rs: exactly the length with which reverse
    // mode keeps every trajectory's states (no per-trajectory forward pass).
    let problem =
        Problem::new(solver(STEPS), [data()[0]], TRAIN_TRAJECTORIES, &SAVE_TIMES).unwrap();
    assert_eq!(
        TAPE_ROWS,
        reverse::tape_len_keep_all(&problem, TRAIN_CHECKPOINTS)
    );
    assert!(TAPE_ROWS > reverse::tape_len(&problem, TRAIN_CHECKPOINTS));
}

#[test]
fn reverse_mode_training_follows_forward_mode() {
    // The same iterations with forward-mode gradients: the first loss has the same bits
    // (the same f32 ensemble), the later ones differ at most by the gradients' rounding.
    let reverse = training_losses();
    let forward = train_in_mode(&mut load(&blob()).unwrap(), data()[0], None).unwrap();
    let problem =
        Problem::new(solver(STEPS), [data()[0]], TRAIN_TRAJECTORIES, &SAVE_TIMES).unwrap();
    let one_trajectory = reverse::tape_len(&problem, TRAIN_CHECKPOINTS);
    let shorter =
        train_in_mode(&mut load(&blob()).unwrap(), data()[0], Some(one_trajectory)).unwrap();
    assert_eq!(reverse[0].to_bits(), forward[0].to_bits());
    for (r, f) in reverse.iter().zip(&forward) {
        assert!((r - f).abs() <= 1e-5 * f.abs(), "reverse {r} forward {f}");
    }
    // A tape of one trajectory (reverse::tape_len) gives the same bits, one solve dearer.
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(reverse), bits(&shorter));
}

#[test]
fn the_firmware_gradient_agrees_between_modes() {
    // The on-device training's gradient at the committed weights (the firmware's problem,
    // noise, tape and checkpoints) against forward mode's: Adam's first steps hardly depend
    // on the gradient's magnitude, so the losses alone would not catch a wrong one.
    let model = load(&blob()).unwrap();
    let rows = data().map(|y| [y]);
    let loss = MeanSquaredError::new(&rows).unwrap();
    let problem =
        Problem::new(solver(STEPS), [data()[0]], TRAIN_TRAJECTORIES, &SAVE_TIMES).unwrap();
    let noise = Brownian::new(TRAIN_NOISE_SEED);
    let mut stats = [[Dual::<LANES>::ZERO; 1]; 2 * SAVES];
    let mut tape = vec![[0.0f32; 1]; TAPE_ROWS];
    let (mut g_rev, mut g_fwd) = ([0.0f32; PARAMS], [0.0f32; PARAMS]);
    let l_rev = loss_and_gradient(
        &Ensemble::new(&problem, &loss, &noise),
        &model,
        Reverse(TRAIN_CHECKPOINTS),
        &mut Scratch::new(&mut stats, &mut tape),
        &mut g_rev,
    )
    .unwrap();
    let l_fwd = loss_and_gradient(
        &Ensemble::new(&problem, &loss, &noise),
        &model,
        Forward,
        &mut Scratch::new(&mut stats, &mut []),
        &mut g_fwd,
    )
    .unwrap();
    assert_eq!(l_rev.to_bits(), l_fwd.to_bits());
    let scale = g_fwd.iter().fold(0.0f32, |m, g| m.max(g.abs()));
    assert!(scale > 0.0, "a zero gradient proves nothing");
    for (i, (r, f)) in g_rev.iter().zip(&g_fwd).enumerate() {
        assert!(
            (r - f).abs() <= 1e-4 * (f.abs() + 1e-3 * scale),
            "parameter {i}: reverse {r} forward {f}"
        );
    }
}

#[test]
fn bad_blobs_are_typed_errors() {
    let good = blob();
    let pristine = load(&good).unwrap();

    // One flipped bit in the first parameter (the firmware's `corrupt` scenario).
    let mut corrupt = good.clone();
    let at = good.len() - 4 - 4 * PARAMS;
    corrupt[at] ^= 0x10;
    assert_eq!(load(&corrupt), Err(Error::Weights(WeightsError::Checksum)));
    // Cut short (`truncated`).
    assert_eq!(
        load(&good[..good.len() - 7]),
        Err(Error::Weights(WeightsError::Truncated))
    );
    // Written for a drift with 16 hidden units (`mismatch`).
    type Other = NeuralSde<(Cube<1>, Dense<1, 16, QuickTanh>, Dense<16, 1, Identity>), Diffusion>;
    let other = encode(&Other::default());
    assert_eq!(
        load(&other),
        Err(Error::Weights(WeightsError::ShapeMismatch))
    );
    // A model left untouched by a failed load.
    let mut m = pristine;
    assert!(weights::read_into(&mut m, &corrupt).is_err());
    assert_eq!(m, pristine);
}

#[test]
fn a_diverging_forecast_is_a_typed_error() {
    // The firmware's `diverge` scenario: the drift's output bias set to 1e38, so the state
    // gains 1e37 per step and overflows.
    let mut model = load(&blob()).unwrap();
    let mut p = [0.0f32; PARAMS];
    model.read_params(&mut p).unwrap();
    p[60] = 1e38;
    model.write_params(&p).unwrap();
    let reloaded = load(&encode(&model)).unwrap();
    match forecast(&reloaded, data()[0]) {
        Err(Error::Diverged { trajectory, step }) => {
            assert_eq!(trajectory, 0);
            assert!(step > 0 && step < STEPS, "step {step}");
        }
        other => panic!("expected Diverged, got {other:?}"),
    }
}

/// A check's record, as the firmware prints it: `CHECK <name> <ok|FAIL> <values as bits>`.
fn check_record(c: &checks::CheckResult) -> String {
    let mut line = format!("CHECK {} {}", c.name, if c.passed { "ok" } else { "FAIL" });
    for v in c.values {
        write!(line, " {}", hex(v)).unwrap();
    }
    line
}

#[test]
fn target_checks_pass_on_the_host() {
    let mut records = String::new();
    let mut failed = Vec::new();
    checks::run_all(|c| {
        let line = check_record(c);
        let values: Vec<String> = c.values.iter().map(|v| format!("{v:.6e}")).collect();
        println!("{line}    # {}", values.join(" "));
        writeln!(records, "{line}").unwrap();
        if !c.passed {
            failed.push(c.name);
        }
    });
    if let Some(path) = std::env::var_os("TINYSDE_CHECKS_OUT") {
        std::fs::write(&path, &records).expect("write TINYSDE_CHECKS_OUT");
    }
    assert_eq!(records.lines().count(), checks::COUNT);
    assert!(failed.is_empty(), "failed on the host: {failed:?}");
}

#[test]
fn adaptive_forecast_properties() {
    let model = load(&blob()).unwrap();
    let u0 = data()[0];
    let (mean, var, stats) = adaptive_forecast(&model, u0, ADAPTIVE_TOLERANCE).unwrap();
    // Every trajectory starts at u0 (the first save time is t0); the noise spreads them.
    assert_eq!((mean[0], var[0]), (u0, 0.0));
    assert!(mean.iter().chain(&var).all(|x| x.is_finite()));
    assert!(var[1..].iter().all(|&v| v > 0.0), "{var:?}");
    assert!(stats.accepted >= (ADAPTIVE_TRAJECTORIES * (SAVES - 1)) as u64);
    // Deterministic: the same call gives the same bits.
    assert_eq!(
        adaptive_forecast(&model, u0, ADAPTIVE_TOLERANCE).unwrap(),
        (mean, var, stats)
    );
    // The ensemble is its trajectories solved one by one: statistics and step counts.
    let tree = BrownianTree::new(NOISE_SEED, T0, T1, ADAPTIVE_DEPTH).unwrap();
    let solver = Adaptive::new(Sosri, ADAPTIVE_TOLERANCE, ADAPTIVE_TOLERANCE).unwrap();
    let mut paths = vec![[[0.0f32; 1]; SAVES]; ADAPTIVE_TRAJECTORIES];
    let mut total = AdaptiveStats::default();
    for (m, path) in paths.iter_mut().enumerate() {
        let s = solve::solve(
            &solver,
            &model,
            &tree,
            &SolveRequest::new([u0], &SAVE_TIMES).trajectory(m),
            path,
        )
        .unwrap();
        total.accepted += s.accepted;
        total.rejected += s.rejected;
    }
    assert_eq!(total, stats);
    for i in 0..SAVES {
        let xs: Vec<f64> = paths.iter().map(|p| p[i][0] as f64).collect();
        let n = xs.len() as f64;
        let mu = xs.iter().sum::<f64>() / n;
        let v = xs.iter().map(|x| (x - mu) * (x - mu)).sum::<f64>() / (n - 1.0);
        assert!(
            (mean[i] as f64 - mu).abs() <= 1e-5 * (1.0 + mu.abs()),
            "mean {i}"
        );
        assert!((var[i] as f64 - v).abs() <= 1e-4 * (1.0 + v), "var {i}");
    }
    // Error control works: on the same Brownian paths, a hundred times tighter tolerance
    // takes more steps and moves the statistics by a small fraction of their spread.
    let (ref_mean, ref_var, ref_stats) = adaptive_forecast(&model, u0, 1e-4).unwrap();
    assert!(
        ref_stats.accepted > 2 * stats.accepted,
        "{ref_stats:?} vs {stats:?}"
    );
    for i in 0..SAVES {
        let spread = ref_mean[i].abs() + ref_var[i].sqrt();
        assert!(
            (mean[i] - ref_mean[i]).abs() <= 0.02 * spread,
            "mean {i}: {} vs {}",
            mean[i],
            ref_mean[i]
        );
        assert!(
            (var[i] - ref_var[i]).abs() <= 0.05 * ref_var[i] + 1e-6,
            "var {i}: {} vs {}",
            var[i],
            ref_var[i]
        );
    }
}
