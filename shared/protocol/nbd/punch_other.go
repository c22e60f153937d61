//go:build !linux

package nbd

import (
	"errors"
	"os"
)

// errNoPunch says the file cannot have holes punched; the caller writes zeros instead.
var errNoPunch = errors.New("hole punching not supported")

// punchHole is not implemented off Linux: Trim writes zeros.
func punchHole(*os.File, int64, int64) error { return errNoPunch }
