package kubernetes

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/moorage/moorage/internal/health"
	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/spec"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"
)

// ErrUnsupported is returned for what a spec says that the mapping cannot
// express on Kubernetes (yet).
var ErrUnsupported = errors.New("not supported on kubernetes")

// Release is what the mapping needs of one release of an app.
type Release struct {
	App     string
	Version int // N of vN
	Spec    *spec.Spec
	// Image is the release's image reference, by digest when the release
	// has one (registry/app@sha256:...), which every pod of the release
	// then runs whatever a tag later points at.
	Image string
	// Formation is the replicas of each service (`moorage scale`); a
	// service it does not list has the spec's.
	Formation map[string]int
	// Config is the release's config values (`moorage config set`),
	// taken literally.
	Config map[string]string
	// Secrets is the release's opened secret values, taken literally. They
	// go into the Secret object and nowhere else.
	Secrets map[string]string
}

// ID is "vN".
func (r *Release) ID() string { return "v" + strconv.Itoa(r.Version) }

// Options are the cluster's side of the mapping.
type Options struct {
	Namespace string // the app's namespace; "" leaves it to whoever applies
	// PullPolicy of the release's image; "" is IfNotPresent (an image by
	// digest never changes).
	PullPolicy corev1.PullPolicy
	// StorageClass of the volumes' claims; "" is the cluster's default.
	StorageClass string
	// VolumeSize is the storage each claim requests (the spec has no size
	// for volumes); zero is DefaultVolumeSize.
	VolumeSize resource.Quantity
}

// DefaultVolumeSize is what a volume's claim requests when Options says
// nothing.
var DefaultVolumeSize = resource.MustParse("1Gi")

// ProgressSlack is added to a service's readiness window (its health
// check's start period, or min_ready) to make its Deployment's
// progressDeadlineSeconds: the time to schedule a pod and pull its image.
const ProgressSlack = 2 * time.Minute

// Objects are the Kubernetes objects of one release, as typed values, in
// the order they are applied.
type Objects struct {
	// Release-wide, immutable.
	ConfigMap *corev1.ConfigMap
	Secret    *corev1.Secret
	// Shared by the releases: the app volumes' claims, and the
	// accessories (never restarted by an app deploy) with their headless
	// Services and the Secrets of the secrets they declare.
	VolumeClaims      []*corev1.PersistentVolumeClaim
	AccessorySecrets  []*corev1.Secret
	AccessoryServices []*corev1.Service
	StatefulSets      []*appsv1.StatefulSet
	// Release tasks then checks, in the spec's order: one Job each.
	Jobs []*batchv1.Job
	// One Deployment per service, in spec.ServiceNames order (routed
	// first).
	Deployments []*appsv1.Deployment
	// One Service per routed service, selecting this release's pods.
	Services []*corev1.Service
}

// Manifests maps release r onto Kubernetes objects. It is pure and
// deterministic: the same release and options give the same objects, and
// it reads nothing but its arguments.
func Manifests(r Release, o Options) (*Objects, error) {
	sp := r.Spec
	if sp == nil {
		return nil, errors.New("release has no spec")
	}
	if r.App == "" || r.Version <= 0 {
		return nil, fmt.Errorf("release %q %s: an app and a version are needed", r.App, r.ID())
	}
	if r.Image == "" {
		return nil, fmt.Errorf("release %s of %s has no image", r.ID(), r.App)
	}
	if o.PullPolicy == "" {
		o.PullPolicy = corev1.PullIfNotPresent
	}
	if o.VolumeSize.IsZero() {
		o.VolumeSize = DefaultVolumeSize
	}
	m := &mapper{r: r, o: o, rel: r.ID()}
	if err := m.check(); err != nil {
		return nil, err
	}
	m.env = newEnvPlan(sp.Env, r.Config, r.Secrets, m.accessoryEnv())
	objs := &Objects{}
	objs.ConfigMap, objs.Secret = m.configMap(), m.secret()
	for _, n := range slices.Sorted(maps.Keys(sp.Volumes)) {
		objs.VolumeClaims = append(objs.VolumeClaims, m.volumeClaim(n))
	}
	for _, n := range sp.AccessoryNames() {
		a := sp.Accessories[n]
		if s := m.accessorySecret(a); s != nil {
			objs.AccessorySecrets = append(objs.AccessorySecrets, s)
		}
		if a.Port > 0 {
			objs.AccessoryServices = append(objs.AccessoryServices, m.accessoryService(a))
		}
		st, err := m.statefulSet(a)
		if err != nil {
			return nil, err
		}
		objs.StatefulSets = append(objs.StatefulSets, st)
	}
	for _, list := range []struct {
		kind  string
		tasks []spec.Task
	}{{"release", sp.Release}, {"check", sp.Checks}} {
		for i, t := range list.tasks {
			j, err := m.job(fmt.Sprintf("%s-%d", list.kind, i+1), t)
			if err != nil {
				return nil, err
			}
			objs.Jobs = append(objs.Jobs, j)
		}
	}
	for _, n := range sp.ServiceNames() {
		d, err := m.deployment(sp.Services[n])
		if err != nil {
			return nil, err
		}
		objs.Deployments = append(objs.Deployments, d)
		if sp.Services[n].Routed() {
			objs.Services = append(objs.Services, m.service(sp.Services[n]))
		}
	}
	return objs, nil
}

type mapper struct {
	r   Release
	o   Options
	rel string
	env *envPlan
}

// check refuses what the mapping cannot express, before anything is made.
func (m *mapper) check() error {
	sp := m.r.Spec
	var problems []string
	for _, n := range sp.ServiceNames() {
		s := sp.Services[n]
		if len(s.Files) > 0 {
			problems = append(problems, fmt.Sprintf("service %s: files: (directories of the upload) are not mapped onto Kubernetes yet; copy them into the image (COPY in the Dockerfile) instead", n))
		}
		if s.Placement != nil {
			problems = append(problems, fmt.Sprintf("service %s: placement: is Swarm's syntax; use the cluster's own scheduling", n))
		}
		if _, err := securityContext(s.User, s.ReadOnly); err != nil {
			problems = append(problems, fmt.Sprintf("service %s: %v", n, err))
		}
		if h := s.Health; h != nil && (h.Path != "" || h.TCP) && s.Port == 0 {
			problems = append(problems, fmt.Sprintf("service %s: its HTTP or TCP health check needs a port; set port:, or check with a command (health: {command: ...})", n))
		}
	}
	for _, n := range sp.AccessoryNames() {
		a := sp.Accessories[n]
		if a.Image == "" {
			problems = append(problems, fmt.Sprintf("accessory %s: an image is needed on Kubernetes; set image:", n))
		}
		for _, v := range a.Volumes {
			if strings.HasPrefix(v.Name, "/") || strings.HasPrefix(v.Name, ".") {
				problems = append(problems, fmt.Sprintf("accessory %s: the host path %s cannot be mounted on a cluster; use a named volume", n, v.Name))
			}
		}
		if a.Placement != nil {
			problems = append(problems, fmt.Sprintf("accessory %s: placement: is Swarm's syntax; use the cluster's own scheduling", n))
		}
		if _, err := securityContext(a.User, false); err != nil {
			problems = append(problems, fmt.Sprintf("accessory %s: %v", n, err))
		}
		if h := a.Health; h != nil && (h.Path != "" || h.TCP) && a.Port == 0 {
			problems = append(problems, fmt.Sprintf("accessory %s: its HTTP or TCP health check needs a port; set port:, or check with a command (health: {command: ...})", n))
		}
	}
	problems = append(problems, m.checkNames()...)
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrUnsupported, strings.Join(problems, "; "))
	}
	return nil
}

// checkNames validates every object name and label value the mapping
// makes of the spec's names, each against Kubernetes' own rule: the spec
// allows names Kubernetes refuses (one that ends in "-": "web-" makes the
// Service hello-web- and the label value web-). Each problem names the
// spec's key.
func (m *mapper) checkNames() []string {
	sp := m.r.Spec
	var problems []string
	// bad checks the names (DNS-1123 labels) and label values that the
	// spec's name at key (its value given) makes.
	bad := func(key, value string, names, labels []string) {
		var made, rules []string
		note := func(what string, errs []string) {
			if len(errs) == 0 {
				return
			}
			made = append(made, what)
			for _, e := range errs {
				if !slices.Contains(rules, e) {
					rules = append(rules, e)
				}
			}
		}
		for _, n := range names {
			note(fmt.Sprintf("the name %q", n), validation.IsDNS1123Label(n))
		}
		for _, l := range labels {
			note(fmt.Sprintf("the label value %q", l), validation.IsValidLabelValue(l))
		}
		if len(made) == 0 {
			return
		}
		fix := "rename it so that it starts and ends with a lower-case letter or digit"
		if t := strings.TrimRight(value, "-"); t != value && t != "" {
			fix += fmt.Sprintf(" (e.g. %q)", t)
		}
		problems = append(problems, fmt.Sprintf("%s: %q makes %s, which Kubernetes refuses (%s); %s",
			key, value, strings.Join(made, ", "), strings.Join(rules, "; "), fix))
	}
	app := m.r.App
	bad("app", app, []string{ConfigMapName(app, m.rel), SecretName(app, m.rel)}, []string{app, m.rel})
	for _, n := range sp.ServiceNames() {
		names := []string{DeploymentName(app, n, m.rel), n} // n: the container's name
		if sp.Services[n].Routed() {
			names = append(names, ServiceName(app, n))
		}
		bad("services."+n, n, names, []string{n})
	}
	for i := range sp.Release {
		l := fmt.Sprintf("release-%d", i+1)
		bad(fmt.Sprintf("release[%d]", i), l, []string{JobName(app, l, m.rel), l}, []string{l})
	}
	for i := range sp.Checks {
		l := fmt.Sprintf("check-%d", i+1)
		bad(fmt.Sprintf("checks[%d]", i), l, []string{JobName(app, l, m.rel), l}, []string{l})
	}
	for _, n := range sp.AccessoryNames() {
		a := sp.Accessories[n]
		bad("accessories."+n, n, []string{AccessoryName(app, n), AccessorySecretName(app, n), n}, []string{n})
		for _, v := range a.Volumes {
			if !strings.HasPrefix(v.Name, "/") && !strings.HasPrefix(v.Name, ".") {
				// A volumeClaimTemplate's name and its pod volume's.
				bad("accessories."+n+".volumes", v.Name, []string{v.Name}, nil)
			}
		}
	}
	for _, n := range slices.Sorted(maps.Keys(sp.Volumes)) {
		bad("volumes."+n, n, []string{VolumeClaimName(app, n), n}, []string{n})
	}
	return problems
}

func (m *mapper) meta(name, svc, rel, kind string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: m.o.Namespace, Labels: Labels(m.r.App, svc, rel, kind)}
}

// accessoryEnv tells services how to reach each accessory with a port: by
// its Service's name, which cluster DNS resolves in the app's namespace.
func (m *mapper) accessoryEnv() map[string]string {
	env := map[string]string{}
	for _, n := range m.r.Spec.AccessoryNames() {
		if a := m.r.Spec.Accessories[n]; a.Port > 0 {
			for k, v := range runtime.AccessoryEnv(n, AccessoryName(m.r.App, n), a.Port) {
				env[k] = v
			}
		}
	}
	return env
}

// configMap is the release's config, immutable: a rollback to this
// release finds it as it was.
func (m *mapper) configMap() *corev1.ConfigMap {
	return &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: m.meta(ConfigMapName(m.r.App, m.rel), "", m.rel, KindConfig),
		Immutable:  ptr.To(true),
		Data:       m.env.cm,
	}
}

// secret is the release's secrets, immutable.
func (m *mapper) secret() *corev1.Secret {
	data := map[string][]byte{}
	for k, v := range m.r.Secrets {
		data[k] = []byte(v)
	}
	return &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: m.meta(SecretName(m.r.App, m.rel), "", m.rel, KindConfig),
		Immutable:  ptr.To(true),
		Type:       corev1.SecretTypeOpaque,
		Data:       data,
	}
}

// envFrom makes a container read the release's Secret, then its ConfigMap
// (see envPlan for the order).
func (m *mapper) envFrom() []corev1.EnvFromSource {
	return []corev1.EnvFromSource{
		{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: SecretName(m.r.App, m.rel)}}},
		{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: ConfigMapName(m.r.App, m.rel)}}},
	}
}

// volumeClaim is an app volume: one claim shared by every release, and by
// every pod of the services that mount it, so it asks for ReadWriteMany
// (a single node serves ReadWriteOnce to all its pods too, but pods of
// several nodes need a storage class that offers ReadWriteMany).
func (m *mapper) volumeClaim(name string) *corev1.PersistentVolumeClaim {
	pvc := &corev1.PersistentVolumeClaim{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolumeClaim"},
		ObjectMeta: m.meta(VolumeClaimName(m.r.App, name), name, "", KindVolume),
		Spec:       m.claimSpec(corev1.ReadWriteMany),
	}
	return pvc
}

func (m *mapper) claimSpec(mode corev1.PersistentVolumeAccessMode) corev1.PersistentVolumeClaimSpec {
	s := corev1.PersistentVolumeClaimSpec{
		AccessModes: []corev1.PersistentVolumeAccessMode{mode},
		Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: m.o.VolumeSize}},
	}
	if m.o.StorageClass != "" {
		s.StorageClassName = ptr.To(m.o.StorageClass)
	}
	return s
}

// volumes returns the pod volumes and container mounts of the app volumes
// svc mounts ("" for tasks: every volume), and their MOORAGE_VOLUME_*
// variables.
func (m *mapper) volumes(svc string) ([]corev1.Volume, []corev1.VolumeMount, map[string]string) {
	var vols []corev1.Volume
	var mounts []corev1.VolumeMount
	env := map[string]string{}
	for _, v := range m.r.Spec.VolumesFor(svc) {
		vols = append(vols, corev1.Volume{Name: v.Name, VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: VolumeClaimName(m.r.App, v.Name)},
		}})
		mounts = append(mounts, corev1.VolumeMount{Name: v.Name, MountPath: v.Mount})
		env[spec.VolumeEnv(v.Name)] = v.Mount
	}
	return vols, mounts, env
}

func (m *mapper) workdir() string {
	if b := m.r.Spec.Build; b != nil {
		return b.Workdir
	}
	return ""
}

// container is the release's container for service svc (nil for a task).
func (m *mapper) container(name string, svc *spec.Service, command spec.Command, mounts []corev1.VolumeMount, volEnv map[string]string) corev1.Container {
	port := 0
	var svcEnv map[string]string
	if svc != nil {
		port, svcEnv = svc.Port, svc.Env
	}
	env := m.env.container(baseEnv(m.r.App, name, m.rel, port, volEnv), svcEnv, true)
	c := corev1.Container{
		Name:            name,
		Image:           m.r.Image,
		ImagePullPolicy: m.o.PullPolicy,
		WorkingDir:      m.workdir(),
		EnvFrom:         m.envFrom(),
		Env:             env,
		VolumeMounts:    mounts,
	}
	known := m.env.commandKnown(env)
	for _, a := range command {
		c.Command = append(c.Command, kubeArg(a, known))
	}
	if port > 0 {
		c.Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: int32(port), Protocol: corev1.ProtocolTCP}}
	}
	if svc == nil {
		return c
	}
	static := baseEnv(m.r.App, name, m.rel, port, volEnv)
	c.ReadinessProbe, c.StartupProbe = probes(svc.Health, port, probeHost(svc), staticCommand(static))
	c.Resources = resources(svc.Memory, svc.CPUs)
	c.SecurityContext, _ = securityContext(svc.User, svc.ReadOnly)
	return c
}

// probes maps a health check onto a readiness probe (after start: Retries
// failures in a row take the pod out of its Service, as moorage's proxy
// takes an instance out) and a startup probe (the pod has StartPeriod,
// then Retries more failures, to pass once; readiness is not probed
// before). An HTTP check sends host as its Host header (the route's
// canonical host, as moorage's own probes do: an app that checks Host,
// like Django's ALLOWED_HOSTS, answers it). command turns a command
// check's argv into the probe's (the kubelet runs it in the container
// with no shell, and expands $(NAME) and "$$" in it).
func probes(h *spec.Health, port int, host string, command func([]string) []string) (readiness, startup *corev1.Probe) {
	if h == nil || (port == 0 && len(h.Command) == 0) {
		return nil, nil
	}
	var handler corev1.ProbeHandler
	switch {
	case h.Path != "":
		handler.HTTPGet = &corev1.HTTPGetAction{Path: h.Path, Port: intstr.FromInt32(int32(port)), Scheme: corev1.URISchemeHTTP}
		if host != "" {
			handler.HTTPGet.HTTPHeaders = []corev1.HTTPHeader{{Name: "Host", Value: host}}
		}
	case len(h.Command) > 0:
		handler.Exec = &corev1.ExecAction{Command: command(h.Command)}
	default:
		handler.TCPSocket = &corev1.TCPSocketAction{Port: intstr.FromInt32(int32(port))}
	}
	period := seconds(h.Interval)
	retries := int32(max(h.Retries, 1))
	readiness = &corev1.Probe{
		ProbeHandler:     handler,
		PeriodSeconds:    period,
		TimeoutSeconds:   seconds(h.Timeout),
		FailureThreshold: retries,
		SuccessThreshold: 1,
	}
	startup = &corev1.Probe{
		ProbeHandler:   handler,
		PeriodSeconds:  period,
		TimeoutSeconds: seconds(h.Timeout),
		// Docker's rule: failures during the start period do not count,
		// then retries do. With no start period a pod not listening at
		// once still has its retries before the kubelet restarts it.
		FailureThreshold: max(int32(math.Ceil(h.StartPeriod.Seconds()/float64(period))), 1) + retries,
		SuccessThreshold: 1,
	}
	return readiness, startup
}

// staticCommand is the export's command check: its $NAME references to
// static (literal values) are expanded here, the others become "" as they
// would in an unset variable (MOORAGE_INSTANCE, the pod's name, is not
// known here). The kubelet expands $(NAME) and "$$" in an exec probe's
// command too, so what moorage expanded is escaped to reach the check as
// it is.
func staticCommand(static map[string]string) func([]string) []string {
	return func(argv []string) []string {
		var cmd []string
		for _, a := range runtime.Expand(argv, static) {
			cmd = append(cmd, kubeLiteral(a))
		}
		return cmd
	}
}

// probeHost is the Host header of svc's HTTP check: its route's
// canonical host, "" for an unrouted service.
func probeHost(svc *spec.Service) string {
	if svc.HTTP == nil {
		return ""
	}
	return health.Host(svc.HTTP.Hosts)
}

// seconds rounds d up to whole seconds, at least 1 (what probes accept).
func seconds(d time.Duration) int32 {
	return max(int32(math.Ceil(d.Seconds())), 1)
}

// resources maps the spec's memory and cpus onto limits (as docker's
// --memory and --cpus are); the scheduler then reserves as much.
func resources(memory int64, cpus float64) corev1.ResourceRequirements {
	var r corev1.ResourceRequirements
	if memory > 0 || cpus > 0 {
		r.Limits = corev1.ResourceList{}
	}
	if memory > 0 {
		r.Limits[corev1.ResourceMemory] = *resource.NewQuantity(memory, resource.BinarySI)
	}
	if cpus > 0 {
		r.Limits[corev1.ResourceCPU] = *resource.NewMilliQuantity(int64(math.Round(cpus*1000)), resource.DecimalSI)
	}
	return r
}

// securityContext maps user ("uid" or "uid:gid": Kubernetes runs no name
// lookup) and a read-only root filesystem.
func securityContext(user string, readOnly bool) (*corev1.SecurityContext, error) {
	if user == "" && !readOnly {
		return nil, nil
	}
	sc := &corev1.SecurityContext{}
	if readOnly {
		sc.ReadOnlyRootFilesystem = ptr.To(true)
	}
	if user != "" {
		u, g, hasG := strings.Cut(user, ":")
		uid, err := strconv.ParseInt(u, 10, 64)
		if err != nil || uid < 0 {
			return nil, fmt.Errorf("user %q: Kubernetes needs a numeric user (uid or uid:gid)", user)
		}
		sc.RunAsUser = ptr.To(uid)
		if hasG {
			gid, err := strconv.ParseInt(g, 10, 64)
			if err != nil || gid < 0 {
				return nil, fmt.Errorf("user %q: Kubernetes needs a numeric group (uid:gid)", user)
			}
			sc.RunAsGroup = ptr.To(gid)
		}
	}
	return sc, nil
}

// stop maps the stop signal and timeouts. Kubernetes sends SIGTERM, or the
// image's STOPSIGNAL; another signal from the spec is set as the
// container's lifecycle.stopSignal, which needs the ContainerStopSignals
// feature gate (alpha in 1.34: a cluster without it drops the field and
// sends SIGTERM; the image's STOPSIGNAL is the portable way).
//
// A routed service's pods first sleep through the drain timeout (a preStop
// sleep), so that a pod taken out of its Service while it is stopped
// (scale-down, eviction) finishes its in-flight requests before the
// signal; the grace period covers that sleep and the stop timeout. At a
// cutover the old release's pods are not stopped: the Service's selector
// moves away from them, and they stop once the monitor window is over.
func stop(c *corev1.Container, pod *corev1.PodSpec, sig spec.Signal, stopTimeout, drain time.Duration) {
	grace := stopTimeout
	if drain > 0 {
		c.Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: int64(seconds(drain))}}}
		grace += time.Duration(seconds(drain)) * time.Second
	}
	if s := syscall.Signal(sig); s != 0 && s != syscall.SIGTERM {
		if c.Lifecycle == nil {
			c.Lifecycle = &corev1.Lifecycle{}
		}
		c.Lifecycle.StopSignal = ptr.To(corev1.Signal(signalName(s)))
		pod.OS = &corev1.PodOS{Name: corev1.Linux} // required with stopSignal
	}
	pod.TerminationGracePeriodSeconds = ptr.To(int64(math.Ceil(grace.Seconds())))
}

// signalName is Kubernetes' name of a signal: SIGQUIT, SIGINT.
func signalName(s syscall.Signal) string {
	return "SIG" + strings.TrimPrefix(strings.ToUpper(spec.Signal(s).String()), "SIG")
}

// drainTimeout is how long a routed service's in-flight requests may take.
func (m *mapper) drainTimeout(s *spec.Service) time.Duration {
	if !s.Routed() {
		return 0
	}
	if s.HTTP.DrainTimeout > 0 {
		return s.HTTP.DrainTimeout
	}
	return m.r.Spec.Deploy.DrainTimeout
}

func (m *mapper) replicas(s *spec.Service) int32 {
	if n, ok := m.r.Formation[s.Name]; ok {
		return int32(n)
	}
	return int32(s.Replicas)
}

// deployment is service s of the release.
//
// A singleton gets replicas 1 (or 0) and strategy Recreate. That alone does
// not keep it single: Recreate orders the pods of one Deployment only, and
// each release has its own Deployment, so the runtime's plan must scale the
// old release's Deployment to zero and see its pod gone (deleted, not
// merely Terminating) before it applies the new one. Nor does it hold
// within one Deployment when a node is lost: its ReplicaSet does not count
// a Terminating pod, and starts a replacement while the old pod, on a node
// that is cut off, may still run. The plan checks the pods, not the
// Deployment's counts.
func (m *mapper) deployment(s *spec.Service) (*appsv1.Deployment, error) {
	vols, mounts, volEnv := m.volumes(s.Name)
	c := m.container(s.Name, s, s.Command, mounts, volEnv)
	pod := corev1.PodSpec{Volumes: vols, EnableServiceLinks: ptr.To(false)}
	stop(&c, &pod, s.StopSignal, s.StopTimeout, m.drainTimeout(s))
	pod.Containers = []corev1.Container{c}
	within := s.MinReady
	if s.Health != nil {
		within = s.Health.StartPeriod
	}
	d := &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: m.meta(DeploymentName(m.r.App, s.Name, m.rel), s.Name, m.rel, KindService),
		Spec: appsv1.DeploymentSpec{
			Replicas:                ptr.To(m.replicas(s)),
			Selector:                &metav1.LabelSelector{MatchLabels: Selector(m.r.App, s.Name, m.rel)},
			ProgressDeadlineSeconds: ptr.To(int32(math.Ceil((within + ProgressSlack).Seconds()))),
			// Each release has its own Deployment, never rolled in place:
			// no older ReplicaSets to keep.
			RevisionHistoryLimit: ptr.To[int32](0),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: Labels(m.r.App, s.Name, m.rel, KindService)},
				Spec:       pod,
			},
		},
	}
	if s.Health == nil && s.MinReady > 0 {
		// No check: ready once up MinReady, as moorage's min_ready gate.
		d.Spec.MinReadySeconds = int32(math.Ceil(s.MinReady.Seconds()))
	}
	if s.Singleton {
		d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
		if *d.Spec.Replicas > 1 {
			d.Spec.Replicas = ptr.To[int32](1)
		}
	}
	return d, nil
}

// service is the Service of routed service s. Its selector names this
// release: the cutover applies it once every Deployment of the release is
// done, and traffic moves in that one update.
func (m *mapper) service(s *spec.Service) *corev1.Service {
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: m.meta(ServiceName(m.r.App, s.Name), s.Name, m.rel, KindService),
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeClusterIP,
			Selector: Selector(m.r.App, s.Name, m.rel),
			Ports: []corev1.ServicePort{{
				Name: "http", Port: int32(s.Port), TargetPort: intstr.FromString("http"), Protocol: corev1.ProtocolTCP,
			}},
		},
	}
}

// job is a release task or check of the release: backoffLimit 0 (a failed
// task is never run again by the cluster: the deploy aborts), the task's
// timeout as activeDeadlineSeconds, restartPolicy Never. It runs as the
// first service does, with every volume.
func (m *mapper) job(label string, t spec.Task) (*batchv1.Job, error) {
	vols, mounts, volEnv := m.volumes("")
	c := m.container(label, nil, t.Command, mounts, volEnv)
	if names := m.r.Spec.ServiceNames(); len(names) > 0 {
		first := m.r.Spec.Services[names[0]]
		c.SecurityContext, _ = securityContext(first.User, first.ReadOnly)
	}
	pod := corev1.PodSpec{
		Volumes:                       vols,
		Containers:                    []corev1.Container{c},
		RestartPolicy:                 corev1.RestartPolicyNever,
		EnableServiceLinks:            ptr.To(false),
		TerminationGracePeriodSeconds: ptr.To(int64(spec.DefaultStopTimeout.Seconds())),
	}
	j := &batchv1.Job{
		TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: m.meta(JobName(m.r.App, label, m.rel), label, m.rel, KindTask),
		Spec: batchv1.JobSpec{
			BackoffLimit: ptr.To[int32](0),
			Parallelism:  ptr.To[int32](1),
			Completions:  ptr.To[int32](1),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: Labels(m.r.App, label, m.rel, KindTask)},
				Spec:       pod,
			},
		},
	}
	if t.Timeout > 0 {
		j.Spec.ActiveDeadlineSeconds = ptr.To(int64(math.Ceil(t.Timeout.Seconds())))
	}
	return j, nil
}

// accessorySecret holds the secrets accessory a declares, and no others.
// It is not immutable and not per release: an accessory is not restarted
// by app deploys, and reads it when it (re)starts.
func (m *mapper) accessorySecret(a *spec.Accessory) *corev1.Secret {
	if len(a.Secrets) == 0 {
		return nil
	}
	data := map[string][]byte{}
	for _, k := range a.Secrets {
		if v, ok := m.r.Secrets[k]; ok {
			data[k] = []byte(v)
		}
	}
	return &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: m.meta(AccessorySecretName(m.r.App, a.Name), a.Name, "", KindAccessory),
		Type:       corev1.SecretTypeOpaque,
		Data:       data,
	}
}

// accessoryService is the headless Service that names accessory a's pod
// in cluster DNS (the StatefulSet's serviceName).
func (m *mapper) accessoryService(a *spec.Accessory) *corev1.Service {
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: m.meta(AccessoryName(m.r.App, a.Name), a.Name, "", KindAccessory),
		Spec: corev1.ServiceSpec{
			ClusterIP: corev1.ClusterIPNone,
			Selector:  accessorySelector(m.r.App, a.Name),
			Ports:     []corev1.ServicePort{{Name: "main", Port: int32(a.Port), TargetPort: intstr.FromInt32(int32(a.Port)), Protocol: corev1.ProtocolTCP}},
		},
	}
}

func accessorySelector(app, acc string) map[string]string {
	return map[string]string{LabelApp: app, LabelService: acc, LabelKind: KindAccessory}
}

// statefulSet is accessory a: one replica, a claim per volume from its
// volumeClaimTemplates (kept when the pod or the StatefulSet goes), its
// spec's env and the secrets it declares. It carries no release label and
// nothing of the release: applying it again in the next deploy changes
// nothing, so an app deploy never restarts it.
func (m *mapper) statefulSet(a *spec.Accessory) (*appsv1.StatefulSet, error) {
	c := corev1.Container{
		Name:            a.Name,
		Image:           a.Image,
		ImagePullPolicy: corev1.PullIfNotPresent,
		Resources:       resources(a.Memory, a.CPUs),
	}
	c.SecurityContext, _ = securityContext(a.User, false)
	if len(a.Secrets) > 0 {
		c.EnvFrom = []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: AccessorySecretName(m.r.App, a.Name)}}}}
	}
	for _, k := range slices.Sorted(maps.Keys(a.Env)) {
		c.Env = append(c.Env, corev1.EnvVar{Name: k, Value: kubeArg(a.Env[k], func(string) bool { return false })})
	}
	known := func(k string) bool { _, ok := a.Env[k]; return ok || slices.Contains(a.Secrets, k) }
	for _, arg := range a.Command {
		c.Command = append(c.Command, kubeArg(arg, known))
	}
	if a.Port > 0 {
		c.Ports = []corev1.ContainerPort{{Name: "main", ContainerPort: int32(a.Port), Protocol: corev1.ProtocolTCP}}
	}
	// A check is expanded against the accessory's env as the container
	// has it (literal: "$$" is "$", references to nothing are "").
	c.ReadinessProbe, c.StartupProbe = probes(a.Health, a.Port, "", staticCommand(runtime.ExpandEnv(a.Env, nil)))
	var claims []corev1.PersistentVolumeClaim
	for _, v := range a.Volumes {
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: v.Name, MountPath: v.Path})
		claims = append(claims, corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Name: v.Name, Labels: Labels(m.r.App, a.Name, "", KindAccessory)},
			Spec:       m.claimSpec(corev1.ReadWriteOnce),
		})
	}
	var pod corev1.PodSpec
	pod.EnableServiceLinks = ptr.To(false)
	stop(&c, &pod, a.StopSignal, a.StopTimeout, 0)
	pod.Containers = []corev1.Container{c}
	st := &appsv1.StatefulSet{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "StatefulSet"},
		ObjectMeta: m.meta(AccessoryName(m.r.App, a.Name), a.Name, "", KindAccessory),
		Spec: appsv1.StatefulSetSpec{
			Replicas:    ptr.To[int32](1),
			ServiceName: AccessoryName(m.r.App, a.Name),
			Selector:    &metav1.LabelSelector{MatchLabels: accessorySelector(m.r.App, a.Name)},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: Labels(m.r.App, a.Name, "", KindAccessory)},
				Spec:       pod,
			},
			VolumeClaimTemplates: claims,
			PersistentVolumeClaimRetentionPolicy: &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
				WhenDeleted: appsv1.RetainPersistentVolumeClaimRetentionPolicyType,
				WhenScaled:  appsv1.RetainPersistentVolumeClaimRetentionPolicyType,
			},
		},
	}
	return st, nil
}

func appendObjects[T metav1.Object](out []metav1.Object, xs []T) []metav1.Object {
	for _, x := range xs {
		out = append(out, x)
	}
	return out
}

// List returns every object, in the order to apply them: config first,
// then what is shared, the release tasks' Jobs, the Deployments, and last
// the Services (applying a Service is the cutover).
func (o *Objects) List() []metav1.Object {
	out := []metav1.Object{o.ConfigMap, o.Secret}
	out = appendObjects(out, o.VolumeClaims)
	out = appendObjects(out, o.AccessorySecrets)
	out = appendObjects(out, o.AccessoryServices)
	out = appendObjects(out, o.StatefulSets)
	out = appendObjects(out, o.Jobs)
	out = appendObjects(out, o.Deployments)
	out = appendObjects(out, o.Services)
	return out
}
