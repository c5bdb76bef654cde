//! How errors are written and rendered, for every error type of the crate.
//!
//! The convention (Rust API guidelines, C-GOOD-ERR): an error that wraps another one returns it
//! from `source()` and does **not** print it in its own message. `Display` says what failed,
//! with the object (path, field, pid) and the fix; the cause is the next link of the chain.
//! A variant that adds nothing is `#[error(transparent)]`. So a message never repeats its
//! source's text, and the full story is the chain joined by `: ` ([`error_chain`], or
//! [`Chain`] in a format string), done once where an error reaches a user: the gRPC status
//! (`driver::error`), CLI stderr, task events and logs. A hint that must follow the cause goes
//! in parentheses before it: `cannot write X (check that ...): Permission denied`.
//!
//! A foreign error that both prints and returns its source (landlock's) is held through
//! [`Flat`], which shows its message and ends the chain there.

use std::error::Error;
use std::fmt;

/// An error and its sources joined into one line (`a: b: c`), the form users see.
pub fn error_chain(e: &dyn Error) -> String {
    Chain(e).to_string()
}

/// Displays an error followed by each of its sources, `: `-separated.
pub struct Chain<'a>(pub &'a dyn Error);

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(s) = source {
            write!(f, ": {s}")?;
            source = s.source();
        }
        Ok(())
    }
}

/// A foreign error whose message already contains its causes: shown as is, with no source.
#[derive(Debug)]
pub struct Flat<E>(pub E);

impl<E: fmt::Display> fmt::Display for Flat<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<E: fmt::Debug + fmt::Display> Error for Flat<E> {}

impl<E> From<E> for Flat<E> {
    fn from(e: E) -> Self {
        Flat(e)
    }
}

/// Test helper: asserts that `e` wraps at least one error (its chain has two links or more),
/// that no link's message contains the text of a later link, and that no two links are equal.
#[cfg(test)]
pub fn assert_says_each_thing_once(e: &dyn Error) {
    let mut links = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        links.push(s.to_string());
        source = s.source();
    }
    assert!(
        links.len() >= 2,
        "{e:?} wraps an error but does not return it from source(): {links:?}"
    );
    for (i, outer) in links.iter().enumerate() {
        assert!(!outer.is_empty(), "link {i} of {links:?} is empty");
        for inner in &links[i + 1..] {
            assert!(
                !outer.contains(inner.as_str()),
                "message {outer:?} repeats the text of its source {inner:?} (chain {links:?})"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read {path}")]
    struct Outer {
        path: &'static str,
        source: std::io::Error,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read {path}: {source}")]
    struct Repeats {
        path: &'static str,
        source: std::io::Error,
    }

    fn enoent() -> std::io::Error {
        std::io::Error::from_raw_os_error(libc::ENOENT)
    }

    #[test]
    fn the_chain_is_joined_once() {
        let e = Outer {
            path: "/x",
            source: enoent(),
        };
        assert_eq!(
            error_chain(&e),
            "cannot read /x: No such file or directory (os error 2)"
        );
        assert_says_each_thing_once(&e);
    }

    #[test]
    #[should_panic(expected = "repeats the text of its source")]
    fn the_helper_catches_a_repeated_source() {
        assert_says_each_thing_once(&Repeats {
            path: "/x",
            source: enoent(),
        });
    }

    #[test]
    #[should_panic(expected = "does not return it from source()")]
    fn the_helper_catches_a_hidden_source() {
        assert_says_each_thing_once(&std::io::Error::other("flat"));
    }

    #[test]
    fn flat_ends_the_chain() {
        let e = Flat(Repeats {
            path: "/x",
            source: enoent(),
        });
        assert!(e.source().is_none());
        assert_eq!(
            error_chain(&e),
            Repeats {
                path: "/x",
                source: enoent()
            }
            .to_string()
        );
    }
}

/// Test fixtures: causes to wrap in the error types under test.
#[cfg(test)]
pub mod fixtures {
    pub fn io() -> std::io::Error {
        std::io::Error::from_raw_os_error(libc::EACCES)
    }

    pub fn errno() -> nix::Error {
        nix::Error::ENOENT
    }

    pub fn json() -> serde_json::Error {
        serde_json::from_str::<u32>("not json").unwrap_err()
    }

    pub fn transport() -> tonic::transport::Error {
        tonic::transport::Endpoint::from_shared("not a uri\u{0}".to_string()).unwrap_err()
    }
}
