package ui

import (
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

// dist holds the Vite build. all: keeps dist/.keep, so the pattern matches in
// a fresh clone where the UI has not been built yet.
//
//go:embed all:dist
var dist embed.FS

// Handler serves the agent desk and widget.js from the embedded build.
//
//   - /assets/* are content-hashed by Vite: cached for a year, immutable.
//   - index.html and widget.js keep their names across releases: no-cache, so
//     a deploy reaches browsers and customers' sites at once.
//   - any other path that is not a file is a client-side route of the desk and
//     gets index.html; /api/ and /ws/ never do, so a wrong API path stays a 404.
//
// When the UI was not built (go build without make), every page explains how
// to build it instead of failing in a confusing way.
func Handler() http.Handler {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // cannot happen: "dist" is a valid embedded directory
	}
	return handler(sub)
}

func handler(files fs.FS) http.Handler {
	index, err := fs.ReadFile(files, "index.html")
	if err != nil {
		return http.HandlerFunc(notBuilt)
	}
	fileServer := http.FileServerFS(files)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		p := path.Clean("/" + r.URL.Path)
		if strings.HasPrefix(p, "/api/") || strings.HasPrefix(p, "/ws/") || p == "/api" || p == "/ws" {
			http.NotFound(w, r)
			return
		}
		name := strings.TrimPrefix(p, "/")
		if name != "" && strings.HasPrefix(path.Base(name), ".") {
			http.NotFound(w, r) // dist/.keep and the like are build plumbing
			return
		}
		if name != "" && name != "index.html" {
			if st, err := fs.Stat(files, name); err == nil && !st.IsDir() {
				switch {
				case strings.HasPrefix(name, "assets/"):
					w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
				case name == "widget.js":
					w.Header().Set("Cache-Control", "no-cache")
					// Customers' sites load it cross-origin.
					w.Header().Set("Cross-Origin-Resource-Policy", "cross-origin")
				default:
					w.Header().Set("Cache-Control", "public, max-age=3600")
				}
				fileServer.ServeHTTP(w, r)
				return
			}
			if strings.HasPrefix(name, "assets/") || path.Ext(name) != "" {
				// A missing hashed asset is an old build's; index.html would
				// be parsed as JavaScript and fail obscurely.
				http.NotFound(w, r)
				return
			}
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			w.Write(index)
		}
	})
}

const notBuiltPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>AgentDesk: UI not built</title></head>
<body><h1>UI not built</h1>
<p>This binary was compiled without the browser app. Run <code>make</code> (or <code>make build</code>)
in the source tree, which builds web/ui with npm and then the binary.</p></body></html>
`

func notBuilt(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusServiceUnavailable)
	w.Write([]byte(notBuiltPage))
}
