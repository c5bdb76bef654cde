//! The go-plugin magic cookie: proof that we were started by a Nomad agent.

/// Environment variable Nomad sets for every plugin it launches.
pub const MAGIC_COOKIE_KEY: &str = "NOMAD_PLUGIN_MAGIC_COOKIE";
/// The value Nomad's `base.Handshake` uses.
pub const MAGIC_COOKIE_VALUE: &str =
    "e4327c2e01eabfd75a8a67adb114fb34a757d57eee7728d857a8cec6e91a7255";

/// Whether the cookie in the environment (if any) is Nomad's.
pub fn is_valid(value: Option<&std::ffi::OsStr>) -> bool {
    value.is_some_and(|v| v == MAGIC_COOKIE_VALUE)
}

/// The message printed on stderr when somebody runs the binary by hand.
pub fn explanation(program: &str) -> String {
    [
        format!(
            "{program}: this is a Nomad task-driver plugin, meant to be started by a Nomad agent, \
             not run directly ({MAGIC_COOKIE_KEY} is missing or wrong)."
        ),
        "To install it, copy it into the agent's plugin_dir and add to the client configuration:"
            .into(),
        "    plugin \"nomad-pledge-driver\" {".into(),
        "      config {}".into(),
        "    }".into(),
        "then use `driver = \"pledge\"` in jobs.".into(),
        format!("To try a job locally:    {program} run JOB.hcl"),
        format!("To sandbox one program:  {program} pledge -p 'stdio rpath' -- PROG ARGS..."),
    ]
    .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn only_the_exact_cookie_is_accepted() {
        assert!(is_valid(Some(OsStr::new(MAGIC_COOKIE_VALUE))));
        assert!(!is_valid(None));
        assert!(!is_valid(Some(OsStr::new(""))));
        assert!(!is_valid(Some(OsStr::new("e4327c2e"))));
    }
}
