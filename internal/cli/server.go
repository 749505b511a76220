package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/moorage/moorage/internal/daemon"
	"github.com/moorage/moorage/internal/paths"
)

// registryRE is a registry as --swarm-registry takes it:
// HOST[:PORT][/NAMESPACE], no scheme, no tag.
var registryRE = regexp.MustCompile(`^[A-Za-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)*$`)

func newServerCmd(g *globals) *cobra.Command {
	var cfg daemon.Config
	var logLevel, accessLog string
	var fb certsFallback
	var publicIPs, swarmNodes []string
	var challenges string
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the moorage host daemon",
		Long: `Run the moorage host daemon: the control API on a unix socket, the proxy, and
the runtimes. Stopping it (SIGTERM, SIGINT) interrupts a deploy in progress,
lets the requests in flight through the proxy finish (--drain-timeout), and
leaves the apps running; starting it again re-adopts them and finishes or undoes
a deploy that a stop or a crash interrupted.

SIGHUP restarts the server gracefully, and upgrades it when a new moorage
binary was put in place: a new process of the binary at this path takes over
the listening sockets and serves before this one stops accepting, so no
request is refused. Under systemd, listening sockets passed by socket
activation (LISTEN_FDS) are used as they are.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			lvl, err := parseLevel(logLevel)
			if err != nil {
				return err
			}
			cfg.Logger = slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: lvl}))
			if err := fb.apply(&cfg.Certs); err != nil {
				return err
			}
			for _, ip := range publicIPs {
				p := net.ParseIP(ip)
				if p == nil {
					return fmt.Errorf("--public-ip %q is not an IP address", ip)
				}
				cfg.Certs.ExtraIPs = append(cfg.Certs.ExtraIPs, p)
			}
			for _, n := range swarmNodes {
				name, addr, ok := strings.Cut(n, "=")
				if !ok || name == "" || addr == "" {
					return fmt.Errorf("--swarm-node %q: give NAME=ADDR, the node's hostname (docker node ls) and its Docker API address, e.g. --swarm-node node2=ssh://root@10.0.0.2", n)
				}
				if cfg.SwarmHost == "" {
					return fmt.Errorf("--swarm-node needs --swarm-host, the manager's Docker API address")
				}
				if cfg.SwarmNodes == nil {
					cfg.SwarmNodes = map[string]string{}
				}
				cfg.SwarmNodes[name] = addr
			}
			if cfg.SwarmRegistry != "" && cfg.SwarmHost == "" {
				return fmt.Errorf("--swarm-registry needs --swarm-host, the manager's Docker API address")
			}
			if r := cfg.SwarmRegistry; r != "" && !registryRE.MatchString(r) {
				return fmt.Errorf("--swarm-registry %q: give HOST[:PORT][/NAMESPACE], e.g. registry.example.com/team or 10.0.0.1:5000, without a scheme", r)
			}
			kube := cfg.KubeConfig != "" || cfg.KubeContext != ""
			if !kube && (cfg.KubeRegistry != "" || cfg.KubeStorageClass != "" || cfg.KubeVolumeDir != "") {
				return fmt.Errorf("--kube-registry, --kube-storage-class and --kube-volume-dir need --kube-config or --kube-context, the cluster")
			}
			if r := cfg.KubeRegistry; r != "" && !registryRE.MatchString(r) {
				return fmt.Errorf("--kube-registry %q: give HOST[:PORT][/NAMESPACE], e.g. registry.example.com/team or 10.0.0.1:5000, without a scheme", r)
			}
			for _, c := range strings.Split(challenges, ",") {
				switch strings.TrimSpace(c) {
				case "http-01", "tls-alpn-01", "":
				default:
					return fmt.Errorf("--acme-challenges %q: give http-01, tls-alpn-01 or both, comma-separated", challenges)
				}
			}
			cfg.Certs.DisableHTTPChallenge = !strings.Contains(challenges, "http-01")
			cfg.Certs.DisableTLSALPNChallenge = !strings.Contains(challenges, "tls-alpn-01")
			switch accessLog {
			case "":
			case "-":
				cfg.AccessLog = g.stdout
			default:
				f, err := os.OpenFile(accessLog, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o640)
				if err != nil {
					return fmt.Errorf("--access-log: %w", err)
				}
				defer f.Close()
				cfg.AccessLog = f
			}
			srv, err := g.newDaemon(cfg)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if err := srv.Start(ctx); err != nil {
				return err
			}
			// SIGHUP: a graceful restart, or an upgrade once a new binary
			// is in place: the listeners go to a new process, which
			// serves before this one stops accepting (Daemon.Handover).
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
		wait:
			for {
				select {
				case <-ctx.Done():
					break wait
				case err := <-srv.Err():
					cfg.Logger.Error("listener failed", "err", err)
					break wait
				case <-hup:
					err := srv.Handover(ctx)
					if err == nil {
						cfg.Logger.Info("handed over to the new server process: exiting")
						return nil
					}
					cfg.Logger.Error("restart (SIGHUP)", "err", err)
				}
			}
			// Interrupting operations takes a moment (a killed release
			// task, an abandoned health gate); the proxy's drain has a
			// budget of its own (--drain-timeout) on top.
			sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			return srv.Shutdown(sctx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.DataDir, "data-dir", paths.DefaultDataDir(), "where moorage keeps its state, releases, volumes and logs")
	f.StringVar(&cfg.Socket, "socket", "", "control socket (default <data-dir>/moorage.sock)")
	f.StringVar(&cfg.SocketGroup, "socket-group", "", "group that owns the control socket (mode 0660): its members may use the whole API, e.g. over ssh as a non-root user")
	f.StringVar(&cfg.HTTPAddr, "http", ":80", "address of the proxy's HTTP listener")
	f.DurationVar(&cfg.DrainTimeout, "drain-timeout", daemon.DefaultDrainTimeout, "when the server stops, how long requests in flight through the proxy get to finish")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&cfg.DockerPrefix, "docker-prefix", "moorage", "prefix of the names of the docker runtime's containers, networks, volumes and images, and value of their moorage.prefix label")
	f.StringVar(&cfg.DockerHost, "docker-host", os.Getenv("DOCKER_HOST"), "the Docker Engine's address (default $DOCKER_HOST, else the default socket)")
	f.StringVar(&cfg.SwarmHost, "swarm-host", "", "a Docker Swarm manager's Docker API address (unix://, tcp://, ssh://); turns the swarm runtime on")
	f.StringVar(&cfg.KubeConfig, "kube-config", "", "a kubeconfig file of a Kubernetes cluster; turns the kubernetes runtime on (the server must reach the cluster's pod IPs: run it on a node, or where they route)")
	f.StringVar(&cfg.KubeContext, "kube-context", "", "the kubeconfig context to use (default: its current context); turns the kubernetes runtime on")
	f.StringVar(&cfg.KubeRegistry, "kube-registry", "", "HOST[:PORT][/NAMESPACE]: a registry the cluster's nodes pull from; release images built here are pushed there and run by digest")
	f.StringVar(&cfg.KubeStorageClass, "kube-storage-class", "", "the StorageClass of the volumes' claims (default: the cluster's default class)")
	f.StringVar(&cfg.KubeVolumeDir, "kube-volume-dir", "", "a directory of this machine where volumes are hostPath PersistentVolumes (a single-node cluster whose node is this machine, when it has no StorageClass)")
	f.StringVar(&cfg.SwarmRegistry, "swarm-registry", "", "HOST[:PORT][/NAMESPACE]: a registry every swarm node can pull from; release images are pushed there and run by digest, instead of shipped to each node (a registry that asks for a login: moorage registry login)")
	f.StringArrayVar(&swarmNodes, "swarm-node", nil, "NAME=ADDR: the Docker API address of the swarm node whose hostname is NAME, where images are shipped (repeatable; the manager's may be left out)")
	f.StringVar(&cfg.HTTPSAddr, "https", ":443", "address of the proxy's HTTPS listener (off: no HTTPS)")
	f.StringVar(&cfg.Certs.Email, "acme-email", "", "contact address of the ACME account (expiry notices)")
	f.StringVar(&cfg.Certs.CA, "acme-ca", "", "ACME directory URL (default Let's Encrypt)")
	f.BoolVar(&cfg.Certs.Staging, "acme-staging", false, "use Let's Encrypt's staging CA (untrusted certificates, generous limits)")
	f.StringVar(&cfg.Certs.CARoot, "acme-ca-root", "", "PEM file of roots to trust for the ACME servers' own HTTPS (a private CA, and the fallback's)")
	f.StringVar(&fb.ca, "acme-fallback-ca", "", "ACME directory of a fallback issuer (e.g. ZeroSSL), tried when the first fails")
	f.StringVar(&fb.kid, "acme-fallback-eab-kid", "", "External Account Binding key ID of the fallback issuer")
	f.StringVar(&fb.hmac, "acme-fallback-eab-hmac", os.Getenv("MOORAGE_ACME_FALLBACK_EAB_HMAC"), "External Account Binding HMAC key of the fallback issuer (default $MOORAGE_ACME_FALLBACK_EAB_HMAC)")
	f.StringVar(&challenges, "acme-challenges", "http-01,tls-alpn-01", "ACME challenges to answer: http-01, tls-alpn-01 or both")
	f.StringArrayVar(&publicIPs, "public-ip", nil, "a public address of this server (behind NAT) for tls: internal certificates (repeatable)")
	f.StringVar(&cfg.MetricsAddr, "metrics", "", "serve Prometheus metrics at ADDR/metrics (e.g. 127.0.0.1:9100)")
	f.StringVar(&accessLog, "access-log", "", "write the proxy's JSON access log to FILE (- for standard output)")
	f.StringVar(&cfg.DashboardHost, "dashboard", "", "serve the web dashboard on the HTTPS listener for HOST (it is always reachable with `moorage dashboard` over ssh)")
	f.StringVar(&cfg.DashboardTLS, "dashboard-tls", "auto", "the dashboard host's certificate: auto (ACME) or internal (moorage's own CA)")
	cmd.AddCommand(newServerCACmd(g))
	return cmd
}

// certsFallback collects the fallback issuer flags.
type certsFallback struct{ ca, kid, hmac string }

func (f certsFallback) apply(o *daemon.CertsConfig) error {
	if f.ca == "" {
		if f.kid != "" || f.hmac != "" {
			return fmt.Errorf("--acme-fallback-eab-kid and --acme-fallback-eab-hmac need --acme-fallback-ca")
		}
		return nil
	}
	if (f.kid == "") != (f.hmac == "") {
		return fmt.Errorf("give both --acme-fallback-eab-kid and --acme-fallback-eab-hmac, or neither")
	}
	o.FallbackCA, o.FallbackEABKeyID, o.FallbackEABMACKey = f.ca, f.kid, f.hmac
	return nil
}

func newServerCACmd(g *globals) *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{
		Use:   "ca",
		Short: "Print the root certificate of the server's internal CA (tls: internal), to trust it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			pem, err := c.CA(cmd.Context())
			if err != nil {
				// Not running: read it from the data dir.
				p := filepath.Join(dataDir, "certs", "internal", "root.crt")
				b, ferr := os.ReadFile(p)
				if ferr != nil {
					return fmt.Errorf("%w (and %s: %v)", err, p, ferr)
				}
				pem = b
			}
			_, err = g.stdout.Write(pem)
			return err
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", paths.DefaultDataDir(), "the server's data dir, read when the server does not answer")
	return cmd
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToUpper(s))); err != nil {
		return 0, fmt.Errorf("--log-level %q: use debug, info, warn or error", s)
	}
	return l, nil
}
