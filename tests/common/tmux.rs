//! A tmux server of the test's own, for end-to-end tests in a real terminal.

use std::process::Command;

/// A tmux server of our own (its own socket), killed when dropped.
pub struct Tmux {
    socket: String,
}

impl Tmux {
    pub fn new() -> Tmux {
        let found = Command::new("tmux")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            found,
            "tmux is required for this test (.ci/run installs it)"
        );
        // One server per test: tests run in parallel, and each kills its own server at the end.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Tmux {
            socket: format!("orchestrate-test-{}-{n}", std::process::id()),
        }
    }

    pub fn cmd(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn start(&self, name: &str, shell_command: &str) {
        self.cmd(&[
            "new-session",
            "-d",
            "-s",
            name,
            "-x",
            "120",
            "-y",
            "40",
            shell_command,
        ]);
    }

    pub fn screen(&self, name: &str) -> String {
        self.cmd(&["capture-pane", "-p", "-t", name])
    }

    pub fn keys(&self, name: &str, keys: &str) {
        self.cmd(&["send-keys", "-t", name, keys]);
    }

    pub fn alternate_screen(&self, name: &str) -> bool {
        self.cmd(&["display-message", "-p", "-t", name, "#{alternate_on}"])
            .trim()
            == "1"
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}
