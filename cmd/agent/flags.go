package main

import (
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/standby-dr/standby/shared/agent"
)

// keyValueFlag is a repeatable NAME=VALUE flag (hooks by VM, sources by disk).
type keyValueFlag map[string]string

func (h *keyValueFlag) String() string { return fmt.Sprint(map[string]string(*h)) }

func (h *keyValueFlag) Set(v string) error {
	name, value, ok := strings.Cut(v, "=")
	if !ok || name == "" || strings.TrimSpace(value) == "" {
		return fmt.Errorf("%q: want NAME=VALUE", v)
	}
	if *h == nil {
		*h = keyValueFlag{}
	}
	(*h)[name] = value
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
