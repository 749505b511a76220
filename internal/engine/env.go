package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/spec"
	"github.com/moorage/moorage/internal/store"
)

// ErrSecrets is returned when a release's secrets cannot be opened.
var ErrSecrets = errors.New("cannot open secrets")

// env is the environment of rel's service svc ("" for release tasks and
// checks), from lowest to highest precedence: the spec's env, the service's
// env, `moorage config set` values, secrets, and how to reach accessories.
func (r *execution) env(ctx context.Context, rel *store.Release, svc string) (map[string]string, error) {
	return r.e.releaseEnv(ctx, rel, svc)
}

func (e *Engine) releaseEnv(ctx context.Context, rel *store.Release, svc string) (map[string]string, error) {
	env := runtime.Merge(rel.Spec.Env)
	if s := rel.Spec.Services[svc]; s != nil {
		env = runtime.Merge(env, s.Env)
	}
	// Config values and secrets are taken literally: the runtime expands
	// only what the spec wrote (runtime.InstanceEnv).
	env = runtime.Merge(env, runtime.EscapeEnv(rel.Config.Env))
	for k := range rel.Config.Secrets {
		v, err := e.openSecret(rel, k)
		if err != nil {
			return nil, err
		}
		env[k] = strings.ReplaceAll(v, "$", "$$")
	}
	acc, err := e.accessoryEnv(ctx, rel.App)
	if err != nil {
		return nil, err
	}
	return runtime.Merge(env, acc), nil
}

// openSecret opens secret k of rel's config. Its error names the secret,
// never its value.
func (e *Engine) openSecret(rel *store.Release, k string) (string, error) {
	sealed, ok := rel.Config.Secrets[k]
	if !ok {
		return "", fmt.Errorf("%w: %s has no secret %s; set it with `moorage config set --secret %s`", ErrSecrets, rel.ID(), k, k)
	}
	if e.secrets == nil {
		return "", fmt.Errorf("%w: no secrets key is loaded", ErrSecrets)
	}
	v, err := e.secrets.Open(rel.App, k, sealed)
	if err != nil {
		return "", fmt.Errorf("%w: secret %s of %s does not open with this server's key", ErrSecrets, k, rel.ID())
	}
	return string(v), nil
}

// accessorySpecEnv is the environment of rel's accessory acc: its spec's
// env and the secrets it declares, and no others. Accessories get no
// config values: what they need is in their spec.
func (e *Engine) accessorySpecEnv(rel *store.Release, acc *spec.Accessory) (map[string]string, error) {
	env := runtime.Merge(acc.Env)
	for _, k := range acc.Secrets {
		v, err := e.openSecret(rel, k)
		if err != nil {
			return nil, fmt.Errorf("accessory %s: %w", acc.Name, err)
		}
		env[k] = strings.ReplaceAll(v, "$", "$$") // literal (runtime.InstanceEnv)
	}
	return env, nil
}

// accessoryEnv tells services how to reach the app's accessories.
func (e *Engine) accessoryEnv(ctx context.Context, app string) (map[string]string, error) {
	env := map[string]string{}
	for _, rt := range e.runtimes {
		ins, err := rt.List(ctx, runtime.Filter{App: app, Kind: runtime.KindAccessory})
		if err != nil {
			return nil, err
		}
		for _, in := range ins {
			if in.Host != "" && in.Port != 0 {
				env = runtime.Merge(env, runtime.AccessoryEnv(in.Service, in.Host, in.Port))
			}
		}
	}
	return env, nil
}

func (r *execution) instanceSpec(ctx context.Context, rel *store.Release, service string, idx int) (runtime.InstanceSpec, error) {
	return r.e.instanceSpec(ctx, rel, service, idx)
}

func (e *Engine) instanceSpec(ctx context.Context, rel *store.Release, service string, idx int) (runtime.InstanceSpec, error) {
	svc := rel.Spec.Services[service]
	if svc == nil {
		return runtime.InstanceSpec{}, fmt.Errorf("%s has no service %q", rel.ID(), service)
	}
	env, err := e.releaseEnv(ctx, rel, service)
	if err != nil {
		return runtime.InstanceSpec{}, err
	}
	is := runtime.InstanceSpec{
		App: rel.App, Service: service, Release: rel.ID(), Index: idx, Kind: runtime.KindService,
		Artifact: rel.Artifact, Command: svc.Command, Env: env,
		Publish: svc.Routed(), Mounts: mountsFor(rel.Spec, service),
		StopSignal: syscall.Signal(svc.StopSignal), StopTimeout: svc.StopTimeout, StopGroup: svc.StopGroup,
		User: svc.User, AllowRoot: svc.AllowRoot, ReadOnly: svc.ReadOnly, Memory: svc.Memory, CPUs: svc.CPUs,
	}
	if spec.ContainerRuntime(rel.Runtime) {
		is.Port = svc.Port
	}
	is.Single = svc.Singleton
	is.Placement = placementOf(svc.Placement)
	is.Health, is.HealthHost = svc.Health, probeHost(rel.Spec, service)
	return is, nil
}

func mountsFor(sp *spec.Spec, svc string) []runtime.Mount {
	var out []runtime.Mount
	for _, v := range sp.VolumesFor(svc) {
		out = append(out, runtime.Mount{Name: v.Name, Target: v.Mount, Driver: v.Driver, DriverOpts: v.DriverOpts})
	}
	for _, f := range sp.FilesFor(svc) {
		out = append(out, runtime.Mount{Name: f.Name, Target: f.Path})
	}
	return out
}

// placementOf turns the spec's placement into the runtime's.
func placementOf(p *spec.Placement) *runtime.Placement {
	if p == nil {
		return nil
	}
	rp := &runtime.Placement{Constraints: p.Constraints}
	if p.Spread != "" {
		rp.Spread = []string{p.Spread}
	}
	return rp
}
