package agent

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"
)

// Truth is one line of the ground-truth file (JSON lines): every disk's sha256 at a marker. The agent
// writes it (run -truth), the proof tool (verify) reads it.
type Truth struct {
	Seq         int64             `json:"seq"`
	Consistency string            `json:"consistency"`
	Time        time.Time         `json:"time"`
	Disks       map[string]string `json:"disks"`
}

// truthRecorder is an OnMarker that appends the disks' hashes at each marker to the file.
func truthRecorder(f *os.File, sizes map[string]int64) func(int64, string, map[string]*os.File) {
	return func(seq int64, consistency string, files map[string]*os.File) {
		rec := Truth{Seq: seq, Consistency: consistency, Time: time.Now().UTC(), Disks: map[string]string{}}
		for key, file := range files {
			rec.Disks[key], _ = HashFile(file, sizes[key])
		}
		line, _ := json.Marshal(rec)
		f.Write(append(line, '\n'))
	}
}

// ReadTruth reads a ground-truth file: marker sequence → record.
func ReadTruth(path string) (map[int64]Truth, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[int64]Truth{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var t Truth
		if err := json.Unmarshal(sc.Bytes(), &t); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out[t.Seq] = t
	}
	return out, sc.Err()
}

// HashFile returns the sha256 of a whole disk file (ground truth for tests and the demo).
func HashFile(f *os.File, size int64) (string, error) {
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, size)); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
