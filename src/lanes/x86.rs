//! [`F32x<L>`](super::F32x)'s basic operations as explicit x86-64 vector instructions.
//!
//! The portable lane-wise loops give the right bits everywhere, but once a model's whole
//! step is inlined LLVM's SLP vectorizer may regroup the unrolled scalar operations across
//! lanes *and* hidden units (4-wide registers, shuffles to transpose between them). Here
//! each operation on `L` lanes is a fixed sequence of `W`-wide instructions (`W` = 16 with
//! AVX-512F, 8 with AVX, 4 with the SSE every x86-64 has), chosen at compile time from the
//! target features, used when `W` divides `L`; otherwise the portable loop runs.
//!
//! Bits: `add/sub/mul/div` and the ordered, quiet comparisons are the IEEE operations the
//! one-lane `f32` code performs (no fused multiply-add is ever emitted), and select/negate/
//! abs only move bits, so every lane keeps the one-lane result exactly; the lane tests
//! compare them bit for bit.
//!
//! The one `unsafe` operation is reinterpreting a `[f32; W]` (or `[u32; W]`) chunk as the
//! register type of the same size and back, which is sound: the sizes are equal (checked at
//! compile time) and every bit pattern is a valid value of both.

use core::arch::x86_64::*;
use core::mem::{size_of, transmute_copy};

use super::{Arith, Compare};

/// An intrinsic call: its instruction set is enabled for the whole build (each use sits
/// under the `cfg(target_feature)` of its width, and SSE is part of x86-64), which is what
/// makes calling it sound.
macro_rules! simd {
    ($e:expr) => {
        // SAFETY: see the macro's documentation.
        unsafe { $e }
    };
}

/// `x` reinterpreted as `Dst` (same size, checked at compile time; all bit patterns valid).
#[inline(always)]
fn cast<Src: Copy, Dst: Copy>(x: &Src) -> Dst {
    const { assert!(size_of::<Src>() == size_of::<Dst>()) };
    // SAFETY: the sizes are equal (asserted above) and both types are plain vectors of
    // 32-bit floats or integers, for which every bit pattern is valid; `transmute_copy`
    // reads unaligned.
    unsafe { transmute_copy(x) }
}

/// A `W`-lane chunk (`chunks_exact` gives exactly `W`; the default never shows) as the
/// register type `V`.
#[inline(always)]
fn load<E: Copy + Default, V: Copy, const W: usize>(chunk: &[E]) -> V {
    let lanes = <[E; W]>::try_from(chunk).unwrap_or([E::default(); W]);
    cast(&lanes)
}

/// `f` applied to `W`-lane chunks of `a` and `b` as the register type `V`; `L` must be a
/// multiple of `W` (the callers check).
#[inline(always)]
fn chunks<A: Copy + Default, R: Copy + Default, V: Copy, const L: usize, const W: usize>(
    a: [A; L],
    b: [A; L],
    f: impl Fn(V, V) -> V,
) -> [R; L] {
    let mut out = [R::default(); L];
    let chunks = out
        .chunks_exact_mut(W)
        .zip(a.chunks_exact(W))
        .zip(b.chunks_exact(W));
    for ((o, a), b) in chunks {
        let r: [R; W] = cast(&f(load::<_, _, W>(a), load::<_, _, W>(b)));
        o.copy_from_slice(&r);
    }
    out
}

/// `f(mask, a, b)` on `W`-lane chunks as the register type `V`; `L` must be a multiple of
/// `W` (the callers check).
#[allow(dead_code, reason = "unused when the build has no blend instruction")]
#[inline(always)]
fn blend_chunks<V: Copy, const L: usize, const W: usize>(
    mask: [f32; L],
    a: [f32; L],
    b: [f32; L],
    f: impl Fn(V, V, V) -> V,
) -> [f32; L] {
    let mut out = b;
    let chunks = out
        .chunks_exact_mut(W)
        .zip(mask.chunks_exact(W))
        .zip(a.chunks_exact(W));
    for ((o, m), a) in chunks {
        let (m, a, b) = (load::<_, _, W>(m), load::<_, _, W>(a), load::<_, _, W>(o));
        let r: [f32; W] = cast(&f(m, a, b));
        o.copy_from_slice(&r);
    }
    out
}

/// The widest register width this build has that divides `L` (0 if none).
#[inline(always)]
const fn width(lanes: usize) -> usize {
    if cfg!(target_feature = "avx512f") && lanes % 16 == 0 {
        16
    } else if cfg!(target_feature = "avx") && lanes % 8 == 0 {
        8
    } else if lanes % 4 == 0 {
        4
    } else {
        0
    }
}

/// `a op b` lane by lane, or `None` when no register width divides `L`.
#[inline(always)]
pub(super) fn arith<const L: usize>(op: Arith, a: [f32; L], b: [f32; L]) -> Option<[f32; L]> {
    Some(match width(L) {
        #[cfg(target_feature = "avx512f")]
        16 => chunks::<_, _, __m512, L, 16>(a, b, |a, b| match op {
            Arith::Add => simd!(_mm512_add_ps(a, b)),
            Arith::Sub => simd!(_mm512_sub_ps(a, b)),
            Arith::Mul => simd!(_mm512_mul_ps(a, b)),
            Arith::Div => simd!(_mm512_div_ps(a, b)),
            Arith::MaxOfFirst => simd!(_mm512_max_ps(a, b)),
            Arith::MinOfFirst => simd!(_mm512_min_ps(a, b)),
        }),
        #[cfg(target_feature = "avx")]
        8 => chunks::<_, _, __m256, L, 8>(a, b, |a, b| match op {
            Arith::Add => simd!(_mm256_add_ps(a, b)),
            Arith::Sub => simd!(_mm256_sub_ps(a, b)),
            Arith::Mul => simd!(_mm256_mul_ps(a, b)),
            Arith::Div => simd!(_mm256_div_ps(a, b)),
            Arith::MaxOfFirst => simd!(_mm256_max_ps(a, b)),
            Arith::MinOfFirst => simd!(_mm256_min_ps(a, b)),
        }),
        4 => chunks::<_, _, __m128, L, 4>(a, b, |a, b| match op {
            Arith::Add => simd!(_mm_add_ps(a, b)),
            Arith::Sub => simd!(_mm_sub_ps(a, b)),
            Arith::Mul => simd!(_mm_mul_ps(a, b)),
            Arith::Div => simd!(_mm_div_ps(a, b)),
            Arith::MaxOfFirst => simd!(_mm_max_ps(a, b)),
            Arith::MinOfFirst => simd!(_mm_min_ps(a, b)),
        }),
        _ => return None,
    })
}

/// The all-ones/all-zeros mask of `a cmp b`, or `None` when no register width divides `L`.
#[inline(always)]
pub(super) fn compare<const L: usize>(cmp: Compare, a: [f32; L], b: [f32; L]) -> Option<[u32; L]> {
    let masks: [f32; L] = match width(L) {
        #[cfg(target_feature = "avx512f")]
        16 => chunks::<_, _, __m512, L, 16>(a, b, |a, b| {
            let bits = match cmp {
                Compare::Lt => simd!(_mm512_cmp_ps_mask::<_CMP_LT_OQ>(a, b)),
                Compare::Le => simd!(_mm512_cmp_ps_mask::<_CMP_LE_OQ>(a, b)),
                Compare::Eq => simd!(_mm512_cmp_ps_mask::<_CMP_EQ_OQ>(a, b)),
            };
            simd!(_mm512_castsi512_ps(_mm512_maskz_set1_epi32(bits, -1)))
        }),
        #[cfg(target_feature = "avx")]
        8 => chunks::<_, _, __m256, L, 8>(a, b, |a, b| match cmp {
            Compare::Lt => simd!(_mm256_cmp_ps::<_CMP_LT_OQ>(a, b)),
            Compare::Le => simd!(_mm256_cmp_ps::<_CMP_LE_OQ>(a, b)),
            Compare::Eq => simd!(_mm256_cmp_ps::<_CMP_EQ_OQ>(a, b)),
        }),
        4 => chunks::<_, _, __m128, L, 4>(a, b, |a, b| match cmp {
            Compare::Lt => simd!(_mm_cmplt_ps(a, b)),
            Compare::Le => simd!(_mm_cmple_ps(a, b)),
            Compare::Eq => simd!(_mm_cmpeq_ps(a, b)),
        }),
        _ => return None,
    };
    Some(cast(&masks))
}

/// `a` where `mask` is set, `b` elsewhere (`mask` all ones or all zeros per lane), or `None`
/// when no register width divides `L`.
#[inline(always)]
pub(super) fn select<const L: usize>(mask: [u32; L], a: [f32; L], b: [f32; L]) -> Option<[f32; L]> {
    let mask: [f32; L] = cast(&mask);
    // A blend reads each lane's sign bit, the whole flag for all-ones/all-zeros lanes, and
    // the compiler turns a blend of a comparison into min/max where those agree. Without a
    // blend instruction (SSE before 4.1): (a & m) | (b & !m).
    #[cfg(all(target_feature = "avx512f", target_feature = "avx512dq"))]
    if width(L) == 16 {
        return Some(blend_chunks::<__m512, L, 16>(mask, a, b, |m, a, b| {
            simd!(_mm512_mask_blend_ps(
                _mm512_movepi32_mask(_mm512_castps_si512(m)),
                b,
                a
            ))
        }));
    }
    #[cfg(target_feature = "avx")]
    if width(L) >= 8 {
        return Some(blend_chunks::<__m256, L, 8>(mask, a, b, |m, a, b| {
            simd!(_mm256_blendv_ps(b, a, m))
        }));
    }
    #[cfg(target_feature = "sse4.1")]
    if width(L) == 4 {
        return Some(blend_chunks::<__m128, L, 4>(mask, a, b, |m, a, b| {
            simd!(_mm_blendv_ps(b, a, m))
        }));
    }
    or(and(mask, a)?, and_not(mask, b)?)
}

macro_rules! bitwise {
    ($(#[$doc:meta])* $name:ident, $w16:ident, $w8:ident, $w4:ident) => {
        $(#[$doc])*
        #[inline(always)]
        pub(super) fn $name<E: Copy + Default, const L: usize>(a: [E; L], b: [E; L]) -> Option<[E; L]> {
            Some(match width(L) {
                #[cfg(target_feature = "avx512f")]
                16 => chunks::<_, _, __m512, L, 16>(a, b, |a, b| {
                    simd!(_mm512_castsi512_ps($w16(_mm512_castps_si512(a), _mm512_castps_si512(b))))
                }),
                #[cfg(target_feature = "avx")]
                8 => chunks::<_, _, __m256, L, 8>(a, b, |a, b| simd!($w8(a, b))),
                4 => chunks::<_, _, __m128, L, 4>(a, b, |a, b| simd!($w4(a, b))),
                _ => return None,
            })
        }
    };
}
bitwise!(
    /// `a & b` bit by bit (lanes of any 32-bit type; `None` when no register width divides `L`).
    and, _mm512_and_si512, _mm256_and_ps, _mm_and_ps
);
bitwise!(
    /// `!a & b` bit by bit.
    and_not, _mm512_andnot_si512, _mm256_andnot_ps, _mm_andnot_ps
);
bitwise!(
    /// `a | b` bit by bit.
    or, _mm512_or_si512, _mm256_or_ps, _mm_or_ps
);
bitwise!(
    /// `a ^ b` bit by bit.
    xor, _mm512_xor_si512, _mm256_xor_ps, _mm_xor_ps
);
