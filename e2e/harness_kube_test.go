package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"

	"github.com/moorage/moorage/internal/testutil/kubetest"
)

// kubeArgs are the `moorage server` flags that put a server's kubernetes
// runtime on the cluster c, as a user would give them
// (docs/runtimes.md#kubernetes): its kubeconfig and context, the registry
// its node pulls from, and a directory of this machine (the cluster's one
// node) for the volumes, which the cluster has no StorageClass for.
func kubeArgs(c *kubetest.Cluster, volumeDir string) []string {
	return []string{
		"--kube-config", c.Kubeconfig,
		"--kube-context", "kubetest",
		"--kube-registry", c.Registry,
		"--kube-volume-dir", volumeDir,
	}
}

// kubeCleanup removes from a kubernetes server's cluster, which other
// tests share (TestKubernetes), what the server made there: the
// namespaces of its apps (PREFIX-APP), their pods killed at once, and the
// PersistentVolumes bound in them. It waits until the namespaces are gone,
// so that the next test does not share the machine with this one's pods.
func kubeCleanup(s *server) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cs := s.kube.Client
	nss, err := cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		s.t.Errorf("kube cleanup: list namespaces: %v", err)
		return
	}
	mine := func(ns string) bool { return strings.HasPrefix(ns, s.prefix+"-") }
	var left []string
	for _, ns := range nss.Items {
		if !mine(ns.Name) {
			continue
		}
		left = append(left, ns.Name)
		now := metav1.DeleteOptions{GracePeriodSeconds: new(int64)}
		if err := cs.CoreV1().Pods(ns.Name).DeleteCollection(ctx, now, metav1.ListOptions{}); err != nil {
			s.t.Errorf("kube cleanup: delete the pods of %s: %v", ns.Name, err)
		}
		if err := cs.CoreV1().Namespaces().Delete(ctx, ns.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			s.t.Errorf("kube cleanup: delete namespace %s: %v", ns.Name, err)
		}
	}
	if pvs, err := cs.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{}); err != nil {
		s.t.Errorf("kube cleanup: list persistent volumes: %v", err)
	} else {
		for _, pv := range pvs.Items {
			if ref := pv.Spec.ClaimRef; ref != nil && mine(ref.Namespace) {
				if err := cs.CoreV1().PersistentVolumes().Delete(ctx, pv.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
					s.t.Errorf("kube cleanup: delete persistent volume %s: %v", pv.Name, err)
				}
			}
		}
	}
	for _, ns := range left {
		for {
			_, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				break
			}
			if ctx.Err() != nil {
				s.t.Errorf("kube cleanup: namespace %s is still there after 3 min (last: %v); the end of the controller manager's log:\n%s", ns, err, s.kube.Logs("kube-controller-manager", 30))
				return
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
}

// kubeVolumePath is the host directory of a kubernetes server's volume:
// VOLUME_DIR/NAMESPACE/NAME, the namespace being PREFIX-APP
// (internal/runtime/kubernetes, EnsureVolume).
func kubeVolumePath(s *server, app, name string) string {
	return filepath.Join(s.shared, s.prefix+"-"+app, name)
}

// singletonWatch records the pods of one service of an app on a kubernetes
// server's cluster, from the cluster's own watch: every pod created while
// another of the service still existed (pending, running or terminating)
// is an overlap, which a singleton must never have.
type singletonWatch struct {
	stopCh chan struct{}
	mu     sync.Mutex
	live   map[string]bool
	seen   map[string]bool
	over   []string
}

func watchSingleton(t testing.TB, s *server, app, svc string) *singletonWatch {
	t.Helper()
	w := &singletonWatch{stopCh: make(chan struct{}), live: map[string]bool{}, seen: map[string]bool{}}
	f := informers.NewSharedInformerFactoryWithOptions(s.kube.Client, 0,
		informers.WithNamespace(s.prefix+"-"+app),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.LabelSelector = "moorage.app=" + app + ",moorage.service=" + svc
		}))
	inf := f.Core().V1().Pods().Informer()
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			p, ok := obj.(*corev1.Pod)
			if !ok {
				return
			}
			w.mu.Lock()
			defer w.mu.Unlock()
			if len(w.live) > 0 && !w.seen[p.Name] {
				var others []string
				for n := range w.live {
					others = append(others, n)
				}
				w.over = append(w.over, fmt.Sprintf("%s created while %s existed", p.Name, strings.Join(others, ", ")))
			}
			w.live[p.Name], w.seen[p.Name] = true, true
		},
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if p, ok := obj.(*corev1.Pod); ok {
				w.mu.Lock()
				delete(w.live, p.Name)
				w.mu.Unlock()
			}
		},
	}); err != nil {
		t.Fatal(err)
	}
	f.Start(w.stopCh)
	if !cache.WaitForCacheSync(w.stopCh, inf.HasSynced) {
		t.Fatal("the pod watch never synced")
	}
	t.Cleanup(w.stop)
	return w
}

func (w *singletonWatch) stop() {
	select {
	case <-w.stopCh:
	default:
		close(w.stopCh)
	}
}

// result stops the watch and returns how many pods it saw and the
// overlaps.
func (w *singletonWatch) result() (pods int, overlaps []string) {
	w.stop()
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.seen), append([]string(nil), w.over...)
}

// kubeJobs lists the Jobs of app on a kubernetes server's cluster that
// match the label selector sel.
func kubeJobs(s *server, app, sel string) []string {
	s.t.Helper()
	js, err := s.kube.Client.BatchV1().Jobs(s.prefix+"-"+app).List(context.Background(), metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		s.t.Fatalf("list jobs: %v", err)
	}
	var names []string
	for _, j := range js.Items {
		names = append(names, j.Name)
	}
	return names
}

// kubeProbesPass checks, for each service of app (with the Host its HTTP
// check must send, "" for a command check), that its pods carry the
// spec's check as readiness and startup probes and that the kubelet's
// probes pass: every pod of the service not being deleted turns Ready.
func kubeProbesPass(t *testing.T, s *server, app string, hosts map[string]string) {
	t.Helper()
	for svc, host := range hosts {
		waitFor(t, 60*time.Second, "the "+svc+" pods' probes to pass", func() error {
			pods, err := s.kube.Client.CoreV1().Pods(s.prefix+"-"+app).List(context.Background(), metav1.ListOptions{LabelSelector: "moorage.app=" + app + ",moorage.service=" + svc})
			if err != nil {
				return err
			}
			live := 0
			for _, p := range pods.Items {
				if p.DeletionTimestamp != nil {
					continue
				}
				live++
				c := p.Spec.Containers[0]
				if c.ReadinessProbe == nil || c.StartupProbe == nil {
					t.Fatalf("pod %s: readiness probe %v, startup probe %v: want both", p.Name, c.ReadinessProbe, c.StartupProbe)
				}
				switch get := c.ReadinessProbe.HTTPGet; {
				case host != "" && (get == nil || len(get.HTTPHeaders) != 1 || get.HTTPHeaders[0].Name != "Host" || get.HTTPHeaders[0].Value != host):
					t.Fatalf("pod %s: readiness probe %+v, want an HTTP GET with Host %s", p.Name, c.ReadinessProbe.ProbeHandler, host)
				case host == "" && c.ReadinessProbe.Exec == nil:
					t.Fatalf("pod %s: readiness probe %+v, want the command check", p.Name, c.ReadinessProbe.ProbeHandler)
				}
				ready := false
				for _, cond := range p.Status.Conditions {
					ready = ready || cond.Type == corev1.PodReady && cond.Status == corev1.ConditionTrue
				}
				if !ready {
					return fmt.Errorf("pod %s is not ready: %+v", p.Name, p.Status.Conditions)
				}
			}
			if live == 0 {
				return fmt.Errorf("no pod of %s", svc)
			}
			return nil
		})
	}
}
