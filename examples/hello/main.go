// Command hello is the sample app that moorage deploys in its docs, its
// quickstart and its end-to-end tests. It uses only the standard library and
// has one subcommand per process type of moorage.yaml:
//
//	hello web        HTTP on 0.0.0.0:$PORT (default 8080)
//	hello worker     claims jobs from $DATA/queue into $DATA/done
//	hello scheduler  the singleton: enqueues a job every 500ms
//	hello migrate    the release task: applies pending schema changes
//
// $DATA is $MOORAGE_VOLUME_DATA, or ./data when unset. Every file the app
// writes there is meant to be read by tests; README.md lists them.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"
)

const usage = `usage: hello <command>

commands:
  web        serve HTTP on 0.0.0.0:$PORT (default 8080)
  worker     claim jobs from $DATA/queue every 200ms
  scheduler  enqueue a job every 500ms (a singleton: a second one exits 1)
  migrate    apply pending schema changes, recorded in $DATA/schema.json

$DATA is $MOORAGE_VOLUME_DATA, or ./data when unset.
`

// command runs one subcommand until it is done or ctx is cancelled (SIGTERM).
type command func(ctx context.Context, e *env, log *slog.Logger) error

var commands = map[string]command{
	"web":       runWeb,
	"worker":    runWorker,
	"scheduler": runScheduler,
	"migrate":   runMigrate,
}

// crashable are the long-running commands HELLO_CRASH_AFTER applies to.
var crashable = map[string]bool{"web": true, "worker": true, "scheduler": true}

func main() {
	os.Exit(run(os.Args[1:]))
}

// run executes the subcommand named by args and returns the exit status.
func run(args []string) int {
	if len(args) == 1 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
		fmt.Print(usage)
		return 0
	}
	if len(args) != 1 {
		fmt.Fprint(os.Stderr, usage)
		return 2
	}
	name := args[0]
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "hello: unknown command %q\n\n%s", name, usage)
		return 2
	}

	e, err := loadEnv()
	if err != nil {
		fmt.Fprintf(os.Stderr, "hello %s: %v\n", name, err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(os.Stdout, nil)).With(
		"cmd", name, "service", e.service, "release", e.release, "instance", e.instance)

	if d := e.crashAfter; d > 0 && crashable[name] {
		time.AfterFunc(d, func() {
			log.Error("crashing on purpose", "reason", "HELLO_CRASH_AFTER", "after", d.String(), "exit_status", 3)
			os.Exit(3)
		})
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()

	if err := cmd(ctx, e, log); err != nil {
		fmt.Fprintf(os.Stderr, "hello %s: %v\n", name, err)
		var ee *exitError
		if errors.As(err, &ee) {
			return ee.code
		}
		return 1
	}
	return 0
}

// exitError makes run exit with a specific status.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// exitWith wraps err so that the process exits with status code.
func exitWith(code int, err error) error { return &exitError{code: code, err: err} }
