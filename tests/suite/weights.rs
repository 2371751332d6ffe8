//! The weights format: bit-exact round trips, and refusal of every truncation, every
//! single-bit corruption and every mismatched model, with the model left untouched.

use proptest::prelude::*;
use tinysde::nn::{
    Cube, Dense, FastSigmoid, FastTanh, Identity, InitScheme, Parameters, Pow, Sigmoid, Tanh,
};
use tinysde::sde::NeuralSde;
use tinysde::weights::{self, Describe};
use tinysde::{Error, WeightsError};

type Drift = (Cube<1>, Dense<1, 20, FastTanh>, Dense<20, 1, Identity>);
type Diffusion = (Dense<1, 20, FastSigmoid>, Dense<20, 1, Identity>);
type Seed = NeuralSde<Drift, Diffusion>;

fn description<M: Describe>() -> String {
    let mut v = Vec::new();
    M::describe(&mut |b| v.extend_from_slice(b));
    String::from_utf8(v).unwrap()
}

fn seeded_model(seed: u64) -> Seed {
    let mut m = Seed::default();
    m.init(
        &mut tinysde::noise::rng_from_seed(seed),
        InitScheme::GlorotUniform,
    )
    .unwrap();
    // Non-zero biases too, so every parameter position carries a distinct value.
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

fn encode<M: Describe>(m: &M) -> Vec<u8> {
    let mut buf = vec![0u8; weights::encoded_len::<M>()];
    let n = weights::write(m, &mut buf).unwrap();
    assert_eq!(n, buf.len());
    buf
}

fn params<M: Parameters>(m: &M) -> Vec<u32> {
    let mut p = vec![0.0; M::PARAMS];
    m.read_params(&mut p).unwrap();
    p.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn description_is_canonical() {
    assert_eq!(
        description::<Seed>(),
        "neural_sde(chain(pow(1,3),dense(1,20,fast_tanh),dense(20,1,identity)),\
         chain(dense(1,20,fast_sigmoid),dense(20,1,identity)))"
    );
    assert_eq!(description::<Pow<12, -2>>(), "pow(12,-2)");
    assert_eq!(
        description::<(Dense<2, 3, Tanh>, Dense<3, 4, Tanh>, Dense<4, 5, Tanh>, Dense<5, 6, Tanh>, Dense<6, 7, Identity>, Cube<7>)>(),
        "chain(dense(2,3,tanh),dense(3,4,tanh),dense(4,5,tanh),dense(5,6,tanh),dense(6,7,identity),pow(7,3))"
    );
    assert_eq!(
        weights::description_len::<Seed>(),
        description::<Seed>().len()
    );
}

#[test]
fn visiting_order_matches_parameters_order() {
    let m = seeded_model(3);
    let mut visited = Vec::new();
    m.visit_params(&mut |x| visited.push(x.to_bits()));
    assert_eq!(visited, params(&m));

    // And writing through visit_params_mut puts value i at flat index i.
    let mut m2 = Seed::default();
    let mut i = 0.0f32;
    m2.visit_params_mut(&mut |p| {
        *p = i;
        i += 1.0;
    });
    let expect: Vec<u32> = (0..Seed::PARAMS).map(|i| (i as f32).to_bits()).collect();
    assert_eq!(params(&m2), expect);
}

#[test]
fn layout_matches_the_documented_spec() {
    let layer = Dense::<1, 2, Identity>::new([[1.5], [-0.0]], [f32::MIN_POSITIVE / 8.0, -2.0]);
    let bytes = encode(&layer);
    let desc = b"dense(1,2,identity)";
    assert_eq!(bytes.len(), 22 + desc.len() + 4 * 4);
    assert_eq!(&bytes[..8], b"TSDEWGT\0");
    assert_eq!(&bytes[8..10], &1u16.to_le_bytes());
    assert_eq!(&bytes[10..14], &(desc.len() as u32).to_le_bytes());
    assert_eq!(&bytes[14..14 + desc.len()], desc);
    let p = 14 + desc.len();
    assert_eq!(&bytes[p..p + 4], &4u32.to_le_bytes());
    let values = [1.5f32, -0.0, f32::MIN_POSITIVE / 8.0, -2.0];
    for (k, v) in values.iter().enumerate() {
        assert_eq!(
            &bytes[p + 4 + 4 * k..p + 8 + 4 * k],
            &v.to_bits().to_le_bytes()
        );
    }
    // The checksum is the standard CRC-32 (reference value of the check string from the
    // CRC catalogue) over everything before it.
    assert_eq!(weights::crc32(b"123456789"), 0xCBF4_3926);
    assert_eq!(weights::crc32(b""), 0);
    let body = bytes.len() - 4;
    assert_eq!(
        &bytes[body..],
        &weights::crc32(&bytes[..body]).to_le_bytes()
    );
}

#[test]
fn crc32_matches_bitwise_reference() {
    // Straightforward bit-at-a-time CRC-32, written independently of the library's
    // nibble table.
    fn reference(data: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in data {
            crc ^= b as u32;
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
    let data: Vec<u8> = (0..1000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    for len in [0, 1, 2, 3, 7, 64, 999, 1000] {
        assert_eq!(
            weights::crc32(&data[..len]),
            reference(&data[..len]),
            "len {len}"
        );
    }
}

#[test]
fn round_trip_is_bit_exact_with_special_values() {
    let mut m = seeded_model(1);
    let mut p = vec![0.0f32; Seed::PARAMS];
    m.read_params(&mut p).unwrap();
    let specials = [
        -0.0,
        0.0,
        f32::MIN_POSITIVE,
        f32::MIN_POSITIVE / 2.0,     // subnormal
        -f32::from_bits(1),          // smallest negative subnormal
        f32::from_bits(0x007F_FFFF), // largest subnormal
        f32::MAX,
        f32::MIN,
        f32::EPSILON,
        1.0 + f32::EPSILON,
    ];
    p[..specials.len()].copy_from_slice(&specials);
    p[Seed::PARAMS - 1] = -0.0;
    m.write_params(&p).unwrap();
    let bytes = encode(&m);
    let mut loaded = Seed::default();
    weights::read_into(&mut loaded, &bytes).unwrap();
    assert_eq!(params(&loaded), params(&m));
    // Writing the loaded model reproduces the same bytes.
    assert_eq!(encode(&loaded), bytes);
}

#[test]
fn inspect_reports_description_and_params() {
    let m = seeded_model(2);
    let bytes = encode(&m);
    let blob = weights::inspect(&bytes).unwrap();
    assert_eq!(blob.description_str().unwrap(), description::<Seed>());
    assert_eq!(blob.param_count(), Seed::PARAMS);
    let stored: Vec<u32> = blob.params().map(f32::to_bits).collect();
    assert_eq!(stored, params(&m));
}

/// Reads into a fresh copy of `original` and checks it is untouched when an error occurs.
fn read_keeps_model_on_error(bytes: &[u8], original: &Seed) -> Result<(), Error> {
    let mut m = *original;
    let r = weights::read_into(&mut m, bytes);
    if r.is_err() {
        assert_eq!(params(&m), params(original), "model modified on error");
    }
    r
}

#[test]
fn every_truncation_is_rejected() {
    let bytes = encode(&seeded_model(4));
    let target = seeded_model(5);
    for len in 0..bytes.len() {
        let err = read_keeps_model_on_error(&bytes[..len], &target).unwrap_err();
        assert_eq!(err, Error::Weights(WeightsError::Truncated), "length {len}");
    }
    assert!(read_keeps_model_on_error(&bytes, &target).is_ok());
}

#[test]
fn trailing_bytes_are_rejected() {
    let mut bytes = encode(&seeded_model(4));
    let n = bytes.len();
    bytes.push(0);
    let err = read_keeps_model_on_error(&bytes, &seeded_model(5)).unwrap_err();
    assert_eq!(
        err,
        Error::Length {
            what: "weights blob",
            expected: n,
            found: n + 1
        }
    );
}

#[test]
fn every_single_bit_flip_is_rejected() {
    let bytes = encode(&seeded_model(6));
    let target = seeded_model(7);
    let desc_end = 14 + weights::description_len::<Seed>();
    for byte in 0..bytes.len() {
        for bit in 0..8 {
            let mut b = bytes.clone();
            b[byte] ^= 1 << bit;
            let err = read_keeps_model_on_error(&b, &target)
                .expect_err(&format!("flip of byte {byte} bit {bit} accepted"));
            let Error::Weights(w) = err else {
                panic!("byte {byte} bit {bit}: unexpected error {err:?}");
            };
            match byte {
                0..=7 => assert_eq!(w, WeightsError::BadMagic),
                8..=9 => assert!(matches!(w, WeightsError::UnsupportedVersion(_))),
                // Length fields: the declared size no longer matches, or the checksum is
                // read from the wrong place.
                10..=13 => assert!(
                    matches!(w, WeightsError::Truncated | WeightsError::Checksum),
                    "{w:?}"
                ),
                _ if (desc_end..desc_end + 4).contains(&byte) => assert!(
                    matches!(w, WeightsError::Truncated | WeightsError::Checksum),
                    "{w:?}"
                ),
                _ => assert_eq!(w, WeightsError::Checksum, "byte {byte} bit {bit}"),
            }
        }
    }
}

#[test]
fn bad_version_is_reported() {
    let mut bytes = encode(&seeded_model(1));
    // (Version 2 is the deployable model file: tests/suite/model_file.rs.)
    bytes[8..10].copy_from_slice(&3u16.to_le_bytes());
    assert_eq!(
        weights::inspect(&bytes).unwrap_err(),
        Error::Weights(WeightsError::UnsupportedVersion(3))
    );
    assert_eq!(
        weights::inspect(b"PNG\x89....").unwrap_err(),
        Error::Weights(WeightsError::BadMagic)
    );
}

/// Loads the seed model's bytes into a model of type `M` and returns the error, checking
/// the model is unchanged.
fn mismatch<M: Describe + Default + PartialEq + core::fmt::Debug>(bytes: &[u8]) -> Error {
    let mut m = M::default();
    // Arbitrary distinctive content.
    let mut k = 0.0;
    m.visit_params_mut(&mut |p| {
        k += 0.5;
        *p = k;
    });
    let before = params(&m);
    let err = weights::read_into(&mut m, bytes).unwrap_err();
    assert_eq!(params(&m), before);
    err
}

#[test]
fn mismatched_models_are_rejected() {
    let bytes = encode(&seeded_model(8));
    let shape = Error::Weights(WeightsError::ShapeMismatch);
    // Another activation.
    type D2 = (Cube<1>, Dense<1, 20, Tanh>, Dense<20, 1, Identity>);
    assert_eq!(mismatch::<NeuralSde<D2, Diffusion>>(&bytes), shape);
    type G2 = (Dense<1, 20, Sigmoid>, Dense<20, 1, Identity>);
    assert_eq!(mismatch::<NeuralSde<Drift, G2>>(&bytes), shape);
    // Another width.
    type D3 = (Cube<1>, Dense<1, 21, FastTanh>, Dense<21, 1, Identity>);
    assert_eq!(mismatch::<NeuralSde<D3, Diffusion>>(&bytes), shape);
    // Same parameter count, other order (drift and diffusion swapped: 61 + 61 params).
    type Swapped = NeuralSde<Diffusion, Drift>;
    assert_eq!(Swapped::PARAMS, Seed::PARAMS);
    assert_eq!(mismatch::<Swapped>(&bytes), shape);
    // Missing feature map: same parameters, different meaning.
    type NoCube = (Dense<1, 20, FastTanh>, Dense<20, 1, Identity>);
    assert_eq!(mismatch::<NeuralSde<NoCube, Diffusion>>(&bytes), shape);
    // Another power.
    type Sq = (Pow<1, 2>, Dense<1, 20, FastTanh>, Dense<20, 1, Identity>);
    assert_eq!(mismatch::<NeuralSde<Sq, Diffusion>>(&bytes), shape);
    // A sub-network alone.
    assert_eq!(mismatch::<Drift>(&bytes), shape);
}

#[test]
fn count_mismatch_with_matching_description_is_rejected() {
    // A blob whose description matches but whose count is altered (checksum recomputed).
    let bytes = encode(&seeded_model(9));
    let desc_end = 14 + weights::description_len::<Seed>();
    let mut b = bytes[..bytes.len() - 8].to_vec(); // drop the last parameter and the crc
    b[desc_end..desc_end + 4].copy_from_slice(&((Seed::PARAMS - 1) as u32).to_le_bytes());
    let crc = weights::crc32(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    let err = read_keeps_model_on_error(&b, &seeded_model(1)).unwrap_err();
    assert_eq!(
        err,
        Error::Weights(WeightsError::ParamCount {
            expected: Seed::PARAMS as u32,
            found: Seed::PARAMS as u32 - 1
        })
    );
}

#[test]
fn non_finite_parameters_are_rejected() {
    let bytes = encode(&seeded_model(10));
    let p0 = 18 + weights::description_len::<Seed>();
    for (k, bad) in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY]
        .into_iter()
        .enumerate()
    {
        let mut b = bytes.clone();
        let at = p0 + 4 * (5 + k);
        b[at..at + 4].copy_from_slice(&bad.to_bits().to_le_bytes());
        let body = b.len() - 4;
        let crc = weights::crc32(&b[..body]);
        b[body..].copy_from_slice(&crc.to_le_bytes());
        let err = read_keeps_model_on_error(&b, &seeded_model(1)).unwrap_err();
        assert_eq!(
            err,
            Error::NonFinite {
                what: "weights parameters",
                index: 5 + k
            }
        );
    }
    // Writing a model with a NaN is refused and leaves the buffer as it was.
    let mut m = seeded_model(1);
    m.drift.1.bias[3] = f32::NAN;
    let mut buf = vec![0xAAu8; weights::encoded_len::<Seed>()];
    let err = weights::write(&m, &mut buf).unwrap_err();
    assert_eq!(
        err,
        Error::NonFinite {
            what: "parameters",
            index: 20 + 3
        }
    );
    assert!(buf.iter().all(|&b| b == 0xAA));
}

#[test]
fn short_buffer_is_refused_untouched() {
    let m = seeded_model(1);
    let n = weights::encoded_len::<Seed>();
    let mut buf = vec![0x55u8; n - 1];
    assert_eq!(
        weights::write(&m, &mut buf).unwrap_err(),
        Error::Length {
            what: "weights buffer",
            expected: n,
            found: n - 1
        }
    );
    assert!(buf.iter().all(|&b| b == 0x55));
    // A longer buffer is fine; bytes past the blob are left alone.
    let mut big = vec![0x55u8; n + 10];
    assert_eq!(weights::write(&m, &mut big).unwrap(), n);
    assert!(big[n..].iter().all(|&b| b == 0x55));
    assert!(weights::read_into(&mut Seed::default(), &big[..n]).is_ok());
}

#[cfg(feature = "std")]
#[test]
fn save_and_load_files() {
    let dir = std::env::temp_dir().join(format!("tinysde-weights-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("model.tsw");
    let m = seeded_model(12);
    weights::save(&m, &path).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), weights::to_vec(&m).unwrap());
    assert!(!dir.join("model.tsw.tmp").exists());
    let mut loaded = Seed::default();
    weights::load(&mut loaded, &path).unwrap();
    assert_eq!(params(&loaded), params(&m));
    // A mismatched model: InvalidData wrapping the typed error.
    let mut other = NeuralSde::<Diffusion, Drift>::default();
    let err = weights::load(&mut other, &path).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    assert_eq!(
        err.get_ref().and_then(|e| e.downcast_ref::<Error>()),
        Some(&Error::Weights(WeightsError::ShapeMismatch))
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn proptest_round_trip(bits in proptest::collection::vec(any::<u32>(), Seed::PARAMS)) {
        // Any finite bit pattern (including -0.0 and subnormals) survives exactly.
        let values: Vec<f32> = bits
            .iter()
            .map(|&b| { let x = f32::from_bits(b); if x.is_finite() { x } else { f32::from_bits(b & 0x807F_FFFF) } })
            .collect();
        let mut m = Seed::default();
        m.write_params(&values).unwrap();
        let bytes = encode(&m);
        let mut loaded = Seed::default();
        weights::read_into(&mut loaded, &bytes).unwrap();
        let got: Vec<u32> = params(&loaded);
        let want: Vec<u32> = values.iter().map(|x| x.to_bits()).collect();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn proptest_random_corruption_rejected(seed in any::<u64>(), pos in any::<prop::sample::Index>(), byte in 1u8..=255) {
        let bytes = encode(&seeded_model(seed % 1000));
        let mut b = bytes.clone();
        let i = pos.index(b.len());
        b[i] ^= byte; // any non-zero change of one byte
        let mut m = seeded_model(1);
        let before = params(&m);
        prop_assert!(weights::read_into(&mut m, &b).is_err());
        prop_assert_eq!(params(&m), before);
    }
}
