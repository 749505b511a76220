package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/moorage/moorage/internal/plan"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/store"
)

// execInput is a deploy, rollback or config release about to be executed.
type execInput struct {
	app        *store.App
	kind       string
	owner      string
	parent     int64 // the record it runs for (store.Deploy.Parent)
	rt         runtime.Runtime
	target     *store.Release // not yet stored
	from       *store.Release // active release, nil for the first deploy
	build      bool
	runTasks   bool
	contextDir string
	// scale and fromScale are the `moorage scale` overrides for the target
	// and for the release a failure goes back to (they differ for a scale).
	scale, fromScale map[string]int
	// deploy is an existing record (scale, config); nil: create one.
	// plan, when set, replaces PlanDeploy (scale converges in place).
	plan func(observed []runtime.Instance) *plan.Plan
	// hostsClaimed: the caller holds the claim on the hosts of target and
	// from (claimHTTPHosts) until execute returns.
	hostsClaimed bool
	// dryRun: plan, print the plan and stop (set by operate).
	dryRun bool
	// done, when set, is called by operate once execute returned, with its
	// status (release the hosts' claim, record the app's runtime).
	done func(status string)
}

// execution is the executor of one operation. It follows plans; it decides
// nothing a plan did not say.
type execution struct {
	e         *Engine
	op        *Op
	deploy    *store.Deploy
	rel       *store.Release // the target
	from      *store.Release
	rt        runtime.Runtime
	ctxDir    string
	cutOver   bool              // the target was cut over (commit point passed)
	routed    map[string]string // routed instance id → release, after the last cutover
	known     map[string]*store.Release
	scale     map[string]int // overrides of the target
	fromScale map[string]int // overrides to restore on failure
	undoing   bool           // following an undo, revert or recovery plan
	prefix    string         // journal name prefix of steps: "", "undo:", "revert:", "recover:", "destroy:"
	// unjournaled: the steps are not recorded in r.deploy's journal (a
	// recovery that changes nothing, a destroy: its record is the audit's
	// entry); they run and stream their events all the same.
	unjournaled bool
	seq         int // the last step's number when unjournaled
	// monitored: the plan monitors the target after its cutover. Then
	// crashes watches the target's crashes from the cutover on: a crash
	// fails the execution at the next step, or in the monitor step;
	// unwatchCrashes ends it when the execution ends.
	monitored      bool
	crashes        *watcher
	unwatchCrashes func()
	// fallback: traffic went back to the previous release after a crash
	// of the target (watchFallback); fallbackMu guards it and undoing's
	// hand-over to the rollback.
	fallbackMu sync.Mutex
	fallback   bool
}

// stepError is a failed step, with the instance that failed when one did.
type stepError struct {
	step     plan.Step
	instance string
	err      error
}

func (s *stepError) Error() string {
	return fmt.Sprintf("%s: %v", s.step.Kind(), s.err)
}

func (s *stepError) Unwrap() error { return s.err }

// instanceError names the instance that failed a step.
type instanceError struct {
	id  string
	err error
}

func (i *instanceError) Error() string { return i.err.Error() }
func (i *instanceError) Unwrap() error { return i.err }

func (e *Engine) execute(ctx context.Context, op *Op, in execInput) (string, error) {
	app := in.app.Name
	// Before anything is recorded: a plan is made from what runs, which a
	// runtime that has not reached its engine yet cannot see.
	if err := reach(ctx, in.rt); err != nil {
		return store.DeployFailed, fmt.Errorf("cannot %s %s: %w", in.kind, app, err)
	}
	if in.dryRun {
		return e.dryRun(ctx, op, in)
	}
	if !in.hostsClaimed {
		release, err := e.claimHTTPHosts(app, in.target.Spec, specOf(in.from))
		if err != nil {
			return store.DeployFailed, fmt.Errorf("cannot %s %s: %w", in.kind, app, err)
		}
		defer release()
	}
	d := &store.Deploy{App: app, Kind: in.kind, Owner: in.owner, Parent: in.parent}
	if in.from != nil {
		d.FromRelease = in.from.Version
	}
	if err := e.st.CreateDeploy(ctx, d); err != nil {
		return store.DeployFailed, err
	}
	op.setDeploy(d.ID)
	rel := in.target
	isNew := rel.Version == 0
	if isNew { // a new release (deploy, rollback, config change)
		rel.DeployID = d.ID
		if err := e.st.CreateRelease(ctx, rel); err != nil {
			e.st.FinishDeploy(ctx, d.ID, store.DeployFailed, err.Error())
			return store.DeployFailed, err
		}
	}
	d.Release = rel.Version
	e.st.SetDeployRelease(ctx, d.ID, rel.Version)
	e.st.UpdateLock(ctx, app, e.server, d.ID, fmt.Sprintf("%s of %s", in.kind, rel.ID()))

	from := "none"
	if in.from != nil {
		from = in.from.ID()
	}
	op.emit(Event{Type: EventInfo, Release: rel.ID(), Text: fmt.Sprintf("%s #%d: %s %s (%s, active: %s)", in.kind, d.ID, app, rel.ID(), rel.Cause, from)})
	if isNew {
		for _, w := range secretRefs(rel) {
			op.emit(Event{Type: EventWarn, Release: rel.ID(), Text: w})
		}
	}

	r := &execution{e: e, op: op, deploy: d, rel: rel, from: in.from, rt: in.rt, ctxDir: in.contextDir,
		routed: map[string]string{}, known: map[string]*store.Release{rel.ID(): rel},
		scale: in.scale, fromScale: in.fromScale}
	if r.fromScale == nil {
		r.fromScale = in.scale
	}
	defer func() {
		if r.unwatchCrashes != nil {
			r.unwatchCrashes()
		}
	}()
	if in.from != nil {
		r.known[in.from.ID()] = in.from
	}
	observed, err := e.observe(ctx, app)
	if err != nil {
		return r.fail(ctx, err)
	}
	if in.plan == nil {
		if err := plan.CheckSingletons(*e.targetFor(ctx, rel, in.scale), observed); err != nil {
			return r.fail(ctx, err)
		}
	}
	p := e.plan(ctx, in, rel, observed)
	r.monitored = p.Monitors(rel.ID())
	e.st.SetDeployPlan(ctx, d.ID, p.String())
	op.emit(planEvent(rel.ID(), p))
	warnStoppedAccessories(op, rel.ID(), p)

	if err := r.steps(ctx, p.Steps); err != nil {
		return r.fail(ctx, err)
	}
	if held := p.Held(); held != "" {
		op.emit(Event{Type: EventWarn, Release: rel.ID(), Text: held})
	}
	if err := e.st.FinishDeploy(ctx, d.ID, store.DeploySucceeded, ""); err != nil {
		return store.DeployFailed, err
	}
	e.st.AddEvent(ctx, store.AppEvent{App: app, Kind: store.EventDeploy, Message: fmt.Sprintf("%s is active (%s, deploy #%d)", rel.ID(), rel.Cause, d.ID)})
	return store.DeploySucceeded, nil
}

// plan is the plan of in, whose target is rel, from what runs.
func (e *Engine) plan(ctx context.Context, in execInput, rel *store.Release, observed []runtime.Instance) *plan.Plan {
	if in.plan != nil {
		return in.plan(observed)
	}
	from := 0
	if in.from != nil {
		from = in.from.Version
	}
	return plan.Deploy(plan.DeployInput{
		App: in.app.Name, Kind: in.kind, Target: *e.targetFor(ctx, rel, in.scale), From: storeID(in.from),
		Build: in.build, RunTasks: in.runTasks, Observed: observed, Specs: e.specsOf(ctx, in.app.Name, observed),
		Retention: e.retention(ctx, in.app.Name, rel, from),
		Proven:    in.kind == store.KindRollback,
		Source:    rollbackOf(in.kind, rel),
		Moved:     in.from != nil && in.from.Runtime != rel.Runtime,
	})
}

// rollbackOf is the release whose artifact and config a rollback's target
// runs unchanged ("" for any other operation).
func rollbackOf(kind string, rel *store.Release) string {
	if kind != store.KindRollback || rel.Source == 0 {
		return ""
	}
	return store.ReleaseID(rel.Source)
}

// dryRun plans in as execute would, prints the plan in the text execute journals,
// and changes nothing: no lock, no record, no release. A new release
// takes the version it would get now.
func (e *Engine) dryRun(ctx context.Context, op *Op, in execInput) (string, error) {
	app := in.app.Name
	// Checked, not claimed: a claim would take the hosts from a running
	// operation of the app.
	if err := e.checkHTTPHosts(app, in.target.Spec, true); err != nil {
		return store.DeployFailed, fmt.Errorf("cannot %s %s: %w", in.kind, app, err)
	}
	rel := *in.target
	if rel.Version == 0 {
		v, err := e.st.ReserveVersion(ctx, app)
		if err != nil {
			return store.DeployFailed, err
		}
		rel.Version = v
	}
	what := fmt.Sprintf("%s %s (%s, active: %s)", app, rel.ID(), rel.Cause, orNone(storeID(in.from)))
	if in.target.Version != 0 { // the active release itself (scale, restore)
		what = fmt.Sprintf("%s %s (active)", app, rel.ID())
	}
	op.emit(Event{Type: EventInfo, Release: rel.ID(), Text: fmt.Sprintf("dry run of a %s: %s; nothing changes", in.kind, what)})
	if in.target.Version == 0 {
		for _, w := range secretRefs(&rel) {
			op.emit(Event{Type: EventWarn, Release: rel.ID(), Text: w})
		}
	}
	observed, err := e.observe(ctx, app)
	if err != nil {
		return store.DeployFailed, err
	}
	p := e.plan(ctx, in, &rel, observed)
	op.emit(planEvent(rel.ID(), p))
	warnStoppedAccessories(op, rel.ID(), p)
	if in.plan == nil {
		if err := plan.CheckSingletons(*e.targetFor(ctx, &rel, in.scale), observed); err != nil {
			op.emit(Event{Type: EventWarn, Release: rel.ID(), Text: "it would be refused before anything changes: " + err.Error()})
		}
	}
	return StatusPlanned, nil
}

// warnStoppedAccessories warns that plan leaves accessories stopped with
// `moorage accessory stop` stopped: services that need one may fail.
func warnStoppedAccessories(op *Op, rel string, p *plan.Plan) {
	for _, name := range p.StoppedAccessories() {
		op.emit(Event{Type: EventWarn, Release: rel, Text: fmt.Sprintf("accessory %s is stopped (moorage accessory stop) and stays stopped: services that need it may fail; `moorage accessory start -a %s %s` starts it", name, p.App, name)})
	}
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func storeID(r *store.Release) string {
	if r == nil {
		return ""
	}
	return r.ID()
}

// fail handles a failed step: before the cutover the target's instances are
// removed and the active release keeps serving, untouched; after it the
// previous release is brought back (instantly: its web instances are still
// warm) and the target's instances are removed.
func (r *execution) fail(ctx context.Context, cause error) (string, error) {
	e, app := r.e, r.rel.App
	if ctx.Err() != nil || errors.Is(cause, ErrInterrupted) {
		// The server is stopping: leave the journal as it is; recovery at
		// the next start finishes or undoes this deploy like after a crash.
		r.op.emit(Event{Type: EventWarn, Text: "the server is stopping; this deploy is finished or undone when it starts again"})
		return "interrupted", ErrInterrupted
	}
	msg := cause.Error()
	var logs []string
	var inst string
	var ie *instanceError
	if errors.As(cause, &ie) {
		inst = ie.id
		logs = r.lastLogs(ctx, ie.id, 20)
	}
	r.op.emit(Event{Type: EventError, Release: r.rel.ID(), Text: msg, Instance: inst, Logs: logs})

	status, verb := store.DeployFailed, "undo"
	kind := "undo"
	if r.cutOver {
		status, verb, kind = store.DeployRolledBack, "roll back to "+storeID(r.from), "revert"
	}
	r.op.emit(Event{Type: EventInfo, Text: fmt.Sprintf("%s: %s", verb, describeTarget(r.from))})
	observed, err := e.observe(ctx, app)
	held := ""
	if err == nil {
		var target *plan.Target
		if r.from != nil {
			target = e.targetFor(ctx, r.from, r.fromScale)
		}
		warm, _ := e.warmRelease(ctx, r.from)
		p := plan.Converge(plan.ConvergeInput{App: app, Kind: kind, Target: target, From: r.rel.ID(), Observed: observed, Specs: e.specsOf(ctx, app, observed), Warm: warm})
		r.op.emit(Event{Type: EventPlan, Text: p.String()})
		r.fallbackMu.Lock() // watchFallback reads undoing
		r.undoing, r.prefix = true, kind+":"
		r.fallbackMu.Unlock()
		err = r.steps(ctx, p.Steps)
		held = p.Held()
	}
	if held != "" {
		// A singleton on a lost node was not started again (the rest was
		// restored, unless err says otherwise): the outcome says which
		// node and what to do.
		r.op.emit(Event{Type: EventWarn, Text: held})
		msg += "; " + held
	}
	if err != nil {
		// Undoing failed too: say so loudly; recovery retries at the next
		// start, and `moorage ps` shows the state.
		e.log.Error("undo failed", "app", app, "deploy", r.deploy.ID, "err", err)
		r.op.emit(Event{Type: EventError, Text: "could not restore the previous state: " + err.Error()})
		msg += "; restoring the previous state failed too: " + err.Error()
	}
	if r.from == nil || r.from.Version != r.rel.Version {
		e.st.SetReleaseStatus(ctx, app, r.rel.Version, store.ReleaseFailed)
	} else if r.deploy.Kind == store.KindScale {
		// A scale of the active release failed: its replicas go back
		// (a scale records them first; a stop or start never does).
		e.st.SetFormation(ctx, app, r.fromScale)
	}
	e.st.FinishDeploy(ctx, r.deploy.ID, status, msg)
	e.st.AddEvent(ctx, store.AppEvent{App: app, Kind: store.EventDeploy, Message: fmt.Sprintf("deploy #%d of %s %s: %s", r.deploy.ID, r.rel.ID(), status, msg)})
	return status, fmt.Errorf("%s %s %s: %s", r.deploy.Kind, app, r.rel.ID(), msg)
}

func describeTarget(r *store.Release) string {
	if r == nil {
		return "nothing was active; removing what this deploy started"
	}
	return r.ID() + " keeps serving"
}

// steps executes steps in order, journaling each before acting (unless
// unjournaled). It is the one step loop of every plan: deploys and the
// operations that carry one to a release, undo, revert, recovery and
// destroy.
func (r *execution) steps(ctx context.Context, steps []plan.Step) error {
	for _, s := range steps {
		if ctx.Err() != nil {
			return ErrInterrupted
		}
		if err := r.crashed(); err != nil {
			return err
		}
		name := r.prefix + string(s.Kind())
		r.e.failpoint("before:" + name)
		seq, err := r.startStep(ctx, name, s)
		if err != nil {
			return err
		}
		start := time.Now()
		r.op.emit(Event{Type: EventStep, Seq: seq, Step: name, Detail: s.String(), Release: s.ReleaseID()})
		out := newStepOutput(r.op, seq, name)
		out.first = func() { r.e.failpoint("during:" + name) }
		err = r.step(ctx, s, out)
		outcome := store.StepOK
		if err != nil {
			outcome = store.StepFailed
			out.Line("error: " + err.Error())
		}
		if !r.unjournaled {
			r.e.st.FinishStep(context.WithoutCancel(ctx), r.deploy.ID, seq, outcome, out.String())
		}
		r.op.emit(Event{Type: EventStepDone, Seq: seq, Step: name, Detail: s.String(), Outcome: outcome, Duration: time.Since(start), Release: s.ReleaseID()})
		if err != nil {
			if ctx.Err() != nil {
				return ErrInterrupted
			}
			return &stepError{step: s, err: err}
		}
		r.e.failpoint("after:" + name)
	}
	return nil
}

// startStep records step s as started in the journal and returns its
// number (unjournaled: the next number, recorded nowhere).
func (r *execution) startStep(ctx context.Context, name string, s plan.Step) (int, error) {
	if r.unjournaled {
		r.seq++
		return r.seq, nil
	}
	return r.e.st.StartStep(ctx, r.deploy.ID, name, s.String())
}

// crashed reports a crash of the target since its cutover, when the plan
// monitors it: the monitor would roll back for it, so the execution does not go
// on to its next step.
func (r *execution) crashed() error {
	if r.crashes == nil || r.undoing {
		return nil
	}
	select {
	case ev := <-r.crashes.ch:
		return &instanceError{id: ev.Instance, err: fmt.Errorf("%s crashed during the monitor window, right after the cutover (%s)", ev.Instance, ev.Message)}
	default:
		return nil
	}
}

// step hands s to the handler registered for its kind.
func (r *execution) step(ctx context.Context, s plan.Step, out *stepOutput) error {
	h := r.e.handler(s.Kind())
	if h == nil {
		return fmt.Errorf("unknown step %q", s.Kind())
	}
	return h(ctx, &Exec{r: r, out: out}, s)
}

// release resolves a release ID named by a step.
func (r *execution) release(ctx context.Context, id string) (*store.Release, error) {
	if rel := r.known[id]; rel != nil {
		return rel, nil
	}
	var v int
	if _, err := fmt.Sscanf(id, "v%d", &v); err != nil {
		return nil, fmt.Errorf("bad release id %q", id)
	}
	rel, err := r.e.st.GetRelease(ctx, r.rel.App, v)
	if err != nil {
		return nil, err
	}
	r.known[id] = rel
	return rel, nil
}

// lastLogs returns the last n lines an instance printed.
func (r *execution) lastLogs(ctx context.Context, id string, n int) []string {
	var lines []string
	for _, rt := range r.e.runtimes {
		err := rt.Logs(ctx, id, runtime.LogOptions{Tail: n}, func(l runtime.LogLine) error {
			lines = append(lines, l.Text)
			return nil
		})
		if err == nil && len(lines) > 0 {
			break
		}
	}
	return lines
}

// stepOutput collects a step's output: each line is streamed as an event
// and the tail is journaled with the step.
type stepOutput struct {
	mu      sync.Mutex
	op      *Op
	seq     int
	step    string
	partial []byte
	buf     strings.Builder
	// first, when set, runs at the step's first line of output: the
	// "during:" failpoints (a task printed, an instance started, a drain
	// began).
	first func()
}

func newStepOutput(op *Op, seq int, step string) *stepOutput {
	return &stepOutput{op: op, seq: seq, step: step}
}

// Write implements io.Writer, splitting into lines.
func (o *stepOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := len(p)
	o.partial = append(o.partial, p...)
	for {
		i := strings.IndexByte(string(o.partial), '\n')
		if i < 0 {
			break
		}
		o.line(strings.TrimRight(string(o.partial[:i]), "\r"))
		o.partial = o.partial[i+1:]
	}
	if len(o.partial) > 64<<10 {
		o.line(string(o.partial))
		o.partial = nil
	}
	return n, nil
}

// Line records one line.
func (o *stepOutput) Line(s string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.line(s)
}

func (o *stepOutput) line(s string) {
	if o.first != nil {
		f := o.first
		o.first = nil
		f()
	}
	o.op.emit(Event{Type: EventOutput, Seq: o.seq, Step: o.step, Text: s})
	if o.buf.Len() > 4*store.MaxStepOutput {
		keep := o.buf.String()[o.buf.Len()-store.MaxStepOutput:]
		o.buf.Reset()
		o.buf.WriteString(keep)
	}
	o.buf.WriteString(s)
	o.buf.WriteByte('\n')
}

// Printf records a formatted line.
func (o *stepOutput) Printf(format string, args ...any) { o.Line(fmt.Sprintf(format, args...)) }

// String is the collected output.
func (o *stepOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.partial) > 0 {
		o.line(string(o.partial))
		o.partial = nil
	}
	return o.buf.String()
}

// Tail returns the last n lines.
func (o *stepOutput) Tail(n int) []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	lines := strings.Split(strings.TrimRight(o.buf.String(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines
}
