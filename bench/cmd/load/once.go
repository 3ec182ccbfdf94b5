package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// once sends one request, retrying until the -expect status (any status
// when 0) or -wait has passed, and prints
// {"status":…,"body_bytes":…,"content_encoding":…}.
func once(t *target, o options, out io.Writer) error {
	deadline := time.Now().Add(o.wait)
	for {
		c := newConn(t, 0, o.timeout)
		resp, err := c.do(time.Now())
		c.close()
		ok := err == nil && (o.expect == 0 || resp.status == o.expect)
		if ok || !time.Now().Before(deadline) {
			if err != nil {
				return err
			}
			b, err := json.Marshal(map[string]any{"status": resp.status, "body_bytes": resp.bodySize, "content_encoding": resp.encoding})
			if err != nil {
				return err
			}
			if _, err := fmt.Fprintf(out, "%s\n", b); err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("status %d", resp.status)
			}
			return nil
		}
		time.Sleep(o.retryEvery)
	}
}

func freePorts(n int, out io.Writer) error {
	if n > 100 {
		return errors.New("-free-ports: at most 100")
	}
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			_ = ln.Close()
		}
	}()
	for i := 0; i < n; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		lns = append(lns, ln) // held open until all are chosen, so they differ
		if _, err := fmt.Fprintln(out, ln.Addr().(*net.TCPAddr).Port); err != nil {
			return err
		}
	}
	return nil
}
