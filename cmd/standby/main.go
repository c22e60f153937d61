// Command standby is the operator CLI: it talks to the API. `standby help` lists the commands and
// `standby help COMMAND` (or `standby COMMAND -h`) says what one does and which flags it takes.
// STANDBY_API (default http://127.0.0.1:7071/api) and STANDBY_API_KEY say where and how.
//
// Exit codes: 0 done, 1 the API refused or failed (or a followed job failed), 2 a command line the CLI
// cannot run (unknown command, missing argument, unknown flag).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/standby-dr/standby/shared/api/apiclient"
)

func main() {
	err := run(os.Args[1:], os.Stdout)
	var usage usageError
	switch {
	case err == nil:
		return
	case errors.As(err, &usage):
		fmt.Fprintf(os.Stderr, "standby: %v\n%s", err, usage.hint)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "standby:", err)
		os.Exit(1)
	}
}

// usageError is a command line the CLI cannot run; hint says where the help is.
type usageError struct{ msg, hint string }

func (e usageError) Error() string { return e.msg }

func usagef(c *command, format string, args ...any) error {
	hint := "run `standby help` for the commands\n"
	if c != nil {
		hint = "run `standby help " + c.name + "` for its arguments and flags\n"
	}
	return usageError{fmt.Sprintf(format, args...), hint}
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// run runs one command line, writing what it shows to w.
func run(args []string, w io.Writer) error {
	if len(args) == 0 {
		return usagef(nil, "no command")
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		return help(w, args[1:])
	}
	c, ok := commandsByName()[args[0]]
	if !ok {
		return usagef(nil, "unknown command %q", args[0])
	}
	o := &options{sources: map[string]string{}}
	fs := c.flagSet(o)
	// Flags may follow the positional arguments: parse what comes after each.
	var pos []string
	for rest := args[1:]; ; {
		if err := fs.Parse(rest); errors.Is(err, flag.ErrHelp) {
			return commandHelp(w, c)
		} else if err != nil {
			return usagef(c, "%s: %v", c.name, err)
		}
		if fs.NArg() == 0 {
			break
		}
		pos, rest = append(pos, fs.Arg(0)), fs.Args()[1:]
	}
	if err := c.checkArgs(pos); err != nil {
		return err
	}
	if o.output != "text" && o.output != "json" {
		return usagef(c, "-o %q: want text or json", o.output)
	}
	cl := apiclient.New(env("STANDBY_API", "http://127.0.0.1:7071/api"), os.Getenv("STANDBY_API_KEY"))
	return c.run(context.Background(), &call{cl: cl, w: w, args: pos, o: o})
}

// help answers `standby help [COMMAND]`.
func help(w io.Writer, args []string) error {
	if len(args) == 0 {
		fmt.Fprintln(w, "standby: the operator CLI of Standby (STANDBY_API, STANDBY_API_KEY)")
		fmt.Fprintln(w, "\nCommands:")
		for _, c := range commands {
			fmt.Fprintf(w, "  %-44s %s\n", strings.TrimSpace(c.name+" "+c.args), c.summary)
		}
		fmt.Fprintln(w, "\nRun `standby help COMMAND` (or `standby COMMAND -h`) for a command's flags.")
		return nil
	}
	c, ok := commandsByName()[args[0]]
	if !ok {
		return usagef(nil, "help: unknown command %q", args[0])
	}
	return commandHelp(w, c)
}

// commandHelp prints what a command does and its flags (only its own).
func commandHelp(w io.Writer, c *command) error {
	fmt.Fprintf(w, "usage: standby %s\n\n%s\n", strings.TrimSpace(c.name+" "+c.args+" [flags]"), c.summary)
	if c.detail != "" {
		fmt.Fprintf(w, "\n%s\n", c.detail)
	}
	fs := c.flagSet(&options{sources: map[string]string{}})
	if hasFlags(fs) {
		fmt.Fprintln(w, "\nFlags:")
		fs.SetOutput(w)
		fs.PrintDefaults()
	}
	return nil
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}
