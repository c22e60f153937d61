package agent

import (
	"context"
	"fmt"
	"net"
	"path/filepath"

	"github.com/standby-dr/standby/shared/protocol/nbd"
)

// diskExport is one nbd: disk of the agent as an NBD export: reads come from the disk's file; writes,
// zeroes and trims go through the agent, onto the file and into the group's stream in completion order,
// before they are acknowledged; FUA and Flush are an fsync of the file.
type diskExport struct {
	a    *Agent
	disk string
}

var _ nbd.Export = diskExport{}

func (e diskExport) Size() int64 { return e.a.DiskSize(e.disk) }

func (e diskExport) ReadAt(p []byte, off int64) (int, error) { return e.a.ReadDisk(e.disk, p, off) }

func (e diskExport) WriteAt(p []byte, off int64, fua bool) error {
	for len(p) > 0 { // a request may be larger than one write of the stream
		n := min(len(p), MaxWriteBytes)
		if _, err := e.a.WriteSeq(e.disk, off, p[:n]); err != nil {
			return err
		}
		p, off = p[n:], off+int64(n)
	}
	if fua {
		return e.a.SyncDisk(e.disk)
	}
	return nil
}

func (e diskExport) WriteZeroes(off, length int64, fua bool) error {
	if err := e.a.WriteZeroes(e.disk, off, length); err != nil {
		return err
	}
	if fua {
		return e.a.SyncDisk(e.disk)
	}
	return nil
}

// Trim deallocates the range where the disk's file allows (Agent.Trim): it reads as zeros after.
func (e diskExport) Trim(off, length int64) error { return e.a.Trim(e.disk, off, length) }

func (e diskExport) Flush() error { return e.a.SyncDisk(e.disk) }

// NBDDisks are the group's disks whose source is nbd:, by key ("vm/disk", also the export's name).
func (a *Agent) NBDDisks() []string {
	var keys []string
	for _, d := range a.cfg.Disks {
		if c, _, err := captureOf(d); err == nil && c.exported() {
			keys = append(keys, d.Key)
		}
	}
	return keys
}

// DefaultNBDAddr is where the agent serves its exports when not told: a unix socket in its state
// directory, which only its owner may open.
func DefaultNBDAddr(stateDir string) string {
	abs, err := filepath.Abs(filepath.Join(stateDir, "nbd.sock"))
	if err != nil {
		abs = filepath.Join(stateDir, "nbd.sock")
	}
	return "unix:" + abs
}

// listenNBD listens at addr (a unix socket, or loopback TCP when allowTCP) for the agent's nbd: disks.
func (a *Agent) listenNBD(addr string, allowTCP bool) (net.Listener, *nbd.Server, error) {
	// A restart of the agent must not fail the requests the kernel sent meanwhile (attach.go).
	srv := &nbd.Server{Logger: a.cfg.Log.With("group", a.cfg.Group), DropOnShutdown: true}
	for _, key := range a.NBDDisks() {
		desc := fmt.Sprintf("Standby group %s, disk %s: every write is replicated", a.cfg.Group, key)
		if err := srv.Add(key, diskExport{a: a, disk: key}, nbd.ExportOptions{Description: desc}); err != nil {
			return nil, nil, err
		}
	}
	refused := func(err error) { a.cfg.Log.Warn("an NBD client refused", "group", a.cfg.Group, "err", err) }
	l, err := nbd.Listen(addr, nbd.ListenOptions{AllowTCP: allowTCP, Refused: refused})
	if err != nil {
		return nil, nil, fmt.Errorf("serving the nbd: disks at %s: %w", addr, err)
	}
	return l, srv, nil
}

// serveNBD serves the agent's nbd: disks until stop is called (nothing when it has none).
func (r *runner) serveNBD(ctx context.Context) (stop func(), err error) {
	if len(r.a.NBDDisks()) == 0 {
		return func() {}, nil
	}
	addr := r.cfg.NBDAddr
	if addr == "" {
		addr = DefaultNBDAddr(r.cfg.StateDir)
	}
	l, srv, err := r.a.listenNBD(addr, r.cfg.NBDAllowTCP)
	if err != nil {
		return nil, err
	}
	for _, err := range protectIOPath() {
		r.log.Warn("serving the VM's own disk without a protection of its I/O path (run the agent as root)", "err", err)
	}
	for _, key := range r.a.NBDDisks() {
		r.log.Info("nbd export", "disk", key, "uri", nbd.URI(l.Addr(), key))
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ctx, l); err != nil {
			r.log.Error("nbd server stopped", "err", err)
		}
	}()
	return func() { cancel(); <-done }, nil
}
