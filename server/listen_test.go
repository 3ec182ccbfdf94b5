package server

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// serve runs Serve on a loopback listener and returns its URL, the cancel
// that starts a graceful shutdown, and a channel with Serve's result.
func serve(t testing.TB, h http.Handler, opt HTTPOptions) (string, context.CancelFunc, <-chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if opt.Logger == nil {
		opt.Logger = quietLogger()
	}
	if opt.ShutdownTimeout == 0 {
		opt.ShutdownTimeout = 5 * time.Second
	}
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, ln, h, opt)
		close(done) // later receives (the cleanup) do not block
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	scheme := "http"
	if opt.TLSCert != "" {
		scheme = "https"
	}
	return scheme + "://" + ln.Addr().String(), cancel, done
}

func TestTLS(t *testing.T) {
	dir := t.TempDir()
	certPEM := selfSigned(t, dir)
	h, _ := newTestHandler(t, nil)
	url, _, _ := serve(t, h, HTTPOptions{TLSCert: filepath.Join(dir, "cert.pem"), TLSKey: filepath.Join(dir, "key.pem")})
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	req, _ := http.NewRequest("GET", url+"/api/v1/flags/", nil)
	req.Header.Set("X-Environment-Key", clientKey)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil {
		t.Fatalf("TLS request: %d, tls=%v", resp.StatusCode, resp.TLS != nil)
	}
	// Plain HTTP to the TLS port must not get flags.
	plain, err := http.Get(strings.Replace(url, "https", "http", 1) + "/api/v1/flags/")
	if err == nil {
		plain.Body.Close()
		if plain.StatusCode == 200 {
			t.Fatal("plain HTTP served on the TLS port")
		}
	}
}

func TestTLSBadCertificateFailsAtStart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	err = Serve(context.Background(), ln, http.NotFoundHandler(), HTTPOptions{TLSCert: "/nonexistent/cert.pem", TLSKey: "/nonexistent/key.pem", Logger: quietLogger()})
	if err == nil || !strings.Contains(err.Error(), "server.tls_cert") {
		t.Fatalf("want an error naming server.tls_cert, got %v", err)
	}
}

func selfSigned(t testing.TB, dir string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "fledge test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cert.pem"), certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certPEM
}

// TestSlowloris: a client that never finishes its headers is cut off after
// the read-header timeout instead of holding a connection forever.
func TestSlowloris(t *testing.T) {
	h, _ := newTestHandler(t, nil)
	url, _, _ := serve(t, h, HTTPOptions{ReadHeaderTimeout: 300 * time.Millisecond})
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("GET /api/v1/flags/ HTTP/1.1\r\nHost: x\r\nX-Slow: ")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = io.ReadAll(conn)
	if el := time.Since(start); el > 3*time.Second {
		t.Fatalf("connection held for %s despite a 300ms read-header timeout (err %v)", el, err)
	}
}

func TestHeaderLimit(t *testing.T) {
	h, _ := newTestHandler(t, nil)
	url, _, _ := serve(t, h, HTTPOptions{MaxHeaderBytes: 4 << 10})
	req, _ := http.NewRequest("GET", url+"/api/v1/flags/", nil)
	req.Header.Set("X-Environment-Key", clientKey)
	req.Header.Set("X-Big", strings.Repeat("a", 64<<10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("oversized headers: %d, want 431", resp.StatusCode)
	}
}

// TestGracefulShutdown: a request in flight when shutdown starts completes.
func TestGracefulShutdown(t *testing.T) {
	started := make(chan struct{})
	release := make(chan struct{})
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		_, _ = w.Write([]byte("done"))
	})
	url, cancel, done := serve(t, slow, HTTPOptions{})
	result := make(chan string, 1)
	go func() {
		resp, err := http.Get(url + "/")
		if err != nil {
			result <- "error: " + err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		result <- string(b)
	}()
	<-started
	cancel()
	time.Sleep(100 * time.Millisecond) // shutdown has begun and is waiting
	close(release)
	if got := <-result; got != "done" {
		t.Fatalf("in-flight request: %q", got)
	}
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

// TestNoGoroutineLeak: serving many requests, bad ones included, leaves no
// goroutines behind once connections close.
func TestNoGoroutineLeak(t *testing.T) {
	h, _ := newTestHandler(t, nil)
	url, _, _ := serve(t, h, HTTPOptions{})
	before := runtime.NumGoroutine()
	client := &http.Client{Transport: &http.Transport{}}
	bodies := []string{`{"identifier":"a"}`, `{`, `[]`, `{"identifier":"a","traits":[{"trait_key":"x","trait_value":"` + strings.Repeat("v", 2001) + `"}]}`}
	for i := 0; i < 200; i++ {
		req, _ := http.NewRequest("POST", url+"/api/v1/identities/", strings.NewReader(bodies[i%len(bodies)]))
		req.Header.Set("X-Environment-Key", clientKey)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, bufio.NewReader(resp.Body))
		resp.Body.Close()
	}
	client.CloseIdleConnections()
	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > before+2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before+2 {
		t.Fatalf("goroutines: %d before, %d after", before, n)
	}
}

// TestTLSIsHTTP1: the watchdog's phases assume one request at a time, so a
// client that offers HTTP/2 must still be served HTTP/1.1 over TLS.
func TestTLSIsHTTP1(t *testing.T) {
	opt := HTTPOptions{ReadHeaderTimeout: time.Second, WriteTimeout: time.Second, IdleTimeout: time.Second}
	clientTLS := tlsOptions(t, &opt)
	url, _, _ := serve(t, okHandler, opt)
	tr := &http.Transport{TLSClientConfig: clientTLS, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get(url + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.TLS == nil {
		t.Fatal("response not over TLS")
	}
	if resp.ProtoMajor != 1 || resp.TLS.NegotiatedProtocol == "h2" {
		t.Fatalf("served %s (ALPN %q) to a client offering h2; want HTTP/1.1", resp.Proto, resp.TLS.NegotiatedProtocol)
	}
}
