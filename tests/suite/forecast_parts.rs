//! `Forecaster::from_parts` (the deployment given directly, as firmware built for one model
//! file makes it from constants generated at build time, without linking the file reader):
//! bit for bit `Forecaster::new` from the file, on the seed model (affine, observation noise,
//! log transform) and on a model `fit_csv` trained; a deployment the file format refuses
//! is a typed error.

use crate::examples::{fit_csv, temp_dir};
use crate::model_file::{nile_deployment, seeded_model, Seed, NILE};
use tinysde::forecast::file::{self, Column, Deployment, ModelFile, SolverSpec, Transform};
use tinysde::forecast::{Buffers, Check, Forecaster, Vecs};
use tinysde::nn::Parameters;
use tinysde::sde::Sde;
use tinysde::solve::{Sosri, Step};
use tinysde::weights::Describe;
use tinysde::{Error, WeightsError};

/// Everything a forecaster hands out over `rows` (each reading's samples, summaries,
/// outcome and checks, then the forecast of the next two intervals), as bits; an error as
/// a marker.
fn trace<M, const D: usize, B>(
    f: &mut Forecaster<M, Sosri, D, D, B>,
    rows: &[(f64, [Option<f64>; D])],
    interval: f64,
) -> Vec<u64>
where
    M: Sde<f32, D> + Describe,
    Sosri: Step<f32, M, D>,
    B: Buffers<D>,
{
    let mut out = Vec::new();
    for (t, values) in rows {
        let mut checks = [Check::default(); D];
        let mut seen = Vec::new();
        let outcome = f.observe_with(*t, values, &mut checks, |c, samples, summary| {
            seen.push(c as u64);
            seen.extend(samples.iter().map(|x| u64::from(x.to_bits())));
            seen.extend(summary.iter().map(|x| x.to_bits()));
        });
        out.extend(seen);
        match outcome {
            Ok(o) => {
                out.extend([o.updated as u64, o.checked.into(), o.outside.into()]);
                for c in checks {
                    out.extend([c.mean, c.lower, c.upper].map(f64::to_bits));
                    out.extend([u64::from(c.z.to_bits()), c.outside as u64]);
                }
            }
            Err(_) => out.push(u64::MAX),
        }
        let mut bands = vec![0.0; 2 * D * f.values_per_column()];
        match f.forecast(&[t + interval, t + 2.0 * interval], &mut bands) {
            Ok(()) => out.extend(bands.iter().map(|x| x.to_bits())),
            Err(_) => out.push(u64::MAX - 1),
        }
    }
    out
}

/// A Nile-like series at irregular times, a few readings missing.
fn nile_like() -> Vec<(f64, [Option<f64>; 1])> {
    let mut t = 1871.0;
    (0..30u32)
        .map(|i| {
            let x = 900.0 + 140.0 * (f64::from(i) * 0.9).sin() + 15.0 * f64::from(i % 4);
            let row = (t, [(i % 9 != 4).then_some(x)]);
            t += [1.0, 0.75, 1.5][i as usize % 3];
            row
        })
        .collect()
}

#[test]
fn the_seed_model_from_its_parts_forecasts_the_files_bits() {
    let model = seeded_model(7);
    let rows = nile_like();
    let log = Column {
        transform: Transform::Log,
        mean: 6.8,
        std: 0.2,
        ..NILE[0]
    };
    for column in [
        NILE[0],
        Column {
            noise: 0.3,
            ..NILE[0]
        },
        log,
    ] {
        let columns: &'static [Column<'static>] = Box::leak(Box::new([column]));
        let d = nile_deployment(columns);
        let bytes = file::to_vec(&model, &d).unwrap();
        let parsed = ModelFile::parse(&bytes).unwrap();
        type F = Forecaster<Seed, Sosri, 1, 1, Vecs<1>>;
        let mut host = F::new(Seed::default(), Sosri, &parsed, Vecs::new(32, 8)).unwrap();
        let mut device = F::from_parts(model, Sosri, &d, Vecs::new(32, 8)).unwrap();
        let a = trace(&mut host, &rows, 1.0);
        let b = trace(&mut device, &rows, 1.0);
        assert!(a.len() > 30 * 2 * 4, "{column:?}: too little traced");
        assert!(!a.contains(&u64::MAX), "{column:?}: a reading was refused");
        assert_eq!(a, b, "{column:?}");
        assert_eq!(device.model(), host.model());
    }
}

#[test]
fn a_fit_csv_model_from_its_parts_forecasts_the_files_bits() {
    let dir = temp_dir("forecast-parts");
    let csv = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/data/nile.csv");
    let settings = fit_csv::Settings {
        iterations: 20,
        eval_trajectories: 32,
        detect_period: false,
        ..fit_csv::Settings::default()
    };
    fit_csv::run(csv.as_ref(), &settings, &dir, false).unwrap();
    let bytes = std::fs::read(dir.join("fit_csv.tsm")).unwrap();
    let parsed = ModelFile::parse(&bytes).unwrap();
    type M = fit_csv::SeedModel<1>;
    type F = Forecaster<M, Sosri, 1, 1, Vecs<1>>;
    // The parts as firmware has them: the file's sections as values, the parameters as
    // numbers (modelgen generates both at build time).
    let columns = [parsed.column(0).unwrap()];
    let d = Deployment {
        state_dim: parsed.state_dim().unwrap(),
        columns: &columns,
        time: parsed.time().unwrap(),
        solver: parsed.solver().unwrap(),
        defaults: parsed.defaults().unwrap(),
        trends: &[],
        seasonal_lag: 0,
    };
    let params: Vec<f32> = parsed.model().params().collect();
    let mut model = M::default();
    model.write_params(&params).unwrap();
    let paths = d.defaults.paths as usize;
    let mut host = F::new(M::default(), Sosri, &parsed, Vecs::new(paths, 8)).unwrap();
    let mut device = F::from_parts(model, Sosri, &d, Vecs::new(paths, 8)).unwrap();
    let text = std::fs::read_to_string(csv).unwrap();
    let rows: Vec<(f64, [Option<f64>; 1])> = text
        .lines()
        .skip(1)
        .take(40)
        .map(|l| {
            let (t, x) = l.split_once(',').unwrap();
            (t.parse().unwrap(), [Some(x.trim().parse().unwrap())])
        })
        .collect();
    assert_eq!(rows.len(), 40);
    let a = trace(&mut host, &rows, d.time.unit);
    assert!(!a.contains(&u64::MAX), "a Nile reading was refused");
    assert_eq!(a, trace(&mut device, &rows, d.time.unit));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_deployment_the_file_format_refuses_is_a_typed_error() {
    type F = Forecaster<Seed, Sosri, 1, 1, Vecs<1>>;
    let d = nile_deployment(&NILE);
    let make = |d: &Deployment<'_>, b| F::from_parts(seeded_model(7), Sosri, d, b).map(|_| ());
    assert_eq!(make(&d, Vecs::new(4, 2)), Ok(()));
    let bad_std: &'static [Column<'static>] = Box::leak(Box::new([Column {
        std: 0.0,
        ..NILE[0]
    }]));
    let bad_noise: &'static [Column<'static>] = Box::leak(Box::new([Column {
        noise: f32::NAN,
        ..NILE[0]
    }]));
    let two: &'static [Column<'static>] = Box::leak(Box::new([
        NILE[0],
        Column {
            state_index: 1,
            ..NILE[0]
        },
    ]));
    let mut bad_time = d;
    bad_time.time.unit = 0.0;
    for (what, bad) in [
        (
            "std 0",
            Deployment {
                columns: bad_std,
                ..d
            },
        ),
        (
            "noise NaN",
            Deployment {
                columns: bad_noise,
                ..d
            },
        ),
        ("time unit 0", bad_time),
        ("no column", Deployment { columns: &[], ..d }),
        (
            "step NaN",
            Deployment {
                solver: SolverSpec {
                    method: "SOSRI",
                    max_step: f32::NAN,
                },
                ..d
            },
        ),
    ] {
        assert!(
            matches!(make(&bad, Vecs::new(4, 2)), Err(Error::OutOfRange { .. })),
            "{what}"
        );
    }
    let shape = Error::Weights(WeightsError::ShapeMismatch);
    let other_method = Deployment {
        solver: SolverSpec {
            method: "EM",
            max_step: 0.5,
        },
        ..d
    };
    assert_eq!(make(&other_method, Vecs::new(4, 2)), Err(shape));
    let wider = Deployment {
        state_dim: 2,
        columns: two,
        ..d
    };
    assert_eq!(make(&wider, Vecs::new(4, 2)), Err(shape));
    assert!(matches!(
        make(&d, Vecs::new(0, 2)),
        Err(Error::Length { .. })
    ));
    assert!(matches!(
        make(&d, Vecs::new(4, 0)),
        Err(Error::Length { .. })
    ));
}
