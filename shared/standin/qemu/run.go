package qemu

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// The run channel. A machine whose Spec names a RunSocket gets a second serial port, the guest's
// ttyS1, served by QEMU on that unix socket (-chardev socket,server=on,wait=off; the socket file is the
// host's only door to it, so its folder's permissions decide who may run commands). The guest's init
// (scripts/vm-image.sh, build_os) sets the port raw without echo before it says it is up, and serves
// one request at a time:
//
//	host:  RUN <nonce> <timeout seconds> <base64 of the script>\n
//	guest: <nonce> BEGIN <output bytes>\n
//	       the output's last MaxOutput bytes, base64, in lines\n
//	       <nonce> END <exit code> <exited|timedout>\n
//
// The script runs with sh, stdin from /dev/null, stdout and stderr into a file that only the init
// reads back, so no output of the script reaches the port except base64-encoded between the two
// framing lines, and the exit code is written by the init after the script ended. The nonce is fresh
// per request, so lines a request abandoned earlier (its caller gave up) are never taken for another's.

// MaxOutput is how much of a command's output the guest sends back (its end).
const MaxOutput = 4096

// RunResult is how a command ended in the guest.
type RunResult struct {
	ExitCode    int
	TimedOut    bool
	Output      []byte
	OutputBytes int64 // the whole output's size (Output is its last MaxOutput bytes)
}

// RunCommand runs script in the guest served on the run socket and waits for it: at most timeout for
// the script (whole seconds, at least one) and a margin for the channel.
func RunCommand(ctx context.Context, socket, script string, timeout time.Duration) (RunResult, error) {
	secs := max(int64((timeout+time.Second-1)/time.Second), 1)
	deadline := time.Now().Add(time.Duration(secs)*time.Second + 30*time.Second)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	var dialer net.Dialer
	conn, err := dialer.DialContext(ctx, "unix", socket)
	if err != nil {
		return RunResult{}, fmt.Errorf("qemu: the run channel: %w", err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	conn.SetDeadline(deadline)
	raw := make([]byte, 12)
	rand.Read(raw)
	nonce := hex.EncodeToString(raw)
	req := fmt.Sprintf("RUN %s %d %s\n", nonce, secs, base64.StdEncoding.EncodeToString([]byte(script)))
	if _, err := conn.Write([]byte(req)); err != nil {
		return RunResult{}, fmt.Errorf("qemu: sending the command: %w", err)
	}
	res, err := readReply(bufio.NewReaderSize(conn, 64<<10), nonce)
	if err != nil && ctx.Err() != nil {
		return RunResult{}, ctx.Err()
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return RunResult{}, fmt.Errorf("qemu: the guest did not answer within %s of the command's %d s: %w", 30*time.Second, secs, err)
	}
	return res, err
}

// readReply reads the guest's reply to the request with the nonce, skipping any other line.
func readReply(r *bufio.Reader, nonce string) (RunResult, error) {
	var res RunResult
	var encoded strings.Builder
	begun := false
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return RunResult{}, fmt.Errorf("qemu: reading the guest's reply: %w", err)
		}
		line = strings.TrimRight(line, "\r\n")
		head, rest, ok := strings.Cut(line, " ")
		switch {
		case !ok || head != nonce:
			if begun {
				if encoded.Len()+len(line) > 2*MaxOutput {
					return RunResult{}, errors.New("qemu: the guest's reply is longer than its bound")
				}
				encoded.WriteString(line)
			}
			continue
		case strings.HasPrefix(rest, "BEGIN "):
			n, err := strconv.ParseInt(strings.TrimPrefix(rest, "BEGIN "), 10, 64)
			if err != nil || n < 0 {
				return RunResult{}, fmt.Errorf("qemu: a malformed reply line %q", line)
			}
			res, begun = RunResult{OutputBytes: n}, true
			encoded.Reset()
		case strings.HasPrefix(rest, "END ") && begun:
			f := strings.Fields(strings.TrimPrefix(rest, "END "))
			if len(f) != 2 || (f[1] != "exited" && f[1] != "timedout") {
				return RunResult{}, fmt.Errorf("qemu: a malformed reply line %q", line)
			}
			code, err := strconv.Atoi(f[0])
			if err != nil || code < 0 || code > 255 {
				return RunResult{}, fmt.Errorf("qemu: a malformed reply line %q", line)
			}
			out, err := base64.StdEncoding.DecodeString(encoded.String())
			if err != nil || len(out) > MaxOutput {
				return RunResult{}, fmt.Errorf("qemu: the guest's output is not the base64 of at most %d bytes", MaxOutput)
			}
			res.ExitCode, res.TimedOut, res.Output = code, f[1] == "timedout", out
			return res, nil
		default:
			return RunResult{}, fmt.Errorf("qemu: a malformed reply line %q", line)
		}
	}
}
