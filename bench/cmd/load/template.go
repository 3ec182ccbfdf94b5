package main

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
)

// Placeholders of -template, replaced in the URL's query and in the body.
// {{seq}} and {{rand}} have a fixed width, so a connection builds its
// request once and each request only overwrites those digits in place (the
// Content-Length never changes).
const (
	// phSeq is a counter shared by every connection and target of the run,
	// 0, 1, 2, …, as seqWidth zero-padded digits: every request differs.
	phSeq = "{{seq}}"
	// phRand is uniformly random in [0, -rand-max), zero-padded to the
	// width of rand-max-1: user-{{rand}} with -rand-max 1000000 is
	// user-0000000 … user-0999999.
	phRand = "{{rand}}"
	// phConn is the connection's number, 0 … c-1, fixed per connection.
	phConn = "{{conn}}"

	seqWidth = 10 // holds maxRequests (10⁸) and then some
)

type slotKind uint8

const (
	slotSeq slotKind = iota
	slotRand
)

// slot is where a per-request value goes in a built request.
type slot struct {
	off, width int
	kind       slotKind
}

// reqTemplate is a request with placeholders: the head (request line and
// headers, without Content-Length and the blank line) and the body.
type reqTemplate struct {
	head, body []byte
	withLength bool
	randMax    uint64
	randWidth  int
	seq        *atomic.Uint64
}

func newReqTemplate(head, body []byte, withLength bool, randMax uint64, seq *atomic.Uint64) (*reqTemplate, error) {
	if seq == nil {
		seq = new(atomic.Uint64)
	}
	t := &reqTemplate{head: head, body: body, withLength: withLength, randMax: randMax, seq: seq}
	if randMax > 0 {
		t.randWidth = len(strconv.FormatUint(randMax-1, 10))
	}
	found := 0
	for _, part := range [][]byte{head, body} {
		for rest := part; ; {
			i := bytes.Index(rest, []byte("{{"))
			if i < 0 {
				break
			}
			rest = rest[i:]
			switch {
			case bytes.HasPrefix(rest, []byte(phSeq)), bytes.HasPrefix(rest, []byte(phConn)):
			case bytes.HasPrefix(rest, []byte(phRand)):
				if randMax == 0 {
					return nil, errors.New("-template: " + phRand + " needs -rand-max")
				}
			default:
				end := min(len(rest), 12)
				return nil, fmt.Errorf("-template: unknown placeholder at %q (known: %s %s %s)", rest[:end], phSeq, phRand, phConn)
			}
			found++
			rest = rest[2:]
		}
	}
	if found == 0 {
		return nil, errors.New("-template: no placeholder in the URL or the body")
	}
	return t, nil
}

// build returns connection conn's request with {{conn}} replaced and the
// {{seq}} and {{rand}} digits zeroed, and where those digits are.
func (t *reqTemplate) build(conn int) ([]byte, []slot) {
	body, bodySlots := t.expand(nil, t.body, conn)
	req, slots := t.expand(nil, t.head, conn)
	if t.withLength {
		req = append(req, "Content-Length: "...)
		req = strconv.AppendInt(req, int64(len(body)), 10)
		req = append(req, "\r\n"...)
	}
	req = append(req, "\r\n"...)
	for _, s := range bodySlots {
		s.off += len(req)
		slots = append(slots, s)
	}
	return append(req, body...), slots
}

func (t *reqTemplate) expand(dst, src []byte, conn int) ([]byte, []slot) {
	var slots []slot
	for {
		i := bytes.Index(src, []byte("{{"))
		if i < 0 {
			return append(dst, src...), slots
		}
		dst = append(dst, src[:i]...)
		src = src[i:]
		switch {
		case bytes.HasPrefix(src, []byte(phConn)):
			dst = strconv.AppendInt(dst, int64(conn), 10)
			src = src[len(phConn):]
		case bytes.HasPrefix(src, []byte(phSeq)):
			slots = append(slots, slot{off: len(dst), width: seqWidth, kind: slotSeq})
			dst = append(dst, bytes.Repeat([]byte("0"), seqWidth)...)
			src = src[len(phSeq):]
		case bytes.HasPrefix(src, []byte(phRand)):
			slots = append(slots, slot{off: len(dst), width: t.randWidth, kind: slotRand})
			dst = append(dst, bytes.Repeat([]byte("0"), t.randWidth)...)
			src = src[len(phRand):]
		default: // rejected by newReqTemplate
			dst = append(dst, src[:2]...)
			src = src[2:]
		}
	}
}

// fill writes this request's values into the slots of req: the next
// sequence number, fresh random numbers.
func (t *reqTemplate) fill(req []byte, slots []slot, rng *rand.Rand) {
	for _, s := range slots {
		var v uint64
		if s.kind == slotSeq {
			v = t.seq.Add(1) - 1
		} else {
			v = rng.Uint64N(t.randMax)
		}
		putDigits(req[s.off:s.off+s.width], v)
	}
}

// putDigits writes v into dst as decimal digits, zero-padded on the left
// (the lowest len(dst) digits if v is wider).
func putDigits(dst []byte, v uint64) {
	for i := len(dst) - 1; i >= 0; i-- {
		dst[i] = byte('0' + v%10)
		v /= 10
	}
}
