//go:build !linux

package netlink

import (
	"errors"
	"time"
)

// ErrNoFamily is Linux's only: elsewhere there is no kernel NBD client.
var ErrNoFamily = errors.New("the kernel's NBD client is Linux's: this system has none")

// ErrEventsLost is never returned here.
var ErrEventsLost = errors.New("netlink events: events were lost")

// Conn cannot be opened off Linux.
type Conn struct{}

// Open fails off Linux.
func Open() (*Conn, error) { return nil, ErrNoFamily }

func (*Conn) Close() error                    { return nil }
func (*Conn) Connect(Device, []int) error     { return ErrNoFamily }
func (*Conn) Reconfigure(Device, []int) error { return ErrNoFamily }
func (*Conn) Status(int) (bool, error)        { return false, ErrNoFamily }
func (*Conn) Disconnect(int) error            { return ErrNoFamily }
func (*Conn) Watch() (*Watcher, error)        { return nil, ErrNoFamily }

// Watcher is never opened off Linux.
type Watcher struct{}

func (*Watcher) Next(time.Duration) ([]int, error) { return nil, ErrNoFamily }
func (*Watcher) Close() error                      { return nil }
