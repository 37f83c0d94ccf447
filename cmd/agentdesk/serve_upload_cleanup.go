package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"agentdesk/agentdesk/postgres"
)

// Files uploaded and never sent are deleted after --upload-retention, and
// stored bytes nothing needs any more with them (postgres.CleanUploads).
// Every serve process runs the cleanup; the store's SKIP LOCKED batches
// let them share it.

// defaultUploadRetention is how long a file may wait, unsent, in a
// composer or a chat widget.
const defaultUploadRetention = 24 * time.Hour

// minUploadRetention keeps a retention typed in the wrong unit from
// deleting files while people are still writing their message.
const minUploadRetention = time.Minute

// uploadRetention is the --upload-retention flag: a duration of at least a
// minute; unset (zero) means the default.
type uploadRetention time.Duration

func (r *uploadRetention) String() string {
	if r == nil || *r == 0 {
		return defaultUploadRetention.String()
	}
	return time.Duration(*r).String()
}

func (r *uploadRetention) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("must be a duration such as 24h or 90m")
	}
	if d < minUploadRetention {
		return fmt.Errorf("must be at least %s", minUploadRetention)
	}
	*r = uploadRetention(d)
	return nil
}

func (r uploadRetention) duration() time.Duration {
	if r == 0 {
		return defaultUploadRetention
	}
	return time.Duration(r)
}

// uploadCleaner runs a cleanup pass at start and then every interval.
type uploadCleaner struct {
	store     *postgres.Store
	log       *slog.Logger
	retention time.Duration
	interval  time.Duration
	now       func() time.Time                     // the clock; tests move it
	after     func(time.Duration) <-chan time.Time // the timer; tests fire it
	passed    func(postgres.UploadCleanup, error)  // tests learn a pass ended

	stop chan struct{}
	wg   sync.WaitGroup
}

// cleanupInterval runs about 24 passes per retention, at least once a
// minute's worth apart and at most an hour: a file outlives its retention
// by at most that much.
func cleanupInterval(retention time.Duration) time.Duration {
	return min(max(retention/24, time.Minute), time.Hour)
}

func newUploadCleaner(store *postgres.Store, log *slog.Logger, retention time.Duration) *uploadCleaner {
	return &uploadCleaner{
		store: store, log: log, retention: retention, interval: cleanupInterval(retention),
		now: time.Now, after: time.After, passed: func(postgres.UploadCleanup, error) {},
	}
}

// wireUploadCleanup adds the cleanup to the lifecycle of this process.
func wireUploadCleanup(c channelConfig, store *postgres.Store, log *slog.Logger, parts *lifecycle) {
	parts.add("upload-cleanup", newUploadCleaner(store, log.With("part", "upload-cleanup"), c.uploadTTL.duration()))
}

func (u *uploadCleaner) Start(ctx context.Context) error {
	u.stop = make(chan struct{})
	// Passes outlive the start context's cancellation only until Stop.
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	u.wg.Go(func() {
		defer cancel()
		for {
			u.pass(ctx)
			select {
			case <-u.stop:
				return
			case <-u.after(u.interval):
			}
		}
	})
	u.wg.Go(func() {
		<-u.stop
		cancel() // a pass under way ends with its transaction rolled back
	})
	return nil
}

func (u *uploadCleaner) pass(ctx context.Context) {
	got, err := u.store.CleanUploads(ctx, u.now().Add(-u.retention))
	switch {
	case err != nil && ctx.Err() == nil:
		u.log.Error("upload cleanup", "err", err, "uploads", got.Uploads, "blobs", got.Blobs)
	case got != (postgres.UploadCleanup{}):
		u.log.Info("upload cleanup", "uploads", got.Uploads, "blobs", got.Blobs, "files", got.Files)
	}
	u.passed(got, err)
}

func (u *uploadCleaner) Stop(ctx context.Context) error {
	close(u.stop)
	done := make(chan struct{})
	go func() { u.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
