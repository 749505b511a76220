package engine

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/moorage/moorage/internal/runtime"
	"github.com/moorage/moorage/internal/store"
)

// secretRefs warns about the commands of rel that name a secret ($NAME or
// ${NAME}). The runtime expands them before the program starts, so the
// value ends up on its command line, which every user of the host can read
// (ps, /proc/PID/cmdline; on docker, `docker inspect` too). Each warning
// names the command and the secret, never the value.
func secretRefs(rel *store.Release) []string {
	secrets := map[string]bool{}
	for k := range rel.Config.Secrets {
		secrets[k] = true
	}
	for _, k := range rel.Spec.Secrets {
		secrets[k] = true
	}
	var out []string
	check := func(where string, argv []string, names func(string) bool) {
		var hits []string
		for _, k := range runtime.Refs(argv) {
			if names(k) {
				hits = append(hits, "$"+k)
			}
		}
		if len(hits) > 0 {
			out = append(out, fmt.Sprintf("%s passes the secret %s as an argument: moorage expands it, so its value is on the process's command line, which any user of the host can read (ps, /proc/PID/cmdline); have the program read it from its environment instead (see \"$VAR expansion\" in docs/spec.md)",
				where, strings.Join(hits, ", ")))
		}
	}
	isSecret := func(k string) bool { return secrets[k] }
	sp := rel.Spec
	for _, name := range sp.ServiceNames() {
		svc := sp.Services[name]
		check("services."+name+".command", svc.Command, isSecret)
		if svc.Health != nil {
			check("services."+name+".health.command", svc.Health.Command, isSecret)
		}
	}
	for i, t := range sp.Release {
		check(fmt.Sprintf("release[%d]", i), t.Command, isSecret)
	}
	for i, t := range sp.Checks {
		check(fmt.Sprintf("checks[%d]", i), t.Command, isSecret)
	}
	for _, name := range sp.AccessoryNames() {
		acc := sp.Accessories[name]
		own := func(k string) bool { return slices.Contains(acc.Secrets, k) }
		check("accessories."+name+".command", acc.Command, own)
		if acc.Health != nil {
			check("accessories."+name+".health.command", acc.Health.Command, own)
		}
	}
	return out
}

// oneOffSecretRefs warns when a one-off command names secrets of rel.
func oneOffSecretRefs(rel *store.Release, argv []string) string {
	var hits []string
	for _, k := range runtime.Refs(argv) {
		if _, ok := rel.Config.Secrets[k]; ok {
			hits = append(hits, "$"+k)
		}
	}
	if len(hits) == 0 {
		return ""
	}
	sort.Strings(hits)
	return fmt.Sprintf("moorage: warning: the command passes the secret %s as an argument: moorage expands it, so its value is on the command line, which any user of the server can read (ps, /proc/PID/cmdline); let the program read it from its environment instead\n",
		strings.Join(hits, ", "))
}
