// Package daemon is what running a moorage host daemon takes without its
// internals: the Config of internal/server's Server, the Daemon interface it
// meets, and Host, the constructor cmd/moorage hands to the CLI. The CLI's
// server and up commands run the daemon through it, so that the CLI
// imports none of the server's internals (engine, runtimes, certificates,
// store), not even transitively.
package daemon

import (
	"context"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/moorage/moorage/internal/spec"
)

// Daemon is a moorage host daemon in this process (internal/server's
// Server).
type Daemon interface {
	// Start starts it: the proxy, recovery, then the control API.
	Start(ctx context.Context) error
	// Err reports a listener that failed while serving.
	Err() <-chan error
	// Handover passes the listening sockets to a new process of the
	// binary (SIGHUP), which serves before this one stops accepting.
	Handover(ctx context.Context) error
	// Shutdown stops it gracefully.
	Shutdown(ctx context.Context) error
	// Socket is the control socket's path; HTTPAddr the proxy's address.
	Socket() string
	HTTPAddr() string
}

// Host makes daemons: internal/server's Host.
type Host struct {
	// New returns a daemon of cfg; Start starts it.
	New func(cfg Config) Daemon
	// TLSSitesOf returns sp's routed services with tls: on: the ones a
	// daemon with HTTPS off refuses, or serves over plain HTTP with
	// PlainWhenHTTPSOff.
	TLSSitesOf func(sp *spec.Spec) []TLSSite
}

// TLSSite is a routed service with tls: on, and its tls: mode.
type TLSSite struct{ Service, Mode string }

// Config configures a server.
type Config struct {
	DataDir string // default paths.DefaultDataDir()
	Socket  string // default paths.Socket(DataDir)
	// SocketGroup, when set, owns the socket (mode 0660): its members may
	// use the whole API, as the server's own group can.
	SocketGroup string
	HTTPAddr    string // the proxy's address, default ":80"
	Logger      *slog.Logger
	// StopOnShutdown stops every instance when the server shuts down
	// (`moorage up`); a daemon leaves them running and re-adopts them.
	StopOnShutdown bool
	// MaxUpload bounds an upload's unpacked size (default 2 GiB).
	MaxUpload int64
	// DockerPrefix names and labels the docker runtime's containers,
	// networks, volumes and images (default "moorage"); servers sharing an
	// engine need different prefixes.
	DockerPrefix string
	// DockerHost is the Docker Engine's address ("" = $DOCKER_HOST, else
	// the default socket).
	DockerHost string
	// SwarmHost is a Docker Swarm manager's Docker API address; set, the
	// swarm runtime is on (spec runtime: swarm). "" leaves it off.
	SwarmHost string
	// SwarmRegistry, when set, is the registry release images go through
	// on the swarm (swarm.Options.Registry), instead of being shipped to
	// each node.
	SwarmRegistry string
	// SwarmNodes maps each swarm node's hostname to its Docker API
	// address, where images are shipped and exec/pause reach tasks.
	SwarmNodes map[string]string
	// KubeConfig is the kubeconfig of a Kubernetes cluster; set (or
	// KubeContext), the kubernetes runtime is on (spec runtime:
	// kubernetes). KubeContext picks one of its contexts ("" its
	// current one). KubeRegistry is where release images built here go,
	// for the nodes to pull (kubernetes.RuntimeOptions.Registry);
	// KubeStorageClass and KubeVolumeDir, where volumes live.
	KubeConfig       string
	KubeContext      string
	KubeRegistry     string
	KubeStorageClass string
	KubeVolumeDir    string
	// HTTPSAddr is the HTTPS listener (default ":443"; "off" = no HTTPS).
	HTTPSAddr string
	// AppsAsServerUser: process instances run as the server's user even
	// when it is root, instead of each app's own user (`moorage up`, a dev
	// run in the project's own directory, which app users could not reach).
	AppsAsServerUser bool
	// PlainWhenHTTPSOff: with HTTPS off, routes with tls: are served over
	// plain HTTP (moorage up, a dev run) instead of refused at deploy time.
	PlainWhenHTTPSOff bool
	// Certs configures certificates (ACME, the internal CA); Start adds
	// the data dir, the logger and the listener addresses.
	Certs CertsConfig
	// MetricsAddr serves Prometheus metrics at /metrics ("" = off).
	MetricsAddr string
	// AccessLog receives the proxy's JSON access log (nil = none).
	AccessLog io.Writer
	// DashboardHost serves the web dashboard on the HTTPS listener for
	// this host ("" = only over the socket, through `moorage dashboard`).
	DashboardHost string
	// DashboardTLS is the dashboard host's certificate: spec.TLSAuto
	// (ACME, the default) or spec.TLSInternal.
	DashboardTLS string
	// DrainTimeout bounds how long Shutdown lets the requests in flight
	// through the proxy finish (default DefaultDrainTimeout).
	DrainTimeout time.Duration
}

// DefaultDrainTimeout is Config.DrainTimeout's default: deploy.drain_timeout's.
const DefaultDrainTimeout = 30 * time.Second

// HTTPSOff as Config.HTTPSAddr turns HTTPS off.
const HTTPSOff = "off"

// CertsConfig configures the HTTPS listener's certificates: the ACME
// issuers and the internal CA (certs.Options).
type CertsConfig struct {
	// Email is the ACME account's contact (expiry and policy notices).
	Email string
	// CA is the ACME directory URL (default Let's Encrypt production).
	CA string
	// Staging uses Let's Encrypt's staging directory (untrusted
	// certificates, generous rate limits) instead; not with CA.
	Staging bool
	// CARoot is a PEM file of root certificates to trust, besides the
	// system's, for the ACME servers' own HTTPS (a private ACME CA, and
	// the fallback's).
	CARoot string
	// FallbackCA, when set, is the ACME directory of an issuer tried when
	// CA fails to issue (e.g. ZeroSSL), with its External Account Binding
	// key ID and HMAC key (base64url) if it requires one.
	FallbackCA, FallbackEABKeyID, FallbackEABMACKey string
	// ExtraIPs are added to every IP certificate of the internal CA: the
	// server's public addresses when it is reached through NAT.
	ExtraIPs []net.IP
	// DisableHTTPChallenge and DisableTLSALPNChallenge turn one ACME
	// challenge off (for example when port 80 is not reachable from the
	// internet).
	DisableHTTPChallenge, DisableTLSALPNChallenge bool
}
