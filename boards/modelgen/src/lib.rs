//! Build-time code generation for the tinysde firmware: the model is chosen when the
//! firmware is built, and its Rust type comes from the model file itself.
//!
//! `boards/app/build.rs` calls [`generate`]: it reads the model file named by the
//! environment variable [`ENV_MODEL`] (default: the seed model, `boards/app/model/seed.tsw`),
//! parses the model description it carries (the canonical text of
//! `tinysde::weights::Describe`, e.g.
//! `neural_sde(chain(pow(1,3),dense(1,20,fast_tanh),dense(20,1,identity)),chain(dense(1,20,fast_sigmoid),dense(20,1,identity)))`)
//! and writes into `OUT_DIR`:
//!
//! - `model.rs`: `Drift`, `Diffusion` and `Model` (the `NeuralSde` type of the
//!   description), `D` (state dimension), `PARAMS`, `DESCRIPTION`, `FILE_VERSION` and
//!   `MODEL_FILE` (the file's bytes, `include_bytes!`d into flash);
//! - `readings.rs`: the series named by [`ENV_READINGS`] (a CSV file: a time column, then
//!   value columns) as `READING_TIMES` / `READING_VALUES` arrays, replayed by the QEMU
//!   firmware in place of a sensor.
//!
//! A description the generator does not know, a file it cannot read or a CSV it cannot
//! parse is an `Err` naming what was found; build.rs turns it into a build error.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The environment variable naming the model file (absolute, or relative to the
/// repository root: the directory `fit_csv` runs in).
pub const ENV_MODEL: &str = "TINYSDE_MODEL";
/// The environment variable naming the CSV series the QEMU firmware replays (absolute, or
/// relative to the repository root). Unset: the seed data for the seed model, no readings
/// for any other model.
pub const ENV_READINGS: &str = "TINYSDE_READINGS";
/// The default model file, relative to the repository root.
pub const DEFAULT_MODEL: &str = "boards/app/model/seed.tsw";
/// The default readings (for the default model), relative to the repository root.
pub const DEFAULT_READINGS: &str = "examples/data/seed.csv";

/// The magic of a tinysde model (weights) file.
pub const MAGIC: &[u8; 8] = b"TSDEWGT\0";

/// Activation names of the model description and the `tinysde::nn` types they stand for.
pub const ACTIVATIONS: &[(&str, &str)] = &[
    ("identity", "Identity"),
    ("tanh", "Tanh"),
    ("sigmoid", "Sigmoid"),
    ("relu", "Relu"),
    ("softplus", "Softplus"),
    ("fast_tanh", "FastTanh"),
    ("fast_sigmoid", "FastSigmoid"),
    ("quick_tanh", "QuickTanh"),
    ("quick_sigmoid", "QuickSigmoid"),
];

/// What the generator needs from a model file's header.
#[derive(Clone, Debug, PartialEq)]
pub struct FileInfo {
    /// The format version.
    pub version: u16,
    /// The model description (ASCII).
    pub description: String,
    /// The number of parameters the file stores.
    pub params: usize,
    /// Where the parameters start: `4 * params` bytes of little-endian `f32` from here.
    pub params_at: usize,
    /// The file's length in bytes.
    pub len: usize,
    /// The file's stored CRC-32 (its last four bytes; checked against its content).
    pub crc: u32,
    /// Version 2: what the file's `STAT`, `COLS`, `TIME`, `SOLV` and `FCST` sections say
    /// (`None` for version 1, whose scaling `fit_csv` writes beside it in `fit_csv.json`).
    pub deployment: Option<Deployment>,
}

/// The deployment sections of a version-2 model file (docs/weights-format.md).
#[derive(Clone, Debug, PartialEq)]
pub struct Deployment {
    /// `STAT`: state dimension.
    pub state_dim: usize,
    /// `STAT`: per observed column, the state coordinate and the observation noise.
    pub observed: Vec<(usize, f32)>,
    /// `COLS`: per column, transform (0 affine, 1 log), mean, std, name.
    pub columns: Vec<(u8, f64, f64, String)>,
    /// `TIME`: format (0 number, 1 date, 2 date-time) and the time column's name.
    pub time: (u8, String),
    /// `TIME`: origin and unit.
    pub t0: f64,
    /// `TIME`: user time units per model time unit.
    pub unit: f64,
    /// `SOLV`: step rule, largest step and method name.
    pub solver: (u8, f32, String),
    /// `FCST`: paths, noise seed, quantile levels.
    pub paths: u32,
    /// `FCST`: noise seed.
    pub seed: u64,
    /// `FCST`: quantile levels.
    pub levels: Vec<f32>,
    /// `TRND` (optional): per column, the deterministic mean under the SDE (see
    /// [`Trend`]); empty without the section.
    pub trends: Vec<Trend>,
    /// `SDIF` (optional): the seasonal difference's lag in readings; 0 without the section.
    pub seasonal_lag: u16,
}

/// One column's entry of a `TRND` section (docs/weights-format.md): harmonics, period,
/// level, slope and the `[sin, cos]` coefficient of each harmonic.
#[derive(Clone, Debug, PartialEq)]
pub struct Trend {
    /// The season's period (model time units).
    pub period: f32,
    /// The level.
    pub level: f32,
    /// The slope per model time unit.
    pub slope: f32,
    /// `[sin, cos]` per harmonic (at most 4).
    pub coefficients: Vec<[f32; 2]>,
}

/// The section tags this generator knows; any other critical tag (an upper-case first
/// byte) is refused, as the library's reader refuses it.
pub const KNOWN_SECTIONS: [&str; 8] = [
    "MODL", "STAT", "COLS", "TIME", "SOLV", "FCST", "TRND", "SDIF",
];

/// A little-endian reader over a section's payload.
struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(self.take(2)?.try_into().ok()?))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn f32(&mut self) -> Option<f32> {
        self.u32().map(f32::from_bits)
    }
    fn f64(&mut self) -> Option<f64> {
        self.u64().map(f64::from_bits)
    }
    fn name(&mut self) -> Option<String> {
        let n = self.u16()? as usize;
        String::from_utf8(self.take(n)?.to_vec()).ok()
    }
}

/// Reads a version-2 file's sections (the library checks the checksum and every value's
/// range at run time; this reads what the generated code needs and says what is missing).
fn read_v2(bytes: &[u8]) -> Result<(String, usize, usize, Deployment), String> {
    let total = u32_at(bytes, 12).ok_or("truncated before the file length")? as usize;
    if bytes.len() != total || total < 20 {
        return Err(format!(
            "the header says {total} bytes but the file has {}",
            bytes.len()
        ));
    }
    let mut sections = std::collections::BTreeMap::new();
    let mut offsets = std::collections::BTreeMap::new();
    let mut c = Cursor {
        b: &bytes[..total - 4],
        at: 16,
    };
    while c.at < total - 4 {
        let tag = c.take(4).ok_or("a section header overruns the file")?;
        let tag = String::from_utf8_lossy(tag).into_owned();
        let n = c.u32().ok_or("a section header overruns the file")? as usize;
        let at = c.at;
        let payload = c
            .take(n)
            .ok_or_else(|| format!("section {tag} overruns the file"))?;
        if tag.as_bytes()[0].is_ascii_uppercase() && !KNOWN_SECTIONS.contains(&tag.as_str()) {
            return Err(format!(
                "section {tag:?} is critical and unknown to this generator (it knows {KNOWN_SECTIONS:?})"
            ));
        }
        sections.insert(tag.clone(), payload);
        offsets.insert(tag, at);
    }
    let get = |tag: &str| {
        sections.get(tag).map(|b| Cursor { b, at: 0 }).ok_or_else(|| {
            format!(
                "version-2 file without a {tag} section (the firmware needs MODL, STAT, COLS, TIME, SOLV and FCST; found {:?})",
                sections.keys().collect::<Vec<_>>()
            )
        })
    };
    let bad = |tag: &str| format!("section {tag} is too short");
    let mut m = get("MODL")?;
    let len = m.u32().ok_or_else(|| bad("MODL"))? as usize;
    let description = String::from_utf8(m.take(len).ok_or_else(|| bad("MODL"))?.to_vec())
        .map_err(|_| "the description is not ASCII".to_string())?;
    let params = m.u32().ok_or_else(|| bad("MODL"))? as usize;
    let params_at = offsets.get("MODL").copied().unwrap_or(0) + m.at;
    let mut st = get("STAT")?;
    let state_dim = st.u16().ok_or_else(|| bad("STAT"))? as usize;
    let count = st.u16().ok_or_else(|| bad("STAT"))? as usize;
    let mut observed = Vec::new();
    for _ in 0..count {
        let index = st.u16().ok_or_else(|| bad("STAT"))? as usize;
        st.u16().ok_or_else(|| bad("STAT"))?;
        observed.push((index, st.f32().ok_or_else(|| bad("STAT"))?));
    }
    let mut co = get("COLS")?;
    let n = co.u16().ok_or_else(|| bad("COLS"))? as usize;
    let mut columns = Vec::new();
    for _ in 0..n {
        let transform = co.u8().ok_or_else(|| bad("COLS"))?;
        co.u8().ok_or_else(|| bad("COLS"))?;
        let mean = co.f64().ok_or_else(|| bad("COLS"))?;
        let std = co.f64().ok_or_else(|| bad("COLS"))?;
        columns.push((transform, mean, std, co.name().ok_or_else(|| bad("COLS"))?));
    }
    let mut ti = get("TIME")?;
    let format = ti.u8().ok_or_else(|| bad("TIME"))?;
    ti.u8().ok_or_else(|| bad("TIME"))?;
    let t0 = ti.f64().ok_or_else(|| bad("TIME"))?;
    let unit = ti.f64().ok_or_else(|| bad("TIME"))?;
    let time_name = ti.name().ok_or_else(|| bad("TIME"))?;
    let mut so = get("SOLV")?;
    let rule = so.u8().ok_or_else(|| bad("SOLV"))?;
    so.u8().ok_or_else(|| bad("SOLV"))?;
    let h = so.f32().ok_or_else(|| bad("SOLV"))?;
    let method = so.name().ok_or_else(|| bad("SOLV"))?;
    let mut fc = get("FCST")?;
    let paths = fc.u32().ok_or_else(|| bad("FCST"))?;
    let seed = fc.u64().ok_or_else(|| bad("FCST"))?;
    let q = fc.u8().ok_or_else(|| bad("FCST"))?;
    let levels = (0..q)
        .map(|_| fc.f32())
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| bad("FCST"))?;
    let mut trends = Vec::new();
    if let Ok(mut tr) = get("TRND") {
        let n = tr.u16().ok_or_else(|| bad("TRND"))? as usize;
        for _ in 0..n {
            let h = tr.u8().ok_or_else(|| bad("TRND"))? as usize;
            tr.u8().ok_or_else(|| bad("TRND"))?;
            let mut f = || tr.f32().ok_or_else(|| bad("TRND"));
            let (period, level, slope) = (f()?, f()?, f()?);
            if h > 4 {
                return Err(format!("section TRND: {h} harmonics (at most 4)"));
            }
            let coefficients = (0..h)
                .map(|_| Ok([f()?, f()?]))
                .collect::<Result<Vec<_>, String>>()?;
            trends.push(Trend {
                period,
                level,
                slope,
                coefficients,
            });
        }
    }
    let mut seasonal_lag = 0;
    if let Ok(mut sd) = get("SDIF") {
        seasonal_lag = sd.u16().ok_or_else(|| bad("SDIF"))?;
        let reserved = sd.u16().ok_or_else(|| bad("SDIF"))?;
        if seasonal_lag == 0 || reserved != 0 || sd.at != sd.b.len() {
            return Err(format!(
                "section SDIF: lag {seasonal_lag}, reserved {reserved}: a lag of at least 1 and reserved 0, 4 bytes"
            ));
        }
    }
    Ok((
        description,
        params,
        params_at,
        Deployment {
            state_dim,
            observed,
            columns,
            time: (format, time_name),
            t0,
            unit,
            solver: (rule, h, method),
            paths,
            seed,
            levels,
            trends,
            seasonal_lag,
        },
    ))
}

/// What this firmware's forecaster takes from a version-2 file: every state coordinate
/// observed, in order (no latent state), with or without observation noise, affine or log
/// transforms, SOSRI with steps of at most `h`, 1 to 1024 paths, 2 to 16 increasing quantile
/// levels in (0, 1).
pub fn check_deployment(d: &Deployment, dim: usize) -> Result<(), String> {
    if d.state_dim != dim {
        return Err(format!(
            "STAT says {} state components but the description has {dim}",
            d.state_dim
        ));
    }
    let in_order = d.observed.len() == dim
        && d.observed
            .iter()
            .enumerate()
            .all(|(i, &(index, noise))| index == i && noise.is_finite() && noise >= 0.0);
    if !in_order || d.columns.len() != dim {
        return Err(format!(
            "observation model {:?} with {} columns: this firmware forecasts models whose every state component is observed, in order (latent state needs the library forecaster)",
            d.observed,
            d.columns.len()
        ));
    }
    if let Some(c) = d.columns.iter().find(|c| c.0 > 1) {
        return Err(format!(
            "column {:?} has transform {}: this firmware takes affine (0) and log (1) transforms",
            c.3, c.0
        ));
    }
    if !(d.trends.is_empty() || d.trends.len() == dim) {
        return Err(format!("TRND has {} columns, STAT {dim}", d.trends.len()));
    }
    if d.solver.0 != 0 || d.solver.2 != "SOSRI" {
        return Err(format!(
            "solver {:?} with step rule {}: this firmware's forecaster solves with SOSRI, steps of at most h",
            d.solver.2, d.solver.0
        ));
    }
    if !(1..=1024).contains(&d.paths)
        || !(2..=16).contains(&d.levels.len())
        || !d.levels.windows(2).all(|w| w[0] < w[1])
        || d.levels.iter().any(|&p| !(p > 0.0 && p < 1.0))
    {
        return Err(format!(
            "forecast defaults: {} paths, quantile levels {:?} (this firmware takes 1 to 1024 paths and 2 to 16 increasing levels in (0, 1))",
            d.paths, d.levels
        ));
    }
    Ok(())
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The CRC-32 of `bytes` (IEEE 802.3, reflected, as the library's `weights::crc32`).
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// The checksum stored at `body` (the file's last four bytes), checked against the CRC-32
/// of the bytes before it and against the file's length.
fn checked_crc(bytes: &[u8], body: usize) -> Result<u32, String> {
    if bytes.len() != body + 4 {
        return Err(format!(
            "the file has {} bytes where its header says {}",
            bytes.len(),
            body + 4
        ));
    }
    let stored = u32_at(bytes, body).ok_or("truncated before the checksum")?;
    let crc = crc32(&bytes[..body]);
    if crc != stored {
        return Err(format!(
            "checksum mismatch: stored {stored:#010x}, the content's CRC-32 is {crc:#010x} (a corrupt file)"
        ));
    }
    Ok(stored)
}

/// Reads the version, the description, the parameter count, where the parameters start
/// and the checksum of a model file (format version 1: magic, version, description length
/// and text, parameter count, parameters, CRC-32; version 2: the sections; see
/// docs/weights-format.md), checking the checksum and the length. The parameters' values
/// are left to the loader, which checks them on the device (and the host) at run time.
pub fn read_file_info(bytes: &[u8]) -> Result<FileInfo, String> {
    if bytes.get(..8) != Some(&MAGIC[..]) {
        return Err(format!(
            "not a tinysde model file: it starts with {:02x?}, not the magic \"TSDEWGT\\0\"",
            bytes.get(..8).unwrap_or(bytes)
        ));
    }
    let version = u16_at(bytes, 8).ok_or("truncated before the version")?;
    match version {
        1 => {
            let len = u32_at(bytes, 10).ok_or("truncated before the description length")? as usize;
            let text = bytes.get(14..14 + len).ok_or_else(|| {
                format!("truncated inside the description ({len} bytes declared)")
            })?;
            let description = String::from_utf8(text.to_vec())
                .map_err(|_| "the description is not ASCII".to_string())?;
            let params = u32_at(bytes, 14 + len).ok_or("truncated before the parameter count")?;
            Ok(FileInfo {
                version,
                description,
                params: params as usize,
                params_at: 14 + len + 4,
                len: bytes.len(),
                crc: checked_crc(bytes, 14 + len + 4 + 4 * params as usize)?,
                deployment: None,
            })
        }
        2 => {
            let (description, params, params_at, deployment) = read_v2(bytes)?;
            Ok(FileInfo {
                version,
                description,
                params,
                params_at,
                len: bytes.len(),
                crc: checked_crc(bytes, bytes.len().saturating_sub(4))?,
                deployment: Some(deployment),
            })
        }
        v => Err(format!(
            "model file format version {v}: this generator reads versions 1 and 2"
        )),
    }
}

/// A network of the description.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Net {
    /// `dense(I,O,activation)`.
    Dense {
        /// Inputs.
        inputs: usize,
        /// Outputs.
        outputs: usize,
        /// The activation's description name.
        activation: String,
    },
    /// `pow(D,P)`: `u -> u^P` elementwise on `D` components.
    Pow {
        /// Components.
        dim: usize,
        /// The power.
        power: i32,
    },
    /// `chain(a,b,...)`: layers one after the other (2 to 6, as tinysde's tuples).
    Chain(Vec<Net>),
}

impl Net {
    /// Input and output dimension; an error if a chain's layers do not fit together.
    pub fn dims(&self) -> Result<(usize, usize), String> {
        match self {
            Net::Dense {
                inputs, outputs, ..
            } => Ok((*inputs, *outputs)),
            Net::Pow { dim, .. } => Ok((*dim, *dim)),
            Net::Chain(layers) => {
                let mut dims = layers.iter().map(Net::dims);
                let (first_in, mut out) = dims.next().ok_or("an empty chain")??;
                for (i, d) in dims.enumerate() {
                    let (i_n, o_n) = d?;
                    if i_n != out {
                        return Err(format!(
                            "chain layer {} takes {i_n} inputs but the layer before gives {out}",
                            i + 2
                        ));
                    }
                    out = o_n;
                }
                Ok((first_in, out))
            }
        }
    }

    /// Number of parameters (dense: `I O + O`; pow: none).
    pub fn params(&self) -> usize {
        match self {
            Net::Dense {
                inputs, outputs, ..
            } => inputs * outputs + outputs,
            Net::Pow { .. } => 0,
            Net::Chain(layers) => layers.iter().map(Net::params).sum(),
        }
    }

    /// The Rust type (paths into `tinysde::nn`).
    pub fn rust_type(&self) -> Result<String, String> {
        match self {
            Net::Dense {
                inputs,
                outputs,
                activation,
            } => {
                let ty = ACTIVATIONS
                    .iter()
                    .find(|(name, _)| name == activation)
                    .map(|(_, ty)| *ty)
                    .ok_or_else(|| {
                        format!(
                            "unknown activation \"{activation}\" (known: {})",
                            ACTIVATIONS
                                .iter()
                                .map(|(n, _)| *n)
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    })?;
                Ok(format!(
                    "tinysde::nn::Dense<{inputs}, {outputs}, tinysde::nn::{ty}>"
                ))
            }
            Net::Pow { dim, power } => Ok(format!("tinysde::nn::Pow<{dim}, {power}>")),
            Net::Chain(layers) => {
                if !(2..=6).contains(&layers.len()) {
                    return Err(format!(
                        "a chain of {} layers (tinysde chains 2 to 6)",
                        layers.len()
                    ));
                }
                let parts = layers
                    .iter()
                    .map(Net::rust_type)
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(format!("({})", parts.join(", ")))
            }
        }
    }
}

/// A model description: `neural_sde(drift,diffusion)`, or `seasonal(H,drift,diffusion)`
/// (`tinysde::sde::Seasonal`: the networks also see sin/cos of the time in `H` periods).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shape {
    /// The number of periods of a seasonal model (`None`: a plain `neural_sde`).
    pub periods: Option<usize>,
    /// The drift network.
    pub drift: Net,
    /// The diffusion network.
    pub diffusion: Net,
}

impl Shape {
    /// The state dimension `D`: both networks map `D` to `D` (diagonal noise), or for a
    /// seasonal model `D + 2 H` to `D`.
    pub fn state_dim(&self) -> Result<usize, String> {
        let (fi, fo) = self.drift.dims()?;
        let (gi, go) = self.diffusion.dims()?;
        let extra = 2 * self.periods.unwrap_or(0);
        if fi != fo + extra || gi != go + extra || fo != go {
            return Err(match self.periods {
                None => format!(
                    "the drift maps {fi} -> {fo} and the diffusion {gi} -> {go}; a neural SDE needs both D -> D"
                ),
                Some(h) => format!(
                    "the drift maps {fi} -> {fo} and the diffusion {gi} -> {go}; a seasonal SDE of {h} periods needs both D + {extra} -> D"
                ),
            });
        }
        Ok(fo)
    }

    /// Number of parameters: the periods (seasonal), the drift's, then the diffusion's.
    pub fn params(&self) -> usize {
        self.periods.unwrap_or(0) + self.drift.params() + self.diffusion.params()
    }

    /// The Rust type of the model, given the names of its drift and diffusion types.
    pub fn model_type(&self, drift: &str, diffusion: &str) -> String {
        match self.periods {
            None => format!("tinysde::sde::NeuralSde<{drift}, {diffusion}>"),
            Some(h) => format!("tinysde::sde::Seasonal<{h}, {drift}, {diffusion}>"),
        }
    }
}

/// Parses a model description. Errors name the position and what was found there.
pub fn parse_description(text: &str) -> Result<Shape, String> {
    let mut p = Parser {
        s: text.as_bytes(),
        at: 0,
    };
    let periods = if p.word("seasonal(").is_ok() {
        let h = p.size()?;
        p.word(",")?;
        Some(h)
    } else {
        p.word("neural_sde(")
            .map_err(|_| p.error("\"neural_sde(\" or \"seasonal(\""))?;
        None
    };
    let drift = p.net()?;
    p.word(",")?;
    let diffusion = p.net()?;
    p.word(")")?;
    if p.at != p.s.len() {
        return Err(p.error("the end of the description"));
    }
    Ok(Shape {
        periods,
        drift,
        diffusion,
    })
}

struct Parser<'a> {
    s: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn error(&self, expected: &str) -> String {
        let rest = String::from_utf8_lossy(self.s.get(self.at..).unwrap_or(&[]));
        let rest: String = rest.chars().take(40).collect();
        format!("at byte {}: expected {expected}, found \"{rest}\"", self.at)
    }

    fn word(&mut self, w: &str) -> Result<(), String> {
        if self
            .s
            .get(self.at..)
            .is_some_and(|r| r.starts_with(w.as_bytes()))
        {
            self.at += w.len();
            Ok(())
        } else {
            Err(self.error(&format!("\"{w}\"")))
        }
    }

    fn int(&mut self) -> Result<i64, String> {
        let start = self.at;
        if self.s.get(self.at) == Some(&b'-') {
            self.at += 1;
        }
        while self.s.get(self.at).is_some_and(u8::is_ascii_digit) {
            self.at += 1;
        }
        std::str::from_utf8(&self.s[start..self.at])
            .ok()
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| {
                self.at = start;
                self.error("an integer")
            })
    }

    fn size(&mut self) -> Result<usize, String> {
        let at = self.at;
        let n = self.int()?;
        usize::try_from(n).ok().filter(|&n| n > 0).ok_or_else(|| {
            self.at = at;
            self.error("a positive size")
        })
    }

    fn name(&mut self) -> String {
        let start = self.at;
        while self
            .s
            .get(self.at)
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_')
        {
            self.at += 1;
        }
        String::from_utf8_lossy(&self.s[start..self.at]).into_owned()
    }

    fn net(&mut self) -> Result<Net, String> {
        let start = self.at;
        let name = self.name();
        match name.as_str() {
            "dense" => {
                self.word("(")?;
                let inputs = self.size()?;
                self.word(",")?;
                let outputs = self.size()?;
                self.word(",")?;
                let at = self.at;
                let activation = self.name();
                if activation.is_empty() {
                    self.at = at;
                    return Err(self.error("an activation name"));
                }
                self.word(")")?;
                Ok(Net::Dense {
                    inputs,
                    outputs,
                    activation,
                })
            }
            "pow" => {
                self.word("(")?;
                let dim = self.size()?;
                self.word(",")?;
                let at = self.at;
                let power = i32::try_from(self.int()?).map_err(|_| {
                    self.at = at;
                    self.error("a power that fits an i32")
                })?;
                self.word(")")?;
                Ok(Net::Pow { dim, power })
            }
            "chain" => {
                self.word("(")?;
                let mut layers = vec![self.net()?];
                while self.s.get(self.at) == Some(&b',') {
                    self.at += 1;
                    layers.push(self.net()?);
                }
                self.word(")")?;
                Ok(Net::Chain(layers))
            }
            _ => {
                self.at = start;
                Err(self.error("a layer: dense(I,O,activation), pow(D,P) or chain(...)"))
            }
        }
    }
}

/// The generated Rust source of `model.rs` for the model file at `path` with contents
/// `bytes`.
pub fn model_source(path: &Path, bytes: &[u8]) -> Result<String, String> {
    let info = read_file_info(bytes)?;
    let shape = parse_description(&info.description)
        .map_err(|e| format!("model description {e}\n  description: {}", info.description))?;
    let d = shape.state_dim()?;
    let drift = shape.drift.rust_type()?;
    let diffusion = shape.diffusion.rust_type()?;
    if shape.params() != info.params {
        return Err(format!(
            "the description has {} parameters but the file stores {}",
            shape.params(),
            info.params
        ));
    }
    let mut s = String::new();
    let _ = writeln!(
        s,
        "// Generated by tinysde-modelgen from {} (do not edit).",
        path.display()
    );
    let _ = writeln!(s, "/// The drift network of the model file.");
    let _ = writeln!(s, "pub type Drift = {drift};");
    let _ = writeln!(s, "/// The diffusion network of the model file.");
    let _ = writeln!(s, "pub type Diffusion = {diffusion};");
    let _ = writeln!(s, "/// The model of the file: `{}`.", info.description);
    let _ = writeln!(
        s,
        "pub type Model = {};",
        shape.model_type("Drift", "Diffusion")
    );
    let _ = writeln!(s, "/// The state dimension.");
    let _ = writeln!(s, "pub const D: usize = {d};");
    let _ = writeln!(s, "/// Number of parameters.");
    let _ = writeln!(s, "pub const PARAMS: usize = {};", info.params);
    let _ = writeln!(s, "/// The model description the type was generated from.");
    let _ = writeln!(s, "pub const DESCRIPTION: &str = {:?};", info.description);
    let _ = writeln!(s, "/// The file's format version.");
    let _ = writeln!(s, "pub const FILE_VERSION: u16 = {};", info.version);
    let _ = writeln!(
        s,
        "/// The model file the firmware was built with (its path at build time)."
    );
    let _ = writeln!(
        s,
        "pub const MODEL_PATH: &str = {:?};",
        path.display().to_string()
    );
    let _ = writeln!(s, "/// The model file's bytes, linked into flash.");
    let _ = writeln!(
        s,
        "pub static MODEL_FILE: &[u8] = include_bytes!({:?});",
        path.display().to_string()
    );
    let defaults = match &info.deployment {
        Some(dep) => {
            check_deployment(dep, d)?;
            (dep.paths, dep.seed, dep.levels.clone())
        }
        None => (32, 0xC5F, vec![0.05, 0.5, 0.95]),
    };
    s.push_str(&defaults_source(defaults.0, defaults.1, &defaults.2));
    let scaling = match path.parent().map(|p| p.join("fit_csv.json")) {
        _ if info.deployment.is_some() => {
            let dep = info.deployment.as_ref().ok_or("no deployment")?;
            Scaling {
                t0: dep.t0,
                unit: dep.unit,
                max_step: dep.solver.1,
                columns: dep.columns.iter().map(|c| (c.1, c.2)).collect(),
                source: format!("{} (version 2)", path.display()),
            }
        }
        Some(json) if json.is_file() && info.version == 1 => {
            println!("cargo:rerun-if-changed={}", json.display());
            let text =
                std::fs::read_to_string(&json).map_err(|e| format!("{}: {e}", json.display()))?;
            let mut sc =
                parse_scaling_json(&text, d).map_err(|e| format!("{}: {e}", json.display()))?;
            sc.source = json.display().to_string();
            sc
        }
        _ => {
            if info.version == 1 && !path.ends_with(DEFAULT_MODEL) {
                println!(
                    "cargo:warning={}: no fit_csv.json beside it: the firmware forecasts in the model's own units (no data scaling, steps of at most {})",
                    path.display(),
                    Scaling::identity(d).max_step
                );
            }
            Scaling::identity(d)
        }
    };
    s.push_str(&scaling_source(&scaling));
    s.push_str(&file_source(&info));
    s.push_str(&deployment_source(&info, &scaling));
    Ok(s)
}

/// The generated deployment (appended to `model.rs`): the observed columns, the time axis
/// and the solver as the library's `tinysde::forecast::file` types, for
/// `Forecaster::from_parts`: a version-2 file's own sections; for a version-1 file its
/// `scaling` (every component observed exactly, affine, SOSRI).
pub fn deployment_source(info: &FileInfo, scaling: &Scaling) -> String {
    let f64_ = |x: f64| format!("f64::from_bits({:#x})", x.to_bits());
    let f32_ = |x: f32| format!("f32::from_bits({:#x})", x.to_bits());
    // (transform, mean, std, name, state index, noise)
    let columns: Vec<(u8, f64, f64, String, usize, f32)> = match &info.deployment {
        Some(dep) => dep
            .columns
            .iter()
            .zip(&dep.observed)
            .map(|(c, o)| (c.0, c.1, c.2, c.3.clone(), o.0, o.1))
            .collect(),
        None => scaling
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| (0, c.0, c.1, String::new(), i, 0.0))
            .collect(),
    };
    let (format, name) = match &info.deployment {
        Some(dep) => dep.time.clone(),
        None => (0, "time".to_string()),
    };
    let method = match &info.deployment {
        Some(dep) => dep.solver.2.clone(),
        None => "SOSRI".to_string(),
    };
    let m = "tinysde::forecast::file";
    let mut out = String::new();
    let _ = writeln!(
        out,
        "/// The observed columns: transform, scaling, state coordinate and observation noise."
    );
    let _ = writeln!(
        out,
        "pub static COLUMNS: [{m}::Column<'static>; {}] = [",
        columns.len()
    );
    for (t, mean, std, name, index, noise) in &columns {
        let _ = writeln!(
            out,
            "    {m}::Column {{ name: {name:?}, transform: {m}::Transform::{}, mean: {}, std: {}, state_index: {index}, noise: {} }},",
            if *t == 1 { "Log" } else { "Affine" },
            f64_(*mean),
            f64_(*std),
            f32_(*noise)
        );
    }
    let _ = writeln!(out, "];");
    let _ = writeln!(
        out,
        "/// The time axis (model time `tau = (t - t0) / unit`)."
    );
    let _ = writeln!(
        out,
        "pub const TIME: {m}::TimeAxis<'static> = {m}::TimeAxis {{ name: {name:?}, format: {m}::TimeFormat::{}, t0: {}, unit: {} }};",
        match format {
            1 => "Date",
            2 => "DateTime",
            _ => "Number",
        },
        f64_(scaling.t0),
        f64_(scaling.unit)
    );
    let trends = info
        .deployment
        .as_ref()
        .map_or(&[][..], |dep| &dep.trends[..]);
    let _ = writeln!(
        out,
        "/// Each column's deterministic mean under the SDE (the file's `TRND`; none: empty)."
    );
    let _ = writeln!(out, "pub static TRENDS: [{m}::Trend; {}] = [", trends.len());
    for t in trends {
        let mut pairs = String::new();
        for k in 0..4 {
            let [a, b] = t.coefficients.get(k).copied().unwrap_or([0.0; 2]);
            let _ = write!(pairs, "[{}, {}], ", f32_(a), f32_(b));
        }
        let _ = writeln!(
            out,
            "    {m}::Trend {{ level: {}, slope: {}, period: {}, harmonics: {}, coefficients: [{pairs}] }},",
            f32_(t.level),
            f32_(t.slope),
            f32_(t.period),
            t.coefficients.len()
        );
    }
    let _ = writeln!(out, "];");
    let lag = info.deployment.as_ref().map_or(0, |dep| dep.seasonal_lag);
    let _ = writeln!(
        out,
        "/// The seasonal difference's lag in readings (the file's `SDIF`; 0: none)."
    );
    let _ = writeln!(out, "pub const SEASONAL_LAG: u16 = {lag};");
    let _ = writeln!(
        out,
        "/// Past model values the forecaster keeps for it: the lag times the columns (0: none,"
    );
    let _ = writeln!(out, "/// and the forecaster's difference code is compiled away).");
    let _ = writeln!(
        out,
        "pub const HISTORY: usize = {};",
        usize::from(lag) * columns.len()
    );
    let _ = writeln!(out, "/// The solver: method and largest step (model time).");
    let _ = writeln!(
        out,
        "pub const SOLVER: {m}::SolverSpec<'static> = {m}::SolverSpec {{ method: {method:?}, max_step: {} }};",
        f32_(scaling.max_step)
    );
    out
}

/// The generated proof of which file the firmware was built from (appended to `model.rs`):
/// its length, its checksum and where its parameters start.
pub fn file_source(info: &FileInfo) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "/// The model file's length in bytes.");
    let _ = writeln!(out, "pub const FILE_LEN: usize = {};", info.len);
    let _ = writeln!(
        out,
        "/// The model file's CRC-32 (its stored checksum, of every byte before it)."
    );
    let _ = writeln!(out, "pub const FILE_CRC: u32 = {:#010x};", info.crc);
    let _ = writeln!(
        out,
        "/// Where the parameters start in the file: `4 * PARAMS` bytes of little-endian `f32`."
    );
    let _ = writeln!(out, "pub const PARAMS_AT: usize = {};", info.params_at);
    out
}

/// The data scaling of a version-1 model file, which does not carry it: `fit_csv` writes
/// it beside the weights as `fit_csv.json` (see docs/weights-format.md). Model time is
/// `tau = (t - t0) / unit`, model state `z_c = (x_c - mean_c) / std_c`.
#[derive(Clone, Debug, PartialEq)]
pub struct Scaling {
    /// Time origin, in the file's time units.
    pub t0: f64,
    /// File time units per model time unit.
    pub unit: f64,
    /// Largest solver step, in model time.
    pub max_step: f32,
    /// Per column: mean and standard deviation.
    pub columns: Vec<(f64, f64)>,
    /// Where it came from (empty: the identity scaling).
    pub source: String,
}

impl Scaling {
    /// No scaling (the seed model works in the data's own units), steps of at most 0.1
    /// (the seed firmware's step).
    pub fn identity(d: usize) -> Self {
        Self {
            t0: 0.0,
            unit: 1.0,
            max_step: 0.1,
            columns: vec![(0.0, 1.0); d],
            source: String::new(),
        }
    }
}

/// Reads the scaling of `fit_csv.json` (its `time.t0`, `time.unit`, the `values`' `mean`
/// and `std`, and the solver's step from `"solver": "SOSRI, steps of at most <h> (model
/// time)"`) for a state of dimension `d`.
pub fn parse_scaling_json(json: &str, d: usize) -> Result<Scaling, String> {
    let doc: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("not a JSON document: {e}"))?;
    let number = |v: &serde_json::Value, what: &str| {
        v.as_f64().ok_or_else(|| format!("no {what} (a number)"))
    };
    let t0 = number(&doc["time"]["t0"], "time.t0")?;
    let unit = number(&doc["time"]["unit"], "time.unit")?;
    let values = doc["values"].as_array().ok_or("no \"values\" list")?;
    if values.len() != d {
        return Err(format!(
            "{} columns in \"values\", the model has {d}",
            values.len()
        ));
    }
    let mut columns = Vec::new();
    for (c, v) in values.iter().enumerate() {
        let mean = number(&v["mean"], &format!("values[{c}].mean"))?;
        let std = number(&v["std"], &format!("values[{c}].std"))?;
        columns.push((mean, std));
    }
    let solver = doc["solver"]
        .as_str()
        .ok_or("no \"solver\" (\"SOSRI, steps of at most ...\")")?;
    let marker = "steps of at most ";
    let s = solver
        .find(marker)
        .ok_or("no solver step (\"steps of at most ...\")")?
        + marker.len();
    let rest = &solver[s..];
    let len = rest.find(' ').unwrap_or(rest.len());
    let max_step: f32 = rest[..len]
        .parse()
        .map_err(|_| format!("solver step \"{}\" is not a number", &rest[..len]))?;
    if !(unit > 0.0 && unit.is_finite() && t0.is_finite() && max_step > 0.0 && max_step.is_finite())
        || columns
            .iter()
            .any(|&(m, s)| !(m.is_finite() && s > 0.0 && s.is_finite()))
    {
        return Err(
            "a time unit, step or standard deviation that is not positive and finite".into(),
        );
    }
    Ok(Scaling {
        t0,
        unit,
        max_step,
        columns,
        source: String::new(),
    })
}

/// The generated forecast defaults (appended to `model.rs`): the file's `FCST` section for
/// version 2, else 32 paths, seed `0xC5F` (fit_csv's host forecast) and the 5, 50 and 95 %
/// quantiles.
pub fn defaults_source(paths: u32, seed: u64, levels: &[f32]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "/// Forecast ensemble paths (the file's default).");
    let _ = writeln!(out, "pub const PATHS: usize = {paths};");
    let _ = writeln!(out, "/// Noise seed of the forecasts (the file's default).");
    let _ = writeln!(out, "pub const NOISE_SEED: u64 = {seed:#x};");
    let _ = writeln!(out, "/// Number of quantile levels.");
    let _ = writeln!(out, "pub const Q: usize = {};", levels.len());
    let _ = writeln!(
        out,
        "/// Quantile levels of the forecasts; a reading's band runs from the first to the last."
    );
    let _ = writeln!(
        out,
        "pub const QUANTILES: [f32; {}] = [{}];",
        levels.len(),
        levels
            .iter()
            .map(|p| format!("f32::from_bits({:#x})", p.to_bits()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    out
}

/// The generated Rust source for a scaling (appended to `model.rs`).
pub fn scaling_source(s: &Scaling) -> String {
    let mut out = String::new();
    let f64s = |v: &mut dyn Iterator<Item = f64>| {
        v.map(|x| format!("f64::from_bits({:#x})", x.to_bits()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let d = s.columns.len();
    let _ = writeln!(
        out,
        "/// Where the scaling came from (`fit_csv.json` beside a version-1 file; empty: none, the model works in the data's units)."
    );
    let _ = writeln!(out, "pub const SCALING_SOURCE: &str = {:?};", s.source);
    let _ = writeln!(out, "/// Time origin, in the data's time units (model time `tau = (t - TIME_ORIGIN) / TIME_UNIT`).");
    let _ = writeln!(
        out,
        "pub const TIME_ORIGIN: f64 = f64::from_bits({:#x});",
        s.t0.to_bits()
    );
    let _ = writeln!(out, "/// Data time units per model time unit.");
    let _ = writeln!(
        out,
        "pub const TIME_UNIT: f64 = f64::from_bits({:#x});",
        s.unit.to_bits()
    );
    let _ = writeln!(out, "/// Largest solver step, in model time.");
    let _ = writeln!(
        out,
        "pub const MAX_STEP: f32 = f32::from_bits({:#x});",
        s.max_step.to_bits()
    );
    let _ = writeln!(
        out,
        "/// Per state component: the data mean (`z = (x - mean) / std`)."
    );
    let _ = writeln!(
        out,
        "pub const COLUMN_MEAN: [f64; {d}] = [{}];",
        f64s(&mut s.columns.iter().map(|c| c.0))
    );
    let _ = writeln!(out, "/// Per state component: the data standard deviation.");
    let _ = writeln!(
        out,
        "pub const COLUMN_STD: [f64; {d}] = [{}];",
        f64s(&mut s.columns.iter().map(|c| c.1))
    );
    out
}

/// A series read from a CSV file: a time column and value columns.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// The value columns' names.
    pub names: Vec<String>,
    /// Times: numbers as written, dates and date-times as Unix seconds (UTC).
    pub times: Vec<f64>,
    /// Values per row (`None`: empty cell or `NA`).
    pub values: Vec<Vec<Option<f64>>>,
}

/// Parses a CSV series as `fit_csv` reads it (a subset): `#` comment lines and blank lines
/// skipped, a header row of names, then rows of a time and values separated by commas;
/// a time is a number, a date `YYYY-MM-DD` or a date-time `YYYY-MM-DDTHH:MM[:SS][Z]`
/// (UTC); an empty value or `NA` is missing.
pub fn parse_csv(text: &str) -> Result<Series, String> {
    let mut names: Option<Vec<String>> = None;
    let mut series = Series {
        names: Vec::new(),
        times: Vec::new(),
        values: Vec::new(),
    };
    for (n, line) in text.lines().enumerate() {
        let line = line.trim().trim_start_matches('\u{feff}');
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let cells: Vec<&str> = line
            .split(',')
            .map(|c| c.trim().trim_matches('"').trim())
            .collect();
        let Some(names) = names.as_ref() else {
            if cells.len() < 2 {
                return Err(format!(
                    "line {}: a header of a time and at least one value column, found \"{line}\"",
                    n + 1
                ));
            }
            names = Some(cells.iter().skip(1).map(|c| c.to_string()).collect());
            continue;
        };
        if cells.len() != names.len() + 1 {
            return Err(format!(
                "line {}: {} cells, the header has {}",
                n + 1,
                cells.len(),
                names.len() + 1
            ));
        }
        let t = parse_time(cells[0]).map_err(|e| format!("line {}: {e}", n + 1))?;
        let mut row = Vec::with_capacity(names.len());
        for c in &cells[1..] {
            if c.is_empty() || c.eq_ignore_ascii_case("na") {
                row.push(None);
            } else {
                match c.parse::<f64>() {
                    Ok(x) if x.is_finite() => row.push(Some(x)),
                    _ => return Err(format!("line {}: \"{c}\" is not a finite number", n + 1)),
                }
            }
        }
        series.times.push(t);
        series.values.push(row);
    }
    series.names = names.ok_or("no header row")?;
    Ok(series)
}

/// A time cell: a number, `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM[:SS][Z]` (Unix seconds, UTC).
pub fn parse_time(cell: &str) -> Result<f64, String> {
    if let Ok(x) = cell.parse::<f64>() {
        return if x.is_finite() {
            Ok(x)
        } else {
            Err(format!("\"{cell}\" is not a finite time"))
        };
    }
    let bad = || format!("\"{cell}\" is neither a number nor a date YYYY-MM-DD[THH:MM[:SS][Z]]");
    let num = |s: &str| -> Option<i64> {
        (!s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let b = cell.as_bytes();
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return Err(bad());
    }
    let (Some(y), Some(m), Some(d)) = (num(&cell[0..4]), num(&cell[5..7]), num(&cell[8..10]))
    else {
        return Err(bad());
    };
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return Err(bad());
    }
    let days = days_from_civil(y, m, d) as f64 * 86_400.0;
    let rest = &cell[10..];
    if rest.is_empty() {
        return Ok(days);
    }
    let clock = rest
        .strip_prefix('T')
        .or_else(|| rest.strip_prefix(' '))
        .ok_or_else(bad)?;
    let clock = clock.strip_suffix('Z').unwrap_or(clock);
    let parts: Vec<&str> = clock.split(':').collect();
    if !(2..=3).contains(&parts.len()) {
        return Err(bad());
    }
    let (Some(hh), Some(mm)) = (num(parts[0]), num(parts[1])) else {
        return Err(bad());
    };
    let ss: f64 = match parts.get(2) {
        None => 0.0,
        Some(s) => s.parse().map_err(|_| bad())?,
    };
    Ok(days + (hh * 3600 + mm * 60) as f64 + ss)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The generated Rust source of `readings.rs`: the series (or none) as arrays in flash,
/// every number as its exact bit pattern.
pub fn readings_source(source: Option<&Path>, series: Option<&Series>) -> String {
    let empty = Series {
        names: vec!["value".into()],
        times: Vec::new(),
        values: Vec::new(),
    };
    let s = series.unwrap_or(&empty);
    let n = s.times.len();
    let c = s.names.len();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "// Generated by tinysde-modelgen from {} (do not edit).",
        source.map_or("no readings".into(), |p| p.display().to_string())
    );
    let _ = writeln!(out, "/// Number of recorded readings.");
    let _ = writeln!(out, "pub const READINGS: usize = {n};");
    let _ = writeln!(out, "/// Value columns per reading.");
    let _ = writeln!(out, "pub const COLUMNS: usize = {c};");
    let _ = writeln!(out, "/// The value columns' names.");
    let _ = writeln!(out, "pub const COLUMN_NAMES: [&str; {c}] = {:?};", s.names);
    let _ = writeln!(
        out,
        "/// The CSV the readings were recorded from (its path at build time; empty if none)."
    );
    let _ = writeln!(
        out,
        "pub const READINGS_SOURCE: &str = {:?};",
        source.map_or(String::new(), |p| p.display().to_string())
    );
    let _ = writeln!(
        out,
        "/// The readings' times in the CSV's units (dates: Unix seconds), as `f64` bits."
    );
    let _ = write!(out, "pub static READING_TIMES: [u64; {n}] = [");
    for t in &s.times {
        let _ = write!(out, "{:#x}, ", t.to_bits());
    }
    let _ = writeln!(out, "];");
    let _ = writeln!(
        out,
        "/// The readings' values, as `f64` bits; `None`: missing."
    );
    let _ = write!(
        out,
        "pub static READING_VALUES: [[Option<u64>; {c}]; {n}] = ["
    );
    for row in &s.values {
        let _ = write!(out, "[");
        for v in row {
            match v {
                Some(x) => {
                    let _ = write!(out, "Some({:#x}), ", x.to_bits());
                }
                None => {
                    let _ = write!(out, "None, ");
                }
            }
        }
        let _ = write!(out, "], ");
    }
    let _ = writeln!(out, "];");
    out
}

/// Resolves a path from an environment variable: absolute as is, relative against `root`.
pub fn resolve(root: &Path, value: &str) -> PathBuf {
    let p = Path::new(value);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        root.join(p)
    }
}

/// What build.rs does: reads the model file named by [`ENV_MODEL`] (default
/// [`DEFAULT_MODEL`]) and the readings named by [`ENV_READINGS`], writes `model.rs` and
/// `readings.rs` into `out_dir`, and prints the `cargo:` lines (rerun triggers). `root` is
/// the repository root. Returns the files it read.
pub fn generate(root: &Path, out_dir: &Path) -> Result<Vec<PathBuf>, String> {
    println!("cargo:rerun-if-env-changed={ENV_MODEL}");
    println!("cargo:rerun-if-env-changed={ENV_READINGS}");
    let custom = std::env::var(ENV_MODEL).ok().filter(|v| !v.is_empty());
    let model = resolve(root, custom.as_deref().unwrap_or(DEFAULT_MODEL));
    println!("cargo:rerun-if-changed={}", model.display());
    let bytes =
        std::fs::read(&model).map_err(|e| format!("{ENV_MODEL}: {}: {e}", model.display()))?;
    let model_rs = model_source(&model, &bytes).map_err(|e| format!("{}: {e}", model.display()))?;
    std::fs::write(out_dir.join("model.rs"), model_rs).map_err(|e| e.to_string())?;

    let readings = match std::env::var(ENV_READINGS).ok().filter(|v| !v.is_empty()) {
        Some(v) => Some(resolve(root, &v)),
        None if custom.is_none() => Some(resolve(root, DEFAULT_READINGS)),
        None => None,
    };
    let series = match &readings {
        Some(p) => {
            println!("cargo:rerun-if-changed={}", p.display());
            let text = std::fs::read_to_string(p)
                .map_err(|e| format!("{ENV_READINGS}: {}: {e}", p.display()))?;
            Some(parse_csv(&text).map_err(|e| format!("{}: {e}", p.display()))?)
        }
        None => None,
    };
    std::fs::write(
        out_dir.join("readings.rs"),
        readings_source(readings.as_deref(), series.as_ref()),
    )
    .map_err(|e| e.to_string())?;
    Ok([Some(model), readings].into_iter().flatten().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = "neural_sde(chain(pow(1,3),dense(1,20,fast_tanh),dense(20,1,identity)),chain(dense(1,20,fast_sigmoid),dense(20,1,identity)))";

    #[test]
    fn fit_csv_json_gives_the_scaling_or_says_what_is_missing() {
        // The layout fit_csv writes, keys in any order and spacing.
        let json = r#"{"values": [ {"std": 168.9, "name": "flow", "mean": 919.35} ],
            "solver": "SOSRI, steps of at most 0.25 (model time)",
            "time": {"unit": 1.0, "t0": 1871, "format": "number", "name": "year"},
            "format": "tinysde-scaling", "version": 1}"#;
        let s = parse_scaling_json(json, 1).unwrap();
        assert_eq!((s.t0, s.unit, s.max_step), (1871.0, 1.0, 0.25));
        assert_eq!(s.columns, [(919.35, 168.9)]);
        for (bad, says) in [
            (json.replace("\"t0\"", "\"t1\""), "time.t0"),
            (json.replace("\"std\"", "\"sd\""), "values[0].std"),
            (json.replace("0.25 (", "x ("), "solver step"),
            (json.replace("\"unit\": 1.0", "\"unit\": 0"), "not positive"),
            (
                json.replace("} ]", "}, {\"mean\": 0, \"std\": 1} ]"),
                "2 columns",
            ),
            (json.replace("\"solver\"", "\"method\""), "solver"),
            (json[..40].to_string(), "not a JSON document"),
        ] {
            let e = parse_scaling_json(&bad, 1).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn seed_description_gives_the_seed_type() {
        let shape = parse_description(SEED).unwrap();
        assert_eq!(shape.state_dim().unwrap(), 1);
        assert_eq!(shape.params(), 122);
        assert_eq!(
            shape.drift.rust_type().unwrap(),
            "(tinysde::nn::Pow<1, 3>, tinysde::nn::Dense<1, 20, tinysde::nn::FastTanh>, tinysde::nn::Dense<20, 1, tinysde::nn::Identity>)"
        );
        assert_eq!(
            shape.diffusion.rust_type().unwrap(),
            "(tinysde::nn::Dense<1, 20, tinysde::nn::FastSigmoid>, tinysde::nn::Dense<20, 1, tinysde::nn::Identity>)"
        );
    }

    #[test]
    fn a_seasonal_description_gives_the_seasonal_type() {
        let text = "seasonal(1,chain(dense(3,20,quick_tanh),dense(20,1,identity)),chain(dense(3,20,quick_sigmoid),dense(20,1,identity)))";
        let shape = parse_description(text).unwrap();
        assert_eq!(shape.periods, Some(1));
        assert_eq!(shape.state_dim().unwrap(), 1);
        assert_eq!(shape.params(), 1 + 101 + 101);
        assert_eq!(
            shape.drift.rust_type().unwrap(),
            "(tinysde::nn::Dense<3, 20, tinysde::nn::QuickTanh>, tinysde::nn::Dense<20, 1, tinysde::nn::Identity>)"
        );
        assert_eq!(
            shape.model_type("Drift", "Diffusion"),
            "tinysde::sde::Seasonal<1, Drift, Diffusion>"
        );
        // Two state coordinates and two periods: 2 + 4 inputs.
        let two = "seasonal(2,dense(6,2,identity),dense(6,2,identity))";
        assert_eq!(parse_description(two).unwrap().state_dim().unwrap(), 2);
        // Networks that do not take the features are refused, as is a period count of 0.
        let e = parse_description("seasonal(1,dense(1,1,identity),dense(1,1,identity))")
            .unwrap()
            .state_dim()
            .unwrap_err();
        assert!(e.contains("D + 2 -> D"), "{e}");
        assert!(parse_description("seasonal(0,dense(1,1,identity),dense(1,1,identity))").is_err());
        let e = parse_description("stochastic(dense(1,1,identity))").unwrap_err();
        assert!(e.contains("\"neural_sde(\" or \"seasonal(\""), "{e}");
    }

    #[test]
    fn the_committed_seed_file_reads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../app/model/seed.tsw");
        let bytes = std::fs::read(&path).unwrap();
        let info = read_file_info(&bytes).unwrap();
        assert_eq!(
            (info.version, info.description.as_str(), info.params),
            (1, SEED, 122)
        );
        let src = model_source(&path, &bytes).unwrap();
        assert!(src.contains("pub const PARAMS: usize = 122;"));
        assert!(src.contains("pub const D: usize = 1;"));
    }

    /// A version-2 file around the committed seed model's bytes (sections as
    /// docs/weights-format.md lays them out).
    fn seed_v2(transform: u8, noise: f32, sections: &[&str]) -> Vec<u8> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../app/model/seed.tsw");
        let v1 = std::fs::read(path).unwrap();
        let name = |b: &mut Vec<u8>, s: &str| {
            b.extend((s.len() as u16).to_le_bytes());
            b.extend(s.as_bytes());
        };
        let mut stat = vec![1, 0, 1, 0, 0, 0, 0, 0];
        stat.extend(noise.to_le_bytes());
        let mut cols = vec![1, 0, transform, 0];
        cols.extend(919.35f64.to_le_bytes());
        cols.extend(168.5f64.to_le_bytes());
        name(&mut cols, "flow");
        let mut time = vec![0, 0];
        time.extend(1871.0f64.to_le_bytes());
        time.extend(1.0f64.to_le_bytes());
        name(&mut time, "year");
        let mut solv = vec![0, 0];
        solv.extend(0.5f32.to_le_bytes());
        name(&mut solv, "SOSRI");
        let mut fcst = 16u32.to_le_bytes().to_vec();
        fcst.extend(7u64.to_le_bytes());
        fcst.push(2);
        fcst.extend(0.1f32.to_le_bytes());
        fcst.extend(0.9f32.to_le_bytes());
        // One column: 1 harmonic, period 12, level 0.5, slope -0.25, [sin, cos] = [1.5, 2].
        let mut trnd = vec![1, 0, 1, 0];
        for x in [12.0f32, 0.5, -0.25, 1.5, 2.0] {
            trnd.extend(x.to_le_bytes());
        }
        let all = [
            ("MODL", v1[10..v1.len() - 4].to_vec()),
            ("STAT", stat),
            ("COLS", cols),
            ("TIME", time),
            ("SOLV", solv),
            ("FCST", fcst),
            ("TRND", trnd),
            // A seasonal difference of 12 readings.
            ("SDIF", vec![12, 0, 0, 0]),
            ("NEWS", vec![0]),
        ];
        let mut body = Vec::new();
        for (tag, payload) in all.iter().filter(|(t, _)| sections.contains(t)) {
            body.extend(tag.as_bytes());
            body.extend((payload.len() as u32).to_le_bytes());
            body.extend(payload);
        }
        let mut file = b"TSDEWGT\0".to_vec();
        file.extend(2u16.to_le_bytes());
        file.extend(0u16.to_le_bytes());
        file.extend(((16 + body.len() + 4) as u32).to_le_bytes());
        file.extend(body);
        let crc = crc32(&file);
        file.extend(crc.to_le_bytes());
        file
    }

    const ALL: [&str; 6] = ["MODL", "STAT", "COLS", "TIME", "SOLV", "FCST"];

    #[test]
    fn a_version_2_file_gives_its_scaling_step_and_defaults() {
        let bytes = seed_v2(0, 0.0, &ALL);
        let src = model_source(Path::new("m.tsm"), &bytes).unwrap();
        for line in [
            "pub const PARAMS: usize = 122;",
            "pub const FILE_VERSION: u16 = 2;",
            "pub const PATHS: usize = 16;",
            "pub const NOISE_SEED: u64 = 0x7;",
            "pub const Q: usize = 2;",
            &format!(
                "pub const TIME_ORIGIN: f64 = f64::from_bits({:#x});",
                1871.0f64.to_bits()
            ),
            &format!(
                "pub const MAX_STEP: f32 = f32::from_bits({:#x});",
                0.5f32.to_bits()
            ),
            &format!(
                "pub const COLUMN_STD: [f64; 1] = [f64::from_bits({:#x})];",
                168.5f64.to_bits()
            ),
        ] {
            assert!(src.contains(line), "{line} not in\n{src}");
        }
    }

    #[test]
    fn a_version_2_file_gives_its_deployment_and_proof() {
        let bytes = seed_v2(1, 0.25, &ALL);
        let src = model_source(Path::new("m.tsm"), &bytes).unwrap();
        let crc = u32::from_le_bytes(bytes[bytes.len() - 4..].try_into().unwrap());
        for line in [
            format!("pub const FILE_LEN: usize = {};", bytes.len()),
            format!("pub const FILE_CRC: u32 = {crc:#010x};"),
            // Header, the MODL section's tag and length, the description's length and
            // text, the parameter count.
            format!("pub const PARAMS_AT: usize = {};", 16 + 8 + 4 + SEED.len() + 4),
            "name: \"flow\", transform: tinysde::forecast::file::Transform::Log".to_string(),
            format!("noise: f32::from_bits({:#x})", 0.25f32.to_bits()),
            "tinysde::forecast::file::TimeAxis { name: \"year\", format: tinysde::forecast::file::TimeFormat::Number".to_string(),
            format!(
                "tinysde::forecast::file::SolverSpec {{ method: \"SOSRI\", max_step: f32::from_bits({:#x}) }}",
                0.5f32.to_bits()
            ),
        ] {
            assert!(src.contains(&line), "{line} not in\n{src}");
        }
        // The parameters are where PARAMS_AT says.
        let at = 16 + 8 + 4 + SEED.len() + 4;
        let v1 = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../app/model/seed.tsw"))
            .unwrap();
        let v1_at = 14 + SEED.len() + 4;
        assert_eq!(bytes[at..at + 4 * 122], v1[v1_at..v1_at + 4 * 122]);
        assert!(model_source(Path::new("m.tsw"), &v1)
            .unwrap()
            .contains(&format!("pub const PARAMS_AT: usize = {v1_at};")));
    }

    #[test]
    fn a_trend_section_gives_the_deterministic_means() {
        let f = |x: f32| format!("f32::from_bits({:#x})", x.to_bits());
        let without = model_source(Path::new("m.tsm"), &seed_v2(0, 0.0, &ALL)).unwrap();
        assert!(without.contains("pub static TRENDS: [tinysde::forecast::file::Trend; 0] = ["));
        let mut with = ALL.to_vec();
        with.push("TRND");
        let src = model_source(Path::new("m.tsm"), &seed_v2(0, 0.0, &with)).unwrap();
        let line = format!(
            "tinysde::forecast::file::Trend {{ level: {}, slope: {}, period: {}, harmonics: 1, coefficients: [[{}, {}], [{z}, {z}], [{z}, {z}], [{z}, {z}], ] }},",
            f(0.5),
            f(-0.25),
            f(12.0),
            f(1.5),
            f(2.0),
            z = f(0.0)
        );
        assert!(src.contains("pub static TRENDS: [tinysde::forecast::file::Trend; 1] = ["));
        assert!(src.contains(&line), "{line} not in\n{src}");
        // A critical section the generator does not know is refused, as the library does.
        with.push("NEWS");
        let e = model_source(Path::new("m.tsm"), &seed_v2(0, 0.0, &with)).unwrap_err();
        assert!(e.contains("\"NEWS\" is critical and unknown"), "{e}");
    }

    #[test]
    fn a_difference_section_gives_the_lag_and_the_history() {
        let without = model_source(Path::new("m.tsm"), &seed_v2(0, 0.0, &ALL)).unwrap();
        assert!(without.contains("pub const SEASONAL_LAG: u16 = 0;"));
        assert!(without.contains("pub const HISTORY: usize = 0;"));
        let mut with = ALL.to_vec();
        with.push("SDIF");
        let src = model_source(Path::new("m.tsm"), &seed_v2(0, 0.0, &with)).unwrap();
        assert!(src.contains("pub const SEASONAL_LAG: u16 = 12;"), "{src}");
        assert!(src.contains("pub const HISTORY: usize = 12;"), "{src}");
    }

    #[test]
    fn a_version_2_file_the_firmware_cannot_forecast_is_refused() {
        let e = model_source(Path::new("m.tsm"), &seed_v2(2, 0.0, &ALL)).unwrap_err();
        assert!(e.contains("transform 2"), "{e}");
        let e = model_source(Path::new("m.tsm"), &seed_v2(0, f32::NAN, &ALL)).unwrap_err();
        assert!(e.contains("observed, in order"), "{e}");
        // A corrupt file: the generator checks the checksum.
        let mut bad = seed_v2(0, 0.0, &ALL);
        bad[40] ^= 1;
        let e = model_source(Path::new("m.tsm"), &bad).unwrap_err();
        assert!(e.contains("checksum mismatch"), "{e}");
        let e = model_source(Path::new("m.tsm"), &seed_v2(0, 0.0, &ALL[..5])).unwrap_err();
        assert!(e.contains("without a FCST section"), "{e}");
        let mut short = seed_v2(0, 0.0, &ALL);
        short.pop();
        let e = model_source(Path::new("m.tsm"), &short).unwrap_err();
        assert!(e.contains("the header says"), "{e}");
    }

    #[test]
    fn errors_say_what_was_found() {
        let e = parse_description(
            "neural_sde(chain(dense(1,20,gelu),dense(20,1,identity)),dense(1,1,identity))",
        )
        .unwrap()
        .drift
        .rust_type()
        .unwrap_err();
        assert!(e.contains("unknown activation \"gelu\""), "{e}");
        let e = parse_description("neural_sde(conv(1,2),dense(1,1,identity))").unwrap_err();
        assert!(
            e.contains("at byte 11") && e.contains("found \"conv(1,2)"),
            "{e}"
        );
        let e = parse_description("neural_sde(dense(1,2,tanh),dense(1,1,identity))")
            .unwrap()
            .state_dim()
            .unwrap_err();
        assert!(e.contains("drift maps 1 -> 2"), "{e}");
        let e = parse_description(
            "neural_sde(chain(dense(1,2,tanh),dense(3,1,identity)),dense(1,1,identity))",
        )
        .unwrap()
        .state_dim()
        .unwrap_err();
        assert!(e.contains("layer 2 takes 3 inputs"), "{e}");
        assert!(parse_description(&format!("{SEED}x")).is_err());
        assert!(parse_description("neural_sde(dense(0,1,tanh),dense(1,1,tanh))").is_err());
        assert!(read_file_info(b"TSDEWGT\0\x07\x00")
            .unwrap_err()
            .contains("version 7"));
        assert!(read_file_info(b"PK\x03\x04")
            .unwrap_err()
            .contains("not a tinysde model file"));
        // A truncation anywhere in the header is an error, never a panic.
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../app/model/seed.tsw");
        let bytes = std::fs::read(path).unwrap();
        for n in 0..18 + SEED.len() {
            assert!(read_file_info(&bytes[..n]).is_err(), "{n}");
        }
    }

    #[test]
    fn csv_times_values_and_missing() {
        let s = parse_csv(
            "# c\nyear,a,b\n1871,1120,\n1872,NA,3.5\n\n2000-03-01,1,2\n1970-01-02T01:00Z,0,0\n",
        )
        .unwrap();
        assert_eq!(s.names, ["a", "b"]);
        assert_eq!(s.times, [1871.0, 1872.0, 951_868_800.0, 90_000.0]);
        assert_eq!(s.values[0], [Some(1120.0), None]);
        assert_eq!(s.values[1], [None, Some(3.5)]);
        assert!(parse_csv("t,a\n1,2,3\n").unwrap_err().contains("3 cells"));
        assert!(parse_csv("t,a\nx,2\n").unwrap_err().contains("\"x\""));
        let src = readings_source(None, Some(&s));
        assert!(src.contains("pub const READINGS: usize = 4;"));
        assert!(src.contains("Some(0x40918000000000"), "{src}");
    }
}
