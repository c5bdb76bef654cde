//! nomad-pledge-driver: the multi-call binary; everything lives in the library (`src/lib.rs`),
//! which dispatches on argv before any thread or async runtime exists.

#![forbid(unsafe_code)]

fn main() {
    std::process::exit(nomad_pledge_driver::main(std::env::args_os().collect()));
}
