package nbd

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net"
	"testing"
	"time"
)

// DialKernel negotiates with the server and hands back a socket in the transmission phase: requests
// written to it are answered, as the kernel's client will see.
func TestDialKernelReachesTransmission(t *testing.T) {
	ts, d0, _ := twoExports(t, &Server{})
	f, info, err := DialKernel(context.Background(), "unix:"+ts.path, "vm1/disk0", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if info.Size != 1<<20 || info.ReadOnly() || info.Flags&flagSendFlush == 0 || info.MinBlock != MinBlockSize {
		t.Fatalf("export info %+v", info)
	}
	nc, err := net.FileConn(f)
	if err != nil {
		t.Fatal(err)
	}
	c := &client{t: t, c: nc, r: bufio.NewReader(nc), reads: map[uint64]int{}}
	if r := c.do(cmdWrite, 0, 8192, 4096, pattern(4096, 3)); r.errno != 0 {
		t.Fatalf("write through the handed-over socket: errno %d", r.errno)
	}
	if !bytes.Equal(d0.snapshot()[8192:12288], pattern(4096, 3)) {
		t.Fatal("the write did not reach the export")
	}
	ro, err := func() (ExportInfo, error) {
		f, info, err := DialKernel(context.Background(), "unix:"+ts.path, "vm1/disk1", 5*time.Second)
		if f != nil {
			f.Close()
		}
		return info, err
	}()
	if err != nil || !ro.ReadOnly() || ro.Size != 64<<10 {
		t.Fatalf("read-only export: %+v %v", ro, err)
	}
}

// A name the server does not have is a refusal the caller can tell from a server that is not there.
func TestDialKernelRefusedExport(t *testing.T) {
	ts, _, _ := twoExports(t, &Server{})
	_, _, err := DialKernel(context.Background(), "unix:"+ts.path, "vm9/none", 5*time.Second)
	var refused *RefusedError
	if !errors.As(err, &refused) || refused.Reply != repErrUnknown {
		t.Fatalf("unknown export: %v", err)
	}
	_, _, err = DialKernel(context.Background(), "unix:"+ts.path+".gone", "vm1/disk0", time.Second)
	if err == nil || errors.As(err, &refused) {
		t.Fatalf("no server: %v", err)
	}
}

// A request read after a shutdown began: NBD_ESHUTDOWN by default (proto.md), no answer at all with
// DropOnShutdown, so that a client that reconnects sends it again instead of failing it.
func TestShutdownAnswersOrDropsLateRequests(t *testing.T) {
	for _, drop := range []bool{false, true} {
		ts, d0, _ := twoExports(t, &Server{MaxInFlight: 1, DropOnShutdown: drop})
		g := newGate(0)
		d0.hook = g.hook
		c, _, _ := connect(t, ts.path, "vm1/disk0")
		// One write: the gated write takes the only slot, the first read waits for it, the second
		// stays in the server's buffer until after the shutdown began.
		c.write(c.encode(cmdWrite, 0, 1, 0, 4096, pattern(4096, 1)), c.encode(cmdRead, 0, 2, 0, 4096, nil),
			c.encode(cmdRead, 0, 3, 0, 4096, nil))
		<-g.entered
		time.Sleep(50 * time.Millisecond) // the first read is taken and waits for the slot
		ts.cancel()
		time.Sleep(50 * time.Millisecond)
		g.release(0)
		want := 3 // replies, in completion order
		if drop {
			want = 2
		}
		got := map[uint64]uint32{}
		for range want {
			r := c.reply()
			got[r.cookie] = r.errno
		}
		if e1, ok1 := got[1]; !ok1 || e1 != 0 {
			t.Fatalf("drop %v: the write taken before the shutdown: %v", drop, got)
		}
		if e2, ok2 := got[2]; !ok2 || e2 != 0 {
			t.Fatalf("drop %v: the read taken before the shutdown: %v", drop, got)
		}
		if drop {
			c.closed() // and no reply to 3
		} else if e3, ok3 := got[3]; !ok3 || e3 != errShutdown {
			t.Fatalf("the late request: %v, want 3 answered NBD_ESHUTDOWN", got)
		}
	}
}
