//! The lab (`tests/lab/lab.sh`) for tests: brought up under its own namespace prefix and state
//! directory, torn down when dropped, even when an assertion fails; skipped with the reason when
//! the machine cannot run it (not root, packages missing).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// One running lab.
pub struct Lab {
    script: PathBuf,
    /// Its state directory (`PD_LAB_DIR`).
    pub state: PathBuf,
    prefix: String,
    /// `PD_LAB_NODES` for `up` and every later command (1: the default single node).
    nodes: u8,
    _tmp: Option<tempfile::TempDir>,
}

impl Lab {
    /// Bring up a fresh lab with this namespace prefix and deploy password, or say why not.
    pub fn up(prefix: &str, password: &str) -> Result<Lab, String> {
        Self::up_nodes(prefix, password, 1)
    }

    /// [`Lab::up`] with `nodes` nodes (1 to 4: k8snode2..4 each on its own link to bastion).
    pub fn up_nodes(prefix: &str, password: &str, nodes: u8) -> Result<Lab, String> {
        let script = available()?;
        let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
        let lab = Lab {
            script,
            state: tmp.path().join("state"),
            prefix: prefix.to_string(),
            nodes,
            _tmp: Some(tmp),
        };
        lab.ok(&["up", "--password", password]);
        Ok(lab)
    }

    /// A lab at a fixed state directory and prefix that outlives the test (for recording
    /// fixtures); anything left there is torn down first.
    pub fn at(state: PathBuf, prefix: &str, password: &str) -> Result<Lab, String> {
        let lab = Lab {
            script: available()?,
            state,
            prefix: prefix.to_string(),
            nodes: 1,
            _tmp: None,
        };
        let _ = lab.cmd(&["down"]);
        lab.ok(&["up", "--password", password]);
        Ok(lab)
    }

    /// Run `lab.sh ARGS`.
    pub fn cmd(&self, args: &[&str]) -> Output {
        Command::new("bash")
            .arg(&self.script)
            .args(args)
            .env("PD_LAB_DIR", &self.state)
            .env("PD_LAB_PREFIX", &self.prefix)
            .env("PD_LAB_NODES", self.nodes.to_string())
            .output()
            .expect("run lab.sh")
    }

    /// The `lab.sh` arguments that run `pulldoctor --config INVENTORY fix ARGS` in gitlabvm, as
    /// an operator would, with the extra environment `env` (`NAME=value`) and the audit log and
    /// backups in the lab's state directory.
    #[allow(dead_code)] // only the fix tests run fix
    pub fn fix_argv(&self, inventory: &Path, args: &[&str], env: &[&str]) -> Vec<String> {
        let mut argv: Vec<String> = vec![
            "exec".into(),
            "gitlabvm".into(),
            "env".into(),
            format!(
                "PULLDOCTOR_STATE_DIR={}",
                self.state.join("pd-state").display()
            ),
        ];
        argv.extend(env.iter().map(|s| (*s).to_string()));
        argv.extend([
            env!("CARGO_BIN_EXE_pulldoctor").to_string(),
            "--config".into(),
            inventory.display().to_string(),
            "fix".into(),
        ]);
        argv.extend(args.iter().map(|s| (*s).to_string()));
        argv
    }

    /// Run [`Lab::fix_argv`]; its output.
    #[allow(dead_code)] // only the fix tests run fix
    pub fn fix(&self, inventory: &Path, args: &[&str], env: &[&str]) -> Output {
        let argv = self.fix_argv(inventory, args, env);
        self.cmd(&argv.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// The inventory `up` wrote for the lab (every node, the hops, GitLab, the route).
    #[allow(dead_code)]
    pub fn inventory(&self) -> PathBuf {
        self.state.join("inventory-lab.toml")
    }

    /// Run `lab.sh ARGS`, which must succeed; its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd(args);
        assert!(
            out.status.success(),
            "lab.sh {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `lab.sh --node NODE pull backend` as the deploy user with `password`, with a CRI
    /// deadline of `timeout` seconds.
    #[allow(dead_code)] // not every test binary pulls
    pub fn pull_backend(&self, node: &str, password: &str, timeout: &str) -> Output {
        self.cmd(&[
            "--node",
            node,
            "pull",
            "backend",
            "--user",
            "gition-deploy",
            "--pass",
            password,
            "--timeout",
            timeout,
        ])
    }

    /// The lab script's path.
    #[allow(dead_code)] // not every test binary spawns it itself
    pub fn script(&self) -> &std::path::Path {
        &self.script
    }

    /// The environment `lab.sh` runs with for this lab.
    #[allow(dead_code)]
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("PD_LAB_DIR", self.state.display().to_string()),
            ("PD_LAB_PREFIX", self.prefix.clone()),
            ("PD_LAB_NODES", self.nodes.to_string()),
        ]
    }

    /// Run a shell script inside a lab host.
    pub fn sh(&self, host: &str, script: &str) -> String {
        self.ok(&["exec", host, "sh", "-c", script])
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = self.cmd(&["down"]);
    }
}

/// The lab script, if this machine can run it: root, and the lab's packages installed.
pub fn available() -> Result<PathBuf, String> {
    let script = super::root().join("tests/lab/lab.sh");
    let uid = Command::new("id")
        .arg("-u")
        .output()
        .map_err(|e| e.to_string())?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Err("not root".into());
    }
    for bin in [
        "docker-registry",
        "containerd",
        "sshd",
        "iptables",
        "ip",
        "nsenter",
        "curl",
    ] {
        let found = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "command -v {bin} || test -x /usr/sbin/{bin} || test -x /usr/bin/{bin}"
            ))
            .output()
            .map_err(|e| e.to_string())?;
        if !found.status.success() {
            return Err(format!(
                "{bin} is not installed (run: {} install)",
                script.display()
            ));
        }
    }
    Ok(script)
}
