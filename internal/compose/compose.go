// Package compose turns a docker compose project into a moorage spec.
//
// The compose files are read with compose-go (github.com/compose-spec/
// compose-go/v2), exactly as docker compose reads them: several -f files
// merged in order, profiles, .env and --env-file, interpolation, extends.
// The project is then mapped, service by service, to moorage.yaml (see
// docs/compose.md for every rule), and that text is parsed with spec.Parse
// like a hand-written spec. What moorage cannot honour is an error, and what
// it leaves out is a warning; both name the key, the file and the line.
package compose

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"go.yaml.in/yaml/v3"

	"github.com/moorage/moorage/internal/spec"
)

// SpecName is the name the generated spec is uploaded under by
// `moorage deploy -f`.
const SpecName = "moorage.compose.yaml"

// Options say which compose project to load.
type Options struct {
	Files    []string // -f files, merged in order; at least one
	Profiles []string // --profile
	EnvFiles []string // --env-file; default: .env in the project directory
	App      string   // the app's name; default x-moorage.app, else the project's name
	// Env is the environment interpolation sees; nil: the process's.
	Env []string
}

// Diag is an error or warning about one key of the compose files.
type Diag struct {
	Pos
	Key string `json:"key"` // dotted path: services.web.privileged
	Msg string `json:"msg"` // what is wrong and what to do
}

func (d Diag) String() string {
	loc := d.File
	if loc == "" {
		loc = "compose"
	}
	if d.Line > 0 {
		loc = fmt.Sprintf("%s:%d", loc, d.Line)
	}
	if d.Key == "" {
		return loc + ": " + d.Msg
	}
	return fmt.Sprintf("%s: %s: %s", loc, d.Key, d.Msg)
}

// Error lists everything in a compose project moorage cannot honour.
type Error struct{ Diags []Diag }

func (e *Error) Error() string {
	lines := make([]string, len(e.Diags))
	for i, d := range e.Diags {
		lines[i] = d.String()
	}
	if len(lines) == 1 {
		return lines[0]
	}
	return fmt.Sprintf("%d problems in the compose files:\n  %s", len(lines), strings.Join(lines, "\n  "))
}

// Mapped says what one compose service became.
type Mapped struct {
	Compose string `json:"compose"` // the compose service
	As      string `json:"as"`      // service, accessory, release task, skipped
	Name    string `json:"name"`    // its moorage name ("" when skipped)
	Detail  string `json:"detail"`
}

func (m Mapped) String() string {
	s := fmt.Sprintf("%s → %s", m.Compose, m.As)
	if m.Name != "" && m.As != "release task" {
		s += " " + m.Name
	}
	if m.Detail != "" {
		s += ": " + m.Detail
	}
	return s
}

// Result is a compose project mapped to moorage.
type Result struct {
	Dir      string     // the project directory: what a deploy uploads
	Files    []string   // the compose files, as given
	YAML     []byte     // the moorage.yaml
	Spec     *spec.Spec // YAML, parsed
	Services []Mapped   // in the order of the compose service names
	Warnings []Diag
}

// Load reads a compose project and maps it to a moorage spec.
func Load(ctx context.Context, o Options) (*Result, error) {
	if len(o.Files) == 0 {
		return nil, errors.New("no compose file: pass -f docker-compose.yaml")
	}
	for _, f := range o.Files {
		if fi, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("compose file: %w", err)
		} else if fi.IsDir() {
			return nil, fmt.Errorf("compose file %s is a directory: pass the file (-f %s)", f, filepath.Join(f, "docker-compose.yaml"))
		}
	}
	dir, err := filepath.Abs(filepath.Dir(o.Files[0]))
	if err != nil {
		return nil, err
	}
	opts := []cli.ProjectOptionsFn{cli.WithWorkingDirectory(dir)}
	if o.Env != nil {
		opts = append(opts, cli.WithEnv(o.Env))
	} else {
		opts = append(opts, cli.WithOsEnv)
	}
	opts = append(opts, cli.WithEnvFiles(o.EnvFiles...), cli.WithDotEnv, cli.WithProfiles(o.Profiles))
	// The project's name, as docker compose picks it: COMPOSE_PROJECT_NAME,
	// else the files' name:, else the directory's name; "app" when that
	// has no usable character.
	if loader.NormalizeProjectName(filepath.Base(dir)) == "" {
		opts = append(opts, cli.WithName(projectName(dir)))
	}
	po, err := cli.NewProjectOptions(o.Files, opts...)
	if err != nil {
		return nil, fmt.Errorf("compose: %w", err)
	}
	p, err := loadProject(ctx, po)
	if err != nil {
		return nil, fmt.Errorf("compose (%s): %w", strings.Join(o.Files, " + "), err)
	}
	m := &mapper{p: p, src: readSources(o.Files), dir: dir, app: o.App}
	res, err := m.run()
	if err != nil {
		return nil, err
	}
	res.Files = o.Files
	return res, nil
}

// loadProject runs compose-go, which must never take the CLI down.
func loadProject(ctx context.Context, po *cli.ProjectOptions) (p *types.Project, err error) {
	defer func() {
		if r := recover(); r != nil {
			p, err = nil, fmt.Errorf("the compose loader failed on this input (please report it): %v", r)
		}
	}()
	return po.LoadProject(ctx)
}

// projectName is compose's default project name for dir, made valid for
// compose-go (which refuses upper case and most punctuation).
func projectName(dir string) string {
	n := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		case r >= 'A' && r <= 'Z':
			return r + 'a' - 'A'
		}
		return -1
	}, filepath.Base(dir))
	n = strings.TrimLeft(n, "-_")
	if n == "" {
		n = "app"
	}
	return n
}

// appName turns a compose name into a moorage name: lower case, '-' for
// anything else, a letter first.
func appName(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	n := strings.Trim(b.String(), "-")
	for strings.Contains(n, "--") {
		n = strings.ReplaceAll(n, "--", "-")
	}
	if n == "" || n[0] < 'a' || n[0] > 'z' {
		n = "x-" + n
		n = strings.TrimRight(n, "-")
	}
	if len(n) > 63 {
		n = strings.TrimRight(n[:63], "-")
	}
	return n
}

// marshal writes the spec text with a header saying where it came from.
func marshal(o *outSpec, files []string) ([]byte, error) {
	var buf strings.Builder
	fmt.Fprintf(&buf, "# moorage.yaml written by moorage from %s.\n# Reference: docs/spec.md; how each compose key maps: docs/compose.md\n", strings.Join(files, " + "))
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(o); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return []byte(buf.String()), nil
}

func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
