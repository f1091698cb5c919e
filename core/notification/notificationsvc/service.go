package notificationsvc

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/gpuaas/gpuaas/core/event"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/identity"
	"github.com/gpuaas/gpuaas/core/notification"
	"github.com/gpuaas/gpuaas/ports"
)

// ProjectAccess says what role a caller has in a project (NotFound when it
// is not theirs); identitysvc.Service implements it.
type ProjectAccess interface {
	ProjectAccess(ctx context.Context, p identity.Principal, projectID string) (identity.Project, identity.ProjectRole, error)
}

// Config tunes the service. The zero value is valid but for PublicURL.
type Config struct {
	// PublicURL is the console's base URL, linked from emails.
	PublicURL string
	// MailDomain is the right-hand side of Message-IDs; default
	// "gpuaas.invalid".
	MailDomain string
	// AllowPrivateWebhooks accepts http and private/loopback endpoint URLs
	// (development and tests only; production refuses them).
	AllowPrivateWebhooks bool
	// Batch is how many emails or deliveries one dispatch claims; default 50.
	Batch int
	// Lease is how long a claimed email or delivery is held; default 2 min.
	Lease time.Duration
	// MailMaxAttempts bounds email attempts; default 40 (about 6 hours).
	MailMaxAttempts int
	// NoEmail turns the email channel off (no relay configured): nothing
	// is queued for it.
	NoEmail bool
}

// CheckAndSetDefaults validates the config and fills in defaults.
func (c *Config) CheckAndSetDefaults() error {
	if c.MailDomain == "" {
		c.MailDomain = "gpuaas.invalid"
	}
	if c.Batch == 0 {
		c.Batch = 50
	}
	if c.Lease == 0 {
		c.Lease = 2 * time.Minute
	}
	if c.MailMaxAttempts == 0 {
		c.MailMaxAttempts = 40
	}
	if c.Batch < 0 || c.Lease < 0 || c.MailMaxAttempts < 0 {
		return errors.New("notificationsvc: Batch, Lease and MailMaxAttempts must not be negative")
	}
	return nil
}

// Deps are the ports the service needs. Mailer and Sender are needed only
// by the dispatchers (the API host runs without them); Logger is optional.
type Deps struct {
	Tx          ports.TxRunner
	Inbox       ports.NotificationInbox
	Feed        ports.NotificationFeed
	Recipients  ports.NotificationRecipients
	Preferences ports.NotificationPreferences
	Mail        ports.MailQueue
	Webhooks    ports.WebhookStore
	Policies    ports.PolicyStore
	Outbox      ports.Outbox
	Audit       ports.AuditLog
	KMS         ports.KMS
	Projects    ProjectAccess
	Clock       ports.Clock
	IDs         ports.IDs

	Mailer ports.Mailer
	Sender ports.WebhookSender
	Logger *slog.Logger
	// Rand makes webhook secrets (crypto/rand when nil).
	Rand io.Reader
}

// Service implements the notification use cases.
type Service struct {
	cfg Config
	d   Deps
	log *slog.Logger
}

// New checks the configuration and dependencies.
func New(cfg Config, d Deps) (*Service, error) {
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	if d.Tx == nil || d.Inbox == nil || d.Feed == nil || d.Recipients == nil || d.Preferences == nil ||
		d.Mail == nil || d.Webhooks == nil || d.Policies == nil || d.Outbox == nil || d.Audit == nil ||
		d.KMS == nil || d.Projects == nil || d.Clock == nil || d.IDs == nil {
		return nil, errors.New("notificationsvc: every dependency but Mailer, Sender, Logger and Rand is required")
	}
	if d.Rand == nil {
		d.Rand = rand.Reader
	}
	log := d.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{cfg: cfg, d: d, log: log.With("component", "notifications")}, nil
}

// HandleEvent turns one delivered event into notifications, exactly once
// however often it is delivered: an inbox row per recipient (unique by
// event and user; the live streams wake on commit), an email per new row
// whose user wants that kind by email, and a delivery per subscribed
// webhook endpoint (unique by endpoint and event) — all in one
// transaction. A kind whose policy flag is off (for the tenant) raises no
// inbox row or email; webhook deliveries follow the endpoints'
// subscriptions. Events that raise nothing are ignored; a malformed one is
// fault.Invalid.
//
// It lies on the way from an event to the live stream, so it takes two
// round trips: one read (Recipients.Targets: recipients and endpoints)
// and one write (Inbox.Deliver, which is its own transaction).
func (s *Service) HandleEvent(ctx context.Context, env event.Envelope) error {
	m, ok, err := notification.FromEvent(env)
	if err != nil || !ok {
		return err
	}
	vals, err := s.d.Policies.Values(ctx, m.TenantID)
	if fault.IsKind(err, fault.KindNotFound) {
		return fault.Invalid("tenant_id", "the event's tenant does not exist").Wrap(err)
	}
	if err != nil {
		return err
	}
	var q ports.TargetQuery
	if vals.Bool(m.Kind.Flag()) {
		q.Audience = &ports.AudienceQuery{Audience: m.Audience, TenantID: m.TenantID, ProjectID: m.ProjectID, UserID: m.UserID}
	}
	if notification.ValidEventType(env.Type) && env.TenantID != "" {
		q.Endpoints = &ports.EndpointQuery{TenantID: env.TenantID, ProjectID: env.ProjectID, EventType: env.Type}
	}
	if q.Audience == nil && q.Endpoints == nil {
		return nil
	}
	t, err := s.d.Recipients.Targets(ctx, q)
	if err != nil {
		return err
	}
	var d ports.NotificationDelivery
	d.Rows, d.Emails = s.inboxRows(m, t.Recipients)
	if d.Webhooks, err = s.webhookDeliveries(env, t.Endpoints); err != nil {
		return err
	}
	_, err = s.d.Inbox.Deliver(ctx, d)
	return err
}

// inboxRows makes one row per person and the emails of those who want
// this kind by email.
func (s *Service) inboxRows(m notification.Message, rs []ports.Recipient) ([]notification.Notification, []notification.Email) {
	now := s.d.Clock.Now()
	var rows []notification.Notification
	var mails []notification.Email
	seen := map[string]bool{}
	for _, r := range rs {
		if seen[r.UserID] {
			continue
		}
		seen[r.UserID] = true
		n := notification.Notification{ID: s.d.IDs.NewID(), UserID: r.UserID, TenantID: m.TenantID,
			EventID: m.EventID, Kind: m.Kind, Title: m.Title, Body: m.Body, Data: m.Data, CreatedAt: now}
		rows = append(rows, n)
		if s.cfg.NoEmail || r.Email == "" || !r.Preferences.EmailOn(n.Kind) {
			continue
		}
		mails = append(mails, notification.Email{ID: n.ID, To: r.Email, Subject: n.Title, Body: s.mailBody(n),
			MessageID: notification.MessageID(n.EventID, n.UserID, s.cfg.MailDomain), CreatedAt: n.CreatedAt})
	}
	return rows, mails
}

func (s *Service) mailBody(n notification.Notification) string {
	var b strings.Builder
	b.WriteString(n.Body)
	b.WriteString("\n\n")
	if base := strings.TrimRight(s.cfg.PublicURL, "/"); base != "" {
		if path, label := n.Link(); path != "" {
			b.WriteString(label + ": " + base + path + "\n")
		}
		b.WriteString("Your notifications: " + base + "/notifications\n")
		b.WriteString("Choose which emails you get: " + base + "/settings/notifications\n")
	}
	b.WriteString("\n— GPUaaS\n")
	return b.String()
}

// webhookDeliveries makes one delivery per endpoint, all with the same
// body.
func (s *Service) webhookDeliveries(env event.Envelope, eps []notification.Endpoint) ([]notification.Delivery, error) {
	if len(eps) == 0 {
		return nil, nil
	}
	data := map[string]any{}
	if len(env.Payload) > 0 {
		if err := json.Unmarshal(env.Payload, &data); err != nil {
			return nil, fault.Invalid("payload", "the event payload is not a JSON object").Wrap(err)
		}
	}
	data["event_id"], data["tenant_id"] = env.ID, env.TenantID
	if env.ProjectID != "" {
		data["project_id"] = env.ProjectID
	}
	body, err := json.Marshal(notification.WebhookBody{Type: env.Type, Timestamp: env.OccurredAt.UTC(), Data: data})
	if err != nil {
		return nil, fault.Internal(err)
	}
	now := s.d.Clock.Now()
	ds := make([]notification.Delivery, len(eps))
	for i, ep := range eps {
		ds[i] = notification.Delivery{ID: s.d.IDs.NewID(), EndpointID: ep.ID, TenantID: ep.TenantID, ProjectID: ep.ProjectID,
			EventID: env.ID, EventType: env.Type, Payload: body, Status: notification.DeliveryPending,
			NextAttemptAt: now, CreatedAt: now}
	}
	return ds, nil
}

// Page is one page of a user's inbox.
type Page struct {
	Notifications []notification.Notification
	NextCursor    string
	Unread        int
}

// Inbox lists the caller's notifications, newest first.
func (s *Service) Inbox(ctx context.Context, p identity.Principal, f ports.NotificationFilter) (Page, error) {
	if f.Limit == 0 {
		f.Limit = 50
	}
	if f.Limit < 1 || f.Limit > 200 {
		return Page{}, fault.Invalid("limit", "limit must be between 1 and 200")
	}
	rows, next, err := s.d.Inbox.List(ctx, p.User.ID, f)
	if err != nil {
		return Page{}, err
	}
	unread, err := s.d.Inbox.UnreadCount(ctx, p.User.ID)
	if err != nil {
		return Page{}, err
	}
	return Page{Notifications: rows, NextCursor: next, Unread: unread}, nil
}

// MaxMarkIDs bounds the ids one mark-read names.
const MaxMarkIDs = 200

// MarkRead marks the caller's notifications read: the ids given (others'
// ids change nothing), or all when all is set.
func (s *Service) MarkRead(ctx context.Context, p identity.Principal, ids []string, all bool) (int, error) {
	switch {
	case all && len(ids) > 0:
		return 0, fault.Invalid("ids", "name ids or set all, not both")
	case !all && len(ids) == 0:
		return 0, fault.Invalid("ids", "name at least one id, or set all")
	case len(ids) > MaxMarkIDs:
		return 0, fault.Invalid("ids", "at most 200 ids at once")
	}
	for _, id := range ids {
		if err := identity.ValidateID("ids", id); err != nil {
			return 0, err
		}
	}
	return s.d.Inbox.MarkRead(ctx, p.User.ID, ids, s.d.Clock.Now())
}

// StreamBatch bounds the rows one Since read returns to a live stream.
const StreamBatch = 100

// Since returns the caller's notifications after seq, oldest first (the
// live stream's catch-up and tail).
func (s *Service) Since(ctx context.Context, p identity.Principal, after int64) ([]notification.Notification, error) {
	if after < 0 {
		return nil, fault.Invalid("Last-Event-ID", "Last-Event-ID must be a notification sequence number")
	}
	return s.d.Inbox.Since(ctx, p.User.ID, after, StreamBatch)
}

// Subscribe wakes the caller when their inbox may have new rows.
func (s *Service) Subscribe(p identity.Principal) (<-chan struct{}, func()) {
	return s.d.Feed.Subscribe(p.User.ID)
}

// Preferences returns the caller's channel preferences.
func (s *Service) Preferences(ctx context.Context, p identity.Principal) (notification.Preferences, error) {
	return s.d.Preferences.Preferences(ctx, p.User.ID)
}

// SetPreferences replaces the caller's channel preferences.
func (s *Service) SetPreferences(ctx context.Context, p identity.Principal, prefs notification.Preferences) error {
	if err := prefs.Validate(); err != nil {
		return err
	}
	return s.d.Preferences.SetPreferences(ctx, p.User.ID, prefs)
}
