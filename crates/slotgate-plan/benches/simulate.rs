//! Placeholder until the simulator lands.

fn main() {}
