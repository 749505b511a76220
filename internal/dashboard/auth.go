package dashboard

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moorage/moorage/internal/apiserver"
)

// Session lifetimes: a session ends after IdleTimeout without a request,
// and at the latest MaxAge after the login.
const (
	IdleTimeout = 2 * time.Hour
	MaxAge      = 12 * time.Hour
)

// Login limits: at most LoginAttempts failed logins per client in
// LoginWindow; then the client waits for the window to pass. At most
// LoginChecks passwords are checked at a time (bcrypt, cost 12, takes a
// core for a quarter of a second): a login waits up to LoginQueueWait for
// its turn, then gets 503 with Retry-After. A user name or password longer
// than any the server accepts (64, 72 bytes) is refused before any check.
const (
	LoginAttempts  = 10
	LoginWindow    = 15 * time.Minute
	LoginChecks    = 2
	LoginQueueWait = 3 * time.Second
	maxUserLen     = 64
	maxPasswordLen = 72
)

const (
	sessionCookie = "moorage_dashboard"
	loginCookie   = "moorage_dashboard_login" // the login form's CSRF token
)

type session struct {
	user, role string
	credential string // the user's api.DashboardUser.Credential at login
	csrf       string
	created    time.Time
	seen       time.Time
	checked    time.Time // when the user's existence and role were last read
}

// sessions are kept in memory, by the SHA-256 of their token: a server
// restart logs everyone out, and a memory dump holds no usable token.
type sessions struct {
	mu sync.Mutex
	m  map[[32]byte]*session
}

func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (ss *sessions) create(user, role, credential string) (token string, s *session) {
	token = randomToken()
	now := time.Now()
	s = &session{user: user, role: role, credential: credential, csrf: randomToken(), created: now, seen: now, checked: now}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for k, v := range ss.m { // sweep expired ones
		if v.expired(now) {
			delete(ss.m, k)
		}
	}
	ss.m[sha256.Sum256([]byte(token))] = s
	return token, s
}

func (s *session) expired(now time.Time) bool {
	return now.Sub(s.seen) > IdleTimeout || now.Sub(s.created) > MaxAge
}

func (ss *sessions) get(token string) *session { return ss.lookup(token, true) }

// alive is get without counting as activity: a stream that stays open
// does not keep its session from idling out.
func (ss *sessions) alive(token string) *session { return ss.lookup(token, false) }

func (ss *sessions) lookup(token string, touch bool) *session {
	if token == "" {
		return nil
	}
	k := sha256.Sum256([]byte(token))
	now := time.Now()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s := ss.m[k]
	if s == nil {
		return nil
	}
	if s.expired(now) {
		delete(ss.m, k)
		return nil
	}
	if touch {
		s.seen = now
	}
	return s
}

// endUser ends every session of user.
func (ss *sessions) endUser(user string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for k, s := range ss.m {
		if s.user == user {
			delete(ss.m, k)
		}
	}
}

func (ss *sessions) remove(token string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.m, sha256.Sum256([]byte(token)))
}

// limiter counts logins per client (origin.key): the failed ones, and
// those whose password is being checked. An attempt is reserved before
// the check, in the same step as the limit is checked, so that concurrent
// logins cannot all pass the check before any failure is counted.
type limiter struct {
	mu sync.Mutex
	m  map[string]*window
	// The audit's budget for failed logins: audited of them recorded since
	// auditStart (AuditFailedLogins per LoginWindow over all clients).
	auditStart time.Time
	audited    int
}

// AuditFailedLogins is how many failed logins the audit records per
// LoginWindow over all clients (each client's first failure in its window
// and the one that blocks it); the rest are counted in the entries and
// the server's log, so that a flood of wrong logins cannot flood the audit.
const AuditFailedLogins = 100

type window struct {
	start    time.Time
	failures int // failed logins in the window
	inflight int // logins being checked now
}

func (w *window) expired(now time.Time) bool { return now.Sub(w.start) > LoginWindow }

// reserve counts a login attempt of key before its password is checked;
// nil when key has used its attempts, with how long it must wait. The
// attempt ends with release (the login succeeded, or the password could
// not be checked: it does not count) or failed.
func (l *limiter) reserve(key string) (*window, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if len(l.m) > 100000 {
		for k, w := range l.m {
			if w.expired(now) && w.inflight == 0 {
				delete(l.m, k)
			}
		}
	}
	w := l.m[key]
	if w == nil || w.expired(now) {
		w = &window{start: now}
		l.m[key] = w
	}
	if w.failures+w.inflight >= LoginAttempts {
		return nil, LoginWindow - now.Sub(w.start)
	}
	w.inflight++
	return w, 0
}

// auditSlot reports whether a failed login may be recorded in the audit,
// and whether it is the last one the budget allows this window, with when
// the budget is renewed.
func (l *limiter) auditSlot() (ok, last bool, until time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if now.Sub(l.auditStart) > LoginWindow {
		l.auditStart, l.audited = now, 0
	}
	if l.audited >= AuditFailedLogins {
		return false, false, time.Time{}
	}
	l.audited++
	return true, l.audited == AuditFailedLogins, l.auditStart.Add(LoginWindow)
}

// release gives back an attempt reserve counted.
func (l *limiter) release(w *window) {
	l.mu.Lock()
	defer l.mu.Unlock()
	w.inflight--
}

// failed turns a reserved attempt into a failure; it returns the failures
// of the window so far.
func (l *limiter) failed(w *window) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	w.inflight--
	w.failures++
	return w.failures
}

// origin is who a request comes from: key is what its failed logins are
// counted under, addr what the audit and the operations' owner show.
type origin struct{ key, addr string }

// originOf is where a request comes from, from what the kernel says, never
// from a header the client sends (X-Forwarded-For is ignored: no proxy of
// the server's own stands in front of the dashboard). Over TCP (the HTTPS
// listener) it is the peer's IP address. Over the control socket (`moorage
// dashboard`, forwarded through ssh or run on the server) it is the
// socket's peer (SO_PEERCRED, see apiserver.Peer): its uid and user name
// and, for `moorage dial-stdio` in an ssh session, the ssh client's
// address and the forced command's user, e.g.
// "deploy (uid 1001) over ssh as carol from 203.0.113.9".
func originOf(r *http.Request) origin {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil && host != "" {
		key := host
		if ip := net.ParseIP(host); ip != nil && ip.To4() == nil {
			// An IPv6 client has a /64 at least: its failed logins
			// count together, not per address.
			m := net.CIDRMask(64, 128)
			key = (&net.IPNet{IP: ip.Mask(m), Mask: m}).String()
		}
		return origin{key: key, addr: host}
	}
	if p, ok := apiserver.PeerOf(r.Context()); ok {
		key := "uid " + strconv.Itoa(p.UID)
		if p.SSHFrom != "" || p.SSHUser != "" {
			key += " ssh " + p.SSHFrom + " " + p.SSHUser
		}
		return origin{key: key, addr: p.String()}
	}
	return origin{key: "socket", addr: "control socket (peer unknown)"}
}

func sameToken(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// sameOrigin refuses a cross-site form post: when the browser says where a
// request comes from (Sec-Fetch-Site, Origin), it must be this site.
func sameOrigin(r *http.Request) bool {
	if sfs := r.Header.Get("Sec-Fetch-Site"); sfs != "" && sfs != "same-origin" {
		return false
	}
	o := r.Header.Get("Origin")
	if o == "" || o == "null" {
		return true // no claim (the CSRF token still has to match)
	}
	o = strings.TrimPrefix(strings.TrimPrefix(o, "https://"), "http://")
	return o == r.Host
}

// setCookie sets an HttpOnly, SameSite=Strict cookie, Secure over HTTPS.
// Only `moorage dashboard`'s loopback forwarder is plain HTTP (browsers
// refuse Secure cookies there): its cookies cross only the loopback
// interface, and ssh's encryption from there on.
func (d *Dashboard) setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: value, Path: d.prefix, MaxAge: maxAge,
		Secure: !loopbackForwarded(r), HttpOnly: true, SameSite: http.SameSiteStrictMode,
	})
}

// loopbackForwarded reports whether r came through `moorage dashboard`
// (over the control socket, from a browser on the CLI's loopback).
func loopbackForwarded(r *http.Request) bool {
	if r.TLS != nil {
		return false
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	return (err != nil || host == "") && r.Header.Get("X-Forwarded-Proto") != "https"
}
