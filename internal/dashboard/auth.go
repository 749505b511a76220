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

// Login limits: at most LoginAttempts failed logins per client address in
// LoginWindow; then the address waits for the window to pass.
const (
	LoginAttempts = 10
	LoginWindow   = 15 * time.Minute
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

// limiter counts failed logins per client address.
type limiter struct {
	mu sync.Mutex
	m  map[string]*window
}

type window struct {
	start    time.Time
	failures int
}

// allowed reports whether addr may try to log in, and when not, how long
// it must wait.
func (l *limiter) allowed(addr string) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.m[addr]
	now := time.Now()
	if w == nil || now.Sub(w.start) > LoginWindow {
		return true, 0
	}
	if w.failures >= LoginAttempts {
		return false, LoginWindow - now.Sub(w.start)
	}
	return true, 0
}

func (l *limiter) failed(addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if len(l.m) > 100000 {
		for k, w := range l.m {
			if now.Sub(w.start) > LoginWindow {
				delete(l.m, k)
			}
		}
	}
	w := l.m[addr]
	if w == nil || now.Sub(w.start) > LoginWindow {
		w = &window{start: now}
		l.m[addr] = w
	}
	w.failures++
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
		return origin{key: host, addr: host}
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
