//! Signal names as Nomad passes them (`kill_signal`, `nomad alloc signal`): any case, with or
//! without the `SIG` prefix, or a number. Empty means SIGTERM (our documented default).

use std::str::FromStr;

pub use nix::sys::signal::Signal;

/// A signal name that is not a Linux signal.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignalError {
    #[error(
        "unknown signal `{0}`: use a name such as SIGTERM, sigterm or TERM, or a number from 1 to 31"
    )]
    Unknown(String),
}

/// Parses `SIGTERM`, `sigterm`, `TERM`, `15`; an empty string is SIGTERM.
pub fn parse_signal(name: &str) -> Result<Signal, SignalError> {
    let trimmed = name.trim();
    if trimmed.is_empty() {
        return Ok(Signal::SIGTERM);
    }
    if let Ok(n) = trimmed.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| SignalError::Unknown(name.to_string()));
    }
    let upper = trimmed.to_ascii_uppercase();
    let full = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    Signal::from_str(&full).map_err(|_| SignalError::Unknown(name.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_parses() {
        for s in ["SIGTERM", "sigterm", "TERM", "term", "15", " SigTerm ", ""] {
            assert_eq!(parse_signal(s), Ok(Signal::SIGTERM), "{s:?}");
        }
        assert_eq!(parse_signal("usr1"), Ok(Signal::SIGUSR1));
        assert_eq!(parse_signal("SIGKILL"), Ok(Signal::SIGKILL));
        assert_eq!(parse_signal("1"), Ok(Signal::SIGHUP));
    }

    #[test]
    fn unknown_names_are_errors_naming_the_forms() {
        for s in ["SIGFOO", "0", "99", "-1", "TERM2", "SIG"] {
            let e = parse_signal(s).unwrap_err();
            assert!(e.to_string().contains("SIGTERM"), "{e}");
            assert!(e.to_string().contains(s.trim()), "{e}");
        }
    }
}
