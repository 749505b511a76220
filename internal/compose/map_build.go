// The release's image (build or image:) and its release tasks.

package compose

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/moorage/moorage/internal/spec"
)

// artifact picks the one image or build every service and release task
// runs: moorage deploys one artifact per app.
func (m *mapper) artifact(names []string) {
	var builder, imager string // first service with build / with image only
	var build *types.BuildConfig
	var image string
	for _, n := range names {
		if r := m.role[n]; r != RoleService && r != RoleRelease {
			continue
		}
		s := m.p.Services[n]
		base := "services." + n
		if s.Build != nil {
			if build == nil {
				builder, build = n, s.Build
				if s.Image != "" {
					image = s.Image
				}
				continue
			}
			if !sameBuild(build, s.Build) {
				m.errf(base+".build", "builds differently from service %s: moorage deploys one image per app, which every service and release task runs; make the builds the same (use command: to vary what runs), or deploy this service as another app", builder)
			}
			continue
		}
		if s.Image == "" {
			m.errf(base, "has neither image nor build")
			continue
		}
		if build != nil && s.Image == image {
			continue
		}
		if imager == "" && build == nil {
			imager, image = n, s.Image
			continue
		}
		if s.Image != image {
			other := imager
			if other == "" {
				other = builder
			}
			m.errf(base+".image", "runs %s while service %s runs %s: moorage deploys one image per app, which every service and release task runs; if %s is a database or cache, mark it x-moorage: {role: accessory}, else deploy it as another app", s.Image, other, image, n)
		}
	}
	// services with image only, seen before the build, must name its image
	if build != nil && imager != "" && image != m.p.Services[imager].Image {
		m.errf("services."+imager+".image", "runs %s while service %s builds its own image: moorage deploys one image per app; give %s the same build, or set image: on %s to %s", m.p.Services[imager].Image, builder, imager, builder, m.p.Services[imager].Image)
	}
	if build == nil {
		if image != "" {
			m.out.Image = image
		}
		return
	}
	base := "services." + builder + ".build"
	ctx := build.Context
	if ctx == "" {
		ctx = m.dir
	}
	if !filepath.IsAbs(ctx) {
		ctx = filepath.Join(m.dir, ctx)
	}
	if strings.Contains(build.Context, "://") {
		m.errf(base+".context", "a remote build context (%s) is not supported: moorage builds from the uploaded project directory", build.Context)
		return
	}
	if rel, err := filepath.Rel(m.dir, ctx); err != nil || rel != "." {
		m.errf(base+".context", "moorage uploads the project directory (%s) and builds from its root; the context %s is elsewhere: put the compose file in the build context, or set context: .", m.dir, build.Context)
	}
	if build.DockerfileInline != "" {
		m.errf(base+".dockerfile_inline", "inline Dockerfiles are not supported: write it to a file in the project and set dockerfile:")
	}
	b := &outBuild{Target: build.Target}
	if build.Dockerfile != "" && build.Dockerfile != "Dockerfile" {
		b.Dockerfile = filepath.ToSlash(build.Dockerfile)
	}
	for _, k := range sortedNames(build.Args) {
		v := build.Args[k]
		if v == nil {
			m.warnf(base+".args", "build arg %s has no value in the environment: left out", k)
			continue
		}
		if b.Args == nil {
			b.Args = map[string]string{}
		}
		b.Args[k] = *v
	}
	for _, k := range []string{"ssh", "secrets", "additional_contexts", "cache_from", "cache_to", "platforms", "network", "extra_hosts", "tags", "labels", "pull", "no_cache", "shm_size", "isolation", "privileged", "entitlements", "ulimits"} {
		if slices.Contains(m.src.keys(base), k) {
			m.warnf(base+"."+k, "not supported in moorage's build: ignored")
		}
	}
	m.out.Build = b
}

func sameBuild(a, b *types.BuildConfig) bool {
	if a.Context != b.Context || a.Dockerfile != b.Dockerfile || a.Target != b.Target || len(a.Args) != len(b.Args) {
		return false
	}
	for k, v := range a.Args {
		w, ok := b.Args[k]
		if !ok || (v == nil) != (w == nil) || (v != nil && *v != *w) {
			return false
		}
	}
	return true
}

// command is what a compose service runs: entrypoint then command. It
// reports whether an entrypoint was set.
func command(s types.ServiceConfig) []string {
	var out []string
	out = append(out, s.Entrypoint...)
	out = append(out, s.Command...)
	return out
}

func (m *mapper) warnEntrypoint(n string) {
	if len(m.p.Services[n].Entrypoint) > 0 {
		m.warnf("services."+n+".entrypoint", "moorage has no entrypoint override: the entrypoint is put in front of the command, and the image's own ENTRYPOINT (if it has one) still runs first")
	}
}

// releaseTasks turns the one-shot services others wait for into release
// tasks, in dependency order.
func (m *mapper) releaseTasks(names []string, top topExt) {
	var tasks []string
	done := map[string]bool{}
	var visit func(n string)
	visit = func(n string) {
		if done[n] {
			return
		}
		done[n] = true
		for _, d := range sortedNames(m.p.Services[n].DependsOn) {
			if m.role[d] == RoleRelease {
				visit(d)
			}
		}
		tasks = append(tasks, n)
	}
	for _, n := range names {
		if m.role[n] == RoleRelease {
			visit(n)
		}
	}
	for i, n := range tasks {
		s := m.p.Services[n]
		base := "services." + n
		cmd := command(s)
		if len(cmd) == 0 {
			m.errf(base, "is a release task (others wait for it with condition: service_completed_successfully) but has no command: write the command it runs (command: ./manage.py migrate)")
			continue
		}
		m.warnEntrypoint(n)
		t := outTask{Command: cmd}
		if d, err := duration(m.ext[n].Timeout); err != nil {
			m.errf(base+"."+extKey+".timeout", "%v", err)
		} else {
			t.Timeout = fmtDuration(d)
		}
		if s.GetScale() > 1 {
			m.warnf(base+".deploy.replicas", "a release task runs once per deploy: replicas ignored")
		}
		if len(s.Ports) > 0 {
			m.warnf(base+".ports", "a release task is not routed: ports ignored")
		}
		for _, v := range s.Volumes {
			m.taskFiles[n] = append(m.taskFiles[n], m.volume(n, v, false)...)
		}
		m.out.Release = append(m.out.Release, t)
		why := "x-moorage: {role: release}"
		if by := m.completedBy(names)[n]; len(by) > 0 {
			why = "waited for by " + strings.Join(by, ", ")
		}
		m.mapped[n] = &Mapped{Compose: n, As: "release task", Name: n, Detail: fmt.Sprintf("%d of %d, once per deploy before traffic moves (%s): %s", i+1, len(tasks), why, shellJoin(cmd))}
	}
	for i, c := range top.Release {
		cmd, err := spec.SplitCommand(c)
		if err != nil {
			m.errf(extKey+".release", "item %d: %v", i+1, err)
			continue
		}
		m.out.Release = append(m.out.Release, outTask{Command: cmd})
	}
	for i, c := range top.Checks {
		cmd, err := spec.SplitCommand(c)
		if err != nil {
			m.errf(extKey+".checks", "item %d: %v", i+1, err)
			continue
		}
		m.out.Checks = append(m.out.Checks, outTask{Command: cmd})
	}
}

func shellJoin(argv []string) string {
	out := make([]string, len(argv))
	for i, a := range argv {
		if a == "" || strings.ContainsAny(a, " \t\"'$\\") {
			a = strconv.Quote(a)
		}
		out[i] = a
	}
	return strings.Join(out, " ")
}
