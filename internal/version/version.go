// Package version reports which moorage this is.
package version

import (
	"runtime/debug"
)

// Version is set at build time with -ldflags "-X .../version.Version=v1.2.3".
var Version = "dev"

// String returns the version with the VCS revision when known.
func String() string {
	v := Version
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += "+" + s.Value[:12]
			}
		}
	}
	return v
}
