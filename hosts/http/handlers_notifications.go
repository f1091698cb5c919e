package httphost

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/notification"
	"github.com/gpuaas/gpuaas/core/notification/notificationsvc"
	"github.com/gpuaas/gpuaas/hosts/http/api"
	"github.com/gpuaas/gpuaas/ports"
)

// errNotificationsOff answers the notification and webhook routes on a
// host built without them (Deps.Notifications nil).
var errNotificationsOff = fault.Unavailable("notifications are not configured on this host", nil)

func (s *Server) notificationsReady(w http.ResponseWriter, r *http.Request) bool {
	if s.d.Notifications == nil {
		s.fail(w, r, errNotificationsOff)
		return false
	}
	return true
}

func notificationView(n notification.Notification) api.Notification {
	data := n.Data
	if data == nil {
		data = map[string]any{}
	}
	v := api.Notification{Id: n.ID, Seq: n.Seq, Kind: api.NotificationKind(n.Kind), Title: n.Title, Body: n.Body,
		Data: data, EventId: n.EventID, CreatedAt: n.CreatedAt, Read: n.ReadAt != nil, ReadAt: n.ReadAt}
	if path, label := n.Link(); path != "" {
		v.Link = &api.NotificationLink{Path: path, Label: label}
	}
	return v
}

// ListNotifications implements [api.ServerInterface].
func (h *handlers) ListNotifications(w http.ResponseWriter, r *http.Request, params api.ListNotificationsParams) {
	s := h.s
	p, ok := s.principal(w, r)
	if !ok || !s.notificationsReady(w, r) {
		return
	}
	f := ports.NotificationFilter{Cursor: deref(params.Cursor)}
	if params.Unread != nil {
		f.UnreadOnly = *params.Unread
	}
	if params.Limit != nil {
		f.Limit = *params.Limit
	}
	page, err := s.d.Notifications.Inbox(r.Context(), p, f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := api.NotificationPage{Notifications: make([]api.Notification, 0, len(page.Notifications)), Unread: page.Unread}
	for _, n := range page.Notifications {
		out.Notifications = append(out.Notifications, notificationView(n))
	}
	out.NextCursor = optional(page.NextCursor)
	writeJSON(w, http.StatusOK, out)
}

// MarkNotificationsRead implements [api.ServerInterface].
func (h *handlers) MarkNotificationsRead(w http.ResponseWriter, r *http.Request, _ api.MarkNotificationsReadParams) {
	s := h.s
	p, ok := s.principal(w, r)
	if !ok {
		return
	}
	var req api.MarkReadRequest
	if err := s.decode(r, &req, false); err != nil {
		s.fail(w, r, err)
		return
	}
	if !s.notificationsReady(w, r) {
		return
	}
	var ids []string
	if req.Ids != nil {
		ids = *req.Ids
	}
	n, err := s.d.Notifications.MarkRead(r.Context(), p, ids, req.All != nil && *req.All)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, api.MarkReadResult{Marked: n})
}

// Stream timings: a comment keeps idle connections (and proxies) open; the
// caller's standing is re-checked as often, so a suspended user's stream
// ends within one interval.
const (
	streamHeartbeat = 15 * time.Second
	streamRecheck   = 15 * time.Second
)

// StreamNotifications implements [api.ServerInterface]: Server-Sent Events
// of the caller's notifications. It first sends what arrived after
// Last-Event-ID (when given), then waits on the feed (a LISTEN wake-up from
// whichever worker wrote the row) and sends each new row. The stream ends
// when the client leaves, the access token expires (the client reconnects
// with a fresh one and its Last-Event-ID) or the user is suspended.
func (h *handlers) StreamNotifications(w http.ResponseWriter, r *http.Request, params api.StreamNotificationsParams) {
	s := h.s
	p, ok := s.principal(w, r)
	if !ok || !s.notificationsReady(w, r) {
		return
	}
	last := deref(params.LastEventID)
	if last == "" {
		last = deref(params.LastEventId)
	}
	var after int64 = -1 // no Last-Event-ID: from now on
	if last != "" {
		n, err := strconv.ParseInt(last, 10, 64)
		if err != nil {
			s.fail(w, r, fault.Invalid("Last-Event-ID", "Last-Event-ID must be a notification sequence number"))
			return
		}
		after = n
	}
	ctx := r.Context()
	// Subscribe before the first read, so nothing committed in between is
	// missed.
	wake, cancel := s.d.Notifications.Subscribe(p)
	defer cancel()
	if after < 0 {
		page, err := s.d.Notifications.Inbox(ctx, p, ports.NotificationFilter{Limit: 1})
		if err != nil {
			s.fail(w, r, err)
			return
		}
		after = 0
		if len(page.Notifications) > 0 {
			after = page.Notifications[0].Seq
		}
	}
	rc := http.NewResponseController(w)
	hdr := w.Header()
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	// The reconnection delay browsers use, then the stream.
	if _, err := fmt.Fprint(w, "retry: 2000\n\n"); err != nil {
		return
	}
	_ = rc.Flush()
	heartbeat := time.NewTicker(streamHeartbeat)
	defer heartbeat.Stop()
	recheck := time.NewTicker(streamRecheck)
	defer recheck.Stop()
	for {
		rows, err := s.d.Notifications.Since(ctx, p, after)
		if err != nil {
			return // the client reconnects with its Last-Event-ID
		}
		for _, n := range rows {
			b, err := json.Marshal(notificationView(n))
			if err != nil {
				return
			}
			if _, err := fmt.Fprintf(w, "id: %d\nevent: notification\ndata: %s\n\n", n.Seq, b); err != nil {
				return
			}
			after = n.Seq
		}
		if len(rows) > 0 {
			if err := rc.Flush(); err != nil {
				return
			}
		}
		if len(rows) == notificationsvc.StreamBatch {
			continue // more are waiting
		}
		select {
		case <-ctx.Done():
			return
		case <-wake:
			// Subscribe again before reading, so a row committed while
			// this one is read wakes the next round.
			cancel()
			wake, cancel = s.d.Notifications.Subscribe(p)
		case <-heartbeat.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return
			}
			if err := rc.Flush(); err != nil {
				return
			}
		case <-recheck.C:
			tok, err := bearerToken(r)
			if err != nil {
				return
			}
			if _, err := s.auth.Authenticate(ctx, tok); err != nil {
				return // expired, signed out or suspended
			}
		}
	}
}

// GetNotificationPreferences implements [api.ServerInterface].
func (h *handlers) GetNotificationPreferences(w http.ResponseWriter, r *http.Request) {
	s := h.s
	p, ok := s.principal(w, r)
	if !ok || !s.notificationsReady(w, r) {
		return
	}
	prefs, err := s.d.Notifications.Preferences(r.Context(), p)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, preferencesView(prefs))
}

// SetNotificationPreferences implements [api.ServerInterface].
func (h *handlers) SetNotificationPreferences(w http.ResponseWriter, r *http.Request, _ api.SetNotificationPreferencesParams) {
	s := h.s
	p, ok := s.principal(w, r)
	if !ok {
		return
	}
	var req api.NotificationPreferences
	if err := s.decode(r, &req, false); err != nil {
		s.fail(w, r, err)
		return
	}
	if !s.notificationsReady(w, r) {
		return
	}
	prefs := notification.Preferences{Email: map[notification.Kind]bool{}}
	for k, v := range req.Email {
		prefs.Email[notification.Kind(k)] = v
	}
	if err := s.d.Notifications.SetPreferences(r.Context(), p, prefs); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, preferencesView(prefs))
}

func preferencesView(p notification.Preferences) api.NotificationPreferences {
	out := api.NotificationPreferences{Email: map[string]bool{}}
	for k, v := range p.Email {
		out.Email[string(k)] = v
	}
	return out
}
