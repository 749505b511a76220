// Package notify tells people what deploys did: deploy success, failure,
// automatic rollback, failed scheduled backups and certificate failures go
// to generic JSON webhooks (HMAC-signed), Slack-compatible incoming
// webhooks and email (SMTP with STARTTLS). Notifiers are configured per app
// or per server and kept in the store, their targets sealed with the
// server's secrets key. Delivery is asynchronous and retried with backoff:
// a notifier that fails never fails or delays anything; its last error is
// shown in `moorage ps`.
package notify

import "github.com/moorage/moorage/internal/api"

// Kinds of notifier (the wire's, internal/api).
const (
	KindWebhook = api.NotifierWebhook
	KindSlack   = api.NotifierSlack
	KindEmail   = api.NotifierEmail
)

// Target is where a notifier sends, with its secrets. It is stored sealed.
// Its wire form is api.NotifierTarget (the same fields: a conversion),
// whose Validate and Label it uses.
type Target struct {
	Kind string `json:"kind"`
	// URL is the webhook's (webhook, slack).
	URL string `json:"url,omitempty"`
	// Secret signs a generic webhook's body: X-Moorage-Signature-256 is
	// "sha256=" + hex HMAC-SHA256 of the body with it.
	Secret string `json:"secret,omitempty"`

	// Email: the SMTP server (host:port, 587 when no port), the sender and
	// the recipients, optional PLAIN auth, and STARTTLS, required unless
	// Insecure (a relay on localhost). CAFile is a PEM file on the server
	// of roots trusted for the SMTP server's certificate besides the
	// system's.
	SMTP     string   `json:"smtp,omitempty"`
	From     string   `json:"from,omitempty"`
	To       []string `json:"to,omitempty"`
	Username string   `json:"username,omitempty"`
	Password string   `json:"password,omitempty"`
	Insecure bool     `json:"insecure,omitempty"`
	CAFile   string   `json:"ca_file,omitempty"`
}

// Validate checks a target and fills in defaults (api.NotifierTarget's
// rules, which the CLI applies before sending it).
func (t *Target) Validate() error {
	w := api.NotifierTarget(*t)
	err := w.Validate()
	*t = Target(w)
	return err
}

// Label says where a target sends, without any secret.
func (t *Target) Label() string {
	w := api.NotifierTarget(*t)
	return w.Label()
}
