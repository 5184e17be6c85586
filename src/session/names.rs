//! The one rule for names that become paths: session ids, worker names, agent profile names
//! and task ids end up as directory and file names under the workspace (and in branch names),
//! so each is checked where it comes in (command line, control socket, configuration, plan)
//! and nothing named `..`, `a/b` or `-x` ever reaches the filesystem.

/// Long enough for any id orchestrate makes and any sensible profile or task name.
pub const MAX_NAME_LEN: usize = 100;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "{what} {name:?} is not a valid name: use letters, digits, '-', '_' and '.', starting with a letter or digit, at most {MAX_NAME_LEN} characters"
)]
pub struct BadName {
    pub what: &'static str,
    pub name: String,
}

/// Accepts `[A-Za-z0-9][A-Za-z0-9._-]*` up to [`MAX_NAME_LEN`]; `what` names the thing in the
/// error ("session", "worker", ...).
pub fn check_name(what: &'static str, name: &str) -> Result<(), BadName> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if first_ok && rest_ok && name.len() <= MAX_NAME_LEN {
        Ok(())
    } else {
        Err(BadName {
            what,
            name: name.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_could_leave_their_directory_are_refused() {
        for good in ["orch_20261121_180000_a3f9", "claude-t1", "x", "v1.2"] {
            assert_eq!(check_name("session", good), Ok(()), "{good}");
        }
        let long = "a".repeat(MAX_NAME_LEN + 1);
        for bad in [
            "", ".", "..", "../x", "a/b", "/abs", "-rf", ".hidden", "a b", "a\0b", "é", &long,
        ] {
            assert!(check_name("worker", bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            check_name("session", "..").unwrap_err().to_string(),
            format!(
                "session \"..\" is not a valid name: use letters, digits, '-', '_' and '.', starting with a letter or digit, at most {MAX_NAME_LEN} characters"
            )
        );
    }
}
