package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/moby/moby/client"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	k8s "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/runtime/containers"
	"github.com/moorage/moorage/internal/runtime/docker"
	"github.com/moorage/moorage/internal/runtime/seam"
)

// Name is the runtime's name.
const Name = "kubernetes"

// FieldManager is the field manager of every server-side apply.
const FieldManager = "moorage"

// ErrUnavailable is returned by New when the cluster's API server does not
// answer.
var ErrUnavailable = errors.New("kubernetes API server not available")

// Labels and annotations only the runtime puts on what it makes, beside
// Labels'.
const (
	// LabelPrefix is the runtime's prefix (Options.Prefix): two servers
	// with different prefixes never see each other's objects.
	LabelPrefix = "moorage.prefix"
	// LabelInstance is the object name of the instance (instanceName):
	// the selector of its pods.
	LabelInstance = "moorage.instance"
	// LabelIndex is the replica index.
	LabelIndex = "moorage.index"

	annInstance = "moorage.instance" // the instance ID (may be longer than a label value)
	annHash     = "moorage.hash"
	annPort     = "moorage.port"
	annExit     = "moorage.exit-code" // the last exit code Stop saw
)

// containerName is the one container of every pod the runtime makes.
const containerName = "app"

// RuntimeOptions configure a kubernetes runtime (Options are the
// mapping's).
type RuntimeOptions struct {
	// DataDir is the server's data directory (logs, the builder's state).
	DataDir string
	Logger  *slog.Logger
	// Prefix names and labels everything the runtime makes (default
	// "moorage"): app APP lives in namespace PREFIX-APP.
	Prefix string
	// Kubeconfig and Context select the cluster ("": $KUBECONFIG, then
	// ~/.kube/config, then the in-cluster service account). Config, when
	// set, is used instead (tests).
	Kubeconfig string
	Context    string
	Config     *rest.Config
	// Registry ("10.0.0.1:5000" or "registry.example.com/team") is where
	// release images built here go: the builder pushes <Registry>/<app>,
	// and pods name the image by digest (<Registry>/<app>@sha256:...),
	// which the nodes pull. The nodes must reach it and trust it.
	Registry string
	// DockerHost is the Docker API the builder uses ("": DOCKER_HOST or
	// the default socket).
	DockerHost string
	// StorageClass is the class of the volumes' claims. "" with VolumeDir
	// set: hostPath volumes the runtime makes under VolumeDir (a
	// single-node cluster whose node is this machine); "" without: the
	// cluster's default class, which must exist.
	StorageClass string
	VolumeDir    string
	// LogMaxSize and LogMaxFiles rotate each instance's log (defaults 10
	// MiB, 5 files).
	LogMaxSize  int64
	LogMaxFiles int
	// StartTimeout bounds how long Start waits for a pod to run (default
	// 3 minutes: scheduling and an image pull).
	StartTimeout time.Duration
}

// Runtime runs instances on a Kubernetes cluster. It implements
// runtime.Runtime.
type Runtime struct {
	opts    RuntimeOptions
	log     *slog.Logger
	cfg     *rest.Config
	cs      k8s.Interface
	builder *docker.Runtime
	docker  *client.Client // the builder's engine, which pushes

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	life   seam.Life
	events *runtime.Broker

	seam.Stopper
	ids   seam.IDLocks
	tasks seam.Tasks

	nsMu   sync.Mutex
	nsDone map[string]bool

	mu        sync.Mutex
	followers seam.Followers // log copies by instance ID
	split     int            // pod logs by stream: 0 unknown, 1 yes, -1 no
}

var _ runtime.Runtime = (*Runtime)(nil)

// New connects to the cluster, starts the image builder, adopts the
// instances of opts.Prefix (their logs are copied again) and watches their
// pods.
func New(ctx context.Context, opts RuntimeOptions) (*Runtime, error) {
	if err := seam.Setup(Name, &opts.DataDir, &opts.Logger); err != nil {
		return nil, err
	}
	if opts.Prefix == "" {
		opts.Prefix = docker.DefaultPrefix
	}
	if err := containers.ValidPrefix(Name, opts.Prefix); err != nil {
		return nil, err
	}
	if opts.LogMaxSize <= 0 {
		opts.LogMaxSize = seam.DefaultLogMaxSize
	}
	if opts.LogMaxFiles <= 0 {
		opts.LogMaxFiles = seam.DefaultLogMaxFiles
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = 3 * time.Minute
	}
	cfg := opts.Config
	if cfg == nil {
		rules := clientcmd.NewDefaultClientConfigLoadingRules()
		rules.ExplicitPath = opts.Kubeconfig
		var err error
		cfg, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: opts.Context}).ClientConfig()
		if err != nil {
			return nil, fmt.Errorf("%w: kubeconfig: %w; give the server --kube-config and --kube-context", ErrUnavailable, err)
		}
	}
	cfg = rest.CopyConfig(cfg)
	if cfg.QPS == 0 {
		cfg.QPS, cfg.Burst = 50, 100
	}
	cs, err := k8s.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	vctx, vcancel := context.WithTimeout(ctx, 15*time.Second)
	_, err = cs.CoreV1().Namespaces().List(vctx, metav1.ListOptions{Limit: 1})
	vcancel()
	if err != nil {
		return nil, fmt.Errorf("%w at %s: %w", ErrUnavailable, cfg.Host, err)
	}
	b, err := docker.New(ctx, docker.Options{
		DataDir: filepath.Join(opts.DataDir, "runtime", Name, "builder"),
		Logger:  opts.Logger.With("part", "build"),
		Prefix:  opts.Prefix + "-kube",
		Host:    opts.DockerHost,
		// No "./dir" host paths: refused before the image is built.
		CheckFiles: checkFiles,
	})
	if err != nil {
		return nil, fmt.Errorf("kubernetes runtime: image builder: %w", err)
	}
	copts := []client.Opt{client.FromEnv}
	if opts.DockerHost != "" {
		copts = append(copts, client.WithHost(opts.DockerHost))
	}
	dcli, err := client.New(copts...)
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("kubernetes runtime: docker: %w", err)
	}
	rctx, cancel := context.WithCancel(context.Background())
	r := &Runtime{
		opts: opts, log: opts.Logger, cfg: cfg, cs: cs, builder: b, docker: dcli,
		ctx: rctx, cancel: cancel, events: runtime.NewBroker(),
		nsDone: map[string]bool{},
	}
	r.Stopper = seam.NewStopper(&r.ids, r.life.Check, r.stop)
	if err := r.removeLeftJobs(ctx); err != nil {
		r.Close()
		return nil, err
	}
	ins, err := r.List(ctx, runtime.Filter{})
	if err != nil {
		r.Close()
		return nil, err
	}
	for _, in := range ins {
		r.copyLogs(in.App, in.ID, in.Kind)
	}
	r.life.Go(r.watchLoop)
	return r, nil
}

// Name returns "kubernetes".
func (r *Runtime) Name() string { return Name }

// Close stops watching and copying logs. What runs keeps running; a new
// runtime with the same prefix adopts it.
func (r *Runtime) Close() error {
	if !r.life.End(r.cancel) {
		return nil
	}
	r.events.Close()
	r.builder.Close()
	return r.docker.Close()
}

// Events streams instance events until ctx is done.
func (r *Runtime) Events(ctx context.Context) <-chan runtime.InstanceEvent {
	return r.events.Subscribe(ctx)
}

// Namespace is the namespace of app: PREFIX-APP (shortened with a hash
// past 63 characters).
func (r *Runtime) Namespace(app string) string {
	return shortName(MaxNameLength, "", r.opts.Prefix, app)
}

// instanceName is the object name of instance id (a Deployment, a
// StatefulSet, a Job) and the value of its pods' LabelInstance.
func instanceName(id string, kind runtime.Kind) string {
	if kind == runtime.KindAccessory {
		return shortName(MaxStatefulSetNameLength, "", id)
	}
	return shortName(MaxNameLength, "", id)
}

// ownSelector selects everything of the runtime.
func (r *Runtime) ownSelector() string {
	return LabelManagedBy + "=" + ManagedBy + "," + LabelPrefix + "=" + r.opts.Prefix
}

// instanceSelector selects the objects and pods of one instance.
func (r *Runtime) instanceSelector(name string) string {
	return r.ownSelector() + "," + LabelInstance + "=" + name
}

// labels are the labels of an instance's objects and pods.
func (r *Runtime) labels(s *runtime.InstanceSpec, name string) map[string]string {
	l := Labels(s.App, s.Service, s.Release, string(s.Kind))
	l[LabelPrefix] = r.opts.Prefix
	l[LabelInstance] = name
	l[LabelIndex] = strconv.Itoa(s.Index)
	return l
}

// owned reports whether an object is the runtime's.
func (r *Runtime) owned(m metav1.Object) bool {
	l := m.GetLabels()
	return l[LabelManagedBy] == ManagedBy && l[LabelPrefix] == r.opts.Prefix
}

// ensureNamespace creates app's namespace when it is missing.
func (r *Runtime) ensureNamespace(ctx context.Context, app string) (string, error) {
	ns := r.Namespace(app)
	r.nsMu.Lock()
	defer r.nsMu.Unlock()
	if r.nsDone[ns] {
		return ns, nil
	}
	got, err := r.cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	switch {
	case err == nil:
		if got.Labels[LabelManagedBy] != ManagedBy {
			return "", fmt.Errorf("namespace %s exists and is not moorage's (no %s=%s label): moorage never uses it; remove it, or give this server another --kube-prefix", ns, LabelManagedBy, ManagedBy)
		}
		if got.DeletionTimestamp != nil {
			return "", fmt.Errorf("namespace %s is being deleted: try again once it is gone", ns)
		}
	case apierrors.IsNotFound(err):
		l := Labels(app, "", "", "")
		l[LabelPrefix] = r.opts.Prefix
		obj := &corev1.Namespace{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"}, ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: l}}
		if err := r.apply(ctx, "", obj); err != nil {
			return "", fmt.Errorf("namespace %s: %w", ns, err)
		}
	default:
		return "", fmt.Errorf("namespace %s: %w", ns, err)
	}
	r.nsDone[ns] = true
	return ns, nil
}

// apply applies obj (with its TypeMeta set) server-side as FieldManager.
func (r *Runtime) apply(ctx context.Context, ns string, obj metav1.Object) error {
	body, err := ManifestJSON(obj)
	if err != nil {
		return err
	}
	opts := metav1.PatchOptions{FieldManager: FieldManager, Force: ptr.To(true)}
	name := obj.GetName()
	switch obj.(type) {
	case *corev1.Namespace:
		_, err = r.cs.CoreV1().Namespaces().Patch(ctx, name, types.ApplyPatchType, body, opts)
	case *corev1.Secret:
		_, err = r.cs.CoreV1().Secrets(ns).Patch(ctx, name, types.ApplyPatchType, body, opts)
	case *corev1.PersistentVolumeClaim:
		_, err = r.cs.CoreV1().PersistentVolumeClaims(ns).Patch(ctx, name, types.ApplyPatchType, body, opts)
	case *corev1.PersistentVolume:
		_, err = r.cs.CoreV1().PersistentVolumes().Patch(ctx, name, types.ApplyPatchType, body, opts)
	default:
		err = r.applyWorkload(ctx, ns, obj, body, opts)
	}
	return err
}

// sleep waits d, or returns ctx's error.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
