//! Losses, optimizers, the trainer and the growing-window schedule.
