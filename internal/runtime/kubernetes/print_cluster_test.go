package kubernetes

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/moorage/moorage/internal/testutil/kubetest"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	k8s "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
)

// TestKubernetesPrintedManifestsApplyOnACluster: what `moorage export
// kubernetes` prints (Objects.Print, secrets redacted) of examples/hello
// and of the Django + Celery app is accepted by a real API server: every
// document, decoded from the printed YAML by client-go's scheme, and each
// redacted Secret once its comment marks are removed, passes a server-side
// apply dry run (validation and admission, nothing stored) in the
// namespace the manifests name.
func TestKubernetesPrintedManifestsApplyOnACluster(t *testing.T) {
	c := kubetest.Shared(t) // may wait for another cluster first
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for _, tc := range []struct {
		name string
		rel  Release
	}{{"hello", helloRelease(t, 3)}, {"shop", shopRelease(t, 3)}} {
		ns := "printed-" + tc.name
		if _, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		objs, err := Manifests(tc.rel, Options{Namespace: ns})
		if err != nil {
			t.Fatal(err)
		}
		printed, err := objs.Print(PrintOptions{})
		if err != nil {
			t.Fatal(err)
		}
		r := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(printed)))
		applied, secrets := 0, 0
		for {
			doc, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if s, ok := uncommentedSecret(string(doc)); ok {
				doc, secrets = []byte(s), secrets+1
			}
			obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(doc, nil, nil)
			if err != nil {
				t.Fatalf("%s: decode %s: %v", tc.name, doc, err)
			}
			if err := dryRunApply(ctx, c.Client, obj); err != nil {
				t.Fatalf("%s: server-side apply, dry run: %v\n%s", tc.name, err, doc)
			}
			applied++
		}
		if want := len(objs.List()); applied != want || secrets == 0 {
			t.Fatalf("%s: %d documents applied (%d of them redacted Secrets), want %d objects", tc.name, applied, secrets, want)
		}
		t.Logf("%s: %d printed objects (%d redacted Secrets) pass a server-side apply dry run", tc.name, applied, secrets)
	}
}

// uncommentedSecret is a document that Print commented out (a redacted
// Secret) without its comment marks, from its apiVersion line on.
func uncommentedSecret(doc string) (string, bool) {
	lines := strings.Split(strings.TrimRight(doc, "\n"), "\n")
	for i, l := range lines {
		if !strings.HasPrefix(l, "#") {
			return "", false
		}
		if l == "# apiVersion: v1" {
			var b strings.Builder
			for _, l := range lines[i:] {
				b.WriteString(strings.TrimPrefix(strings.TrimPrefix(l, "#"), " ") + "\n")
			}
			return b.String(), strings.Contains(b.String(), "\nkind: Secret\n")
		}
	}
	return "", false
}

// dryRunApply applies obj by server-side apply with field manager moorage
// and dryRun=All: the server validates and admits it, and stores nothing.
func dryRunApply(ctx context.Context, cs k8s.Interface, obj runtime.Object) error {
	o, ok := obj.(metav1.Object)
	if !ok {
		return fmt.Errorf("%T has no metadata", obj)
	}
	body, err := ManifestJSON(obj)
	if err != nil {
		return err
	}
	opts := metav1.PatchOptions{FieldManager: "moorage", Force: ptr.To(true), DryRun: []string{metav1.DryRunAll}}
	ns, name := o.GetNamespace(), o.GetName()
	switch obj.(type) {
	case *corev1.ConfigMap:
		_, err = cs.CoreV1().ConfigMaps(ns).Patch(ctx, name, types.ApplyPatchType, body, opts)
	case *corev1.Secret:
		_, err = cs.CoreV1().Secrets(ns).Patch(ctx, name, types.ApplyPatchType, body, opts)
	case *corev1.Service:
		_, err = cs.CoreV1().Services(ns).Patch(ctx, name, types.ApplyPatchType, body, opts)
	case *corev1.PersistentVolumeClaim:
		_, err = cs.CoreV1().PersistentVolumeClaims(ns).Patch(ctx, name, types.ApplyPatchType, body, opts)
	case *batchv1.Job:
		_, err = cs.BatchV1().Jobs(ns).Patch(ctx, name, types.ApplyPatchType, body, opts)
	case *appsv1.Deployment:
		_, err = cs.AppsV1().Deployments(ns).Patch(ctx, name, types.ApplyPatchType, body, opts)
	case *appsv1.StatefulSet:
		_, err = cs.AppsV1().StatefulSets(ns).Patch(ctx, name, types.ApplyPatchType, body, opts)
	default:
		err = fmt.Errorf("no apply for %T", obj)
	}
	if err != nil {
		return fmt.Errorf("%T %s/%s: %w", obj, ns, name, err)
	}
	return nil
}
