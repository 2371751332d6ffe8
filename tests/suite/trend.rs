//! The deterministic mean under the SDE (`tinysde::forecast::file::Trend`, issue 22): its
//! `f32` evaluation against `f64` trigonometry, the least-squares fit of `fit_csv`
//! (examples/common/mean.rs) on a synthetic trend + season + AR(1) series, the forecaster
//! with a mean equal to the forecaster on the residuals plus the mean bit for bit, the
//! model file's round trip and bad input, and files without a mean unchanged.

use crate::common::mean::{self, Terms};
use crate::model_file::{nile_deployment, seeded_model, Seed};
use tinysde::forecast::file::{self, Column, Deployment, ModelFile, Transform, Trend};
use tinysde::forecast::{Arrays, Forecaster};
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

fn season(level: f32, slope: f32, period: f32, coefficients: &[[f32; 2]]) -> Trend {
    let mut t = Trend {
        level,
        slope,
        period,
        harmonics: coefficients.len() as u8,
        ..Trend::NONE
    };
    t.coefficients[..coefficients.len()].copy_from_slice(coefficients);
    t
}

#[test]
fn the_mean_is_its_formula_within_f32_rounding() {
    let t = season(0.3, -0.01, 12.0, &[[1.0, -0.5], [0.25, 0.75], [0.1, 0.0]]);
    let mut worst = 0.0f64;
    for i in -4000..4000 {
        let tau = i as f32 * 0.173;
        let x = 2.0 * std::f64::consts::PI * f64::from(tau) / 12.0;
        let exact = 0.3 - 0.01 * f64::from(tau)
            + (1.0 * x.sin() - 0.5 * x.cos())
            + (0.25 * (2.0 * x).sin() + 0.75 * (2.0 * x).cos())
            + 0.1 * (3.0 * x).sin();
        worst = worst.max((f64::from(t.at(tau)) - exact).abs());
    }
    // f32 phase reduction of tau up to 700 (7e-5 turns of rounding at most) dominates.
    assert!(worst < 2e-4, "worst deviation {worst}");
    // Near tau = 0 the phase is exact and the polynomials are within a few ulp.
    for i in 0..1000 {
        let tau = i as f32 * 0.012;
        let x = 2.0 * std::f64::consts::PI * f64::from(tau) / 12.0;
        let exact = 0.3 - 0.01 * f64::from(tau)
            + (x.sin() - 0.5 * x.cos())
            + (0.25 * (2.0 * x).sin() + 0.75 * (2.0 * x).cos())
            + 0.1 * (3.0 * x).sin();
        assert!((f64::from(t.at(tau)) - exact).abs() < 2e-6, "tau {tau}");
    }
    assert_eq!(Trend::NONE.at(-3.5).to_bits(), 0.0f32.to_bits());
    assert_eq!(Trend::NONE.at(7.0).to_bits(), 0.0f32.to_bits());
}

/// `n` rows of `0.5 + 0.02 tau + 1.5 sin + 0.8 cos (period 12) + 0.4 sin(2.) + u`, `u` an
/// AR(1) with coefficient 0.6 and innovations N(0, 0.3^2) from a fixed generator.
fn synthetic(n: usize) -> (Vec<f32>, Vec<f32>, Trend) {
    let truth = season(0.5, 0.02, 12.0, &[[1.5, 0.8], [0.4, 0.0]]);
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut normal = || {
        // Box-Muller on a xorshift generator.
        let mut uniform = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        };
        let (a, b) = (uniform(), uniform());
        (-2.0 * a.ln()).sqrt() * (2.0 * std::f64::consts::PI * b).cos()
    };
    let mut u = 0.0f64;
    let (mut taus, mut values) = (Vec::new(), Vec::new());
    for i in 0..n {
        u = 0.6 * u + 0.3 * normal();
        let tau = i as f32;
        taus.push(tau);
        values.push(truth.at(tau) + u as f32);
    }
    (taus, values, truth)
}

#[test]
fn least_squares_recovers_trend_and_season_under_ar1_noise() {
    let (taus, mut values, truth) = synthetic(600);
    values[17] = f32::NAN; // a missing value is left out
    let terms = Terms {
        slope: true,
        season: Some((12.0, 2)),
    };
    let fit = mean::fit(&terms, &taus, &values).unwrap();
    assert_eq!((fit.harmonics, fit.period), (2, 12.0));
    // Standard errors with AR(1) residuals (sd 0.375, 600 rows): level ~0.06, slope
    // ~2e-4, harmonics ~0.04.
    assert!((fit.level - truth.level).abs() < 0.25, "{fit:?}");
    assert!((fit.slope - truth.slope).abs() < 1e-3, "{fit:?}");
    for (f, t) in fit
        .coefficients
        .iter()
        .flatten()
        .zip(truth.coefficients.iter().flatten())
    {
        assert!((f - t).abs() < 0.15, "{fit:?}");
    }
    // The residuals are the values minus the fitted mean, in f32 as the forecaster has it.
    let r = mean::residuals(&fit, &taus, &values);
    assert_eq!(r[3].to_bits(), (values[3] - fit.at(3.0)).to_bits());
    assert!(r[17].is_nan());
    // Without a season: a line; a season without a period, or too few rows: none.
    let line = mean::fit(
        &Terms {
            slope: true,
            season: None,
        },
        &taus,
        &values,
    )
    .unwrap();
    assert_eq!(line.harmonics, 0);
    assert!((line.slope - truth.slope).abs() < 1e-3);
    let bad = Terms {
        slope: false,
        season: Some((0.0, 2)),
    };
    assert!(mean::fit(&bad, &taus, &values).is_none());
    assert!(mean::fit(&terms, &taus[..5], &values[..5]).is_none());
}

#[test]
fn quarterly_nyquist_harmonic_is_dropped_not_singular() {
    // Period 4 at integer times: the second harmonic's sine is 0 at every row.
    let taus: Vec<f32> = (0..80).map(|i| i as f32).collect();
    let truth = season(1.0, 0.0, 4.0, &[[2.0, -1.0], [0.0, 0.5]]);
    let values: Vec<f32> = taus.iter().map(|&t| truth.at(t)).collect();
    let fit = mean::fit(
        &Terms {
            slope: false,
            season: Some((4.0, 2)),
        },
        &taus,
        &values,
    )
    .unwrap();
    for &t in &taus {
        assert!((fit.at(t) - truth.at(t)).abs() < 1e-4);
    }
}

type F<const N: usize> = Forecaster<Seed, Sosri, 1, 1, Arrays<1, N, 4>>;

fn deployment(trends: &'static [Trend]) -> Deployment<'static> {
    Deployment {
        trends,
        ..nile_deployment(&UNIT)
    }
}

static TREND: [Trend; 1] = [Trend {
    level: 0.4,
    slope: 0.05,
    period: 11.0,
    harmonics: 2,
    coefficients: [[0.7, -0.3], [0.2, 0.1], [0.0; 2], [0.0; 2]],
}];

#[test]
fn a_forecaster_with_a_mean_is_the_one_on_residuals_plus_the_mean_bit_for_bit() {
    let model = seeded_model(5);
    let bytes = file::to_vec(&model, &deployment(&TREND)).unwrap();
    let parsed = ModelFile::parse(&bytes).unwrap();
    let mut with: F<32> = Forecaster::new(Seed::default(), Sosri, &parsed, Arrays::new()).unwrap();
    let mut parts: F<32> =
        Forecaster::from_parts(model, Sosri, &deployment(&TREND), Arrays::new()).unwrap();
    let mut without: F<32> =
        Forecaster::from_parts(model, Sosri, &deployment(&[]), Arrays::new()).unwrap();
    let t = &TREND[0];
    let tau = |year: f64| (year - 1871.0) as f32;
    for (i, year) in [1871.0, 1872.0, 1873.5, 1875.0, 1876.0, 1880.0]
        .into_iter()
        .enumerate()
    {
        let z = 0.3 * (i as f32) - 0.5 + t.at(tau(year));
        // The same reading as a residual for the forecaster without the mean.
        let residual = z - t.at(tau(year));
        let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
        with.observe_with(year, &[Some(f64::from(z))], &mut [], |_, s, _| {
            a = s.to_vec()
        })
        .unwrap();
        parts
            .observe_with(year, &[Some(f64::from(z))], &mut [], |_, s, _| {
                c = s.to_vec()
            })
            .unwrap();
        without
            .observe_with(year, &[Some(f64::from(residual))], &mut [], |_, s, _| {
                b = s.to_vec()
            })
            .unwrap();
        let m = t.at(tau(year));
        let shifted: Vec<u32> = b.iter().map(|&x| (x + m).to_bits()).collect();
        assert_eq!(a.iter().map(|x| x.to_bits()).collect::<Vec<_>>(), shifted);
        assert_eq!(a, c);
        assert_eq!(with.member_states(), without.member_states());
    }
    let horizons = [1880.5, 1882.0, 1890.0];
    let (mut a, mut b) = (Vec::new(), Vec::new());
    with.forecast_with(&horizons, |_, _, s, _| a.push(s.to_vec()))
        .unwrap();
    without
        .forecast_with(&horizons, |_, _, s, _| b.push(s.to_vec()))
        .unwrap();
    for ((sa, sb), &h) in a.iter().zip(&b).zip(&horizons) {
        let m = t.at(tau(h));
        let shifted: Vec<u32> = sb.iter().map(|&x| (x + m).to_bits()).collect();
        assert_eq!(sa.iter().map(|x| x.to_bits()).collect::<Vec<_>>(), shifted);
    }
}

#[test]
fn the_model_file_round_trips_the_mean_and_refuses_bad_ones() {
    let model = seeded_model(2);
    let bytes = file::to_vec(&model, &deployment(&TREND)).unwrap();
    let plain = file::to_vec(&model, &deployment(&[])).unwrap();
    assert_eq!(
        bytes.len(),
        plain.len() + 8 + 2 + 14 + 8 * 2,
        "TRND: header, count, one column with two harmonics"
    );
    assert_eq!(bytes.len(), file::encoded_len::<Seed>(&deployment(&TREND)));
    let f = ModelFile::parse(&bytes).unwrap();
    assert!(f.has_trend());
    assert_eq!(f.trend(0), Some(TREND[0]));
    assert_eq!(f.trend(1), None);
    // Without a mean: no section, NONE, and the bytes of a deployment without the field.
    let p = ModelFile::parse(&plain).unwrap();
    assert!(!p.has_trend() && p.section(file::tag::TREND).is_none());
    assert_eq!(p.trend(0), Some(Trend::NONE));

    // Bad means are refused when writing (typed, nothing written) ...
    let mut buf = vec![0xAAu8; bytes.len()];
    let no_period = [Trend {
        period: 0.0,
        ..TREND[0]
    }];
    let nan = [Trend {
        slope: f32::NAN,
        ..TREND[0]
    }];
    let mut stray = TREND;
    stray[0].coefficients[3] = [1.0, 0.0];
    let too_many = [Trend {
        harmonics: 5,
        ..TREND[0]
    }];
    let two = [TREND[0], TREND[0]];
    for bad in [&no_period[..], &nan, &stray, &too_many, &two] {
        let d = Deployment {
            trends: bad,
            ..deployment(&[])
        };
        assert!(
            matches!(
                file::write(&model, &d, &mut buf),
                Err(Error::OutOfRange { .. })
            ),
            "{bad:?}"
        );
        assert!(buf.iter().all(|&b| b == 0xAA));
        let r: Result<F<8>, _> = Forecaster::from_parts(model, Sosri, &d, Arrays::new());
        assert!(matches!(r, Err(Error::OutOfRange { .. })));
    }
    // ... and when reading: a period of 0 with harmonics, a NaN slope (CRC fixed up).
    let at = bytes.len() - 4 - (2 + 14 + 16);
    assert_eq!(&bytes[at - 8..at - 4], b"TRND");
    for (offset, value) in [(2usize, 0.0f32), (10, f32::NAN)] {
        let mut b = bytes.clone();
        let i = at + 2 + offset;
        b[i..i + 4].copy_from_slice(&value.to_le_bytes());
        crate::model_file::fix_crc(&mut b);
        assert_eq!(
            ModelFile::parse(&b).err(),
            Some(WeightsError::BadSection(file::tag::TREND).into())
        );
    }
}

mod fit_csv_mean {
    use crate::examples::{fit_csv, fit_csv_settings as settings_of};
    use fit_csv::{is_calendar, Detected, MeanKind};

    #[test]
    fn auto_puts_only_calendar_seasons_in_the_mean() {
        let d = |lags: f64, period: f64| Detected {
            period,
            lags,
            acf: 0.5,
        };
        let number = crate::common::csv::TimeFormat::Number;
        let date = crate::common::csv::TimeFormat::Date;
        assert!(is_calendar(&d(12.0, 1.0), number)); // monthly data, a year of 12 rows
        assert!(is_calendar(&d(4.0, 4.0), number));
        assert!(!is_calendar(&d(10.47, 10.47), number)); // sunspots' cycle
                                                         // Weekly dates: 52.18 rows, snapped to a year by the detection.
        assert!(is_calendar(&d(52.18, 365.2425 * 86_400.0), date));
        assert!(!is_calendar(&d(52.18, 52.18 * 7.0 * 86_400.0), date));
        // The command line: auto by default, each kind by name, harmonics 1 to 4.
        let s = settings_of(&[]).unwrap();
        assert_eq!((s.mean, s.harmonics), (MeanKind::Auto, 3));
        let s = settings_of(&["--mean", "full", "--harmonics", "2"]).unwrap();
        assert_eq!((s.mean, s.harmonics), (MeanKind::Full, 2));
        assert!(settings_of(&["--harmonics", "5"]).is_err());
        assert!(settings_of(&["--mean", "cubic"]).is_err());
        assert!(settings_of(&["--mean", "none", "--model", "m.tsm"]).is_err());
    }
}
