//! Model parameters to and from a versioned little-endian byte format.
//!
//! A weights blob holds a model's parameters together with a canonical description of the
//! model's shape, so that loading into a different model (another width, activation or
//! layer order) is refused instead of silently producing garbage. The core functions work
//! on byte slices and never allocate, so firmware can load weights straight from
//! `include_bytes!`; with feature `std` there are also `to_vec`, `save` and `load`.
//!
//! # Format, version 1
//!
//! All integers are little-endian. `L` is the description length, `N` the parameter count.
//!
//! | offset         | size   | field                                                       |
//! |----------------|--------|-------------------------------------------------------------|
//! | 0              | 8      | magic `b"TSDEWGT\0"` ([`MAGIC`])                             |
//! | 8              | 2      | format version, `u16` = 1 ([`VERSION`])                      |
//! | 10             | 4      | `L`, `u32`: length of the shape description in bytes        |
//! | 14             | `L`    | shape description, ASCII (see [`Describe`])                 |
//! | 14 + L         | 4      | `N`, `u32`: number of parameters                            |
//! | 18 + L         | 4 `N`  | parameters as `f32` bit patterns (`u32`), in the order of [`Parameters`] |
//! | 18 + L + 4 `N` | 4      | CRC-32 of bytes `0 .. 18 + L + 4 N`                          |
//!
//! The blob is exactly `22 + L + 4 N` bytes ([`encoded_len`]); trailing bytes are refused.
//! The checksum is the common CRC-32 (IEEE 802.3 / zlib / PNG: reflected polynomial
//! `0xEDB88320`, initial value and final xor `0xFFFFFFFF`; [`crc32`]), so any tool can check
//! it. Parameters are stored bit for bit, so `-0.0` and subnormals round-trip exactly;
//! non-finite parameters are refused both when writing and when reading.
//!
//! The shape description of the seed task's model, for example, is
//!
//! ```text
//! neural_sde(chain(pow(1,3),dense(1,20,fast_tanh),dense(20,1,identity)),chain(dense(1,20,fast_sigmoid),dense(20,1,identity)))
//! ```
//!
//! # Reading order and errors
//!
//! [`read_into`] (and [`inspect`]) check, in order: the magic ([`WeightsError::BadMagic`]),
//! the version ([`WeightsError::UnsupportedVersion`]), that the blob holds the declared
//! contents ([`WeightsError::Truncated`]), the checksum ([`WeightsError::Checksum`]), that
//! nothing follows the checksum ([`Error::Length`]), then against the model: the description
//! ([`WeightsError::ShapeMismatch`]), the parameter count ([`WeightsError::ParamCount`]) and
//! that every parameter is finite ([`Error::NonFinite`]). Only when everything passed is the
//! model written; on any error it is untouched.
//!
//! ```
//! use tinysde::nn::{Cube, Dense, FastSigmoid, FastTanh, Identity, InitScheme};
//! use tinysde::sde::NeuralSde;
//! use tinysde::weights;
//!
//! type Drift = (Cube<1>, Dense<1, 20, FastTanh>, Dense<20, 1, Identity>);
//! type Diffusion = (Dense<1, 20, FastSigmoid>, Dense<20, 1, Identity>);
//! type Model = NeuralSde<Drift, Diffusion>;
//!
//! let mut model = Model::default();
//! model.init(&mut tinysde::noise::rng_from_seed(1), InitScheme::GlorotUniform).unwrap();
//!
//! let mut buf = [0u8; 1024];
//! let n = weights::write(&model, &mut buf).unwrap();
//! assert_eq!(n, weights::encoded_len::<Model>());
//!
//! let mut loaded = Model::default();
//! weights::read_into(&mut loaded, &buf[..n]).unwrap();
//! assert_eq!(loaded, model);
//!
//! // A model of another shape is refused and left as it was.
//! let mut other = NeuralSde::<Drift, (Dense<1, 20, FastTanh>, Dense<20, 1, Identity>)>::default();
//! let err = weights::read_into(&mut other, &buf[..n]).unwrap_err();
//! assert_eq!(err, tinysde::Error::Weights(tinysde::WeightsError::ShapeMismatch));
//! ```

use crate::error::{check_len, Error, WeightsError};
use crate::nn::{Activation, Dense, Parameters, Pow};
use crate::sde::NeuralSde;

/// The first eight bytes of every weights blob.
pub const MAGIC: [u8; 8] = *b"TSDEWGT\0";

/// The format version this build writes and the only one it reads.
pub const VERSION: u16 = 1;

/// Bytes of a blob besides the description and the parameters: magic, version, the two
/// length fields and the checksum.
pub const OVERHEAD: usize = 8 + 2 + 4 + 4 + 4;

const DESC_OFFSET: usize = 14;

/// A model that can be stored in a weights blob: it describes its shape canonically and
/// visits its parameters, without allocating.
///
/// The visiting methods must list the parameters in the same order as [`Parameters`]
/// (`read_params` / `write_params`); the implementations here do, and the tests check it.
/// Implement this trait for a hand-written SDE to store it; use a description that names
/// the type and everything that changes the meaning of its parameters.
///
/// ```
/// use tinysde::nn::{Cube, Dense, FastTanh, Identity};
/// use tinysde::weights::Describe;
/// let mut text = Vec::new();
/// <(Cube<1>, Dense<1, 3, FastTanh>, Dense<3, 1, Identity>)>::describe(&mut |b| text.extend_from_slice(b));
/// assert_eq!(text, b"chain(pow(1,3),dense(1,3,fast_tanh),dense(3,1,identity))");
/// ```
pub trait Describe: Parameters {
    /// Streams the canonical description to `sink`, in one or more pieces whose
    /// concatenation is the description (ASCII).
    fn describe(sink: &mut dyn FnMut(&[u8]));
    /// Calls `f` with each parameter, in the order of [`Parameters`].
    fn visit_params(&self, f: &mut dyn FnMut(f32));
    /// Calls `f` with a mutable reference to each parameter, in the order of [`Parameters`].
    fn visit_params_mut(&mut self, f: &mut dyn FnMut(&mut f32));
}

/// Streams the decimal digits of `n` (with a leading `-` if negative) to `sink`.
#[allow(
    clippy::indexing_slicing,
    reason = "i counts down from 20 and an i64 has at most 19 digits and a sign"
)]
fn write_int(sink: &mut dyn FnMut(&[u8]), n: i64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let mut m = n.unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (m % 10) as u8;
        m /= 10;
        if m == 0 {
            break;
        }
    }
    if n < 0 {
        sink(b"-");
    }
    sink(&buf[i..]);
}

impl<const I: usize, const O: usize, A: Activation> Describe for Dense<I, O, A> {
    /// `dense(I,O,<activation name>)`.
    fn describe(sink: &mut dyn FnMut(&[u8])) {
        // The integers one by one: each call folds to constants; a loop over a slice of them
        // links a 64-bit division into every firmware (+2.7 KB on the M4F).
        sink(b"dense(");
        write_int(sink, I as i64);
        sink(b",");
        write_int(sink, O as i64);
        sink(b",");
        sink(A::NAME.as_bytes());
        sink(b")");
    }
    fn visit_params(&self, f: &mut dyn FnMut(f32)) {
        self.weight
            .iter()
            .flatten()
            .chain(&self.bias)
            .for_each(|&x| f(x));
    }
    fn visit_params_mut(&mut self, f: &mut dyn FnMut(&mut f32)) {
        self.weight
            .iter_mut()
            .flatten()
            .chain(&mut self.bias)
            .for_each(f);
    }
}

impl<const D: usize, const P: i32> Describe for Pow<D, P> {
    /// `pow(D,P)`.
    fn describe(sink: &mut dyn FnMut(&[u8])) {
        sink(b"pow(");
        write_int(sink, D as i64);
        sink(b",");
        write_int(sink, P as i64);
        sink(b")");
    }
    fn visit_params(&self, _f: &mut dyn FnMut(f32)) {}
    fn visit_params_mut(&mut self, _f: &mut dyn FnMut(&mut f32)) {}
}

impl<F: Describe, G: Describe> Describe for NeuralSde<F, G> {
    /// `neural_sde(<drift>,<diffusion>)`.
    fn describe(sink: &mut dyn FnMut(&[u8])) {
        sink(b"neural_sde(");
        F::describe(sink);
        sink(b",");
        G::describe(sink);
        sink(b")");
    }
    fn visit_params(&self, f: &mut dyn FnMut(f32)) {
        self.drift.visit_params(f);
        self.diffusion.visit_params(f);
    }
    fn visit_params_mut(&mut self, f: &mut dyn FnMut(&mut f32)) {
        self.drift.visit_params_mut(f);
        self.diffusion.visit_params_mut(f);
    }
}

macro_rules! describe_tuple {
    ($first:ident $(, $rest:ident)+) => {
        /// `chain(<first>,<second>,...)`.
        impl<$first: Describe $(, $rest: Describe)+> Describe for ($first, $($rest),+) {
            fn describe(sink: &mut dyn FnMut(&[u8])) {
                sink(b"chain(");
                $first::describe(sink);
                $(
                    sink(b",");
                    $rest::describe(sink);
                )+
                sink(b")");
            }
            #[allow(non_snake_case)]
            fn visit_params(&self, f: &mut dyn FnMut(f32)) {
                let ($first, $($rest),+) = self;
                $first.visit_params(f);
                $($rest.visit_params(f);)+
            }
            #[allow(non_snake_case)]
            fn visit_params_mut(&mut self, f: &mut dyn FnMut(&mut f32)) {
                let ($first, $($rest),+) = self;
                $first.visit_params_mut(f);
                $($rest.visit_params_mut(f);)+
            }
        }
    };
}

describe_tuple!(A, B);
describe_tuple!(A, B, C);
describe_tuple!(A, B, C, D);
describe_tuple!(A, B, C, D, E);
describe_tuple!(A, B, C, D, E, F);

/// The length in bytes of `M`'s shape description.
pub fn description_len<M: Describe + ?Sized>() -> usize {
    let mut n = 0usize;
    M::describe(&mut |b| n = n.saturating_add(b.len()));
    n
}

/// The exact size in bytes of a weights blob for `M`: `22 + L + 4 N` (see the module docs).
///
/// ```
/// use tinysde::nn::{Dense, Identity};
/// // "dense(1,1,identity)" is 19 bytes; 2 parameters.
/// assert_eq!(tinysde::weights::encoded_len::<Dense<1, 1, Identity>>(), 22 + 19 + 8);
/// ```
pub fn encoded_len<M: Describe + ?Sized>() -> usize {
    OVERHEAD + description_len::<M>() + 4 * M::PARAMS
}

/// The CRC-32 used by the format (IEEE 802.3, as in zlib and PNG), from a 16-entry table.
///
/// ```
/// assert_eq!(tinysde::weights::crc32(b"123456789"), 0xCBF4_3926);
/// ```
pub fn crc32(bytes: &[u8]) -> u32 {
    crc32_finish(crc32_update(CRC_INIT, bytes))
}

pub(crate) const CRC_INIT: u32 = 0xFFFF_FFFF;

/// CRC-32 of every 4-bit value, for the reflected polynomial 0xEDB88320.
#[allow(
    clippy::indexing_slicing,
    reason = "evaluated at compile time: i < 16 indexes a table of 16"
)]
const CRC_NIBBLE: [u32; 16] = {
    let mut table = [0u32; 16];
    let mut i = 0;
    while i < 16 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 4 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xEDB8_8320
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

#[inline]
#[allow(
    clippy::indexing_slicing,
    reason = "the index is masked to 4 bits, the table has 16 entries"
)]
pub(crate) fn crc32_update(mut crc: u32, bytes: &[u8]) -> u32 {
    for &b in bytes {
        crc ^= b as u32;
        crc = (crc >> 4) ^ CRC_NIBBLE[(crc & 0xF) as usize];
        crc = (crc >> 4) ^ CRC_NIBBLE[(crc & 0xF) as usize];
    }
    crc
}

#[inline]
pub(crate) fn crc32_finish(crc: u32) -> u32 {
    crc ^ 0xFFFF_FFFF
}

/// Checks the parameters `model` visits before any of them is written: each finite
/// ([`Error::NonFinite`] with the first bad index), and as many as `M::PARAMS`
/// ([`Error::Length`]: a hand-written [`Describe`] that disagrees with its `Parameters`).
/// The weights blob's and the model file's writers both start with it.
pub(crate) fn check_params<M: Describe + ?Sized>(model: &M) -> Result<(), Error> {
    let mut index = 0usize;
    let mut bad = None;
    model.visit_params(&mut |x| {
        if bad.is_none() && !x.is_finite() {
            bad = Some(index);
        }
        index += 1;
    });
    if let Some(index) = bad {
        return Err(Error::NonFinite {
            what: "parameters",
            index,
        });
    }
    check_len("visited parameters", M::PARAMS, index)
}

/// Writes `model` as a weights blob at the start of `out` and returns the number of bytes
/// written ([`encoded_len`]). `out` may be longer; the rest is left as it was.
///
/// Errors, with `out` untouched: [`Error::Length`] if `out` is shorter than
/// [`encoded_len`], [`Error::NonFinite`] if a parameter is NaN or infinite,
/// [`Error::OutOfRange`] if the description or parameter count does not fit in a `u32`.
///
/// ```
/// use tinysde::nn::{Dense, Identity};
/// let layer = Dense::<1, 1, Identity>::new([[2.0]], [-0.0]);
/// let mut buf = [0u8; 64];
/// let n = tinysde::weights::write(&layer, &mut buf).unwrap();
/// assert_eq!(&buf[..8], &tinysde::weights::MAGIC);
/// assert!(tinysde::weights::write(&layer, &mut buf[..n - 1]).is_err());
/// ```
pub fn write<M: Describe + ?Sized>(model: &M, out: &mut [u8]) -> Result<usize, Error> {
    let desc_len = description_len::<M>();
    let total = encoded_len::<M>();
    if out.len() < total {
        return Err(Error::Length {
            what: "weights buffer",
            expected: total,
            found: out.len(),
        });
    }
    let (Ok(desc_len32), Ok(count32)) = (u32::try_from(desc_len), u32::try_from(M::PARAMS)) else {
        return Err(Error::OutOfRange {
            what: "model description or parameter count exceeds u32",
        });
    };
    check_params(model)?;

    let body = total - 4;
    let mut pos = 0usize;
    let mut crc = CRC_INIT;
    let mut put = |bytes: &[u8]| {
        // `checked_add`, not saturating: the slice is then exactly `bytes.len()` long and
        // `copy_from_slice` provably cannot panic (the no-panic proof checks it).
        let end = pos.checked_add(bytes.len());
        if let Some(dst) = end.and_then(|end| out.get_mut(pos..end)) {
            dst.copy_from_slice(bytes);
            crc = crc32_update(crc, bytes);
        }
        pos = end.unwrap_or(usize::MAX);
    };
    put(&MAGIC);
    put(&VERSION.to_le_bytes());
    put(&desc_len32.to_le_bytes());
    M::describe(&mut put);
    put(&count32.to_le_bytes());
    model.visit_params(&mut |x| put(&x.to_bits().to_le_bytes()));
    let end = pos;
    if let (true, Some(dst)) = (end == body, out.get_mut(body..total)) {
        dst.copy_from_slice(&crc32_finish(crc).to_le_bytes());
        Ok(total)
    } else {
        // Only a `Describe` whose description changes between calls gets here.
        Err(Error::Length {
            what: "model description",
            expected: desc_len,
            found: end.saturating_sub(OVERHEAD - 4 + 4 * M::PARAMS),
        })
    }
}

/// A parsed weights blob whose structure and checksum are valid (from [`inspect`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Blob<'a> {
    description: &'a [u8],
    params: &'a [u8],
}

impl<'a> Blob<'a> {
    /// A blob of a description and the parameters' bytes (4 per parameter).
    pub(crate) const fn from_parts(description: &'a [u8], params: &'a [u8]) -> Self {
        Self {
            description,
            params,
        }
    }

    /// The shape description as stored (ASCII for blobs written by tinysde).
    pub fn description(&self) -> &'a [u8] {
        self.description
    }

    /// The description as text, if it is valid UTF-8.
    pub fn description_str(&self) -> Option<&'a str> {
        core::str::from_utf8(self.description).ok()
    }

    /// The number of parameters stored.
    pub fn param_count(&self) -> usize {
        self.params.len() / 4
    }

    /// The stored parameters, in order (bit-exact).
    pub fn params(&self) -> impl Iterator<Item = f32> + 'a {
        self.params
            .chunks_exact(4)
            .map(|c| f32::from_bits(u32::from_le_bytes(c.try_into().unwrap_or([0; 4]))))
    }
}

fn le_u16(bytes: &[u8], at: usize) -> Result<u16, Error> {
    match bytes.get(at..at + 2) {
        Some(&[a, b]) => Ok(u16::from_le_bytes([a, b])),
        _ => Err(WeightsError::Truncated.into()),
    }
}

fn le_u32(bytes: &[u8], at: usize) -> Result<u32, Error> {
    match bytes.get(at..at.checked_add(4).ok_or(WeightsError::Truncated)?) {
        Some(&[a, b, c, d]) => Ok(u32::from_le_bytes([a, b, c, d])),
        _ => Err(WeightsError::Truncated.into()),
    }
}

/// Checks a blob's magic, version, length and checksum, without any model, and returns its
/// parts. Errors as described in the module docs. A version 2 file (a deployable model
/// file) is refused with `UnsupportedVersion(2)`: read it with
/// [`ModelFile::parse`](crate::forecast::file::ModelFile::parse), whose
/// [`model`](crate::forecast::file::ModelFile::model) is this blob and whose `load_into`
/// is [`read_into`]. Keeping the two readers apart keeps the version 2 reader (about 3.8 KB
/// of Cortex-M4F flash) out of firmware that loads only version 1 files.
///
/// ```
/// use tinysde::nn::{Dense, Identity};
/// let layer = Dense::<1, 1, Identity>::new([[2.0]], [0.5]);
/// let mut buf = [0u8; 64];
/// let n = tinysde::weights::write(&layer, &mut buf).unwrap();
/// let blob = tinysde::weights::inspect(&buf[..n]).unwrap();
/// assert_eq!(blob.description_str(), Some("dense(1,1,identity)"));
/// assert_eq!(blob.params().collect::<Vec<_>>(), [2.0, 0.5]);
/// ```
pub fn inspect(bytes: &[u8]) -> Result<Blob<'_>, Error> {
    let head = bytes.len().min(MAGIC.len());
    if bytes.get(..head) != MAGIC.get(..head) {
        return Err(WeightsError::BadMagic.into());
    }
    let version = le_u16(bytes, MAGIC.len())?;
    if version != VERSION {
        return Err(WeightsError::UnsupportedVersion(version).into());
    }
    let desc_len = le_u32(bytes, 10)? as usize;
    let count_at = DESC_OFFSET
        .checked_add(desc_len)
        .ok_or(WeightsError::Truncated)?;
    let count = le_u32(bytes, count_at)? as usize;
    let body = count
        .checked_mul(4)
        .and_then(|p| p.checked_add(count_at + 4))
        .ok_or(WeightsError::Truncated)?;
    let total = body.checked_add(4).ok_or(WeightsError::Truncated)?;
    if bytes.len() < total {
        return Err(WeightsError::Truncated.into());
    }
    let stored = le_u32(bytes, body)?;
    let (Some(content), Some(description), Some(params)) = (
        bytes.get(..body),
        bytes.get(DESC_OFFSET..count_at),
        bytes.get(count_at + 4..body),
    ) else {
        return Err(WeightsError::Truncated.into());
    };
    if crc32(content) != stored {
        return Err(WeightsError::Checksum.into());
    }
    // Checked after the checksum so a corrupted length field reads as corruption.
    if bytes.len() > total {
        return Err(Error::Length {
            what: "weights blob",
            expected: total,
            found: bytes.len(),
        });
    }
    Ok(Blob {
        description,
        params,
    })
}

/// Whether `description` is exactly `M`'s shape description (streamed, no allocation).
pub fn matches_shape<M: Describe + ?Sized>(description: &[u8]) -> bool {
    let mut rest = description;
    let mut same = true;
    M::describe(&mut |piece| {
        if same {
            match rest.strip_prefix(piece) {
                Some(r) => rest = r,
                None => same = false,
            }
        }
    });
    same && rest.is_empty()
}

/// Loads the parameters in `bytes` into `model`, after checking the blob completely (see
/// the module docs for the checks and their order). On any error `model` is untouched.
///
/// ```
/// use tinysde::nn::{Dense, Identity};
/// let layer = Dense::<1, 1, Identity>::new([[2.0]], [0.5]);
/// let mut buf = [0u8; 64];
/// let n = tinysde::weights::write(&layer, &mut buf).unwrap();
/// let mut loaded = Dense::<1, 1, Identity>::zeros();
/// tinysde::weights::read_into(&mut loaded, &buf[..n]).unwrap();
/// assert_eq!(loaded, layer);
/// buf[n - 1] ^= 1; // corrupt the checksum
/// assert!(tinysde::weights::read_into(&mut loaded, &buf[..n]).is_err());
/// ```
pub fn read_into<M: Describe + ?Sized>(model: &mut M, bytes: &[u8]) -> Result<(), Error> {
    load_blob(model, &inspect(bytes)?)
}

/// Loads a checked blob's parameters into `model` (the model checks of [`read_into`]).
///
/// Not inlined on 32-bit Arm (the Cortex-M): inlined, the optimizer may keep a loaded
/// model's parameters apart, each written and copied on its own (measured on the M4F: the
/// inference firmware with the quick-activation seed model 16 492 -> 13 532 B of flash).
#[cfg_attr(target_arch = "arm", inline(never))]
pub(crate) fn load_blob<M: Describe + ?Sized>(model: &mut M, blob: &Blob<'_>) -> Result<(), Error> {
    if !matches_shape::<M>(blob.description) {
        return Err(WeightsError::ShapeMismatch.into());
    }
    if blob.param_count() != M::PARAMS {
        return Err(WeightsError::ParamCount {
            expected: u32::try_from(M::PARAMS).unwrap_or(u32::MAX),
            found: blob.param_count() as u32,
        }
        .into());
    }
    if let Some(index) = blob.params().position(|x| !x.is_finite()) {
        return Err(Error::NonFinite {
            what: "weights parameters",
            index,
        });
    }
    // Count the visits first so a `Describe` that disagrees with `PARAMS` changes nothing.
    let mut visited = 0usize;
    model.visit_params(&mut |_| visited += 1);
    if visited != M::PARAMS {
        return Err(Error::Length {
            what: "visited parameters",
            expected: M::PARAMS,
            found: visited,
        });
    }
    let mut values = blob.params();
    model.visit_params_mut(&mut |p| {
        if let Some(v) = values.next() {
            *p = v;
        }
    });
    Ok(())
}

/// `model` as a weights blob in a new vector (feature `std`).
#[cfg(feature = "std")]
pub fn to_vec<M: Describe + ?Sized>(model: &M) -> Result<std::vec::Vec<u8>, Error> {
    let mut out = std::vec![0u8; encoded_len::<M>()];
    let n = write(model, &mut out)?;
    out.truncate(n);
    Ok(out)
}

/// Writes `model` to the file `path` atomically: to a temporary file beside it, then
/// renamed over `path`, so a failure never leaves a partial file (feature `std`).
/// A tinysde error (for example non-finite parameters) is returned as
/// `std::io::ErrorKind::InvalidInput` wrapping the [`Error`].
#[cfg(feature = "std")]
pub fn save<M: Describe + ?Sized>(
    model: &M,
    path: impl AsRef<std::path::Path>,
) -> std::io::Result<()> {
    use std::io::Write;
    let path = path.as_ref();
    let bytes =
        to_vec(model).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp_name);
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Loads the weights file `path` into `model` (feature `std`); the model is untouched on
/// error. A malformed or mismatched file is `std::io::ErrorKind::InvalidData` wrapping the
/// [`Error`] (get it back with `err.get_ref()` and `downcast_ref::<tinysde::Error>()`).
#[cfg(feature = "std")]
pub fn load<M: Describe + ?Sized>(
    model: &mut M,
    path: impl AsRef<std::path::Path>,
) -> std::io::Result<()> {
    let bytes = std::fs::read(path)?;
    read_into(model, &bytes).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}
