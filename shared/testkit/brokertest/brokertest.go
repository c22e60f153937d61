// Package brokertest is the contract suite for the change stream (Event Hubs) and job queue (Service Bus)
// semantics Standby depends on. It runs against the embedded broker always, and against real Event Hubs
// and Service Bus namespaces when their connection settings are given, so behaviour proven locally is
// behaviour checked against Azure.
package brokertest

import (
	"fmt"
	"time"
)

func runID() string { return fmt.Sprintf("run%d", time.Now().UnixNano()) }
