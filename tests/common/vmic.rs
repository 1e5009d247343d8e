//! A virtual microphone: a private PulseAudio daemon whose null sink's monitor is the microphone.
//! `paplay` into the sink plays at real time; the app captures the monitor through the real cpal
//! path. Each instance has its own runtime directory, so tests can run in parallel.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a failed unwrap fails the test where it happened"
)]
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct VirtualMic {
    runtime_dir: tempfile::TempDir,
    daemon: Child,
    keep_alive: Option<Child>,
    players: Vec<Child>,
    pub module: String,
}

/// For benches: `OTHER_RECORDER_MS`, the latency another app recording from the same microphone
/// asks for (10 makes the microphone deliver every ~7 ms, see [`VirtualMic::start_with_reader`]);
/// unset, 2000, which leaves the latency to the app under test.
pub fn other_recorder_ms() -> u32 {
    std::env::var("OTHER_RECORDER_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
}

/// The name the PulseAudio host gives the null sink's monitor.
pub const DEVICE: &str = "PulseAudio: Monitor of Null Output";

impl VirtualMic {
    /// A microphone at `rate` Hz with `channels` channels of `format` (`s16le`, `float32le`, ...).
    /// A second reader keeps the sink awake and asks for 10 ms of latency, so the sink delivers
    /// to every reader in pieces of a few milliseconds (see [`VirtualMic::start_with_reader`]).
    pub fn start(rate: u32, channels: u16, format: &str) -> VirtualMic {
        Self::start_with_reader(rate, channels, format, 10)
    }

    /// The same with the keep-alive reader asking for `reader_latency_ms`. PulseAudio serves a
    /// source at the lowest latency any of its readers asks for: 10 ms stands for another app
    /// recording at low latency (a call, say), and makes the sink deliver every ~7 ms whatever
    /// the app under test asks for; 2000 leaves the latency to the app under test, as on a
    /// desktop where it is the only one recording.
    pub fn start_with_reader(
        rate: u32,
        channels: u16,
        format: &str,
        reader_latency_ms: u32,
    ) -> VirtualMic {
        let runtime_dir = tempfile::tempdir().expect("runtime dir");
        let daemon = Command::new("pulseaudio")
            .args([
                "-n",
                "--daemonize=no",
                "--exit-idle-time=-1",
                "--use-pid-file=no",
                "--disable-shm=yes",
                "--load=module-native-protocol-unix",
            ])
            .env("XDG_RUNTIME_DIR", runtime_dir.path())
            .env("HOME", runtime_dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "pulseaudio is needed for microphone tests: run `bash .ci/test`, which installs it",
            );
        let mut mic = VirtualMic {
            runtime_dir,
            daemon,
            keep_alive: None,
            players: Vec::new(),
            module: String::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !mic.pactl(&["info"]).status.success() {
            assert!(Instant::now() < deadline, "pulseaudio did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let load = mic.pactl(&[
            "load-module",
            "module-null-sink",
            "sink_name=vmic",
            &format!("rate={rate}"),
            &format!("channels={channels}"),
            &format!("format={format}"),
        ]);
        assert!(load.status.success(), "load null sink: {load:?}");
        mic.module
            .clone_from(&String::from_utf8_lossy(&load.stdout).trim().to_owned());
        assert!(
            mic.pactl(&["set-default-source", "vmic.monitor"])
                .status
                .success()
        );
        // Without a reader the idle sink delivers its first seconds late: keep one attached.
        mic.keep_alive = Some(
            mic.command("parec")
                .args([
                    "-d",
                    "vmic.monitor",
                    &format!("--latency-msec={reader_latency_ms}"),
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("parec"),
        );
        mic
    }

    pub fn runtime_dir(&self) -> &Path {
        self.runtime_dir.path()
    }

    /// A command that talks to this daemon.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(program);
        c.env("XDG_RUNTIME_DIR", self.runtime_dir.path())
            .env("HOME", self.runtime_dir.path());
        c
    }

    pub fn pactl(&self, args: &[&str]) -> std::process::Output {
        self.command("pactl").args(args).output().expect("pactl")
    }

    /// Starts playing a WAV file into the microphone at real time.
    pub fn play(&mut self, wav: &Path) {
        let mut command = self.command("paplay");
        command.args(["-d", "vmic"]);
        self.players.push(spawn_player(command, wav));
    }

    /// Waits for every playback to finish.
    pub fn wait_played(&mut self) {
        wait_all(&mut self.players);
    }

    /// Unplugs the microphone.
    pub fn unplug(&self) {
        let out = self.pactl(&["unload-module", &self.module]);
        assert!(out.status.success(), "unload: {out:?}");
    }
}

impl Drop for VirtualMic {
    fn drop(&mut self) {
        for child in self
            .players
            .iter_mut()
            .chain(self.keep_alive.iter_mut())
            .chain(std::iter::once(&mut self.daemon))
        {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts `command` (a player, with its target set) playing `wav` at real time.
fn spawn_player(mut command: Command, wav: &Path) -> Child {
    command
        .arg(wav)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("a player (paplay, pw-play): run `bash .ci/test`, which installs it")
}

fn wait_all(players: &mut Vec<Child>) {
    for mut p in players.drain(..) {
        let _ = p.wait();
    }
}

/// Speech from espeak-ng as a WAV file at `rate` Hz (mono, 16-bit).
pub fn speech_wav(dir: &Path, name: &str, text: &str, rate: u32) -> PathBuf {
    let raw = dir.join(format!("{name}.raw.wav"));
    let out = dir.join(name);
    let ok = Command::new("espeak-ng")
        .args(["-v", "en-us", "-s", "150", "-w"])
        .arg(&raw)
        .arg(text)
        .status()
        .expect("espeak-ng is needed: run `bash .ci/test`, which installs it")
        .success();
    assert!(ok, "espeak-ng failed");
    let ok = Command::new("sox")
        .arg(&raw)
        .args(["-r", &rate.to_string(), "-c", "1", "-b", "16"])
        .arg(&out)
        .args(["pad", "0.3", "0.6"])
        .status()
        .expect("sox is needed: run `bash .ci/test`, which installs it")
        .success();
    assert!(ok, "sox failed");
    out
}

/// The name cpal's PipeWire host gives [`PipeWireMic`]'s source.
pub const PIPEWIRE_DEVICE: &str = "PipeWire: Virtual Microphone";

/// A virtual microphone on a private PipeWire daemon: `pipewire`, the `wireplumber` session
/// manager (on a D-Bus session bus of its own) and a `pw-loopback` whose sink side (`vsink`) is
/// played into and whose source side (`vmic`, "Virtual Microphone") is the microphone, as a
/// desktop's echo-cancel or virtual-device module would offer it.
pub struct PipeWireMic {
    runtime_dir: tempfile::TempDir,
    /// Started first, stopped last.
    daemons: Vec<Child>,
    players: Vec<Child>,
}

impl PipeWireMic {
    /// A mono microphone at `rate` Hz.
    pub fn start(rate: u32) -> PipeWireMic {
        let runtime_dir = tempfile::tempdir().expect("runtime dir");
        let mut mic = PipeWireMic {
            runtime_dir,
            daemons: Vec::new(),
            players: Vec::new(),
        };
        let pipewire = mic
            .command("pipewire")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "pipewire is needed for the PipeWire test: run `bash .ci/test`, which installs it",
            );
        mic.daemons.push(pipewire);
        let socket = mic.runtime_dir.path().join("pipewire-0");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !socket.exists() {
            assert!(Instant::now() < deadline, "pipewire did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        // WirePlumber links streams to devices; it wants a session bus.
        let mut bus = mic
            .command("dbus-daemon")
            .args(["--session", "--nofork", "--print-address=1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-daemon");
        let mut address = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(bus.stdout.take().expect("bus stdout")),
            &mut address,
        )
        .expect("bus address");
        mic.daemons.push(bus);
        let wireplumber = mic
            .command("wireplumber")
            .env("DBUS_SESSION_BUS_ADDRESS", address.trim())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("wireplumber is needed for the PipeWire test: run `bash .ci/test`");
        mic.daemons.push(wireplumber);
        let loopback = mic
            .command("pw-loopback")
            .args(["-m", "[MONO]"])
            .arg(format!(
                "--capture-props=media.class=Audio/Sink node.name=vsink node.description=vsink audio.rate={rate}"
            ))
            .arg(format!(
                "--playback-props=media.class=Audio/Source node.name=vmic node.description=\"Virtual Microphone\" audio.rate={rate}"
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("pw-loopback (pipewire-bin)");
        mic.daemons.push(loopback);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let nodes = mic.command("pw-cli").args(["ls", "Node"]).output();
            let listed = nodes.is_ok_and(|o| {
                let text = String::from_utf8_lossy(&o.stdout).into_owned();
                text.contains("\"vmic\"") && text.contains("\"vsink\"")
            });
            if listed {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the PipeWire virtual microphone did not appear"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        mic
    }

    pub fn runtime_dir(&self) -> &Path {
        self.runtime_dir.path()
    }

    /// A command that talks to this daemon (and no PulseAudio server).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(program);
        c.env("XDG_RUNTIME_DIR", self.runtime_dir.path())
            .env("HOME", self.runtime_dir.path())
            .env_remove("PULSE_SERVER")
            .env_remove("PULSE_RUNTIME_PATH")
            .env_remove("PIPEWIRE_RUNTIME_DIR")
            .env_remove("PIPEWIRE_REMOTE");
        c
    }

    /// Starts playing a WAV file into the microphone at real time.
    pub fn play(&mut self, wav: &Path) {
        let mut command = self.command("pw-play");
        command.args(["--target", "vsink"]);
        self.players.push(spawn_player(command, wav));
    }

    /// Waits for every playback to finish.
    pub fn wait_played(&mut self) {
        wait_all(&mut self.players);
    }
}

impl Drop for PipeWireMic {
    fn drop(&mut self) {
        for child in self.players.iter_mut().chain(self.daemons.iter_mut().rev()) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
