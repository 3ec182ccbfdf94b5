package migrate

import (
	"context"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progress shows how far the migration is: a bar with rate and ETA when
// the output is a terminal, otherwise a log line every interval.
type progress struct {
	bar   *progressbar.ProgressBar // nil: log lines
	done  atomic.Int64
	total atomic.Int64 // -1: unknown
	start time.Time
	stop  chan struct{}
	wg    sync.WaitGroup
}

func newProgress(ctx context.Context, out io.Writer, log *slog.Logger, every time.Duration, total int64, dry bool) *progress {
	p := &progress{start: time.Now(), stop: make(chan struct{})}
	p.total.Store(total)
	if f, ok := out.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		desc := "migrating identities"
		if dry {
			desc = "reading identities (dry run)"
		}
		p.bar = progressbar.NewOptions64(total,
			progressbar.OptionSetWriter(out),
			progressbar.OptionSetDescription(desc),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("identities"),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionSetElapsedTime(true),
			progressbar.OptionThrottle(200*time.Millisecond),
			progressbar.OptionFullWidth(),
			progressbar.OptionOnCompletion(func() { _, _ = io.WriteString(out, "\n") }),
		)
		return p
	}
	if every <= 0 || log == nil {
		return p
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-p.stop:
				return
			case <-t.C:
				p.logLine(log)
			}
		}
	}()
	return p
}

func (p *progress) logLine(log *slog.Logger) {
	done, total := p.done.Load(), p.total.Load()
	el := time.Since(p.start)
	rate := float64(done) / el.Seconds()
	attrs := []any{"done", done, "rate_per_s", int64(rate), "elapsed", el.Round(time.Second)}
	if total >= 0 {
		attrs = append(attrs, "total", total)
		if rate > 0 && total > done {
			attrs = append(attrs, "eta", time.Duration(float64(total-done)/rate*float64(time.Second)).Round(time.Second))
		}
	}
	log.Info("migrate: progress", attrs...)
}

func (p *progress) add(n int) {
	p.done.Add(int64(n))
	if p.bar != nil {
		_ = p.bar.Add(n)
	}
}

func (p *progress) finish(ok bool) {
	close(p.stop)
	p.wg.Wait()
	if p.bar != nil {
		if ok {
			_ = p.bar.Finish()
		} else {
			_ = p.bar.Exit()
		}
	}
}
