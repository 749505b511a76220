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

// Target is where a notifier sends, with its secrets: the wire's
// api.NotifierTarget itself (its Validate and Label included). It is
// stored sealed, and no response carries it whole: the API answers with
// its Label.
type Target = api.NotifierTarget
