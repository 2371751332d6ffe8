//! No panic path in the on-device adaptation (`forecast::adapt`: `Adaptation::new`,
//! `observe`, `observe_checked`, `step`, the buffer sizes) on the streaming forecaster with
//! the firmware's configuration (seed model, SOSRI, 32 paths, 4 times), every
//! configuration value, reading and buffer length opaque.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use tinysde::forecast::adapt::{AdaptConfig, Adaptation, Workspace};
use tinysde::forecast::file::ModelFile;
use tinysde::forecast::{Arrays, Check, Forecaster};
use tinysde::nn::Parameters;
use tinysde::solve::Sosri;
use tinysde::{Dual, Real};
use tinysde_no_panic::{keep, opaque, seed::Model};

const P: usize = <Model as Parameters>::PARAMS;

#[entry]
fn main() -> ! {
    let bytes = opaque([0u8; 1024]);
    let config = AdaptConfig {
        steps: opaque(1),
        learning_rate: opaque(0.05),
        paths: opaque(8),
        every: opaque(1),
        windows: opaque(8),
    };
    if let (Ok(file), Ok(mut adapt)) = (
        ModelFile::parse(opaque(&bytes[..])),
        Adaptation::<1, 16>::new(config),
    ) {
        let forecaster: Result<Forecaster<Model, Sosri, 1, 1, Arrays<1, 32, 4>>, _> =
            Forecaster::new(opaque(Model::default()), Sosri, &file, Arrays::new());
        if let Ok(mut f) = forecaster {
            adapt.set_enabled(opaque(true));
            keep((adapt.stats_len(&f), adapt.tape_len(&f)));
            let (mut grad, mut params) = ([0.0f32; P], [0.0f32; P]);
            let mut stats = [[Dual::<1>::ZERO; 1]; 8];
            let mut tape = [[0.0f32; 1]; 256];
            let mut work = Workspace {
                grad: opaque(&mut grad[..]),
                params: opaque(&mut params[..]),
                stats: opaque(&mut stats[..]),
                tape: opaque(&mut tape[..]),
            };
            let mut checks = [Check::default()];
            keep(adapt.observe(&mut f, opaque(1.0), &opaque([Some(2.0)]), &mut work));
            keep(adapt.observe_checked(
                &mut f,
                opaque(2.0),
                &opaque([Some(3.0)]),
                opaque(&mut checks[..]),
                &mut work,
            ));
            keep(adapt.step(&mut f, &mut work));
            keep((&checks, adapt.len(), adapt.steps_taken()));
        }
    }
    loop {}
}
