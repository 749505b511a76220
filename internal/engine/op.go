package engine

import (
	"context"
	"sync"
	"time"
)

// Event types streamed while an operation runs.
const (
	EventPlan     = "plan"      // Text: the plan
	EventStep     = "step"      // a step started
	EventStepDone = "step_done" // a step ended: Outcome, Duration
	EventOutput   = "output"    // a line of output of the running step
	EventInfo     = "info"
	EventWarn     = "warn"
	EventError    = "error" // Text: what failed; Logs: the failing instance's last lines
	EventDone     = "done"  // last event: Status, Text, Code
)

// Codes of a done event that failed for a reason a client may act on.
const (
	CodeLocked = "locked" // another operation holds the app's lock: retry with --wait
)

// Event is one thing that happened during an operation.
type Event struct {
	Time     time.Time     `json:"time"`
	Type     string        `json:"type"`
	Deploy   int64         `json:"deploy,omitempty"`
	Release  string        `json:"release,omitempty"`
	Seq      int           `json:"seq,omitempty"`
	Step     string        `json:"step,omitempty"`
	Detail   string        `json:"detail,omitempty"`
	Outcome  string        `json:"outcome,omitempty"`
	Duration time.Duration `json:"duration,omitempty"`
	Text     string        `json:"text,omitempty"`
	Status   string        `json:"status,omitempty"`
	Code     string        `json:"code,omitempty"` // done: CodeLocked, ...
	Instance string        `json:"instance,omitempty"`
	Logs     []string      `json:"logs,omitempty"`
	// Steps: a plan event's steps, one by one (Text holds the whole plan).
	Steps []PlanStep `json:"steps,omitempty"`
}

// PlanStep is one step of a plan as events carry it: its kind, the
// release it acts on, and the line the plan prints (and the journal
// records) for it.
type PlanStep struct {
	Kind    string `json:"kind"`
	Release string `json:"release,omitempty"`
	Text    string `json:"text"`
}

// planEvent is the event that announces plan p.
func planEvent(rel string, p *Plan) Event {
	steps := make([]PlanStep, len(p.Steps))
	for i, s := range p.Steps {
		steps[i] = PlanStep{Kind: string(s.Kind), Release: s.Release, Text: s.String()}
	}
	return Event{Type: EventPlan, Release: rel, Text: p.String(), Steps: steps}
}

// maxOpEvents bounds the events an operation keeps for late readers; output
// beyond it is still journaled with the step.
const maxOpEvents = 100000

// Op is a running operation (deploy, rollback, ...). It runs on the
// engine's context, not its caller's: a client that goes away does not stop
// it. Readers follow its events with Next.
type Op struct {
	mu      sync.Mutex
	events  []Event
	dropped int
	changed chan struct{} // closed and replaced on every new event
	done    chan struct{}
	err     error
	status  string
	deploy  int64
}

func newOp() *Op {
	return &Op{changed: make(chan struct{}), done: make(chan struct{})}
}

func (o *Op) emit(ev Event) {
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	o.mu.Lock()
	if ev.Deploy == 0 {
		ev.Deploy = o.deploy
	}
	if len(o.events) < maxOpEvents || ev.Type != EventOutput {
		o.events = append(o.events, ev)
	} else {
		o.dropped++
	}
	close(o.changed)
	o.changed = make(chan struct{})
	o.mu.Unlock()
}

func (o *Op) setDeploy(id int64) {
	o.mu.Lock()
	o.deploy = id
	o.mu.Unlock()
}

// DeployID is the id of the deploy record (0 until created).
func (o *Op) DeployID() int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.deploy
}

func (o *Op) finish(status string, err error) {
	o.mu.Lock()
	o.status, o.err = status, err
	o.mu.Unlock()
	close(o.done)
}

// Next returns event i, waiting for it. ok is false once the operation has
// ended and every event was read, or when ctx is done.
func (o *Op) Next(ctx context.Context, i int) (ev Event, ok bool) {
	for {
		o.mu.Lock()
		if i < len(o.events) {
			ev = o.events[i]
			o.mu.Unlock()
			return ev, true
		}
		changed := o.changed
		o.mu.Unlock()
		select {
		case <-changed:
		case <-o.done:
			o.mu.Lock()
			n := len(o.events)
			o.mu.Unlock()
			if i >= n {
				return Event{}, false
			}
		case <-ctx.Done():
			return Event{}, false
		}
	}
}

// Done is closed when the operation has ended.
func (o *Op) Done() <-chan struct{} { return o.done }

// Wait waits for the end and returns the final status and error.
func (o *Op) Wait(ctx context.Context) (string, error) {
	select {
	case <-o.done:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.status, o.err
}
