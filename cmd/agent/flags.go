package main

import (
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/standby-dr/standby/shared/agent"
)

// hookFlag collects VM=command flags.
type hookFlag map[string]string

func (h *hookFlag) String() string { return fmt.Sprint(map[string]string(*h)) }

func (h *hookFlag) Set(v string) error {
	vm, command, ok := strings.Cut(v, "=")
	if !ok || vm == "" || strings.TrimSpace(command) == "" {
		return fmt.Errorf("%q: want VM=command", v)
	}
	if *h == nil {
		*h = hookFlag{}
	}
	(*h)[vm] = command
	return nil
}

// stderrIsTerminal decides between a progress bar and log lines.
var stderrIsTerminal = func() bool {
	info, err := os.Stderr.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}()

// showProgress shows baseline progress: a bar on a terminal, a structured line otherwise.
func showProgress(log *slog.Logger, st agent.Stats) {
	pct := 100 * float64(st.BaselineDone) / float64(st.BaselineTotal)
	eta := 0.0
	if st.BaselineRate > 0 {
		eta = float64(st.BaselineTotal-st.BaselineDone) / st.BaselineRate
	}
	if stderrIsTerminal {
		const width = 30
		filled := int(pct / 100 * width)
		fmt.Fprintf(os.Stderr, "\rbaseline [%s%s] %5.1f%%  %6.1f MB/s  ETA %3.0fs ", strings.Repeat("#", filled),
			strings.Repeat(" ", width-filled), pct, st.BaselineRate/(1<<20), eta)
		return
	}
	log.Info("baseline progress", "percent", fmt.Sprintf("%.1f", pct), "doneBytes", st.BaselineDone, "totalBytes", st.BaselineTotal,
		"rateMBps", fmt.Sprintf("%.1f", st.BaselineRate/(1<<20)), "etaSeconds", fmt.Sprintf("%.0f", eta))
}
