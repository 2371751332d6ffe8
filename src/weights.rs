//! Model parameters to and from a versioned little-endian byte format.
