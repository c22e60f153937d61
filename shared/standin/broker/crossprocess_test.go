package broker

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The helper runs as a child process of the cross-process tests (the test binary re-executed): it
// opens the broker file on its own and publishes or receives as told.
func TestHelperProcess(t *testing.T) {
	role := os.Getenv("BROKER_HELPER")
	if role == "" {
		t.Skip("only runs as a child of the cross-process tests")
	}
	b, err := Open(os.Getenv("BROKER_PATH"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	id := os.Getenv("BROKER_HELPER_ID")
	switch role {
	case "publish":
		for i := 0; i < 200; i++ {
			if _, err := b.Publish(ctx, "changes", "group-x", []Event{{Body: []byte(fmt.Sprintf("%s-%03d", id, i))}}); err != nil {
				t.Fatal(err)
			}
		}
	case "receive":
		idle := 0
		for idle < 5 {
			msgs, err := b.Receive(ctx, "work", 3, 200*time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			if len(msgs) == 0 {
				idle++
				continue
			}
			idle = 0
			for _, m := range msgs {
				fmt.Printf("GOT %s %d\n", m.Body, m.DeliveryCount)
				if err := b.Complete(ctx, "work", m.LockToken); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}

func runHelpers(t *testing.T, path, role string, n int) []string {
	t.Helper()
	outs := make([]string, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
			cmd.Env = append(os.Environ(), "BROKER_HELPER="+role, "BROKER_PATH="+path, "BROKER_HELPER_ID=p"+strconv.Itoa(i))
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Errorf("helper %d: %v\n%s", i, err, out)
			}
			outs[i] = string(out)
		}()
	}
	wg.Wait()
	return outs
}

// Three processes publishing to one partition at once: every event stored once, sequence numbers
// contiguous from 0, each publisher's events in its order.
func TestCrossProcessPublish(t *testing.T) {
	path := filepath.Join(t.TempDir(), "broker.db")
	b, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	if err := b.Apply(ctx, Config{EventHubs: []HubConfig{{Name: "changes", PartitionCount: 4}}}); err != nil {
		t.Fatal(err)
	}
	runHelpers(t, path, "publish", 3)
	events, err := b.ReadEvents(ctx, "changes", PartitionFor("group-x", 4), -1, 1000, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 600 {
		t.Fatalf("%d events stored, want 600", len(events))
	}
	next := map[string]int{}
	for i, e := range events {
		if e.SequenceNumber != int64(i) {
			t.Fatalf("event %d has sequence %d", i, e.SequenceNumber)
		}
		proc, n, _ := strings.Cut(string(e.Body), "-")
		if want := fmt.Sprintf("%03d", next[proc]); n != want {
			t.Fatalf("publisher %s: event %s after %d", proc, n, next[proc])
		}
		next[proc]++
	}
}

// Two processes receiving from one queue at once: every message delivered exactly once.
func TestCrossProcessReceive(t *testing.T) {
	path := filepath.Join(t.TempDir(), "broker.db")
	b, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	if err := b.Apply(ctx, Config{Queues: []QueueConfig{{Name: "work", LockDurationSeconds: 60}}}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 150; i++ {
		if err := b.Send(ctx, "work", Message{Body: []byte(fmt.Sprintf("m%03d", i))}); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for _, out := range runHelpers(t, path, "receive", 2) {
		for _, line := range strings.Split(out, "\n") {
			if body, ok := strings.CutPrefix(line, "GOT "); ok {
				if !strings.HasSuffix(body, " 1") {
					t.Fatalf("message redelivered: %s", body)
				}
				got = append(got, strings.TrimSuffix(body, " 1"))
			}
		}
	}
	sort.Strings(got)
	if len(got) != 150 || got[0] != "m000" || got[149] != "m149" {
		t.Fatalf("received %d messages (want each of 150 exactly once)", len(got))
	}
	for i := 1; i < len(got); i++ {
		if got[i] == got[i-1] {
			t.Fatalf("%s delivered twice", got[i])
		}
	}
	if c, _ := b.Counts(ctx, "work"); c.Active != 0 {
		t.Fatalf("%d messages left", c.Active)
	}
}
