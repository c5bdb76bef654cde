//! Fuzzing of everything that parses untrusted bytes (`make fuzz`; a smoke run is part of
//! `cargo test`): the cty-msgpack decoder, the task and plugin config decoders, the pledge
//! command line, unveil rules and promise strings. See README "Fuzzing".
//!
//! * [`runner`]: the seeded loop and the figures it prints;
//! * [`cty`], [`text`]: input generators (msgpack items with random widths and damage; strings,
//!   argv, unveil and promise strings);
//! * `targets`: one test per parser, with the properties each must keep.

mod cty;
mod runner;
mod targets;
mod text;
