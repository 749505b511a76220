package kubernetes

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/runtime/logs"
	"github.com/moorage/moorage/internal/runtime/seam"
)

// podSeen is what the watch last saw of a pod's container.
type podSeen struct {
	restarts int32
	crashed  bool // its current exit was reported
}

// watchLoop watches the runtime's pods (a list, then a watch from its
// resource version, listed again whenever the watch ends: a resync) and
// turns their containers' exits and restarts into crash and restart
// events. The kubelet restarts a service's container (restartPolicy
// Always); a one-off's end is Run's to report.
func (r *Runtime) watchLoop() {
	seen := map[types.UID]*podSeen{}
	first := true
	for r.ctx.Err() == nil {
		list, err := r.cs.CoreV1().Pods("").List(r.ctx, metav1.ListOptions{LabelSelector: r.ownSelector()})
		if err != nil {
			r.log.Debug("listing pods", "err", err)
			sleep(r.ctx, time.Second)
			continue
		}
		present := map[types.UID]bool{}
		for i := range list.Items {
			present[list.Items[i].UID] = true
			r.observe(seen, &list.Items[i], first)
		}
		for uid := range seen {
			if !present[uid] {
				delete(seen, uid)
			}
		}
		first = false
		w, err := r.cs.CoreV1().Pods("").Watch(r.ctx, metav1.ListOptions{
			LabelSelector: r.ownSelector(), ResourceVersion: list.ResourceVersion, TimeoutSeconds: ptr.To[int64](120),
		})
		if err != nil {
			r.log.Debug("watching pods", "err", err)
			sleep(r.ctx, time.Second)
			continue
		}
		for ev := range w.ResultChan() {
			pod, ok := ev.Object.(*corev1.Pod)
			if !ok {
				break // an error (the resource version is too old): list again
			}
			switch ev.Type {
			case watch.Added, watch.Modified:
				r.observe(seen, pod, false)
			case watch.Deleted:
				delete(seen, pod.UID)
			}
		}
		w.Stop()
	}
}

// observe compares a pod with what was seen of it, and reports what
// happened since. A pod seen for the first time (baseline) reports nothing.
func (r *Runtime) observe(seen map[types.UID]*podSeen, pod *corev1.Pod, baseline bool) {
	kind := runtime.Kind(pod.Labels[LabelKind])
	id := pod.Annotations[annInstance]
	if kind == runtime.KindTask || id == "" {
		return
	}
	cs := appStatus(pod)
	if cs == nil {
		return
	}
	if cs.State.Running != nil || cs.State.Terminated != nil {
		r.copyLogs(pod.Labels[LabelApp], id, kind)
	}
	st, ok := seen[pod.UID]
	if !ok {
		// A pod that existed before (adopted), or whose restarts were
		// missed, is taken as it is; a new one that already exited has
		// its crash reported below.
		st = &podSeen{restarts: cs.RestartCount}
		seen[pod.UID] = st
		if baseline || cs.RestartCount > 0 {
			st.crashed = cs.State.Terminated != nil || cs.State.Waiting != nil && cs.RestartCount > 0
			return
		}
	}
	if pod.DeletionTimestamp != nil {
		return // stopped on purpose
	}
	ev := func(typ runtime.EventType, t *corev1.ContainerStateTerminated) {
		e := runtime.InstanceEvent{Time: time.Now(), Type: typ, Instance: id, App: pod.Labels[LabelApp], Service: pod.Labels[LabelService],
			Release: pod.Labels[LabelRelease], Kind: kind, Restarts: int(cs.RestartCount)}
		if t != nil {
			e.ExitCode = int(t.ExitCode)
			switch {
			case t.Reason == "OOMKilled":
				e.Message = "OOM"
			case t.Signal != 0:
				e.Message = fmt.Sprintf("killed by signal %d", t.Signal)
			case t.ExitCode > 128:
				e.Message = fmt.Sprintf("killed by signal %d", t.ExitCode-128)
			default:
				e.Message = fmt.Sprintf("exit status %d", t.ExitCode)
			}
		}
		if typ == runtime.EventCrash {
			e.Restarts = int(st.restarts)
		}
		r.events.Publish(e)
	}
	if cs.RestartCount > st.restarts {
		if !st.crashed {
			ev(runtime.EventCrash, cs.LastTerminationState.Terminated)
		}
		st.restarts, st.crashed = cs.RestartCount, false
		ev(runtime.EventRestart, nil)
	}
	if !st.crashed {
		if t := cs.State.Terminated; t != nil {
			st.crashed = true
			ev(runtime.EventCrash, t)
		} else if w := cs.State.Waiting; w != nil && w.Reason == "CrashLoopBackOff" {
			st.crashed = true
			ev(runtime.EventCrash, cs.LastTerminationState.Terminated)
		}
	}
}

// copyLogs starts copying the logs of an instance, unless that runs
// already.
func (r *Runtime) copyLogs(app, id string, kind runtime.Kind) {
	r.followers.Start(&r.life, r.ctx, id, func(ctx context.Context) { r.copyLoop(ctx, app, id, kind) })
}

// stopCopy ends an instance's log copy, once it has read what the
// instance printed.
func (r *Runtime) stopCopy(id string) { r.followers.Stop(id, 3*time.Second) }

// copyLoop follows the logs of the instance's current pod from after the
// last line copied, and again when they end (its container restarted, or
// the pod was replaced), until the instance is gone.
func (r *Runtime) copyLoop(ctx context.Context, app, id string, kind runtime.Kind) {
	path := seam.LogPath(r.opts.DataDir, app, id)
	lf, err := logs.Open(path, r.opts.LogMaxSize, r.opts.LogMaxFiles)
	if err != nil {
		r.log.Warn("cannot open the log file", "instance", id, "err", err)
		return
	}
	defer lf.Close()
	ns, name := r.Namespace(app), instanceName(id, kind)
	for ctx.Err() == nil {
		if _, err := r.getWorkload(ctx, ns, name, kind); apierrors.IsNotFound(err) {
			return
		}
		pods, err := r.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: r.instanceSelector(name)})
		if err == nil {
			for i := range pods.Items {
				cs := appStatus(&pods.Items[i])
				if cs == nil || cs.State.Waiting != nil && cs.RestartCount == 0 {
					continue
				}
				since := logs.LastTime(path)
				err := r.streamLogs(ctx, ns, &pods.Items[i], since, func(stream string, t time.Time, text []byte) {
					if !since.IsZero() && !t.After(since) {
						return
					}
					for len(text) > logs.MaxLine {
						lf.WriteLine(t, stream, text[:logs.MaxLine])
						text = text[logs.MaxLine:]
					}
					lf.WriteLine(t, stream, text)
				})
				if err != nil && ctx.Err() == nil {
					r.log.Debug("pod logs ended", "instance", id, "err", err)
				}
			}
		}
		if sleep(ctx, time.Second) != nil {
			return
		}
	}
}

// streamLogs follows the logs of the pod's container from since (zero:
// the start) until they end, and calls fn with each line, one call at a
// time. Where the cluster has PodLogsQuerySplitStreams, stdout and stderr
// are read apart; else every line is "stdout".
func (r *Runtime) streamLogs(ctx context.Context, ns string, pod *corev1.Pod, since time.Time, fn func(stream string, t time.Time, text []byte)) error {
	var mu sync.Mutex
	emit := func(stream string) func(time.Time, []byte) {
		return func(t time.Time, text []byte) {
			mu.Lock()
			defer mu.Unlock()
			fn(stream, t, text)
		}
	}
	opts := func(stream string) *corev1.PodLogOptions {
		o := &corev1.PodLogOptions{Container: containerName, Follow: true, Timestamps: true}
		if stream != "" {
			o.Stream = ptr.To(stream)
		}
		if !since.IsZero() {
			o.SinceTime = &metav1.Time{Time: since.Truncate(time.Second)}
		}
		return o
	}
	r.mu.Lock()
	split := r.split
	r.mu.Unlock()
	if split >= 0 {
		out, err := r.cs.CoreV1().Pods(ns).GetLogs(pod.Name, opts(corev1.LogStreamStdout)).Stream(ctx)
		if err == nil {
			r.setSplit(1)
			errc := make(chan error, 1)
			go func() {
				rc, err := r.cs.CoreV1().Pods(ns).GetLogs(pod.Name, opts(corev1.LogStreamStderr)).Stream(ctx)
				if err == nil {
					err = readLines(rc, emit("stderr"))
					rc.Close()
				}
				errc <- err
			}()
			err = readLines(out, emit("stdout"))
			out.Close()
			return errors.Join(err, <-errc)
		}
		// The API server without the gate refuses the field (Invalid);
		// a kubelet without it says so (BadRequest). Other refusals (a
		// container waiting to start) are about this pod only.
		if !apierrors.IsInvalid(err) && !(apierrors.IsBadRequest(err) && strings.Contains(err.Error(), "PodLogsQuerySplitStreams")) {
			return err
		}
		r.setSplit(-1)
		r.log.Info("the cluster reads a pod's log as one stream (no PodLogsQuerySplitStreams feature gate): every line is logged as stdout", "err", err)
	}
	rc, err := r.cs.CoreV1().Pods(ns).GetLogs(pod.Name, opts("")).Stream(ctx)
	if err != nil {
		return err
	}
	defer rc.Close()
	return readLines(rc, emit("stdout"))
}

func (r *Runtime) setSplit(v int) {
	r.mu.Lock()
	r.split = v
	r.mu.Unlock()
}

// readLines reads "TIMESTAMP TEXT" lines (the API server's logs with
// timestamps) until the stream ends.
func readLines(rd io.Reader, fn func(time.Time, []byte)) error {
	br := bufio.NewReaderSize(rd, 64*1024)
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			line = bytes.TrimSuffix(line, []byte{'\n'})
			ts, text, _ := bytes.Cut(line, []byte{' '})
			t, perr := time.Parse(time.RFC3339Nano, string(ts))
			if perr != nil {
				t, text = time.Now(), line
			}
			fn(t, text)
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// Logs calls fn for each matching line of instance id, oldest first. Logs
// stay readable after the instance is removed. With Follow it keeps
// streaming until ctx is done or the instance is removed.
func (r *Runtime) Logs(ctx context.Context, id string, opts runtime.LogOptions, fn func(runtime.LogLine) error) error {
	exists := func(ctx context.Context) bool {
		_, err := r.find(ctx, id)
		return !errors.Is(err, runtime.ErrNotFound)
	}
	return seam.ReadLogs(ctx, r.life.Check, r.opts.DataDir, id, opts, exists, r.ctx.Done(), fn)
}

// PruneLogs deletes app's log files of instances ret.Keep does not keep.
func (r *Runtime) PruneLogs(ctx context.Context, app string, ret runtime.LogRetention) (int64, error) {
	return seam.PruneLogs(ctx, r.life.Check, r.opts.DataDir, app, ret)
}
