// Package docker is the runtime that runs instances as containers on a
// Docker Engine, through its Go SDK (github.com/moby/moby/client).
//
// Everything it creates carries the label moorage.prefix=<Options.Prefix>
// and is named after the prefix:
//
//	containers  <prefix>-<instance id>      labels moorage.app, .service, .release,
//	                                        .index, .kind, .hash, .instance, .port
//	networks    <prefix>-<app>              one user-defined bridge per app
//	volumes     <prefix>_<app>_<name>
//	images      <app>:vN (prefix "moorage"), else <prefix>-<app>:vN
//
// The runtime only ever lists, stops or removes objects that carry its own
// prefix label: a container it does not own is never touched.
//
// Supervision is moorage's, not Docker's: containers run with the restart
// policy "no", and a supervisor goroutine per container waits for it to
// exit, restarts it with exponential backoff and reports the crash and the
// restart on Events. The containers outlive the server; a runtime opened
// again re-adopts the running ones without restarting them, and reports
// the ones that exited meanwhile as exited (the engine restarts what it
// needs). One-offs left running by a server that died are removed.
//
// Logs are copied from each container's output (with Docker's timestamps)
// into the same files as the process runtime's (package logs), so they
// outlive the containers; a re-adopting runtime resumes after the last line
// it had written.
//
// Layout under Options.DataDir:
//
//	runtime/docker/instances/<id>.json   restart counts
//	runtime/docker/files/<app>/<vN>/...  "./dir" host paths copied from a release's upload
//	runtime/docker/binds/<app>/...       the same, one copy per app (releases made before)
//	logs/<app>/<id>.log[.N]              instance logs
package docker

// Name is the runtime's name.
const Name = "docker"
