//! Forward-mode pathwise sensitivities through the solver.
