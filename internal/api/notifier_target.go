package api

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
	NotifierWebhook = "webhook"
	NotifierSlack   = "slack"
	NotifierEmail   = "email"
)

// NotifierTarget is where a notifier sends, with its secrets: what
// `moorage notify add` sends (internal/notify keeps it sealed, as its
// Target).
type NotifierTarget struct {
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
func (t *NotifierTarget) Validate() error {
	switch t.Kind {
	case NotifierWebhook, NotifierSlack:
		u, err := url.Parse(t.URL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("%s notifier: url %q must be an http:// or https:// URL", t.Kind, t.URL)
		}
		if t.Kind == NotifierWebhook && t.Secret == "" {
			return errors.New("webhook notifier: needs --secret, the key its receiver checks X-Moorage-Signature-256 with")
		}
	case NotifierEmail:
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
func (t *NotifierTarget) Label() string {
	switch t.Kind {
	case NotifierWebhook, NotifierSlack:
		u, err := url.Parse(t.URL)
		if err != nil {
			return t.Kind
		}
		return t.Kind + " " + u.Scheme + "://" + u.Host + "/…"
	case NotifierEmail:
		return "email to " + strings.Join(t.To, ", ") + " via " + t.SMTP
	}
	return t.Kind
}
