// Package qemu is the local compute stand-in: it boots VM disk images with QEMU and tells when the guest
// is up. Failover uses it to boot failed-over VMs from their replicated disks, where Azure would start
// them on its own hosts.
//
// Direct kernel boot. A machine boots the "hypervisor's" kernel and initramfs (scripts/vm-image.sh
// builds them from Debian's cloud kernel under .local/vm) with its root filesystem on its first disk,
// /dev/vda: the disk is the VM's OS disk, the kernel and initramfs are the platform's boot files, as
// Azure's boot path is the platform's. So what a failover replicates and proves is the disk, with no
// bootloader or firmware on it to install, and a disk a replication damaged fails to mount, which is
// what such a disk would do in Azure too.
//
// TCG only. QEMU emulates the CPU (-machine q35,accel=tcg); KVM is never used: it is present on the
// development and CI machines but crashes guests there, and TCG runs anywhere, in containers too.
// A boot to the guest's health line takes a couple of seconds.
//
// What "up" means. The guest says so itself: the OS disk's own init prints a line starting with
// [Healthy] ("STANDBY-GUEST-UP host=<hostname> disks=/dev/vda,...") on its serial console, after it
// mounted its filesystems and read its hostname from the disk. The serial console (ttyS0, QEMU's
// stdio) is read by [Machine] and appended to [Spec.SerialLog]; [Machine.WaitFor] waits for a line, and
// a machine that never becomes healthy (a damaged disk, a kernel panic, QEMU's own failure) gives an
// error carrying the serial log's last lines, so a job reports why. The console also takes input: the
// guest powers off cleanly on a line "poweroff" ([Machine.Stop]) and runs any other line with its shell
// ([Machine.Send]).
//
// QEMU is a child process killed when the Boot context ends or the parent process dies (Linux's
// parent-death signal); machines use user-mode networking at most (no bridge, tap or host port
// forwards), so booting one needs no privileges beyond reading (and, without Snapshot, writing) its
// disk images.
package qemu
