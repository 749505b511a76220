// Package process is the runtime that runs instances as plain child
// processes, so the whole deploy contract works on any Linux machine
// without Docker.
//
// Each instance is supervised by a shim: the moorage binary itself started
// again (see MaybeRunShim) in its own session. The shim starts the
// instance's command in its own process group, writes its output to a
// rotated log file, restarts it with backoff when it crashes and stops it
// gracefully on request; it records its state and events in the instance's
// state directory. The server can stop or die: the shims keep running, and
// a new runtime on the same data directory re-adopts them (the model of
// nomad's executor, containerd-shim and conmon).
//
// Layout under Options.DataDir:
//
//	runtime/process/instances/<id>/  instance.json, state.json, events.jsonl, shim.log
//	runtime/process/tasks/<id>.json  one-offs running now (Run)
//	releases/<app>/<release>/        artifacts (Build)
//	volumes/<app>/<name>/            named volumes
//	logs/<app>/<id>.log[.N]          instance logs
//	accessories/<app>/<name>/        working directories of accessories
//	accessory-files/<id>/            an accessory's copy of the app's files
//	tmp/<id>/                        an instance's (or one-off's task-<id>) $TMPDIR
//
// With app users (appuser.go), the top directories are 0711 and each
// <app> directory below them root's and the app group's, mode 0750.
//
// Secrets never touch the disk: an instance's environment travels to its
// shim through a pipe and lives only in the shim's and the instance's
// memory.
package process

// Name is the runtime's name.
const Name = "process"
