//! A forward pass of a chain allocates nothing: counted by a global allocator.

use tinysde::nn::{
    init, Cube, Dense, FastSigmoid, FastTanh, Identity, InitScheme, Layer, ParamSeed,
};
use tinysde::Dual;

use crate::alloc_counter;
use alloc_counter::allocations;

#[test]
fn chain_forward_allocates_nothing() {
    type Net = (
        Cube<1>,
        Dense<1, 20, FastTanh>,
        Dense<20, 20, FastSigmoid>,
        Dense<20, 1, Identity>,
    );
    let mut net = Net::default();
    init(
        &mut net,
        &mut tinysde::noise::rng_from_seed(1),
        InitScheme::GlorotUniform,
    )
    .unwrap();
    let (count, acc) = allocations(|| {
        let mut acc = 0.0f32;
        for i in 0..100 {
            let y: [f32; 1] = net.forward(&[i as f32 * 0.01], ParamSeed::NONE);
            let yd: [Dual<8>; 1] =
                net.forward(&[Dual::constant(i as f32 * 0.01)], ParamSeed::window(i));
            acc += y[0] + yd[0].t[0];
        }
        acc
    });
    assert!(acc.is_finite());
    assert_eq!(count, 0, "forward passes allocated");
}
