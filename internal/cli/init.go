package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/spf13/cobra"

	"github.com/moorage/moorage/internal/spec"
)

func newInitCmd(g *globals) *cobra.Command {
	var force bool
	var cf composeFlags
	cmd := &cobra.Command{
		Use:   "init [DIR]",
		Short: "Write a starter moorage.yaml for the app in DIR (default .), or one equivalent to compose files (--from)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(cf.files) > 0 {
				if len(args) > 0 {
					return fmt.Errorf("with --from, moorage.yaml is written next to the first compose file; drop %s", args[0])
				}
				return initFromCompose(cmd, g, &cf, force)
			}
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			abs, err := filepath.Abs(dir)
			if err != nil {
				return err
			}
			p := filepath.Join(abs, "moorage.yaml")
			if _, err := os.Stat(p); err == nil && !force {
				return fmt.Errorf("%s exists; use --force to overwrite it", p)
			}
			app := g.app
			if app == "" {
				app = appNameFrom(filepath.Base(abs))
			}
			text := starterSpec(abs, app)
			if _, err := spec.Parse(p, []byte(text)); err != nil {
				return fmt.Errorf("internal error: the starter spec does not parse: %w", err)
			}
			if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "wrote %s for app %q; edit it, then run `moorage up` or `moorage deploy`\n", p, app)
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "overwrite an existing moorage.yaml")
	cf.add(cmd, "from", "", "write the moorage.yaml equivalent to this docker compose file (repeatable, merged in order)")
	return cmd
}

var nonName = regexp.MustCompile(`[^a-z0-9-]+`)

// appNameFrom turns a directory name into a valid app name.
func appNameFrom(s string) string {
	s = nonName.ReplaceAllString(strings.ToLower(s), "-")
	s = strings.Trim(s, "-")
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		s = "app-" + s
	}
	if len(s) > 63 {
		s = strings.TrimRight(s[:63], "-")
	}
	return s
}

func exists(dir, name string) bool {
	_, err := os.Stat(filepath.Join(dir, name))
	return err == nil
}

func starterSpec(dir, app string) string {
	if project := djangoProject(dir); project != "" {
		return djangoSpec(dir, app, project)
	}
	if exists(dir, "Gemfile") && exists(dir, filepath.Join("config", "application.rb")) {
		return railsSpec(dir, app)
	}
	var build, web string
	runtime := "process"
	switch {
	case exists(dir, "Dockerfile"):
		runtime = "docker"
		build = "build:\n  dockerfile: Dockerfile\n"
		web = "    command: ./server   # the image's entrypoint is used when you remove this line\n    port: 8080\n"
	case exists(dir, "go.mod"):
		build = "build:\n  command: go build -o server .\n"
		web = "    command: ./server\n"
	case exists(dir, "package.json"):
		build = "build:\n  command: npm ci --omit=dev\n"
		web = "    command: npm start\n"
	case exists(dir, "requirements.txt"):
		build = "build:\n  command: python3 -m venv .venv && .venv/bin/pip install -r requirements.txt\n"
		web = "    command: .venv/bin/gunicorn app:app -b 127.0.0.1:$PORT\n"
	default:
		web = "    command: ./server\n"
	}
	if strings.Contains(build, "&&") {
		build = "build:\n  command: sh -c \"python3 -m venv .venv && .venv/bin/pip install -r requirements.txt\"\n"
	}
	return fmt.Sprintf(`# moorage.yaml: how moorage deploys %[1]s. Reference: docs/spec.md
app: %[1]s
runtime: %[2]s
%[3]s
# Release tasks run once per deploy, in the new release, before any traffic moves.
# release:
#   - ./server migrate

services:
  web:
%[4]s    replicas: 2
    health: {path: /healthz}     # the new release gets traffic only once this answers 2xx
    # http: {hosts: [example.com], tls: auto}
  # worker:
  #   command: ./server worker

# volumes:
#   data: {mount: /app/data}

deploy:
  monitor: 10s                   # a crash or failed health check in this window rolls back
`, app, runtime, build, web)
}
