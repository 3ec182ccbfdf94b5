package main

import (
	"bufio"
	"bytes"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

func TestTemplateRequests(t *testing.T) {
	var seq atomic.Uint64
	o := options{method: "POST", template: true, randMax: 1000, headers: stringList{"Content-Type: application/json"}}
	tg, err := newTarget("http://127.0.0.1:8000/api/v1/identities/?r={{rand}}", o, &seq)
	if err != nil {
		t.Fatal(err)
	}
	tg.tmpl.body = []byte(`{"identifier":"w-{{conn}}","traits":[{"trait_key":"n","trait_value":"v{{seq}}"}]}`)
	rng := rand.New(rand.NewPCG(1, 2))
	for conn, wantID := range map[int]string{0: "w-0", 7: "w-7", 12: "w-12"} {
		req, slots := tg.tmpl.build(conn)
		if len(slots) != 2 {
			t.Fatalf("conn %d: %d slots, want 2", conn, len(slots))
		}
		for range 3 {
			before := seq.Load()
			tg.tmpl.fill(req, slots, rng)
			r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(req)))
			if err != nil {
				t.Fatalf("conn %d: not a valid request: %v\n%s", conn, err, req)
			}
			b, err := io.ReadAll(r.Body)
			if err != nil {
				t.Fatal(err)
			}
			body := string(b)
			want := `{"identifier":"` + wantID + `","traits":[{"trait_key":"n","trait_value":"v` + pad(before, seqWidth) + `"}]}`
			if body != want || r.ContentLength != int64(len(want)) {
				t.Errorf("conn %d: body %s (Content-Length %d), want %s", conn, body, r.ContentLength, want)
			}
			rv := r.URL.Query().Get("r")
			n, err := strconv.Atoi(rv)
			if len(rv) != 3 || err != nil || n < 0 || n >= 1000 {
				t.Errorf("conn %d: {{rand}} = %q, want 3 digits below 1000", conn, rv)
			}
		}
	}
	if seq.Load() != 9 {
		t.Errorf("sequence = %d after 9 requests", seq.Load())
	}
}

func pad(v uint64, width int) string {
	s := strconv.FormatUint(v, 10)
	return strings.Repeat("0", width-len(s)) + s
}

func TestTemplateRandIsUniformAndInRange(t *testing.T) {
	const values = 10
	tmpl, err := newReqTemplate([]byte("GET /?id={{rand}} HTTP/1.1\r\n"), nil, false, values, nil)
	if err != nil {
		t.Fatal(err)
	}
	req, slots := tmpl.build(0)
	rng := rand.New(rand.NewPCG(3, 4))
	var seen [values]int
	const n = 100_000
	for range n {
		tmpl.fill(req, slots, rng)
		seen[req[slots[0].off]-'0']++
	}
	for v, c := range seen {
		if c < n/values*9/10 || c > n/values*11/10 {
			t.Errorf("value %d drawn %d times in %d, want about %d", v, c, n, n/values)
		}
	}
}

func TestTemplateErrors(t *testing.T) {
	for name, c := range map[string]struct {
		url, body string
		randMax   uint64
	}{
		"no placeholder":      {"http://127.0.0.1/x", "{}", 0},
		"unknown placeholder": {"http://127.0.0.1/x?a={{sq}}", "", 0},
		"rand without max":    {"http://127.0.0.1/x?a={{rand}}", "", 0},
		"placeholder in path": {"http://127.0.0.1/{{seq}}/", "", 0},
	} {
		o := options{method: "GET", template: true, randMax: c.randMax}
		tg, err := newTarget(c.url, o, nil)
		if err == nil && c.body != "" {
			_, err = newReqTemplate(tg.tmpl.head, []byte(c.body), false, c.randMax, nil)
		}
		if err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestPutDigits(t *testing.T) {
	for _, c := range []struct {
		v     uint64
		width int
		want  string
	}{{0, 3, "000"}, {42, 5, "00042"}, {999, 3, "999"}, {1234, 3, "234"}} {
		b := make([]byte, c.width)
		putDigits(b, c.v)
		if string(b) != c.want {
			t.Errorf("putDigits(%d, width %d) = %s, want %s", c.v, c.width, b, c.want)
		}
	}
}
