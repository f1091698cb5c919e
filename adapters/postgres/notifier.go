package postgres

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// notifier keeps one LISTEN connection for a few channels and wakes the
// waiters subscribed to a (channel, payload) pair. When the connection is
// (re)established every waiter is woken, because notifications sent while
// nobody listened are lost; waiters re-check the database.
type notifier struct {
	db       *DB
	health   time.Duration
	log      *slog.Logger
	appName  string
	channels []string

	once sync.Once
	mu   sync.Mutex
	subs map[string]map[chan struct{}]struct{}
	stop context.CancelFunc
	done chan struct{}
	// onListen, when set, runs each time the listener is (re)established;
	// onNote for every notification. Both must be quick.
	onListen, onNote func()
	// onLost runs when the listener loses its connection.
	onLost func()
	// onAlive, when set, runs whenever the session shows it is current:
	// after each notification is handled and after each health ping. It
	// must be quick.
	onAlive func()
}

func newNotifier(db *DB, health time.Duration, log *slog.Logger, appName string, channels ...string) *notifier {
	return &notifier{db: db, health: health, log: log, appName: appName, channels: channels,
		subs: map[string]map[chan struct{}]struct{}{}}
}

// listen starts the listener if nobody has yet (for users of the hooks
// rather than of subscribe).
func (n *notifier) listen() { n.once.Do(n.start) }

// subscribe registers a waiter for payload on channel and starts the
// listener on first use. The returned channel receives at most one wake-up.
func (n *notifier) subscribe(channel, payload string) (<-chan struct{}, func()) {
	n.once.Do(n.start)
	key := channel + "\x00" + payload
	ch := make(chan struct{}, 1)
	n.mu.Lock()
	if n.subs[key] == nil {
		n.subs[key] = map[chan struct{}]struct{}{}
	}
	n.subs[key][ch] = struct{}{}
	n.mu.Unlock()
	return ch, func() {
		n.mu.Lock()
		delete(n.subs[key], ch)
		if len(n.subs[key]) == 0 {
			delete(n.subs, key)
		}
		n.mu.Unlock()
	}
}

func (n *notifier) wake(key string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for ch := range n.subs[key] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func (n *notifier) wakeAll() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, set := range n.subs {
		for ch := range set {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
}

func (n *notifier) start() {
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	n.mu.Lock()
	n.stop, n.done = stop, done
	n.mu.Unlock()
	go func() {
		defer close(done)
		const maxDelay = 10 * time.Second
		delay := 100 * time.Millisecond
		for ctx.Err() == nil {
			err := n.session(ctx)
			if ctx.Err() != nil {
				return
			}
			n.log.Warn("listener lost its connection; reconnecting", "listener", n.appName, "err", sanitizeError(err), "in", delay)
			select {
			case <-ctx.Done():
				return
			case <-time.After(delay):
			}
			delay = min(2*delay, maxDelay)
		}
	}()
}

func (n *notifier) close() {
	n.once.Do(func() {}) // a later subscribe must not start a listener
	n.mu.Lock()
	stop, done := n.stop, n.done
	n.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
}

func (n *notifier) session(ctx context.Context) error {
	cc := n.db.Pool.Config().ConnConfig.Copy()
	cc.RuntimeParams["application_name"] = n.appName
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	conn, err := pgx.ConnectConfig(cctx, cc)
	cancel()
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	for _, ch := range n.channels {
		if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
			return err
		}
	}
	n.wakeAll()
	if n.onListen != nil {
		n.onListen()
	}
	if n.onAlive != nil {
		n.onAlive()
	}
	if n.onLost != nil {
		defer n.onLost()
	}
	for {
		wctx, cancel := context.WithTimeout(ctx, n.health)
		note, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err == nil:
			if note != nil {
				n.wake(note.Channel + "\x00" + note.Payload)
				if n.onNote != nil {
					n.onNote()
				}
			}
			if n.onAlive != nil {
				n.onAlive()
			}
		case errors.Is(err, context.DeadlineExceeded) && !conn.IsClosed():
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err := conn.Ping(pctx)
			cancel()
			if err != nil {
				return err
			}
			if n.onAlive != nil {
				n.onAlive()
			}
		default:
			return err
		}
	}
}
