#!/usr/bin/env bash
# Install everything schedgen needs on a Debian/Ubuntu machine (run as root); with --tests,
# also what its tests need: the real local model and its server (scripts/local-llm.sh), and
# the production scheduler scx_bpfland that tests/production_vm.rs runs as an arm.
# Idempotent: packages already installed are not fetched again, so a second run takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
with_tests=0
for arg in "$@"; do
  case "$arg" in
    --tests) with_tests=1 ;;
    *) echo "usage: scripts/setup.sh [--tests]" >&2; exit 2 ;;
  esac
done

# The workloads' tools; what building schedgen needs (libbpf-sys builds libbpf against the
# system libelf and zlib, rustls's aws-lc builds C); what compiling schedulers needs (clang ≥ 19
# for the BPF target, libbpf's BPF headers, libclang for the static checks).
packages=(
  build-essential pkg-config git gzip pigz coreutils mawk grep
  ffmpeg python3 python3-pandas python3-numpy
  time procps zstd curl unzip
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
# The local model for tests/local_llm.rs: llama.cpp built from llama-cpp-python's sdist (about
# 4-5 min the first time) and Qwen2.5-Coder-1.5B (1.1 GB).
if ((with_tests)); then
  bash scripts/local-llm.sh install
  # About 6 min the first time (it builds scx's BPF program and its Rust loader).
  ./target/release/schedgen deps --install --production bpfland
fi
echo "setup: done"
