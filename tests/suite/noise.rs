//! The Brownian noise: distribution, independence, reproducibility, and coarsening.

use proptest::prelude::*;
use std::cell::Cell;
use tinysde::nn::ParamSeed;

use tinysde::lanes::Lanes;
use tinysde::noise::{
    fill_standard_normal, normal_from_bits, rng_from_seed, Brownian, Coarsened, Increment,
    NoiseSource, StepSize,
};
use tinysde::solve::{PlanEvent, TimeGrid};
use tinysde::{Error, F32x};

/// Sample mean and (n - 1) variance, in f64.
fn moments(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1.0);
    (mean, var)
}

#[test]
fn normal_sampler_matches_the_standard_normal() {
    let n = 200_000;
    let mut z = vec![0.0f32; n];
    fill_standard_normal(&mut rng_from_seed(1), &mut z);
    let xs: Vec<f64> = z.iter().map(|&x| x as f64).collect();
    let (mean, var) = moments(&xs);
    // Standard errors: 1/sqrt(n) = 0.0022 for the mean, sqrt(2/n) = 0.0032 for the variance.
    assert!(mean.abs() < 0.01, "mean {mean}");
    assert!((var - 1.0).abs() < 0.015, "variance {var}");
    // Tail and central probabilities: P(|Z| > 2) = 0.0455, P(|Z| < 0.5) = 0.3829.
    let tail = xs.iter().filter(|x| x.abs() > 2.0).count() as f64 / n as f64;
    let centre = xs.iter().filter(|x| x.abs() < 0.5).count() as f64 / n as f64;
    assert!((tail - 0.0455).abs() < 0.003, "P(|Z|>2) = {tail}");
    assert!((centre - 0.3829).abs() < 0.006, "P(|Z|<0.5) = {centre}");
    // Fourth moment 3 (kurtosis), standard error ~ sqrt(96/n) = 0.022.
    let m4 = xs.iter().map(|x| (x - mean).powi(4)).sum::<f64>() / n as f64 / (var * var);
    assert!((m4 - 3.0).abs() < 0.1, "kurtosis {m4}");
}

#[test]
fn inverse_cdf_hits_known_normal_quantiles() {
    // Phi^-1 at p = (j + 1/2) / 2^32 against quantiles known to 10 digits.
    let quantile = |p: f64| normal_from_bits((p * 4_294_967_296.0 - 0.5).round() as u32) as f64;
    for (p, z) in [
        (0.5, 0.0),
        (0.6, 0.253_347_102_8),
        (0.841_344_746_1, 1.0),
        (0.975, 1.959_963_985),
        (0.99, 2.326_347_874),
        (0.999, 3.090_232_306),
        (1.0 - 1e-7, 5.199_337_582),
        (0.025, -1.959_963_985),
    ] {
        // The 32-bit grid moves p by at most 1.2e-10: at these p that moves z by < 3e-5.
        assert!(
            (quantile(p) - z).abs()
                <= 2e-6 * (1.0 + z.abs()) + if z.abs() > 4.0 { 3e-5 } else { 0.0 },
            "Phi^-1({p}) = {} vs {z}",
            quantile(p)
        );
    }
    // Monotone across the branch switch and antisymmetric everywhere.
    let mut prev = f32::NEG_INFINITY;
    for j in (0..=u32::MAX).step_by(4099) {
        let z = normal_from_bits(j);
        assert!(z >= prev, "not monotone at {j}");
        assert_eq!(z.to_bits(), (-normal_from_bits(!j)).to_bits());
        prev = z;
    }
    // Phi^-1(2^-33) = -6.338 (from Phi(z) ~ phi(z) (1 - 1/z^2) / |z|).
    assert!((normal_from_bits(0) + 6.338).abs() < 0.005);
}

#[test]
fn increments_have_variance_h_and_dz_is_independent_of_dw() {
    let noise = Brownian::new(2024);
    let h = 0.04f32;
    let (mut dw, mut dz, mut cross) = (Vec::new(), Vec::new(), 0.0f64);
    for m in 0..200 {
        for k in 0..250 {
            let inc = noise.increment::<2>(m, k, h, true).unwrap();
            for c in 0..2 {
                dw.push(inc.dw[c] as f64);
                dz.push(inc.dz[c] as f64);
                cross += inc.dw[c] as f64 * inc.dz[c] as f64;
            }
        }
    }
    let n = dw.len() as f64;
    let (mw, vw) = moments(&dw);
    let (mz, vz) = moments(&dz);
    let h = h as f64;
    assert!(mw.abs() < 4.0 * (h / n).sqrt() && mz.abs() < 4.0 * (h / n).sqrt());
    assert!(
        (vw / h - 1.0).abs() < 0.02 && (vz / h - 1.0).abs() < 0.02,
        "{vw} {vz}"
    );
    let corr = cross / n / h;
    assert!(corr.abs() < 0.01, "corr(dW, dZ) = {corr}");
}

#[test]
fn increments_are_a_pure_function_of_seed_trajectory_and_step() {
    let noise = Brownian::new(9);
    let forward: Vec<_> = (0..50)
        .map(|k| noise.increment::<3>(4, k, 0.1, true).unwrap())
        .collect();
    for k in (0..50).rev() {
        assert_eq!(
            noise.increment::<3>(4, k, 0.1, true).unwrap(),
            forward[k as usize]
        );
    }
    // Fewer channels are a prefix of more channels; dW does not depend on asking for dZ.
    let one = noise.increment::<1>(4, 7, 0.1, false).unwrap();
    assert_eq!(one.dw[0].to_bits(), forward[7].dw[0].to_bits());
    // Different trajectories, steps and seeds differ.
    let other = Brownian::new(10).increment::<3>(4, 0, 0.1, true).unwrap();
    assert_ne!(other.dw, forward[0].dw);
    assert_ne!(
        noise.increment::<3>(5, 0, 0.1, true).unwrap().dw,
        forward[0].dw
    );
}

#[test]
fn coarsened_path_sums_fine_increments_and_rebuilds_the_time_integral() {
    let fine = Brownian::new(77);
    let factor = 8u32;
    let coarse = Coarsened::new(fine, factor).unwrap();
    let h = 0.5f32;
    let hf = h / factor as f32;
    let (mut dzs, mut dws) = (Vec::new(), Vec::new());
    for m in 0..4000 {
        let c = coarse.increment::<1>(m, 3, h, true).unwrap();
        let mut w = 0.0f64;
        let mut integral = 0.0f64;
        for j in 0..factor {
            let f = fine.increment::<1>(m, 3 * factor + j, hf, true).unwrap();
            let (dw, dz) = (f.dw[0] as f64, f.dz[0] as f64);
            integral += hf as f64 * w + hf as f64 * (dw + dz / 3f64.sqrt()) / 2.0;
            w += dw;
        }
        assert!((c.dw[0] as f64 - w).abs() < 1e-5);
        // The coarse I_(1,0) = h (dW + dZ / sqrt 3) / 2 equals the fine-path integral.
        let coarse_integral = h as f64 * (c.dw[0] as f64 + c.dz[0] as f64 / 3f64.sqrt()) / 2.0;
        assert!(
            (coarse_integral - integral).abs() < 1e-5,
            "{coarse_integral} vs {integral}"
        );
        dzs.push(c.dz[0] as f64);
        dws.push(c.dw[0] as f64);
    }
    // The fine increments carry their exact time integrals, so the rebuilt coarse dZ is
    // exactly N(0, h) and independent of dW (standard error of the variance ratio: 2.2%).
    let (_, vz) = moments(&dzs);
    assert!((vz / h as f64 - 1.0).abs() < 0.08, "var dZ {vz} vs {h}");
    let corr = dzs.iter().zip(&dws).map(|(z, w)| z * w).sum::<f64>() / dzs.len() as f64 / h as f64;
    assert!(corr.abs() < 0.06, "corr(dW, dZ) = {corr}");
    assert!(Coarsened::new(fine, 0).is_err());
}

/// AS241 as `normal_from_bits` documents it, with the odd integer `2 j - 2^32 + 1` rounded
/// by a 64-bit integer conversion (the library avoids that conversion on 32-bit cores).
fn normal_from_bits_reference(j: u32) -> f32 {
    let q = (2 * j as i64 - (1i64 << 32) + 1) as f32 * (0.5 / 4_294_967_296.0);
    if q.abs() <= 0.425 {
        let r = 0.180_625 - q * q;
        let num = ((59.109_375 * r + 159.291_13) * r + 50.434_27) * r + 3.387_132_7;
        let den = ((67.187_56 * r + 78.757_76) * r + 17.895_17) * r + 1.0;
        return q * num / den;
    }
    let tail = (if q < 0.0 { j } else { !j }) as f32 + 0.5;
    let r = libm::sqrtf(-libm::logf(tail * (1.0 / 4_294_967_296.0))) - 1.6;
    let z = (((0.170_238_21 * r + 1.306_728_5) * r + 2.756_815_4) * r + 1.423_437_3)
        / ((0.120_211_33 * r + 0.737_001_6) * r + 1.0);
    if q < 0.0 {
        -z
    } else {
        z
    }
}

#[test]
fn normal_from_bits_rounds_like_a_64_bit_integer_conversion() {
    // Every j whose odd integer needs rounding to f32 (|2 j - 2^32 + 1| > 2^24) lies away
    // from the median; walk a stride prime to everything, plus the ends, the branch switch
    // and the neighbourhoods of powers of two where the rounding changes its step.
    let mut js: Vec<u32> = (0..=u32::MAX).step_by(1_009).collect();
    js.extend([0, 1, 2, u32::MAX, u32::MAX - 1, 1 << 31, (1 << 31) - 1]);
    for e in 24..32 {
        for base in [
            (1u32 << 31).wrapping_add(1 << (e - 1)),
            (1u32 << 31).wrapping_sub(1 << (e - 1)),
        ] {
            js.extend((0..600).map(|d| base.wrapping_add(d).wrapping_sub(300)));
        }
    }
    for j in js {
        assert_eq!(
            normal_from_bits(j).to_bits(),
            normal_from_bits_reference(j).to_bits(),
            "j = {j}"
        );
    }
}

#[test]
fn sized_increments_equal_the_plain_ones_and_step_sizes_are_checked() {
    let brownian = Brownian::new(3);
    let coarse = Coarsened::new(brownian, 3).unwrap();
    for h in [1e-6f32, 0.01, 0.1, 1.0 / 3.0, 2.0, 1e5] {
        let size = StepSize::new(h).unwrap();
        assert_eq!(size.sqrt_h().to_bits(), libm::sqrtf(h).to_bits());
        for (m, k) in [(0, 0), (5, 17), (usize::MAX, u32::MAX)] {
            let a = brownian.increment::<2>(m, k, h, true).unwrap();
            let b = brownian.increment_sized::<2>(m, k, size, true).unwrap();
            assert_eq!(a, b);
            // The default method (Coarsened keeps it) forwards to `increment`.
            let k = k.min(1_000);
            assert_eq!(
                coarse.increment::<1>(m, k, h, true).unwrap(),
                coarse.increment_sized::<1>(m, k, size, true).unwrap()
            );
        }
    }
    for bad in [0.0, -1.0, f32::NAN, f32::INFINITY] {
        assert_eq!(
            StepSize::new(bad).unwrap_err(),
            brownian.increment::<1>(0, 0, bad, false).unwrap_err()
        );
    }
}

#[test]
fn step_plans_carry_the_square_root_of_every_step_size() {
    let times = [0.05f32, 0.3, 0.333, 1.0];
    let grids = [
        TimeGrid::new(0.0, 1.0, 20).unwrap(),
        TimeGrid::through(0.0, 1.0, 7).unwrap(),
        TimeGrid::with_max_step(0.0, 1.0, 0.07).unwrap(),
    ];
    for (g, grid) in grids.iter().enumerate() {
        let times: &[f32] = if g == 0 { &[0.05, 0.3, 1.0] } else { &times };
        let mut cursor = grid.cursor(times).unwrap();
        let mut steps = 0;
        for event in grid.plan(times).unwrap() {
            if let PlanEvent::Step(step) = event {
                assert_eq!(step.sqrt_h.to_bits(), libm::sqrtf(step.h).to_bits());
                assert_eq!(cursor.step(step.k), Some(step));
                steps += 1;
            }
        }
        assert!(steps >= 7, "grid {g}: {steps} steps");
    }
}

/// The trajectory lane `j` of a batch of `count` from `first` must hold: the last one
/// repeats past `count` (and `count = 0` means `first`), never wrapping past `usize::MAX`.
fn expected_trajectory(first: usize, count: usize, j: usize) -> usize {
    let last = if count == 0 { 0 } else { count - 1 };
    first.saturating_add(j.min(last))
}

/// Draws statistics over the lanes compared by [`compare_lanes`]: how many draws fell in the
/// tails of the normal (|z| > 1.44, where the inverse CDF takes its tail branch) and how
/// many in the centre.
#[derive(Default)]
struct Coverage {
    tail: usize,
    centre: usize,
}

/// Asserts that every lane of `noise.increment_lanes::<C, V>` has the bits of the one-lane
/// `increment_sized` for its trajectory, with dZ zero unless asked for.
fn compare_lanes<const C: usize, V: Lanes, N: NoiseSource>(
    noise: &N,
    first: usize,
    count: usize,
    step: u32,
    size: StepSize,
    with_dz: bool,
    coverage: &mut Coverage,
) {
    let lanes = noise
        .increment_lanes::<C, V>(first, count, step, size, with_dz)
        .unwrap();
    for j in 0..V::WIDTH {
        let m = expected_trajectory(first, count, j);
        let one = noise.increment_sized::<C>(m, step, size, with_dz).unwrap();
        for c in 0..C {
            let context = format!(
                "L={} C={C} first={first} count={count} step={step} h={} dz={with_dz} lane={j} \
                 channel={c}",
                V::WIDTH,
                size.h()
            );
            assert_eq!(
                lanes.dw[c].lane(j).to_bits(),
                one.dw[c].to_bits(),
                "dW {context}"
            );
            let dz = if with_dz { one.dz[c] } else { 0.0 };
            assert_eq!(lanes.dz[c].lane(j).to_bits(), dz.to_bits(), "dZ {context}");
            for x in [one.dw[c], if with_dz { one.dz[c] } else { 0.0 }] {
                if (x / size.sqrt_h()).abs() > 1.44 {
                    coverage.tail += 1;
                } else if x != 0.0 {
                    coverage.centre += 1;
                }
            }
        }
    }
}

/// [`compare_lanes`] for C = 1, 2, 3 channels, with and without dZ, over batch sizes below,
/// at and above the lane width, several seeds, steps and step sizes.
fn compare_lanes_of_width<V: Lanes>(coverage: &mut Coverage) {
    let width = V::WIDTH;
    let counts = [0, 1, width / 2, width.saturating_sub(1), width, width + 3];
    // Tiny, small, unit and huge steps: the scale multiplies after the normal is drawn.
    let sizes = [1e-7f32, 0.01, 1.0, 3.0e4].map(|h| StepSize::new(h).unwrap());
    for seed in [0u64, 3, 0xDEAD_BEEF_0123_4567] {
        let noise = Brownian::new(seed);
        for (first, step) in [
            (0usize, 0u32),
            (5, 17),
            (1_000_003, 599),
            (usize::MAX - 2, u32::MAX),
        ] {
            for &count in &counts {
                for &size in &sizes {
                    for with_dz in [false, true] {
                        compare_lanes::<1, V, _>(
                            &noise, first, count, step, size, with_dz, coverage,
                        );
                        compare_lanes::<2, V, _>(
                            &noise, first, count, step, size, with_dz, coverage,
                        );
                        compare_lanes::<3, V, _>(
                            &noise, first, count, step, size, with_dz, coverage,
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn lane_wide_brownian_increments_equal_the_one_lane_ones_bit_for_bit() {
    let mut coverage = Coverage::default();
    compare_lanes_of_width::<f32>(&mut coverage);
    compare_lanes_of_width::<F32x<4>>(&mut coverage);
    compare_lanes_of_width::<F32x<8>>(&mut coverage);
    compare_lanes_of_width::<F32x<16>>(&mut coverage);
    // Widths that are not a multiple of 4 take the lane-by-lane path.
    compare_lanes_of_width::<F32x<3>>(&mut coverage);
    // Both branches of the inverse normal CDF were compared, many times each.
    assert!(
        coverage.tail > 1_000 && coverage.centre > 5 * coverage.tail,
        "tail {} centre {}",
        coverage.tail,
        coverage.centre
    );
}

/// A source that only says how to draw one increment: it gets the trait's default
/// `increment_sized` and `increment_lanes`. Fails for trajectories from `fail_from` on, and
/// counts its draws.
struct OneLaneOnly {
    inner: Brownian,
    fail_from: usize,
    draws: Cell<usize>,
}

impl NoiseSource for OneLaneOnly {
    fn increment<const C: usize>(
        &self,
        trajectory: usize,
        step: u32,
        h: f32,
        with_dz: bool,
    ) -> Result<Increment<C>, Error> {
        if trajectory >= self.fail_from {
            return Err(Error::NoiseExhausted { trajectory, step });
        }
        self.draws.set(self.draws.get() + 1);
        self.inner.increment(trajectory, step, h, with_dz)
    }
}

#[test]
fn the_default_lane_wide_increment_draws_lane_by_lane_and_reports_the_first_failure() {
    let inner = Brownian::new(11);
    let source = OneLaneOnly {
        inner,
        fail_from: usize::MAX,
        draws: Cell::new(0),
    };
    let size = StepSize::new(0.02).unwrap();
    let mut coverage = Coverage::default();
    for (first, count) in [(0, 8), (40, 3), (7, 0)] {
        compare_lanes::<2, F32x<8>, _>(&source, first, count, 9, size, true, &mut coverage);
        // The default and Brownian's own lane-wide draw agree bit for bit.
        let default = source
            .increment_lanes::<2, F32x<8>>(first, count, 9, size, true)
            .unwrap();
        let vectorized = inner
            .increment_lanes::<2, F32x<8>>(first, count, 9, size, true)
            .unwrap();
        assert_eq!(
            default.dw.map(|v| v.0.map(f32::to_bits)),
            vectorized.dw.map(|v| v.0.map(f32::to_bits))
        );
        assert_eq!(
            default.dz.map(|v| v.0.map(f32::to_bits)),
            vectorized.dz.map(|v| v.0.map(f32::to_bits))
        );
    }
    // A source's error comes back as it is: the first failing lane's (trajectory 5 here).
    let failing = OneLaneOnly {
        inner,
        fail_from: 5,
        draws: Cell::new(0),
    };
    assert_eq!(
        failing.increment_lanes::<1, F32x<4>>(3, 4, 2, size, false),
        Err(Error::NoiseExhausted {
            trajectory: 5,
            step: 2
        })
    );
    assert_eq!(
        failing.draws.get(),
        2,
        "lanes 0 and 1 drawn before lane 2 failed"
    );
    // Coarsened keeps the default: each lane is the one-lane coarse increment.
    let coarse = Coarsened::new(inner, 4).unwrap();
    compare_lanes::<3, F32x<4>, _>(&coarse, 2, 3, 5, size, true, &mut coverage);
}

proptest! {
    #[test]
    fn param_seed_lanes_agree_with_the_seeded_iterator(
        start in 0usize..200, offset in 0usize..200, params in 0usize..120, lanes in 0usize..17,
    ) {
        let seed = ParamSeed::window(start).shifted(offset);
        let listed: Vec<(usize, usize)> = seed.seeded(params, lanes).collect();
        let expected: Vec<(usize, usize)> =
            (0..params).filter_map(|j| seed.lane(j, lanes).map(|l| (j, l))).collect();
        prop_assert_eq!(&listed, &expected);
        for (j, lane) in listed {
            prop_assert_eq!(offset + j, start + lane);
        }
        prop_assert_eq!(ParamSeed::NONE.seeded(params, lanes).count(), 0);
    }
}
