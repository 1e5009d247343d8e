//! Input devices: which audio hosts to ask, listing devices, finding the one the user named.
//!
//! On Linux the PipeWire and PulseAudio hosts come first when their servers run, so real desktops
//! list their real microphones; ALSA is the fallback (and reaches PulseAudio/PipeWire through its
//! `default` device when those hosts are missing).

use cpal::traits::{DeviceTrait, HostTrait};

/// Why a device cannot be used. Each says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceError {
    /// No input device at all.
    #[error("no microphone found: plug one in, or check that the sound server runs")]
    NoInput,
    /// `--device` matched nothing.
    #[error("no input device matches `{wanted}`; available: {available}")]
    NotFound { wanted: String, available: String },
    /// `--device` matched several.
    #[error("`{wanted}` matches several input devices: {matches}; use the full name")]
    Ambiguous { wanted: String, matches: String },
    /// The device's configuration cannot be read (unplugged, busy).
    #[error("cannot use the input device `{device}`: {detail}: reconnect it")]
    Unusable { device: String, detail: String },
}

impl DeviceError {
    /// What the user can do about it.
    pub fn remedy(&self) -> crate::remedy::Remedy {
        match self {
            DeviceError::NoInput => crate::remedy::Remedy::ConnectMicrophone,
            DeviceError::NotFound { .. }
            | DeviceError::Ambiguous { .. }
            | DeviceError::Unusable { .. } => crate::remedy::Remedy::PickDevice,
        }
    }
}

/// An input device as `devices` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputDeviceInfo {
    pub host: String,
    pub name: String,
    pub is_default: bool,
    /// The device's own configuration: (rate, channels, sample format).
    pub native: Option<(u32, u16, String)>,
    /// Standard rates the device supports.
    pub rates: Vec<u32>,
    pub formats: Vec<String>,
}

impl InputDeviceInfo {
    /// `Host: name`, unique across hosts.
    pub fn full_name(&self) -> String {
        format!("{}: {}", self.host, self.name)
    }
}

/// Hosts to ask, best first: PipeWire, PulseAudio, then the rest (ALSA).
pub fn preferred_hosts() -> Vec<cpal::HostId> {
    let mut hosts = cpal::available_hosts();
    let rank = |id: &cpal::HostId| match id.name().to_ascii_lowercase().as_str() {
        "pipewire" => 0,
        "pulseaudio" => 1,
        _ => 2,
    };
    hosts.sort_by_key(rank);
    hosts
}

const STANDARD_RATES: [u32; 9] = [8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000, 96000];

fn describe(host: &str, device: &cpal::Device, default_name: Option<&str>) -> InputDeviceInfo {
    let name = device.to_string();
    let native = device
        .default_input_config()
        .ok()
        .map(|c| (c.sample_rate(), c.channels(), c.sample_format().to_string()));
    let mut rates = Vec::new();
    let mut formats = Vec::new();
    if let Ok(configs) = device.supported_input_configs() {
        for range in configs {
            for rate in STANDARD_RATES {
                if (range.min_sample_rate()..=range.max_sample_rate()).contains(&rate)
                    && !rates.contains(&rate)
                {
                    rates.push(rate);
                }
            }
            let format = range.sample_format().to_string();
            if !formats.contains(&format) {
                formats.push(format);
            }
        }
    }
    rates.sort_unstable();
    InputDeviceInfo {
        host: host.to_owned(),
        is_default: default_name == Some(name.as_str()),
        name,
        native,
        rates,
        formats,
    }
}

/// Every input device of every available host, best host first. Hosts that fail to list are
/// reported in the second value, not fatal.
pub fn list_input_devices() -> (Vec<InputDeviceInfo>, Vec<String>) {
    let mut devices = Vec::new();
    let mut problems = Vec::new();
    for id in preferred_hosts() {
        let host = match cpal::host_from_id(id) {
            Ok(h) => h,
            Err(e) => {
                problems.push(format!("{}: {e}", id.name()));
                continue;
            }
        };
        let default_name = host.default_input_device().map(|d| d.to_string());
        match host.input_devices() {
            // Plugins that cannot say what they record (rate converters, JACK without a server)
            // are not microphones a user can pick.
            Ok(list) => devices.extend(
                list.map(|d| describe(id.name(), &d, default_name.as_deref()))
                    .filter(|d| d.native.is_some() || !d.formats.is_empty()),
            ),
            Err(e) => problems.push(format!("{}: {e}", id.name())),
        }
    }
    (devices, problems)
}

/// The device to capture from: the named one (`Host: name`, a full name, or a unique part of one,
/// case-insensitive), or the default input of the best host.
pub fn find_input_device(wanted: Option<&str>) -> Result<(cpal::Device, String), DeviceError> {
    let hosts: Vec<(cpal::HostId, cpal::Host)> = preferred_hosts()
        .into_iter()
        .filter_map(|id| cpal::host_from_id(id).ok().map(|h| (id, h)))
        .collect();
    let Some(wanted) = wanted.map(str::trim).filter(|w| !w.is_empty()) else {
        for (id, host) in &hosts {
            if let Some(device) = host.default_input_device() {
                let label = format!("{}: {}", id.name(), device);
                return Ok((device, label));
            }
        }
        return Err(DeviceError::NoInput);
    };
    let mut all: Vec<(String, cpal::Device)> = Vec::new();
    for (id, host) in &hosts {
        if let Ok(list) = host.input_devices() {
            all.extend(list.map(|d| (format!("{}: {}", id.name(), d), d)));
        }
    }
    let lower = wanted.to_lowercase();
    let name_part = |label: &str| {
        label
            .split_once(": ")
            .map_or(label, |(_, n)| n)
            .to_lowercase()
    };
    let exact: Vec<usize> = (0..all.len())
        .filter(|&i| all[i].0.to_lowercase() == lower || name_part(&all[i].0) == lower)
        .collect();
    let chosen = if exact.is_empty() {
        (0..all.len())
            .filter(|&i| all[i].0.to_lowercase().contains(&lower))
            .collect::<Vec<_>>()
    } else {
        exact
    };
    match chosen.as_slice() {
        [] => Err(DeviceError::NotFound {
            wanted: wanted.to_owned(),
            available: if all.is_empty() {
                "none".to_owned()
            } else {
                all.iter()
                    .map(|(label, _)| format!("\"{label}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        }),
        // The same device under several hosts: the best host wins.
        [first, ..]
            if chosen
                .iter()
                .all(|&i| name_part(&all[i].0) == name_part(&all[*first].0)) =>
        {
            let (label, device) = all.swap_remove(*first);
            Ok((device, label))
        }
        _ => Err(DeviceError::Ambiguous {
            wanted: wanted.to_owned(),
            matches: chosen
                .iter()
                .map(|&i| format!("\"{}\"", all[i].0))
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// Which audio host capture goes through, and why the better ones are not used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostReport {
    /// Hosts that answered, best first (`PipeWire`, `PulseAudio`, `ALSA`, ...).
    pub available: Vec<String>,
    /// Sound-server hosts built in but not offered, each with the reason.
    pub missing: Vec<(String, String)>,
}

impl HostReport {
    /// Asks cpal which hosts answer now.
    pub fn now() -> HostReport {
        let available: Vec<String> = preferred_hosts()
            .iter()
            .map(|id| id.name().to_owned())
            .collect();
        let missing = cpal::ALL_HOSTS
            .iter()
            .map(cpal::HostId::name)
            .filter(|name| !available.iter().any(|a| a == name))
            .filter_map(|name| why_missing(name).map(|why| (name.to_owned(), why)))
            .collect();
        HostReport { available, missing }
    }

    /// The host the default microphone comes from.
    pub fn best(&self) -> Option<&str> {
        self.available.first().map(String::as_str)
    }

    /// Whether capture falls back to ALSA because no sound-server host answered.
    pub fn is_alsa_fallback(&self) -> bool {
        self.best().is_some_and(|h| h.eq_ignore_ascii_case("alsa")) && !self.missing.is_empty()
    }

    /// One line: which host, and why (for `devices` and `-v`).
    pub fn summary(&self) -> String {
        let Some(best) = self.best() else {
            return "no audio host answered".to_owned();
        };
        let why: Vec<String> = self
            .missing
            .iter()
            .map(|(host, why)| format!("{host}: {why}"))
            .collect();
        if self.is_alsa_fallback() {
            format!(
                "audio host: ALSA, since no sound server answered ({})",
                why.join("; ")
            )
        } else if why.is_empty() {
            format!("audio host: {best}")
        } else {
            format!("audio host: {best} ({})", why.join("; "))
        }
    }
}

/// Why a sound-server host that cpal was built with is not offered.
fn why_missing(host: &str) -> Option<String> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    let runtime = var("XDG_RUNTIME_DIR").map(std::path::PathBuf::from);
    match host.to_ascii_lowercase().as_str() {
        "pipewire" => {
            let dir = var("PIPEWIRE_RUNTIME_DIR")
                .map(std::path::PathBuf::from)
                .or(runtime);
            Some(match dir {
                Some(dir) => format!(
                    "no server running (no socket at {})",
                    dir.join("pipewire-0").display()
                ),
                None => "no server running (XDG_RUNTIME_DIR is not set)".to_owned(),
            })
        }
        "pulseaudio" => Some(if let Some(server) = var("PULSE_SERVER") {
            format!(
                "no server answered at PULSE_SERVER={}",
                server.to_string_lossy()
            )
        } else if let Some(dir) = var("PULSE_RUNTIME_PATH") {
            format!(
                "no server running (no socket at {})",
                std::path::Path::new(&dir).join("native").display()
            )
        } else if let Some(dir) = runtime {
            format!(
                "no server running (no socket at {})",
                dir.join("pulse").join("native").display()
            )
        } else {
            "no server running (XDG_RUNTIME_DIR is not set)".to_owned()
        }),
        // JACK and the rest are not what a desktop microphone is expected on.
        _ => None,
    }
}

/// Device periods per second asked for (see [`period_for`]).
const PERIODS_PER_SECOND: u32 = 25;

/// The period asked of the device: 40 ms (two 20 ms chunks), within what the device says it
/// supports. Left to the device, the ALSA host took the smallest period the PulseAudio plugin
/// offers and woke hundreds of times a second. A period adds nothing to the chunk latency (a
/// chunk is handed on as soon as the callback that completes it arrives) and 40 ms instead of
/// 20 ms took about a fifth off the process's CPU through ALSA and PipeWire (`cargo bench --bench
/// mic`); for speech that is recognised in segments of seconds it is not a delay anyone hears.
pub(super) fn period_for(supported: &cpal::SupportedBufferSize, rate: u32) -> cpal::BufferSize {
    let wanted = (rate / PERIODS_PER_SECOND).max(1);
    match *supported {
        cpal::SupportedBufferSize::Range { min, max } if min <= max && max > 0 => {
            cpal::BufferSize::Fixed(wanted.clamp(min, max))
        }
        _ => cpal::BufferSize::Default,
    }
}
