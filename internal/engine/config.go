package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/moorage/moorage/internal/api"
	"github.com/moorage/moorage/internal/plan"

	"github.com/moorage/moorage/internal/spec"
	"github.com/moorage/moorage/internal/store"
)

// Sentinel errors of config changes.
var (
	// ErrNoSecrets is returned when a secret is set on a server without a
	// key.
	ErrNoSecrets = errors.New("this server has no secrets key")
	// ErrPlainSecret is returned when a secret would become a plain value.
	ErrPlainSecret = errors.New("a secret cannot become a plain value")
)

// ConfigVar is a config value as `moorage config` lists it (internal/api).
type ConfigVar = api.ConfigVar

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
	DryRun bool // print the plan, change nothing
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
	return e.operate(ctx, op, operation{
		App: req.App, Owner: req.Owner, Lock: "config change", Wait: req.Wait, DryRun: req.DryRun, RefuseStopped: true,
		Check: func(context.Context) error {
			if err := spec.CheckName(req.App); err != nil {
				return fmt.Errorf("app %w", err)
			}
			return nil
		},
		// Config can be set before the first deploy (secrets a spec
		// declares must be): the app is created here then.
		Create:  spec.RuntimeProcess,
		LoadErr: func(err error) error { return fmt.Errorf("config of %s: %w", req.App, err) },
		Decide: func(ctx context.Context, op *Op, l *loaded) (*execInput, string, error) {
			return e.decideConfig(ctx, op, req, set, names, l)
		},
	})
}

// decideConfig is a config change's part of the operation: staged, it
// records the change and runs nothing; rolled out, a new release of the
// active artifact with the new config.
func (e *Engine) decideConfig(ctx context.Context, op *Op, req ConfigRequest, set []store.ConfigVar, names []string, l *loaded) (*execInput, string, error) {
	a, cur := l.App, l.Active
	have, err := e.st.GetConfig(ctx, req.App)
	if err != nil {
		return nil, "", err
	}
	var declared *spec.Spec
	if cur != nil {
		declared = cur.Spec
	}
	if err := checkChange(have, set, req.Unset, declared); err != nil {
		return nil, "", err
	}
	var parts []string
	if len(names) > 0 {
		parts = append(parts, "config set "+strings.Join(names, " "))
	}
	if len(req.Unset) > 0 {
		parts = append(parts, "config unset "+strings.Join(req.Unset, " "))
	}
	cause := strings.Join(parts, "; ")
	if !req.Deploy || cur == nil {
		if l.DryRun {
			op.emit(Event{Type: EventInfo, Text: cause + ": would be staged for the next deploy; dry run, nothing changes"})
			return nil, StatusPlanned, nil
		}
		if err := e.st.SetConfig(ctx, req.App, set, req.Unset); err != nil {
			return nil, "", err
		}
		op.emit(Event{Type: EventInfo, Text: cause + ": staged; the next deploy uses it"})
		return nil, store.DeploySucceeded, nil
	}
	// Rolled out: the store's config changes only when the new release
	// becomes active (adoptConfig, at its activation or, after a crash,
	// at recovery). A release that fails leaves the config as it was, so
	// neither `moorage config` nor the next deploy sees the failed values.
	next := applyChange(have, set, req.Unset)
	if missing, plain := checkSecrets(cur.Spec, next); len(missing) > 0 {
		return nil, "", fmt.Errorf("the moorage.yaml of %s declares %s as secrets, so a release without them cannot roll out; stage the change with --no-deploy, then deploy a moorage.yaml that no longer lists them",
			cur.ID(), strings.Join(missing, ", "))
	} else if len(plain) > 0 {
		return nil, "", fmt.Errorf("the moorage.yaml of %s %s", cur.ID(), secretsProblem(nil, plain))
	}
	cfg := configOf(next)
	rt, err := e.Runtime(cur.Runtime)
	if err != nil {
		return nil, "", err
	}
	src := cur.Version
	if cur.Source != 0 {
		src = cur.Source
	}
	rel := &store.Release{
		App: req.App, Cause: cause, Runtime: cur.Runtime, Artifact: cur.Artifact,
		Spec: cur.Spec, SpecYAML: cur.SpecYAML, Config: cfg,
		Formation: plan.Formation(cur.Spec, a.Formation), Source: src, Commit: cur.Commit,
	}
	return &execInput{
		app: a, kind: store.KindConfig, owner: req.Owner, rt: rt,
		target: rel, from: cur, scale: a.Formation,
	}, "", nil
}

// checkChange refuses a config change that would turn a secret into a
// plain value: a plain value over a secret, or a plain value for a name
// the active release's spec (sp, nil before the first deploy) declares a
// secret. Unset keys must exist.
func checkChange(have, set []store.ConfigVar, unset []string, sp *spec.Spec) error {
	known := map[string]store.ConfigVar{}
	for _, v := range have {
		known[v.Key] = v
	}
	for _, k := range unset {
		if _, ok := known[k]; !ok {
			return fmt.Errorf("%s is not set (see `moorage config`)", k)
		}
	}
	declared := map[string]bool{}
	if sp != nil {
		for _, k := range sp.SecretNames() {
			declared[k] = true
		}
	}
	for _, v := range set {
		if v.Secret {
			continue
		}
		if old, ok := known[v.Key]; ok && old.Secret && !slices.Contains(unset, v.Key) {
			return fmt.Errorf("%w: %s is a secret; set it with `moorage config set --secret %s`, or, to make it a plain value, remove it first with `moorage config unset %s`",
				ErrPlainSecret, v.Key, v.Key, v.Key)
		}
		if declared[v.Key] {
			return fmt.Errorf("%w: moorage.yaml declares %s a secret; set it with `moorage config set --secret %s`",
				ErrPlainSecret, v.Key, v.Key)
		}
	}
	return nil
}

// applyChange returns have with set and unset applied, by key.
func applyChange(have, set []store.ConfigVar, unset []string) []store.ConfigVar {
	byKey := map[string]store.ConfigVar{}
	for _, v := range have {
		byKey[v.Key] = v
	}
	for _, k := range unset {
		delete(byKey, k)
	}
	for _, v := range set {
		byKey[v.Key] = v
	}
	out := make([]store.ConfigVar, 0, len(byKey))
	for _, v := range byKey {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// configOf is the release snapshot of config values.
func configOf(vars []store.ConfigVar) store.Config {
	cfg := store.Config{}
	for _, v := range vars {
		if v.Secret {
			if cfg.Secrets == nil {
				cfg.Secrets = map[string][]byte{}
			}
			cfg.Secrets[v.Key] = v.Value
		} else {
			if cfg.Env == nil {
				cfg.Env = map[string]string{}
			}
			cfg.Env[v.Key] = string(v.Value)
		}
	}
	return cfg
}

// configDiff is what changes from one release's config to another's: the
// values to set (plain or sealed, as in to) and the keys to remove.
func configDiff(from, to store.Config) (set []store.ConfigVar, unset []string) {
	for k, v := range to.Env {
		if old, ok := from.Env[k]; !ok || old != v {
			set = append(set, store.ConfigVar{Key: k, Value: []byte(v)})
		}
	}
	for k, v := range to.Secrets {
		if old, ok := from.Secrets[k]; !ok || !bytes.Equal(old, v) {
			set = append(set, store.ConfigVar{Key: k, Value: v, Secret: true})
		}
	}
	for k := range from.Env {
		if _, ok := to.Env[k]; !ok {
			if _, ok := to.Secrets[k]; !ok {
				unset = append(unset, k)
			}
		}
	}
	for k := range from.Secrets {
		if _, ok := to.Secrets[k]; !ok {
			if _, ok := to.Env[k]; !ok {
				unset = append(unset, k)
			}
		}
	}
	sort.Slice(set, func(i, j int) bool { return set[i].Key < set[j].Key })
	sort.Strings(unset)
	return set, unset
}

// adoptConfig makes the app's config (what `moorage config` shows and the
// next deploy uses) follow rel, which just became active in place of
// from: the values that differ between them are set as in rel. A config
// change is stored only here, so one whose release fails never shows; a
// rollback brings its release's config back for later deploys too. Values
// staged with --no-deploy for other keys stay staged. It is idempotent:
// recovery calls it again for a deploy a crash interrupted after its
// cutover.
func (e *Engine) adoptConfig(ctx context.Context, from, rel *store.Release) error {
	var base store.Config
	if from != nil {
		if from.Version == rel.Version {
			return nil
		}
		base = from.Config
	}
	set, unset := configDiff(base, rel.Config)
	if len(set)+len(unset) == 0 {
		return nil
	}
	if err := e.st.SetConfig(ctx, rel.App, set, unset); err != nil {
		return fmt.Errorf("record the config of %s: %w", rel.ID(), err)
	}
	return nil
}

// checkSecretsSet refuses a deploy whose spec declares secrets that are not
// set, or set as plain values, before anything is built.
func (e *Engine) checkSecretsSet(ctx context.Context, sp *spec.Spec) error {
	if len(sp.SecretNames()) == 0 {
		return nil
	}
	vars, err := e.st.GetConfig(ctx, sp.App)
	if err != nil {
		return err
	}
	if missing, plain := checkSecrets(sp, vars); len(missing)+len(plain) > 0 {
		return fmt.Errorf("moorage.yaml %s", secretsProblem(missing, plain))
	}
	return nil
}

// checkSecrets returns the secrets sp declares that vars does not hold,
// and those it holds as plain values.
func checkSecrets(sp *spec.Spec, vars []store.ConfigVar) (missing, plain []string) {
	have := map[string]store.ConfigVar{}
	for _, v := range vars {
		have[v.Key] = v
	}
	for _, k := range sp.SecretNames() {
		v, ok := have[k]
		switch {
		case !ok:
			missing = append(missing, k)
		case !v.Secret:
			plain = append(plain, k)
		}
	}
	return missing, plain
}

// secretsProblem says what is wrong with a spec's secrets and how to fix
// it, naming variables, never values.
func secretsProblem(missing, plain []string) string {
	var parts []string
	if len(missing) > 0 {
		parts = append(parts, fmt.Sprintf("declares secrets that are not set: %s; set them with `moorage config set --secret %s=...` (or from stdin: `moorage config set --secret %s < file`)",
			strings.Join(missing, ", "), missing[0], missing[0]))
	}
	if len(plain) > 0 {
		parts = append(parts, fmt.Sprintf("declares secrets that are set as plain values (shown by `moorage config`): %s; make them secrets with `moorage config set --secret %s` (the value from stdin), which replaces the plain value",
			strings.Join(plain, ", "), plain[0]))
	}
	return strings.Join(parts, "; it also ")
}
