#!/usr/bin/env bash
# Debian packages the real ROS 2 of the ROS2_TARBALLS folder needs at run time (its README), installed when
# missing: CI runs this from .ci/run before `make test`. Needs root (or sudo) and the Debian mirror.
set -euo pipefail
packages=(
  libstdc++6 libssl3 libyaml-0-2                                    # core
  libsqlite3-0 libzstd1 liblz4-1 libconsole-bridge1.0 libtinyxml2-9   # rosbag2
  xvfb xdotool x11-utils fonts-dejavu-core                           # rqt_plot headless, screenshots
  libgl1 libegl1 libglib2.0-0 libfontconfig1 libfreetype6 libx11-6 libx11-xcb1 libxcb1 libxcb-glx0
  libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render0 libxcb-render-util0
  libxcb-shape0 libxcb-shm0 libxcb-sync1 libxcb-util1 libxcb-xfixes0 libxcb-xinerama0 libxcb-xkb1
  libxkbcommon0 libxkbcommon-x11-0                                   # PyQt5's Qt (rqt)
  libopencv-core406 libopencv-imgproc406 libopencv-imgcodecs406 libboost-python1.74.0  # cv_bridge
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "ros2_apt_deps: installing ${missing[*]}"
sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq || true
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
