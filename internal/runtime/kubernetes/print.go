package kubernetes

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// Redacted stands for a secret's value in printed manifests.
const Redacted = "<redacted>"

// PrintOptions say how Print prints.
type PrintOptions struct {
	// ShowSecrets prints the Secrets' values, for a caller that holds
	// them (`moorage export kubernetes` never does: its server sends the
	// secrets' keys alone). Without it they are redacted.
	ShowSecrets bool
}

// String prints the objects as YAML with the secrets' values redacted.
func (o *Objects) String() string {
	s, err := o.Print(PrintOptions{})
	if err != nil {
		return "error: " + err.Error()
	}
	return s
}

// Print prints the objects as a stream of YAML documents, in List's order,
// for `moorage export kubernetes`: plain manifests for people who keep them
// in git.
//
// Secret values appear only in Secret objects, and there only when asked.
// A redacted Secret is printed commented out, its keys listed with
// Redacted for their values, rather than as a Secret with placeholder
// values: the release's Secret is immutable, so applying placeholders
// would fix them in the cluster for good, and pods would start with them.
// Applied without it, the release's pods cannot start
// (CreateContainerConfigError: the Secret they read is missing) until the
// Secret is made with its real values, which the comment says how to do.
// Nothing else carries secret values: the containers read them through
// envFrom, by the Secret's name. A Secret with no values (an app without
// secrets) has nothing to redact and is printed as it is.
func (o *Objects) Print(opts PrintOptions) (string, error) {
	var b strings.Builder
	for i, obj := range o.List() {
		if i > 0 {
			b.WriteString("---\n")
		}
		s, ok := obj.(*corev1.Secret)
		if ok && !opts.ShowSecrets && len(s.Data)+len(s.StringData) > 0 {
			y, err := manifestYAML(redact(s))
			if err != nil {
				return "", err
			}
			fmt.Fprintf(&b, "# Secret %s: values redacted (moorage export never prints them).\n", s.Name)
			fmt.Fprintf(&b, "# Create it with its real values before the pods that read it can start:\n")
			fmt.Fprintf(&b, "#   kubectl create secret generic %s", s.Name)
			if s.Namespace != "" {
				fmt.Fprintf(&b, " -n %s", s.Namespace)
			}
			for _, k := range slices.Sorted(maps.Keys(s.Data)) {
				fmt.Fprintf(&b, " --from-literal=%s=...", k)
			}
			b.WriteString("\n")
			for _, line := range strings.Split(strings.TrimRight(y, "\n"), "\n") {
				b.WriteString("# " + line + "\n")
			}
			continue
		}
		y, err := manifestYAML(obj)
		if err != nil {
			return "", err
		}
		b.WriteString(y)
	}
	return b.String(), nil
}

// redact returns a copy of s whose values are Redacted, in stringData (so
// that the printed text shows the word rather than its base64).
func redact(s *corev1.Secret) *corev1.Secret {
	c := s.DeepCopy()
	c.StringData = map[string]string{}
	for k := range c.Data {
		c.StringData[k] = Redacted
	}
	for k := range s.StringData {
		c.StringData[k] = Redacted
	}
	c.Data = nil
	return c
}

// ManifestJSON is obj as the JSON body of a server-side apply: what the
// typed value says, without the empty status and the null
// creationTimestamps the API types print.
func ManifestJSON(obj any) ([]byte, error) {
	raw, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	clean(m)
	return json.Marshal(m)
}

func manifestYAML(obj any) (string, error) {
	j, err := ManifestJSON(obj)
	if err != nil {
		return "", err
	}
	y, err := yaml.JSONToYAML(j)
	if err != nil {
		return "", err
	}
	return string(y), nil
}

// clean removes what the API types print for unset fields that are not
// omitempty: status, and creationTimestamp: null at any depth (metadata
// of templates too). Empty maps left behind go too.
func clean(m map[string]any) {
	delete(m, "status")
	var walk func(v any) bool // reports whether v is an empty map afterwards
	walk = func(v any) bool {
		switch x := v.(type) {
		case map[string]any:
			if ts, ok := x["creationTimestamp"]; ok && ts == nil {
				delete(x, "creationTimestamp")
			}
			keys := make([]string, 0, len(x))
			for k := range x {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				if walk(x[k]) && (k == "metadata" || k == "resources" || k == "status" || k == "strategy" || k == "updateStrategy") {
					delete(x, k)
				}
			}
			return len(x) == 0
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
		return false
	}
	walk(m)
}
