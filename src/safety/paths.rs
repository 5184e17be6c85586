//! Where a write really lands: a path resolved against the working directory, with `..` and
//! symbolic links followed the way the kernel will follow them, and whether that place is
//! inside one of the allowed directories.

use std::path::{Component, Path, PathBuf};

/// Symbolic links followed before giving up (as the kernel's ELOOP).
const MAX_LINKS: usize = 40;

/// `path` (relative to `cwd`) as the absolute place a write would reach. Components that do
/// not exist yet are taken as they are; links among those that do are followed, so
/// `allowed/link/../x` lands where `link` points, not in `allowed`.
pub fn resolve(path: &Path, cwd: &Path) -> PathBuf {
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        cwd.join(path)
    };
    let mut links = 0;
    resolve_from(PathBuf::from("/"), &joined, &mut links)
}

fn resolve_from(mut current: PathBuf, path: &Path, links: &mut usize) -> PathBuf {
    for component in path.components() {
        match component {
            Component::RootDir => current = PathBuf::from("/"),
            Component::Prefix(_) | Component::CurDir => {}
            Component::ParentDir => {
                current.pop();
            }
            Component::Normal(name) => {
                let next = current.join(name);
                match std::fs::read_link(&next) {
                    Ok(target) if *links < MAX_LINKS => {
                        *links += 1;
                        // A relative target is relative to the link's directory.
                        current = resolve_from(current, &target, links);
                    }
                    _ => current = next,
                }
            }
        }
    }
    current
}

/// How a path lease names a write of `path` (relative to `cwd`): where it really lands,
/// relative to the checkout `root` when inside it (`src/lib.rs`), absolute otherwise. The
/// sandbox hook and a worker's MCP server both name leases so, whatever spelling the agent
/// used (`./src/lib.rs`, an absolute path, a link).
pub fn lease_name(path: &Path, cwd: &Path, root: &Path) -> String {
    let root = resolve(root, Path::new("/"));
    let lands = resolve(path, cwd);
    lands
        .strip_prefix(&root)
        .unwrap_or(&lands)
        .display()
        .to_string()
}

/// True when `path` (already resolved) is `dir` or inside it, for one of `dirs` (resolved
/// too).
pub fn inside_any(path: &Path, dirs: &[PathBuf]) -> bool {
    dirs.iter().any(|dir| path.starts_with(dir))
}

/// Files anything may write: the terminal and the bit bucket.
pub fn is_harmless_device(path: &Path) -> bool {
    matches!(
        path.to_str(),
        Some("/dev/null" | "/dev/stdout" | "/dev/stderr" | "/dev/tty" | "/dev/zero")
    ) || path.starts_with("/dev/fd")
        || path.starts_with("/proc/self/fd")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_dot_and_links_resolve_as_the_kernel_would() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        let allowed = root.join("allowed");
        let outside = root.join("outside");
        std::fs::create_dir_all(allowed.join("sub")).unwrap();
        std::fs::create_dir_all(outside.join("deep")).unwrap();
        std::os::unix::fs::symlink(outside.join("deep"), allowed.join("link")).unwrap();
        let dirs = vec![allowed.clone()];
        let at = |p: &str| resolve(Path::new(p), &allowed);
        assert_eq!(at("sub/new.txt"), allowed.join("sub/new.txt"));
        assert!(inside_any(&at("sub/../x"), &dirs));
        assert!(!inside_any(&at("../outside/x"), &dirs));
        assert_eq!(at("link/f"), outside.join("deep/f"));
        // Through the link, `..` is the link target's parent, not `allowed`.
        assert_eq!(at("link/../x"), outside.join("x"));
        assert!(!inside_any(&at("/etc/passwd"), &dirs));
        assert!(!inside_any(&resolve(Path::new("/"), &allowed), &dirs));
        assert!(is_harmless_device(&at("/dev/null")));
    }
}
