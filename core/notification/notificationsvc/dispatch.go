package notificationsvc

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/gpuaas/gpuaas/core/event"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/notification"
	"github.com/gpuaas/gpuaas/ports"
)

// MailBackoff is the wait after the n-th failed attempt of an email:
// 5 s doubling, at most 10 minutes.
func MailBackoff(n int) time.Duration {
	d := 5 * time.Second
	for i := 1; i < n && d < 10*time.Minute; i++ {
		d *= 2
	}
	return min(d, 10*time.Minute)
}

// SendEmails sends one batch of due queued emails and returns how many
// were claimed. A failed send is retried with MailBackoff (the same
// Message-ID every time) until Config.MailMaxAttempts. A sender that dies
// mid-batch loses nothing: the lease runs out and another takes the rows.
func (s *Service) SendEmails(ctx context.Context) (int, error) {
	if s.d.Mailer == nil {
		return 0, errors.New("notificationsvc: no Mailer configured")
	}
	mails, err := s.d.Mail.Claim(ctx, s.d.Clock.Now(), s.cfg.Batch, s.cfg.Lease)
	if err != nil || len(mails) == 0 {
		return 0, err
	}
	for _, m := range mails {
		err := s.d.Mailer.Send(ctx, ports.Mail{To: m.To, Subject: m.Subject, Body: m.Body, MessageID: m.MessageID})
		now := s.d.Clock.Now()
		if err == nil {
			if err := s.d.Mail.MarkSent(ctx, m.ID, now); err != nil {
				return len(mails), err
			}
			continue
		}
		if ctx.Err() != nil {
			return len(mails), ctx.Err()
		}
		var next time.Time
		if m.Attempts < s.cfg.MailMaxAttempts {
			next = now.Add(MailBackoff(m.Attempts))
		}
		s.log.Warn("sending a notification email failed", "notification_id", m.ID, "attempt", m.Attempts,
			"gives_up", next.IsZero(), "err", err)
		if err := s.d.Mail.Retry(ctx, m.ID, next, err.Error()); err != nil {
			return len(mails), err
		}
	}
	return len(mails), nil
}

// deliveryConcurrency bounds parallel webhook requests of one batch.
const deliveryConcurrency = 8

// DeliverWebhooks sends one batch of due webhook deliveries and returns how
// many were claimed. Each attempt is logged; a failure is retried on
// notification.RetryDelays (about 24 h) and then fails for good. An
// endpoint that has failed every attempt for notification.DisableAfter is
// disabled, its pending deliveries cancelled, and the project's admins
// told (event notification.webhook_endpoint_disabled).
func (s *Service) DeliverWebhooks(ctx context.Context) (int, error) {
	if s.d.Sender == nil {
		return 0, errors.New("notificationsvc: no WebhookSender configured")
	}
	claimed, err := s.d.Webhooks.ClaimDeliveries(ctx, s.d.Clock.Now(), s.cfg.Batch, s.cfg.Lease)
	if err != nil || len(claimed) == 0 {
		return 0, err
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, deliveryConcurrency)
	errs := make([]error, len(claimed))
	for i, c := range claimed {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			errs[i] = s.deliverOne(ctx, c)
		}()
	}
	wg.Wait()
	return len(claimed), errors.Join(errs...)
}

func (s *Service) deliverOne(ctx context.Context, c ports.ClaimedDelivery) error {
	d, ep := c.Delivery, c.Endpoint
	secrets, err := s.open(ctx, ep.ID, c.SealedSecrets)
	if err != nil {
		return err
	}
	now := s.d.Clock.Now()
	sig, err := notification.Sign(notification.Endpoint{Secrets: secrets}.Live(now), d.EventID, now, d.Payload)
	if err != nil {
		return err
	}
	started := time.Now()
	status, sendErr := s.d.Sender.Send(ctx, ports.WebhookRequest{URL: ep.URL, Body: d.Payload, Headers: map[string]string{
		"webhook-id":        d.EventID,
		"webhook-timestamp": strconv.FormatInt(now.Unix(), 10),
		"webhook-signature": sig,
		"Content-Type":      "application/json",
	}})
	if ctx.Err() != nil {
		return ctx.Err() // shutting down: the lease returns it
	}
	ok := sendErr == nil && status >= 200 && status < 300
	a := ports.WebhookAttempt{DeliveryID: d.ID, Attempt: d.Attempts, At: now, StatusCode: status, Duration: time.Since(started)}
	switch {
	case sendErr != nil:
		a.Error = sendErr.Error()
	case !ok:
		a.Error = "the endpoint answered " + strconv.Itoa(status)
	}
	next, nextStatus := time.Time{}, notification.DeliverySucceeded
	if !ok {
		nextStatus = notification.DeliveryFailed
		if delay, more := notification.NextRetry(d.Attempts); more {
			next, nextStatus = now.Add(delay), notification.DeliveryPending
		}
	}
	return s.d.Tx.InTx(ctx, func(ctx context.Context) error {
		if err := s.d.Webhooks.RecordAttempt(ctx, a, nextStatus, next); err != nil {
			return err
		}
		since, err := s.d.Webhooks.MarkEndpointResult(ctx, ep.ID, ok, now)
		if err != nil || ok || since == nil || now.Sub(*since) < notification.DisableAfter {
			return err
		}
		return s.disableFailing(ctx, ep, *since, now)
	})
}

func (s *Service) disableFailing(ctx context.Context, ep notification.Endpoint, since, now time.Time) error {
	changed, err := s.d.Webhooks.DisableEndpoint(ctx, ep.ID, "failing", now)
	if err != nil || !changed {
		return err
	}
	if _, err := s.d.Webhooks.CancelPending(ctx, ep.ID, "endpoint disabled after failing since "+since.UTC().Format(time.RFC3339)); err != nil {
		return err
	}
	body, err := json.Marshal(map[string]any{"endpoint_id": ep.ID, "project_id": ep.ProjectID, "tenant_id": ep.TenantID,
		"url": ep.URL, "failing_since": since.UTC(), "failing_for": now.Sub(since).Round(time.Minute).String()})
	if err != nil {
		return fault.Internal(err)
	}
	s.log.Warn("webhook endpoint disabled after sustained failure", "endpoint_id", ep.ID, "failing_since", since)
	return s.d.Outbox.Append(ctx, event.Envelope{ID: s.d.IDs.NewID(), Type: event.WebhookEndpointDisabled, Version: 1,
		OccurredAt: now, TenantID: ep.TenantID, ProjectID: ep.ProjectID, AggregateType: "webhook_endpoint",
		AggregateID: ep.ID, Payload: body})
}

// Run calls step until ctx ends: again at once while it claims a full
// batch, else after poll (the loops of the email and webhook dispatchers).
// Errors are logged once per outage.
func (s *Service) Run(ctx context.Context, name string, poll time.Duration, step func(context.Context) (int, error),
	wait func(context.Context, time.Duration) error) {
	failing := false
	for ctx.Err() == nil {
		n, err := step(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			if !failing {
				s.log.Error("notification dispatcher failing", "dispatcher", name, "err", err)
			}
			failing = true
		case err == nil && failing:
			s.log.Info("notification dispatcher recovered", "dispatcher", name)
			failing = false
		}
		if n >= s.cfg.Batch && err == nil {
			continue
		}
		if wait(ctx, poll) != nil {
			return
		}
	}
}
