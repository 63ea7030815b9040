//! Shared by the plugin tests: building the test plugins, and a host sink that records everything.
#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use twinwire_plugin::{ConnectionStatus, Delivery, HostSink, Inbound, LogLevel};

/// The echo test plugin's package.
pub const ECHO: &str = "twinwire-plugin-echo";
/// The same plugin claiming ABI v2.
pub const ECHO_ABI2: &str = "twinwire-plugin-echo-abi2";

/// Builds the test plugin libraries (once per process) and returns the path of `package`'s.
///
/// They are built by cargo itself (`$CARGO`, the one that built this test) with
/// `--message-format=json`, which names the files, into a target directory of their own under
/// this package's `CARGO_TARGET_TMPDIR`: a workspace build unifies features (the tests enable
/// `twinwire-plugin/host`, the broker other tokio features), and a plugin built with other
/// features into the shared target directory would overwrite the cdylib there (cdylib file names
/// carry no hash) while another test process reads it. In their own directory they are built once,
/// and later builds are no-ops.
pub fn plugin(package: &str) -> PathBuf {
    static BUILT: OnceLock<HashMap<String, PathBuf>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        build_plugins(
            "twinwire-plugin-tests",
            &[ECHO, ECHO_ABI2],
            !cfg!(debug_assertions),
            &[],
        )
    });
    built
        .get(package)
        .unwrap_or_else(|| panic!("no cdylib built for {package}: {built:?}"))
        .clone()
}

/// The echo plugin built with `panic = "abort"` (in a target directory of its own).
pub fn echo_built_with_panic_abort() -> PathBuf {
    let release = !cfg!(debug_assertions);
    let profile = if release { "release" } else { "dev" };
    let built = build_plugins(
        "twinwire-plugin-tests-abort",
        &[ECHO],
        release,
        &["--config", &format!("profile.{profile}.panic=\"abort\"")],
    );
    built[ECHO].clone()
}

/// Builds `packages` (release or dev, with `extra` cargo arguments) into the target directory
/// `dir` under `CARGO_TARGET_TMPDIR`, and maps each to its cdylib.
pub fn build_plugins(
    dir: &str,
    packages: &[&str],
    release: bool,
    extra: &[&str],
) -> HashMap<String, PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(dir);
    let mut command = Command::new(cargo);
    command.args(extra);
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg("build")
        .arg("--message-format=json-render-diagnostics")
        .arg("--target-dir")
        .arg(&target_dir);
    if release {
        command.arg("--release");
    }
    for package in packages {
        command.arg("-p").arg(package);
    }
    let started = Instant::now();
    let output = command
        .output()
        .expect("run cargo to build the test plugins");
    assert!(
        output.status.success(),
        "building the test plugins failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let mut found = HashMap::new();
    for line in output.stdout.split(|b| *b == b'\n') {
        let Ok(msg) = serde_json::from_slice::<serde_json::Value>(line) else {
            continue;
        };
        if msg["reason"] != "compiler-artifact" {
            continue;
        }
        let is_cdylib = msg["target"]["kind"]
            .as_array()
            .is_some_and(|kinds| kinds.iter().any(|k| k == "cdylib"));
        let Some(name) = msg["package_id"]
            .as_str()
            .and_then(|id| packages.iter().find(|p| package_of(id) == **p))
        else {
            continue;
        };
        if !is_cdylib {
            continue;
        }
        let file = msg["filenames"].as_array().and_then(|files| {
            files
                .iter()
                .filter_map(|f| f.as_str())
                .find(|f| f.ends_with(std::env::consts::DLL_SUFFIX))
        });
        if let Some(file) = file {
            found.insert((*name).to_owned(), PathBuf::from(file));
        }
    }
    eprintln!("test plugins ready in {:?}: {found:?}", started.elapsed());
    found
}

/// The package name in a cargo package id: `path+file:///…/echo#twinwire-plugin-echo@0.1.0`, or
/// the older `twinwire-plugin-echo 0.1.0 (path+file:///…)`.
fn package_of(id: &str) -> &str {
    if let Some((_, rest)) = id.rsplit_once('#') {
        rest.split('@').next().unwrap_or(rest)
    } else {
        id.split(' ').next().unwrap_or(id)
    }
}

/// What the sink answers to inbound messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    Accept = 0,
    Backpressure = 1,
    Refuse = 2,
}

/// A gauge as a sink got it: name, labels, value.
pub type Gauge = (String, Vec<(String, String)>, f64);

/// A host sink recording everything it gets.
#[derive(Default)]
pub struct Recorder {
    pub inbound: Mutex<Vec<Inbound>>,
    pub statuses: Mutex<Vec<(ConnectionStatus, String)>>,
    pub logs: Mutex<Vec<(LogLevel, String)>>,
    pub metrics: Mutex<Vec<Gauge>>,
    mode: AtomicU8,
}

impl Recorder {
    pub fn new() -> Arc<Recorder> {
        Arc::new(Recorder::default())
    }

    pub fn set_mode(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
    }

    pub fn take_inbound(&self) -> Vec<Inbound> {
        std::mem::take(&mut *self.inbound.lock().unwrap())
    }

    pub fn inbound_count(&self) -> usize {
        self.inbound.lock().unwrap().len()
    }

    pub fn logs(&self) -> Vec<(LogLevel, String)> {
        self.logs.lock().unwrap().clone()
    }

    pub fn statuses(&self) -> Vec<(ConnectionStatus, String)> {
        self.statuses.lock().unwrap().clone()
    }

    pub fn has_log(&self, needle: &str) -> bool {
        self.logs
            .lock()
            .unwrap()
            .iter()
            .any(|(_, l)| l.contains(needle))
    }
}

impl HostSink for Recorder {
    fn inbound(&self, inbound: Inbound) -> Delivery {
        match self.mode.load(Ordering::SeqCst) {
            1 => Delivery::Backpressure,
            2 => Delivery::Refused,
            _ => {
                self.inbound.lock().unwrap().push(inbound);
                Delivery::Accepted
            }
        }
    }

    fn status(&self, status: ConnectionStatus, detail: &str) {
        self.statuses
            .lock()
            .unwrap()
            .push((status, detail.to_owned()));
    }

    fn log(&self, level: LogLevel, text: &str) {
        self.logs.lock().unwrap().push((level, text.to_owned()));
    }

    fn metric(&self, name: &str, labels: &[(&str, &str)], value: f64) {
        let labels = labels
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect();
        self.metrics
            .lock()
            .unwrap()
            .push((name.to_owned(), labels, value));
    }
}

/// Waits (polling) until `done` holds, at most `timeout`; returns whether it did.
pub async fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while !done() {
        if start.elapsed() > timeout {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    true
}

/// Threads of this process whose name starts with `prefix` (Linux: /proc/self/task/*/comm).
pub fn threads_named(prefix: &str) -> usize {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .filter_map(|t| t.ok())
        .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
        .filter(|comm| comm.trim_end().starts_with(prefix))
        .count()
}
