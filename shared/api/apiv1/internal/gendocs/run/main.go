// Command run writes apiv1's docs_gen.go (go generate in shared/api/apiv1).
package main

import (
	"fmt"
	"os"

	"github.com/standby-dr/standby/shared/api/apiv1/internal/gendocs"
)

func main() {
	if err := gendocs.Write("."); err != nil {
		fmt.Fprintln(os.Stderr, "gendocs:", err)
		os.Exit(1)
	}
}
