package notificationsvc_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/gpuaas/gpuaas/adapters/keyfile"
	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/adapters/system"
	"github.com/gpuaas/gpuaas/core/event"
	"github.com/gpuaas/gpuaas/core/identity"
	"github.com/gpuaas/gpuaas/core/identity/identitysvc"
	"github.com/gpuaas/gpuaas/core/notification"
	"github.com/gpuaas/gpuaas/core/notification/notificationsvc"
	"github.com/gpuaas/gpuaas/core/policy"
	"github.com/gpuaas/gpuaas/ports"
	"github.com/gpuaas/gpuaas/testkit/fakes"
	"github.com/gpuaas/gpuaas/testkit/seed"
	"github.com/gpuaas/gpuaas/testkit/services"
)

// sender records webhook requests and answers with status (or err).
type sender struct {
	mu     sync.Mutex
	reqs   []ports.WebhookRequest
	status int
	err    error
}

func (s *sender) Send(_ context.Context, r ports.WebhookRequest) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reqs = append(s.reqs, r)
	return s.status, s.err
}

func (s *sender) set(status int, err error) {
	s.mu.Lock()
	s.status, s.err = status, err
	s.mu.Unlock()
}
func (s *sender) sent() []ports.WebhookRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ports.WebhookRequest(nil), s.reqs...)
}

type env struct {
	db       *postgres.DB
	svc      *notificationsvc.Service
	store    *postgres.NotificationStore
	policies *postgres.PolicyStore
	clock    *fakes.Clock
	mailer   *fakes.Mailer
	sender   *sender
	owner    seed.Member
	member   identity.Principal
	viewer   identity.Principal
	outbox   *postgres.Outbox
	deps     notificationsvc.Deps
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	db := services.Postgres(t)
	clock := fakes.NewClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	policies, err := postgres.NewPolicyStore(db, postgres.PolicyConfig{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	kms, err := keyfile.NewKMS(keyfile.KMSConfig{Path: filepath.Join(t.TempDir(), "kms.key")})
	if err != nil {
		t.Fatal(err)
	}
	outbox, err := postgres.NewOutbox(db, postgres.OutboxConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(outbox.Close)
	store := postgres.NewNotificationStore(db, nil)
	t.Cleanup(store.Close)
	ident, err := identitysvc.New(identitysvc.Deps{Tx: db, Users: postgres.NewUserStore(db), Tenants: postgres.NewTenantStore(db),
		Projects: postgres.NewProjectStore(db), Members: postgres.NewMembershipStore(db), Audit: postgres.NewAuditLog(db),
		Outbox: outbox, Clock: clock, IDs: realIDs})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{db: db, store: store, policies: policies, clock: clock, mailer: &fakes.Mailer{}, sender: &sender{status: 204}, outbox: outbox}
	e.deps = notificationsvc.Deps{Tx: db, Inbox: store, Feed: store, Recipients: store, Preferences: store, Mail: store,
		Webhooks: store, Policies: policies, Outbox: outbox, Audit: postgres.NewAuditLog(db), KMS: kms, Projects: ident,
		Clock: clock, IDs: realIDs, Mailer: e.mailer, Sender: e.sender}
	e.svc, err = notificationsvc.New(notificationsvc.Config{PublicURL: "http://console.test", AllowPrivateWebhooks: true}, e.deps)
	if err != nil {
		t.Fatal(err)
	}
	// A tenant with an owner, a member and a viewer of its project, and a
	// suspended member.
	e.owner = seed.NewMember(t, db, 0)
	members := postgres.NewMembershipStore(db)
	must(t, members.AddTenantMember(ctx, identity.TenantMembership{TenantID: e.owner.Principal.TenantID, UserID: e.owner.Principal.User.ID, Role: identity.TenantOwner}))
	add := func(role identity.ProjectRole, status identity.UserStatus) identity.Principal {
		sfx := services.RandomSuffix(8)
		u, _, err := postgres.NewUserStore(db).UpsertByIdentity(ctx, identity.User{ID: realIDs.NewID(), Issuer: "https://iss",
			Subject: sfx, Email: sfx + "@example.com", Status: status})
		must(t, err)
		must(t, members.AddTenantMember(ctx, identity.TenantMembership{TenantID: e.owner.Principal.TenantID, UserID: u.ID, Role: identity.TenantMember}))
		must(t, members.AddProjectMember(ctx, identity.ProjectMembership{ProjectID: e.owner.ProjectID, UserID: u.ID, Role: role}))
		return identity.Principal{User: u, TenantID: e.owner.Principal.TenantID, TenantRole: identity.TenantMember}
	}
	e.member = add(identity.ProjectMember, identity.UserActive)
	e.viewer = add(identity.ProjectViewer, identity.UserActive)
	suspended := add(identity.ProjectMember, identity.UserActive)
	_, err = db.Pool.Exec(ctx, `UPDATE users SET status = 'suspended' WHERE id = $1`, suspended.User.ID)
	must(t, err)
	return e
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

var realIDs = system.UUIDs{}

func depsOf(_ *testing.T, e *env) notificationsvc.Deps { return e.deps }

func lowBalance(e *env) event.Envelope {
	body, _ := json.Marshal(map[string]any{"tenant_id": e.owner.Principal.TenantID, "balance_minor": 450, "currency": "usd",
		"threshold_minor": 1000})
	return event.Envelope{ID: realIDs.NewID(), Type: event.LowBalanceWarning, Version: 1, OccurredAt: e.clock.Now(),
		TenantID: e.owner.Principal.TenantID, AggregateType: "tenant", AggregateID: e.owner.Principal.TenantID, Payload: body}
}

func (e *env) createEndpoint(t *testing.T, types ...string) notification.Endpoint {
	t.Helper()
	url, desc := "http://127.0.0.1:9/hook", "test"
	ep, secret, err := e.svc.CreateEndpoint(context.Background(), e.owner.Principal, e.owner.ProjectID,
		notificationsvc.EndpointInput{URL: &url, Description: &desc, EventTypes: types})
	must(t, err)
	if !strings.HasPrefix(secret, notification.SecretPrefix) {
		t.Fatalf("secret %q", secret)
	}
	ep.Secrets = []notification.Secret{{Value: secret}}
	return ep
}

// verify checks a Standard Webhooks signature header against secret, by
// hand and with the spec's reference library (the test clock is in the
// past, so its timestamp tolerance is not applied).
func verify(t *testing.T, secret string, r ports.WebhookRequest) {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(secret)
	must(t, err)
	h := http.Header{}
	for k, v := range r.Headers {
		h.Set(k, v)
	}
	if err := wh.VerifyIgnoringTimestamp(r.Body, h); err != nil {
		t.Fatalf("the reference library refuses the delivery: %v", err)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	must(t, err)
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(r.Headers["webhook-id"] + "." + r.Headers["webhook-timestamp"] + "." + string(r.Body)))
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	for _, sig := range strings.Fields(r.Headers["webhook-signature"]) {
		if sig == want {
			return
		}
	}
	t.Fatalf("no signature verifies: %q", r.Headers["webhook-signature"])
}

func TestEachEventNotifiesOnceWhateverTheDeliveries(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	ep := e.createEndpoint(t, event.LowBalanceWarning)
	ev := lowBalance(e)
	// Delivered 5 times, 3 of them concurrently.
	must(t, e.svc.HandleEvent(ctx, ev))
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for range 3 {
		wg.Go(func() { errs <- e.svc.HandleEvent(ctx, ev) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err)
	}
	must(t, e.svc.HandleEvent(ctx, ev))

	for _, p := range []identity.Principal{e.owner.Principal, e.member, e.viewer} {
		page, err := e.svc.Inbox(ctx, p, ports.NotificationFilter{})
		must(t, err)
		if len(page.Notifications) != 1 || page.Unread != 1 || page.Notifications[0].Kind != notification.LowBalance {
			t.Fatalf("inbox of %s: %+v", p.User.Email, page)
		}
		if !strings.Contains(page.Notifications[0].Body, "4.50 USD") {
			t.Errorf("body %q", page.Notifications[0].Body)
		}
	}
	var rows int
	must(t, e.db.Pool.QueryRow(ctx, `SELECT count(*) FROM notifications WHERE event_id = $1`, ev.ID).Scan(&rows))
	if rows != 3 { // the suspended member gets nothing
		t.Fatalf("%d inbox rows; want 3", rows)
	}
	n, err := e.svc.SendEmails(ctx)
	must(t, err)
	if n != 3 || len(e.mailer.Sent()) != 3 {
		t.Fatalf("claimed %d, sent %d; want 3", n, len(e.mailer.Sent()))
	}
	for _, m := range e.mailer.Sent() {
		if !strings.HasPrefix(m.MessageID, "<"+ev.ID+".") || m.Subject != "Your balance is low" ||
			!strings.Contains(m.Body, "\n\nOpen billing: http://console.test/billing\n") {
			t.Errorf("mail %+v", m)
		}
	}
	if n, _ := e.svc.SendEmails(ctx); n != 0 {
		t.Fatalf("a sent email was claimed again (%d)", n)
	}
	n, err = e.svc.DeliverWebhooks(ctx)
	must(t, err)
	reqs := e.sender.sent()
	if n != 1 || len(reqs) != 1 {
		t.Fatalf("webhook deliveries %d, requests %d; want 1", n, len(reqs))
	}
	if reqs[0].Headers["webhook-id"] != ev.ID {
		t.Errorf("webhook-id %q", reqs[0].Headers["webhook-id"])
	}
	verify(t, ep.Secrets[0].Value, reqs[0])
	var body notification.WebhookBody
	must(t, json.Unmarshal(reqs[0].Body, &body))
	if body.Type != event.LowBalanceWarning || body.Data["balance_minor"] != float64(450) || body.Data["event_id"] != ev.ID {
		t.Errorf("body %+v", body)
	}
	if n, _ := e.svc.DeliverWebhooks(ctx); n != 0 {
		t.Fatalf("a delivered webhook was claimed again (%d)", n)
	}
	// Marking read.
	page, _ := e.svc.Inbox(ctx, e.member, ports.NotificationFilter{})
	got, err := e.svc.MarkRead(ctx, e.member, []string{page.Notifications[0].ID}, false)
	if err != nil || got != 1 {
		t.Fatalf("mark read: %d, %v", got, err)
	}
	if got, _ := e.svc.MarkRead(ctx, e.viewer, []string{page.Notifications[0].ID}, false); got != 0 {
		t.Fatal("a user marked another user's notification read")
	}
}

func TestFlagOffAndPreferences(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	must(t, e.policies.Set(ctx, e.owner.Principal.TenantID, policy.NotifyLowBalance.Name, "false", "test"))
	must(t, e.svc.HandleEvent(ctx, lowBalance(e)))
	var rows, mails int
	must(t, e.db.Pool.QueryRow(ctx, `SELECT count(*) FROM notifications WHERE tenant_id = $1`, e.owner.Principal.TenantID).Scan(&rows))
	must(t, e.db.Pool.QueryRow(ctx, `SELECT count(*) FROM notification_emails`).Scan(&mails))
	if rows != 0 {
		t.Fatalf("flag off: %d inbox rows", rows)
	}
	must(t, e.policies.Set(ctx, e.owner.Principal.TenantID, policy.NotifyLowBalance.Name, "true", "test"))
	must(t, e.svc.SetPreferences(ctx, e.member, notification.Preferences{Email: map[notification.Kind]bool{notification.LowBalance: false}}))
	if err := e.svc.SetPreferences(ctx, e.member, notification.Preferences{Email: map[notification.Kind]bool{"free_gpus": true}}); err == nil {
		t.Fatal("an unknown kind was accepted")
	}
	ev := lowBalance(e)
	must(t, e.svc.HandleEvent(ctx, ev))
	var mailedMember int
	must(t, e.db.Pool.QueryRow(ctx, `SELECT count(*) FROM notification_emails m JOIN notifications n ON n.id = m.id
		WHERE n.event_id = $1 AND n.user_id = $2`, ev.ID, e.member.User.ID).Scan(&mailedMember))
	page, err := e.svc.Inbox(ctx, e.member, ports.NotificationFilter{})
	must(t, err)
	if mailedMember != 0 || len(page.Notifications) != 1 {
		t.Fatalf("email off: %d mails, %d inbox rows", mailedMember, len(page.Notifications))
	}
}

func TestMailRetriedUntilTheServerReturns(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	must(t, e.svc.HandleEvent(ctx, lowBalance(e)))
	e.mailer.SetFail(errors.New("dial tcp 127.0.0.1:1025: connection refused"))
	for i := 1; i <= 3; i++ {
		n, err := e.svc.SendEmails(ctx)
		must(t, err)
		if n != 3 {
			t.Fatalf("round %d claimed %d", i, n)
		}
		if n, _ := e.svc.SendEmails(ctx); n != 0 {
			t.Fatalf("round %d: a failed email was retried before its back-off", i)
		}
		e.clock.Advance(notificationsvc.MailBackoff(i))
	}
	e.mailer.SetFail(nil)
	n, err := e.svc.SendEmails(ctx)
	must(t, err)
	if n != 3 || len(e.mailer.Sent()) != 3 {
		t.Fatalf("after recovery: claimed %d, sent %d", n, len(e.mailer.Sent()))
	}
}

func TestWebhookRetriesThenDisablesTheEndpoint(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	ep := e.createEndpoint(t, event.LowBalanceWarning)
	e.sender.set(500, nil)
	must(t, e.svc.HandleEvent(ctx, lowBalance(e)))
	attempts := 0
	for step := 0; step < 40; step++ {
		n, err := e.svc.DeliverWebhooks(ctx)
		must(t, err)
		attempts += n
		e.clock.Advance(time.Hour)
	}
	got, err := e.svc.Endpoint(ctx, e.owner.Principal, e.owner.ProjectID, ep.ID)
	must(t, err)
	if got.Status != notification.EndpointDisabled || got.DisabledReason != "failing" {
		t.Fatalf("endpoint after 40 h of failures: %+v", got)
	}
	log, err := e.svc.Deliveries(ctx, e.owner.Principal, e.owner.ProjectID, ep.ID, ports.WebhookDeliveryFilter{})
	must(t, err)
	if len(log.Deliveries) != 1 || log.Deliveries[0].Status != notification.DeliveryFailed ||
		len(log.Deliveries[0].Log) != attempts || log.Deliveries[0].Log[0].StatusCode != 500 {
		t.Fatalf("delivery log: %+v (attempts %d)", log, attempts)
	}
	var disabledEvents int
	must(t, e.db.Pool.QueryRow(ctx, `SELECT count(*) FROM platform_outbox_events WHERE subject = $1
		AND envelope->>'aggregate_id' = $2`, event.WebhookEndpointDisabled, ep.ID).Scan(&disabledEvents))
	if disabledEvents != 1 {
		t.Fatalf("%d endpoint-disabled events; want 1", disabledEvents)
	}
	// The event tells the project's admins (the owner), not the member.
	var raw []byte
	must(t, e.db.Pool.QueryRow(ctx, `SELECT envelope FROM platform_outbox_events WHERE subject = $1 AND envelope->>'aggregate_id' = $2`,
		event.WebhookEndpointDisabled, ep.ID).Scan(&raw))
	var disabled event.Envelope
	must(t, json.Unmarshal(raw, &disabled))
	must(t, e.svc.HandleEvent(ctx, disabled))
	for p, want := range map[*identity.Principal]int{&e.owner.Principal: 1, &e.member: 0} {
		page, err := e.svc.Inbox(ctx, *p, ports.NotificationFilter{})
		must(t, err)
		got := 0
		for _, n := range page.Notifications {
			if n.Kind == notification.WebhookEndpointDisabled {
				got++
				// It leads to the endpoint's page, in the endpoint's project.
				if path, _ := n.Link(); path != "/settings/webhooks/"+ep.ID+"?project="+e.owner.ProjectID {
					t.Errorf("endpoint-disabled link %q", path)
				}
			}
		}
		if got != want {
			t.Errorf("%s: %d endpoint-disabled notifications; want %d", p.User.Email, got, want)
		}
	}
	// Re-enabled, it receives new events again.
	on := true
	if _, err := e.svc.UpdateEndpoint(ctx, e.owner.Principal, e.owner.ProjectID, ep.ID, notificationsvc.EndpointInput{Enabled: &on}); err != nil {
		t.Fatal(err)
	}
	e.sender.set(200, nil)
	must(t, e.svc.HandleEvent(ctx, lowBalance(e)))
	if n, err := e.svc.DeliverWebhooks(ctx); err != nil || n != 1 {
		t.Fatalf("after re-enabling: %d, %v", n, err)
	}
}

func TestWebhookRulesAndRotation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	strict, err := notificationsvc.New(notificationsvc.Config{}, depsOf(t, e))
	must(t, err)
	for _, u := range []string{"http://hooks.example.com/x", "https://127.0.0.1/x", "https://10.1.2.3/x", "https://localhost/x",
		"https://[::1]/x", "https://user:pw@hooks.example.com/x", "ftp://hooks.example.com"} {
		if _, _, err := strict.CreateEndpoint(ctx, e.owner.Principal, e.owner.ProjectID,
			notificationsvc.EndpointInput{URL: &u, EventTypes: []string{event.LowBalanceWarning}}); err == nil {
			t.Errorf("%s accepted", u)
		}
	}
	good := "https://hooks.example.com/x"
	if _, _, err := strict.CreateEndpoint(ctx, e.member, e.owner.ProjectID,
		notificationsvc.EndpointInput{URL: &good, EventTypes: []string{event.LowBalanceWarning}}); err == nil {
		t.Error("a project member (not admin) created an endpoint")
	}
	if _, _, err := strict.CreateEndpoint(ctx, e.owner.Principal, e.owner.ProjectID,
		notificationsvc.EndpointInput{URL: &good, EventTypes: []string{"billing.free_gpus"}}); err == nil {
		t.Error("an unknown event type was accepted")
	}
	ep := e.createEndpoint(t, event.LowBalanceWarning)
	newSecret, err := e.svc.RotateSecret(ctx, e.owner.Principal, e.owner.ProjectID, ep.ID)
	must(t, err)
	must(t, e.svc.HandleEvent(ctx, lowBalance(e)))
	_, err = e.svc.DeliverWebhooks(ctx)
	must(t, err)
	reqs := e.sender.sent()
	if len(reqs) != 1 || len(strings.Fields(reqs[0].Headers["webhook-signature"])) != 2 {
		t.Fatalf("during the overlap a delivery carries two signatures: %+v", reqs)
	}
	verify(t, ep.Secrets[0].Value, reqs[0])
	verify(t, newSecret, reqs[0])
	e.clock.Advance(notification.RotationOverlap + time.Minute)
	must(t, e.svc.HandleEvent(ctx, lowBalance(e)))
	_, err = e.svc.DeliverWebhooks(ctx)
	must(t, err)
	reqs = e.sender.sent()
	if sigs := strings.Fields(reqs[1].Headers["webhook-signature"]); len(sigs) != 1 {
		t.Fatalf("after the overlap: %v", sigs)
	}
	verify(t, newSecret, reqs[1])
	ts, _ := strconv.ParseInt(reqs[1].Headers["webhook-timestamp"], 10, 64)
	if ts != e.clock.Now().Unix() {
		t.Errorf("webhook-timestamp %d", ts)
	}
}
