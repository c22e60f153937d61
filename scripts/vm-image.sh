#!/usr/bin/env bash
# Builds the local compute stand-in's boot files and a small bootable Linux OS disk, cached under
# .local/vm/ (STANDBY_VM_DIR overrides):
#   vmlinuz        the Debian cloud kernel (linux-image-cloud-amd64), copied from /boot
#   initrd.img     busybox-static plus the virtio modules; its /init mounts root= (ext4) and switch_roots
#   os.img         a raw 64 MiB disk, ext4 with no partition table (the guest's /dev/vda): busybox and an
#                  /sbin/init that prints "STANDBY-GUEST-UP host=<hostname> disks=<...>" on ttyS0
#   kernel-version the kernel's version
#   guest-hostname the guest's hostname (its /etc/hostname)
#   sqlwork        the guest's database workload (scripts/guest/sqlwork.c against Debian's SQLite,
#                  statically linked: the guest has no libc), which the NBD proof writes into its OS disk
# Direct kernel boot: the kernel and initramfs are the "hypervisor's" boot files (as Azure's boot path is
# the platform's), the root filesystem is on the disk, which is the VM's OS disk - the disk a failover
# replicates and boots. No bootloader, no partition table, no root mounts or loop devices: mke2fs -d
# populates the filesystem from a directory, so it runs in CI as an ordinary root process.
# Idempotent: nothing is rebuilt while the outputs exist, are newer than this script and have the asked
# hostname (a newer cloud kernel is picked up after `rm -r .local/vm`). Missing tools are
# installed with apt-get (STANDBY_VM_NO_INSTALL=1 fails instead); so are the NBD clients shared/nbd's tests
# run against its server (libnbd-bin's nbdinfo and nbdcopy, qemu-utils' qemu-io) and the browser the
# console's tests drive (Debian's chromium), even when the outputs
# are up to date. STANDBY_VM_HOSTNAME sets the guest's /etc/hostname (default standby-vm).
set -euo pipefail
cd "$(dirname "$0")/.."
script=$(pwd)/scripts/vm-image.sh
out=${STANDBY_VM_DIR:-.local/vm}
guest_hostname=${STANDBY_VM_HOSTNAME:-standby-vm}
disk_mib=64
# The modules the initramfs must load to mount an ext4 root on a virtio disk; whichever the kernel has
# built in (ext4 and crc32c in Debian's cloud kernel) are skipped, the rest come with their dependencies.
# virtio_net is for machines booted with user-mode networking (the guest gets eth0; it configures nothing).
needed_modules=(virtio_pci virtio_blk ext4 crc32c_generic virtio_net)
started=$(date +%s%N)

say() { echo "vm-image: $*"; }

fresh() { # every output exists and is newer than this script
  local f
  for f in vmlinuz initrd.img os.img kernel-version guest-hostname sqlwork; do
    [[ -s $out/$f && $out/$f -nt $script ]] || return 1
  done
  [[ $out/sqlwork -nt scripts/guest/sqlwork.c ]] || return 1
  [[ $(cat "$out/guest-hostname") == "$guest_hostname" ]]
}

install_missing() {
  local pkgs=() kernel
  command -v qemu-system-x86_64 >/dev/null || pkgs+=(qemu-system-x86)
  command -v qemu-img >/dev/null && command -v qemu-io >/dev/null || pkgs+=(qemu-utils)
  command -v nbdinfo >/dev/null && command -v nbdcopy >/dev/null || pkgs+=(libnbd-bin)
  command -v mke2fs >/dev/null && command -v e2fsck >/dev/null && command -v debugfs >/dev/null || pkgs+=(e2fsprogs)
  command -v sqlite3 >/dev/null || pkgs+=(sqlite3)
  [[ -f /usr/include/sqlite3.h ]] || pkgs+=(libsqlite3-dev)
  command -v gcc >/dev/null || pkgs+=(gcc libc6-dev)
  command -v cpio >/dev/null || pkgs+=(cpio)
  command -v gzip >/dev/null || pkgs+=(gzip)
  command -v modprobe >/dev/null || pkgs+=(kmod)
  command -v chromium >/dev/null || pkgs+=(chromium fonts-dejavu-core) # the console's browser tests
  kernel=$(cloud_kernel)
  [[ -n $kernel ]] || pkgs+=(linux-image-cloud-amd64)
  busybox_static || pkgs+=(busybox-static)
  ((${#pkgs[@]})) || return 0
  if [[ -n ${STANDBY_VM_NO_INSTALL:-} ]]; then
    say "missing packages: ${pkgs[*]} (STANDBY_VM_NO_INSTALL is set)"
    exit 1
  fi
  say "installing ${pkgs[*]}"
  local sudo=()
  ((EUID == 0)) || sudo=(sudo)
  local apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get)
  if ! "${apt[@]}" install -y --no-install-recommends "${pkgs[@]}" >/dev/null; then
    say "apt-get install failed: updating the package lists and trying again"
    "${apt[@]}" update >/dev/null
    "${apt[@]}" install -y --no-install-recommends "${pkgs[@]}" >/dev/null
  fi
}

host_tools() { # the tools the tests judge with are installed: NBD clients, e2fsprogs, the sqlite3 CLI
  command -v nbdinfo >/dev/null && command -v nbdcopy >/dev/null && command -v qemu-io >/dev/null &&
    command -v debugfs >/dev/null && command -v sqlite3 >/dev/null && command -v chromium >/dev/null
}

# busybox-static's /bin/busybox is statically linked (the guest has no libc); Debian's busybox package
# (dynamically linked, fewer applets) would replace it, so ask dpkg which one is installed.
busybox_static() {
  [[ -x /bin/busybox ]] && dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'ok installed'
}

cloud_kernel() { # the newest installed cloud kernel's version, if any
  local v
  v=$(ls /boot/vmlinuz-*-cloud-amd64 2>/dev/null | sed 's|^/boot/vmlinuz-||' | sort -V | tail -n1)
  [[ -n $v && -d /lib/modules/$v ]] && echo "$v"
}

# modules <kernel>: the .ko files to load, dependencies first, without duplicates or built-ins.
modules() {
  local m line
  for m in "${needed_modules[@]}"; do
    modprobe -S "$1" --show-depends "$m" | while read -r line; do
      case $line in
      insmod\ *) line=${line#insmod }; echo "${line%% *}" ;;
      builtin\ *) echo "vm-image: $m is built into $1" >&2 ;;
      esac
    done
  done | awk '!seen[$0]++'
}

busybox_tree() { # busybox_tree <dir>: /bin/busybox and a symlink per applet
  local dir=$1 applet
  mkdir -p "$dir/bin" "$dir/sbin" "$dir/usr/bin" "$dir/usr/sbin"
  cp /bin/busybox "$dir/bin/busybox"
  for applet in $(/bin/busybox --list); do
    [[ $applet == busybox ]] || ln -sf busybox "$dir/bin/$applet"
  done
}

build_initrd() { # build_initrd <kernel> <staging> <output>
  local kernel=$1 dir=$2/initrd ko
  mkdir -p "$dir"/{dev,proc,sys,newroot,lib/modules}
  busybox_tree "$dir"
  : >"$dir/lib/modules/load-order"
  for ko in $(modules "$kernel"); do
    cp "$ko" "$dir/lib/modules/"
    basename "$ko" >>"$dir/lib/modules/load-order"
  done
  # The console before devtmpfs is mounted (the kernel opens it for /init); mknod needs root, and the
  # kernel's built-in initramfs usually provides it anyway.
  mknod -m 600 "$dir/dev/console" c 5 1 2>/dev/null || true
  cat >"$dir/init" <<'EOF'
#!/bin/sh
# The "hypervisor's" initramfs: load the virtio disk driver, mount the OS disk named by root= and hand
# over to the disk's own /sbin/init. On a failure it says why on the console (the last line of the serial
# log) and powers the machine off (QEMU's -no-reboot ends QEMU); if it died instead, the kernel would
# panic, and panic=-1 with -no-reboot would end QEMU too, after a stack trace.
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
fail() {
  echo "STANDBY-INITRD-FAIL: $*"
  poweroff -f
  exit 1
}
while read -r ko; do
  [ -n "$ko" ] && insmod "/lib/modules/$ko" || fail "insmod $ko"
done </lib/modules/load-order
root=/dev/vda fstype=ext4 mode=rw
for arg in $(cat /proc/cmdline); do
  case $arg in
  root=*) root=${arg#root=} ;;
  rootfstype=*) fstype=${arg#rootfstype=} ;;
  ro) mode=ro ;;
  rw) mode=rw ;;
  esac
done
tries=0
while [ ! -b "$root" ]; do
  tries=$((tries + 1))
  [ $tries -gt 100 ] && fail "no root device $root"
  sleep 0.1
done
mount -t "$fstype" -o "$mode" "$root" /newroot || fail "cannot mount $root ($fstype) on /newroot"
[ -x /newroot/sbin/init ] || fail "$root has no /sbin/init"
mount --move /dev /newroot/dev 2>/dev/null || umount /dev
umount /sys /proc
exec switch_root /newroot /sbin/init
EOF
  chmod 755 "$dir/init"
  (cd "$dir" && find . -print0 | cpio --null --quiet -o -H newc -R 0:0) | gzip -9 >"$3"
}

build_os() { # build_os <staging> <output>
  local dir=$1/os
  mkdir -p "$dir"/{dev,proc,sys,tmp,root,etc,var/lib/standby}
  chmod 1777 "$dir/tmp"
  busybox_tree "$dir"
  echo "$guest_hostname" >"$dir/etc/hostname"
  cat >"$dir/sbin/init" <<'EOF'
#!/bin/sh
# The guest's init (the OS disk's own): it says it is up on the serial console, then serves the console:
# a line "poweroff" powers the machine off cleanly (root remounted read-only first, so the filesystem is
# clean on the disk), any other line is run by the shell.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
[ -e /proc/self ] || mount -t proc proc /proc
[ -d /sys/kernel ] || mount -t sysfs sysfs /sys
[ -e /dev/null ] || mount -t devtmpfs devtmpfs /dev # the initramfs moves its /dev here
mount -o remount,rw / 2>/dev/null
host=$(cat /etc/hostname 2>/dev/null)
[ -n "$host" ] || host=localhost
hostname "$host"
echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) boot" >>/var/lib/standby/boots
disks=
for d in /dev/vd[a-z] /dev/vd[a-z][a-z]; do
  [ -b "$d" ] && disks="${disks:+$disks,}$d"
done
exec </dev/ttyS0 >/dev/ttyS0 2>&1
echo "STANDBY-GUEST-UP host=$host disks=$disks"
while :; do
  if ! read -r line; then sleep 1; continue; fi
  case $line in
  poweroff)
    echo "STANDBY-GUEST-POWEROFF host=$host"
    sync
    mount -o remount,ro /
    poweroff -f
    ;;
  "") ;;
  *) sh -c "$line" ;;
  esac
done
EOF
  chmod 755 "$dir/sbin/init"
  mke2fs -q -t ext4 -L standby-os -d "$dir" -F "$2" "${disk_mib}M" >/dev/null
}

staging=
main() {
  mkdir -p "$out"
  exec 9>"$out/.lock"
  flock 9 # concurrent test processes build once
  rm -rf "$out"/.build.* # an interrupted build's leftovers
  if fresh; then
    host_tools || install_missing
    say "up to date in $out ($(cat "$out/kernel-version"))"
    return
  fi
  install_missing
  local kernel
  kernel=$(cloud_kernel)
  [[ -n $kernel ]] || { say "no cloud kernel in /boot after installing linux-image-cloud-amd64"; exit 1; }
  staging=$(mktemp -d "$out/.build.XXXXXX")
  trap 'rm -rf "$staging"' EXIT
  cp "/boot/vmlinuz-$kernel" "$staging/vmlinuz"
  build_initrd "$kernel" "$staging" "$staging/initrd.img"
  build_os "$staging" "$staging/os.img"
  echo "$kernel" >"$staging/kernel-version"
  echo "$guest_hostname" >"$staging/guest-hostname"
  # -static: the guest has no libc; glibc warns that SQLite's dlopen would need one at run time, which
  # sqlwork never calls.
  gcc -O2 -static -o "$staging/sqlwork" scripts/guest/sqlwork.c -lsqlite3 -lm -lpthread 2>"$staging/gcc.log" ||
    { cat "$staging/gcc.log"; say "building sqlwork failed"; exit 1; }
  local f outputs=(vmlinuz initrd.img os.img kernel-version guest-hostname sqlwork)
  for f in "${outputs[@]}"; do mv -f "$staging/$f" "$out/$f"; done
  for f in "${outputs[@]}"; do
    say "$(printf '%-14s %8s' "$f" "$(du -h "$out/$f" | cut -f1)")  $out/$f"
  done
  say "kernel $kernel, guest hostname $guest_hostname, built in $(( ($(date +%s%N) - started) / 1000000 )) ms"
}

main "$@"
