//! Hand-written vector–Jacobian products (reverse mode) of the layers.
//!
//! Reverse mode needs, for a layer `y = L(x)` and a cotangent `ȳ` (the derivative of a
//! scalar with respect to `y`), the cotangent of the input `x̄ = (∂y/∂x)ᵀ ȳ` and of the
//! parameters `θ̄ += (∂y/∂θ)ᵀ ȳ`. [`Backward`] gives both with no tape and no allocation:
//! [`Backward::forward_cached`] returns the output and a small fixed-size cache (for
//! [`Dense`] the activation's derivative at each pre-activation; for a chain, the inner
//! outputs and the members' caches), and [`Backward::backward`] consumes it.
//!
//! Both run on a [`PlainReal`] scalar: `f32` for one trajectory, or
//! [`F32x<L>`](crate::lanes::F32x) for L trajectories at once, each lane with the bits of
//! the `f32` computation (the parameter cotangent then has one lane per trajectory).
//!
//! The activation derivatives are those forward mode uses (each activation is evaluated
//! once on [`Dual<1>`]), so both modes differentiate the same function.

// The forward pass's own dot product: the recomputed pre-activations have its bits.
use super::dense::dot;
use super::{Activation, Dense, Layer, ParamSeed, Parameters, Pow};
use crate::directional::Directional;
use crate::dual::Dual;
use crate::lanes::Lanes;
use crate::real::{PlainReal, Real};

/// A layer with its vector–Jacobian product, on `f32` or on lanes of trajectories.
///
/// `backward` *adds* the parameter cotangent into `params_bar` (length
/// [`Parameters::PARAMS`], in the flat parameter order) and returns the input cotangent.
///
/// ```
/// use tinysde::nn::{Backward, Dense, Identity};
/// use tinysde::F32x;
/// let layer = Dense::<2, 1, Identity>::new([[1.0, 2.0]], [0.5]);
/// let x = [3.0, 4.0];
/// let (y, cache) = layer.forward_cached(&x);
/// assert_eq!(y, [11.5]);
/// let mut params_bar = [0.0f32; 3];
/// let x_bar = layer.backward(&x, &cache, &[1.0], &mut params_bar);
/// assert_eq!(x_bar, [1.0, 2.0]); // the weights
/// assert_eq!(params_bar, [3.0, 4.0, 1.0]); // the inputs, then 1 for the bias
///
/// // Two inputs at once, one per lane: each lane's cotangents are its own.
/// let x = [F32x([3.0, 1.0]), F32x([4.0, 0.0])];
/// let (_, cache) = layer.forward_cached(&x);
/// let mut params_bar = [F32x([0.0; 2]); 3];
/// layer.backward(&x, &cache, &[F32x([1.0; 2])], &mut params_bar);
/// assert_eq!(params_bar, [F32x([3.0, 1.0]), F32x([4.0, 0.0]), F32x([1.0; 2])]);
/// ```
pub trait Backward<T: PlainReal = f32>: Layer<T> {
    /// What the backward pass needs from the forward pass, beyond the input.
    type Cache;
    /// The output (the same values as [`Layer::forward`]) and the cache.
    fn forward_cached(&self, x: &Self::Input) -> (Self::Output, Self::Cache);
    /// The input cotangent for the output cotangent `y_bar` at input `x`; adds the
    /// parameter cotangent into `params_bar` (which must be `PARAMS` long; shorter slices
    /// are filled as far as they go, never indexed out of bounds).
    fn backward(
        &self,
        x: &Self::Input,
        cache: &Self::Cache,
        y_bar: &Self::Output,
        params_bar: &mut [T],
    ) -> Self::Input;
    /// [`forward_cached`](Backward::forward_cached) then [`backward`](Backward::backward)
    /// with the cache kept in this call's own storage: the input cotangent for `y_bar` at
    /// `x`, the parameter cotangent added into `params_bar`. The same results; a chain
    /// keeps its members' caches and inner outputs where their forward passes wrote them
    /// instead of moving them into its cache (on the Cortex-M4F each move of a hidden
    /// layer's outputs was a `memcpy` per network evaluation of reverse mode).
    ///
    /// ```
    /// use tinysde::nn::{Backward, Dense, Identity, Tanh};
    /// let net = (Dense::<1, 2, Tanh>::new([[0.5], [-1.0]], [0.1, 0.2]), Dense::<2, 1, Identity>::new([[1.0, 2.0]], [0.0]));
    /// let (x, y_bar) = ([0.3f32], [1.0f32]);
    /// let (mut by_cache, mut fused) = ([0.0f32; 7], [0.0f32; 7]);
    /// let (_, cache) = net.forward_cached(&x);
    /// let x_bar = net.backward(&x, &cache, &y_bar, &mut by_cache);
    /// assert_eq!(net.vjp(&x, &y_bar, &mut fused), x_bar);
    /// assert_eq!(fused, by_cache);
    /// ```
    #[inline(always)]
    fn vjp(&self, x: &Self::Input, y_bar: &Self::Output, params_bar: &mut [T]) -> Self::Input {
        let (_, cache) = self.forward_cached(x);
        self.backward(x, &cache, y_bar, params_bar)
    }

    /// [`forward_cached`](Backward::forward_cached), then `then` on the output and the
    /// cache where the forward pass wrote them: the same values, handed over by reference
    /// instead of returned. [`Dense`] overrides it to fill its pair in place, so that a
    /// chain's [`vjp`](Backward::vjp) does not copy a hidden layer's outputs and
    /// derivatives from the layer's pair into its own (on the host's lanes a `memcpy` of
    /// both arrays per network evaluation of reverse mode).
    ///
    /// ```
    /// use tinysde::nn::{Backward, Dense, Identity};
    /// let layer = Dense::<2, 1, Identity>::new([[1.0, 2.0]], [0.5]);
    /// let y = layer.forward_cached_then(&[3.0f32, 4.0], |y, _cache| *y);
    /// assert_eq!(y, layer.forward_cached(&[3.0, 4.0]).0);
    /// ```
    #[inline(always)]
    fn forward_cached_then<R>(
        &self,
        x: &Self::Input,
        then: impl FnOnce(&Self::Output, &Self::Cache) -> R,
    ) -> R {
        let (y, cache) = self.forward_cached(x);
        then(&y, &cache)
    }
}

impl<const I: usize, const O: usize, A: Activation> Dense<I, O, A> {
    /// [`Backward::forward_cached`]'s outputs `y` and activation derivatives `dy`, written
    /// into the caller's arrays (every element).
    #[inline(always)]
    fn fill_cached<T: PlainReal>(&self, x: &[T; I], y: &mut [T; O], dy: &mut [T; O]) {
        let mut done = 0;
        if <T as Lanes>::WIDTH > 1 {
            // Several lanes: four outputs' pre-activations, then their activations and
            // derivatives together (`apply_array` goes operation by operation across them,
            // so that a wide core overlaps the four dependency chains), as in Dense's lane
            // forward pass; the same operations per output.
            let groups = y
                .chunks_exact_mut(4)
                .zip(dy.chunks_exact_mut(4))
                .zip(self.weight.chunks_exact(4))
                .zip(self.bias.chunks_exact(4));
            for (((y4, dy4), rows), bias) in groups {
                let mut z = [Dual::<1, T::Value>::constant(<T as Real>::ZERO); 4];
                for ((z, row), &b) in z.iter_mut().zip(rows).zip(bias) {
                    *z = Dual::variable(T::cst(b) + dot(x, row), 0);
                }
                A::apply_array(&mut z);
                for ((yo, dyo), z) in y4.iter_mut().zip(dy4).zip(z) {
                    (*yo, *dyo) = (z.v, z.t[0]);
                }
                done += 4;
            }
        }
        // One output at a time (`apply` gives `apply_array`'s results element by element):
        // the pre-activation, its activation and derivative stay in registers.
        let rest = y
            .iter_mut()
            .zip(dy)
            .zip(&self.weight)
            .zip(&self.bias)
            .skip(done);
        for (((yo, dyo), row), &b) in rest {
            let z = A::apply(Dual::<1, T::Value>::variable(T::cst(b) + dot(x, row), 0));
            (*yo, *dyo) = (z.v, z.t[0]);
        }
    }
}

impl<T: PlainReal, const I: usize, const O: usize, A: Activation> Backward<T> for Dense<I, O, A> {
    /// The activation's derivative at each pre-activation.
    type Cache = [T; O];

    #[inline(always)]
    fn forward_cached(&self, x: &[T; I]) -> ([T; O], [T; O]) {
        // Built in the returned value itself, which the optimizer then writes in place.
        let mut out = ([<T as Real>::ZERO; O], [<T as Real>::ZERO; O]);
        self.fill_cached(x, &mut out.0, &mut out.1);
        out
    }

    #[inline(always)]
    fn forward_cached_then<R>(&self, x: &[T; I], then: impl FnOnce(&[T; O], &[T; O]) -> R) -> R {
        let mut out = ([<T as Real>::ZERO; O], [<T as Real>::ZERO; O]);
        self.fill_cached(x, &mut out.0, &mut out.1);
        then(&out.0, &out.1)
    }

    #[inline(always)]
    fn backward(&self, x: &[T; I], cache: &[T; O], y_bar: &[T; O], params_bar: &mut [T]) -> [T; I] {
        let mut x_bar = [<T as Real>::ZERO; I];
        if let Some(whole) = params_bar.get_mut(..I * O + O) {
            // Every parameter cotangent there (the usual case): rows of `I` weights and the
            // biases walked alongside the outputs, no bounds check per output. The same
            // operations in the same order as the general loop below.
            let (w_bar, b_bar) = whole.split_at_mut(I * O);
            let rows = self.weight.iter().zip(cache).zip(y_bar);
            for (((row, &d), &yb), (wb, bb)) in rows.zip(w_bar.chunks_exact_mut(I).zip(b_bar)) {
                let z_bar = d * yb;
                for (wbi, &xi) in wb.iter_mut().zip(x) {
                    *wbi += z_bar * xi;
                }
                *bb += z_bar;
                for (xbi, &wi) in x_bar.iter_mut().zip(row) {
                    *xbi += z_bar * wi;
                }
            }
            return x_bar;
        }
        let (w_bar, b_bar) = params_bar.split_at_mut((I * O).min(params_bar.len()));
        for (o, ((row, &d), &yb)) in self.weight.iter().zip(cache).zip(y_bar).enumerate() {
            let z_bar = d * yb;
            if let Some(wb) = w_bar.get_mut(o * I..(o + 1) * I) {
                for (wbi, &xi) in wb.iter_mut().zip(x) {
                    *wbi += z_bar * xi;
                }
            }
            if let Some(bb) = b_bar.get_mut(o) {
                *bb += z_bar;
            }
            for (xbi, &wi) in x_bar.iter_mut().zip(row) {
                *xbi += z_bar * wi;
            }
        }
        x_bar
    }
}

impl<T: PlainReal, const D: usize, const P: i32> Backward<T> for Pow<D, P> {
    type Cache = ();

    #[inline(always)]
    fn forward_cached(&self, x: &[T; D]) -> ([T; D], ()) {
        (self.forward(x, ParamSeed::NONE), ())
    }

    #[inline(always)]
    fn backward(&self, x: &[T; D], _: &(), y_bar: &[T; D], _: &mut [T]) -> [T; D] {
        let mut x_bar = [<T as Real>::ZERO; D];
        for ((xb, &xi), &yb) in x_bar.iter_mut().zip(x).zip(y_bar) {
            // The derivative rule of forward mode: P x^(P-1), and 0 for P = 0.
            *xb = Dual::<1, T::Value>::variable(xi, 0).powi(P).t[0] * yb;
        }
        x_bar
    }
}

/// The parameter cotangents of a chain member whose parameters start at `offset`.
#[inline]
fn member<T>(params_bar: &mut [T], offset: usize) -> &mut [T] {
    params_bar.get_mut(offset..).unwrap_or(&mut [])
}

macro_rules! chain_backward {
    (
        first: $A:ident $a:ident $ca:ident $ya:ident;
        mid: $($B:ident $b:ident $cb:ident $yb:ident $bin:ident),*;
        last: $Z:ident $z:ident $cz:ident $zin:ident;
        rev: $($RB:ident $rb:ident $rcb:ident $rbin:ident),*;
        $($from:ident => $to:ident),+
    ) => {
        /// The members' vector–Jacobian products in reverse order; the cache holds every
        /// member's cache and every inner output.
        impl<T: PlainReal, $A: Backward<T> $(, $B: Backward<T>)*, $Z: Backward<T>> Backward<T>
            for ($A, $($B,)* $Z)
        where
            $($to: Layer<T, Input = <$from as Layer<T>>::Output>,)+
        {
            type Cache = (
                $A::Cache,
                <$A as Layer<T>>::Output,
                $($B::Cache, <$B as Layer<T>>::Output,)*
                $Z::Cache,
            );

            #[inline(always)]
            fn forward_cached(&self, x: &Self::Input) -> (Self::Output, Self::Cache) {
                let ($a, $($b,)* $z) = self;
                let ($ya, $ca) = $a.forward_cached(x);
                $(let ($yb, $cb) = $b.forward_cached(&$bin);)*
                let (y, $cz) = $z.forward_cached(&$zin);
                (y, ($ca, $ya, $($cb, $yb,)* $cz))
            }

            #[inline(always)]
            fn vjp(&self, x: &Self::Input, y_bar: &Self::Output, params_bar: &mut [T]) -> Self::Input {
                // Each member's output and cache stay where its forward pass wrote them
                // (`forward_cached_then`: moving them out would copy the arrays), and the
                // backward passes run inside the innermost member's continuation.
                let ($a, $($b,)* $z) = self;
                $a.forward_cached_then(x, |$ya, $ca| {
                    chain_backward!(@nest [$($b $yb $cb $bin),*] $z $cz $zin => {
                        chain_backward!(@backward x, y_bar, params_bar, $a $ca $ya; $Z $z $cz $zin;
                            $($RB $rb $rcb $rbin),*)
                    })
                })
            }

            #[inline(always)]
            fn backward(
                &self,
                x: &Self::Input,
                cache: &Self::Cache,
                y_bar: &Self::Output,
                params_bar: &mut [T],
            ) -> Self::Input {
                let ($a, $($b,)* $z) = self;
                let ($ca, $ya, $($cb, $yb,)* $cz) = cache;
                chain_backward!(@backward x, y_bar, params_bar, $a $ca $ya; $Z $z $cz $zin;
                    $($RB $rb $rcb $rbin),*)
            }
        }
    };
    // The middle members' and the last member's cached forward passes, each inside the
    // previous one's continuation, then `$body` with every output and cache in scope.
    (@nest [] $z:ident $cz:ident $zin:ident => $body:block) => {
        $z.forward_cached_then($zin, |_, $cz| $body)
    };
    (@nest [$b:ident $yb:ident $cb:ident $bin:ident $(, $rb:ident $ryb:ident $rcb:ident $rbin:ident)*]
        $z:ident $cz:ident $zin:ident => $body:block) => {
        $b.forward_cached_then($bin, |$yb, $cb| {
            chain_backward!(@nest [$($rb $ryb $rcb $rbin),*] $z $cz $zin => $body)
        })
    };
    // The members' backward passes in reverse order, given references to their caches and
    // inner outputs (`backward` and `vjp` share it).
    (@backward $x:ident, $y_bar:ident, $params_bar:ident, $a:ident $ca:ident $ya:ident;
        $Z:ident $z:ident $cz:ident $zin:ident; $($RB:ident $rb:ident $rcb:ident $rbin:ident),*) => {{
        #[allow(unused_mut)] // a two-member chain never moves it
        let mut offset = <Self as Parameters>::PARAMS - $Z::PARAMS;
        let bar = $z.backward($zin, $cz, $y_bar, member($params_bar, offset));
        $(
            offset -= $RB::PARAMS;
            let bar = $rb.backward($rbin, $rcb, &bar, member($params_bar, offset));
        )*
        let _ = (offset, $ya);
        $a.backward($x, $ca, &bar, member($params_bar, 0))
    }};
}

chain_backward!(
    first: A a ca ya;
    mid: ;
    last: B b cb ya;
    rev: ;
    A => B
);
chain_backward!(
    first: A a ca ya;
    mid: B b cb yb ya;
    last: C c cc yb;
    rev: B b cb ya;
    A => B, B => C
);
chain_backward!(
    first: A a ca ya;
    mid: B b cb yb ya, C c cc yc yb;
    last: D d cd yc;
    rev: C c cc yb, B b cb ya;
    A => B, B => C, C => D
);
chain_backward!(
    first: A a ca ya;
    mid: B b cb yb ya, C c cc yc yb, D d cd yd yc;
    last: E e ce yd;
    rev: D d cd yc, C c cc yb, B b cb ya;
    A => B, B => C, C => D, D => E
);
chain_backward!(
    first: A a ca ya;
    mid: B b cb yb ya, C c cc yc yb, D d cd yd yc, E e ce ye yd;
    last: F f cf ye;
    rev: E e ce yd, D d cd yc, C c cc yb, B b cb ya;
    A => B, B => C, C => D, D => E, E => F
);

/// A layer's Jacobian–vector product `ẏ = (∂y/∂x) ẋ`, and its vector–Jacobian product: the
/// reverse mode of a step that contains a network's derivative in the state (Milstein's
/// correction `½ g ∂g/∂u (ΔW² − h)`), so second derivatives, with no tape and no allocation.
///
/// [`forward_tangent_cached`](TangentBackward::forward_tangent_cached) returns the output
/// `y`, the directional derivative `ẏ` along `ẋ` and a cache; given cotangents `ȳ` and `ẏ̄`
/// of both, [`backward_tangent`](TangentBackward::backward_tangent) returns the cotangents of
/// `x` and `ẋ` and adds that of the parameters into `params_bar` (flat order, as
/// [`Backward::backward`]; shorter slices are filled as far as they go). The activations'
/// first and second derivatives are those of evaluating the activation on nested
/// [`Directional`] scalars, the rule forward mode uses on `Directional<Dual<K>>`.
///
/// ```
/// use tinysde::nn::{Dense, Identity, TangentBackward};
/// // y = 2 x0 + 3 x1 + 1, so ẏ = 2 ẋ0 + 3 ẋ1 whatever x.
/// let layer = Dense::<2, 1, Identity>::new([[2.0, 3.0]], [1.0]);
/// let (x, x_dot) = ([1.0, 1.0], [1.0, 0.0]);
/// let (y, y_dot, cache) = layer.forward_tangent_cached(&x, &x_dot);
/// assert_eq!((y, y_dot), ([6.0], [2.0]));
/// let mut params_bar = [0.0f32; 3];
/// let (x_bar, x_dot_bar) = layer.backward_tangent(&x, &x_dot, &cache, &[0.0], &[1.0], &mut params_bar);
/// assert_eq!((x_bar, x_dot_bar), ([0.0, 0.0], [2.0, 3.0]));
/// assert_eq!(params_bar, [1.0, 0.0, 0.0]); // ∂ẏ/∂w = ẋ
/// ```
pub trait TangentBackward<T: PlainReal = f32>: Backward<T> {
    /// What the backward pass needs from the forward pass, beyond the input and direction.
    type TangentCache;
    /// The output, its derivative along `x_dot`, and the cache.
    fn forward_tangent_cached(
        &self,
        x: &Self::Input,
        x_dot: &Self::Input,
    ) -> (Self::Output, Self::Output, Self::TangentCache);
    /// The cotangents of `x` and `x_dot` for the cotangents `y_bar` of the output and
    /// `y_dot_bar` of its derivative; adds the parameter cotangent into `params_bar`.
    fn backward_tangent(
        &self,
        x: &Self::Input,
        x_dot: &Self::Input,
        cache: &Self::TangentCache,
        y_bar: &Self::Output,
        y_dot_bar: &Self::Output,
        params_bar: &mut [T],
    ) -> (Self::Input, Self::Input);
}

/// `f`, `f'` and `f''` at `x` for a scalar function evaluated on nested directional scalars
/// (two independent unit directions: the mixed part is the second derivative).
#[inline]
fn second_order_seed<T: PlainReal>(x: T) -> Directional<Directional<T>> {
    let (zero, one) = (<T as Real>::ZERO, <T as Real>::ONE);
    Directional {
        v: Directional { v: x, d: one },
        d: Directional { v: one, d: zero },
    }
}

impl<T: PlainReal, const I: usize, const O: usize, A: Activation> TangentBackward<T>
    for Dense<I, O, A>
{
    /// Per output: the pre-activation's derivative `ż`, and the activation's first and
    /// second derivatives at the pre-activation.
    type TangentCache = [[T; 3]; O];

    #[inline(always)]
    fn forward_tangent_cached(&self, x: &[T; I], x_dot: &[T; I]) -> ([T; O], [T; O], [[T; 3]; O]) {
        let mut z = [Directional::<Directional<T>>::ZERO; O];
        let mut cache = [[<T as Real>::ZERO; 3]; O];
        for (((zo, co), row), &b) in z
            .iter_mut()
            .zip(&mut cache)
            .zip(&self.weight)
            .zip(&self.bias)
        {
            *zo = second_order_seed(T::cst(b) + dot(x, row));
            co[0] = dot(x_dot, row);
        }
        A::apply_array(&mut z);
        let mut y = [<T as Real>::ZERO; O];
        let mut y_dot = [<T as Real>::ZERO; O];
        for (((yo, ydo), co), zo) in y.iter_mut().zip(&mut y_dot).zip(&mut cache).zip(&z) {
            *yo = zo.v.v;
            co[1] = zo.v.d;
            co[2] = zo.d.d;
            *ydo = co[1] * co[0];
        }
        (y, y_dot, cache)
    }

    #[inline(always)]
    fn backward_tangent(
        &self,
        x: &[T; I],
        x_dot: &[T; I],
        cache: &[[T; 3]; O],
        y_bar: &[T; O],
        y_dot_bar: &[T; O],
        params_bar: &mut [T],
    ) -> ([T; I], [T; I]) {
        let (w_bar, b_bar) = params_bar.split_at_mut((I * O).min(params_bar.len()));
        let mut x_bar = [<T as Real>::ZERO; I];
        let mut x_dot_bar = [<T as Real>::ZERO; I];
        for (o, ((row, &[z_dot, d1, d2]), (&yb, &ydb))) in self
            .weight
            .iter()
            .zip(cache)
            .zip(y_bar.iter().zip(y_dot_bar))
            .enumerate()
        {
            // y = σ(z), ẏ = σ'(z) ż with z = W x + b and ż = W ẋ.
            let z_dot_bar = d1 * ydb;
            let z_bar = d1 * yb + d2 * z_dot * ydb;
            if let Some(wb) = w_bar.get_mut(o * I..(o + 1) * I) {
                for ((wbi, &xi), &xdi) in wb.iter_mut().zip(x).zip(x_dot) {
                    *wbi += z_bar * xi + z_dot_bar * xdi;
                }
            }
            if let Some(bb) = b_bar.get_mut(o) {
                *bb += z_bar;
            }
            for ((xbi, xdbi), &wi) in x_bar.iter_mut().zip(&mut x_dot_bar).zip(row) {
                *xbi += z_bar * wi;
                *xdbi += z_dot_bar * wi;
            }
        }
        (x_bar, x_dot_bar)
    }
}

impl<T: PlainReal, const D: usize, const P: i32> TangentBackward<T> for Pow<D, P> {
    /// Per component: the first and second derivatives of `x^P`.
    type TangentCache = [[T; 2]; D];

    #[inline(always)]
    fn forward_tangent_cached(&self, x: &[T; D], x_dot: &[T; D]) -> ([T; D], [T; D], [[T; 2]; D]) {
        let mut y = [<T as Real>::ZERO; D];
        let mut y_dot = [<T as Real>::ZERO; D];
        let mut cache = [[<T as Real>::ZERO; 2]; D];
        for (((yi, ydi), ci), (&xi, &xdi)) in y
            .iter_mut()
            .zip(&mut y_dot)
            .zip(&mut cache)
            .zip(x.iter().zip(x_dot))
        {
            let p = second_order_seed(xi).powi(P);
            *yi = p.v.v;
            *ci = [p.v.d, p.d.d];
            *ydi = p.v.d * xdi;
        }
        (y, y_dot, cache)
    }

    #[inline(always)]
    fn backward_tangent(
        &self,
        _x: &[T; D],
        x_dot: &[T; D],
        cache: &[[T; 2]; D],
        y_bar: &[T; D],
        y_dot_bar: &[T; D],
        _params_bar: &mut [T],
    ) -> ([T; D], [T; D]) {
        let mut x_bar = [<T as Real>::ZERO; D];
        let mut x_dot_bar = [<T as Real>::ZERO; D];
        for ((xb, xdb), ((&[d1, d2], &xdi), (&yb, &ydb))) in x_bar
            .iter_mut()
            .zip(&mut x_dot_bar)
            .zip(cache.iter().zip(x_dot).zip(y_bar.iter().zip(y_dot_bar)))
        {
            *xb = d1 * yb + d2 * xdi * ydb;
            *xdb = d1 * ydb;
        }
        (x_bar, x_dot_bar)
    }
}

macro_rules! chain_tangent_backward {
    (
        first: $A:ident $a:ident $ca:ident $ya:ident $da:ident;
        mid: $($B:ident $b:ident $cb:ident $yb:ident $db:ident $bin:ident $bdin:ident),*;
        last: $Z:ident $z:ident $cz:ident $zin:ident $zdin:ident;
        rev: $($RB:ident $rb:ident $rcb:ident $rbin:ident $rbdin:ident),*;
        $($from:ident => $to:ident),+
    ) => {
        /// The members' tangent vector–Jacobian products in reverse order; the cache holds
        /// every member's cache and every inner output and derivative.
        impl<
            T: PlainReal,
            $A: TangentBackward<T> $(, $B: TangentBackward<T>)*,
            $Z: TangentBackward<T>,
        > TangentBackward<T> for ($A, $($B,)* $Z)
        where
            $($to: Layer<T, Input = <$from as Layer<T>>::Output>,)+
        {
            type TangentCache = (
                $A::TangentCache,
                <$A as Layer<T>>::Output,
                <$A as Layer<T>>::Output,
                $($B::TangentCache, <$B as Layer<T>>::Output, <$B as Layer<T>>::Output,)*
                $Z::TangentCache,
            );

            #[inline(always)]
            fn forward_tangent_cached(
                &self,
                x: &Self::Input,
                x_dot: &Self::Input,
            ) -> (Self::Output, Self::Output, Self::TangentCache) {
                let ($a, $($b,)* $z) = self;
                let ($ya, $da, $ca) = $a.forward_tangent_cached(x, x_dot);
                $(let ($yb, $db, $cb) = $b.forward_tangent_cached(&$bin, &$bdin);)*
                let (y, y_dot, $cz) = $z.forward_tangent_cached(&$zin, &$zdin);
                (y, y_dot, ($ca, $ya, $da, $($cb, $yb, $db,)* $cz))
            }

            #[inline(always)]
            fn backward_tangent(
                &self,
                x: &Self::Input,
                x_dot: &Self::Input,
                cache: &Self::TangentCache,
                y_bar: &Self::Output,
                y_dot_bar: &Self::Output,
                params_bar: &mut [T],
            ) -> (Self::Input, Self::Input) {
                let ($a, $($b,)* $z) = self;
                let ($ca, $ya, $da, $($cb, $yb, $db,)* $cz) = cache;
                #[allow(unused_mut)] // a two-member chain never moves it
                let mut offset = <Self as Parameters>::PARAMS - $Z::PARAMS;
                let (bar, dot_bar) = $z.backward_tangent(
                    $zin, $zdin, $cz, y_bar, y_dot_bar, member(params_bar, offset),
                );
                $(
                    offset -= $RB::PARAMS;
                    let (bar, dot_bar) = $rb.backward_tangent(
                        $rbin, $rbdin, $rcb, &bar, &dot_bar, member(params_bar, offset),
                    );
                )*
                let _ = (offset, $ya, $da);
                $a.backward_tangent(x, x_dot, $ca, &bar, &dot_bar, member(params_bar, 0))
            }
        }
    };
}

chain_tangent_backward!(
    first: A a ca ya da;
    mid: ;
    last: B b cb ya da;
    rev: ;
    A => B
);
chain_tangent_backward!(
    first: A a ca ya da;
    mid: B b cb yb db ya da;
    last: C c cc yb db;
    rev: B b cb ya da;
    A => B, B => C
);
chain_tangent_backward!(
    first: A a ca ya da;
    mid: B b cb yb db ya da, C c cc yc dc yb db;
    last: D d cd yc dc;
    rev: C c cc yb db, B b cb ya da;
    A => B, B => C, C => D
);
chain_tangent_backward!(
    first: A a ca ya da;
    mid: B b cb yb db ya da, C c cc yc dc yb db, D d cd yd dd yc dc;
    last: E e ce yd dd;
    rev: D d cd yc dc, C c cc yb db, B b cb ya da;
    A => B, B => C, C => D, D => E
);
chain_tangent_backward!(
    first: A a ca ya da;
    mid: B b cb yb db ya da, C c cc yc dc yb db, D d cd yd dd yc dc, E e ce ye de yd dd;
    last: F f cf ye de;
    rev: E e ce yd dd, D d cd yc dc, C c cc yb db, B b cb ya da;
    A => B, B => C, C => D, D => E, E => F
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lanes::F32x;
    use crate::nn::{Cube, FastSigmoid, Identity, QuickSigmoid, QuickTanh};

    /// A layer's weights and biases spread over `[-span, span]` (a fixed pattern), so that
    /// pre-activations fall inside and beyond the quick activations' clamps.
    fn filled<const I: usize, const O: usize, A>(span: f32, seed: f32) -> Dense<I, O, A> {
        crate::nn::dense::tests::spread(span, seed, 0)
    }

    /// `vjp` gives the bits of `forward_cached` then `backward`: the input cotangent and every
    /// parameter cotangent (added into non-zero starting values), for `net` at each input.
    fn check<T, L, const I: usize, const O: usize, const P: usize>(net: &L, inputs: &[[T; I]])
    where
        T: PlainReal + PartialEq + core::fmt::Debug,
        L: Backward<T> + Layer<T, Input = [T; I], Output = [T; O]>,
    {
        for x in inputs {
            let y_bar = [T::cst(0.75); O];
            let start: [T; P] = core::array::from_fn(|j| T::cst(j as f32 * 0.125 - 1.0));
            let (mut by_cache, mut fused) = (start, start);
            let (_, cache) = net.forward_cached(x);
            let want = net.backward(x, &cache, &y_bar, &mut by_cache);
            let got = net.vjp(x, &y_bar, &mut fused);
            assert_eq!(got, want, "x = {x:?}");
            assert_eq!(fused, by_cache, "x = {x:?}");
        }
    }

    #[test]
    fn vjp_gives_the_bits_of_forward_cached_then_backward() {
        let inputs = [[0.0f32], [0.3], [-1.7], [2.5], [-9.0], [40.0]];
        for span in [0.5f32, 4.0] {
            // The seed model's two networks (two and three members) and a four-member chain.
            let drift = (
                Cube::<1>::default(),
                filled::<1, 20, QuickTanh>(span, 0.0),
                filled::<20, 1, Identity>(1.0, 3.0),
            );
            let diffusion = (
                filled::<1, 20, QuickSigmoid>(span, 1.0),
                filled::<20, 1, Identity>(1.0, 5.0),
            );
            let deep = (
                filled::<1, 6, QuickTanh>(span, 2.0),
                filled::<6, 5, FastSigmoid>(span, 4.0),
                filled::<5, 3, QuickTanh>(span, 6.0),
                filled::<3, 1, Identity>(1.0, 7.0),
            );
            check::<f32, _, 1, 1, 61>(&drift, &inputs);
            check::<f32, _, 1, 1, 61>(&diffusion, &inputs);
            check::<f32, _, 1, 1, 69>(&deep, &inputs);
            // Lanes: each lane its own input.
            let lanes = [
                [F32x([0.0, 0.3, -1.7, 2.5])],
                [F32x([-9.0, 40.0, 1.0, -0.25])],
            ];
            check::<F32x<4>, _, 1, 1, 61>(&drift, &lanes);
            check::<F32x<4>, _, 1, 1, 69>(&deep, &lanes);
        }
    }
    /// `Dense::backward` with every parameter cotangent at hand (the loop without bounds
    /// checks) gives the bits of the general loop that fills a shorter slice as far as it
    /// goes: the same input cotangent, the same entries where both write, nothing written
    /// past the layer's parameters; and each entry is its definition (`d y_bar x` for a
    /// weight, `d y_bar` for a bias, added to the starting value).
    fn check_whole_and_short<T, const I: usize, const O: usize>(
        layer: &Dense<I, O, QuickTanh>,
        x: &[T; I],
    ) where
        T: PlainReal + PartialEq + core::fmt::Debug,
    {
        let params = I * O + O;
        let y_bar: [T; O] = core::array::from_fn(|o| T::cst(0.5 - o as f32 * 0.25));
        let start =
            |n: usize| -> Vec<T> { (0..n).map(|j| T::cst(j as f32 * 0.125 - 1.0)).collect() };
        let (_, cache) = layer.forward_cached(x);
        let mut longer = start(params + 2);
        let x_whole = layer.backward(x, &cache, &y_bar, &mut longer);
        let mut short = start(params - 1);
        let x_short = layer.backward(x, &cache, &y_bar, &mut short);
        assert_eq!(x_whole, x_short);
        assert_eq!(longer[..params - 1], short[..]);
        assert_eq!(longer[params..], start(params + 2)[params..]);
        let first = start(params);
        for o in 0..O {
            let z_bar = cache[o] * y_bar[o];
            for i in 0..I {
                assert_eq!(longer[o * I + i], first[o * I + i] + z_bar * x[i]);
            }
            assert_eq!(longer[I * O + o], first[I * O + o] + z_bar);
        }
    }

    #[test]
    #[allow(clippy::indexing_slicing, reason = "test indices within the arrays")]
    fn dense_backward_with_every_cotangent_gives_the_bits_of_the_general_loop() {
        let layer = filled::<3, 5, QuickTanh>(2.0, 1.0);
        check_whole_and_short::<f32, 3, 5>(&layer, &[0.3, -1.2, 2.0]);
        check_whole_and_short::<F32x<4>, 3, 5>(
            &layer,
            &[
                F32x([0.3, -4.0, 0.0, 1.5]),
                F32x([-1.2, 0.5, 9.0, -0.1]),
                F32x([2.0, 0.0, -2.5, 0.7]),
            ],
        );
    }
}
