#!/usr/bin/env bash
# System packages the tests and the app need on Debian 12 (see ../shared/PLATFORM.md):
# Qt offscreen + xcb under Xvfb, audio import (libpulse0), a null sound server, socat for
# virtual serial ports, screenshots. Installs only what is missing; needs root (or sudo).
set -euo pipefail
pkgs=(
  libglib2.0-0 libgl1 libegl1 libdbus-1-3 libfontconfig1 libxkbcommon0
  xvfb xauth libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-shape0 libxkbcommon-x11-0
  libxcb-randr0 libxcb-render-util0 libxcb-image0 libxcb-xinerama0
  libpulse0 pulseaudio socat x11-apps imagemagick gcc xdotool openbox
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "sysdeps: not a Debian system; please install: ${missing[*]}" >&2
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
    echo "sysdeps: need root to install: ${missing[*]}" >&2; exit 1
  fi
fi
echo "sysdeps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
