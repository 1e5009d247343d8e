//! `devices`: every input device of every audio host, the default marked `*`.

use lightning_dictate::audio::devices::{DeviceError, HostReport, list_input_devices};

use super::{exit, fail};

pub fn run() -> u8 {
    let (devices, problems) = list_input_devices();
    for problem in &problems {
        eprintln!("note: {problem}");
    }
    if devices.is_empty() {
        return fail(exit::AUDIO, super::advice::device(&DeviceError::NoInput));
    }
    for d in &devices {
        let native = d.native.as_ref().map_or_else(
            || "unknown".to_owned(),
            |(rate, ch, fmt)| format!("{rate} Hz, {ch} ch, {fmt}"),
        );
        let rates = d
            .rates
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(" ");
        println!(
            "{} {}\n    native: {native}; rates: {}; formats: {}",
            if d.is_default { "*" } else { " " },
            d.full_name(),
            if rates.is_empty() {
                "?".to_owned()
            } else {
                rates
            },
            d.formats.join(" ")
        );
    }
    println!("{}", HostReport::now().summary());
    exit::OK
}
