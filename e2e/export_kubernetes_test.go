package e2e

import (
	"bufio"
	"encoding/base64"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
)

// TestKubernetesExport deploys examples/hello on the process runtime with
// a secret and a config value, scales a service, and prints its release
// with `moorage export kubernetes`: the YAML decodes (by the
// Kubernetes API types) into the release's objects, in the namespace and
// with the image asked for, the config value and the scale in them, and
// the secret's value nowhere, in plain or base64 form; its Secret is
// printed commented out, with its key. A release of the process runtime
// needs --image, and says so; an unknown release, a bad namespace and a
// spec the mapping refuses each give their error.
func TestKubernetesExport(t *testing.T) {
	parallel(t)
	s := startServer(t)
	app := s.hello(t, fastSpec...)
	const secret = "export-secret-value-7f3a9c"
	s.mustRun("config", "set", "--secret", "-a", "hello", "API_TOKEN="+secret)
	s.mustRun("config", "set", "-a", "hello", "GREETING=hello from the export test")
	s.deploy(app, 0)
	s.mustRun("scale", "-a", "hello", "worker=3")

	// No image a cluster can pull: the error says what to do.
	out, errOut, code := s.run("export", "kubernetes", "-a", "hello")
	if code == 0 || !strings.Contains(errOut, "process runtime") || !strings.Contains(errOut, "--image") {
		t.Fatalf("export of a process release without --image: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}

	const image = "registry.example:5000/hello@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	y := s.mustRun("export", "kubernetes", "-a", "hello", "--image", image)
	for _, leak := range []string{secret, base64.StdEncoding.EncodeToString([]byte(secret))} {
		if strings.Contains(y, leak) {
			t.Fatalf("the export prints the secret's value (%q):\n%s", leak, y)
		}
	}
	if !strings.Contains(y, "# Secret hello-secrets-v1: values redacted") || !strings.Contains(y, "#   API_TOKEN: <redacted>") ||
		!strings.Contains(y, "--from-literal=API_TOKEN=...") {
		t.Errorf("the release's Secret is not printed commented out with its key:\n%s", y)
	}
	objs := decodeManifests(t, y)
	var kinds []string
	for _, o := range objs {
		kinds = append(kinds, o.GetObjectKind().GroupVersionKind().Kind+"/"+objName(o))
	}
	want := []string{
		"ConfigMap/hello-config-v1", "PersistentVolumeClaim/hello-volume-data", "Job/hello-release-1-v1",
		"Deployment/hello-web-v1", "Deployment/hello-scheduler-v1", "Deployment/hello-worker-v1", "Service/hello-web",
	}
	if !slices.Equal(kinds, want) {
		t.Fatalf("exported objects:\n%s\nwant:\n%s\n%s", strings.Join(kinds, "\n"), strings.Join(want, "\n"), y)
	}
	for _, o := range objs {
		if ns := objNamespace(o); ns != "hello" {
			t.Errorf("%s is in namespace %q, want hello (the app's name)", objName(o), ns)
		}
		switch o := o.(type) {
		case *corev1.ConfigMap:
			if o.Data["GREETING"] != "hello from the export test" {
				t.Errorf("the ConfigMap lacks the config value: %v", o.Data)
			}
			if _, ok := o.Data["API_TOKEN"]; ok {
				t.Errorf("the secret is in the ConfigMap: %v", o.Data)
			}
		case *batchv1.Job:
			if img := o.Spec.Template.Spec.Containers[0].Image; img != image {
				t.Errorf("job %s runs %s, want %s", o.Name, img, image)
			}
		case *appsv1.Deployment:
			if img := o.Spec.Template.Spec.Containers[0].Image; img != image {
				t.Errorf("deployment %s runs %s, want %s", o.Name, img, image)
			}
			want := map[string]int32{"hello-web-v1": 2, "hello-scheduler-v1": 1, "hello-worker-v1": 3}[o.Name]
			if o.Spec.Replicas == nil || *o.Spec.Replicas != want {
				t.Errorf("deployment %s has replicas %v, want %d (the spec's, or moorage scale's)", o.Name, o.Spec.Replicas, want)
			}
		}
	}

	// --release and --namespace.
	y = s.mustRun("export", "kubernetes", "-a", "hello", "--image", image, "--release", "v1", "--namespace", "hello-staging")
	for _, o := range decodeManifests(t, y) {
		if ns := objNamespace(o); ns != "hello-staging" {
			t.Errorf("with --namespace hello-staging, %s is in %q", objName(o), ns)
		}
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--release", "v9"}, "has no release v9"},
		{[]string{"--namespace", "Not_A_Namespace"}, "is not a Kubernetes namespace name"},
	} {
		out, errOut, code := s.run(append([]string{"export", "kubernetes", "-a", "hello", "--image", image}, c.args...)...)
		if code == 0 || !strings.Contains(errOut, c.want) {
			t.Errorf("export %v: exit %d, want an error with %q\nstdout:\n%s\nstderr:\n%s", c.args, code, c.want, out, errOut)
		}
	}

	// A spec the mapping refuses (an accessory with no image): its error,
	// and the earlier release still exports.
	port := strings.Split(freePort(t), ":")[1]
	editSpec(t, app, "volumes:", "accessories:\n  sleeper:\n    command: busybox httpd -f -p 127.0.0.1:$PORT -h .\n    port: "+port+"\nvolumes:")
	s.deploy(app, 0)
	out, errOut, code = s.run("export", "kubernetes", "-a", "hello", "--image", image)
	if code == 0 || !strings.Contains(errOut, "v2 of hello cannot be exported to Kubernetes") ||
		!strings.Contains(errOut, "accessory sleeper: an image is needed on Kubernetes; set image:") {
		t.Errorf("export of a spec the mapping refuses: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	s.mustRun("export", "kubernetes", "-a", "hello", "--image", image, "--release", "v1")
}

// decodeManifests decodes a stream of YAML documents into typed
// Kubernetes objects; a document that is all comments (a redacted
// Secret) has no object.
func decodeManifests(t *testing.T, y string) []runtime.Object {
	t.Helper()
	r := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(y)))
	var out []runtime.Object
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if onlyComments(string(doc)) {
			continue
		}
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(doc, nil, nil)
		if err != nil {
			t.Fatalf("decode %s: %v", doc, err)
		}
		out = append(out, obj)
	}
}

func onlyComments(doc string) bool {
	for _, l := range strings.Split(doc, "\n") {
		if l = strings.TrimSpace(l); l != "" && l != "---" && !strings.HasPrefix(l, "#") {
			return false
		}
	}
	return true
}

func objName(o runtime.Object) string {
	if m, ok := o.(interface{ GetName() string }); ok {
		return m.GetName()
	}
	return ""
}

func objNamespace(o runtime.Object) string {
	if m, ok := o.(interface{ GetNamespace() string }); ok {
		return m.GetNamespace()
	}
	return ""
}
