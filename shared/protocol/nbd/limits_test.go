package nbd

import (
	"io"
	"net"
	"testing"
	"time"
)

// A connection past MaxConns is closed as soon as it is accepted, before any greeting; the ones within
// are served, and a place freed is taken again.
func TestConnectionsAreCapped(t *testing.T) {
	ts, _, _ := twoExports(t, &Server{MaxConns: 2})
	a, _, _ := connect(t, ts.path, "vm1/disk0")
	connect(t, ts.path, "vm1/disk0")
	extra, err := net.Dial("unix", ts.path)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	extra.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := extra.Read(make([]byte, 18)); err != io.EOF {
		t.Fatalf("a third connection with room for two: read %d bytes, %v; want it closed", n, err)
	}
	a.request(cmdDisc, 0, 1, 0, 0, nil)
	a.closed()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c := dial(t, ts.path)
		c.c.SetReadDeadline(time.Now().Add(time.Second))
		if _, err := io.ReadFull(c.r, make([]byte, 18)); err == nil {
			break // greeted: the freed place was taken again
		}
		if time.Now().After(deadline) {
			t.Fatal("no connection served after one of two left")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The data held across connections is bounded: with room for two 4 KiB writes, a third on another
// connection is not read into memory, nor reaches the export, until one of the first is done.
func TestBufferedDataIsBounded(t *testing.T) {
	ts, d0, _ := twoExports(t, &Server{MaxBufferedBytes: 8192})
	g := newGate(0, 4096, 8192)
	d0.hook = g.hook
	t.Cleanup(func() { g.release(0); g.release(4096); g.release(8192) })
	var clients []*client
	for i := range 3 {
		c, _, _ := connect(t, ts.path, "vm1/disk0")
		c.request(cmdWrite, 0, uint64(i), blockOffset(i), 4096, pattern(4096, byte(i)))
		clients = append(clients, c)
	}
	for range 2 {
		<-g.entered
	}
	select {
	case off := <-g.entered:
		t.Fatalf("a third write (at %d) reached the export with the budget full", off)
	case <-time.After(200 * time.Millisecond):
	}
	g.release(0)
	g.release(4096)
	select {
	case <-g.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the third write never went through after the first two were done")
	}
	g.release(8192)
	for i, c := range clients {
		if r := c.reply(); r.errno != 0 || r.cookie != uint64(i) {
			t.Fatalf("write %d: cookie %d errno %d", i, r.cookie, r.errno)
		}
	}
}

// blockOffset is the offset of the i-th 4 KiB block.
func blockOffset(i int) uint64 { return uint64(i) * 4096 }
