//! The deployable model file (weights format version 2): round trips, version 1 files,
//! refusal of every truncation and every single-byte change (typed error, no panic), the
//! documented numbers computed from the real types.

use tinysde::forecast::file::{
    self, tag, Column, Defaults, Deployment, ModelFile, SolverSpec, TimeAxis, TimeFormat, Transform,
};
use tinysde::nn::{Cube, Dense, FastSigmoid, FastTanh, Identity, InitScheme, Parameters};
use tinysde::sde::NeuralSde;
use tinysde::weights::{self, Describe};
use tinysde::{Error, WeightsError};

type Drift = (Cube<1>, Dense<1, 20, FastTanh>, Dense<20, 1, Identity>);
type Diffusion = (Dense<1, 20, FastSigmoid>, Dense<20, 1, Identity>);
/// The seed task's model, and fit_csv's on one column.
pub type Seed = NeuralSde<Drift, Diffusion>;

/// A seed model with distinct non-zero parameters.
pub fn seeded_model(seed: u64) -> Seed {
    let mut m = Seed::default();
    m.init(
        &mut tinysde::noise::rng_from_seed(seed),
        InitScheme::GlorotUniform,
    )
    .unwrap();
    let mut p = vec![0.0; Seed::PARAMS];
    m.read_params(&mut p).unwrap();
    for (i, x) in p.iter_mut().enumerate() {
        if *x == 0.0 {
            *x = 0.01 * (i as f32 + 1.0);
        }
    }
    m.write_params(&p).unwrap();
    m
}

/// The Nile-like columns of a one-column deployment.
pub const NILE: [Column<'static>; 1] = [Column {
    name: "flow",
    transform: Transform::Affine,
    mean: 919.35,
    std: 168.2,
    state_index: 0,
    noise: 0.0,
}];

/// A one-column deployment (the seed model on the Nile series' scaling).
pub fn nile_deployment(columns: &'static [Column<'static>]) -> Deployment<'static> {
    Deployment {
        state_dim: 1,
        columns,
        time: TimeAxis {
            name: "year",
            format: TimeFormat::Number,
            t0: 1871.0,
            unit: 1.0,
        },
        solver: SolverSpec {
            method: "SOSRI",
            max_step: 0.5,
        },
        defaults: Defaults::new(32, 0xC5F, &[0.05, 0.5, 0.95]).unwrap(),
        trends: &[],
        seasonal_lag: 0,
    }
}

fn description<M: Describe>() -> String {
    let mut v = Vec::new();
    M::describe(&mut |b| v.extend_from_slice(b));
    String::from_utf8(v).unwrap()
}

#[test]
fn doc_numbers_match_the_real_type() {
    let doc = include_str!("../../docs/weights-format.md");
    let l = weights::description_len::<Seed>();
    let n = Seed::PARAMS;
    let total = weights::encoded_len::<Seed>();
    assert_eq!(l, description::<Seed>().len());
    assert_eq!(total, 22 + l + 4 * n);
    let v1 = format!(
        "(`L` = {l} bytes) and has `N` = {n} parameters, so its file is 22 + {l} + {} = {total} bytes.",
        4 * n
    );
    assert!(doc.contains(&v1), "docs/weights-format.md lacks: {v1}");
    assert!(doc.contains(&description::<Seed>()));
    // Version 2: the size formula and the Nile example.
    let bytes = file::to_vec(&seeded_model(1), &nile_deployment(&NILE)).unwrap();
    let (a, b) = ("flow".len(), "year".len());
    assert_eq!(bytes.len(), 779 + a + b);
    assert_eq!(619, 8 + l + 4 * n);
    assert!(doc.contains("= 779 + a + b` bytes"));
    let nile = format!("{} bytes for the Nile series", bytes.len());
    assert!(doc.contains(&nile), "docs/weights-format.md lacks: {nile}");
}

#[test]
fn round_trip_of_every_section() {
    let model = seeded_model(3);
    let columns = [
        Column {
            name: "temp °C",
            transform: Transform::Log,
            mean: -0.5,
            std: 2.25,
            state_index: 2,
            noise: 0.125,
        },
        Column {
            name: "",
            transform: Transform::Affine,
            mean: 1e300,
            std: f64::MIN_POSITIVE,
            state_index: 0,
            noise: 0.0,
        },
    ];
    let d = Deployment {
        state_dim: 3,
        columns: &columns,
        time: TimeAxis {
            name: "date",
            format: TimeFormat::DateTime,
            t0: -371174400.0,
            unit: 604800.0,
        },
        solver: SolverSpec {
            method: "EulerHeun",
            max_step: 0.25,
        },
        defaults: Defaults::new(500, u64::MAX, &[0.01, 0.05, 0.5, 0.95, 0.99]).unwrap(),
        trends: &[],
        seasonal_lag: 0,
    };
    let bytes = file::to_vec(&model, &d).unwrap();
    assert_eq!(bytes.len(), file::encoded_len::<Seed>(&d));
    assert_eq!(&bytes[..8], b"TSDEWGT\0");
    assert_eq!(u16::from_le_bytes([bytes[8], bytes[9]]), 2);
    assert_eq!(
        u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize,
        bytes.len()
    );
    let n = bytes.len();
    assert_eq!(
        weights::crc32(&bytes[..n - 4]),
        u32::from_le_bytes(bytes[n - 4..].try_into().unwrap())
    );
    let f = ModelFile::parse(&bytes).unwrap();
    assert_eq!(f.version(), 2);
    assert_eq!(f.state_dim(), Some(3));
    assert_eq!(f.column_count(), Some(2));
    assert_eq!(f.column(0), Some(columns[0]));
    assert_eq!(f.column(1), Some(columns[1]));
    assert_eq!(f.column(2), None);
    assert_eq!(f.time(), Some(d.time));
    assert_eq!(f.solver(), Some(d.solver));
    assert_eq!(f.defaults(), Some(d.defaults));
    assert_eq!(
        f.defaults().unwrap().levels(),
        [0.01, 0.05, 0.5, 0.95, 0.99]
    );
    let tags: Vec<[u8; 4]> = f.sections().map(|(t, _)| t).collect();
    assert_eq!(
        tags,
        [
            tag::MODEL,
            tag::STATE,
            tag::COLUMNS,
            tag::TIME,
            tag::SOLVER,
            tag::FORECAST
        ]
    );
    // The MODL payload is the version 1 body.
    let v1 = weights::to_vec(&model).unwrap();
    assert_eq!(f.section(tag::MODEL).unwrap(), &v1[10..v1.len() - 4]);
    let mut loaded = Seed::default();
    f.load_into(&mut loaded).unwrap();
    assert_eq!(loaded, model);
    // weights::read_into stays the version 1 reader (firmware loading version 1 files does
    // not link the version 2 one) and says where version 2 files go; the model is untouched.
    let mut again = Seed::default();
    let err = weights::read_into(&mut again, &bytes).unwrap_err();
    assert_eq!(err, Error::Weights(WeightsError::UnsupportedVersion(2)));
    assert!(err.to_string().contains("ModelFile"), "{err}");
    assert_eq!(again, Seed::default());
}

#[test]
fn version_1_files_still_load_with_the_same_bits() {
    let model = seeded_model(5);
    let v1 = weights::to_vec(&model).unwrap();
    assert_eq!(v1.len(), 633);
    assert_eq!(u16::from_le_bytes([v1[8], v1[9]]), 1);
    let f = ModelFile::parse(&v1).unwrap();
    assert_eq!(f.version(), 1);
    assert_eq!(f.state_dim(), None);
    assert_eq!(f.time(), None);
    assert_eq!(f.sections().count(), 0);
    let mut loaded = Seed::default();
    f.load_into(&mut loaded).unwrap();
    assert_eq!(loaded, model);
    // The committed seed weights load as before.
    let seed = include_bytes!("../../boards/app/model/seed.tsw");
    let f = ModelFile::parse(seed).unwrap();
    assert_eq!(f.version(), 1);
    let mut m = Seed::default();
    f.load_into(&mut m).unwrap();
    assert_eq!(weights::to_vec(&m).unwrap(), seed);
}

fn error_of(bytes: &[u8]) -> Error {
    ModelFile::parse(bytes).unwrap_err()
}

#[test]
fn every_truncation_is_a_typed_error() {
    let bytes = file::to_vec(&seeded_model(1), &nile_deployment(&NILE)).unwrap();
    for len in 0..bytes.len() {
        let e = error_of(&bytes[..len]);
        assert!(
            matches!(
                e,
                Error::Weights(WeightsError::Truncated | WeightsError::BadMagic)
            ),
            "length {len}: {e:?}"
        );
        let mut model = seeded_model(9);
        assert!(weights::read_into(&mut model, &bytes[..len]).is_err());
        assert_eq!(model, seeded_model(9));
    }
    let mut long = bytes.clone();
    long.push(0);
    assert!(matches!(error_of(&long), Error::Length { .. }));
}

#[test]
fn every_single_byte_change_is_a_typed_error() {
    let bytes = file::to_vec(&seeded_model(1), &nile_deployment(&NILE)).unwrap();
    for i in 0..bytes.len() {
        for x in [0x01u8, 0x80, 0xFF] {
            let mut bad = bytes.clone();
            bad[i] ^= x;
            let e = error_of(&bad);
            assert!(
                matches!(e, Error::Weights(_) | Error::Length { .. }),
                "byte {i}: {e:?}"
            );
        }
    }
}

/// A valid file with its sections replaced by `sections` (tag, payload), checksum fixed.
fn with_sections(sections: &[([u8; 4], Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(b"TSDEWGT\0");
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    for (t, p) in sections {
        out.extend_from_slice(t);
        out.extend_from_slice(&(p.len() as u32).to_le_bytes());
        out.extend_from_slice(p);
    }
    let total = (out.len() + 4) as u32;
    out[12..16].copy_from_slice(&total.to_le_bytes());
    let crc = weights::crc32(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

fn sections_of(bytes: &[u8]) -> Vec<([u8; 4], Vec<u8>)> {
    ModelFile::parse(bytes)
        .unwrap()
        .sections()
        .map(|(t, p)| (t, p.to_vec()))
        .collect()
}

#[test]
fn unknown_sections_optional_skipped_critical_refused() {
    let bytes = file::to_vec(&seeded_model(1), &nile_deployment(&NILE)).unwrap();
    let mut s = sections_of(&bytes);
    assert_eq!(with_sections(&s), bytes);
    s.insert(1, (*b"note", b"trained on the Nile".to_vec()));
    let f = with_sections(&s);
    let view = ModelFile::parse(&f).unwrap();
    assert_eq!(view.section(*b"note"), Some(&b"trained on the Nile"[..]));
    assert_eq!(view.column(0), Some(NILE[0]));
    s.push((*b"XTRA", vec![1, 2, 3]));
    assert_eq!(
        error_of(&with_sections(&s)),
        Error::Weights(WeightsError::UnknownSection(*b"XTRA"))
    );
    // A model-only version 2 file is valid; a file without MODL is not.
    let model_only = with_sections(&sections_of(&bytes)[..1]);
    assert_eq!(ModelFile::parse(&model_only).unwrap().state_dim(), None);
    assert_eq!(
        error_of(&with_sections(&sections_of(&bytes)[1..])),
        Error::Weights(WeightsError::MissingSection(tag::MODEL))
    );
    // A section twice.
    let mut twice = sections_of(&bytes);
    twice.push(twice[3].clone());
    assert_eq!(
        error_of(&with_sections(&twice)),
        Error::Weights(WeightsError::BadSection(tag::TIME))
    );
}

#[test]
fn out_of_range_section_values_are_refused() {
    let bytes = file::to_vec(&seeded_model(1), &nile_deployment(&NILE)).unwrap();
    let base = sections_of(&bytes);
    // (section index, byte offset in its payload, new byte, expected tag)
    let cases: &[(usize, usize, u8, [u8; 4])] = &[
        (1, 0, 0, tag::STATE),     // D = 0
        (1, 2, 2, tag::STATE),     // C = 2 > D
        (1, 4, 1, tag::STATE),     // state index 1 >= D
        (1, 6, 1, tag::STATE),     // reserved
        (1, 11, 0xFF, tag::STATE), // noise NaN
        (1, 11, 0xBF, tag::STATE), // noise negative
        (2, 2, 2, tag::COLUMNS),   // transform 2
        (2, 3, 1, tag::COLUMNS),   // reserved
        (3, 0, 3, tag::TIME),      // format 3
        (3, 1, 1, tag::TIME),      // reserved
        (3, 17, 0xFF, tag::TIME),  // unit NaN
        (4, 0, 1, tag::SOLVER),    // unknown step rule
        (4, 5, 0xFF, tag::SOLVER), // h NaN
        (5, 12, 0, tag::FORECAST), // Q = 0
        (5, 0, 0, tag::FORECAST),  // paths = 0
    ];
    for &(section, at, value, tag) in cases {
        let mut s = base.clone();
        s[section].1[at] = value;
        let bytes = with_sections(&s);
        assert_eq!(
            ModelFile::parse(&bytes).unwrap_err(),
            Error::Weights(WeightsError::BadSection(tag)),
            "section {section} byte {at}"
        );
    }
    // Values inside their ranges are accepted: a noise of -0.0 (exact observation), a
    // different positive std.
    for (section, at, value) in [(1usize, 11usize, 0x80u8), (2, 18, 0)] {
        let mut s = base.clone();
        s[section].1[at] = value;
        assert!(ModelFile::parse(&with_sections(&s)).is_ok());
    }
    // std = 0 and negative
    for std in [0.0f64, -1.0, f64::INFINITY] {
        let mut s = base.clone();
        s[2].1[12..20].copy_from_slice(&std.to_le_bytes());
        assert_eq!(
            ModelFile::parse(&with_sections(&s)).unwrap_err(),
            Error::Weights(WeightsError::BadSection(tag::COLUMNS))
        );
    }
    // Levels not increasing
    let mut s = base.clone();
    s[5].1[17..21].copy_from_slice(&0.01f32.to_le_bytes());
    assert_eq!(
        ModelFile::parse(&with_sections(&s)).unwrap_err(),
        Error::Weights(WeightsError::BadSection(tag::FORECAST))
    );
    // COLS without STAT
    let mut s = base.clone();
    s.remove(1);
    assert_eq!(
        ModelFile::parse(&with_sections(&s)).unwrap_err(),
        Error::Weights(WeightsError::MissingSection(tag::STATE))
    );
    // A section longer than the file
    let mut f = with_sections(&base);
    let at = 16 + 8 + base[0].1.len() + 4;
    f[at..at + 4].copy_from_slice(&1000u32.to_le_bytes());
    fix_crc(&mut f);
    assert_eq!(
        error_of(&f),
        Error::Weights(WeightsError::BadSection(tag::STATE))
    );
}

#[test]
fn writer_refuses_bad_deployments_and_short_buffers_untouched() {
    let model = seeded_model(1);
    let good = nile_deployment(&NILE);
    let n = file::encoded_len::<Seed>(&good);
    let mut buf = vec![0xA5u8; n - 1];
    assert!(matches!(
        file::write(&model, &good, &mut buf),
        Err(Error::Length { .. })
    ));
    assert!(buf.iter().all(|&b| b == 0xA5));
    let bad_cols: [&'static [Column<'static>]; 3] = [
        &[],
        &[Column {
            state_index: 1,
            ..NILE[0]
        }],
        &[Column {
            std: 0.0,
            ..NILE[0]
        }],
    ];
    let mut buf = vec![0xA5u8; 2 * n];
    for cols in bad_cols {
        let d = nile_deployment(cols);
        assert!(matches!(
            file::write(&model, &d, &mut buf),
            Err(Error::OutOfRange { .. })
        ));
    }
    let mut d = nile_deployment(&NILE);
    d.solver.max_step = f32::NAN;
    assert!(file::write(&model, &d, &mut buf).is_err());
    let mut d = nile_deployment(&NILE);
    d.time.unit = 0.0;
    assert!(file::write(&model, &d, &mut buf).is_err());
    assert!(Defaults::new(0, 1, &[0.5]).is_err());
    assert!(Defaults::new(1, 1, &[0.5, 0.5]).is_err());
    assert!(Defaults::new(1, 1, &[0.0]).is_err());
    assert!(Defaults::new(1, 1, &[]).is_err());
    let mut nan = seeded_model(1);
    nan.drift.1.bias[3] = f32::NAN;
    assert!(matches!(
        file::write(&nan, &good, &mut buf),
        Err(Error::NonFinite { .. })
    ));
    assert!(buf.iter().all(|&b| b == 0xA5));
}

/// Rewrites the CRC-32 at the end of a model file after a test has edited its body, so
/// that the parser gets past the checksum to the edited section.
pub(crate) fn fix_crc(file: &mut [u8]) {
    let n = file.len();
    let crc = weights::crc32(&file[..n - 4]);
    file[n - 4..].copy_from_slice(&crc.to_le_bytes());
}
