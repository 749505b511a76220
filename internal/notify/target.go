// Package notify tells people what deploys did: deploy success, failure,
// automatic rollback, failed scheduled backups and certificate failures go
// to generic JSON webhooks (HMAC-signed), Slack-compatible incoming
// webhooks and email (SMTP with STARTTLS). Notifiers are configured per app
// or per server and kept in the store, their targets sealed with the
// server's secrets key. Delivery is asynchronous and retried with backoff:
// a notifier that fails never fails or delays anything; its last error is
// shown in `moorage ps`.
package notify

import (
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"strings"
)

// Kinds of notifier.
const (
	KindWebhook = "webhook"
	KindSlack   = "slack"
	KindEmail   = "email"
)

// Target is where a notifier sends, with its secrets. It is stored sealed.
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

// Validate checks a target and fills in defaults.
func (t *Target) Validate() error {
	switch t.Kind {
	case KindWebhook, KindSlack:
		u, err := url.Parse(t.URL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("%s notifier: url %q must be an http:// or https:// URL", t.Kind, t.URL)
		}
		if t.Kind == KindWebhook && t.Secret == "" {
			return errors.New("webhook notifier: needs --secret, the key its receiver checks X-Moorage-Signature-256 with")
		}
	case KindEmail:
		if t.SMTP == "" {
			return errors.New("email notifier: needs --smtp HOST[:PORT]")
		}
		if _, _, err := net.SplitHostPort(t.SMTP); err != nil {
			t.SMTP = net.JoinHostPort(t.SMTP, "587")
		}
		if _, err := mail.ParseAddress(t.From); err != nil {
			return fmt.Errorf("email notifier: --from %q is not an email address", t.From)
		}
		if len(t.To) == 0 {
			return errors.New("email notifier: needs --to ADDRESS (repeat it for more)")
		}
		for _, a := range t.To {
			if _, err := mail.ParseAddress(a); err != nil {
				return fmt.Errorf("email notifier: --to %q is not an email address", a)
			}
		}
		if t.Password != "" && t.Username == "" {
			return errors.New("email notifier: a password needs --user")
		}
	default:
		return fmt.Errorf("notifier kind %q: use webhook, slack or email", t.Kind)
	}
	return nil
}

// Label says where a target sends, without any secret: the URL's host (a
// Slack URL's path is its secret), or the SMTP server and recipients.
func (t *Target) Label() string {
	switch t.Kind {
	case KindWebhook, KindSlack:
		u, err := url.Parse(t.URL)
		if err != nil {
			return t.Kind
		}
		return t.Kind + " " + u.Scheme + "://" + u.Host + "/…"
	case KindEmail:
		return "email to " + strings.Join(t.To, ", ") + " via " + t.SMTP
	}
	return t.Kind
}
