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
# libclang-dev for its bindings).
BUILD_PACKAGES=(pkg-config libasound2-dev libpipewire-0.3-dev libclang-dev)
# What the tests need: a PulseAudio daemon with null sinks as virtual microphones, the ALSA
# plugins that route to it, speech from espeak-ng, sox to convert it; a real window under Xvfb
# driven with xdotool, its clipboard read with xclip, its screenshot taken with imagemagick.
TEST_PACKAGES=(pulseaudio pulseaudio-utils libasound2-plugins alsa-utils espeak-ng sox
    xvfb x11-utils xdotool xclip imagemagick libgl1-mesa-dri libegl1 libxkbcommon-x11-0
    libxcursor1 libxrandr2 libxi6)
