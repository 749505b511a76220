package api

import "time"

// Notifier describes a notifier without its secrets.
type Notifier struct {
	ID          int64     `json:"id"`
	App         string    `json:"app"` // "" = every app of the server
	Kind        string    `json:"kind"`
	Label       string    `json:"label"`
	Created     time.Time `json:"created"`
	LastOK      time.Time `json:"last_ok,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	Failures    int       `json:"failures,omitempty"`
	Failing     bool      `json:"failing,omitempty"` // its last delivery failed
}
