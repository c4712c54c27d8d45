//! A tmux server of the test's own for driving the dashboard like a person: type keys, read
//! the screen, wait for text; killed however the test ends.

use std::process::Command;
use std::time::{Duration, Instant};

/// A tmux server of our own (its own socket), killed however the test ends.
pub struct Tmux {
    /// The `-L` socket name.
    pub socket: String,
}

impl Tmux {
    /// `tmux -L SOCKET ARGS`.
    pub fn cmd(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("run tmux")
    }

    /// The pane's text.
    pub fn capture(&self) -> String {
        String::from_utf8_lossy(&self.cmd(&["capture-pane", "-p", "-t", "tui"]).stdout).into_owned()
    }

    /// Type keys one at a time.
    pub fn keys(&self, keys: &[&str]) {
        for k in keys {
            let out = self.cmd(&["send-keys", "-t", "tui", k]);
            assert!(out.status.success(), "send-keys {k}: {out:?}");
            // One key at a time, as a person types: each lands on the state the last one left.
            std::thread::sleep(Duration::from_millis(150));
        }
    }

    /// Wait until the screen shows every needle; the screen on failure.
    pub fn wait_for(&self, needles: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let screen = self.capture();
            if needles.iter().all(|n| screen.contains(n)) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "waited 30 s for {needles:?}; the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
    }
}

/// Whether tmux runs here.
pub fn tmux_installed() -> bool {
    Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
}
