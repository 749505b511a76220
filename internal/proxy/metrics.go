package proxy

import (
	"bufio"
	"cmp"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// latencyBuckets are the upper bounds (seconds) of the request duration
// histogram.
var latencyBuckets = [...]float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// latencyBounds are latencyBuckets as durations, for recording.
var latencyBounds = func() (b [len(latencyBuckets)]time.Duration) {
	for i, s := range latencyBuckets {
		b[i] = time.Duration(s * float64(time.Second))
	}
	return b
}()

// appMetrics are one app's request counters: lock-free, allocation-free to
// update.
type appMetrics struct {
	status  [600]atomic.Uint64                     // requests by status code
	buckets [len(latencyBuckets) + 1]atomic.Uint64 // durations, per bucket (last: +Inf)
	sum     atomic.Int64                           // total duration, ns
	retries atomic.Uint64                          // requests sent to another target after a failure
}

// observe counts one answered request.
func (m *appMetrics) observe(status int, d time.Duration) {
	if status < 0 || status >= len(m.status) {
		status = 0
	}
	m.status[status].Add(1)
	if status == http.StatusSwitchingProtocols {
		return // a tunnel's lifetime is not a latency
	}
	i := 0
	for i < len(latencyBounds) && d > latencyBounds[i] {
		i++
	}
	m.buckets[i].Add(1)
	m.sum.Add(int64(d))
}

// MetricsHandler serves the proxy's metrics in the Prometheus text
// exposition format (version 0.0.4): requests by app and status code, a
// request duration histogram per app, retries, held requests, open client
// connections, maintenance mode, and per target health and requests in
// flight. Serve it on a private address (`moorage server --metrics ADDR`).
func (p *Proxy) MetricsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		bw := bufio.NewWriter(w)
		p.writeMetrics(bw)
		_ = bw.Flush()
	})
}

func (p *Proxy) writeMetrics(w *bufio.Writer) {
	p.mu.Lock()
	apps := make([]*appState, 0, len(p.appStates)+1)
	for _, st := range p.appStates {
		apps = append(apps, st)
	}
	targets := make([]TargetStatus, 0, len(p.targets))
	for _, t := range p.targets {
		targets = append(targets, t.status())
	}
	p.mu.Unlock()
	slices.SortFunc(apps, func(a, b *appState) int { return strings.Compare(a.name, b.name) })
	apps = append([]*appState{&p.unrouted}, apps...)
	slices.SortFunc(targets, func(a, b TargetStatus) int {
		return cmp.Or(strings.Compare(a.App, b.App), strings.Compare(a.Service, b.Service), strings.Compare(a.ID, b.ID))
	})

	header := func(name, typ, help string) {
		w.WriteString("# HELP " + name + " " + help + "\n# TYPE " + name + " " + typ + "\n")
	}
	sample := func(name string, labels []string, v string) {
		w.WriteString(name)
		if len(labels) > 0 {
			w.WriteByte('{')
			for i := 0; i+1 < len(labels); i += 2 {
				if i > 0 {
					w.WriteByte(',')
				}
				w.WriteString(labels[i])
				w.WriteString(`="`)
				w.WriteString(escapeLabel(labels[i+1]))
				w.WriteByte('"')
			}
			w.WriteByte('}')
		}
		w.WriteByte(' ')
		w.WriteString(v)
		w.WriteByte('\n')
	}
	u := func(v uint64) string { return strconv.FormatUint(v, 10) }
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

	header("moorage_proxy_requests_total", "counter", "Requests answered by the proxy, by app (empty: no route matched) and status code.")
	for _, st := range apps {
		for code := range st.metrics.status {
			if n := st.metrics.status[code].Load(); n > 0 {
				sample("moorage_proxy_requests_total", []string{"app", st.name, "status", strconv.Itoa(code)}, u(n))
			}
		}
	}
	header("moorage_proxy_request_duration_seconds", "histogram", "Time from a request's arrival to the end of its response (upgraded connections excluded).")
	for _, st := range apps {
		var cum uint64
		for i := range st.metrics.buckets {
			cum += st.metrics.buckets[i].Load()
			le := "+Inf"
			if i < len(latencyBuckets) {
				le = f(latencyBuckets[i])
			}
			sample("moorage_proxy_request_duration_seconds_bucket", []string{"app", st.name, "le", le}, u(cum))
		}
		sample("moorage_proxy_request_duration_seconds_sum", []string{"app", st.name}, f(time.Duration(st.metrics.sum.Load()).Seconds()))
		sample("moorage_proxy_request_duration_seconds_count", []string{"app", st.name}, u(cum))
	}
	header("moorage_proxy_retries_total", "counter", "Requests sent to another instance after one failed (dial failures, idempotent requests).")
	for _, st := range apps {
		sample("moorage_proxy_retries_total", []string{"app", st.name}, u(st.metrics.retries.Load()))
	}
	header("moorage_proxy_maintenance", "gauge", "1 while the app is in maintenance mode.")
	for _, st := range apps[1:] {
		v := "0"
		if st.maintenance.Load() != nil {
			v = "1"
		}
		sample("moorage_proxy_maintenance", []string{"app", st.name}, v)
	}
	header("moorage_proxy_held_requests", "gauge", "Requests waiting for a healthy instance (hold during cutover).")
	sample("moorage_proxy_held_requests", nil, strconv.FormatInt(p.holding.Load(), 10))
	header("moorage_proxy_open_connections", "gauge", "Open client connections (on servers made by HTTPServer).")
	sample("moorage_proxy_open_connections", nil, strconv.FormatInt(p.conns.Load(), 10))
	header("moorage_proxy_upstream_healthy", "gauge", "1 when the instance is in rotation, 0 when out (failed checks or refused connections).")
	for _, t := range targets {
		v := "0"
		if t.Healthy {
			v = "1"
		}
		sample("moorage_proxy_upstream_healthy", []string{"app", t.App, "service", t.Service, "target", t.ID, "routed", strconv.FormatBool(t.Routed)}, v)
	}
	header("moorage_proxy_upstream_in_flight", "gauge", "Requests (and upgraded connections) in flight to the instance.")
	for _, t := range targets {
		sample("moorage_proxy_upstream_in_flight", []string{"app", t.App, "service", t.Service, "target", t.ID}, strconv.Itoa(t.InFlight))
	}
}

var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

func escapeLabel(s string) string { return labelEscaper.Replace(s) }
