// Command verify is the byte-for-byte proof used by the demo and the tests: it waits until the target
// has applied everything the agent published, then compares every target disk with its source and every
// marker snapshot with the ground truth the agent recorded (agent run -truth); with -container it
// compares the disks a test failover or a failover materialized there. It reads the target region's
// storage (StandbyTargetStorage) directly.
//
//	verify -group G -truth FILE                       convergence, then target disks and marker snapshots
//	verify -group G -container C [-truth FILE -seq N] a container's disks against the sources (or marker N)
package main

import (
	"context"
	"log"
	"os"
	"time"

	"github.com/standby-dr/standby/shared/agent"
	"github.com/standby-dr/standby/shared/api/apiclient"
	"github.com/standby-dr/standby/shared/backends"
	"github.com/standby-dr/standby/shared/backends/sourceside"
	"github.com/standby-dr/standby/shared/proof"
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("verify: ")
	if err := verify(os.Args[1:]); err != nil {
		log.Fatal(err)
	}
}

func verify(args []string) error {
	var c agent.Flags
	fs := c.FlagSet("verify")
	truthFile := fs.String("truth", "", "ground truth written by agent run -truth")
	timeout := fs.Duration("timeout", 5*time.Minute, "how long to wait for the target to converge")
	container := fs.String("container", "", "compare the disks in this container instead (a test failover's or a failover's)")
	seq := fs.Int64("seq", 0, "with -container: compare with the ground truth at this marker instead of the sources")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := c.Load(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	cl := apiclient.New(c.API, c.Key)
	p := &proof.Prover{Group: c.Group, StateDir: c.State, API: cl, Out: os.Stdout}
	if *container != "" {
		view, err := cl.Group(ctx, c.Group)
		if err != nil {
			return err
		}
		pages, err := sourceside.PageStore(os.Getenv, backends.SettingTarget)
		if err != nil {
			return err
		}
		return p.Container(ctx, pages, view, *container, *truthFile, *seq)
	}
	view, err := p.Converge(ctx)
	if err != nil {
		return err
	}
	pages, err := sourceside.PageStore(os.Getenv, backends.SettingTarget)
	if err != nil {
		return err
	}
	state, err := backends.StateStore(os.Getenv, backends.SettingTarget)
	if err != nil {
		return err
	}
	return p.Target(ctx, pages, state, view, *truthFile)
}
