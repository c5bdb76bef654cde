//! The seeded loop: every case is a buffer of pseudo-random bytes (SplitMix64 of the seed and
//! the case number) that a target reads through [`arbitrary::Unstructured`], so a case is
//! reproduced from `FUZZ_SEED` and its number alone, and the same targets can later be driven by
//! a coverage-guided fuzzer that supplies the bytes instead.
//!
//! Knobs (environment): `FUZZ_CASES` inputs per target (default [`SMOKE_CASES`], the cheap run
//! inside `cargo test`; `make fuzz` sets 1,000,000), `FUZZ_SEED` (decimal or `0x` hex; default a
//! fixed seed so `cargo test` is deterministic), `FUZZ_START` first case number (to replay one
//! case: `FUZZ_START=N FUZZ_CASES=1`).

use std::io::Write;
use std::time::{Duration, Instant};

use arbitrary::Unstructured;

/// Inputs per target in the ordinary test run.
pub const SMOKE_CASES: u64 = 2_000;
const DEFAULT_SEED: u64 = 0x6e6f_6d61_6470_6c67;

/// What a target says about one input (for the summary line).
pub enum Outcome {
    /// The parser accepted the input (and the target's properties held).
    Accepted,
    /// The parser rejected it with an error (no panic).
    Rejected,
}

fn env_u64(name: &str, default: u64) -> u64 {
    let Ok(v) = std::env::var(name) else {
        return default;
    };
    let v = v.trim().replace('_', "");
    let parsed = match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => v.parse(),
    };
    parsed.unwrap_or_else(|_| panic!("{name}={v:?} is not a whole number (decimal or 0x hex)"))
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Fills `buf` with the bytes of case `case`: mostly short (most parsers decide early), now and
/// then up to 16 KiB so that long strings, big collections and deep nesting occur.
fn fill_case(seed: u64, case: u64, buf: &mut Vec<u8>) {
    let mut s = seed ^ case.wrapping_mul(0xd6e8_feb8_6659_fd93);
    let pick = splitmix(&mut s);
    let max = match pick % 16 {
        0 => 16 * 1024,
        1..=3 => 2048,
        4..=9 => 256,
        _ => 64,
    };
    let len = (splitmix(&mut s) % (max + 1)) as usize;
    buf.clear();
    while buf.len() < len {
        buf.extend_from_slice(&splitmix(&mut s).to_le_bytes());
    }
    buf.truncate(len);
}

/// Prints how to replay the case if the target panics.
struct CaseGuard<'a> {
    target: &'a str,
    seed: u64,
    case: u64,
}

impl Drop for CaseGuard<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = writeln!(
                std::io::stderr(),
                "fuzz {}: PANIC at case {} (replay: FUZZ_SEED={:#x} FUZZ_START={} FUZZ_CASES=1 \
                 cargo test --lib fuzz::{})",
                self.target,
                self.case,
                self.seed,
                self.case,
                self.target
            );
        }
    }
}

/// Runs `target` on `FUZZ_CASES` inputs and prints one summary line on stderr (written past the
/// test harness's capture, so `make fuzz` shows the figures). A panic in the target fails the
/// test after printing the case number and seed. The slowest input is reported, never asserted.
pub fn run(name: &str, mut target: impl FnMut(&mut Unstructured) -> arbitrary::Result<Outcome>) {
    let cases = env_u64("FUZZ_CASES", SMOKE_CASES);
    let seed = env_u64("FUZZ_SEED", DEFAULT_SEED);
    let start = env_u64("FUZZ_START", 0);
    let (mut accepted, mut rejected, mut short) = (0u64, 0u64, 0u64);
    let mut slowest = (Duration::ZERO, 0u64);
    let mut buf = Vec::new();
    let began = Instant::now();
    for case in start..start.saturating_add(cases) {
        fill_case(seed, case, &mut buf);
        let guard = CaseGuard {
            target: name,
            seed,
            case,
        };
        let t = Instant::now();
        let mut u = Unstructured::new(&buf);
        match target(&mut u) {
            Ok(Outcome::Accepted) => accepted += 1,
            Ok(Outcome::Rejected) => rejected += 1,
            // The generator ran out of bytes before building an input: nothing was tested.
            Err(_) => short += 1,
        }
        let took = t.elapsed();
        if took > slowest.0 {
            slowest = (took, case);
        }
        drop(guard);
    }
    let secs = began.elapsed().as_secs_f64();
    let tested = accepted + rejected;
    let _ = writeln!(
        std::io::stderr(),
        "fuzz {name}: {tested} inputs ({accepted} accepted, {rejected} rejected; {short} cases \
         too short to build one) in {secs:.1} s ({:.0}/s), 0 panics; slowest input {:.2} ms \
         (case {}); seed {seed:#x}",
        tested as f64 / secs.max(1e-9),
        slowest.0.as_secs_f64() * 1e3,
        slowest.1,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_case_is_a_function_of_seed_and_number() {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for case in 0..200 {
            fill_case(7, case, &mut a);
            fill_case(7, case, &mut b);
            assert_eq!(a, b);
        }
        let lens: std::collections::BTreeSet<usize> = (0..2000)
            .map(|c| {
                fill_case(7, c, &mut a);
                a.len()
            })
            .collect();
        assert!(lens.len() > 100, "case lengths vary: {}", lens.len());
        assert!(*lens.iter().last().unwrap() > 2048, "some cases are long");
    }
}
