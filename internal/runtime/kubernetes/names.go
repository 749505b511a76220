package kubernetes

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// MaxNameLength is the longest name moorage gives an object: a DNS-1123
// label. Deployments and StatefulSets could be longer (DNS subdomains),
// but a Job's name becomes its pods' job-name label and a Service's name
// must be a label, so every name is kept to the stricter rule; a
// StatefulSet's, to MaxStatefulSetNameLength.
const MaxNameLength = 63

// MaxStatefulSetNameLength is the longest name of a StatefulSet (an
// accessory's): the StatefulSet controller labels its pods
// controller-revision-hash=NAME-HASH, with a hash of up to 10 characters,
// and that label value can be 63 long at most.
const MaxStatefulSetNameLength = MaxNameLength - 1 - 10

// hashLength is how many hex digits of the full name's SHA-256 replace
// what a long name loses.
const hashLength = 8

// objectName joins app, middle parts and a suffix with "-": hello-web-v3,
// hello-release-1-v3, hello-config-v3. When the result is longer than
// MaxNameLength, the head (app and parts) is cut and followed by a hash of
// the whole name, and the suffix is kept: hello-very-long-na-1a2b3c4d-v3.
// The result is deterministic, a valid DNS-1123 label for valid moorage
// names (lower-case letters, digits, '-', starting with a letter), and two
// different inputs give different names (up to the hash).
func objectName(suffix string, parts ...string) string {
	return shortName(MaxNameLength, suffix, parts...)
}

// shortName is objectName with names kept to limit characters.
func shortName(limit int, suffix string, parts ...string) string {
	head := strings.Join(parts, "-")
	full := head
	if suffix != "" {
		full += "-" + suffix
	}
	if len(full) <= limit {
		return full
	}
	sum := sha256.Sum256([]byte(full))
	tail := "-" + hex.EncodeToString(sum[:])[:hashLength]
	if suffix != "" {
		tail += "-" + suffix
	}
	keep := limit - len(tail)
	if keep < 1 {
		// Only when the suffix itself is absurdly long: cut everything.
		return strings.TrimRight(full[:limit-hashLength-1], "-") + "-" + hex.EncodeToString(sum[:])[:hashLength]
	}
	return strings.TrimRight(head[:keep], "-") + tail
}

// DeploymentName is the Deployment of service svc in release rel ("v3"):
// APP-SERVICE-vN, so that the releases of a service sit side by side.
func DeploymentName(app, svc, rel string) string { return objectName(rel, app, svc) }

// JobName is the Job of a release task or check ("release-1", "check-2")
// of release rel: APP-TASK-vN, unique per release and task, so that
// applying it again (after a crash of moorage) finds the same Job rather
// than running the task twice.
func JobName(app, task, rel string) string { return objectName(rel, app, task) }

// ConfigMapName is the release's ConfigMap: APP-config-vN.
func ConfigMapName(app, rel string) string { return objectName(rel, app, "config") }

// SecretName is the release's Secret: APP-secrets-vN.
func SecretName(app, rel string) string { return objectName(rel, app, "secrets") }

// ServiceName is the Service of a routed service, shared by its releases
// (its selector names the one that serves): APP-SERVICE.
func ServiceName(app, svc string) string { return objectName("", app, svc) }

// AccessoryName is an accessory's StatefulSet and headless Service: APP-NAME.
// It has no release: app deploys never touch it. It is kept to
// MaxStatefulSetNameLength (shortened with a hash as other long names
// are), so that the pod's controller-revision-hash label is valid.
func AccessoryName(app, acc string) string {
	return shortName(MaxStatefulSetNameLength, "", app, acc)
}

// AccessorySecretName is the Secret of the secrets an accessory declares:
// APP-NAME-secrets.
func AccessorySecretName(app, acc string) string { return objectName("secrets", app, acc) }

// VolumeClaimName is the PersistentVolumeClaim of an app volume, shared by
// the releases: APP-volume-NAME.
func VolumeClaimName(app, vol string) string { return objectName("", app, "volume", vol) }

// Label keys. The moorage.* keys are those of the docker and swarm
// runtimes; the app.kubernetes.io ones are Kubernetes' recommended labels.
const (
	LabelManagedBy = "app.kubernetes.io/managed-by" // always ManagedBy
	LabelName      = "app.kubernetes.io/name"       // the app
	LabelComponent = "app.kubernetes.io/component"  // the service, task or accessory
	LabelApp       = "moorage.app"
	LabelService   = "moorage.service" // service name, task label ("release-1") or accessory name
	LabelRelease   = "moorage.release" // "v3"; absent on what no release owns
	LabelKind      = "moorage.kind"    // service, task, accessory, config, volume
)

// ManagedBy is the value of LabelManagedBy on everything moorage creates.
// The runtime never touches an object without it.
const ManagedBy = "moorage"

// Kinds, the values of LabelKind.
const (
	KindService   = "service"
	KindTask      = "task"
	KindAccessory = "accessory"
	KindConfig    = "config"
	KindVolume    = "volume"
)

// Labels returns the labels of an object: managed-by, the app, and the
// service (or task, or accessory), release and kind when they are given.
func Labels(app, svc, rel, kind string) map[string]string {
	l := map[string]string{
		LabelManagedBy: ManagedBy,
		LabelName:      app,
		LabelApp:       app,
	}
	if svc != "" {
		l[LabelComponent] = svc
		l[LabelService] = svc
	}
	if rel != "" {
		l[LabelRelease] = rel
	}
	if kind != "" {
		l[LabelKind] = kind
	}
	return l
}

// Selector returns the labels that select the pods of service svc of
// release rel: a Deployment's selector, and the web Service's, which the
// cutover flips from one release to the next.
func Selector(app, svc, rel string) map[string]string {
	return map[string]string{LabelApp: app, LabelService: svc, LabelRelease: rel, LabelKind: KindService}
}
