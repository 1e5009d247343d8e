//! A private D-Bus session bus for tests, with its socket under a folder of the test's own.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a failed unwrap fails the test where it happened"
)]
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use super::xserver::Killed;

/// A running session bus; stopped when dropped.
pub struct SessionBus {
    pub address: String,
    _daemon: Killed,
}

impl SessionBus {
    /// A bus without service activation: a client call that comes before a service has
    /// registered fails (and is retried), never starts a second copy of it.
    pub fn start(dir: &Path) -> SessionBus {
        let config = dir.join("bus.conf");
        std::fs::write(
            &config,
            format!(
                "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN\" \
                 \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n\
                 <busconfig><type>session</type><listen>unix:dir={}</listen>\
                 <policy context=\"default\"><allow send_destination=\"*\" eavesdrop=\"true\"/>\
                 <allow eavesdrop=\"true\"/><allow own=\"*\"/></policy></busconfig>\n",
                dir.display()
            ),
        )
        .expect("write the bus configuration");
        let mut daemon = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", config.display()))
            .args(["--nofork", "--print-address=1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-daemon is needed: run `bash .ci/test`, which installs it");
        let mut address = String::new();
        BufReader::new(daemon.stdout.take().expect("stdout"))
            .read_line(&mut address)
            .expect("the bus address");
        SessionBus {
            address: address.trim().to_owned(),
            _daemon: Killed(daemon),
        }
    }

    /// `dbus-send --print-reply` on this bus; its output.
    pub fn send(&self, args: &[&str]) -> String {
        let out = Command::new("dbus-send")
            .args(["--session", "--print-reply"])
            .args(args)
            .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .output()
            .expect("dbus-send is needed: run `bash .ci/test`, which installs it");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}
