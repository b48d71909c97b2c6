#!/usr/bin/env bash
# Install everything schedgen and its tests need on a Debian/Ubuntu machine (run as root).
# Idempotent: packages already installed are not fetched again, so a second run takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

# The workloads' tools; what building schedgen needs (libbpf-sys builds libbpf against the
# system libelf and zlib, rustls's aws-lc builds C); what compiling schedulers needs (clang ≥ 19
# for the BPF target, libbpf's BPF headers, libclang for the static checks).
packages=(
  build-essential pkg-config git gzip pigz coreutils mawk grep
  ffmpeg python3 python3-pandas python3-numpy
  time procps zstd
  libelf-dev zlib1g-dev cmake
  clang-19 llvm-19 libclang1-19 libbpf-dev
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: missing packages: ${missing[*]}; run as root or: sudo apt-get install ${missing[*]}" >&2
    exit 2
  fi
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
  export SCHEDGEN_APT_UPDATED=1
fi

# The sched_ext sandbox (kernel, QEMU, virtiofsd), when this checkout has it.
if [[ -f .ci/sandbox-setup.sh ]]; then
  bash .ci/sandbox-setup.sh
fi
echo "setup: done"
