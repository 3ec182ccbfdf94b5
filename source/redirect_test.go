package source

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/fledge-flags/fledge/bench/workload"
)

// keyCatcher is a server that must never see a request: it counts them and
// remembers whether one carried the server-side key.
type keyCatcher struct {
	*httptest.Server
	hits, keys atomic.Int32
}

func newKeyCatcher(t *testing.T, tls bool) *keyCatcher {
	k := &keyCatcher{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k.hits.Add(1)
		if r.Header.Get("X-Environment-Key") != "" {
			k.keys.Add(1)
		}
		_, _ = w.Write(workload.Document(profile, 1))
	})
	if tls {
		k.Server = httptest.NewTLSServer(h)
	} else {
		k.Server = httptest.NewServer(h)
	}
	t.Cleanup(k.Close)
	return k
}

func TestRedirectLeavingTheOriginIsRefused(t *testing.T) {
	tests := []struct {
		name               string
		upstreamTLS, toTLS bool
	}{
		{name: "another host", upstreamTLS: false, toTLS: false},
		{name: "https to http downgrade", upstreamTLS: true, toTLS: false},
		{name: "http to https", upstreamTLS: false, toTLS: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			other := newKeyCatcher(t, tt.toTLS)
			target := other.URL + "/api/v1/environment-document/"
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, target, http.StatusFound)
			})
			var up *httptest.Server
			if tt.upstreamTLS {
				up = httptest.NewTLSServer(h)
			} else {
				up = httptest.NewServer(h)
			}
			defer up.Close()
			f := newFixture(t)
			f.poller.APIURL = up.URL + "/api/v1"
			// Trust the test certificate (httptest servers share one), so
			// that only the redirect policy can stop the request.
			pool := x509.NewCertPool()
			for _, s := range []*httptest.Server{up, other.Server} {
				if s.Certificate() != nil {
					pool.AddCert(s.Certificate())
				}
			}
			f.poller.Client.Transport.(*http.Transport).TLSClientConfig = &tls.Config{RootCAs: pool}
			f.poll(t)
			if n := other.keys.Load(); n > 0 {
				t.Fatalf("the server-side key was sent to %s %d times", other.URL, n)
			}
			if n := other.hits.Load(); n > 0 {
				t.Fatalf("followed a redirect to %s", other.URL)
			}
			if f.env.Snapshot() != nil {
				t.Fatal("installed a document reached through a cross-origin redirect")
			}
			if !strings.Contains(f.logs.String(), "leaves the API's origin") {
				t.Fatalf("the refusal is not explained:\n%s", f.logs)
			}
		})
	}
}

func TestSameOriginRedirectIsFollowed(t *testing.T) {
	doc := workload.Document(profile, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("/api/v1/environment-document/", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/v2/document", http.StatusMovedPermanently)
	})
	mux.HandleFunc("/v2/document", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Environment-Key") != workload.ServerKey(profile) {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		_, _ = w.Write(doc)
	})
	up := httptest.NewServer(mux)
	defer up.Close()
	f := newFixture(t)
	f.poller.APIURL = up.URL + "/api/v1"
	f.poll(t)
	if f.env.Snapshot() == nil {
		t.Fatalf("a redirect within the origin was not followed:\n%s", f.logs)
	}
}

func TestFetchErrorsHideTheAPIURLPassword(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer up.Close()
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close()
	for _, base := range []string{up.URL, downURL} {
		f := newFixture(t)
		f.poller.APIURL = strings.Replace(base, "http://", "http://fledge:hunter2@", 1) + "/api/v1"
		f.poll(t)
		logs := f.logs.String()
		if !strings.Contains(logs, "fetch failed") {
			t.Fatalf("no failure logged:\n%s", logs)
		}
		if strings.Contains(logs, "hunter2") {
			t.Errorf("the api_url password is in the logs:\n%s", logs)
		}
	}
}

func TestWarmStartErrorsHideTheClientKey(t *testing.T) {
	dir := t.TempDir()
	key := workload.ClientKey(profile)
	sd := &SnapshotDir{Dir: dir}
	// A directory where the snapshot file should be makes both reading and
	// replacing it fail, with errors that name the path.
	if err := os.MkdirAll(filepath.Join(sd.path(key), "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t)
	sd.LoadInto(f.reg, f.fresh, f.poller.Logger)
	f.poller.Snapshots = sd
	f.poll(t)
	logs := f.logs.String()
	for _, want := range []string{"reading warm-start snapshot failed", "saving warm-start snapshot failed"} {
		if !strings.Contains(logs, want) {
			t.Errorf("missing %q:\n%s", want, logs)
		}
	}
	if strings.Contains(logs, key) {
		t.Errorf("the whole client key is in the logs:\n%s", logs)
	}
}

func TestReadFileCapped(t *testing.T) {
	if _, err := ReadFileCapped("/dev/zero"); err == nil || !strings.Contains(err.Error(), "larger than 32 MiB") {
		t.Fatalf("/dev/zero: %v, want a size error", err)
	}
	p := filepath.Join(t.TempDir(), "doc.json")
	if err := os.WriteFile(p, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, err := ReadFileCapped(p); err != nil || string(b) != "{}" {
		t.Fatalf("small file: %q, %v", b, err)
	}
	if _, err := LoadFiles([]string{"/dev/zero"}, nil); err == nil || !strings.Contains(err.Error(), "larger than 32 MiB") {
		t.Fatalf("offline environments file /dev/zero: %v, want a size error", err)
	}
}
