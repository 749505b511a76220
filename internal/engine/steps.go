package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/moorage/moorage/internal/plan"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/spec"
	"github.com/moorage/moorage/internal/store"
)

func (r *execution) build(ctx context.Context, out *stepOutput) error {
	if r.ctxDir == "" {
		return errors.New("nothing was uploaded to build")
	}
	art, err := r.rt.Build(ctx, runtime.BuildRequest{
		App: r.rel.App, Release: r.rel.ID(), ContextDir: r.ctxDir, Spec: r.rel.Spec, Output: out,
		Env: buildEnv(r.rel.Spec, r.rel.Config),
	})
	if err != nil {
		return err
	}
	if err := r.e.st.SetReleaseArtifact(ctx, r.rel.App, r.rel.Version, art); err != nil {
		return err
	}
	r.rel.Artifact = art
	out.Printf("built %s: %s", r.rel.ID(), art.Ref)
	return nil
}

// buildEnv is what build.command gets of the app, in a deploy and in
// moorage check alike: the spec's env and the config values (literal, as
// config values always are), never its secrets, since build output is
// stored with the deploy.
func buildEnv(sp *spec.Spec, cfg store.Config) map[string]string {
	return runtime.Merge(sp.Env, runtime.EscapeEnv(cfg.Env))
}

func (r *execution) prepare(ctx context.Context, s plan.Prepare, out *stepOutput) error {
	if err := r.rt.EnsureNetwork(ctx, r.rel.App); err != nil {
		return err
	}
	for _, v := range s.Volumes {
		if err := r.rt.EnsureVolume(ctx, r.rel.App, v); err != nil {
			return err
		}
	}
	return nil
}

func (r *execution) accessory(ctx context.Context, s plan.Accessory, out *stepOutput) error {
	rel, err := r.release(ctx, s.Release)
	if err != nil {
		return err
	}
	acc := rel.Spec.Accessories[s.Name]
	id := runtime.InstanceID(rel.App, s.Name, "", 0, runtime.KindAccessory)
	switch s.Action {
	case plan.AccessoryKeep, plan.AccessoryStopped:
		out.Printf("%s: %s", s.Name, s.Reason)
		return nil
	case plan.AccessoryStop, plan.AccessoryRemove:
		if s.Action == plan.AccessoryStop {
			// Recorded first: whatever happens next, no plan starts it
			// again until `moorage accessory start`.
			if err := r.e.setAccessoryStopped(ctx, rel.App, s.Name, true); err != nil {
				return err
			}
		}
		if err := r.removeInstance(ctx, id); err != nil {
			return fmt.Errorf("accessory %s: %w", s.Name, err)
		}
		out.Printf("stopped %s", id)
		if s.Action == plan.AccessoryRemove {
			if err := r.e.setAccessoryStopped(ctx, rel.App, s.Name, false); err != nil {
				return err
			}
			out.Printf("removed accessory %s", s.Name)
		}
		return nil
	}
	if acc == nil {
		return fmt.Errorf("%s has no accessory %q", rel.ID(), s.Name)
	}
	env, err := r.e.accessorySpecEnv(rel, acc)
	if err != nil {
		return err
	}
	if s.Action == plan.AccessoryRestart {
		out.Printf("restarting %s: %s", s.Name, s.Reason)
	}
	// Start or restart: whatever is there (exited, or the old spec) goes.
	if err := r.rt.Remove(ctx, id); err != nil && !errors.Is(err, runtime.ErrNotFound) {
		return fmt.Errorf("remove accessory %s: %w", s.Name, err)
	}
	is := runtime.InstanceSpec{
		App: rel.App, Service: s.Name, Kind: runtime.KindAccessory,
		Artifact: rel.Artifact, // docker: its copies of "./dir" host paths
		Image:    acc.Image, Command: acc.Command, Env: env, Port: acc.Port,
		StopSignal: syscall.Signal(acc.StopSignal), StopTimeout: acc.StopTimeout, StopGroup: acc.StopGroup,
		User: acc.User, Memory: acc.Memory, CPUs: acc.CPUs,
		Hash: accessoryHash(acc), Placement: placementOf(acc.Placement),
		Health: acc.Health,
	}
	for _, v := range acc.Volumes {
		m := runtime.Mount{Name: v.Name, Target: v.Path}
		if vol := rel.Spec.Volumes[v.Name]; vol != nil {
			m.Driver, m.DriverOpts = vol.Driver, vol.DriverOpts
		}
		is.Mounts = append(is.Mounts, m)
	}
	r.e.st.PutInstance(ctx, store.InstanceRecord{ID: id, App: rel.App, Service: s.Name, Kind: string(runtime.KindAccessory), DeployID: r.deploy.ID, State: store.InstanceStarting})
	in, err := r.rt.Start(ctx, is)
	if err != nil {
		return &instanceError{id: id, err: fmt.Errorf("start accessory %s: %w", s.Name, err)}
	}
	r.e.st.SetInstanceState(ctx, id, store.InstanceRunning)
	g := plan.AccessoryGate(acc.Health, in.Addr != "")
	out.Printf("started %s, waiting until %s", id, g)
	if err := r.gate(ctx, []gated{{in: in, gate: g, timeout: plan.HealthTimeout(acc.Health)}}); err != nil {
		return err
	}
	out.Printf("%s is ready", s.Name)
	// Started on purpose (`moorage accessory start`): no longer stopped.
	return r.e.setAccessoryStopped(ctx, rel.App, s.Name, false)
}

func (r *execution) task(ctx context.Context, s plan.Task, out *stepOutput) error {
	rel, err := r.release(ctx, s.Release)
	if err != nil {
		return err
	}
	label := fmt.Sprintf("%s-%d", s.Kind(), s.Index+1)
	env, err := r.env(ctx, rel, "")
	if err != nil {
		return err
	}
	is := runtime.InstanceSpec{
		App: rel.App, Service: label, Release: rel.ID(), Kind: runtime.KindTask,
		Artifact: rel.Artifact, Command: s.Command, Env: env, Mounts: mountsFor(rel.Spec, ""),
		StopSignal: syscall.SIGTERM, StopTimeout: spec.DefaultStopTimeout,
	}
	// A task runs as the first service does (on the process runtime, the
	// app's user unless that service has user: or allow_root:).
	is.User, is.AllowRoot = firstService(rel.Spec).User, firstService(rel.Spec).AllowRoot
	id := is.ID()
	r.e.st.PutInstance(ctx, store.InstanceRecord{ID: id, App: rel.App, Service: label, Release: rel.ID(), Kind: string(runtime.KindTask), DeployID: r.deploy.ID, State: store.InstanceStarting})
	defer r.e.st.SetInstanceState(context.WithoutCancel(ctx), id, store.InstanceRemoved)
	code, err := r.rt.Run(ctx, runtime.RunSpec{InstanceSpec: is, Timeout: s.Timeout, Stdout: out, Stderr: out})
	if err != nil {
		if errors.Is(err, runtime.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("%s task %d `%s` did not finish within %s: %w", s.Kind(), s.Index+1, strings.Join(s.Command, " "), s.Timeout, err)
		}
		return fmt.Errorf("%s task %d `%s`: %w", s.Kind(), s.Index+1, strings.Join(s.Command, " "), err)
	}
	if code != 0 {
		return fmt.Errorf("%s task %d `%s` exited with status %d", s.Kind(), s.Index+1, strings.Join(s.Command, " "), code)
	}
	return nil
}

func firstService(sp *spec.Spec) *spec.Service {
	for _, n := range sp.ServiceNames() {
		return sp.Services[n]
	}
	return &spec.Service{}
}

func (r *execution) stop(ctx context.Context, ids []string, out *stepOutput) error {
	var wg sync.WaitGroup
	errs := make([]error, len(ids))
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			if err := r.removeInstance(ctx, id); err != nil {
				errs[i] = err
				return
			}
			out.Printf("stopped %s in %s", id, time.Since(start).Round(time.Millisecond))
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// stopLost tells a singleton instance on a machine that is down to stop
// when the machine is back (plan.Singleton.Lost), on whichever runtime has
// it, without waiting. Failing to is said, not fatal: nothing starts in
// its place either way.
func (e *Engine) stopLost(ctx context.Context, l plan.LostInstance, out *stepOutput) {
	err := runtime.ErrNotFound
	for _, rt := range e.runtimes {
		ls, ok := rt.(runtime.LostStopper)
		if !ok {
			continue
		}
		if err = ls.StopLost(ctx, l.ID); err == nil || !errors.Is(err, runtime.ErrNotFound) {
			break
		}
	}
	switch {
	case err == nil:
		out.Printf("told %s (on node %s, which is down) to stop when its node is back; not waited for, and nothing starts in its place", l.ID, l.Node)
	case errors.Is(err, runtime.ErrNotFound):
		out.Printf("%s is gone from its runtime; nothing starts in its place", l.ID)
	default:
		out.Printf("could not tell %s to stop (it may run again when node %s is back, until the next deploy stops it); nothing starts in its place: %v", l.ID, l.Node, err)
	}
}

func (r *execution) removeInstance(ctx context.Context, id string) error {
	return r.e.removeInstance(ctx, id)
}

// removeInstance stops and removes instance id, on whichever runtime has
// it, and records it removed.
func (e *Engine) removeInstance(ctx context.Context, id string) error {
	var err error
	for _, rt := range e.runtimes {
		err = rt.Remove(ctx, id)
		if err == nil || !errors.Is(err, runtime.ErrNotFound) {
			break
		}
	}
	if err != nil && !errors.Is(err, runtime.ErrNotFound) {
		return fmt.Errorf("stop %s: %w", id, err)
	}
	e.st.SetInstanceState(ctx, id, store.InstanceRemoved)
	return nil
}

func (r *execution) drain(ctx context.Context, s plan.Drain, out *stepOutput) error {
	r.drainIDs(ctx, s.IDs, s.Timeout, out)
	return r.stop(ctx, s.IDs, out)
}

// drainIDs waits until the proxy has no request in flight to the given
// unrouted instances, up to timeout (the plan's); the rest are cut when the
// instances stop.
func (r *execution) drainIDs(ctx context.Context, ids []string, timeout time.Duration, out *stepOutput) {
	if timeout <= 0 {
		timeout = spec.DefaultDrainTimeout
	}
	out.Printf("draining %s (up to %s)", strings.Join(ids, " "), timeout)
	start := time.Now()
	if left := r.e.proxy.Drain(ctx, ids, timeout); left > 0 {
		out.Printf("drain timeout (%s): %d requests still in flight are cut", timeout, left)
	} else {
		out.Printf("drained in %s", time.Since(start).Round(time.Millisecond))
	}
}

func (r *execution) activate(ctx context.Context, s plan.Activate, out *stepOutput) error {
	rel, err := r.release(ctx, s.Release)
	if err != nil {
		return err
	}
	return r.e.st.Activate(ctx, rel.App, rel.Version)
}

// adopt makes the app's config follow the release the operation activated
// (see adoptConfig).
func (r *execution) adopt(ctx context.Context, s plan.Adopt) error {
	rel, err := r.release(ctx, s.Release)
	if err != nil {
		return err
	}
	return r.e.adoptConfig(ctx, r.from, rel)
}

// prune removes the artifacts of the releases the plan lists (those
// beyond the retention window once the target is active), and old logs; a
// failure is a warning, the operation has succeeded.
func (r *execution) prune(ctx context.Context, s plan.Prune, out *stepOutput) error {
	if s.Releases == nil { // planned without the app's history: nothing decided
		out.Printf("no artifact pruned: the plan was made without the app's history (`moorage prune -a %s` removes those beyond keep_releases)", r.rel.App)
	}
	for _, id := range s.Releases {
		rel, err := r.release(ctx, id)
		if err != nil {
			out.Printf("warning: pruning %s: %v", id, err)
			continue
		}
		rt, err := r.e.Runtime(rel.Artifact.Runtime)
		if err == nil {
			err = rt.RemoveArtifact(ctx, rel.Artifact)
		}
		if err != nil {
			out.Printf("warning: pruning the artifact of %s: %v", id, err)
			continue
		}
		out.Printf("pruned %s (%s)", id, rel.Artifact.Ref)
	}
	if a, err := r.e.st.GetApp(ctx, r.rel.App); err == nil {
		if _, err := r.e.PruneLogs(ctx, a); err != nil {
			out.Printf("warning: pruning old logs: %v", err)
		}
	}
	return nil
}

// retention is what a plan that makes target active decides its prune
// from: the app's releases, and which of the artifacts it would prune are
// gone already (asked of their runtimes; one that cannot say counts as
// there, and its removal is tried).
func (e *Engine) retention(ctx context.Context, app string, target *store.Release, from int) *plan.Retention {
	history, err := e.st.ListReleases(ctx, app)
	if err != nil {
		return nil // the executor decides
	}
	t := plan.RetentionOf(target)
	ret := &plan.Retention{History: plan.RetentionOfAll(history), Target: &t, From: from, Gone: map[string]bool{}}
	for _, rel := range plan.PruneList(ret) {
		if rt, err := e.Runtime(rel.Artifact.Runtime); err == nil {
			if ok, err := rt.ArtifactExists(ctx, rel.Artifact); err == nil && !ok {
				ret.Gone[rel.Artifact.Ref] = true
			}
		}
	}
	return ret
}

func listOrNone(ids []string) string {
	if len(ids) == 0 {
		return "(none)"
	}
	return strings.Join(ids, " ")
}
