//! Sequential composition of layers, written as tuples.

use super::{Layer, ParamSeed, Parameters};
use crate::real::Real;

macro_rules! chain {
    ($first:ident $(, $rest:ident)+; [$($head:ident),*] $pen:ident, $last:ident; $($from:ident => $to:ident),+) => {
        /// Members in order; parameters are the members' parameters concatenated.
        impl<$first: Parameters $(, $rest: Parameters)+> Parameters for ($first, $($rest),+) {
            const PARAMS: usize = $first::PARAMS $(+ $rest::PARAMS)+;

            #[allow(non_snake_case)]
            fn read_unchecked(&self, out: &mut [f32]) {
                let ($first, $($rest),+) = self;
                let (head, mut tail) = super::split_at_most_mut(out, $first::PARAMS);
                $first.read_unchecked(head);
                $(
                    let (head, rest) = super::split_at_most_mut(tail, $rest::PARAMS);
                    $rest.read_unchecked(head);
                    tail = rest;
                )+
                let _ = tail;
            }

            #[allow(non_snake_case)]
            fn write_unchecked(&mut self, src: &[f32]) {
                let ($first, $($rest),+) = self;
                let (head, mut tail) = super::split_at_most(src, $first::PARAMS);
                $first.write_unchecked(head);
                $(
                    let (head, rest) = super::split_at_most(tail, $rest::PARAMS);
                    $rest.write_unchecked(head);
                    tail = rest;
                )+
                let _ = tail;
            }
        }

        /// Applies the members in order; each one's output is the next one's input. The
        /// last two go through [`Layer::forward_then`], which a pair may compute at once.
        impl<T: Real, $first: Layer<T> $(, $rest: Layer<T>)+> Layer<T> for ($first, $($rest),+)
        where
            $($to: Layer<T, Input = $from::Output>,)+
        {
            type Input = $first::Input;
            type Output = $last::Output;

            #[allow(non_snake_case)]
            #[inline]
            fn forward(&self, x: &Self::Input, seed: ParamSeed) -> Self::Output {
                let ($first, $($rest),+) = self;
                let offset = 0;
                $(
                    let y = $head.forward(x, seed.shifted(offset));
                    let x = &y;
                    let offset = offset + $head::PARAMS;
                )*
                let last = offset + $pen::PARAMS;
                $pen.forward_then($last, x, seed.shifted(offset), seed.shifted(last))
            }
        }
    };
}

// Members; those before the last two (applied one by one); the last two; which output
// feeds which input.
chain!(A, B; [] A, B; A => B);
chain!(A, B, C; [A] B, C; A => B, B => C);
chain!(A, B, C, D; [A, B] C, D; A => B, B => C, C => D);
chain!(A, B, C, D, E; [A, B, C] D, E; A => B, B => C, C => D, D => E);
chain!(A, B, C, D, E, F; [A, B, C, D] E, F; A => B, B => C, C => D, D => E, E => F);
