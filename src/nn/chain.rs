//! Sequential composition of layers, written as tuples.

use super::{Layer, ParamSeed, Parameters};
use crate::real::Real;

macro_rules! chain {
    ($first:ident $(, $rest:ident)+; $last:ident; $($from:ident => $to:ident),+) => {
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

        /// Applies the members in order; each one's output is the next one's input.
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
                let y = $first.forward(x, seed);
                let offset = $first::PARAMS;
                $(
                    let y = $rest.forward(&y, seed.shifted(offset));
                    let offset = offset + $rest::PARAMS;
                )+
                let _ = offset;
                y
            }
        }
    };
}

chain!(A, B; B; A => B);
chain!(A, B, C; C; A => B, B => C);
chain!(A, B, C, D; D; A => B, B => C, C => D);
chain!(A, B, C, D, E; E; A => B, B => C, C => D, D => E);
chain!(A, B, C, D, E, F; F; A => B, B => C, C => D, D => E, E => F);
