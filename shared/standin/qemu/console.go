package qemu

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
)

const (
	maxLines    = 20000   // lines kept in memory; older ones are dropped (the serial log file has them all)
	maxLineLen  = 8 << 10 // longer lines are cut
	tailLines   = 20      // lines a WaitError carries
	partialMark = " [...]"
)

// console is the serial console's output: every complete line read so far (up to maxLines), the
// unterminated last one, and a channel closed (and replaced) at each change, which waiters select on.
type console struct {
	mu      sync.Mutex
	lines   []string
	dropped int // lines dropped from the front of lines
	partial []byte
	changed chan struct{}
	done    bool
	log     io.WriteCloser // the serial log file, or nil
}

func newConsole(log io.WriteCloser) *console {
	return &console{changed: make(chan struct{}), log: log}
}

// read copies QEMU's stdout into lines (and the serial log, without carriage returns) until EOF.
func (c *console) read(r io.Reader) {
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			c.add(bytes.ReplaceAll(buf[:n], []byte("\r"), nil))
		}
		if err != nil {
			return
		}
	}
}

func (c *console) add(p []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.log != nil {
		_, _ = c.log.Write(p) // a failing log file must not stop the machine's console
	}
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			c.partial = appendCapped(c.partial, p)
			break
		}
		c.lines = append(c.lines, string(appendCapped(c.partial, p[:i])))
		c.partial = c.partial[:0]
		p = p[i+1:]
	}
	if len(c.lines) > maxLines {
		drop := len(c.lines) - maxLines/2
		c.lines = append([]string(nil), c.lines[drop:]...)
		c.dropped += drop
	}
	close(c.changed)
	c.changed = make(chan struct{})
}

func appendCapped(dst, p []byte) []byte {
	if room := maxLineLen - len(dst); len(p) > room {
		if room <= 0 {
			return dst
		}
		return append(append(dst, p[:room]...), partialMark...)
	}
	return append(dst, p...)
}

// close marks the end of the output (QEMU exited) and closes the serial log.
func (c *console) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done {
		return
	}
	c.done = true
	if c.log != nil {
		_ = c.log.Close()
	}
	close(c.changed)
	c.changed = make(chan struct{})
}

// find looks for a line containing sub from absolute line number from on; it returns the line, whether
// it was found, the next line number to look from, and the channel closed at the next change.
func (c *console) find(sub string, from int) (string, bool, int, <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := max(from-c.dropped, 0)
	for ; i < len(c.lines); i++ {
		if strings.Contains(c.lines[i], sub) {
			return c.lines[i], true, c.dropped + i + 1, c.changed
		}
	}
	return "", false, c.dropped + len(c.lines), c.changed
}

func (c *console) seen(sub string) bool {
	_, ok, _, _ := c.find(sub, 0)
	return ok
}

func (c *console) tail(n int) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	lines := c.lines
	if len(c.partial) > 0 {
		lines = append(lines[:len(lines):len(lines)], string(c.partial))
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return append([]string(nil), lines...)
}

// ErrExited is (wrapped in) WaitFor's error when QEMU exited before the line came.
var ErrExited = errors.New("qemu exited")

// WaitError is WaitFor's error: the machine never printed the line. It carries the serial console's last
// lines and QEMU's own error output, for a report on a VM that never became healthy.
type WaitError struct {
	Machine string
	Want    string   // the substring waited for
	Cause   error    // the context's error, or ErrExited
	Exit    error    // QEMU's exit status, if it exited
	Tail    []string // the serial console's last lines
	Stderr  string   // the end of QEMU's stderr
}

func (e *WaitError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "qemu: %s: no serial line with %q: %v", e.Machine, e.Want, e.Cause)
	if e.Exit != nil {
		fmt.Fprintf(&b, " (%v)", e.Exit)
	}
	if e.Stderr != "" {
		fmt.Fprintf(&b, "; qemu: %s", e.Stderr)
	}
	fmt.Fprintf(&b, "; serial console's last %d lines:", len(e.Tail))
	for _, l := range e.Tail {
		b.WriteString("\n  | ")
		b.WriteString(l)
	}
	return b.String()
}

func (e *WaitError) Unwrap() error { return e.Cause }

// WaitFor waits until the serial console has a line containing substring (from the start of the boot)
// and returns it. If ctx ends or QEMU exits first, the error is a *WaitError with the console's tail.
func (m *Machine) WaitFor(ctx context.Context, substring string) (string, error) {
	next := 0
	for {
		line, ok, n, changed := m.console.find(substring, next)
		if ok {
			return line, nil
		}
		next = n
		select {
		case <-m.exited: // the console is complete: one last look
			if line, ok, _, _ := m.console.find(substring, next); ok {
				return line, nil
			}
			return "", m.waitError(substring, ErrExited)
		default:
		}
		select {
		case <-changed:
		case <-m.exited:
		case <-ctx.Done():
			return "", m.waitError(substring, ctx.Err())
		}
	}
}

func (m *Machine) waitError(want string, cause error) *WaitError {
	return &WaitError{Machine: m.name, Want: want, Cause: cause, Exit: m.Err(), Tail: m.Tail(tailLines),
		Stderr: m.stderr.String()}
}
