#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Run issue 9's scenarios (tests/test-pressure-scenarios.sh) in a guest
# with Debian's kernel and a pure cgroup v2 hierarchy, where memory.high
# and memory.events exist and PSI runs per cgroup, plus whole-machine
# pressure with no limit at all (the guest has 1 GiB of RAM). Outside the
# default test suite: it boots a VM (TCG by default, slow;
# ASHM_GUEST_ACCEL=kvm for KVM).
#
#   scripts/pressure-guest.sh [BUILD_DIR] [RUNS]
#
# BUILD_DIR (default: build) must hold a plain (no sanitizer) build. The
# guest's root is an initramfs made here of busybox-static, bash, the
# scenario script, ashmd and ashm-pressure-app with the libraries they
# link. Needs Debian's qemu-system-x86, linux-image-amd64 and
# busybox-static: installed with apt-get if missing (we are root).
# ASHM_GUEST_ONLY and ASHM_GUEST_SKIP pick scenarios (ASHM_SCENARIO_ONLY,
# ASHM_SCENARIO_SKIP).
# Prints the scenarios' TAP and a closing "N passed, N failed" line; the
# full console log stays in $ASHM_GUEST_LOG (default
# BUILD_DIR/pressure-guest.log).
set -eu

src=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-build}" && pwd)
runs=${2:-5}
log=${ASHM_GUEST_LOG:-$build/pressure-guest.log}

need=""
command -v qemu-system-x86_64 >/dev/null || need="$need qemu-system-x86"
ls /boot/vmlinuz-* >/dev/null 2>&1 || need="$need linux-image-amd64"
[ -x /bin/busybox ] && /bin/busybox --list 2>/dev/null | grep -qx poweroff || need="$need busybox-static"
if [ -n "$need" ]; then
        echo "installing$need" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $need >&2
fi
kernel=$(ls /boot/vmlinuz-* | sort -V | tail -n 1)

work=$(mktemp -d "${TMPDIR:-/tmp}/ashm-guest.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root"/{bin,sbin,proc,sys,dev,tmp,ashm,etc}

# Copy a program and every library it links, at the same paths.
copy_with_libs() {
        local f
        for f in "$@" $(ldd "$@" 2>/dev/null | grep -o '/[^ ]*' | sort -u); do
                [ -e "$f" ] || continue
                mkdir -p "$root$(dirname "$f")"
                cp -L "$f" "$root$f"
        done
}
cp /bin/busybox "$root/bin/busybox"
for app in $("$root/bin/busybox" --list); do
        [ -e "$root/bin/$app" ] || ln -s busybox "$root/bin/$app"
done
rm -f "$root/bin/bash"
copy_with_libs /bin/bash "$build/src/ashmd/ashmd" "$build/tests/ashm-pressure-app"
# At their build paths, where their RUNPATH finds libashm.so.
cp "$src/tests/test-pressure-scenarios.sh" "$src/tests/tap.sh" "$root/ashm/"
echo "root:x:0:0:root:/:/bin/sh" >"$root/etc/passwd"

cat >"$root/init" <<EOF
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
mount -t cgroup2 cgroup2 /sys/fs/cgroup
echo +memory >/sys/fs/cgroup/cgroup.subtree_control
echo "guest: kernel \$(uname -r), \$(grep MemTotal /proc/meminfo), cgroup2 controllers: \$(cat /sys/fs/cgroup/cgroup.controllers)"
echo "guest: swap: \$(tail -n +2 /proc/swaps | wc -l) devices"
ASHM_BUILD_ROOT=$build ASHMD=$build/src/ashmd/ashmd ASHM_PRESSURE_APP=$build/tests/ashm-pressure-app \
ASHM_SCENARIO_RUNS=$runs ASHM_SCENARIO_MACHINE=1 ASHM_SCENARIO_LOG=/dev/console ASHM_SCENARIO_ONLY="${ASHM_GUEST_ONLY:-}" ASHM_SCENARIO_SKIP="${ASHM_GUEST_SKIP:-}" \
        /bin/bash /ashm/test-pressure-scenarios.sh
echo "guest: done"
poweroff -f
EOF
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$work/initramfs.gz"

# KVM where asked for: on some hosts (nested virtualization) a KVM guest
# hangs before its first line, so TCG is the default.
accel="-accel tcg -cpu max"
[ "${ASHM_GUEST_ACCEL:-tcg}" = kvm ] && accel="-enable-kvm -cpu host"
timeout 1800 qemu-system-x86_64 $accel -m 1024 -smp 2 -nographic -no-reboot \
        -kernel "$kernel" -initrd "$work/initramfs.gz" \
        -append "console=ttyS0 loglevel=3 panic=-1 psi=1 cgroup_no_v1=all" >"$log" 2>&1 || true

tr -d '\r' <"$log" | grep -E '^(ok|not ok|1\.\.|#|guest:|[a-z-]+ run [0-9]+:)' || true
passed=$(tr -d '\r' <"$log" | grep -c '^ok ' || true)
failed=$(tr -d '\r' <"$log" | grep -c '^not ok ' || true)
grep -q 'guest: done' "$log" || { echo "the guest did not finish: see $log"; failed=$((failed + 1)); }
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
