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
# hostname (a newer cloud kernel is picked up after `rm -r .local/vm`). STANDBY_VM_HOSTNAME sets the
# guest's /etc/hostname (default standby-vm).
#
# Set-up, step by step, each step named in its progress lines and in any failure:
#   packages   every package the image and the tests need (the table `requirements` below: QEMU, the cloud
#              kernel, busybox-static, e2fsprogs, the NBD clients shared/protocol/nbd's tests judge with, the
#              sqlite3 CLI, Debian's chromium for the console's tests, systemd-analyze for the agent's
#              units) is looked up; the missing ones are
#              named with what each is for, then installed with apt-get (the package lists are updated
#              first when there are none, and once more when an install fails). STANDBY_VM_NO_INSTALL=1
#              prints what is missing and the apt-get command, and installs nothing. Nothing missing
#              after the install is a failure naming the package.
#   kernel     the newest cloud kernel in STANDBY_VM_BOOT_DIR (/boot) with its modules in
#              STANDBY_VM_MODULES_ROOT/lib/modules (/); both are settable so a test can point them at empty
#              folders and see every decision a fresh machine meets.
#   initramfs, os disk, sqlwork: the outputs, built in a staging folder and moved in place together.
set -eEuo pipefail
cd "$(dirname "$0")/.."
script=$(pwd)/scripts/vm-image.sh
out=${STANDBY_VM_DIR:-.local/vm}
guest_hostname=${STANDBY_VM_HOSTNAME:-standby-vm}
boot_dir=${STANDBY_VM_BOOT_DIR:-/boot}
modules_root=${STANDBY_VM_MODULES_ROOT:-/}
disk_mib=64
# The modules the initramfs must load to mount an ext4 root on a virtio disk; whichever the kernel has
# built in (ext4 and crc32c in Debian's cloud kernel) are skipped, the rest come with their dependencies.
# virtio_net is for machines booted with user-mode networking (the guest gets eth0; it configures nothing).
# nbd is the kernel's NBD client, which agent attach drives over netlink in the restart proof
# (tests/nbd_kernel_test.go); loaded here, it stays loaded after switch_root (the OS disk has no modules).
needed_modules=(virtio_pci virtio_blk ext4 crc32c_generic virtio_net nbd)
started=$(date +%s%N)
step=start

say() { echo "vm-image: $*"; }
die() {
  say "FAILED in step '$step': $*" >&2
  exit 1
}
# No failure is silent: a command that fails under set -e names the step it ended and the command.
trap 'status=$?; say "FAILED in step '"'"'$step'"'"' (line $LINENO, exit $status): $BASH_COMMAND" >&2' ERR

fresh() { # every output exists and is newer than this script
  local f
  for f in vmlinuz initrd.img os.img kernel-version guest-hostname sqlwork; do
    [[ -s $out/$f && $out/$f -nt $script ]] || return 1
  done
  [[ $out/sqlwork -nt scripts/guest/sqlwork.c ]] || return 1
  [[ $(cat "$out/guest-hostname") == "$guest_hostname" ]]
}

# pkg_installed <package>: dpkg says it is installed (false where there is no dpkg-query).
pkg_installed() {
  command -v dpkg-query >/dev/null && dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'ok installed'
}

have() { # have <command>...: every command is on PATH
  local c
  for c; do command -v "$c" >/dev/null || return 1; done
}

# requirements: one line a package: the package, the check that it is there, what it is for. A check
# names commands on PATH (have) or asks dpkg (pkg) for what no command shows.
requirements() {
  cat <<'TABLE'
qemu-system-x86|have qemu-system-x86_64|boots the local compute's VMs (TCG)
qemu-utils|have qemu-img qemu-io|qemu-io: an NBD client the export is tested with
libnbd-bin|have nbdinfo nbdcopy|libnbd's NBD clients the export is tested with
e2fsprogs|have mke2fs e2fsck debugfs|builds the OS disk; e2fsck judges the failed-over filesystems
sqlite3|have sqlite3|the database's own integrity check of the replicated SQLite
libsqlite3-dev|pkg libsqlite3-dev|sqlite3.h and libsqlite3.a for the guest's static sqlwork
gcc|have gcc|builds sqlwork
libc6-dev|pkg libc6-dev|the static C library sqlwork links
cpio|have cpio|packs the initramfs
gzip|have gzip|compresses the initramfs
kmod|have modprobe|resolves the initramfs's kernel modules and their dependencies
busybox-static|busybox_static|the guest's userland (statically linked: the guest has no libc)
linux-image-cloud-amd64|cloud_kernel_present|the guest's kernel (Debian's cloud kernel, in the boot folder)
chromium|have chromium|the console's browser tests
fonts-dejavu-core|pkg fonts-dejavu-core|a font for chromium's screenshots
systemd|have systemd-analyze|systemd-analyze verify judges the agent's units (infra/agent)
TABLE
}

# busybox-static's /bin/busybox is statically linked (the guest has no libc); Debian's busybox package
# (dynamically linked, fewer applets) would replace it, so ask dpkg which one is installed.
busybox_static() {
  [[ -x /bin/busybox ]] && pkg_installed busybox-static
}

cloud_kernel() { # the newest cloud kernel's version with its modules, or nothing; never fails
  local v
  v=$(ls "$boot_dir"/vmlinuz-*-cloud-amd64 2>/dev/null | sed "s|^$boot_dir/vmlinuz-||" | sort -V | tail -n1) || true
  if [[ -n $v && -d $modules_root/lib/modules/$v ]]; then echo "$v"; fi
}

cloud_kernel_present() { [[ -n $(cloud_kernel) ]]; }

# missing: the lines of requirements whose check fails.
missing() {
  local pkg check purpose
  while IFS='|' read -r pkg check purpose; do
    case $check in
    pkg\ *) pkg_installed "${check#pkg }" ;;
    *) $check ;;
    esac && continue
    printf '%s|%s|%s\n' "$pkg" "$check" "$purpose"
  done < <(requirements)
}

# apt_run <log> <args...>: apt-get as root, its whole output in the log; progress (the packages it fetches
# and sets up) is printed as it goes.
apt_run() {
  local log=$1 sudo=()
  shift
  ((EUID == 0)) || sudo=(sudo)
  say "apt-get $* (log: $log)"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "$@" 2>&1 | tee -a "$log" |
    { grep --line-buffered -E '^(Setting up|Err:|E:)' || true; } | sed -u 's/^/vm-image:   /'
}

install_missing() {
  step=packages
  local lacking pkgs=() log pkg check purpose
  lacking=$(missing)
  [[ -n $lacking ]] || return 0
  say "step packages: missing:"
  while IFS='|' read -r pkg check purpose; do
    if [[ $check == have\ * ]]; then purpose+=" [no ${check#have }]"; fi
    printf 'vm-image:   %-24s %s\n' "$pkg" "$purpose"
    pkgs+=("$pkg")
  done <<<"$lacking"
  if [[ -n ${STANDBY_VM_NO_INSTALL:-} ]]; then
    say "STANDBY_VM_NO_INSTALL is set, so nothing is installed; as root: apt-get update && apt-get install -y --no-install-recommends ${pkgs[*]}"
    exit 1
  fi
  if ! have apt-get; then
    die "no apt-get on PATH to install ${pkgs[*]}: install them with this system's package manager"
  fi
  mkdir -p "$out"
  log=$(cd "$out" && pwd)/apt.log
  : >"$log"
  # A new machine may have no package lists at all: apt-get install would only say it cannot find them.
  if ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then
    apt_run "$log" update || die "apt-get update failed (see $log)"
  fi
  say "step packages: installing ${pkgs[*]}"
  if ! apt_run "$log" install -y --no-install-recommends "${pkgs[@]}"; then
    say "apt-get install failed: updating the package lists and trying again"
    apt_run "$log" update || die "apt-get update failed (see $log)"
    apt_run "$log" install -y --no-install-recommends "${pkgs[@]}" ||
      die "apt-get install ${pkgs[*]} failed (last lines of $log below)"$'\n'"$(tail -n 15 "$log")"
  fi
  lacking=$(missing)
  if [[ -n $lacking ]]; then
    while IFS='|' read -r pkg check purpose; do
      say "  still missing after apt-get install: $pkg (check: ${check}) - $purpose" >&2
    done <<<"$lacking"
    die "packages still missing after apt-get install: $(cut -d'|' -f1 <<<"$lacking" | paste -sd' ')"
  fi
  say "step packages: done"
}

# modules <kernel>: the .ko files to load, dependencies first, without duplicates or built-ins.
modules() {
  local m line
  for m in "${needed_modules[@]}"; do
    modprobe -d "$modules_root" -S "$1" --show-depends "$m" | while read -r line; do
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
# The address the platform gave this machine's NIC (the local compute's kernel argument standby.ip=A/N,
# where Azure's DHCP would give it): eth0 gets it, so a drill's VMs reach each other.
addr=
for arg in $(cat /proc/cmdline); do
  case $arg in standby.ip=*) addr=${arg#standby.ip=} ;; esac
done
ip link set lo up 2>/dev/null
if [ -n "$addr" ] && ip link set eth0 up 2>/dev/null; then
  ip addr add "$addr" dev eth0
fi
disks=
for d in /dev/vd[a-z] /dev/vd[a-z][a-z]; do
  [ -b "$d" ] && disks="${disks:+$disks,}$d"
done
# The run channel (shared/standin/qemu/run.go), on the second serial port when the host gave one:
# "RUN <nonce> <seconds> <base64 script>" runs the script with its output kept in a file only this
# loop reads; the reply frames the output's end in base64 between "<nonce> BEGIN <bytes>" and
# "<nonce> END <exit code> <exited|timedout>", so nothing the script prints can stand for its status.
serve_runs() {
  local verb nonce secs script dir code started state
  while :; do
    if ! read -r verb nonce secs script; then sleep 1; continue; fi
    [ "$verb" = RUN ] || continue
    case $secs in '' | *[!0-9]*) continue ;; esac
    dir=$(mktemp -d /tmp/run.XXXXXX)
    if echo "$script" | base64 -d >"$dir/script" 2>/dev/null; then
      started=$(date +%s)
      (cd / && timeout -s KILL "$secs" sh "$dir/script" </dev/null >"$dir/out" 2>&1)
      code=$?
      state=exited
      [ "$code" = 137 ] && [ $(($(date +%s) - started)) -ge "$secs" ] && state=timedout
    else
      echo "the run channel could not decode the script" >"$dir/out"
      code=126 state=exited
    fi
    echo "$nonce BEGIN $(wc -c <"$dir/out")"
    tail -c 4096 "$dir/out" | base64
    echo "$nonce END $code $state"
    rm -rf "$dir"
  done
}
# The loop holds the port open (fd 3) from before the machine says it is up, so what the host sends
# right after waits in the port's queue; a failed open ends only the subshell, never init.
if [ -c /dev/ttyS1 ] && stty -F /dev/ttyS1 raw -echo 2>/dev/null; then
  rm -f /tmp/run.ready
  (exec 3<>/dev/ttyS1 && stty -F /dev/ttyS1 raw -echo && touch /tmp/run.ready && serve_runs <&3 >&3 2>/dev/null) &
  i=0
  while [ ! -e /tmp/run.ready ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
fi
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
  step=lock
  mkdir -p "$out"
  exec 9>"$out/.lock"
  flock 9 # concurrent test processes build once
  rm -rf "$out"/.build.* # an interrupted build's leftovers
  # Even with the outputs up to date, the tests' judges (NBD clients, sqlite3, chromium) must be there.
  install_missing
  if fresh; then
    say "up to date in $out ($(cat "$out/kernel-version"))"
    return
  fi
  step=kernel
  local kernel
  kernel=$(cloud_kernel)
  [[ -n $kernel ]] || die "no cloud kernel: no $boot_dir/vmlinuz-*-cloud-amd64 with its modules in $modules_root/lib/modules (package linux-image-cloud-amd64)"
  say "step kernel: $kernel"
  staging=$(mktemp -d "$out/.build.XXXXXX")
  trap 'rm -rf "$staging"' EXIT
  cp "$boot_dir/vmlinuz-$kernel" "$staging/vmlinuz"
  step=initramfs
  build_initrd "$kernel" "$staging" "$staging/initrd.img"
  step="os disk"
  build_os "$staging" "$staging/os.img"
  echo "$kernel" >"$staging/kernel-version"
  echo "$guest_hostname" >"$staging/guest-hostname"
  step=sqlwork
  # -static: the guest has no libc; glibc warns that SQLite's dlopen would need one at run time, which
  # sqlwork never calls.
  gcc -O2 -static -o "$staging/sqlwork" scripts/guest/sqlwork.c -lsqlite3 -lm -lpthread 2>"$staging/gcc.log" ||
    die "building sqlwork (gcc -static ... -lsqlite3) failed:"$'\n'"$(cat "$staging/gcc.log")"
  step=install
  local f outputs=(vmlinuz initrd.img os.img kernel-version guest-hostname sqlwork)
  for f in "${outputs[@]}"; do mv -f "$staging/$f" "$out/$f"; done
  for f in "${outputs[@]}"; do
    say "$(printf '%-14s %8s' "$f" "$(du -h "$out/$f" | cut -f1)")  $out/$f"
  done
  say "kernel $kernel, guest hostname $guest_hostname, built in $(( ($(date +%s%N) - started) / 1000000 )) ms"
}

main "$@"
