package server

import (
	"encoding/json"
	"net/http"
	"net/http/pprof"
	"runtime"
	"time"

	"github.com/fledge-flags/fledge/registry"
)

// DebugHandler serves the diagnostics listener (server.debug_address):
// /debug/vars, a JSON summary of the process and of the documents it holds,
// and net/http/pprof under /debug/pprof/. It reveals no keys beyond their
// redacted form, but profiles show internals: it belongs on a loopback or
// private address.
func DebugHandler(reg *registry.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /debug/vars", func(w http.ResponseWriter, r *http.Request) {
		writeDebugVars(w, reg)
	})
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// debugVars is the body of /debug/vars.
type debugVars struct {
	Goroutines   int             `json:"goroutines"`
	HeapAlloc    uint64          `json:"heap_alloc_bytes"`
	HeapSys      uint64          `json:"heap_sys_bytes"`
	Sys          uint64          `json:"sys_bytes"`
	NumGC        uint32          `json:"num_gc"`
	Environments []debugEnvState `json:"environments"`
}

type debugEnvState struct {
	ClientKey string     `json:"client_key"` // redacted
	Loaded    bool       `json:"loaded"`
	UpdatedAt *time.Time `json:"updated_at,omitempty"`
}

func writeDebugVars(w http.ResponseWriter, reg *registry.Registry) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	v := debugVars{
		Goroutines:   runtime.NumGoroutine(),
		HeapAlloc:    ms.HeapAlloc,
		HeapSys:      ms.HeapSys,
		Sys:          ms.Sys,
		NumGC:        ms.NumGC,
		Environments: []debugEnvState{},
	}
	for _, env := range reg.Envs() {
		st := debugEnvState{ClientKey: registry.Redact(env.ClientKey)}
		if snap := env.Snapshot(); snap != nil {
			st.Loaded = true
			if !snap.UpdatedAt.IsZero() {
				st.UpdatedAt = &snap.UpdatedAt
			}
		}
		v.Environments = append(v.Environments, st)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(v)
}
