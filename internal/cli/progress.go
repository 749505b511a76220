package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/moorage/moorage/internal/client"
	"github.com/moorage/moorage/internal/engine"
)

// progress renders an operation's events: a live spinner on a terminal,
// plain lines otherwise, or NDJSON with --json.
type progress struct {
	w       io.Writer
	tty     bool
	json    bool
	verbose bool

	mu      sync.Mutex
	current *engine.Event // the running step
	started time.Time
	frame   int
	shown   bool // a spinner line is on screen
	stop    chan struct{}
	done    chan struct{}
	failure []string
	start   time.Time
}

func newProgress(w io.Writer, tty, asJSON, verbose bool) *progress {
	p := &progress{w: w, tty: tty && !asJSON, json: asJSON, verbose: verbose, start: time.Now()}
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
func (p *progress) Event(ev engine.Event) {
	if p.json {
		json.NewEncoder(p.w).Encode(ev)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
	switch ev.Type {
	case engine.EventInfo:
		fmt.Fprintln(p.w, ev.Text)
	case engine.EventWarn:
		fmt.Fprintln(p.w, "warning:", ev.Text)
	case engine.EventPlan:
		if p.verbose {
			fmt.Fprint(p.w, indent(ev.Text, "  │ ")+"\n")
		}
	case engine.EventStep:
		e := ev
		p.current, p.started = &e, time.Now()
		if !p.tty {
			fmt.Fprintf(p.w, "  → %s\n", ev.Detail)
		}
	case engine.EventOutput:
		fmt.Fprintf(p.w, "    │ %s\n", ev.Text)
	case engine.EventStepDone:
		p.current = nil
		fmt.Fprintf(p.w, "  %s %s  %s\n", mark(ev.Outcome), ev.Detail, dur(ev.Duration))
	case engine.EventError:
		fmt.Fprintf(p.w, "  ✗ %s\n", ev.Text)
		if len(ev.Logs) > 0 {
			fmt.Fprintf(p.w, "    last lines of %s:\n", ev.Instance)
			for _, l := range ev.Logs {
				fmt.Fprintf(p.w, "    │ %s\n", l)
			}
		}
		p.failure = append(p.failure, ev.Text)
	case engine.EventDone:
		p.current = nil
	}
}

// Finish stops the spinner and prints the outcome line.
func (p *progress) Finish(what string, res client.Result) {
	if p.tty {
		close(p.stop)
		<-p.done
	}
	if p.json {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
	took := dur(time.Since(p.start))
	switch res.Status {
	case "succeeded":
		fmt.Fprintf(p.w, "✓ %s succeeded in %s\n", what, took)
	case "rolled_back":
		fmt.Fprintf(p.w, "✗ %s rolled back after %s: %s\n", what, took, strings.TrimSpace(res.Text))
	default:
		fmt.Fprintf(p.w, "✗ %s %s after %s: %s\n", what, orDefault(res.Status, "failed"), took, strings.TrimSpace(res.Text))
	}
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
