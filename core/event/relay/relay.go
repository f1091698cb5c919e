package relay

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/gpuaas/gpuaas/core/event"
	"github.com/gpuaas/gpuaas/ports"
)

// Config tunes the relay.
type Config struct {
	// BatchSize is the most rows claimed (and published together) at once.
	// Default 1000: a backlog drains in few transactions and publishes
	// overlap their acks; a single new event still goes out alone at once.
	BatchSize int
	// PollInterval is the longest idle wait between claims. The outbox
	// wakes the relay as soon as rows are inserted, so this bounds only the
	// latency of rows whose retry comes due and of lost wake-ups.
	// Default 2s.
	PollInterval time.Duration
	// Jitter spreads PollInterval by ± this fraction so relays started
	// together do not poll in lockstep. Default 0.1.
	Jitter float64
	// ErrorBackoff is the first pause after a failed claim or a batch the
	// bus refused entirely; it doubles per consecutive failure up to
	// MaxErrorBackoff. Defaults 500ms and 30s.
	ErrorBackoff    time.Duration
	MaxErrorBackoff time.Duration
}

// CheckAndSetDefaults validates the config and fills in defaults.
func (c *Config) CheckAndSetDefaults() error {
	if c.BatchSize < 0 || c.PollInterval < 0 || c.ErrorBackoff < 0 || c.MaxErrorBackoff < 0 {
		return errors.New("relay: config values must not be negative")
	}
	if c.Jitter < 0 || c.Jitter >= 1 {
		return errors.New("relay: Jitter must be in [0, 1)")
	}
	if c.BatchSize == 0 {
		c.BatchSize = 1000
	}
	if c.PollInterval == 0 {
		c.PollInterval = 2 * time.Second
	}
	if c.Jitter == 0 {
		c.Jitter = 0.1
	}
	if c.ErrorBackoff == 0 {
		c.ErrorBackoff = 500 * time.Millisecond
	}
	if c.MaxErrorBackoff == 0 {
		c.MaxErrorBackoff = 30 * time.Second
	}
	if c.MaxErrorBackoff < c.ErrorBackoff {
		return errors.New("relay: MaxErrorBackoff is below ErrorBackoff")
	}
	return nil
}

// Relay is one outbox relay loop.
type Relay struct {
	cfg       Config
	claimer   ports.OutboxClaimer
	publisher ports.Publisher
	log       *slog.Logger
}

// New returns a relay. logger may be nil (discard).
func New(cfg Config, claimer ports.OutboxClaimer, publisher ports.Publisher, logger *slog.Logger) (*Relay, error) {
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	if claimer == nil || publisher == nil {
		return nil, errors.New("relay: claimer and publisher are required")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Relay{cfg: cfg, claimer: claimer, publisher: publisher, log: logger.With("component", "outbox-relay")}, nil
}

// errAllFailed marks a batch in which the bus accepted nothing: the bus is
// likely down, so the relay backs off instead of burning through every
// pending row's retry budget.
var errAllFailed = errors.New("the bus refused every event of the batch")

// Run relays until ctx ends, then returns nil. Errors never stop it: each
// outage is logged once when it starts and once when it ends, and retried
// with growing pauses.
func (r *Relay) Run(ctx context.Context) error {
	var (
		failures  int   // consecutive failed rounds
		lastError error // the error of the current outage, logged once
	)
	for ctx.Err() == nil {
		var pubErr error
		n, err := r.claimer.ProcessBatch(ctx, r.cfg.BatchSize, func(ctx context.Context, recs []ports.OutboxRecord) []error {
			errs := r.publish(ctx, recs)
			pubErr = summarize(errs)
			return errs
		})
		if err == nil {
			err = pubErr
		}
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			failures++
			if failures == 1 {
				lastError = err
				r.log.Warn("outbox relay failing; retrying with backoff", "err", err)
			}
			if !sleep(ctx, r.errorBackoff(failures)) {
				return nil
			}
			continue
		}
		if failures > 0 {
			r.log.Info("outbox relay recovered", "after_failures", failures, "was", lastError)
			failures, lastError = 0, nil
		}
		if n > 0 {
			continue // more may be pending: claim again at once
		}
		if err := r.claimer.WaitForNew(ctx, r.pollInterval()); err != nil && ctx.Err() == nil {
			// A broken listener is not fatal: the poll interval still
			// bounds latency. Pause so a failing wait cannot spin.
			failures++
			if failures == 1 {
				lastError = err
				r.log.Warn("outbox wake-up unavailable; polling", "err", err)
			}
			if !sleep(ctx, r.errorBackoff(failures)) {
				return nil
			}
		}
	}
	return nil
}

func (r *Relay) publish(ctx context.Context, recs []ports.OutboxRecord) []error {
	events := make([]event.Encoded, len(recs))
	for i, rec := range recs {
		events[i] = rec.Event
	}
	return r.publisher.PublishBatch(ctx, events)
}

// summarize returns errAllFailed (wrapping the first error) when every
// slot failed, else nil: a partly published batch is progress.
func summarize(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	for _, err := range errs {
		if err == nil {
			return nil
		}
	}
	return errors.Join(errAllFailed, errs[0])
}

func (r *Relay) pollInterval() time.Duration {
	j := r.cfg.Jitter * (2*rand.Float64() - 1)
	return time.Duration(float64(r.cfg.PollInterval) * (1 + j))
}

func (r *Relay) errorBackoff(failures int) time.Duration {
	d := r.cfg.ErrorBackoff
	for i := 1; i < failures && d < r.cfg.MaxErrorBackoff; i++ {
		d *= 2
	}
	d = min(d, r.cfg.MaxErrorBackoff)
	// ±10% so relays that failed together do not retry together.
	return time.Duration(float64(d) * (0.9 + 0.2*rand.Float64()))
}

// sleep waits d or until ctx ends; it reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// DrainResult is what one Drain did.
type DrainResult struct {
	Batches int // claims that found rows
	Claimed int // rows claimed (published, or written back as failed attempts)
}

// Drain claims and publishes until the outbox has nothing due, then
// returns: the relay as a one-shot (a scheduled function, hosts/lambda)
// instead of a loop. It stops early when ctx ends (returning what it did
// and ctx's error) or when the bus refuses a whole batch (that error: the
// rows keep their back-off and the next drain retries them). A batch
// published in part is progress and does not stop it; its failed rows are
// not due again until their back-off passes, so Drain ends.
func (r *Relay) Drain(ctx context.Context) (DrainResult, error) {
	var res DrainResult
	for {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		var pubErr error
		n, err := r.claimer.ProcessBatch(ctx, r.cfg.BatchSize, func(ctx context.Context, recs []ports.OutboxRecord) []error {
			errs := r.publish(ctx, recs)
			pubErr = summarize(errs)
			return errs
		})
		if err == nil {
			err = pubErr
		}
		if n > 0 {
			res.Batches++
			res.Claimed += n
		}
		if err != nil {
			return res, err
		}
		if n == 0 {
			return res, nil
		}
	}
}
