package spec

import "syscall"

// applyDefaults fills in what the spec leaves out. Only keys the spec does
// not set are filled: an explicit value, even a zero, is kept and validated.
func (d *decoder) applyDefaults(s *Spec) {
	if !d.given("runtime") && !d.override {
		s.Runtime = RuntimeProcess
		if s.Image != "" || (s.Build != nil && s.Build.Dockerfile != "") {
			s.Runtime = RuntimeDocker
		}
	}
	if s.Image == "" && s.Build == nil {
		s.Build = &Build{}
	}
	if b := s.Build; b != nil {
		if !d.given("build.workdir") {
			b.Workdir = DefaultWorkdir
		}
		if ContainerRuntime(s.Runtime) && !d.given("build.dockerfile") {
			b.Dockerfile = "Dockerfile"
		}
	}

	dep := &s.Deploy
	if !d.given("deploy.monitor") {
		dep.Monitor = DefaultMonitor
	}
	if !d.given("deploy.drain_timeout") {
		dep.DrainTimeout = DefaultDrainTimeout
	}
	if !d.given("deploy.release_timeout") {
		dep.ReleaseTimeout = DefaultReleaseTimeout
	}
	if !d.given("deploy.keep_releases") {
		dep.KeepReleases = DefaultKeepReleases
	}
	if !d.given("deploy.keep_warm") {
		dep.KeepWarm = DefaultKeepWarm
	}
	var tests []Task
	if s.Test != nil {
		tests = s.Test.Commands
	}
	for _, list := range []struct {
		p     string
		tasks []Task
	}{{"release", s.Release}, {"checks", s.Checks}, {"test.commands", tests}} {
		for i := range list.tasks {
			if !d.given(index(list.p, i) + ".timeout") {
				list.tasks[i].Timeout = dep.ReleaseTimeout
			}
		}
	}

	for name, svc := range s.Services {
		p := "services." + name
		if !d.given(p + ".replicas") {
			svc.Replicas = DefaultReplicas
		}
		if svc.HTTP == nil && name == "web" && !d.given(p+".http") {
			svc.HTTP = &HTTP{}
		}
		if h := svc.HTTP; h != nil {
			q := p + ".http"
			if !d.given(q + ".path") {
				h.Path = "/"
			}
			if !d.given(q + ".tls") {
				h.TLS = TLS{Mode: TLSOff}
			}
			if !d.given(q + ".hold_timeout") {
				h.HoldTimeout = DefaultHoldTimeout
			}
			if ContainerRuntime(s.Runtime) && !d.given(p+".port") {
				svc.Port = DefaultDockerPort
			}
			if svc.Health == nil {
				svc.Health = &Health{TCP: true, Implied: true}
			}
		}
		if svc.Health != nil {
			d.defaultHealth(svc.Health, p+".health")
		}
		if !d.given(p + ".min_ready") {
			svc.MinReady = DefaultMinReady
		}
		if !d.given(p + ".stop_signal") {
			svc.StopSignal = Signal(syscall.SIGTERM)
		}
		if !d.given(p + ".stop_timeout") {
			svc.StopTimeout = DefaultStopTimeout
		}
	}

	for name, a := range s.Accessories {
		p := "accessories." + name
		if a.Health != nil {
			d.defaultHealth(a.Health, p+".health")
		}
		if !d.given(p + ".stop_signal") {
			a.StopSignal = Signal(syscall.SIGTERM)
		}
		if !d.given(p + ".stop_timeout") {
			a.StopTimeout = DefaultStopTimeout
		}
	}

	if !d.given("logs.max_age") {
		s.Logs.MaxAge = DefaultLogMaxAge
	}
	if !d.given("logs.max_size") {
		s.Logs.MaxSize = DefaultLogMaxSize
	}
	if b := s.Backups; b != nil && !d.given("backups.keep") {
		b.Keep = DefaultBackupKeep
	}
}

func (d *decoder) defaultHealth(h *Health, p string) {
	if !d.given(p + ".interval") {
		h.Interval = DefaultHealthInterval
	}
	if !d.given(p + ".timeout") {
		h.Timeout = DefaultHealthTimeout
	}
	if !d.given(p + ".start_period") {
		h.StartPeriod = DefaultStartPeriod
	}
	if !d.given(p + ".retries") {
		h.Retries = DefaultHealthRetries
	}
}
