package plan

import (
	"fmt"
	"strings"
	"time"

	"github.com/moorage/moorage/internal/spec"
)

// Gate says when a started instance counts as ready.
type Gate struct {
	Kind     string        // "http", "tcp", "command", "min_ready", "image", "started"
	Path     string        // http
	Command  []string      // command
	Interval time.Duration // between checks
	Within   time.Duration // how long it may take (start_period, or min_ready)
	// Else is, for an "image" gate planned before the artifact is built,
	// the gate if the image turns out to have no HEALTHCHECK.
	Else *Gate
}

// Resolve is the gate for an instance of an artifact that has (or has not)
// a HEALTHCHECK taking up to wait: an "image" gate planned before the build
// becomes its Else when there is none.
func (g Gate) Resolve(healthcheck bool, wait time.Duration) Gate {
	if g.Kind != "image" {
		return g
	}
	if !healthcheck && g.Else != nil {
		return *g.Else
	}
	if g.Within <= 0 {
		g.Within = wait
		if g.Within <= 0 {
			g.Within = ImageHealthWait
		}
	}
	g.Else = nil
	return g
}

// watched is g for an instance the monitor window watches for crashes
// once it starts: staying up min_ready need not be waited before the
// window (it is the same test, longer); any other gate stays.
func (g Gate) watched(monitor time.Duration) Gate {
	if monitor <= 0 {
		return g
	}
	if g.Kind == "min_ready" {
		return Gate{Kind: "started"}
	}
	if g.Else != nil && g.Else.Kind == "min_ready" {
		g.Else = &Gate{Kind: "started"}
	}
	return g
}

func (g Gate) String() string {
	switch g.Kind {
	case "http":
		return "ready on http " + g.Path
	case "tcp":
		return "ready on tcp connect"
	case "started":
		return "watched by the monitor"
	case "image":
		if g.Else != nil {
			return "ready when the image's HEALTHCHECK passes if it has one, else " + g.Else.String()
		}
		return fmt.Sprintf("ready when the image's HEALTHCHECK passes (within %s)", g.Within)
	case "command":
		return "ready when `" + strings.Join(g.Command, " ") + "` passes"
	default:
		return fmt.Sprintf("ready after %s up", g.Within)
	}
}

// ImageHealthWait is how long an image's HEALTHCHECK may take when its
// artifact does not say (releases made before it did): Docker's defaults
// (30s interval and timeout, 3 retries) and some slack.
const ImageHealthWait = 250 * time.Second

// gateFor says when an instance of svc is ready: the health check its spec
// gives, else the image's own (docker HEALTHCHECK, for as long as that
// check's settings may take), else the check a routed service gets by
// default (TCP connect), else having stayed up min_ready.
func (t Target) gateFor(svc *spec.Service) Gate {
	own := serviceGate(svc)
	if svc.Health != nil && !svc.Health.Implied {
		return own
	}
	switch {
	case t.ArtifactPending && spec.ContainerRuntime(t.Spec.Runtime):
		// Built by this deploy: the start step resolves it (Gate.Resolve).
		return Gate{Kind: "image", Interval: spec.DefaultHealthInterval, Else: &own}
	case t.ImageHealthcheck:
		return Gate{Kind: "image", Interval: spec.DefaultHealthInterval}.Resolve(true, t.ImageHealthWait)
	}
	return own
}

func serviceGate(svc *spec.Service) Gate {
	h := svc.Health
	switch {
	case h != nil && h.Path != "":
		return Gate{Kind: "http", Path: h.Path, Interval: h.Interval, Within: h.StartPeriod}
	case h != nil && len(h.Command) > 0:
		return Gate{Kind: "command", Command: h.Command, Interval: h.Interval, Within: h.StartPeriod}
	case h != nil && h.TCP:
		return Gate{Kind: "tcp", Interval: h.Interval, Within: h.StartPeriod}
	}
	return Gate{Kind: "min_ready", Within: svc.MinReady}
}

// AccessoryGate says when a started accessory is ready: its health check,
// else a TCP connect to its port (hasAddr), else having stayed up a
// second. Its start is decided at execution (its address is known only
// then), so the executor asks this rather than the plan carrying it.
func AccessoryGate(h *spec.Health, hasAddr bool) Gate {
	switch {
	case h == nil && !hasAddr:
		return Gate{Kind: "min_ready", Within: time.Second}
	case h == nil:
		return Gate{Kind: "tcp", Interval: time.Second, Within: spec.DefaultStartPeriod}
	case h.Path != "":
		return Gate{Kind: "http", Path: h.Path, Interval: h.Interval, Within: h.StartPeriod}
	case len(h.Command) > 0:
		return Gate{Kind: "command", Command: h.Command, Interval: h.Interval, Within: h.StartPeriod}
	}
	return Gate{Kind: "tcp", Interval: h.Interval, Within: h.StartPeriod}
}

// HealthTimeout is how long one health probe of h may take.
func HealthTimeout(h *spec.Health) time.Duration {
	if h == nil || h.Timeout <= 0 {
		return spec.DefaultHealthTimeout
	}
	return h.Timeout
}
