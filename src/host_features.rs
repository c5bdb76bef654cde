//! Host features the tests need, and which of them this machine promises to have.
//!
//! Every test that cannot run without something the host may lack (root, a cgroup v2 mount,
//! seccomp, Landlock, ...) asks [`present`] before it skips. On a developer's machine a missing
//! feature means "skip with the printed reason". A CI machine lists what it has in
//! `NOMAD_PLEDGE_TEST_REQUIRE` (`.ci/run` sets it), and there a missing listed feature fails the
//! test instead: a green run cannot hide tests that silently did not run.
//!
//! Value: feature names separated by commas or blanks, from [`FEATURES`]; `landlock-abi>=N`
//! requires at least Landlock ABI N. An unknown name fails every test that asks (typos must not
//! turn requirements off).
//!
//! One file for all test code: the unit tests use it as `crate::host_features`, the integration
//! tests include it with `#[path]` (it needs only std).
#![allow(dead_code)]

/// The environment variable CI sets.
pub const ENV: &str = "NOMAD_PLEDGE_TEST_REQUIRE";

/// Known feature names and what each means.
pub const FEATURES: &[(&str, &str)] = &[
    ("root", "the tests run as root"),
    ("cgroup2", "a usable cgroup v2 mount"),
    ("seccomp", "seccomp filters (`pledge -T pledge` succeeds)"),
    (
        "seccomp-notify",
        "seccomp user notification: a listener fd can be taken (Linux 5.6+)",
    ),
    (
        "landlock",
        "Landlock is enabled (`pledge -T unveil` succeeds)",
    ),
    ("pidns", "PID namespaces can be created"),
    ("netns", "`ip netns add` works (iproute2, root)"),
    ("python3", "python3 is installed"),
    ("curl", "curl is installed"),
    (
        "binary",
        "the debug driver binary is built (`cargo test --all-targets` builds it)",
    ),
    (
        "debug-build",
        "the tests are a debug build (test-only knobs such as PLEDGE_TEST_LANDLOCK_ABI)",
    ),
    (
        "vm",
        "the VM suite runs (root, qemu) and none of its tests skips",
    ),
];

/// What `NOMAD_PLEDGE_TEST_REQUIRE` asks for.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Required {
    names: Vec<String>,
    landlock_abi: Option<i32>,
}

impl Required {
    /// Parses the variable's value; an unknown name is an error naming it and the known ones.
    pub fn parse(value: &str) -> Result<Required, String> {
        let mut r = Required::default();
        for word in value
            .split([',', ' ', '\t', '\n'])
            .filter(|w| !w.is_empty())
        {
            if let Some(n) = word.strip_prefix("landlock-abi>=") {
                let abi = n.parse::<i32>().map_err(|_| {
                    format!("{ENV}: `{word}` needs a whole number after `landlock-abi>=`")
                })?;
                r.landlock_abi = Some(r.landlock_abi.map_or(abi, |a| a.max(abi)));
                r.names.push("landlock".into());
            } else if FEATURES.iter().any(|(name, _)| *name == word) {
                r.names.push(word.to_string());
            } else {
                let known: Vec<&str> = FEATURES.iter().map(|(n, _)| *n).collect();
                return Err(format!(
                    "{ENV}: unknown feature `{word}`; known: {}, landlock-abi>=N",
                    known.join(", ")
                ));
            }
        }
        Ok(r)
    }

    /// From the environment (unset or empty = nothing required).
    pub fn from_env() -> Required {
        let value = std::env::var(ENV).unwrap_or_default();
        Required::parse(&value).unwrap_or_else(|e| panic!("{e}"))
    }

    pub fn requires(&self, feature: &str) -> bool {
        self.names.iter().any(|n| n == feature)
    }

    /// Decides for a test that needs `feature`: Ok(true) run, Ok(false) skip (not required),
    /// Err(message) fail (required but missing).
    pub fn decide(&self, feature: &str, present: bool, reason: &str) -> Result<bool, String> {
        if !FEATURES.iter().any(|(n, _)| *n == feature) {
            return Err(format!("test bug: `{feature}` is not a known host feature"));
        }
        if present {
            return Ok(true);
        }
        if self.requires(feature) {
            return Err(format!(
                "{ENV} lists `{feature}` but this host lacks it: {reason} (fix the host, or \
                 remove `{feature}` from {ENV} if this machine really has no such feature)"
            ));
        }
        Ok(false)
    }

    /// Checks a Landlock ABI against `landlock-abi>=N` (and `landlock`).
    pub fn decide_landlock(&self, abi: Option<i32>, reason: &str) -> Result<(), String> {
        self.decide("landlock", abi.is_some(), reason)?;
        match (self.landlock_abi, abi) {
            (Some(want), Some(have)) if have < want => Err(format!(
                "{ENV} lists `landlock-abi>={want}` but this kernel's Landlock ABI is {have}"
            )),
            _ => Ok(()),
        }
    }
}

/// `present` for a test that needs `feature`: returns `present` unchanged, but panics with the
/// reason when the feature is missing and `NOMAD_PLEDGE_TEST_REQUIRE` lists it. The caller
/// prints its `SKIP:` line and returns when this is false.
pub fn present(feature: &str, present: bool, reason: &str) -> bool {
    present_with(&Required::from_env(), feature, present, reason)
}

/// [`present`] against an explicit requirement (what the environment would say).
pub fn present_with(required: &Required, feature: &str, present: bool, reason: &str) -> bool {
    match required.decide(feature, present, reason) {
        Ok(run) => run,
        Err(message) => panic!("{message}"),
    }
}

/// The kernel's Landlock ABI as probed (`None` = no Landlock), checked against the requirement.
pub fn landlock_abi(abi: Option<i32>, reason: &str) -> Option<i32> {
    if let Err(message) = Required::from_env().decide_landlock(abi, reason) {
        panic!("{message}");
    }
    abi
}

/// Prints the skip line and returns true when the test must skip (see [`present`]).
pub fn skip_unless(feature: &str, is_present: bool, reason: &str) -> bool {
    let run = present(feature, is_present, reason);
    if !run {
        eprintln!("SKIP: {reason}");
    }
    !run
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(v: &str) -> Required {
        Required::parse(v).unwrap()
    }

    #[test]
    fn missing_and_not_required_skips_present_runs() {
        let r = req("");
        assert_eq!(r.decide("seccomp", false, "no seccomp"), Ok(false));
        assert_eq!(r.decide("seccomp", true, "no seccomp"), Ok(true));
        assert_eq!(req("root").decide("seccomp", false, "x"), Ok(false));
        assert!(!present_with(&req("root"), "seccomp", false, "x"));
        assert!(present_with(&req("seccomp"), "seccomp", true, "x"));
    }

    #[test]
    #[should_panic(
        expected = "NOMAD_PLEDGE_TEST_REQUIRE lists `seccomp` but this host lacks it: kernel without seccomp filters"
    )]
    fn required_but_missing_panics_naming_the_feature_and_the_reason() {
        let r = req("root, seccomp,landlock-abi>=6");
        present_with(&r, "seccomp", false, "kernel without seccomp filters");
    }

    #[test]
    fn landlock_abi_requirement() {
        let r = req("landlock-abi>=6");
        assert!(r.requires("landlock"));
        assert_eq!(r.decide_landlock(Some(7), "x"), Ok(()));
        assert_eq!(r.decide_landlock(Some(6), "x"), Ok(()));
        let e = r.decide_landlock(Some(4), "x").unwrap_err();
        assert!(
            e.contains("`landlock-abi>=6`") && e.contains("ABI is 4"),
            "{e}"
        );
        let e = r
            .decide_landlock(None, "landlock is not enabled")
            .unwrap_err();
        assert!(
            e.contains("lists `landlock`") && e.contains("not enabled"),
            "{e}"
        );
        assert_eq!(req("").decide_landlock(None, "x"), Ok(()));
    }

    #[test]
    fn typos_are_errors_not_silently_ignored() {
        let e = Required::parse("root,secomp").unwrap_err();
        assert!(
            e.contains("unknown feature `secomp`") && e.contains("seccomp"),
            "{e}"
        );
        assert!(Required::parse("landlock-abi>=six").is_err());
        assert!(req("").decide("qemu-kvm", true, "x").is_err());
    }
}
