package engine

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/moorage/moorage/internal/spec"
	"github.com/moorage/moorage/internal/store"
)

// ErrNoSecrets is returned when a secret is set on a server without a key.
var ErrNoSecrets = errors.New("this server has no secrets key")

// ConfigVar is a config value as `moorage config` lists it: a secret's
// value is never returned.
type ConfigVar struct {
	Key    string `json:"key"`
	Value  string `json:"value,omitempty"`
	Secret bool   `json:"secret,omitempty"`
}

// ConfigRequest changes an app's config.
type ConfigRequest struct {
	App     string
	Set     map[string]string // plain values
	Secrets map[string]string // sealed before they are stored
	Unset   []string
	// Deploy rolls the change out as a new release of the active artifact
	// (the normal health-gated path); false only stages it for the next
	// deploy.
	Deploy bool
	Owner  string
	Wait   bool
}

// Config lists app's config values, secrets masked.
func (e *Engine) Config(ctx context.Context, app string) ([]ConfigVar, error) {
	if _, err := e.st.GetApp(ctx, app); err != nil {
		return nil, err
	}
	vars, err := e.st.GetConfig(ctx, app)
	if err != nil {
		return nil, err
	}
	out := []ConfigVar{}
	for _, v := range vars {
		cv := ConfigVar{Key: v.Key, Secret: v.Secret}
		if !v.Secret {
			cv.Value = string(v.Value)
		}
		out = append(out, cv)
	}
	return out, nil
}

// ChangeConfig sets and unsets config values and, unless staged, rolls the
// change out as a new release. Secret values are sealed before anything is
// stored, and never appear in events, errors or the journal: only their
// names do.
func (e *Engine) ChangeConfig(req ConfigRequest) *Op {
	return e.start(func(ctx context.Context, op *Op) (string, error) {
		return e.changeConfig(ctx, op, req)
	})
}

func (e *Engine) changeConfig(ctx context.Context, op *Op, req ConfigRequest) (string, error) {
	var set []store.ConfigVar
	var names []string
	for k, v := range req.Set {
		if err := spec.CheckEnvKey(k); err != nil {
			return store.DeployFailed, err
		}
		set = append(set, store.ConfigVar{Key: k, Value: []byte(v)})
		names = append(names, k)
	}
	for k, v := range req.Secrets {
		if err := spec.CheckEnvKey(k); err != nil {
			return store.DeployFailed, err
		}
		if _, dup := req.Set[k]; dup {
			return store.DeployFailed, fmt.Errorf("%s is given both as a value and as a secret", k)
		}
		if e.secrets == nil {
			return store.DeployFailed, ErrNoSecrets
		}
		sealed, err := e.secrets.Seal(req.App, k, []byte(v))
		if err != nil {
			return store.DeployFailed, fmt.Errorf("seal %s: %w", k, err)
		}
		set = append(set, store.ConfigVar{Key: k, Value: sealed, Secret: true})
		names = append(names, k)
	}
	for _, k := range req.Unset {
		if err := spec.CheckEnvKey(k); err != nil {
			return store.DeployFailed, err
		}
	}
	if len(set)+len(req.Unset) == 0 {
		return store.DeployFailed, errors.New("nothing to change: give KEY=VALUE pairs to set, or keys to unset")
	}
	sort.Strings(names)
	unlock, err := e.lock(ctx, op, req.App, req.Owner, "config change", req.Wait)
	if err != nil {
		return store.DeployFailed, err
	}
	defer unlock()
	if err := spec.CheckName(req.App); err != nil {
		return store.DeployFailed, fmt.Errorf("app %w", err)
	}
	// Config can be set before the first deploy (secrets a spec declares
	// must be): the app is created here then.
	a, err := e.st.EnsureApp(ctx, req.App, spec.RuntimeProcess)
	if err != nil {
		return store.DeployFailed, fmt.Errorf("config of %s: %w", req.App, err)
	}
	if req.Unset != nil {
		have, err := e.st.GetConfig(ctx, req.App)
		if err != nil {
			return store.DeployFailed, err
		}
		known := map[string]bool{}
		for _, v := range have {
			known[v.Key] = true
		}
		for _, k := range req.Unset {
			if !known[k] {
				return store.DeployFailed, fmt.Errorf("%s is not set (see `moorage config`)", k)
			}
		}
	}
	if err := e.st.SetConfig(ctx, req.App, set, req.Unset); err != nil {
		return store.DeployFailed, err
	}
	var parts []string
	if len(names) > 0 {
		parts = append(parts, "config set "+strings.Join(names, " "))
	}
	if len(req.Unset) > 0 {
		parts = append(parts, "config unset "+strings.Join(req.Unset, " "))
	}
	cause := strings.Join(parts, "; ")
	if !req.Deploy || a.Current == 0 {
		op.emit(Event{Type: EventInfo, Text: cause + ": staged; the next deploy uses it"})
		return store.DeploySucceeded, nil
	}
	cur, err := e.st.GetRelease(ctx, req.App, a.Current)
	if err != nil {
		return store.DeployFailed, err
	}
	rt, err := e.Runtime(cur.Runtime)
	if err != nil {
		return store.DeployFailed, err
	}
	cfg, err := e.configSnapshot(ctx, req.App)
	if err != nil {
		return store.DeployFailed, err
	}
	src := cur.Version
	if cur.Source != 0 {
		src = cur.Source
	}
	rel := &store.Release{
		App: req.App, Cause: cause, Runtime: cur.Runtime, Artifact: cur.Artifact,
		Spec: cur.Spec, SpecYAML: cur.SpecYAML, Config: cfg,
		Formation: formation(cur.Spec, a.Formation), Source: src,
	}
	return e.run(ctx, op, runInput{
		app: a, kind: store.KindConfig, owner: req.Owner, rt: rt,
		target: rel, from: cur, scale: a.Formation,
	})
}

// checkSecretsSet refuses a deploy whose spec declares secrets that are not
// set, before anything is built.
func (e *Engine) checkSecretsSet(ctx context.Context, sp *spec.Spec) error {
	if len(sp.Secrets) == 0 {
		return nil
	}
	vars, err := e.st.GetConfig(ctx, sp.App)
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, v := range vars {
		have[v.Key] = true
	}
	var missing []string
	for _, k := range sp.Secrets {
		if !have[k] {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("moorage.yaml declares secrets that are not set: %s; set them with `moorage config set --secret %s=...` (or from stdin: `moorage config set --secret %s < file`)",
			strings.Join(missing, ", "), missing[0], missing[0])
	}
	return nil
}
