package qemu

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Binary is the QEMU system emulator Boot runs (looked up in PATH).
var Binary = "qemu-system-x86_64"

// BaseAppend is the kernel command line every machine gets before Spec.Append: the serial console, the
// root filesystem on the first disk (read-write), and an immediate reboot on a panic, which QEMU's
// -no-reboot (unless Spec.RebootOnReset) turns into QEMU's exit, so a guest that cannot boot ends
// instead of hanging.
const BaseAppend = "console=ttyS0 root=/dev/vda rw panic=-1"

// Defaults of Spec.MemoryMiB and Spec.CPUs.
const (
	DefaultMemoryMiB = 256
	DefaultCPUs      = 1
)

// StopGrace bounds how long Stop waits for a clean guest poweroff before it kills QEMU.
var StopGrace = 20 * time.Second

// Network is a machine's networking.
type Network int

const (
	// None: no network device.
	None Network = iota
	// User: a virtio NIC on QEMU's user-mode network (NAT through QEMU, no host port forwards, no
	// bridge or tap device, no privileges).
	User
	// Segment: a virtio NIC (Spec.MAC) on the Ethernet segment Spec.Segment names, shared by every
	// machine given the same one: QEMU's multicast socket network on the loopback interface (no route
	// out of the host, no privileges). An isolated test network of several machines.
	Segment
)

// Spec describes a machine to boot.
type Spec struct {
	Name   string   // QEMU's -name and the machine's name in errors ("vm" if empty)
	Kernel string   // the kernel (vmlinuz) booted directly
	Initrd string   // its initramfs, which mounts root= and switches to the disk's /sbin/init
	Append string   // extra kernel arguments, after BaseAppend
	Disks  []string // raw disk images attached as virtio disks in order: the first is the OS disk, /dev/vda
	// NBD are disks served over NBD (QEMU's nbd:// or nbd+unix:// URIs), attached as virtio disks after
	// Disks: QEMU's own NBD client is the guest's disk controller.
	NBD       []string
	MemoryMiB int // DefaultMemoryMiB if 0
	CPUs      int // DefaultCPUs if 0
	Network   Network
	Segment   string // Network Segment's multicast group and port ("239.1.2.3:23456")
	MAC       string // the NIC's MAC address on a segment
	SerialLog string // if set, the serial console is appended to this file
	Snapshot  bool   // QEMU -snapshot: the guest's writes go to temporary files, never to the images
	PIDFile   string // if set, QEMU writes its pid here itself (-pidfile): a launcher that died can find it
	// RunSocket, if set, is the unix socket QEMU serves the guest's second serial port on (ttyS1): the
	// run channel, where the guest's init runs commands (RunCommand).
	RunSocket string
	// RebootOnReset boots the guest again when it resets (a reboot, a panic with panic=-1, a triple
	// fault) instead of ending QEMU, as Azure restarts a VM whose guest resets.
	RebootOnReset bool
}

// Machine is a running (or exited) QEMU machine.
type Machine struct {
	name    string
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	stdinMu sync.Mutex
	console *console
	stderr  *tailBuffer
	started time.Time
	exited  chan struct{}
	err     error // QEMU's exit (cmd.Wait), set before exited is closed
}

// Args returns QEMU's command-line arguments (without the binary) for the spec, with defaults applied.
func (s Spec) Args() []string {
	mem, cpus := s.MemoryMiB, s.CPUs
	if mem <= 0 {
		mem = DefaultMemoryMiB
	}
	if cpus <= 0 {
		cpus = DefaultCPUs
	}
	args := []string{
		"-name", optValue(s.name()),
		"-machine", "q35,accel=tcg", // TCG only: KVM crashes guests on the machines this runs on
		"-m", strconv.Itoa(mem), "-smp", strconv.Itoa(cpus),
		"-nographic", "-nodefaults",
		"-monitor", "none", "-serial", "stdio", // the serial console is QEMU's stdin and stdout
		"-kernel", s.Kernel, "-initrd", s.Initrd,
		"-append", strings.TrimSpace(BaseAppend + " " + s.Append),
	}
	if !s.RebootOnReset {
		args = append(args, "-no-reboot")
	}
	for _, d := range s.Disks {
		args = append(args, "-drive", "file="+optValue(d)+",format=raw,if=virtio,cache=writeback")
	}
	for _, u := range s.NBD { // no host cache: a guest's flush must reach the server
		args = append(args, "-drive", "file="+optValue(u)+",format=raw,if=virtio,cache=none")
	}
	switch s.Network {
	case User:
		args = append(args, "-nic", "user,model=virtio-net-pci")
	case Segment:
		args = append(args, "-netdev", "socket,id=seg,localaddr=127.0.0.1,mcast="+optValue(s.Segment), "-device", "virtio-net-pci,netdev=seg,mac="+optValue(s.MAC))
	default:
		args = append(args, "-nic", "none")
	}
	if s.Snapshot {
		args = append(args, "-snapshot")
	}
	if s.RunSocket != "" {
		args = append(args, "-chardev", "socket,id=run,server=on,wait=off,path="+optValue(s.RunSocket), "-serial", "chardev:run")
	}
	if s.PIDFile != "" {
		args = append(args, "-pidfile", s.PIDFile)
	}
	return args
}

func (s Spec) name() string {
	if s.Name == "" {
		return "vm"
	}
	return s.Name
}

var (
	segmentAddr = regexp.MustCompile(`^239\.\d{1,3}\.\d{1,3}\.\d{1,3}:\d{1,5}$`)
	macAddr     = regexp.MustCompile(`^[0-9a-f]{2}(:[0-9a-f]{2}){5}$`)
)

// MaxSocketPath bounds a unix socket's path (sun_path, with its NUL).
const MaxSocketPath = 108

// optValue escapes a value inside a QEMU option list, where a comma is written twice.
func optValue(v string) string { return strings.ReplaceAll(v, ",", ",,") }

func (s Spec) check() error {
	if s.Kernel == "" || s.Initrd == "" {
		return errors.New("qemu: a spec needs a Kernel and an Initrd")
	}
	if len(s.Disks) == 0 {
		return errors.New("qemu: a spec needs at least one disk (the OS disk)")
	}
	if s.Network != None && s.Network != User && s.Network != Segment {
		return fmt.Errorf("qemu: unknown network %d", s.Network)
	}
	if s.Network == Segment && (!segmentAddr.MatchString(s.Segment) || !macAddr.MatchString(s.MAC)) {
		return fmt.Errorf("qemu: a segment needs a multicast group:port (239.x.y.z:port) and a MAC address, not %q and %q", s.Segment, s.MAC)
	}
	if len(s.RunSocket) >= MaxSocketPath {
		return fmt.Errorf("qemu: the run socket's path is %d bytes, more than a unix socket's %d", len(s.RunSocket), MaxSocketPath-1)
	}
	for _, f := range append([]string{s.Kernel, s.Initrd}, s.Disks...) {
		if st, err := os.Stat(f); err != nil {
			return fmt.Errorf("qemu: %w", err)
		} else if !st.Mode().IsRegular() {
			return fmt.Errorf("qemu: %s is not a regular file", f)
		}
	}
	return nil
}

// Boot starts a machine. QEMU runs until the guest powers off (or panics), Stop, the end of ctx, or the
// death of this process; Boot returns once QEMU has started, not when the guest is up (see WaitFor).
func Boot(ctx context.Context, spec Spec) (*Machine, error) {
	if err := spec.check(); err != nil {
		return nil, err
	}
	bin, err := exec.LookPath(Binary)
	if err != nil {
		return nil, fmt.Errorf("qemu: %w (install qemu-system-x86)", err)
	}
	var serial io.WriteCloser
	if spec.SerialLog != "" {
		f, err := os.OpenFile(spec.SerialLog, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return nil, fmt.Errorf("qemu: serial log: %w", err)
		}
		serial = f
	}
	m := &Machine{name: spec.name(), console: newConsole(serial), stderr: &tailBuffer{max: 8 << 10},
		exited: make(chan struct{})}
	m.cmd = exec.CommandContext(ctx, bin, spec.Args()...)
	m.cmd.SysProcAttr = sysProcAttr()
	m.cmd.Stderr = m.stderr
	m.cmd.WaitDelay = 5 * time.Second
	stdout, err := m.cmd.StdoutPipe()
	if err == nil {
		m.stdin, err = m.cmd.StdinPipe()
	}
	if err == nil {
		m.started = time.Now()
		err = m.cmd.Start()
	}
	if err != nil {
		m.console.close()
		return nil, fmt.Errorf("qemu: start %s: %w", m.name, err)
	}
	go func() {
		m.console.read(stdout) // until QEMU's stdout closes
		m.err = m.cmd.Wait()
		m.console.close()
		close(m.exited)
	}()
	return m, nil
}

// Name is the spec's name.
func (m *Machine) Name() string { return m.name }

// PID is QEMU's process id.
func (m *Machine) PID() int { return m.cmd.Process.Pid }

// Started is when QEMU was started.
func (m *Machine) Started() time.Time { return m.started }

// Exited is closed once QEMU has exited and its serial output has been read.
func (m *Machine) Exited() <-chan struct{} { return m.exited }

// Err is QEMU's exit status once Exited is closed (nil for a guest that powered off), nil before.
func (m *Machine) Err() error {
	select {
	case <-m.exited:
		return m.err
	default:
		return nil
	}
}

// Tail returns the serial console's last n lines (with an unterminated last line, if any).
func (m *Machine) Tail(n int) []string { return m.console.tail(n) }

// Send writes a line to the serial console. The guest's init runs it with its shell ("poweroff" powers
// the machine off); before the guest is up, nothing reads it.
func (m *Machine) Send(line string) error {
	m.stdinMu.Lock()
	defer m.stdinMu.Unlock()
	select {
	case <-m.exited:
		return fmt.Errorf("qemu: %s has exited", m.name)
	default:
	}
	_, err := io.WriteString(m.stdin, line+"\n")
	return err
}

// ErrKilled is (wrapped in) Stop's error when the guest did not power off and QEMU had to be killed.
var ErrKilled = errors.New("killed")

// Stop stops the machine: if the guest is up, it asks it to power off (which remounts its root
// read-only first, so the OS disk is left clean) and waits up to StopGrace or the end of ctx; then, or
// at once if the guest never came up, QEMU is ended (SIGTERM, then SIGKILL). It returns nil when QEMU
// exited by itself (a clean poweroff, or an exit before Stop), an error wrapping ErrKilled otherwise;
// callers that only want the machine gone can ignore that.
func (m *Machine) Stop(ctx context.Context) error {
	select {
	case <-m.exited:
		return nil
	default:
	}
	if m.console.seen(Healthy) && m.Send("poweroff") == nil {
		grace := time.NewTimer(StopGrace)
		defer grace.Stop()
		select {
		case <-m.exited:
			return nil
		case <-ctx.Done():
		case <-grace.C:
		}
	}
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.exited:
	case <-time.After(2 * time.Second):
		_ = m.cmd.Process.Kill()
		<-m.exited
	}
	return fmt.Errorf("qemu: %s did not power off: %w", m.name, ErrKilled)
}

// tailBuffer keeps the last max bytes written to it (QEMU's stderr).
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if len(b.buf) > b.max {
		b.buf = append([]byte(nil), b.buf[len(b.buf)-b.max:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.TrimSpace(string(b.buf))
}
