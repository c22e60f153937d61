package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/standby-dr/standby/shared/protocol/nbd"
	"github.com/standby-dr/standby/shared/protocol/nbd/netlink"
)

// AttachConfig is how agent attach keeps a /dev/nbdN on the agent's export.
type AttachConfig struct {
	// Device is the kernel's NBD device, /dev/nbd<N>.
	Device string
	// Export is the agent's export ("<vm>/<disk>") and Addr where the agent serves it (as -nbd names
	// it: unix:<path> or a loopback host:port).
	Export, Addr string
	// Connections is how many sockets the device spreads its requests over (the export allows several:
	// NBD_FLAG_CAN_MULTI_CONN).
	Connections int
	// IOTimeout is how long a request waits for its reply before the kernel sends it again on a live
	// socket, or waits for one; DeadTimeout is how long requests wait for the agent to come back when
	// every socket is dead, before they fail.
	IOTimeout, DeadTimeout time.Duration
	// DialTimeout bounds one connection attempt with its negotiation.
	DialTimeout time.Duration
	Log         *slog.Logger
	// Ready is called once the device is attached (systemd's READY=1: the data disk's mount may start).
	Ready func()
}

var nbdDevice = regexp.MustCompile(`^/dev/nbd([0-9]{1,4})$`)

// DeviceIndex is N of /dev/nbdN.
func DeviceIndex(device string) (int, error) {
	m := nbdDevice.FindStringSubmatch(device)
	if m == nil {
		return 0, fmt.Errorf("device %q: not /dev/nbd<N>", device)
	}
	return strconv.Atoi(m[1])
}

// Attach attaches the device to the agent's export through the kernel's netlink interface and keeps it
// attached until ctx ends, then leaves it as it is: the kernel holds the sockets, not this process, so
// the device outlives both the agent and this process.
//
// This is what keeps the VM's disk through an agent's restart (drivers/block/nbd.c of Linux 6.1, line
// numbers of that file): the device is configured with a dead-connection timeout, so when the agent's
// sockets die, requests wait for new ones (wait_for_reconnect, nbd.c:969) instead of failing ("Dead
// connection, failed to find a fallback", nbd.c:945), and with an I/O timeout, so the requests that were
// on a socket when it died are sent again on the new one (nbd_xmit_timeout, nbd.c:436). The kernel
// announces each dead socket (NBD_CMD_LINK_DEAD, nbd_mark_nsock_dead, nbd.c:301); Attach answers with a
// newly negotiated one (NBD_CMD_RECONFIGURE, nbd_reconnect_socket, nbd.c:1198), retrying until the
// agent listens again. Started while the device is already attached (after this process restarted, or
// the VM's agent was upgraded), it hands the kernel sockets for whatever is dead and carries on.
func Attach(ctx context.Context, cfg AttachConfig) error {
	index, err := DeviceIndex(cfg.Device)
	if err != nil {
		return err
	}
	if cfg.Connections <= 0 || cfg.Connections > 16 {
		return fmt.Errorf("%d connections: between 1 and 16", cfg.Connections)
	}
	if cfg.IOTimeout < time.Second || cfg.DeadTimeout < time.Second {
		return errors.New("the I/O and dead-connection timeouts are whole seconds, at least 1 s each (0 would make the kernel fail or hang requests instead of waiting)")
	}
	log := cfg.Log.With("device", cfg.Device, "disk", cfg.Export)
	// The process that reconnects the disk is in the disk's I/O path as much as the agent is.
	for _, err := range protectIOPath() {
		log.Warn("keeping the device attached without a protection of its I/O path (run as root)", "err", err)
	}
	nl, err := openNetlink(ctx, log)
	if err != nil {
		return err
	}
	defer nl.Close()
	// Heard before the first look, so no socket dies unheard between the two.
	w, err := nl.Watch()
	if err != nil {
		return err
	}
	defer w.Close()
	k := &keeper{cfg: cfg, log: log, nl: nl, dev: netlink.Device{Index: index, Backend: "standby:" + cfg.Export,
		IOTimeoutSeconds: seconds(cfg.IOTimeout), DeadConnTimeoutSeconds: seconds(cfg.DeadTimeout)}}
	if err := k.attach(ctx); err != nil {
		return err
	}
	if cfg.Ready != nil {
		cfg.Ready()
	}
	for ctx.Err() == nil {
		dead, err := w.Next(time.Second)
		switch {
		case errors.Is(err, netlink.ErrEventsLost):
			dead = slices.Repeat([]int{index}, cfg.Connections) // unknown: offer a full set; the kernel takes what it lacks
		case err != nil:
			return err
		}
		n := 0
		for _, i := range dead {
			if i == index {
				n++
			}
		}
		if n > 0 {
			log.Warn("the kernel says sockets of the device died: reconnecting", "sockets", n)
			if err := k.reconnect(ctx, n); err != nil {
				return err
			}
		}
	}
	log.Info("stopped watching the device; it stays attached, its sockets held by the kernel")
	return nil
}

func seconds(d time.Duration) uint64 { return uint64((d + time.Second - 1) / time.Second) }

// openNetlink opens the kernel's nbd family, loading the module once when it is missing.
func openNetlink(ctx context.Context, log *slog.Logger) (*netlink.Conn, error) {
	nl, err := netlink.Open()
	if !errors.Is(err, netlink.ErrNoFamily) {
		return nl, err
	}
	out, merr := exec.CommandContext(ctx, "modprobe", "nbd").CombinedOutput()
	if merr != nil {
		return nil, fmt.Errorf("%w; modprobe nbd: %v %s", err, merr, out)
	}
	log.Info("loaded the kernel's nbd module")
	return netlink.Open()
}

// keeper hands the kernel sockets for the device.
type keeper struct {
	cfg AttachConfig
	log *slog.Logger
	nl  *netlink.Conn
	dev netlink.Device
}

// attach connects the device, or reconfigures it when the kernel still has it.
func (k *keeper) attach(ctx context.Context) error {
	connected, err := k.nl.Status(k.dev.Index)
	if err != nil {
		return err
	}
	files, info, err := k.dial(ctx, k.cfg.Connections)
	if err != nil {
		return err
	}
	defer closeAll(files)
	k.dev.Size, k.dev.Flags, k.dev.BlockSize = info.Size, info.Flags, logicalBlockSize(info)
	if connected {
		if err := k.nl.Reconfigure(k.dev, fds(files)); err != nil {
			return fmt.Errorf("%s is attached, but not to this export, or the kernel refused new sockets: %w", k.cfg.Device, err)
		}
		k.log.Info("the device was still attached: the kernel has new sockets for its dead ones", "connections", len(files))
		return nil
	}
	if err := k.nl.Connect(k.dev, fds(files)); err != nil {
		return fmt.Errorf("attaching %s: %w", k.cfg.Device, err)
	}
	k.log.Info("attached", "bytes", info.Size, "connections", len(files), "io_timeout", k.cfg.IOTimeout, "dead_timeout", k.cfg.DeadTimeout)
	return nil
}

// logicalBlockSize is the device's logical block size: the export's minimum, as the disk behind it has
// (512 for Azure's disks). A larger one would refuse what is already on the disk: ext4 with 1 KiB blocks
// ("bad block size"), a partition table of 512-byte sectors.
func logicalBlockSize(info nbd.ExportInfo) uint64 {
	if info.MinBlock == 0 {
		return nbd.MinBlockSize
	}
	return uint64(info.MinBlock)
}

// reconnect hands the kernel n new sockets for dead ones.
func (k *keeper) reconnect(ctx context.Context, n int) error {
	files, info, err := k.dial(ctx, n)
	if err != nil {
		return err
	}
	defer closeAll(files)
	if info.Size != k.dev.Size {
		return fmt.Errorf("the export %s now has %d bytes, the device %d: not reconnected (detach and attach again)", k.cfg.Export, info.Size, k.dev.Size)
	}
	if err := k.nl.Reconfigure(k.dev, fds(files)); err != nil {
		return fmt.Errorf("reconnecting %s: %w", k.cfg.Device, err)
	}
	k.log.Info("reconnected", "sockets", n)
	return nil
}

// dial negotiates n connections to the export, retrying while the agent does not answer (it may be
// restarting) until ctx ends; a refusal by the agent itself (no such export) ends it at once.
func (k *keeper) dial(ctx context.Context, n int) ([]*os.File, nbd.ExportInfo, error) {
	var files []*os.File
	var info nbd.ExportInfo
	wait, lastSaid := 100*time.Millisecond, time.Time{}
	for len(files) < n {
		f, got, err := nbd.DialKernel(ctx, k.cfg.Addr, k.cfg.Export, k.cfg.DialTimeout)
		if err == nil {
			files, info, wait = append(files, f), got, 100*time.Millisecond
			continue
		}
		var refused *nbd.RefusedError
		if errors.As(err, &refused) {
			closeAll(files)
			return nil, info, err
		}
		if time.Since(lastSaid) > 10*time.Second {
			k.log.Warn("the agent's export does not answer yet; retrying", "addr", k.cfg.Addr, "err", err)
			lastSaid = time.Now()
		}
		select {
		case <-ctx.Done():
			closeAll(files)
			return nil, info, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
	return files, info, nil
}

func fds(files []*os.File) []int {
	out := make([]int, len(files))
	for i, f := range files {
		out[i] = int(f.Fd())
	}
	return out
}

func closeAll(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}

// Detach detaches the device (NBD_CMD_DISCONNECT): requests still queued fail. Disabling a group's
// capture ends with it, after the disk's filesystem is unmounted.
func Detach(device string) error {
	index, err := DeviceIndex(device)
	if err != nil {
		return err
	}
	nl, err := netlink.Open()
	if err != nil {
		return err
	}
	defer nl.Close()
	return nl.Disconnect(index)
}
