//! What an owned trainer ([`Trainer::owned`](super::Trainer::owned), feature `std`) needs
//! beyond the caller-buffer one: optimizers built from their configurations, and the
//! tangent lanes of its scratch.

use std::vec::Vec;

use super::optim::{Adam, AdamConfig, Optimizer, Sgd, SgdConfig};
use crate::error::Error;

/// Tangent lanes of an owned [`Trainer`](super::Trainer)'s forward-mode passes (and of the loss's derivatives in
/// the statistics in reverse mode). Lanes never interact: the bits do not depend on it.
pub const TRAINING_LANES: usize = 8;

/// What becomes an [`Optimizer`] for `params` parameters: a configuration ([`AdamConfig`],
/// [`SgdConfig`]: the state is allocated), or an optimizer already built (its size is checked).
///
/// ```
/// use tinysde::train::{Adam, AdamConfig, IntoOptimizer, Optimizer};
/// let adam = AdamConfig::lr(0.01).into_optimizer(5)?; // state allocated for 5 parameters
/// assert_eq!(adam.num_params(), 5);
/// let built = Adam::new(AdamConfig::lr(0.01), vec![0.0; 3], vec![0.0; 3])?;
/// assert!(built.into_optimizer(5).is_err()); // a wrong size
/// # Ok::<(), tinysde::Error>(())
/// ```
pub trait IntoOptimizer {
    /// The optimizer it becomes.
    type Optimizer: Optimizer;
    /// The optimizer for `params` parameters (errors: an invalid configuration, a wrong size).
    fn into_optimizer(self, params: usize) -> Result<Self::Optimizer, Error>;
}

impl IntoOptimizer for AdamConfig {
    type Optimizer = Adam<Vec<f32>>;
    fn into_optimizer(self, params: usize) -> Result<Self::Optimizer, Error> {
        Adam::new(self, std::vec![0.0; params], std::vec![0.0; params])
    }
}

impl IntoOptimizer for SgdConfig {
    type Optimizer = Sgd<Vec<f32>>;
    fn into_optimizer(self, params: usize) -> Result<Self::Optimizer, Error> {
        Sgd::new(self, std::vec![0.0; params])
    }
}

impl<O: Optimizer> IntoOptimizer for O {
    type Optimizer = O;
    fn into_optimizer(self, params: usize) -> Result<O, Error> {
        crate::error::check_len("optimizer state", params, self.num_params())?;
        Ok(self)
    }
}
