#!/usr/bin/env bash
# Install what schedgen's sched_ext sandbox needs on a fresh Debian 12 machine (as root), then
# fetch the sched_ext kernel into schedgen's cache (a no-op when that release is cached).
#   qemu-system-x86          boots the kernel (TCG when kvm_intel/kvm_amd is not loaded)
#   bpftool                  vmlinux.h and kfunc declarations from the kernel's BTF
#   zstd                     unpacks vmlinux from the kernel image
#   libcap-ng-dev libseccomp-dev   build virtiofsd, which Debian 12 does not package
# Set SCHEDGEN_APT_UPDATED=1 when the caller already ran `apt-get update`.
set -euo pipefail
cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive
if [ "${SCHEDGEN_APT_UPDATED:-0}" != 1 ]; then
    apt-get update -qq
fi
apt-get install -y -qq --no-install-recommends \
    qemu-system-x86 bpftool zstd libcap-ng-dev libseccomp-dev >/dev/null

export PATH="$HOME/.cargo/bin:$PATH"
if ! command -v virtiofsd >/dev/null; then
    cargo install virtiofsd --locked --quiet
fi

cargo build --release --quiet
time ./target/release/schedgen kernel fetch
./target/release/schedgen kernel info
