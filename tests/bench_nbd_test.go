package tests

import (
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/standby-dr/standby/shared/testkit/testenv"
)

// BenchmarkFigure_nbd: in-guest capture's cost. The same writes — 768 MiB sequential (nbdcopy, four
// connections) then 256 MiB of random 64 KiB writes (qemu-io), each ending with a flush — go once
// straight to a file and once through the agent's NBD export of a 1 GiB disk on the local stack, raw
// and through the export interleaved in the same run.
//   - nbd_write_ratio: MB/s through the export ÷ MB/s straight to the file (goal ≥ 0.7);
//   - capture_cpu_s_per_gib: the agent process's CPU seconds (its own accounting, /proc/<pid>/stat)
//     per GiB written through the export, until everything is applied on the target.
func BenchmarkFigure_nbd(b *testing.B) {
	tools := needTools(b, "nbdcopy", "qemu-io")
	dir := b.TempDir()
	seq := filepath.Join(dir, "seq.bin")
	buf := make([]byte, 768<<20)
	rand.New(rand.NewSource(1)).Read(buf)
	if err := os.WriteFile(seq, buf, 0o644); err != nil {
		b.Fatal(err)
	}
	random := []string{"-f", "raw"}
	rng := rand.New(rand.NewSource(2))
	for i := 0; i < 4096; i++ {
		random = append(random, "-c", fmt.Sprintf("write -P %d %d 64k", rng.Intn(255)+1, rng.Int63n((1<<30)/(64<<10))*(64<<10)))
	}
	random = append(random, "-c", "flush")
	write := func(target string) time.Duration {
		start := time.Now()
		run(b, tools["nbdcopy"], "--connections=4", "--requests=16", "--flush", seq, target)
		if !strings.HasPrefix(target, "nbd") { // nbdcopy leaves a file destination at the source's size
			if err := os.Truncate(target, 1<<30); err != nil {
				b.Fatal(err)
			}
		}
		run(b, tools["qemu-io"], append(random, target)...)
		return time.Since(start)
	}
	const gib = 1 << 30
	raw := filepath.Join(dir, "raw.img")
	if err := os.Truncate(createFile(b, raw), gib); err != nil {
		b.Fatal(err)
	}
	rawTime := write(raw)

	s := newStack(b, "0 0 0 1 1 *")
	group, data, sock := testenv.Unique("nbdbench"), filepath.Join(dir, "data.img"), filepath.Join(dir, "nbd.sock")
	if err := os.Truncate(createFile(b, data), gib); err != nil {
		b.Fatal(err)
	}
	spec := filepath.Join(dir, "spec.json")
	writeJSON(b, spec, map[string]any{"vms": []any{map[string]any{"name": "vm0", "disks": []any{
		map[string]any{"name": "data", "sizeBytes": gib, "source": "nbd:" + data}}}}})
	p := startAgent(b, s, "-group", group, "-spec", spec, "-state", filepath.Join(dir, "agent"), "-nbd", "unix:"+sock)
	awaitGroupState(b, s, group, "Protected", 2*time.Minute)
	cpu0 := processCPU(b, p.cmd.Process.Pid)
	nbdTime := write("nbd+unix:///vm0/data?socket=" + sock)
	waitFor(b, 10*time.Minute, "apply to catch up with the agent", func() bool {
		_, _, body := s.app.call(b, "GET", "/api/v1/groups/"+group, "test-key", "")
		v := groupViewOf(body)
		return v.Watermark > 0 && v.Watermark >= v.AgentSeq
	})
	cpu := processCPU(b, p.cmd.Process.Pid) - cpu0
	total := float64(768<<20+4096*(64<<10)) / (1 << 20)
	b.ReportMetric((total/nbdTime.Seconds())/(total/rawTime.Seconds()), "nbd_write_ratio:ratio")
	b.ReportMetric(cpu/(total/1024), "capture_cpu_s_per_gib:s/GiB")
	b.Logf("1 GiB of writes: straight to a file %.1f MB/s, through the NBD export %.1f MB/s; agent CPU %.1f s",
		total/rawTime.Seconds(), total/nbdTime.Seconds(), cpu)
}

func createFile(b *testing.B, path string) string {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	f.Close()
	return path
}

// processCPU is a process's user + system CPU seconds, from /proc/<pid>/stat (fields 14 and 15, in
// clock ticks of 1/100 s on Linux).
func processCPU(b *testing.B, pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	fields := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	utime, _ := strconv.ParseFloat(fields[11], 64)
	stime, _ := strconv.ParseFloat(fields[12], 64)
	return (utime + stime) / 100
}
