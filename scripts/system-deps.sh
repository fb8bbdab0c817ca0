#!/usr/bin/env bash
# Installs the Debian packages the project needs (Mesa's software OpenGL for the offscreen
# client, DejaVu and Noto CJK fonts for its labels,
# Xvfb and xdotool for tests that type into a real window, Chromium and its driver for the console's
# browser tests), only when they are missing and only where we may (root with apt-get).
set -euo pipefail
needed=(libgl1 libgl1-mesa-dri libegl1 libglu1-mesa fonts-dejavu-core)
needed+=(fonts-noto-cjk xvfb xdotool)  # the client: Chinese names and labels; its tests drive a real X window
needed+=(nats-server postgresql)  # the cluster: server/cluster/, tests/cluster/, make cluster
needed+=(chromium chromium-driver)  # tests/console: the console in a real browser
missing=()
for pkg in "${needed[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0
if command -v apt-get >/dev/null && [[ $(id -u) -eq 0 ]]; then
  echo "installing system packages: ${missing[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
else
  echo "warning: missing system packages ${missing[*]} (install them to render the client)" >&2
fi
