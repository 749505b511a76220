package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// ErrBadEnv reports an environment variable the app cannot use.
var ErrBadEnv = errors.New("invalid environment variable")

// env is what moorage (and the tests) tell the app through the environment.
type env struct {
	release  string // MOORAGE_RELEASE, "v3"
	instance string // MOORAGE_INSTANCE
	service  string // MOORAGE_SERVICE
	dataDir  string // MOORAGE_VOLUME_DATA, or ./data

	crashAfter   time.Duration // HELLO_CRASH_AFTER: exit 3 after this long
	crashServed  int           // HELLO_CRASH_AFTER_REQUESTS: web exits 3 after answering this many GET /
	unhealthy    bool          // HELLO_UNHEALTHY=1: /healthz answers 503
	sickServed   int           // HELLO_UNHEALTHY_AFTER_REQUESTS: /healthz answers 503 once web answered this many GET /
	migrateSleep time.Duration // HELLO_MIGRATE_SLEEP: hold the migrate lock this long
	migrateFail  bool          // HELLO_MIGRATE_FAIL=1: migrate exits 2
	allowedHosts []string      // HELLO_ALLOWED_HOSTS=a.com,b.com: web answers 400 to any other Host
}

func loadEnv() (*env, error) {
	e := &env{
		release:     os.Getenv("MOORAGE_RELEASE"),
		instance:    os.Getenv("MOORAGE_INSTANCE"),
		service:     os.Getenv("MOORAGE_SERVICE"),
		dataDir:     os.Getenv("MOORAGE_VOLUME_DATA"),
		unhealthy:   os.Getenv("HELLO_UNHEALTHY") == "1",
		migrateFail: os.Getenv("HELLO_MIGRATE_FAIL") == "1",
	}
	for _, h := range strings.Split(os.Getenv("HELLO_ALLOWED_HOSTS"), ",") {
		if h = strings.TrimSpace(h); h != "" {
			e.allowedHosts = append(e.allowedHosts, strings.ToLower(h))
		}
	}
	if e.dataDir == "" {
		e.dataDir = "data"
	}
	var err error
	if e.crashAfter, err = durationEnv("HELLO_CRASH_AFTER"); err != nil {
		return nil, err
	}
	if e.migrateSleep, err = durationEnv("HELLO_MIGRATE_SLEEP"); err != nil {
		return nil, err
	}
	for _, c := range []struct {
		name string
		n    *int
	}{{"HELLO_CRASH_AFTER_REQUESTS", &e.crashServed}, {"HELLO_UNHEALTHY_AFTER_REQUESTS", &e.sickServed}} {
		if v := os.Getenv(c.name); v != "" {
			if *c.n, err = strconv.Atoi(v); err != nil || *c.n < 1 {
				return nil, fmt.Errorf("%s=%q is not a count like 3: %w", c.name, v, ErrBadEnv)
			}
		}
	}
	return e, nil
}

// data returns the path of name inside the data directory.
func (e *env) data(name string) string { return filepath.Join(e.dataDir, name) }

// ensureDataDir creates the data directory and the given subdirectories.
func (e *env) ensureDataDir(subdirs ...string) error {
	for _, d := range append([]string{""}, subdirs...) {
		if err := os.MkdirAll(filepath.Join(e.dataDir, d), 0o755); err != nil {
			return fmt.Errorf("create data directory: %w", err)
		}
	}
	return nil
}

// field returns s for a space-separated log line: "-" when s is empty, so
// every line of the data logs has the same number of fields.
func field(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// nanos is the current time in Unix nanoseconds, the time format of the data logs.
func nanos() int64 { return time.Now().UnixNano() }

func durationEnv(name string) (time.Duration, error) {
	v := os.Getenv(name)
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%s=%q is not a duration like 2s or 500ms: %w", name, v, ErrBadEnv)
	}
	return d, nil
}
