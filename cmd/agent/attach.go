package main

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/standby-dr/standby/shared/agent"
	"github.com/standby-dr/standby/shared/replication"
)

func attachCmd(args []string) error {
	fs := flag.NewFlagSet("attach", flag.ContinueOnError)
	var cfg agent.AttachConfig
	fs.StringVar(&cfg.Device, "device", "", "the kernel's NBD device: /dev/nbd<N>")
	fs.StringVar(&cfg.Export, "export", "", "the agent's export: <vm>/<disk>")
	fs.StringVar(&cfg.Addr, "nbd", "unix:/run/standby/nbd.sock", "where the agent serves it (agent run's -nbd)")
	fs.IntVar(&cfg.Connections, "connections", 4, "sockets the device spreads its requests over")
	fs.DurationVar(&cfg.IOTimeout, "io-timeout", 30*time.Second, "a request unanswered this long is sent again on a live socket")
	fs.DurationVar(&cfg.DeadTimeout, "dead-timeout", 5*time.Minute, "while the agent is down, requests wait this long for it before they fail")
	fs.DurationVar(&cfg.DialTimeout, "dial-timeout", 10*time.Second, "one connection attempt with its negotiation")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if cfg.Device == "" || cfg.Export == "" {
		return errors.New("attach: -device and -export are required")
	}
	if err := replication.CheckDiskKey(cfg.Export); err != nil {
		return err
	}
	cfg.Log = slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).With("component", "attach")
	cfg.Ready = func() { notifySystemd("READY=1\nSTATUS=attached " + cfg.Device + " to " + cfg.Export) }
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return agent.Attach(ctx, cfg)
}

func detachCmd(args []string) error {
	fs := flag.NewFlagSet("detach", flag.ContinueOnError)
	device := fs.String("device", "", "the kernel's NBD device: /dev/nbd<N>")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return agent.Detach(*device)
}

// notifySystemd tells systemd the service's state (sd_notify(3): a datagram to $NOTIFY_SOCKET, whose
// leading '@' is an abstract socket), so a Type=notify unit is started only once the device is
// attached. Outside systemd there is no socket and nothing to say.
func notifySystemd(state string) {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return
	}
	if strings.HasPrefix(path, "@") {
		path = "\x00" + path[1:]
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return
	}
	defer c.Close()
	_, _ = c.Write([]byte(state))
}
