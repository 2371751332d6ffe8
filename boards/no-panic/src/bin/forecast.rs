//! No panic path in the deployable model file (`forecast::file`: parse, accessors, write)
//! and the streaming forecaster (`Forecaster::new`, `observe_checked`, `forecast`), with the
//! firmware's configuration: seed model, SOSRI, 32 paths, 4 times.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use tinysde::forecast::file::{
    self, Column, Defaults, Deployment, ModelFile, SolverSpec, TimeAxis, TimeFormat, Transform,
    Trend,
};
use tinysde::forecast::{Arrays, Check, Forecaster};
use tinysde::solve::Sosri;
use tinysde_no_panic::{keep, opaque, seed::Model};

#[entry]
fn main() -> ! {
    let bytes = opaque([0u8; 1024]);
    if let Ok(f) = ModelFile::parse(opaque(&bytes[..])) {
        keep(f.version());
        keep(f.model().param_count());
        keep(f.state_dim());
        keep(f.column_count());
        keep(f.column(opaque(0)));
        keep(f.time());
        keep(f.solver());
        keep(f.defaults());
        keep(f.section(opaque(*b"note")));
        keep(f.trend(opaque(0)));
        let forecaster: Result<Forecaster<Model, Sosri, 1, 1, Arrays<1, 32, 4>>, _> =
            Forecaster::new(opaque(Model::default()), Sosri, &f, Arrays::new());
        if let Ok(mut fc) = forecaster {
            let mut checks = [Check::default()];
            keep(fc.observe_checked(opaque(1.0), &opaque([Some(2.0)]), opaque(&mut checks[..])));
            keep(fc.observe(opaque(2.0), &opaque([None])));
            let mut out = [0.0f64; 12];
            keep(fc.forecast(opaque(&[3.0, 4.0, 5.0][..]), opaque(&mut out[..])));
            keep((&checks, &out, fc.member_states().map(|e| e.len())));
        }
    }
    // Writing a file.
    let model: Model = opaque(Model::default());
    let columns = [Column {
        name: opaque("x"),
        transform: Transform::Affine,
        mean: opaque(0.0),
        std: opaque(1.0),
        state_index: opaque(0),
        noise: opaque(0.0),
    }];
    // A deterministic mean (a file's TRND section): its checks and evaluation.
    let trends = [Trend {
        level: opaque(0.1),
        slope: opaque(0.01),
        period: opaque(12.0),
        harmonics: opaque(2),
        coefficients: opaque([[0.5, 0.2], [0.1, 0.0], [0.0; 2], [0.0; 2]]),
    }];
    if let Ok(defaults) = Defaults::new(opaque(32), opaque(1), opaque(&[0.05, 0.5, 0.95][..])) {
        let d = Deployment {
            state_dim: opaque(1),
            columns: opaque(&columns[..]),
            time: TimeAxis {
                name: opaque("t"),
                format: TimeFormat::Number,
                t0: opaque(0.0),
                unit: opaque(1.0),
            },
            solver: SolverSpec {
                method: opaque("SOSRI"),
                max_step: opaque(0.5),
            },
            defaults,
            trends: opaque(&trends[..]),
            seasonal_lag: 0,
        };
        let mut out = [0u8; 1024];
        keep(file::write(&model, &d, opaque(&mut out[..])));
        keep(&out);
    }
    loop {}
}
