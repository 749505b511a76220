package runtimetest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/spec"
)

// build builds the test program with rt, with build.command cmd.
func (s *suite) build(t *testing.T, rt runtime.Runtime, app string, cmd spec.Command, out *syncBuffer) (runtime.Artifact, error) {
	t.Helper()
	ctxDir, err := os.MkdirTemp(s.root, "context-")
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteApp(ctxDir); err != nil {
		t.Fatal(err)
	}
	sp := &spec.Spec{
		App:     app,
		Runtime: s.h.Name,
		Build:   &spec.Build{Command: cmd, Dockerfile: "Dockerfile", Workdir: spec.DefaultWorkdir},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	return rt.Build(ctx, runtime.BuildRequest{
		App:        app,
		Release:    "v1",
		ContextDir: ctxDir,
		Spec:       sp,
		Output:     out,
	})
}

func (s *suite) testBuild(t *testing.T) {
	rt := s.h.New(t, filepath.Join(s.root, "build"))
	defer rt.Close()
	var out syncBuffer
	start := time.Now()
	art, err := s.build(t, rt, appName(t), BuildCommand, &out)
	if err != nil {
		t.Fatalf("build: %v\noutput:\n%s", err, out.String())
	}
	t.Logf("built the test program in %s: %+v", time.Since(start).Round(time.Millisecond), art)
	if art.Runtime != s.h.Name || art.Ref == "" {
		t.Fatalf("artifact = %+v, want runtime %q and a ref", art, s.h.Name)
	}
	if ok, err := rt.ArtifactExists(context.Background(), art); err != nil || !ok {
		t.Fatalf("ArtifactExists = %v, %v; want true", ok, err)
	}
	s.art = art
}

func (s *suite) testBuildFailure(t *testing.T) {
	e := s.env(t)
	var out syncBuffer
	cmd := spec.Command{"sh", "-c", "echo build-broke-$MOORAGE_APP-$MOORAGE_RELEASE >&2; exit 3"}
	_, err := s.build(t, e.rt, e.app, cmd, &out)
	if !errors.Is(err, runtime.ErrBuild) {
		t.Fatalf("build error = %v, want ErrBuild", err)
	}
	if !strings.Contains(err.Error(), "3") {
		t.Errorf("build error %q does not give the exit status", err)
	}
	if want := "build-broke-" + e.app + "-v1"; !strings.Contains(out.String(), want) {
		t.Errorf("build output %q does not contain %q", out.String(), want)
	}
}

func (s *suite) testStartReady(t *testing.T) {
	e := s.env(t)
	sp := e.service("web", 1, "serve")
	in := e.start(sp)
	if in.ID != sp.ID() || in.App != e.app || in.Service != "web" || in.Release != "v1" || in.Index != 1 || in.Kind != runtime.KindService {
		t.Errorf("started instance = %+v, want the spec's identity", in)
	}
	if in.State != runtime.StateRunning || in.Addr == "" || in.Port == 0 {
		t.Errorf("started instance = %+v, want running with an address and port", in)
	}
	e.waitHTTP(in.Addr, "/health")

	got := e.instance(sp.ID())
	if got.State != runtime.StateRunning || got.Addr != in.Addr || got.Port != in.Port {
		t.Errorf("listed %+v, want running at %s", got, in.Addr)
	}
	if _, err := e.rt.Start(e.ctx, sp); !errors.Is(err, runtime.ErrExists) {
		t.Errorf("second start: %v, want ErrExists", err)
	}
	if err := e.rt.Stop(e.ctx, sp.ID()); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if _, err := e.rt.Start(e.ctx, sp); !errors.Is(err, runtime.ErrExists) {
		t.Errorf("start of a stopped instance: %v, want ErrExists", err)
	}
}

func (s *suite) testStartFailure(t *testing.T) {
	e := s.env(t)
	sp := e.service("web", 1)
	sp.Command = []string{"./does-not-exist"}
	if _, err := e.rt.Start(e.ctx, sp); err == nil {
		t.Fatal("start of a missing program succeeded")
	}
	ins, err := e.rt.List(e.ctx, runtime.Filter{App: e.app})
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range ins {
		if in.State != runtime.StateExited {
			t.Errorf("a failed start left %+v", in)
		}
	}
}

func (s *suite) testEnv(t *testing.T) {
	e := s.env(t)
	sp := e.service("web", 1, "serve", "-msg", "$GREETING, ${NAME}! $$HOME $UNSET.")
	sp.Env = map[string]string{"GREETING": "hello world", "NAME": "moorage", "MOORAGE_APP": "overridden?"}
	in := e.serve(sp)

	var args []string
	e.getJSON(in.Addr, "/args", &args)
	if want := "hello world, moorage! $HOME ."; !slices.Contains(args, want) {
		t.Errorf("args = %q, want one argument %q", args, want)
	}
	var env map[string]string
	e.getJSON(in.Addr, "/env", &env)
	want := map[string]string{
		"GREETING":         "hello world",
		"PORT":             strconv.Itoa(in.Port),
		"MOORAGE_APP":      e.app,
		"MOORAGE_SERVICE":  "web",
		"MOORAGE_RELEASE":  "v1",
		"MOORAGE_INSTANCE": sp.ID(),
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("$%s = %q, want %q", k, env[k], v)
		}
	}
}

func (s *suite) testVolumes(t *testing.T) {
	e := s.env(t)
	if err := e.rt.EnsureVolume(e.ctx, e.app, "shared"); err != nil {
		t.Fatal(err)
	}
	if err := e.rt.EnsureVolume(e.ctx, e.app, "shared"); err != nil {
		t.Fatalf("EnsureVolume again: %v", err)
	}
	mounts := []runtime.Mount{e.mount("shared", "/app/shared")}
	a, b := e.service("web", 1, "serve"), e.service("web", 2, "serve")
	a.Mounts, b.Mounts = mounts, mounts
	ia, ib := e.serve(a), e.serve(b)

	data := "hi-" + e.app
	if code, body := e.get(ia.Addr, "/write?vol=shared&file=greeting&data="+data); code != 200 {
		t.Fatalf("write: %d %s", code, body)
	}
	if code, body := e.get(ib.Addr, "/read?vol=shared&file=greeting"); code != 200 || body != data {
		t.Errorf("the other instance read %d %q, want %q", code, body, data)
	}
	task := e.task("cat", "$MOORAGE_VOLUME_SHARED/greeting")
	task.Mounts = mounts
	code, out, err := e.run(task)
	if e.s.h.Lines {
		data += "\n"
	}
	if err != nil || code != 0 || out != data {
		t.Errorf("a one-off read %q (exit %d, %v), want %q", out, code, err, data)
	}
}

func (s *suite) testLogs(t *testing.T) {
	e := s.env(t)
	sp := e.service("web", 1, "serve", "-lines", "3")
	in := e.serve(sp)
	id := sp.ID()
	e.waitLog(id, "hello 3")
	e.waitLog(id, "warn 3")

	all := e.logs(id, runtime.LogOptions{})
	var outs, errs []string
	for _, l := range all {
		if l.Instance != id {
			t.Errorf("line %+v: instance %q, want %q", l, l.Instance, id)
		}
		if l.Time.IsZero() {
			t.Errorf("line %+v has no time", l)
		}
		switch l.Stream {
		case "stdout":
			if strings.HasPrefix(l.Text, "hello") {
				outs = append(outs, l.Text)
			}
		case "stderr":
			errs = append(errs, l.Text)
		default:
			t.Errorf("line %+v: stream %q", l, l.Stream)
		}
	}
	if want := []string{"hello 1", "hello 2", "hello 3"}; !slices.Equal(outs, want) {
		t.Errorf("stdout lines %q, want %q", outs, want)
	}
	if want := []string{"warn 1", "warn 2", "warn 3"}; !slices.Equal(errs, want) {
		t.Errorf("stderr lines %q, want %q", errs, want)
	}

	tail := e.logs(id, runtime.LogOptions{Tail: 2})
	if want := texts(all[len(all)-2:]); !slices.Equal(texts(tail), want) {
		t.Errorf("tail 2 = %q, want %q", texts(tail), want)
	}

	since := all[len(all)-1].Time.Add(time.Millisecond)
	e.waitFor("the clock to pass the last line", func() bool { return time.Now().After(since.Add(time.Millisecond)) })
	e.get(in.Addr, "/log?msg=later")
	e.waitLog(id, "later")
	got := texts(e.logs(id, runtime.LogOptions{Since: since}))
	if !slices.Contains(got, "later") || slices.Contains(got, "hello 1") {
		t.Errorf("since the last line: %q, want \"later\" and no earlier line", got)
	}

	// Follow.
	ctx, cancel := context.WithCancel(e.ctx)
	lines := make(chan runtime.LogLine, 100)
	done := make(chan error, 1)
	go func() {
		done <- e.rt.Logs(ctx, id, runtime.LogOptions{Tail: 1, Follow: true}, func(l runtime.LogLine) error {
			lines <- l
			return nil
		})
	}()
	e.get(in.Addr, "/log?msg=followed&stream=stderr")
	waitLine(t, lines, "followed", e.timeout())
	cancel()
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("follow returned %v", err)
		}
	case <-time.After(e.timeout()):
		t.Fatal("follow did not return after its context was cancelled")
	}

	// Logs outlive the instance.
	if err := e.rt.Remove(e.ctx, id); err != nil {
		t.Fatal(err)
	}
	if got := e.logs(id, runtime.LogOptions{}); !hasText(got, "hello 1") || !hasText(got, "followed") {
		t.Errorf("logs after remove: %q", texts(got))
	}
	if err := e.rt.Logs(e.ctx, e.app+"-nothing-v1-1", runtime.LogOptions{}, func(runtime.LogLine) error { return nil }); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("logs of an unknown instance: %v, want ErrNotFound", err)
	}
}

func waitLine(t *testing.T, lines <-chan runtime.LogLine, text string, timeout time.Duration) {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case l := <-lines:
			if l.Text == text {
				return
			}
		case <-timer.C:
			t.Fatalf("line %q never followed", text)
		}
	}
}

func (s *suite) testStopSignal(t *testing.T) {
	e := s.env(t)
	sp := e.service("worker", 1, "serve")
	sp.StopSignal = syscall.SIGUSR1
	e.serve(sp)
	if err := e.rt.Stop(e.ctx, sp.ID()); err != nil {
		t.Fatalf("stop: %v", err)
	}
	in := e.instance(sp.ID())
	if in.State != runtime.StateExited || in.ExitCode != 0 {
		t.Errorf("after stop: %+v, want exited with code 0", in)
	}
	e.waitLog(sp.ID(), "received SIGUSR1, exiting")
	if err := e.rt.Stop(e.ctx, sp.ID()); err != nil {
		t.Errorf("stopping an exited instance: %v, want nil", err)
	}
}

func (s *suite) testStopTimeout(t *testing.T) {
	e := s.env(t)
	sp := e.service("worker", 1, "serve", "-ignore-term")
	sp.StopTimeout = 2 * time.Second
	e.serve(sp)
	start := time.Now()
	if err := e.rt.Stop(e.ctx, sp.ID()); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if el := time.Since(start); el < sp.StopTimeout {
		t.Errorf("stop took %s, less than the stop timeout %s", el, sp.StopTimeout)
	}
	if in := e.instance(sp.ID()); in.State != runtime.StateExited {
		t.Errorf("after stop: %+v, want exited", in)
	}
	e.waitLog(sp.ID(), "ignoring SIGTERM")
}

func (s *suite) testStopKillsGroup(t *testing.T) {
	e := s.env(t)
	mounts := []runtime.Mount{e.mount("locks", "/app/locks")}
	if err := e.rt.EnsureVolume(e.ctx, e.app, "locks"); err != nil {
		t.Fatal(err)
	}
	trylock := func() int {
		task := e.task("trylock", "$MOORAGE_VOLUME_LOCKS/lock")
		task.Mounts = mounts
		code, out, err := e.run(task)
		if err != nil {
			t.Fatalf("trylock: %v: %s", err, out)
		}
		return code
	}
	// The grandchild ignores SIGTERM: only the group kill ends it.
	sp := e.service("web", 1, "serve", "-hold", "$MOORAGE_VOLUME_LOCKS/lock")
	sp.Mounts = mounts
	sp.StopTimeout = 5 * time.Second
	e.serve(sp)
	e.waitFor("the grandchild to hold the lock", func() bool { return trylock() == 1 })
	if err := e.rt.Stop(e.ctx, sp.ID()); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if code := trylock(); code != 0 {
		t.Errorf("after stop, the grandchild still holds the lock (trylock exit %d)", code)
	}
}

func (s *suite) testCrashRestart(t *testing.T) {
	e := s.env(t)
	events := e.events()
	sp := e.service("web", 1, "serve")
	in := e.serve(sp)
	boot := e.bootID(in.Addr)
	var env1 map[string]string
	e.getJSON(in.Addr, "/env", &env1)

	e.get(in.Addr, "/exit?code=3")
	crash := e.nextEvent(events, sp.ID(), runtime.EventCrash)
	if crash.ExitCode != 3 || crash.App != e.app || crash.Service != "web" || crash.Release != "v1" || crash.Kind != runtime.KindService {
		t.Errorf("crash event %+v, want exit code 3 and the instance's identity", crash)
	}
	restart := e.nextEvent(events, sp.ID(), runtime.EventRestart)
	if restart.Restarts != 1 {
		t.Errorf("restart event %+v, want Restarts 1", restart)
	}

	var got runtime.Instance
	e.waitFor("the instance to run again", func() bool {
		got = e.instance(sp.ID())
		return got.State == runtime.StateRunning && got.Addr != ""
	})
	if got.Restarts != 1 || got.Port != in.Port {
		t.Errorf("after the crash: %+v, want Restarts 1 and port %d", got, in.Port)
	}
	e.waitHTTP(got.Addr, "/health")
	if b := e.bootID(got.Addr); b == boot {
		t.Errorf("the program was not restarted (same boot id %s)", b)
	}
	var env2 map[string]string
	e.getJSON(got.Addr, "/env", &env2)
	if env2["PORT"] != env1["PORT"] {
		t.Errorf("PORT changed across the restart: %s → %s", env1["PORT"], env2["PORT"])
	}
}

func (s *suite) testRun(t *testing.T) {
	e := s.env(t)
	events := e.events()

	var stdout, stderr syncBuffer
	task := e.task("print", "-n", "2", "-exit", "7")
	task.Stdout, task.Stderr = &stdout, &stderr
	code, err := e.rt.Run(e.ctx, task)
	if err != nil || code != 7 {
		t.Fatalf("run = %d, %v; want 7, nil", code, err)
	}
	if stdout.String() != "out 1\nout 2\n" || stderr.String() != "err 1\nerr 2\n" {
		t.Errorf("stdout %q, stderr %q", stdout.String(), stderr.String())
	}
	if ev := e.nextEvent(events, task.ID(), runtime.EventExit); ev.ExitCode != 7 || ev.Kind != runtime.KindTask {
		t.Errorf("exit event %+v, want exit code 7 of a task", ev)
	}

	task = e.task("getenv", "GREETING")
	task.Env = map[string]string{"GREETING": "bonjour"}
	if code, out, err := e.run(task); err != nil || code != 0 || out != "bonjour\n" {
		t.Errorf("run getenv = %d %q %v", code, out, err)
	}
	task = e.task("getenv", "MOORAGE_APP")
	if code, out, err := e.run(task); err != nil || code != 0 || out != e.app+"\n" {
		t.Errorf("run getenv MOORAGE_APP = %d %q %v", code, out, err)
	}
	task = e.task("getenv", "$WHICH")
	task.Env = map[string]string{"WHICH": "GREETING", "GREETING": "expanded"}
	if code, out, err := e.run(task); err != nil || code != 0 || out != "expanded\n" {
		t.Errorf("run with $VAR = %d %q %v", code, out, err)
	}

	// Nothing is left behind: a grandchild that outlives the task is
	// killed with it.
	if err := e.rt.EnsureVolume(e.ctx, e.app, "locks"); err != nil {
		t.Fatal(err)
	}
	mounts := []runtime.Mount{e.mount("locks", "/app/locks")}
	task = e.task("spawn", "$MOORAGE_VOLUME_LOCKS/lock")
	task.Mounts = mounts
	if code, out, err := e.run(task); err != nil || code != 0 || !strings.Contains(out, "spawned") {
		t.Fatalf("run spawn = %d %q %v", code, out, err)
	}
	task = e.task("trylock", "$MOORAGE_VOLUME_LOCKS/lock")
	task.Mounts = mounts
	if code, out, err := e.run(task); err != nil || code != 0 {
		t.Errorf("after the task, its grandchild still holds the lock: %d %q %v", code, out, err)
	}

	ins, err := e.rt.List(e.ctx, runtime.Filter{App: e.app})
	if err != nil || len(ins) != 0 {
		t.Errorf("one-offs are listed after they ran: %v %v", ids(ins), err)
	}
}

func (s *suite) testRunTimeout(t *testing.T) {
	e := s.env(t)
	task := e.task("sleep", "1h")
	task.Timeout = time.Second
	start := time.Now()
	_, _, err := e.run(task)
	if !errors.Is(err, runtime.ErrTimeout) {
		t.Errorf("run past its timeout: %v, want ErrTimeout", err)
	}
	if el := time.Since(start); el < task.Timeout {
		t.Errorf("run returned after %s, before its timeout", el)
	}

	ctx, cancel := context.WithTimeout(e.ctx, 500*time.Millisecond)
	defer cancel()
	task = e.task("sleep", "1h")
	if _, err := e.rt.Run(ctx, task); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("run with an expiring context: %v, want context.DeadlineExceeded", err)
	}
}

func (s *suite) testRunTTY(t *testing.T) {
	e := s.env(t)
	task := e.task("tty")
	task.TTY = true
	var out syncBuffer
	task.Stdout = &out
	task.Stdin = strings.NewReader("")
	code, err := e.rt.Run(e.ctx, task)
	if errors.Is(err, runtime.ErrNotSupported) {
		t.Skipf("no TTY support: %v", err)
	}
	if err != nil || code != 0 || !strings.Contains(out.String(), "tty: yes") {
		t.Errorf("run with a TTY = %d %v, output %q; want \"tty: yes\"", code, err, out.String())
	}
	task = e.task("tty")
	if code, out, err := e.run(task); err != nil || code != 0 || !strings.Contains(out, "tty: no") {
		t.Errorf("run without a TTY = %d %v, output %q; want \"tty: no\"", code, err, out)
	}

	// Input reaches the command, without a terminal and with one; the
	// exit code and the instance's env come through with a terminal.
	task = e.task("cat", "-")
	task.Stdin = strings.NewReader("typed input\n")
	if code, out, err := e.run(task); err != nil || code != 0 || out != "typed input\n" {
		t.Errorf("run with input = %d %v, output %q; want \"typed input\\n\"", code, err, out)
	}
	task = e.task("getenv", "GREETING")
	task.Env = map[string]string{"GREETING": "hello tty"}
	task.TTY, task.Stdin = true, strings.NewReader("")
	if code, out, err := e.run(task); err != nil || code != 0 || !strings.Contains(out, "hello tty") {
		t.Errorf("run getenv with a TTY = %d %v, output %q; want \"hello tty\"", code, err, out)
	}
	task = e.task("exit", "3")
	task.TTY, task.Stdin = true, strings.NewReader("")
	if code, out, err := e.run(task); err != nil || code != 3 {
		t.Errorf("run exit 3 with a TTY = %d %v, output %q; want 3", code, err, out)
	}

	// A client that goes away (its context ends) ends the command, even
	// one that waits for input.
	ctx, cancel := context.WithTimeout(e.ctx, 500*time.Millisecond)
	defer cancel()
	pr, pw := io.Pipe()
	defer pw.Close()
	task = e.task("cat", "-")
	task.TTY, task.Stdin, task.Stdout = true, pr, io.Discard
	start := time.Now()
	if _, err := e.rt.Run(ctx, task); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("run with a TTY and an expiring context: %v, want context.DeadlineExceeded", err)
	}
	if el := time.Since(start); el > e.timeout() {
		t.Errorf("run with a TTY returned %s after its context ended", el)
	}

	// The terminal has the client's size from the start and follows its
	// changes while the command runs (which gets SIGWINCH): full-screen
	// programs draw for the terminal they are shown in.
	resize := make(chan runtime.TermSize, 1)
	inR, inW := io.Pipe()
	defer inW.Close()
	var sizes syncBuffer
	task = e.task("ttysize")
	task.TTY, task.Size, task.Resize, task.Stdin, task.Stdout = true, runtime.TermSize{Cols: 132, Rows: 43}, resize, inR, &sizes
	type result struct {
		code int
		err  error
	}
	done := make(chan result, 1)
	go func() {
		code, err := e.rt.Run(e.ctx, task)
		done <- result{code, err}
	}()
	waitOutput := func(want string) bool {
		t.Helper()
		deadline := time.Now().Add(e.timeout())
		for !strings.Contains(sizes.String(), want) {
			select {
			case r := <-done:
				t.Errorf("ttysize ended (%d %v) before printing %q: %q", r.code, r.err, want, sizes.String())
				return false
			case <-time.After(20 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Errorf("ttysize did not print %q within %s: %q", want, e.timeout(), sizes.String())
				return false
			}
		}
		return true
	}
	if waitOutput("size 43 132") {
		resize <- runtime.TermSize{Cols: 100, Rows: 30}
		waitOutput("size 30 100")
	}
	io.WriteString(inW, "\n")
	select {
	case r := <-done:
		if r.err != nil || r.code != 0 {
			t.Errorf("ttysize = %d %v, output %q", r.code, r.err, sizes.String())
		}
	case <-time.After(e.timeout()):
		t.Errorf("ttysize did not end on a line of input: %q", sizes.String())
	}
}

func (s *suite) testExec(t *testing.T) {
	e := s.env(t)
	sp := e.service("web", 1, "serve")
	sp.Env = map[string]string{"GREETING": "hi there"}
	e.serve(sp)
	var out, errOut bytes.Buffer
	code, err := e.rt.Exec(e.ctx, sp.ID(), runtime.ExecSpec{Cmd: []string{"./app", "getenv", "GREETING"}, Stdout: &out})
	if err != nil || code != 0 || out.String() != "hi there\n" {
		t.Errorf("exec getenv = %d %v %q", code, err, out.String())
	}
	out.Reset()
	code, err = e.rt.Exec(e.ctx, sp.ID(), runtime.ExecSpec{Cmd: []string{"./app", "getenv", "EXTRA"}, Env: map[string]string{"EXTRA": "added"}, Stdout: &out})
	if err != nil || code != 0 || out.String() != "added\n" {
		t.Errorf("exec with extra env = %d %v %q", code, err, out.String())
	}
	out.Reset()
	code, err = e.rt.Exec(e.ctx, sp.ID(), runtime.ExecSpec{Cmd: []string{"./app", "print", "-n", "1", "-exit", "4"}, Stdout: &out, Stderr: &errOut})
	if err != nil || code != 4 || !strings.Contains(out.String(), "out 1") || strings.Contains(out.String(), "err 1") || !strings.Contains(errOut.String(), "err 1") {
		t.Errorf("exec print = %d %v stdout %q stderr %q; want 4 and the streams apart", code, err, out.String(), errOut.String())
	}
	out.Reset()
	code, err = e.rt.Exec(e.ctx, sp.ID(), runtime.ExecSpec{Cmd: []string{"./app", "cat", "-"}, Stdin: strings.NewReader("from stdin"), Stdout: &out})
	if err != nil || code != 0 || out.String() != "from stdin" {
		t.Errorf("exec with stdin = %d %v %q", code, err, out.String())
	}
	if _, err := e.rt.Exec(e.ctx, e.app+"-nothing-v1-1", runtime.ExecSpec{Cmd: []string{"./app", "exit", "0"}, Stdout: &out}); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("exec in an unknown instance: %v, want ErrNotFound", err)
	}
}

// A paused instance does not answer; resumed, it does, without a restart.
func (s *suite) testPause(t *testing.T) {
	e := s.env(t)
	sp := e.service("web", 1, "serve")
	in := e.serve(sp)
	boot := e.bootID(in.Addr)
	if err := e.rt.Pause(e.ctx, sp.ID()); err != nil {
		t.Fatalf("pause: %v", err)
	}
	c := http.Client{Timeout: 500 * time.Millisecond}
	if resp, err := c.Get("http://" + in.Addr + "/health"); err == nil {
		resp.Body.Close()
		e.rt.Resume(e.ctx, sp.ID())
		t.Fatalf("a paused instance answered: %s", resp.Status)
	}
	// List says it is paused (a restarted server resumes what it finds so).
	if got := e.instance(sp.ID()); !got.Paused || got.State != runtime.StateRunning {
		e.rt.Resume(e.ctx, sp.ID())
		t.Fatalf("a paused instance is listed as %s, paused %v", got.State, got.Paused)
	}
	if err := e.rt.Resume(e.ctx, sp.ID()); err != nil {
		t.Fatalf("resume: %v", err)
	}
	e.waitHTTP(in.Addr, "/health")
	if got := e.instance(sp.ID()); got.Paused {
		t.Fatalf("a resumed (and answering) instance is listed as paused")
	}
	if got := e.bootID(in.Addr); got != boot {
		t.Fatalf("the instance restarted across pause/resume")
	}
	if got := e.instance(sp.ID()); got.Restarts != 0 {
		t.Fatalf("pause counted as a crash: %+v", got)
	}
}

func (s *suite) testList(t *testing.T) {
	e := s.env(t)
	other := e.otherApp()
	specs := []runtime.InstanceSpec{
		e.service("web", 1, "serve"),
		e.service("web", 2, "serve"),
		e.service("worker", 1, "serve"),
	}
	v2 := e.service("web", 1, "serve")
	v2.Release = "v2"
	specs = append(specs, v2)
	acc := runtime.InstanceSpec{
		App: e.app, Service: "cache", Kind: runtime.KindAccessory,
		Image: s.art.Ref, Artifact: s.art,
		Command: []string{s.h.AppBinary(s.art), "serve"},
		Port:    s.h.Port, Publish: true, StopTimeout: 10 * time.Second,
	}
	specs = append(specs, acc)
	elsewhere := e.service("web", 1, "serve")
	elsewhere.App = other
	specs = append(specs, elsewhere)
	for _, sp := range specs {
		e.start(sp)
	}
	cases := []struct {
		f    runtime.Filter
		want []string
	}{
		{runtime.Filter{App: e.app}, []string{acc.ID(), specs[0].ID(), specs[1].ID(), v2.ID(), specs[2].ID()}},
		{runtime.Filter{App: e.app, Service: "web"}, []string{specs[0].ID(), specs[1].ID(), v2.ID()}},
		{runtime.Filter{App: e.app, Release: "v2"}, []string{v2.ID()}},
		{runtime.Filter{App: e.app, Service: "web", Release: "v1"}, []string{specs[0].ID(), specs[1].ID()}},
		{runtime.Filter{App: e.app, Kind: runtime.KindAccessory}, []string{acc.ID()}},
		{runtime.Filter{App: other}, []string{elsewhere.ID()}},
		{runtime.Filter{App: e.app + "x"}, nil},
	}
	for _, c := range cases {
		ins, err := e.rt.List(e.ctx, c.f)
		if err != nil {
			t.Fatalf("list %+v: %v", c.f, err)
		}
		got := ids(ins)
		slices.Sort(got)
		want := slices.Clone(c.want)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("list %+v = %q, want %q", c.f, got, want)
		}
	}
	in := e.instance(acc.ID())
	if in.Kind != runtime.KindAccessory || in.Release != "" || in.Host == "" || in.Port == 0 {
		t.Errorf("accessory listed as %+v, want kind accessory with a host and port", in)
	}
}

func (s *suite) testRemove(t *testing.T) {
	e := s.env(t)
	sp := e.service("web", 1, "serve")
	e.serve(sp)
	if err := e.rt.Remove(e.ctx, sp.ID()); err != nil {
		t.Fatalf("remove a running instance: %v", err)
	}
	ins, err := e.rt.List(e.ctx, runtime.Filter{App: e.app})
	if err != nil || len(ins) != 0 {
		t.Errorf("after remove, listed %v %v", ids(ins), err)
	}
	if err := e.rt.Remove(e.ctx, sp.ID()); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("remove again: %v, want ErrNotFound", err)
	}
	if err := e.rt.Stop(e.ctx, sp.ID()); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("stop a removed instance: %v, want ErrNotFound", err)
	}
	in := e.serve(sp) // the id is free again
	if err := e.rt.Stop(e.ctx, sp.ID()); err != nil {
		t.Fatal(err)
	}
	if err := e.rt.Remove(e.ctx, in.ID); err != nil {
		t.Errorf("remove a stopped instance: %v", err)
	}
}

// testServerRestart: a runtime opened again on the same state (a server
// restart) adopts what runs without restarting it, keeps its logs,
// supervises it and can stop it.
func (s *suite) testServerRestart(t *testing.T) {
	e := s.env(t)
	a := e.service("web", 1, "serve", "-lines", "1")
	b := e.service("worker", 1, "serve")
	ia, ib := e.serve(a), e.serve(b)
	bootA, bootB := e.bootID(ia.Addr), e.bootID(ib.Addr)
	la, lb := e.instance(a.ID()), e.instance(b.ID())
	e.waitLog(a.ID(), "hello 1")

	e.restart()

	// Running instances are adopted, not restarted.
	for _, x := range []struct {
		before runtime.Instance
		boot   string
	}{{la, bootA}, {lb, bootB}} {
		got := e.instance(x.before.ID)
		if got.State != runtime.StateRunning || got.PID != x.before.PID || got.Restarts != x.before.Restarts || !got.StartedAt.Equal(x.before.StartedAt) {
			t.Errorf("after the restart %+v, want %+v unchanged", got, x.before)
		}
		if boot := e.bootID(got.Addr); boot != x.boot {
			t.Errorf("%s was restarted (boot id %s → %s)", x.before.ID, x.boot, boot)
		}
	}
	if !hasText(e.logs(a.ID(), runtime.LogOptions{}), "hello 1") {
		t.Error("logs lost across the restart")
	}

	// The new runtime gets crash events and supervises.
	events := e.events()
	e.get(ia.Addr, "/exit?code=5")
	if ev := e.nextEvent(events, a.ID(), runtime.EventCrash); ev.ExitCode != 5 {
		t.Errorf("crash event %+v, want exit code 5", ev)
	}
	e.nextEvent(events, a.ID(), runtime.EventRestart)
	e.waitFor("the crashed instance to run again", func() bool {
		in := e.instance(a.ID())
		return in.State == runtime.StateRunning && in.Restarts == 1
	})

	// It can stop an adopted instance.
	if err := e.rt.Stop(e.ctx, b.ID()); err != nil {
		t.Fatalf("stop an adopted instance: %v", err)
	}
	if in := e.instance(b.ID()); in.State != runtime.StateExited {
		t.Errorf("adopted instance after stop: %+v", in)
	}
	e.nextEvent(events, b.ID(), runtime.EventExit)
}

// testCrashWithoutServer: an instance that crashes while no server runs is
// restarted by its supervisor, and the next runtime lists it with the
// restart counted. (Not for runtimes whose supervision is the server's.)
func (s *suite) testCrashWithoutServer(t *testing.T) {
	e := s.env(t)
	c := e.service("web", 2, "serve")
	ic := e.serve(c)
	bootC := e.bootID(ic.Addr)
	if err := e.rt.Close(); err != nil {
		t.Fatal(err)
	}
	e.get(ic.Addr, "/exit?code=6")
	if e.s.h.Moves {
		// The restarted task may be elsewhere: wait until it answers, at
		// the address the cluster gives, before the runtime opens again.
		cli := e.s.h.New(t, e.dir)
		e.all = append(e.all, cli)
		e.waitFor("the instance to come back without a server", func() bool {
			ins, err := cli.List(e.ctx, runtime.Filter{App: e.app})
			if err != nil || len(ins) != 1 || ins[0].Addr == "" {
				return false
			}
			_, body, err := tryGet(ins[0].Addr, "/id")
			return err == nil && strings.Contains(body, `"boot"`) && !strings.Contains(body, bootC)
		})
		if err := cli.Close(); err != nil {
			t.Fatal(err)
		}
	} else {
		e.waitFor("the instance to come back without a server", func() bool {
			_, body, err := tryGet(ic.Addr, "/id")
			return err == nil && strings.Contains(body, `"boot"`) && !strings.Contains(body, bootC)
		})
	}
	e.rt = e.s.h.New(t, e.dir)
	e.all = append(e.all, e.rt)
	// The program may answer a moment before its supervisor records it.
	e.waitFor("the instance restarted without a server to be listed running with Restarts 1", func() bool {
		in := e.instance(c.ID())
		return in.State == runtime.StateRunning && in.Restarts == 1
	})
}

func (s *suite) testRemoveArtifact(t *testing.T) {
	e := s.env(t)
	var out syncBuffer
	art, err := s.build(t, e.rt, e.app, BuildCommand, &out)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out.String())
	}
	if ok, err := e.rt.ArtifactExists(e.ctx, art); err != nil || !ok {
		t.Fatalf("ArtifactExists = %v %v", ok, err)
	}
	if err := e.rt.RemoveArtifact(e.ctx, art); err != nil {
		t.Fatalf("remove artifact: %v", err)
	}
	if ok, err := e.rt.ArtifactExists(e.ctx, art); err != nil || ok {
		t.Fatalf("ArtifactExists after removal = %v %v", ok, err)
	}
	sp := e.service("web", 1, "serve")
	sp.Artifact = art
	if _, err := e.rt.Start(e.ctx, sp); !errors.Is(err, runtime.ErrArtifactGone) {
		t.Errorf("start from a removed artifact: %v, want ErrArtifactGone", err)
	}
}
