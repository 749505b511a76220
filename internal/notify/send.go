package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/smtp"
	"os"
	"strings"
	"time"
)

// Notification is something to tell people about: the JSON body of a
// generic webhook.
type Notification struct {
	ID      string    `json:"id"`    // unique per event: "deploy-42", receivers may dedupe on it
	Event   string    `json:"event"` // one of the Event* kinds
	App     string    `json:"app"`
	Server  string    `json:"server"`
	Time    time.Time `json:"time"`
	Title   string    `json:"title"` // one line
	Detail  string    `json:"detail,omitempty"`
	Deploy  int64     `json:"deploy,omitempty"`
	Release string    `json:"release,omitempty"`
}

// Notification kinds (its Event).
const (
	EventDeploySucceeded  = "deploy.succeeded"
	EventDeployFailed     = "deploy.failed"
	EventDeployRolledBack = "deploy.rolled_back"
	EventBackupFailed     = "backup.failed"
	EventCertFailed       = "cert.failed"
	EventTest             = "test"
)

// Signature is the value of X-Moorage-Signature-256 for body signed with
// secret: "sha256=" and the hex HMAC-SHA256.
func Signature(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// sendTimeout bounds one delivery attempt.
const sendTimeout = 10 * time.Second

// Send delivers ev to t once.
func Send(ctx context.Context, t *Target, ev Notification) error {
	ctx, cancel := context.WithTimeout(ctx, sendTimeout)
	defer cancel()
	switch t.Kind {
	case KindWebhook:
		body, _ := json.Marshal(ev)
		return post(ctx, t.URL, body, map[string]string{
			"X-Moorage-Event":         ev.Event,
			"X-Moorage-Delivery":      ev.ID,
			"X-Moorage-Signature-256": Signature(t.Secret, body),
		})
	case KindSlack:
		body, _ := json.Marshal(map[string]string{"text": slackText(ev)})
		return post(ctx, t.URL, body, nil)
	case KindEmail:
		return sendMail(ctx, t, ev)
	}
	return fmt.Errorf("notifier kind %q", t.Kind)
}

var httpClient = &http.Client{Timeout: sendTimeout}

func post(ctx context.Context, url string, body []byte, hdr map[string]string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "moorage-notify")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return redactURL(err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("receiver answered %s", resp.Status)
	}
	return nil
}

// redactURL drops the URL from a client error: a Slack URL is a secret.
func redactURL(err error) error {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			return fmt.Errorf("post: %w", inner)
		}
	}
	return errors.New("post failed")
}

func slackText(ev Notification) string {
	icon := map[string]string{EventDeploySucceeded: ":white_check_mark:", EventDeployFailed: ":x:", EventDeployRolledBack: ":leftwards_arrow_with_hook:",
		EventBackupFailed: ":warning:", EventCertFailed: ":warning:", EventTest: ":wave:"}[ev.Event]
	s := strings.TrimSpace(icon + " *" + ev.Title + "*")
	if ev.Detail != "" {
		s += "\n" + ev.Detail
	}
	return s
}

func sendMail(ctx context.Context, t *Target, ev Notification) error {
	host, _, _ := net.SplitHostPort(t.SMTP)
	d := net.Dialer{}
	conn, err := d.DialContext(ctx, "tcp", t.SMTP)
	if err != nil {
		return fmt.Errorf("smtp: %w", err)
	}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("smtp %s: %w", t.SMTP, err)
	}
	defer c.Close()
	if err := c.Hello("moorage"); err != nil {
		return fmt.Errorf("smtp %s: %w", t.SMTP, err)
	}
	if ok, _ := c.Extension("STARTTLS"); ok {
		cfg := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
		if t.CAFile != "" {
			pem, err := os.ReadFile(t.CAFile)
			if err != nil {
				return fmt.Errorf("smtp: ca_file: %w", err)
			}
			pool, err := x509.SystemCertPool()
			if err != nil || pool == nil {
				pool = x509.NewCertPool()
			}
			if !pool.AppendCertsFromPEM(pem) {
				return fmt.Errorf("smtp: ca_file %s holds no PEM certificate", t.CAFile)
			}
			cfg.RootCAs = pool
		}
		if err := c.StartTLS(cfg); err != nil {
			return fmt.Errorf("smtp %s: STARTTLS: %w", t.SMTP, err)
		}
	} else if !t.Insecure {
		return fmt.Errorf("smtp %s does not offer STARTTLS; refusing to send in the clear (set insecure for a local relay)", t.SMTP)
	}
	if t.Username != "" {
		// net/smtp's PLAIN auth refuses unencrypted connections except to
		// localhost.
		if err := c.Auth(smtp.PlainAuth("", t.Username, t.Password, host)); err != nil {
			return fmt.Errorf("smtp %s: auth: %w", t.SMTP, err)
		}
	}
	if err := c.Mail(addrOf(t.From)); err != nil {
		return fmt.Errorf("smtp %s: MAIL FROM: %w", t.SMTP, err)
	}
	for _, to := range t.To {
		if err := c.Rcpt(addrOf(to)); err != nil {
			return fmt.Errorf("smtp %s: RCPT TO %s: %w", t.SMTP, to, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("smtp %s: DATA: %w", t.SMTP, err)
	}
	if _, err := w.Write(message(t, ev)); err != nil {
		return fmt.Errorf("smtp %s: %w", t.SMTP, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("smtp %s: %w", t.SMTP, err)
	}
	return c.Quit()
}

func addrOf(s string) string {
	if i, j := strings.LastIndex(s, "<"), strings.LastIndex(s, ">"); i >= 0 && j > i {
		return s[i+1 : j]
	}
	return strings.TrimSpace(s)
}

func message(t *Target, ev Notification) []byte {
	var b bytes.Buffer
	subject := strings.NewReplacer("\r", " ", "\n", " ").Replace("[moorage] " + ev.Title)
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <%s.%d@moorage>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nX-Moorage-Event: %s\r\n\r\n",
		t.From, strings.Join(t.To, ", "), subject, ev.Time.Format(time.RFC1123Z), ev.ID, time.Now().UnixNano(), ev.Event)
	body := ev.Title + "\n"
	if ev.Detail != "" {
		body += "\n" + ev.Detail + "\n"
	}
	body += fmt.Sprintf("\napp: %s\nserver: %s\ntime: %s\n", ev.App, ev.Server, ev.Time.Format(time.RFC3339))
	// The DATA writer dot-stuffs lines; line ends must be CRLF.
	for _, l := range strings.Split(body, "\n") {
		b.WriteString(l + "\r\n")
	}
	return b.Bytes()
}
