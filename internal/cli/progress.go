package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/moorage/moorage/internal/api"
	"github.com/moorage/moorage/internal/client"
)

// progress renders an operation's events: a live spinner on a terminal,
// plain lines otherwise, or NDJSON with --json. Failures (the error events,
// the final reason) go to errW, standard error, in every mode.
type progress struct {
	w       io.Writer
	errW    io.Writer
	tty     bool
	json    bool
	verbose bool
	// dryRun: the operation only plans; its plan is printed as is, the
	// text the journal of the real operation records.
	dryRun bool

	mu      sync.Mutex
	current *api.Event // the running step
	started time.Time
	frame   int
	shown   bool // a spinner line is on screen
	stop    chan struct{}
	done    chan struct{}
	code    string // the done event's code
	start   time.Time
}

func newProgress(g *globals, asJSON, verbose bool) *progress {
	w := g.stdout
	p := &progress{w: w, errW: g.stderr, tty: isTTY(w) && !asJSON, json: asJSON, verbose: verbose, start: time.Now()}
	if p.tty {
		p.stop, p.done = make(chan struct{}), make(chan struct{})
		go p.spin()
	}
	return p
}

var frames = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

func (p *progress) spin() {
	defer close(p.done)
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			p.mu.Lock()
			if p.current != nil {
				p.frame++
				p.clear()
				fmt.Fprintf(p.w, "  %s %s  %s", frames[p.frame%len(frames)], p.current.Detail, dur(time.Since(p.started)))
				p.shown = true
			}
			p.mu.Unlock()
		}
	}
}

func (p *progress) clear() {
	if p.shown {
		fmt.Fprint(p.w, "\r\x1b[2K")
		p.shown = false
	}
}

// Event renders one event.
func (p *progress) Event(ev api.Event) {
	if p.json {
		p.mu.Lock()
		defer p.mu.Unlock()
		if ev.Type == api.EventDone {
			p.code = ev.Code
		}
		json.NewEncoder(p.w).Encode(ev)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
	switch ev.Type {
	case api.EventInfo:
		fmt.Fprintln(p.w, ev.Text)
	case api.EventWarn:
		fmt.Fprintln(p.w, "warning:", ev.Text)
	case api.EventPlan:
		if p.dryRun {
			fmt.Fprint(p.w, ev.Text)
		} else if p.verbose {
			fmt.Fprint(p.w, indent(ev.Text, "  │ ")+"\n")
		}
	case api.EventStep:
		e := ev
		p.current, p.started = &e, time.Now()
		if !p.tty {
			fmt.Fprintf(p.w, "  → %s\n", ev.Detail)
		}
	case api.EventOutput:
		fmt.Fprintf(p.w, "    │ %s\n", ev.Text)
	case api.EventStepDone:
		p.current = nil
		fmt.Fprintf(p.w, "  %s %s  %s\n", mark(ev.Outcome), ev.Detail, dur(ev.Duration))
	case api.EventError:
		fmt.Fprintf(p.errW, "  ✗ %s\n", ev.Text)
		if len(ev.Logs) > 0 {
			fmt.Fprintf(p.errW, "    last lines of %s:\n", ev.Instance)
			for _, l := range ev.Logs {
				fmt.Fprintf(p.errW, "    │ %s\n", l)
			}
		}
	case api.EventDone:
		p.current = nil
		p.code = ev.Code
	}
}

// Finish stops the spinner and prints the outcome: what succeeded on
// standard output; what failed, and why, on standard error. err is a
// failure to run the operation or to follow it (the server unreachable, the
// stream lost); with --json it also ends the NDJSON with an error event.
func (p *progress) Finish(what string, res client.Result, err error) {
	if p.tty {
		close(p.stop)
		<-p.done
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
	took := dur(time.Since(p.start))
	var why string
	switch {
	case err != nil:
		why = fmt.Sprintf("%s failed after %s: %v", what, took, err)
		if p.json {
			json.NewEncoder(p.w).Encode(api.Event{Time: time.Now(), Type: api.EventError, Text: err.Error()})
		}
	case res.Status == "succeeded":
		if !p.json {
			fmt.Fprintf(p.w, "✓ %s succeeded in %s\n", what, took)
		}
		return
	case res.Status == api.StatusPlanned:
		if !p.json {
			fmt.Fprintf(p.w, "✓ dry run of %s: nothing changed\n", what)
		}
		return
	case res.Status == "rolled_back":
		why = fmt.Sprintf("%s rolled back after %s: %s", what, took, strings.TrimSpace(res.Text))
	default:
		why = fmt.Sprintf("%s %s after %s: %s", what, orDefault(res.Status, "failed"), took, strings.TrimSpace(res.Text))
	}
	if p.json {
		fmt.Fprintln(p.errW, "error:", why)
	} else {
		fmt.Fprintln(p.errW, "✗", why)
	}
	if p.code == api.CodeLocked {
		fmt.Fprintln(p.errW, "  (run it again with --wait to wait for that to finish)")
	}
}

// opTitle names an operation in outcome lines: "deploy #12 of hello", or
// "deploy of hello" when it was refused before it got a number.
func opTitle(kind string, id int64, app string) string {
	if id == 0 {
		return kind + " of " + app
	}
	return fmt.Sprintf("%s #%d of %s", kind, id, app)
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
