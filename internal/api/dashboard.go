package api

import "time"

// Dashboard roles.
const (
	RoleOperator = "operator" // sees everything, may act (roll back, scale, ...)
	RoleReadonly = "readonly" // sees everything, may not act
)

// DashboardUserRequest is the body of POST /v1/dashboard/users. The
// password travels only in this request and is stored as a bcrypt hash.
type DashboardUserRequest struct {
	Name     string `json:"name"`
	Role     string `json:"role"`
	Password string `json:"password"`
}

// DashboardUser is one user of GET /v1/dashboard/users (never a hash).
type DashboardUser struct {
	Name      string    `json:"name"`
	Role      string    `json:"role"`
	CreatedAt time.Time `json:"created_at"`
	// Credential changes whenever the password does (a digest of the
	// stored hash, which says nothing of the password): a session opened
	// with another one ends.
	Credential string `json:"credential,omitempty"`
}

// DashboardLogin is the body of POST /v1/dashboard/login; a 200 answers a
// DashboardUser, a 401 a wrong name or password (the same answer for both).
type DashboardLogin struct {
	Name     string `json:"name"`
	Password string `json:"password"`
}

// AuditEntry is one recorded dashboard action (POST and GET
// /v1/dashboard/audit).
type AuditEntry struct {
	At      time.Time `json:"at,omitzero"`
	User    string    `json:"user"`
	IP      string    `json:"ip"`
	Action  string    `json:"action"`
	Target  string    `json:"target"`
	Outcome string    `json:"outcome"`
}

// DiskUsage answers GET /v1/server/disk: bytes under the data dir's parts.
type DiskUsage struct {
	DataDir   string `json:"data_dir"`
	Artifacts int64  `json:"artifacts"` // releases/ (the process runtime's unpacked releases)
	Logs      int64  `json:"logs"`
	Backups   int64  `json:"backups"`
	Volumes   int64  `json:"volumes"`
}

// RequestCount is an app's answered requests since the server started
// (GET /v1/server/traffic, by app).
type RequestCount struct {
	Requests uint64 `json:"requests"`
	Errors   uint64 `json:"errors"` // answered with a 5xx status
}
