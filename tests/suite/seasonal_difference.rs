//! The seasonal difference (issue 22): a forecaster with `seasonal_lag` equals the
//! forecaster without one fed the differenced readings, plus the lagged values, bit for bit;
//! unknown lagged readings are a typed outcome; the model file's `SDIF` section round trips,
//! bad lags are refused, files without it are unchanged; fit_csv's `--difference` options.

use crate::model_file::{nile_deployment, seeded_model, Seed};
use tinysde::forecast::file::{self, Column, Deployment, ModelFile, Transform};
use tinysde::forecast::{Arrays, Forecaster, Vecs};
use tinysde::solve::Sosri;
use tinysde::{Error, WeightsError};

/// A column in model units: `z = x` (mean 0, std 1).
const UNIT: [Column<'static>; 1] = [Column {
    name: "x",
    transform: Transform::Affine,
    mean: 0.0,
    std: 1.0,
    state_index: 0,
    noise: 0.0,
}];

const LAG: u16 = 4;

type F = Forecaster<Seed, Sosri, 1, 1, Vecs<1>>;

fn deployment(lag: u16) -> Deployment<'static> {
    Deployment {
        seasonal_lag: lag,
        ..nile_deployment(&UNIT)
    }
}

/// A quarterly-like series in model units: a season of 4 whose amplitude grows.
fn series(n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| {
            let season = [1.0f32, -0.5, 0.25, -0.75][i % 4];
            season * (1.0 + 0.1 * i as f32) + 0.05 * i as f32
        })
        .collect()
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn a_difference_is_the_forecast_of_the_differences_plus_the_lagged_values_bit_for_bit() {
    let model = seeded_model(5);
    let bytes = file::to_vec(&model, &deployment(LAG)).unwrap();
    let parsed = ModelFile::parse(&bytes).unwrap();
    let mut with: F = Forecaster::new(
        Seed::default(),
        Sosri,
        &parsed,
        Vecs::new(32, 8).with_history(LAG as usize),
    )
    .unwrap();
    assert_eq!(with.seasonal_lag(), LAG as usize);
    let mut without: F =
        Forecaster::from_parts(model, Sosri, &deployment(0), Vecs::new(32, 8)).unwrap();
    let z = series(14);
    let year = |i: usize| 1871.0 + i as f64;
    let mut seen_without = 0;
    for (i, &zi) in z.iter().enumerate() {
        let (mut a, mut b) = (None, None);
        let oa = with
            .observe_with(year(i), &[Some(f64::from(zi))], &mut [], |_, s, _| {
                a = Some(s.to_vec())
            })
            .unwrap();
        if i < LAG as usize {
            // No lagged value yet: no prediction, no update, the typed outcome.
            assert_eq!((oa.updated, oa.checked, oa.unlagged), (false, 0, 1));
            assert!(a.is_none() && with.member_states().is_none());
            // The same reading count for the other (the noise is keyed by it): missing.
            let ob = without.observe(year(i), &[None]).unwrap();
            assert!(!ob.updated && without.member_states().is_none());
            continue;
        }
        assert_eq!(oa.unlagged, 0);
        let lagged = z[i - LAG as usize];
        let u = zi - lagged;
        let ob = without
            .observe_with(year(i), &[Some(f64::from(u))], &mut [], |_, s, _| {
                b = Some(s.to_vec())
            })
            .unwrap();
        assert_eq!(oa.updated, ob.updated);
        match (a, b) {
            (Some(a), Some(b)) => {
                // The samples are sorted; adding a constant keeps their order.
                let shifted: Vec<f32> = b.iter().map(|&x| x + lagged).collect();
                assert_eq!(bits(&a), bits(&shifted), "reading {i}");
                seen_without += 1;
            }
            (None, None) => {}
            other => panic!("reading {i}: {other:?}"),
        }
        assert_eq!(with.member_states(), without.member_states());
    }
    assert_eq!(seen_without, z.len() - LAG as usize - 1);
    // Horizons within the lag: each the forecast of `u` plus the value one lag back.
    let horizons: Vec<f64> = (0..LAG as usize).map(|j| year(z.len() + j)).collect();
    let (mut a, mut b) = (Vec::new(), Vec::new());
    with.forecast_with(&horizons, |_, _, s, _| a.push(s.to_vec()))
        .unwrap();
    without
        .forecast_with(&horizons, |_, _, s, _| b.push(s.to_vec()))
        .unwrap();
    for (j, (sa, sb)) in a.iter().zip(&b).enumerate() {
        let lagged = z[z.len() + j - LAG as usize];
        let shifted: Vec<f32> = sb.iter().map(|&x| x + lagged).collect();
        assert_eq!(bits(sa), bits(&shifted), "horizon {j}");
    }
    // The summaries too, through `forecast` (user units = model units here).
    let mut out = vec![0.0f64; LAG as usize * 4];
    with.forecast(&horizons, &mut out).unwrap();
    let mut sorted = a[1].clone();
    sorted.sort_by(f32::total_cmp);
    let mean = sorted.iter().map(|&v| f64::from(v)).sum::<f64>() / sorted.len() as f64;
    assert_eq!(out[4].to_bits(), f64::from(mean as f32).to_bits());
    // Beyond the lag: a typed error, nothing written, nothing changed.
    let states = with.member_states().map(<[_]>::to_vec);
    let far: Vec<f64> = (0..=LAG as usize).map(|j| year(z.len() + j)).collect();
    let mut out = vec![7.0f64; far.len() * 4];
    assert!(matches!(
        with.forecast(&far, &mut out),
        Err(Error::OutOfRange { .. })
    ));
    assert!(out.iter().all(|&x| x == 7.0));
    assert_eq!(with.member_states().map(<[_]>::to_vec), states);
}

#[test]
fn a_missing_reading_makes_the_one_a_lag_later_unlagged_not_garbage() {
    let model = seeded_model(3);
    let d = deployment(LAG);
    let mut f: F =
        Forecaster::from_parts(model, Sosri, &d, Vecs::new(16, 8).with_history(4)).unwrap();
    let z = series(16);
    for (i, &zi) in z.iter().enumerate() {
        // Reading 6 is missing: reading 10 has no lagged value.
        let value = (i != 6).then_some(f64::from(zi));
        let mut visited = false;
        let o = f
            .observe_with(1871.0 + i as f64, &[value], &mut [], |_, s, _| {
                visited = true;
                assert!(s.iter().all(|x| x.is_finite()));
            })
            .unwrap();
        if i == 10 {
            assert_eq!(
                (o.unlagged, o.checked, o.updated, visited),
                (1, 0, false, false)
            );
        } else if i > LAG as usize {
            assert_eq!(o.unlagged, 0, "reading {i}");
            assert!(visited, "reading {i}");
        }
        if i == 13 {
            // Horizon 1 (reading 14) lags reading 10: known; horizons from reading 10's
            // slot onwards after 14 readings: reading 14 + 2 = 16 lags 12, known.
            let mut out = [0.0f64; 8];
            f.forecast(&[1885.0, 1886.0], &mut out).unwrap();
        }
    }
    // After reading 15, horizon 0 is reading 16 (lag 12, known) ... all known: fine.
    let mut out = [0.0f64; 4 * 4];
    f.forecast(&[1887.0, 1888.0, 1889.0, 1890.0], &mut out)
        .unwrap();
    // A series whose last-but-three reading is missing: the horizon that lags it fails.
    let mut g: F =
        Forecaster::from_parts(model, Sosri, &d, Vecs::new(16, 8).with_history(4)).unwrap();
    for (i, &zi) in z.iter().enumerate() {
        let value = (i != z.len() - 3).then_some(f64::from(zi));
        g.observe(1871.0 + i as f64, &[value]).unwrap();
    }
    let mut out = [5.0f64; 3 * 4];
    let e = g.forecast(&[1887.0, 1888.0, 1889.0], &mut out).unwrap_err();
    assert!(matches!(e, Error::NonFinite { index: 0, .. }), "{e:?}");
    assert!(out.iter().all(|&x| x == 5.0));
    let mut out = [0.0f64; 4];
    g.forecast(&[1887.0], &mut out).unwrap();
}

#[test]
fn bad_lags_are_typed_errors_and_change_nothing() {
    let model = seeded_model(2);
    // The file refuses nothing here: lag 0 is "no section". The forecaster refuses a lag
    // its history cannot hold, a buffer type without history (Arrays), and lag 0.
    let d = deployment(LAG);
    let small: Result<F, _> =
        Forecaster::from_parts(model, Sosri, &d, Vecs::new(8, 4).with_history(3));
    assert!(matches!(small, Err(Error::OutOfRange { .. })));
    let none: Result<F, _> = Forecaster::from_parts(model, Sosri, &d, Vecs::new(8, 4));
    assert!(matches!(none, Err(Error::OutOfRange { .. })));
    let arrays: Result<Forecaster<Seed, Sosri, 1, 1, Arrays<1, 8, 4>>, _> =
        Forecaster::from_parts(model, Sosri, &d, Arrays::new());
    assert!(matches!(arrays, Err(Error::OutOfRange { .. })));
    let plain: F = Forecaster::from_parts(
        model,
        Sosri,
        &deployment(0),
        Vecs::new(8, 4).with_history(8),
    )
    .unwrap();
    assert_eq!(plain.seasonal_lag(), 0);
    assert!(matches!(
        plain.clone().with_seasonal_lag(0),
        Err(Error::OutOfRange { .. })
    ));
    assert!(matches!(
        plain.clone().with_seasonal_lag(9),
        Err(Error::OutOfRange { .. })
    ));
    // After a reading the lag cannot be set (the history would not match the readings).
    let mut started = plain.clone();
    started.observe(1871.0, &[Some(0.5)]).unwrap();
    assert!(matches!(
        started.with_seasonal_lag(2),
        Err(Error::OutOfRange { .. })
    ));
    // A non-finite reading is refused as without a difference, the history unchanged.
    let mut f: F =
        Forecaster::from_parts(model, Sosri, &d, Vecs::new(8, 4).with_history(4)).unwrap();
    for (i, z) in series(6).into_iter().enumerate() {
        f.observe(1871.0 + i as f64, &[Some(f64::from(z))]).unwrap();
    }
    let before = f.clone();
    assert!(f.observe(1880.0, &[Some(f64::NAN)]).is_err());
    assert!(f.observe(1880.0, &[Some(f64::INFINITY)]).is_err());
    let (mut a, mut b) = ([0.0f64; 8], [0.0f64; 8]);
    f.forecast(&[1880.0, 1881.0], &mut a).unwrap();
    before.clone().forecast(&[1880.0, 1881.0], &mut b).unwrap();
    assert_eq!(a.map(f64::to_bits), b.map(f64::to_bits));
}

#[test]
fn the_model_file_round_trips_the_lag_and_files_without_it_are_unchanged() {
    let model = seeded_model(2);
    let bytes = file::to_vec(&model, &deployment(12)).unwrap();
    let plain = file::to_vec(&model, &deployment(0)).unwrap();
    assert_eq!(
        bytes.len(),
        plain.len() + 8 + 4,
        "SDIF: header, lag, reserved"
    );
    assert_eq!(bytes.len(), file::encoded_len::<Seed>(&deployment(12)));
    let f = ModelFile::parse(&bytes).unwrap();
    assert_eq!(f.seasonal_lag(), 12);
    assert_eq!(f.section(file::tag::DIFFERENCE), Some(&[12u8, 0, 0, 0][..]));
    let p = ModelFile::parse(&plain).unwrap();
    assert_eq!(p.seasonal_lag(), 0);
    assert!(p.section(file::tag::DIFFERENCE).is_none());
    // The section is the last before the checksum.
    let at = bytes.len() - 4 - 4;
    assert_eq!(&bytes[at - 8..at - 4], b"SDIF");
    // Everything before it is the file without the section, but the total length.
    assert_eq!(&bytes[..12], &plain[..12]);
    assert_eq!(&bytes[16..at - 8], &plain[16..plain.len() - 4]);
    // A lag of 0 or non-zero reserved bytes in the section are refused (CRC fixed up).
    for (offset, byte) in [(0usize, 0u8), (2, 1), (3, 1)] {
        let mut b = bytes.clone();
        if offset == 0 {
            b[at] = 0;
            b[at + 1] = 0;
        } else {
            b[at + offset] = byte;
        }
        crate::model_file::fix_crc(&mut b);
        assert_eq!(
            ModelFile::parse(&b).err(),
            Some(WeightsError::BadSection(file::tag::DIFFERENCE).into())
        );
    }
}

mod fit_csv_difference {
    use crate::examples::{fit_csv, fit_csv_settings as settings_of, temp_dir};
    use fit_csv::{seasonal_lag, DifferenceKind};

    #[test]
    fn the_lag_is_a_whole_number_of_rows_and_bad_combinations_are_one_line_errors() {
        assert_eq!(seasonal_lag(12.0, 1.0), Some(12));
        assert_eq!(seasonal_lag(1.0, 0.25), Some(4)); // quarterly, a year
        assert_eq!(seasonal_lag(52.18, 1.0), Some(52)); // weekly CO2: 52 weeks
        assert_eq!(seasonal_lag(10.47, 1.0), None); // sunspots' cycle
        assert_eq!(seasonal_lag(1.0, 1.0), None);
        assert_eq!(seasonal_lag(f64::NAN, 1.0), None);
        let s = settings_of(&[]).unwrap();
        assert_eq!(s.difference, DifferenceKind::Auto);
        let s = settings_of(&["--difference", "seasonal", "--period", "12"]).unwrap();
        assert_eq!(s.difference, DifferenceKind::Seasonal);
        for (args, says) in [
            (
                &["--difference", "seasonal", "--period", "none"][..],
                "--difference seasonal needs a period",
            ),
            (
                &["--difference", "seasonal", "--noise", "learned"],
                "--difference seasonal: only with --noise none",
            ),
        ] {
            let e = settings_of(args).unwrap_err();
            assert!(e.starts_with(says), "{args:?}: {e}");
            assert!(!e.contains('\n'), "one line: {e}");
        }
        assert!(settings_of(&["--difference", "yearly"]).is_err());
        assert!(settings_of(&["--difference", "none", "--model", "m.tsm"]).is_err());
    }

    /// A quarterly series (times in years) whose season's amplitude grows: 4 rows a year.
    fn growing_season_csv(rows: usize) -> String {
        let mut s = String::from("year,x\n");
        let mut r = 99u64;
        for i in 0..rows {
            r = r
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let e = ((r >> 33) as f64 / (1u64 << 31) as f64) - 0.5;
            let season = [1.0, -0.4, 0.2, -0.8][i % 4];
            let x = 20.0 + season * (2.0 + 0.15 * i as f64) + 0.3 * e;
            s.push_str(&format!("{},{x:.4}\n", 1960.0 + i as f64 / 4.0));
        }
        s
    }

    #[test]
    fn a_seasonal_difference_is_written_into_the_model_file_and_forecasts_with_it() {
        let dir = temp_dir("difference");
        let path = dir.join("growing.csv");
        std::fs::write(&path, growing_season_csv(100)).unwrap();
        let settings = fit_csv::Settings {
            iterations: 60,
            eval_trajectories: 100,
            holdout: 12,
            horizon: 3,
            periods: vec![(1.0, false)],
            difference: DifferenceKind::Seasonal,
            ..fit_csv::Settings::default()
        };
        let out = dir.join("seasonal");
        let s = fit_csv::run(&path, &settings, &out, false).unwrap();
        assert_eq!(s.lag, 4);
        let bytes = std::fs::read(out.join("fit_csv.tsm")).unwrap();
        let file = tinysde::forecast::file::ModelFile::parse(&bytes).unwrap();
        assert_eq!(file.seasonal_lag(), 4);
        // The mean under the difference is a level only (`--mean auto`).
        assert_eq!(s.trends.len(), 1);
        assert_eq!((s.trends[0].harmonics, s.trends[0].slope), (0, 0.0));
        // Forecasting with the saved file gives the same held-out scores.
        let again = fit_csv::Settings {
            start: fit_csv::Start::Forecast(out.join("fit_csv.tsm")),
            ..settings.clone()
        };
        let a = fit_csv::run(&path, &again, &dir.join("again"), false).unwrap();
        assert_eq!(a.holdout_crps, s.holdout_crps);
        assert_eq!(a.lag, 4);
        // A horizon past the lag is a one-line data error, nothing written.
        let far = fit_csv::Settings {
            horizon: 5,
            ..settings.clone()
        };
        let e = fit_csv::run(&path, &far, &dir.join("far"), false).unwrap_err();
        assert!(e.contains("at most 4 rows"), "{e}");
        assert!(!dir.join("far").join("fit_csv.tsm").exists());
        // A period of a fractional number of rows cannot be differenced.
        let odd = fit_csv::Settings {
            periods: vec![(2.6, false)],
            ..settings.clone()
        };
        let e = fit_csv::run(&path, &odd, &dir.join("odd"), false).unwrap_err();
        assert!(e.contains("whole number"), "{e}");
        assert!(!e.contains('\n'));
    }
}
