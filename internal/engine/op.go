package engine

import (
	"context"
	"sync"
	"time"

	"github.com/moorage/moorage/internal/plan"

	"github.com/moorage/moorage/internal/api"
)

// The events of an operation are the API's (internal/api): what a client
// reads is what the engine emits.
type (
	Event    = api.Event
	PlanStep = api.PlanStep
)

// Event types and codes (see internal/api).
const (
	EventPlan     = api.EventPlan
	EventStep     = api.EventStep
	EventStepDone = api.EventStepDone
	EventOutput   = api.EventOutput
	EventInfo     = api.EventInfo
	EventWarn     = api.EventWarn
	EventError    = api.EventError
	EventDone     = api.EventDone
	CodeLocked    = api.CodeLocked
)

// planEvent is the event that announces plan p.
func planEvent(rel string, p *plan.Plan) Event {
	steps := make([]PlanStep, len(p.Steps))
	for i, s := range p.Steps {
		steps[i] = PlanStep{Kind: string(s.Kind()), Release: s.ReleaseID(), Text: s.String()}
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
