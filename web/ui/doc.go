// Package ui embeds the browser apps built by Vite from this directory: the
// agent desk (one Preact app for agents, supervisors and admins) and widget.js,
// the dependency-free chat widget customers put on their sites.
//
// It owns only serving the built files (cache headers, client-side routes).
// It must never hold API logic, sessions or authorisation: the desk talks to
// /api/v1 and /ws/* served by package web, which also sets the
// Content-Security-Policy this package's output is built to satisfy (no
// inline scripts or styles).
package ui
