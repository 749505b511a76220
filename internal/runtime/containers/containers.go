// Package containers is what the docker and swarm runtimes share about the
// Docker objects they make (containers, services, networks, volumes): the
// moorage.* labels on them, their names, which of them a runtime owns,
// reading an instance back from its labels, and the spec rules and stop
// settings of an instance that runs in a container.
//
// It is apart from package seam, which every runtime shares (the process
// runtime too) and which knows no container engine. This package knows
// Docker's objects (their labels, names and list filters) but talks to no
// engine: how a container or a service is made and watched stays in each
// runtime.
package containers

import (
	"fmt"
	"math"
	"path"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/moby/moby/client"
	"golang.org/x/sys/unix"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/runtime/seam"
)

// Labels on everything the docker and swarm runtimes create.
const (
	LabelPrefix   = "moorage.prefix" // the runtime's prefix: who owns it
	LabelApp      = "moorage.app"
	LabelService  = "moorage.service"
	LabelRelease  = "moorage.release"
	LabelIndex    = "moorage.index"
	LabelKind     = "moorage.kind"
	LabelHash     = "moorage.hash"
	LabelInstance = "moorage.instance"
	LabelPort     = "moorage.port"
	LabelPublish  = "moorage.publish" // "1": the port is published
	LabelVolume   = "moorage.volume"  // a volume's name in the spec
)

// DefaultStopTimeout is the stop timeout of an instance whose spec sets
// none.
const DefaultStopTimeout = 10 * time.Second

var prefixRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,39}$`)

// ValidPrefix checks the prefix of runtime runtimeName ("docker", "swarm").
func ValidPrefix(runtimeName, prefix string) error {
	if !prefixRE.MatchString(prefix) {
		return fmt.Errorf("%s runtime: prefix %q: use lower-case letters, digits, '_', '.' and '-' (at most 40)", runtimeName, prefix)
	}
	return nil
}

// Names are the names of the objects of the runtime whose prefix is
// Prefix, and what tells them from others'.
type Names struct{ Prefix string }

// Instance is the name of instance id's container (docker) or service
// (swarm).
func (n Names) Instance(id string) string { return n.Prefix + "-" + id }

// Network is the name of app's network.
func (n Names) Network(app string) string { return n.Prefix + "-" + app }

// Volume is the name of app's volume called name in the spec.
func (n Names) Volume(app, name string) string { return n.Prefix + "_" + app + "_" + name }

// Owned reports whether labels mark an object of this runtime.
func (n Names) Owned(labels map[string]string) bool { return labels[LabelPrefix] == n.Prefix }

// Filter selects the runtime's objects in an engine's list.
func (n Names) Filter() client.Filters {
	return client.Filters{}.Add("label", LabelPrefix+"="+n.Prefix)
}

// Labels are the labels of instance s's container or service: the
// runtime's prefix, s's names, index, kind and hash, and its port when it
// has one. Each runtime adds its own (LabelPublish, swarm's moorage.single).
func (n Names) Labels(s *runtime.InstanceSpec) map[string]string {
	l := map[string]string{
		LabelPrefix:   n.Prefix,
		LabelApp:      s.App,
		LabelService:  s.Service,
		LabelRelease:  s.Release,
		LabelIndex:    strconv.Itoa(s.Index),
		LabelKind:     string(s.Kind),
		LabelHash:     s.Hash,
		LabelInstance: s.ID(),
	}
	if s.Port > 0 {
		l[LabelPort] = strconv.Itoa(s.Port)
	}
	return l
}

// Instance reads an instance back from the labels Names.Labels put on it:
// its id, names, index, kind and hash, and its port (0: none). Its state
// is the runtime's to tell.
func Instance(l map[string]string) runtime.Instance {
	idx, _ := strconv.Atoi(l[LabelIndex])
	in := runtime.Instance{
		ID:      l[LabelInstance],
		App:     l[LabelApp],
		Service: l[LabelService],
		Release: l[LabelRelease],
		Index:   idx,
		Kind:    runtime.Kind(l[LabelKind]),
		Hash:    l[LabelHash],
	}
	if port, _ := strconv.Atoi(l[LabelPort]); port > 0 {
		in.Port = port
	}
	return in
}

// ValidateSpec is seam.ValidateSpec (host paths allowed) and what every
// container needs: a port to publish, absolute mount targets. mount, when
// not nil, checks what the runtime needs more of each mount, once its
// target passed.
func ValidateSpec(s *runtime.InstanceSpec, mount func(runtime.Mount) error) error {
	if err := seam.ValidateSpec(s, true); err != nil {
		return err
	}
	if s.Publish && s.Port == 0 {
		return fmt.Errorf("%s: publishing needs a container port: %w", s.ID(), runtime.ErrInvalidSpec)
	}
	for _, m := range s.Mounts {
		if !path.IsAbs(m.Target) {
			return fmt.Errorf("%s: mount target %q is not an absolute path: %w", s.ID(), m.Target, runtime.ErrInvalidSpec)
		}
		if mount != nil {
			if err := mount(m); err != nil {
				return err
			}
		}
	}
	return nil
}

// Hostname is the host name of instance id's container: the id, cut to a
// DNS label.
func Hostname(id string) string {
	if len(id) > 63 {
		id = id[:63]
	}
	return strings.TrimRight(id, "-")
}

// Stop is how instance s's container stops: the name of its stop signal
// (SIGTERM when s sets none; the number when the signal has no name) and
// its stop timeout in whole seconds, rounded up (DefaultStopTimeout when s
// sets none).
func Stop(s *runtime.InstanceSpec) (signal string, secs int) {
	sig := s.StopSignal
	if sig == 0 {
		sig = syscall.SIGTERM
	}
	timeout := s.StopTimeout
	if timeout <= 0 {
		timeout = DefaultStopTimeout
	}
	signal = unix.SignalName(sig)
	if signal == "" {
		signal = strconv.Itoa(int(sig))
	}
	return signal, int(math.Ceil(timeout.Seconds()))
}

// NumericUser parses an image or spec user "uid[:gid]" (the gid defaults
// to the uid); -1 for what is not numeric ("" and "root" are root).
func NumericUser(u string) (uid, gid int) {
	if u == "" {
		return 0, 0
	}
	us, gs, hasGroup := strings.Cut(u, ":")
	uid, err := strconv.Atoi(us)
	if err != nil {
		if us == "root" {
			uid = 0
		} else {
			return -1, -1
		}
	}
	gid = uid
	if hasGroup {
		if gid, err = strconv.Atoi(gs); err != nil {
			gid = uid
		}
	}
	return uid, gid
}
