//! No panic path in a method's step, the layers' forward maps (values and duals), the
//! parameter views, and the noise sources.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use tinysde::nn::{Layer, ParamSeed, Parameters};
use tinysde::noise::{normal_from_bits, Brownian, Coarsened, NoiseSource};
use tinysde::solve::{EulerMaruyama, Step};
use tinysde::Dual;
use tinysde_no_panic::{keep, opaque, seed::Drift, seed::Model};

#[entry]
fn main() -> ! {
    let model: Model = opaque(Model::default());
    let drift: Drift = opaque(Drift::default());
    let y: [f32; 1] = drift.forward(&opaque([0.5f32]), ParamSeed::NONE);
    keep(y);
    let y: [Dual<8>; 1] = drift.forward(
        &opaque([Dual::<8>::variable(0.5, 0)]),
        ParamSeed::window(opaque(3)),
    );
    keep(y);

    let noise = Brownian::new(opaque(7));
    let inc = noise.increment::<1>(opaque(3), opaque(9), opaque(0.1), opaque(true));
    keep(inc);
    if let Ok(coarse) = Coarsened::new(noise, opaque(4)) {
        keep(coarse.increment::<2>(opaque(3), opaque(9), opaque(0.1), opaque(true)));
    }
    keep(normal_from_bits(opaque(12345)));
    if let Ok(inc) = noise.increment::<1>(opaque(0), opaque(0), opaque(0.1), false) {
        let u = EulerMaruyama.step(
            &model,
            opaque(0.0),
            opaque(0.1),
            &opaque([1.0f32]),
            &inc,
            ParamSeed::NONE,
        );
        keep(u);
    }

    let mut m = model;
    let mut flat = opaque([0.0f32; 80]);
    keep(m.read_params(opaque(&mut flat[..])));
    keep(m.write_params(opaque(&flat[..])));
    m.read_unchecked(opaque(&mut flat[..]));
    m.write_unchecked(opaque(&flat[..]));
    keep((&m, &flat));
    loop {}
}
