package nbd

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A loopback TCP listener serves the clients of its permitted users only: root's and its own by
// default; another user's connection is closed before a byte of the protocol, and said so.
func TestTCPServesOnlyPermittedUsers(t *testing.T) {
	refusals := make(chan error, 4)
	l, err := Listen("127.0.0.1:0", ListenOptions{AllowTCP: true, PeerUIDs: []int{4242}, Refused: func(err error) { refusals <- err }})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		if c, err := l.Accept(); err == nil {
			c.Write([]byte("served"))
			c.Close()
		}
	}()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if got, err := io.ReadAll(c); len(got) != 0 || err != nil {
		t.Fatalf("a client of a user not permitted read %q (%v)", got, err)
	}
	select {
	case err := <-refusals:
		if !strings.Contains(err.Error(), "belongs to uid "+strconv.Itoa(os.Getuid())+", which may not use the disks") {
			t.Fatalf("refusal: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the refusal was not reported")
	}
	// By default this process's own user is served.
	own, err := Listen("127.0.0.1:0", ListenOptions{AllowTCP: true})
	if err != nil {
		t.Fatal(err)
	}
	defer own.Close()
	go func() {
		if c, err := own.Accept(); err == nil {
			c.Write([]byte("served"))
			c.Close()
		}
	}()
	c2, err := net.Dial("tcp", own.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c2.SetReadDeadline(time.Now().Add(10 * time.Second))
	if got, _ := io.ReadAll(c2); string(got) != "served" {
		t.Fatalf("this user's client read %q", got)
	}
}

// The attack of the hostile sweep: user 65534 on the same host connects to the agent's loopback NBD
// port. It never sees the server's greeting (NBDMAGIC), so it can neither read nor write a disk.
func TestAnotherLocalUserGetsNoDisk(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to run a client as another user")
	}
	s := &Server{Logger: testLogger(t)}
	if err := s.Add("vm/disk", newMem(1<<20), ExportOptions{}); err != nil {
		t.Fatal(err)
	}
	refusals := make(chan error, 4)
	l, err := Listen("127.0.0.1:0", ListenOptions{AllowTCP: true, Refused: func(err error) { refusals <- err }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, l) }()
	defer func() { cancel(); <-done }()
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	greeting := func(uid uint32) string {
		cmd := exec.Command("bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/"+port+" && timeout 5 head -c 8 <&3")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
		out, err := cmd.Output()
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatal(err)
		}
		return string(out)
	}
	if got := greeting(0); got != "NBDMAGIC" {
		t.Fatalf("root's client got %q, want the greeting", got)
	}
	if got := greeting(65534); got != "" {
		t.Fatalf("user 65534's client got %q", got)
	}
	select {
	case err := <-refusals:
		if !strings.Contains(err.Error(), "belongs to uid 65534") {
			t.Fatalf("refusal: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the refusal was not reported")
	}
}
