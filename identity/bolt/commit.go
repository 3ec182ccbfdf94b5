package bolt

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/bbolt"
)

// errClosed is returned to writers that arrive after Close.
var errClosed = errors.New("identity store is closed")

// defaultMaxBatch caps a group commit when Options leave it unset.
const defaultMaxBatch = 1000

// committer is the store's group commit. One goroutine owns the write
// transaction: it takes every write queued while the previous commit was
// being flushed and commits them together. A lone writer is committed at
// once (bbolt's DB.Batch would hold it for MaxBatchDelay first), and under
// load a batch is exactly what queued during one flush, so the number of
// writes per flush grows with the flush's cost instead of with a timer.
type committer struct {
	db       *bbolt.DB
	maxBatch int
	onCommit func(writes int, elapsed time.Duration) // may be nil
	queue    chan *commitCall
	stop     chan struct{}
	stopped  chan struct{}
	calls    sync.Pool // of *commitCall, reused so that a write allocates no channel

	// mu makes closing and queueing exclusive, so that no write is queued
	// after the goroutine has drained the queue for the last time.
	mu     sync.RWMutex
	closed bool

	// commits counts transactions committed, for tests and diagnostics.
	commits atomic.Uint64
}

// commitCall is one writer's function and where its outcome goes.
type commitCall struct {
	fn   func(*bbolt.Tx) error
	done chan error
}

func newCommitter(db *bbolt.DB, maxBatch int, onCommit func(writes int, elapsed time.Duration)) *committer {
	if maxBatch <= 0 {
		maxBatch = defaultMaxBatch
	}
	c := &committer{
		db:       db,
		maxBatch: maxBatch,
		onCommit: onCommit,
		queue:    make(chan *commitCall, maxBatch),
		stop:     make(chan struct{}),
		stopped:  make(chan struct{}),
		calls:    sync.Pool{New: func() any { return &commitCall{done: make(chan error, 1)} }},
	}
	go c.run()
	return c
}

// write runs fn in the next group commit and returns once that commit is
// durable (or failed). fn may run more than once: when another member of
// its batch fails, the batch is rolled back and run again without it.
func (c *committer) write(fn func(*bbolt.Tx) error) error {
	c.mu.RLock()
	if c.closed {
		c.mu.RUnlock()
		return errClosed
	}
	call := c.calls.Get().(*commitCall)
	call.fn = fn
	c.queue <- call
	c.mu.RUnlock()
	err := <-call.done
	call.fn = nil
	c.calls.Put(call)
	return err
}

// close stops taking writes, finishes the ones already queued, and
// returns when the goroutine has ended.
func (c *committer) close() {
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		close(c.stop)
	}
	c.mu.Unlock()
	<-c.stopped
}

func (c *committer) run() {
	defer close(c.stopped)
	batch := make([]*commitCall, 0, c.maxBatch)
	for {
		select {
		case call := <-c.queue:
			batch = append(batch[:0], call)
		case <-c.stop:
			// Nothing is queued after stop (see mu): commit what is.
			for {
				select {
				case call := <-c.queue:
					c.commit(append(batch[:0], call))
				default:
					return
				}
			}
		}
		// The writer that queued call made this goroutine its runnext and
		// is now waiting: draining at once would commit a batch of one while
		// other requests, runnable on the same P, were about to queue
		// theirs. Letting them run first is what makes a group.
		runtime.Gosched()
	drain:
		for len(batch) < c.maxBatch {
			select {
			case call := <-c.queue:
				batch = append(batch, call)
			default:
				break drain
			}
		}
		c.commit(batch)
		clear(batch)
	}
}

// commit runs a batch in one transaction. A member whose function fails
// (or panics) is taken out, the transaction is rolled back, and the rest
// run again; the failed member then runs alone so that its error is its
// own, as with bbolt's DB.Batch.
func (c *committer) commit(batch []*commitCall) {
	for len(batch) > 0 {
		failed := -1
		start := time.Now()
		err := c.db.Update(func(tx *bbolt.Tx) error {
			for i, call := range batch {
				if err := safeRun(call.fn, tx); err != nil {
					failed = i
					return err
				}
			}
			return nil
		})
		if failed < 0 {
			if err == nil {
				c.committed(len(batch), start)
			}
			for _, call := range batch {
				call.done <- err
			}
			return
		}
		solo := batch[failed]
		batch = append(batch[:failed:failed], batch[failed+1:]...)
		start = time.Now()
		err = c.db.Update(func(tx *bbolt.Tx) error { return safeRun(solo.fn, tx) })
		if err == nil {
			c.committed(1, start)
		}
		solo.done <- err
	}
}

// committed counts a commit of n writes that began at start.
func (c *committer) committed(n int, start time.Time) {
	c.commits.Add(1)
	if c.onCommit != nil {
		c.onCommit(n, time.Since(start))
	}
}

// safeRun turns a panic in a write function into its caller's error
// instead of taking the committing goroutine, and every writer, down.
func safeRun(fn func(*bbolt.Tx) error, tx *bbolt.Tx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("identity store write panicked: %v", r)
		}
	}()
	return fn(tx)
}
