package web

import (
	"context"
	"net/http"
	"time"

	"agentdesk/agentdesk/postgres"
)

// healthz says the process is up; it checks nothing else, so a slow database
// never gets a live process restarted.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz says whether this process should get traffic: the database answers
// and every migration is applied, and every mounted part is ready.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	checks := map[string]string{}
	ok := true
	if err := s.store.DB().Ping(ctx); err != nil {
		checks["database"], ok = "unreachable", false
	} else if n, err := postgres.Pending(ctx, s.store.DB()); err != nil {
		checks["migrations"], ok = "unknown", false
	} else if n > 0 {
		checks["migrations"], ok = itoa(int64(n))+" pending", false
	} else {
		checks["database"] = "ok"
	}
	for _, check := range s.ready {
		if err := check(ctx); err != nil {
			checks["component"], ok = err.Error(), false
		}
	}
	status := http.StatusOK
	if !ok {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, map[string]any{"ready": ok, "checks": checks})
}
