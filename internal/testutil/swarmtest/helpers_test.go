package swarmtest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
)

// figures collects the measured facts of a run, written to
// $SWARMTEST_FIGURES when set (docs/swarm-design.md quotes them).
var figures struct {
	sync.Mutex
	lines []string
}

func figure(t testing.TB, format string, args ...any) {
	t.Helper()
	line := fmt.Sprintf("%s: %s", t.Name(), fmt.Sprintf(format, args...))
	t.Log("FIGURE " + line)
	figures.Lock()
	figures.lines = append(figures.lines, line)
	figures.Unlock()
}

func TestMain(m *testing.M) {
	code := m.Run()
	if p := os.Getenv("SWARMTEST_FIGURES"); p != "" {
		os.WriteFile(p, []byte(strings.Join(figures.lines, "\n")+"\n"), 0o644)
	}
	os.Exit(code)
}

// startWithImage starts a cluster and loads the default test image.
func startWithImage(t *testing.T, opts Options) (*Cluster, *Image) {
	t.Helper()
	c := Start(t, opts)
	img, err := BuildImage(ImageOptions{Ref: "moorage-swarmtest:v1"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := c.LoadImage(ctx, img); err != nil {
		t.Fatal(err)
	}
	return c, img
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// webCommand serves "<node> <task>\n" on :8080 with busybox httpd.
var webCommand = []string{"/bin/sh", "-c", `echo "$NODE $TASK" > /www/index.html; exec httpd -f -p 8080 -h /www`}

var webEnv = []string{"NODE={{.Node.Hostname}}", "TASK={{.Task.Name}}"}

func u64(v uint64) *uint64 { return &v }

var yes = true

// hostPort publishes the web port 8080 in host mode on a port the node
// picks.
var hostPort = &swarm.EndpointSpec{Ports: []swarm.PortConfig{{
	Protocol: network.TCP, TargetPort: 8080, PublishMode: swarm.PortConfigPublishModeHost,
}}}

// webService is a replicated web service of img, published host-mode.
func webService(name, image string, replicas uint64, labels map[string]string) swarm.ServiceSpec {
	return swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: name, Labels: labels},
		TaskTemplate: swarm.TaskSpec{
			// Init: httpd as PID 1 would ignore SIGTERM and be killed
			// only at the end of the stop grace period.
			ContainerSpec: &swarm.ContainerSpec{Image: image, Command: webCommand, Env: webEnv, Labels: labels, Init: &yes},
		},
		Mode:         swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &replicas}},
		EndpointSpec: hostPort,
	}
}

func createService(t *testing.T, ctx context.Context, cli *client.Client, spec swarm.ServiceSpec) string {
	t.Helper()
	res, err := cli.ServiceCreate(ctx, client.ServiceCreateOptions{Spec: spec})
	if err != nil {
		t.Fatalf("create service %s: %v", spec.Name, err)
	}
	return res.ID
}

func tasksOf(ctx context.Context, cli *client.Client, serviceID string) ([]swarm.Task, error) {
	res, err := cli.TaskList(ctx, client.TaskListOptions{Filters: make(client.Filters).Add("service", serviceID)})
	if err != nil {
		return nil, err
	}
	return res.Items, nil
}

// waitTasks polls the service's tasks until ok says yes, and returns them.
func waitTasks(t *testing.T, ctx context.Context, cli *client.Client, serviceID, what string, ok func([]swarm.Task) bool) []swarm.Task {
	t.Helper()
	var last []swarm.Task
	err := Poll(ctx, 50*time.Millisecond, func() (bool, error) {
		ts, err := tasksOf(ctx, cli, serviceID)
		if err != nil {
			return false, nil
		}
		last = ts
		return ok(ts), nil
	})
	if err != nil {
		t.Fatalf("service %s: %s: %v; tasks: %s", serviceID, what, err, describe(last))
	}
	return last
}

func running(ts []swarm.Task) []swarm.Task {
	var out []swarm.Task
	for _, tk := range ts {
		if tk.Status.State == swarm.TaskStateRunning && tk.DesiredState == swarm.TaskStateRunning {
			out = append(out, tk)
		}
	}
	return out
}

func describe(ts []swarm.Task) string {
	var b strings.Builder
	for _, tk := range ts {
		fmt.Fprintf(&b, "[%s slot %d node %.6s desired %s state %s err %q] ", tk.ID[:8], tk.Slot, tk.NodeID, tk.DesiredState, tk.Status.State, tk.Status.Err)
	}
	return b.String()
}

// endpoint is where the host reaches a task's port 8080 published in host
// mode: the node's address and the port the node picked.
func endpoint(c *Cluster, tk swarm.Task) string {
	n := c.Node(tk.NodeID)
	if n == nil {
		return ""
	}
	for _, p := range tk.Status.PortStatus.Ports {
		if p.TargetPort == 8080 && p.PublishedPort != 0 {
			return fmt.Sprintf("%s:%d", n.Addr, p.PublishedPort)
		}
	}
	return ""
}

var httpClient = &http.Client{
	Timeout:   time.Second,
	Transport: &http.Transport{DisableKeepAlives: true, DialContext: (&net.Dialer{Timeout: 500 * time.Millisecond}).DialContext},
}

func get(addr string) (string, error) {
	res, err := httpClient.Get("http://" + addr + "/")
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return "", err
	}
	if res.StatusCode != 200 {
		return "", fmt.Errorf("status %d", res.StatusCode)
	}
	return strings.TrimSpace(string(b)), nil
}

// load sends GETs round robin to the endpoints targets() gives, from
// workers goroutines, until stopped, counting outcomes.
type load struct {
	ok, failed atomic.Int64
	firstFail  atomic.Int64 // unix nanos
	lastFail   atomic.Int64
	errs       sync.Map // error text (shortened) → count *atomic.Int64
	stop       chan struct{}
	wg         sync.WaitGroup
}

func startLoad(workers int, targets func() []string) *load {
	l := &load{stop: make(chan struct{})}
	var next atomic.Int64
	for range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				ts := targets()
				if len(ts) == 0 {
					time.Sleep(10 * time.Millisecond)
					continue
				}
				addr := ts[int(next.Add(1))%len(ts)]
				if _, err := get(addr); err != nil {
					now := time.Now().UnixNano()
					l.failed.Add(1)
					l.firstFail.CompareAndSwap(0, now)
					l.lastFail.Store(now)
					key := shorten(err.Error())
					v, _ := l.errs.LoadOrStore(key, new(atomic.Int64))
					v.(*atomic.Int64).Add(1)
				} else {
					l.ok.Add(1)
				}
			}
		}()
	}
	return l
}

func (l *load) Stop() { close(l.stop); l.wg.Wait() }

func (l *load) Errors() string {
	var parts []string
	l.errs.Range(func(k, v any) bool {
		parts = append(parts, fmt.Sprintf("%d× %s", v.(*atomic.Int64).Load(), k))
		return true
	})
	return strings.Join(parts, "; ")
}

func shorten(s string) string {
	for _, k := range []string{"connection refused", "i/o timeout", "Client.Timeout", "connection reset", "EOF", "no route to host"} {
		if strings.Contains(s, k) {
			return k
		}
	}
	return s
}

// taskLogs reads a task's stdout and stderr through the manager.
func taskLogs(ctx context.Context, cli *client.Client, taskID string) (string, string, error) {
	r, err := cli.TaskLogs(ctx, taskID, client.TaskLogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		return "", "", err
	}
	defer r.Close()
	var out, errb bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &errb, r); err != nil {
		return out.String(), errb.String(), err
	}
	return out.String(), errb.String(), nil
}
