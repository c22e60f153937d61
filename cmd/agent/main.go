// Command agent is Standby's source-side agent (outbound connections only): it replicates a
// consistency group's disks into the change stream — initial replication, live writes, markers,
// checksum resync — and reports progress to the API. Its loop is shared/agent's Run; this only parses
// flags and wires the API client and the backends. The proof that the target matches is cmd/verify.
//
//	agent run      -group G [-spec FILE] [-workload-rate MBps -duration D -marker-interval D -truth FILE]
//	agent workload -group G [...]          run with the workload generator on (10 MB/s, a marker every 5 s,
//	                                       ground truth in .local/truth.jsonl unless told otherwise)
//	agent attach   -device /dev/nbd0 -export VM/DISK [-nbd ADDR]
//	                                       attach the kernel's NBD device to the export and keep it attached
//	                                       across the agent's restarts (standby-nbd@.service)
//	agent detach   -device /dev/nbd0        detach it (after the disk is unmounted)
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/standby-dr/standby/shared/agent"
	"github.com/standby-dr/standby/shared/api/apiclient"
	"github.com/standby-dr/standby/shared/backends/sourceside"
	"github.com/standby-dr/standby/shared/cpuprofile"
	"github.com/standby-dr/standby/shared/replication"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: agent run|workload|attach|detach [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "run":
		err = runCmd(os.Args[2:])
	case "workload":
		err = runCmd(append([]string{"-workload-rate", "10", "-marker-interval", "5s", "-truth", ".local/truth.jsonl"}, os.Args[2:]...))
	case "attach":
		err = attachCmd(os.Args[2:])
	case "detach":
		err = detachCmd(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q (run, workload, attach, detach; the proof is bin/verify)", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "agent:", err)
		os.Exit(1)
	}
}

func runCmd(args []string) error {
	var c agent.Flags
	fs := c.FlagSet("run")
	var cfg agent.RunConfig
	var preHooks, postHooks, sources keyValueFlag
	specFile := fs.String("spec", "", "enable replication with this group spec (PUT) before starting")
	fs.Float64Var(&cfg.WorkloadRate, "workload-rate", 0, "run the workload generator at this many MB/s (0: off)")
	fs.DurationVar(&cfg.Duration, "duration", 0, "stop after this long (0: until interrupted)")
	fs.DurationVar(&cfg.MarkerInterval, "marker-interval", 0, "insert a crash-consistent marker this often (0: off)")
	fs.StringVar(&cfg.TruthFile, "truth", "", "append the sha256 of every disk at each marker here")
	fs.IntVar(&cfg.BatchBytes, "batch-bytes", 4<<20, "seal a batch at this many bytes")
	fs.DurationVar(&cfg.BatchDelay, "batch-delay", 50*time.Millisecond, "seal a batch after this long")
	fs.BoolVar(&cfg.Compress, "compress", false, "zstd-compress payloads")
	fs.Int64Var(&cfg.Seed, "seed", time.Now().UnixNano(), "workload seed")
	fs.BoolVar(&cfg.WorkloadDataOnly, "workload-data-only", false, "keep the workload off the OS disks (their VMs stay bootable)")
	fs.Var(&sources, "source", "vm/disk=/dev/sdX: the device or image this agent reads that disk from (repeat per disk); the agent opens no path the API alone names")
	fs.StringVar(&cfg.Machine.IMDS, "imds", "", "the instance metadata service, asked for the VM's security type when enabling with -spec: empty asks it only on an Azure VM, off never, or its URL")
	fs.StringVar(&cfg.NBDAddr, "nbd", "", "serve the nbd: disks as NBD exports <vm>/<disk> here: unix:<path> (default unix:<state>/nbd.sock), or a loopback host:port with -nbd-tcp")
	fs.BoolVar(&cfg.NBDAllowTCP, "nbd-tcp", false, "allow a loopback TCP -nbd address, served only to clients of root and of the agent's user (their sockets' owners, from the kernel's tables); for a client only TCP reaches, such as a test VM's user network")
	fs.Var(&preHooks, "pre-hook", "VM=command run before an app-consistent marker (freeze); repeat per VM")
	fs.Var(&postHooks, "post-hook", "VM=command run after it (thaw); runs even when a pre hook failed")
	fs.DurationVar(&cfg.HookTimeout, "hook-timeout", 30*time.Second, "longest a hook may run before it is killed")
	fs.DurationVar(&cfg.AppMarkerInterval, "app-marker-interval", 0, "take an app-consistent marker this often (0: only when cutpoints asks)")
	fs.DurationVar(&cfg.ScrubPeriod, "scrub-period", 0, "one scrub pass over the agent and nbd disks takes this long: their blocks' hashes go into the stream and apply checks the target against them (default 24h; negative: off)")
	fs.DurationVar(&cfg.ScrubTick, "scrub-tick", 0, "scrub a slice this often (default 10s)")
	fs.DurationVar(&cfg.ScanInterval, "scan-interval", -1, "find writes other processes made this often: hash file: disks, snapshot pageblob: and managed: disks (default 5s; 43s with managed: disks, which Azure allows; off with the workload; 0: off)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile (go tool pprof) of the run to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	stopProfile, err := cpuprofile.Start(*cpuProfile)
	if err != nil {
		return err
	}
	defer stopProfile()
	if err := c.Load(); err != nil {
		return err
	}
	if *specFile != "" {
		spec, err := readSpec(*specFile)
		if err != nil {
			return err
		}
		cfg.Spec = &spec
	}
	client := apiclient.New(c.API, c.Key)
	if c.AgentKey != "" && cfg.Spec == nil { // the group's own credential: its agent routes only
		client.Key, client.AgentKey = "", c.AgentKey
	}
	cfg.Group, cfg.StateDir, cfg.API, cfg.PreHooks, cfg.PostHooks = c.Group, c.State, client, preHooks, postHooks
	cfg.LocalSources = sources
	cfg.Log = slog.New(replication.RedactingHandler(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))).With("component", "agent")
	cfg.Progress = showProgress
	cfg.Connect = func() (replication.JournalStore, replication.ChangePublisher, func(), error) {
		b, err := sourceside.Open(os.Getenv)
		if err != nil {
			return nil, nil, nil, err
		}
		return b.Journal, b.Publisher, b.Close, nil
	}
	cfg.SourcePages = func() (replication.PageStore, error) { return sourceside.SourcePages(os.Getenv) }
	cfg.DiskSnapshots = func() (replication.DiskSnapshots, error) { return sourceside.OpenDiskSnapshots(os.Getenv, cfg.Log) }
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	summary, err := agent.Run(ctx, cfg)
	if err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled) { // stopped (systemd's SIGTERM): not a failure
		cfg.Log.Info("agent stopped by a signal; it resumes from its state directory")
		return nil
	}
	if err != nil {
		return err
	}
	out, _ := json.Marshal(summary)
	fmt.Println(string(out))
	return nil
}

func readSpec(path string) (replication.GroupSpec, error) {
	var spec replication.GroupSpec
	data, err := os.ReadFile(path)
	if err != nil {
		return spec, err
	}
	if err := json.Unmarshal(data, &spec); err != nil {
		return spec, fmt.Errorf("%s: %w", path, err)
	}
	return spec, nil
}
