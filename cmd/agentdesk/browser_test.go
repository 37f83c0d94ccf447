package main

// The browser end-to-end test: the whole server (as `agentdesk serve` wires
// it) in this process on a fresh database, a customer's site with widget.js
// in one browser context and the agent desk in another, both in Debian's
// headless Chromium driven by chromedp. It lives in package main because
// wireParts is how serve assembles the server; a copy of the wiring would
// drift.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/gorilla/websocket"

	"agentdesk/agentdesk"

	"agentdesk/agentdesk/postgres"
	"agentdesk/agentdesk/postgres/pgtest"
	"agentdesk/web/ui"
)

// chromiumFlags are the flags this machine's closed network needs: without
// the background-networking ones Chromium keeps dialling Google's hosts.
var chromiumFlags = []string{
	"headless", "no-sandbox", "disable-gpu", "disable-quic", "no-first-run",
	"disable-background-networking", "disable-component-update", "disable-sync",
}

func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("AGENTDESK_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	t.Skip("Chromium is not installed (scripts/deps.sh test installs Debian's chromium)")
	return ""
}

// artifactsDir is where screenshots go: $AGENTDESK_ARTIFACTS/<test> when
// set, else artifacts/<test> at the module root (git-ignored, kept after
// `make test` for a look), else a temporary directory.
func artifactsDir(t *testing.T) string {
	t.Helper()
	base := os.Getenv("AGENTDESK_ARTIFACTS")
	if base == "" {
		if wd, err := os.Getwd(); err == nil {
			for dir := wd; dir != filepath.Dir(dir); dir = filepath.Dir(dir) {
				if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
					base = filepath.Join(dir, "artifacts")
					break
				}
			}
		}
	}
	if base == "" {
		return t.TempDir()
	}
	dir := filepath.Join(base, strings.ReplaceAll(t.Name(), "/", "_"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// browser is one page in its own browser context (separate cookies and storage).
type browser struct {
	t    *testing.T
	name string
	ctx  context.Context
	dir  string
	shot int
}

func newBrowser(t *testing.T, root context.Context, name, dir string) *browser {
	ctx, cancel := chromedp.NewContext(root, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	// The first action starts the tab, which lives as long as the context it
	// runs with: that must be ctx itself, not one of do's timeouts.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 720)); err != nil {
		t.Fatalf("%s: open a tab: %v", name, err)
	}
	return &browser{t: t, name: name, ctx: ctx, dir: dir}
}

func (b *browser) do(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.screenshot("failed")
		b.t.Fatalf("%s: %v", b.name, err)
	}
}

// eval runs a JavaScript expression and returns its JSON value.
func (b *browser) eval(js string) json.RawMessage {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[json.RawMessage](js))
	if err != nil {
		b.screenshot("failed")
		b.t.Fatalf("%s: eval %s: %v", b.name, js, err)
	}
	return v
}

// waitJS polls a JavaScript expression until it is truthy, then returns its
// value; what it waits for is described by what, for the failure message.
func (b *browser) waitJS(what, js string) json.RawMessage {
	b.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
		v, err := chromedp.Run(ctx, chromedp.Evaluate[json.RawMessage](js))
		cancel()
		if err == nil && len(v) > 0 && !isFalsy(v) {
			return v
		}
		if time.Now().After(deadline) {
			b.screenshot("timeout")
			b.t.Fatalf("%s: waited 30s for %s (last value %s, err %v)", b.name, what, v, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func isFalsy(v json.RawMessage) bool {
	switch strings.TrimSpace(string(v)) {
	case "", "null", "false", "0", `""`, "undefined":
		return true
	}
	return false
}

// choose picks value in a <select> the way a user does, firing change.
func (b *browser) choose(selector, value string) {
	b.t.Helper()
	b.waitJS("option "+value+" in "+selector, `document.querySelector(`+js(selector)+`)?.querySelector("option[value='`+value+`']") != null`)
	b.eval(`(() => { const s = document.querySelector(` + js(selector) + `); s.value = ` + js(value) + `;
		s.dispatchEvent(new Event("change", {bubbles: true})); return true })()`)
}

// login signs in on the desk as a demo user.
func (b *browser) login(base, email, password string) {
	b.t.Helper()
	b.do(chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.ID("login-email")))
	b.do(
		chromedp.SendKeys(chromedp.ID("login-email"), email),
		chromedp.SendKeys(chromedp.ID("login-password"), password),
		chromedp.Click(chromedp.CSS("form.login-card button[type=submit]")),
		chromedp.WaitVisible(chromedp.CSS(".topbar")),
	)
}

func (b *browser) screenshot(label string) {
	b.shot++
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Logf("%s: screenshot %s: %v", b.name, label, err)
		return
	}
	path := filepath.Join(b.dir, fmt.Sprintf("%s-%02d-%s.png", b.name, b.shot, label))
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Logf("screenshot: %v", err)
	}
}

// js quotes s as a JavaScript string literal.
func js(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// testServer is the whole server on a fresh database.
type testServer struct {
	URL     string
	DB      *postgres.Store
	Account int64
}

func startServer(t *testing.T) *testServer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	dbURL := pgtest.NewURL(t)
	db, err := postgres.Open(ctx, dbURL, 20)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	store := postgres.NewStore(db)
	acct, err := createDemoOrg(ctx, store)
	if err != nil {
		t.Fatalf("demo organisation: %v", err)
	}
	log := slog.New(slog.NewTextHandler(testLog{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	base := serveInProcess(t, dbURL, store, channelConfig{}, log, nil)
	return &testServer{URL: base, DB: store, Account: acct}
}

type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// need skips the test when the server does not answer path the way a
// finished feature would: the browser test needs every part of the chat
// flow, and says which one is missing rather than failing obscurely.
func need(t *testing.T, method, url, body, what string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	// A route that is not there, not a resource that is not there: the API
	// says "no API endpoint", the router "404 page not found".
	missing := res.StatusCode == http.StatusNotFound && (strings.Contains(string(b), "no API endpoint") || strings.Contains(string(b), "404 page not found"))
	if missing || res.StatusCode == http.StatusServiceUnavailable || res.StatusCode == http.StatusMethodNotAllowed {
		t.Skipf("not ready: %s (%s %s answered %d: %.200s)", what, method, url, res.StatusCode, b)
	}
}

func TestBrowserChat(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test: skipped with -short")
	}
	chromium := chromiumPath(t)
	srv := startServer(t)
	need(t, "GET", srv.URL+"/", "", "the agent desk UI (run `make ui` to build web/ui)")
	need(t, "GET", srv.URL+"/widget.js", "", "widget.js (run `make ui`)")
	need(t, "GET", srv.URL+"/ws/agent", "", "the agent websocket /ws/agent mounted in the server")
	need(t, "GET", srv.URL+"/ws/customer", "", "the customer websocket /ws/customer mounted in the server")
	need(t, "POST", srv.URL+"/api/v1/widget/acme-shop/session", "{}",
		"the chat channel's server side: the widget REST endpoints of web/ui/WIDGET.md (session token, chat start, end, rating)")
	chatFlow(t, srv, chromium)
}

// chatFlow: a visitor starts a chat from a customer's site; an agent gets
// the offer, accepts, both exchange messages, the agent wraps up with a
// contact reason and the visitor rates the chat.
func chatFlow(t *testing.T, srv *testServer, chromium string) {
	root := startBrowser(t, chromium)
	dir := artifactsDir(t)
	t.Logf("screenshots in %s", dir)
	agent := newBrowser(t, root, "agent", dir)
	customer := newBrowser(t, root, "customer", dir)

	// The agent signs in and becomes available.
	agent.login(srv.URL, "agent@"+demoDomain, demoAgentPassword)
	agent.waitJS("the live connection", `document.querySelector(".conn-open") !== null`)
	// One script sets the choice and fires its change, as a pick in the
	// browser does: set in one step and announced in another, a re-render
	// in between (the desk's first read of the presence landing late under
	// load) put the select back to Offline, and the change then sent that.
	agent.choose("[data-testid=presence]", "available")
	agent.waitJS("presence available", `document.querySelector(".presence-available") !== null`)
	agent.screenshot("available")

	// The customer's site is another origin: the widget is cross-origin there.
	var widgetID string
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html lang="en"><head><title>Acme shop</title></head>
<body><h1>Acme shop</h1><p>Garden tools since 1921.</p>
<script src="%s/widget.js" data-widget="%s" async></script></body></html>`, srv.URL, widgetID)
	}))
	t.Cleanup(site.Close)
	siteURL := strings.Replace(site.URL, "127.0.0.1", "localhost", 1)
	widgetID = createWidget(t, srv, siteURL)

	// The visitor opens the widget and starts a chat.
	root0 := `document.querySelector("[data-agentdesk-widget]").shadowRoot`
	customer.do(chromedp.Navigate(siteURL))
	customer.waitJS("the widget launcher", root0+`?.querySelector(".launcher") != null`)
	customer.eval(root0 + `.querySelector(".launcher").click(), true`)
	customer.waitJS("the pre-chat form", root0+`.querySelector("form [name=email]") != null`)
	customer.eval(`(() => { const r = ` + root0 + `;
		r.querySelector("[name=name]").value = "Carla Customer";
		r.querySelector("[name=email]").value = "carla@example.org";
		const topic = r.querySelector("[name=topic]");
		topic.value = [...topic.options].find(o => o.textContent === "Support").value;
		r.querySelector("[name=message]").value = "Hello, where is my order 1001?";
		r.querySelector("form button[type=submit]").click(); return true })()`)
	customer.waitJS("the queue status", root0+`.querySelector("[data-testid=queue-status], [data-testid=agent-name]") != null`)
	customer.screenshot("waiting")

	// The offer reaches the agent, who accepts it with the keyboard.
	agent.waitJS("the offer card", `document.querySelector(".offer") !== null`)
	agent.screenshot("offer")
	if got := string(agent.eval(`document.querySelector("[data-testid=offer-customer]").textContent`)); !strings.Contains(got, "Carla") {
		t.Errorf("offer card shows customer %s, want Carla Customer", got)
	}
	agent.do(chromedp.KeyEvent("a", chromedp.KeyModifiers(chromedp.ModifierAlt)))
	agent.waitJS("the ticket workspace with the first message", `[...document.querySelectorAll("[data-testid=message]")].some(m => m.textContent.includes("where is my order 1001"))`)
	agent.screenshot("accepted")

	// The visitor sees who joined; they exchange messages both ways.
	customer.waitJS("the agent's name", root0+`.querySelector("[data-testid=agent-name]")?.textContent.includes("Alex Agent")`)
	// Typing shows on both sides (ephemeral events, never stored).
	customer.eval(`(() => { const ta = ` + root0 + `.querySelector(".composer textarea");
		ta.value = "G"; ta.dispatchEvent(new Event("input")); ta.value = ""; return true })()`)
	agent.waitJS("the visitor's typing indicator", `document.querySelector(".typing")?.textContent.includes("Carla Customer is typing")`)
	agent.do(chromedp.SendKeys(chromedp.CSS(".composer textarea"), "Hi Carla, it ships today."))
	customer.waitJS("the agent's typing indicator", root0+`.querySelector(".typing")?.textContent.includes("Alex Agent is typing")`)
	agent.do(chromedp.Click(chromedp.CSS(".composer button[type=submit]")))
	customer.waitJS("the agent's reply", root0+`.textContent.includes("it ships today")`)
	customer.eval(`(() => { const r = ` + root0 + `;
		r.querySelector(".composer textarea").value = "Great, thank you!";
		r.querySelector(".composer button[type=submit]").click(); return true })()`)
	agent.waitJS("the customer's reply", `document.querySelector(".timeline").textContent.includes("Great, thank you!")`)
	customer.screenshot("chatting")
	agent.screenshot("chatting")

	// The agent wraps up: the contact reason is required.
	agent.do(chromedp.Click(chromedp.CSS("[data-testid=wrapup]")), chromedp.WaitVisible(chromedp.CSS("dialog.wrapup")))
	agent.do(chromedp.Click(chromedp.CSS("dialog.wrapup button[type=submit]")))
	agent.waitJS("the required-reason message", `document.querySelector("#wrap-contact-err")?.textContent.includes("contact reason")`)
	reason := agent.waitJS("the contact reasons", `[...document.querySelectorAll("#wrap-contact option")].find(o => o.textContent === "Where is my order")?.value`)
	var reasonID string
	json.Unmarshal(reason, &reasonID)
	agent.do(chromedp.SetValue(chromedp.ID("wrap-contact"), reasonID))
	agent.eval(`document.querySelector("#wrap-contact").dispatchEvent(new Event("change", {bubbles: true})), true`)
	agent.screenshot("wrapup")
	agent.do(chromedp.Click(chromedp.CSS("dialog.wrapup button[type=submit]")))
	agent.waitJS("the solved ticket", `document.querySelector("[data-testid=wrapup]")?.textContent.includes("Solved")`)
	agent.screenshot("solved")

	// The visitor's chat ends and they rate it.
	customer.waitJS("the rating form", root0+`.querySelector(".stars") != null || (`+root0+`.querySelector(".composer .end")?.click(), false)`)
	customer.eval(`(() => { const r = ` + root0 + `;
		r.querySelector("[data-rating='5']").click();
		r.querySelector("[name=comment]").value = "Quick and friendly";
		r.querySelector("form button[type=submit]").click(); return true })()`)
	customer.waitJS("the thank-you", root0+`.querySelector("[data-testid=thanks]") != null`)
	customer.screenshot("rated")

	checkChatDatabase(t, srv, reasonID)
}

// createWidget gives the test account a chat widget for the customer's
// site at origin, whose topics are the demo queues.
func createWidget(t *testing.T, srv *testServer, origin string) string {
	t.Helper()
	ctx := context.Background()
	admin := agentdesk.Actor{AccountID: srv.Account, Role: agentdesk.RoleAdmin}
	w := &agentdesk.ChatWidget{PublicID: "acme-shop", Name: "Acme shop", AllowedOrigins: []string{origin}, Title: "Acme support"}
	// Support first: the form preselects the first topic, and Alex Agent
	// has the support skill, not sales.
	for _, name := range []string{"Support", "Sales"} {
		var id int64
		if err := srv.DB.DB().QueryRow(ctx, `SELECT id FROM queues WHERE account_id = $1 AND name = $2`, srv.Account, name).Scan(&id); err != nil {
			t.Fatalf("queue %s: %v", name, err)
		}
		w.Topics = append(w.Topics, agentdesk.ChatTopic{Name: name, QueueID: id})
	}
	if err := srv.DB.CreateWidget(ctx, admin, w); err != nil {
		t.Fatalf("create widget: %v", err)
	}
	return w.PublicID
}

// checkChatDatabase asserts what the chat left in the database.
func checkChatDatabase(t *testing.T, srv *testServer, reasonID string) {
	t.Helper()
	ctx := context.Background()
	var (
		ticketID                 int64
		status, channel, comment string
		contact, rating, resSecs *int64
	)
	err := srv.DB.DB().QueryRow(ctx, `SELECT id, status, channel, contact_reason_id, csat_rating, csat_comment, resolution_seconds
		FROM tickets WHERE account_id = $1 AND channel = 'chat' ORDER BY id DESC LIMIT 1`, srv.Account).
		Scan(&ticketID, &status, &channel, &contact, &rating, &comment, &resSecs)
	if err != nil {
		t.Fatalf("the chat's ticket: %v", err)
	}
	if status != "solved" || contact == nil || fmt.Sprint(*contact) != reasonID || resSecs == nil {
		t.Errorf("chat ticket %d: status %s, contact reason %v, resolution seconds %v; want solved, %s, set", ticketID, status, deref(contact), deref(resSecs), reasonID)
	}
	if rating == nil || *rating != 5 || comment != "Quick and friendly" {
		t.Errorf("chat ticket %d: CSAT %v %q, want 5 \"Quick and friendly\"", ticketID, deref(rating), comment)
	}
	rows, err := srv.DB.DB().Query(ctx, `SELECT kind, direction, body FROM messages WHERE account_id = $1 AND ticket_id = $2 ORDER BY id`, srv.Account, ticketID)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var kind, dir, body string
		if err := rows.Scan(&kind, &dir, &body); err != nil {
			t.Fatal(err)
		}
		got = append(got, kind+"/"+dir+"/"+body)
	}
	want := []string{
		"chat/in/Hello, where is my order 1001?",
		"chat/out/Hi Carla, it ships today.",
		"chat/in/Great, thank you!",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("chat messages in the database:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	var task string
	if err := srv.DB.DB().QueryRow(ctx, `SELECT state FROM tasks WHERE account_id = $1 AND ticket_id = $2 ORDER BY id DESC LIMIT 1`, srv.Account, ticketID).Scan(&task); err != nil {
		t.Fatalf("the chat's routing task: %v", err)
	}
	if task != "completed" {
		t.Errorf("routing task of the chat: %s, want completed", task)
	}
	var identities []string
	r2, err := srv.DB.DB().Query(ctx, `SELECT i.kind FROM identities i JOIN tickets t ON t.customer_id = i.customer_id AND t.account_id = i.account_id
		WHERE t.account_id = $1 AND t.id = $2 ORDER BY i.kind`, srv.Account, ticketID)
	if err != nil {
		t.Fatal(err)
	}
	for r2.Next() {
		var k string
		r2.Scan(&k)
		identities = append(identities, k)
	}
	if strings.Join(identities, ",") != "email,visitor" {
		t.Errorf("the customer's identities: %v, want the email and the visitor id", identities)
	}
}

// startBrowser starts Chromium for t and returns the root context; each
// newBrowser on it is a separate browser context (its own cookies).
func startBrowser(t *testing.T, chromium string) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{chromedp.ExecPath(chromium), chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 720)}
	for _, f := range chromiumFlags {
		opts = append(opts, chromedp.Flag(f, true))
	}
	alloc, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	root, cancel := chromedp.NewContext(alloc)
	t.Cleanup(cancel)
	if err := chromedp.Do(root, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	return root
}

// TestBrowserDesk works one email ticket in the desk: the customer panel,
// an internal note, an email reply, the priority, and a wrap-up whose
// cancellation outcome demands a cancellation reason.
func TestBrowserDesk(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test: skipped with -short")
	}
	chromium := chromiumPath(t)
	srv := startServer(t)
	need(t, "GET", srv.URL+"/", "", "the agent desk UI (run `make ui` to build web/ui)")
	ctx := context.Background()

	creds, err := srv.DB.CredentialsByEmail(ctx, "agent@"+demoDomain)
	if err != nil {
		t.Fatal(err)
	}
	actor := agentdesk.Actor{AccountID: srv.Account, AgentID: creds.AgentID, Role: agentdesk.RoleAgent}
	cust := &agentdesk.Customer{Name: "Carla Customer", Identities: []agentdesk.Identity{{Kind: agentdesk.IdentityEmail, Value: "carla@example.org"}}}
	if err := srv.DB.CreateCustomer(ctx, srv.Account, cust); err != nil {
		t.Fatal(err)
	}
	tk := &agentdesk.Ticket{Subject: "Please cancel my plan", Status: agentdesk.StatusOpen, Channel: agentdesk.ChannelEmail,
		CustomerID: cust.ID, AssigneeID: &creds.AgentID}
	first := &agentdesk.Message{Kind: agentdesk.KindEmail, Direction: agentdesk.DirIn, Subject: "Please cancel my plan",
		Body: "Hello, the plan is too expensive for us. Please cancel it."}
	if err := srv.DB.CreateTicket(ctx, actor, tk, first); err != nil {
		t.Fatal(err)
	}
	// A second, unassigned chat in the agent's team: it waits in the team queue.
	support := creds.AgentID
	if err := srv.DB.DB().QueryRow(ctx, `SELECT team_id FROM team_members WHERE agent_id = $1 LIMIT 1`, creds.AgentID).Scan(&support); err != nil {
		t.Fatal(err)
	}
	chat := &agentdesk.Ticket{Subject: "Chat about a delivery", Status: agentdesk.StatusNew, Channel: agentdesk.ChannelChat,
		CustomerID: cust.ID, TeamID: &support, Priority: agentdesk.PriorityUrgent}
	if err := srv.DB.CreateTicket(ctx, actor, chat, &agentdesk.Message{Kind: agentdesk.KindChat, Direction: agentdesk.DirIn, Body: "Is my parcel coming today?"}); err != nil {
		t.Fatal(err)
	}

	root := startBrowser(t, chromium)
	dir := artifactsDir(t)
	t.Logf("screenshots in %s", dir)
	agent := newBrowser(t, root, "desk", dir)
	agent.login(srv.URL, "agent@"+demoDomain, demoAgentPassword)

	// The lists: the team queue holds the unassigned chat, all open both,
	// and the channel filter narrows them.
	subjects := `[...document.querySelectorAll(".ticket-row .subject")].map(r => r.textContent).join("|")`
	agent.waitJS("My tickets", subjects+` === "Please cancel my plan"`)
	agent.do(chromedp.KeyEvent("2", chromedp.KeyModifiers(chromedp.ModifierAlt)))
	agent.waitJS("the team queue", subjects+` === "Chat about a delivery"`)
	agent.do(chromedp.KeyEvent("3", chromedp.KeyModifiers(chromedp.ModifierAlt)))
	agent.waitJS("all open tickets, newest first", subjects+` === "Chat about a delivery|Please cancel my plan"`)
	agent.choose(`select[aria-label="Channel filter"]`, "chat")
	agent.waitJS("the chat filter", subjects+` === "Chat about a delivery"`)
	agent.screenshot("filtered")
	agent.choose(`select[aria-label="Channel filter"]`, "")
	agent.do(chromedp.KeyEvent("1", chromedp.KeyModifiers(chromedp.ModifierAlt)))

	// My tickets lists it; the keyboard opens it.
	agent.waitJS("My tickets again", subjects+` === "Please cancel my plan"`)
	agent.eval(`document.querySelector(".ticket-row").focus(), true`)
	agent.do(chromedp.KeyEvent(kb.Enter))
	agent.waitJS("the customer's email in the timeline", `document.querySelector(".timeline")?.textContent.includes("too expensive for us")`)
	agent.waitJS("the customer panel", `document.querySelector("[data-testid=customer-name]")?.textContent === "Carla Customer"`)
	agent.waitJS("the identity", `document.querySelector(".identities")?.textContent.includes("carla@example.org")`)
	agent.waitJS("the history", `document.querySelector(".history")?.textContent.includes("Please cancel my plan")`)
	agent.screenshot("ticket")

	// An internal note, then an email reply.
	agent.do(chromedp.Click(chromedp.CSS(`.composer-tabs [role=tab]:nth-child(2)`)))
	agent.do(chromedp.SendKeys(chromedp.CSS(".composer textarea"), "Offer the 20% retention discount first."))
	agent.do(chromedp.Click(chromedp.CSS(".composer button[type=submit]")))
	agent.waitJS("the note", `document.querySelector(".msg.dir-internal")?.textContent.includes("retention discount")`)
	agent.do(chromedp.Click(chromedp.CSS(`.composer-tabs [role=tab]:nth-child(1)`)))
	agent.do(chromedp.SendKeys(chromedp.CSS(".composer textarea"), "Sorry to see you go, Carla. Your plan is cancelled."))
	agent.do(chromedp.Click(chromedp.CSS(".composer button[type=submit]")))
	agent.waitJS("the reply", `document.querySelector(".msg.dir-out")?.textContent.includes("Your plan is cancelled")`)
	agent.choose(".fields select:nth-of-type(1)", "open")
	agent.eval(`(() => { const s = [...document.querySelectorAll(".fields select")][1]; s.value = "high"; s.dispatchEvent(new Event("change", {bubbles: true})); return true })()`)
	agent.waitJS("the saved priority", `document.querySelector(".ticket-row.selected")?.textContent.includes("High")`)
	agent.screenshot("replied")

	// Wrap-up: a cancellation needs its reason.
	agent.do(chromedp.Click(chromedp.CSS("[data-testid=wrapup]")), chromedp.WaitVisible(chromedp.CSS("dialog.wrapup")))
	contact := optionValue(t, agent, "#wrap-contact", "Close account")
	agent.choose("#wrap-contact", contact)
	agent.choose("#wrap-outcome", "cancellation")
	agent.do(chromedp.Click(chromedp.CSS("dialog.wrapup button[type=submit]")))
	agent.waitJS("the cancellation-reason message", `document.querySelector("#wrap-cancel-err")?.textContent.includes("cancels")`)
	agent.screenshot("wrapup-needs-reason")
	cancelReason := optionValue(t, agent, "#wrap-cancel", "Too expensive")
	agent.choose("#wrap-cancel", cancelReason)
	agent.do(chromedp.Click(chromedp.CSS("dialog.wrapup button[type=submit]")))
	agent.waitJS("the solved ticket", `document.querySelector("[data-testid=wrapup]")?.textContent.includes("Solved")`)
	agent.screenshot("solved")

	// The chat in the team queue becomes the agent's; the customer writes in
	// it while another ticket is on screen: an unread count shows, live.
	api := func(method, path, body string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(agent.ctx, 30*time.Second)
		defer cancel()
		_, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`fetch(`+js(path)+`, {method: `+js(method)+`, headers: {"Content-Type": "application/json"}, body: `+js(body)+`})
			.then(r => { if (!r.ok) throw new Error("HTTP " + r.status); return true })`, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("%s %s from the desk: %v", method, path, err)
		}
	}
	api("PATCH", fmt.Sprintf("/api/v1/tickets/%d", chat.ID), fmt.Sprintf(`{"assignee_id": %d}`, creds.AgentID))
	agent.waitJS("the chat in My tickets", subjects+` === "Chat about a delivery"`)
	api("POST", fmt.Sprintf("/api/v1/tickets/%d/messages", chat.ID), `{"kind": "chat", "direction": "in", "body": "Hello? Anyone there?"}`)
	agent.waitJS("the unread count on the ticket", `document.querySelector(".ticket-row .badge")?.textContent === "1"`)
	agent.waitJS("the unread count in the title", `document.title.startsWith("(1)")`)
	agent.screenshot("unread")
	agent.do(chromedp.Click(chromedp.CSS(".ticket-row")))
	agent.waitJS("the new message", `document.querySelector(".timeline")?.textContent.includes("Anyone there?")`)
	agent.waitJS("the count cleared", `document.querySelector(".ticket-row .badge") === null && !document.title.startsWith("(")`)

	// New tickets join the lists live, without a reload: one created over
	// REST for this agent, and a web form's in All open, where the keyboard
	// cursor stays on its ticket while a row is inserted above it.
	agent.eval(`window.__sameDocument = true, true`)
	api("POST", "/api/v1/tickets", fmt.Sprintf(`{"subject": "Invoice copy", "customer_id": %d, "assignee_id": %d}`, cust.ID, creds.AgentID))
	agent.waitJS("the new ticket in My tickets", subjects+` === "Invoice copy|Chat about a delivery"`)
	agent.do(chromedp.KeyEvent("3", chromedp.KeyModifiers(chromedp.ModifierAlt)))
	agent.waitJS("all open", `document.querySelector("section.list-pane")?.getAttribute("aria-label") === "All open" && `+subjects+` === "Invoice copy|Chat about a delivery"`)
	agent.waitJS("the cursor on the second row", `(r => (r[0].focus(), r[1].focus(), r[1].tabIndex === 0))(document.querySelectorAll(".ticket-row"))`)
	api("POST", fmt.Sprintf("/api/v1/inbound/form?account=%d", srv.Account), `{"name": "Ola", "email": "ola@example.org", "subject": "Broken lid", "message": "The lid broke."}`)
	agent.waitJS("the form's ticket in All open", subjects+` === "Broken lid|Invoice copy|Chat about a delivery"`)
	agent.waitJS("the cursor still on its ticket", `document.activeElement?.textContent.includes("Chat about a delivery") && document.activeElement.tabIndex === 0`)
	agent.do(chromedp.KeyEvent(kb.ArrowUp))
	agent.waitJS("the cursor moved to the ticket above", `document.activeElement?.textContent.includes("Invoice copy")`)
	agent.waitJS("no reload", `window.__sameDocument === true`)
	agent.screenshot("live-lists")

	var (
		status, priority, resolution string
		contactID, cancelID          *int64
		resolutionSeconds            *int64
	)
	err = srv.DB.DB().QueryRow(ctx, `SELECT status, priority, resolution_code, contact_reason_id, cancellation_reason_id, resolution_seconds
		FROM tickets WHERE account_id = $1 AND id = $2`, srv.Account, tk.ID).
		Scan(&status, &priority, &resolution, &contactID, &cancelID, &resolutionSeconds)
	if err != nil {
		t.Fatal(err)
	}
	if status != "solved" || priority != "high" || resolution != "cancellation" {
		t.Errorf("ticket: status %s, priority %s, resolution %s; want solved, high, cancellation", status, priority, resolution)
	}
	if contactID == nil || fmt.Sprint(*contactID) != contact || cancelID == nil || fmt.Sprint(*cancelID) != cancelReason {
		t.Errorf("ticket reasons: contact %v cancellation %v; want %s and %s", deref(contactID), deref(cancelID), contact, cancelReason)
	}
	if resolutionSeconds == nil {
		t.Error("the solved ticket has no resolution time")
	}
	rows, err := srv.DB.DB().Query(ctx, `SELECT kind, direction, coalesce(author_id, 0), body FROM messages
		WHERE account_id = $1 AND ticket_id = $2 ORDER BY id`, srv.Account, tk.ID)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var kind, dir, body string
		var author int64
		if err := rows.Scan(&kind, &dir, &author, &body); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s/%s/%v/%.20s", kind, dir, author == creds.AgentID, body))
	}
	want := []string{
		"email/in/false/Hello, the plan is t",
		"note/internal/true/Offer the 20% retent",
		"email/out/true/Sorry to see you go,",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("timeline in the database:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func optionValue(t *testing.T, b *browser, selector, text string) string {
	t.Helper()
	v := b.waitJS("option "+text, `[...document.querySelectorAll(`+js(selector+" option")+`)].find(o => o.textContent === `+js(text)+`)?.value`)
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		t.Fatalf("option %s: %v", text, err)
	}
	return s
}

func deref(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}

// TestBrowserOffer: a contact form is routed to the available agent, whose
// desk shows the offer card (naming a queue made after the desk opened); the agent accepts with the keyboard, works the
// ticket and wraps up, which completes the routing task and frees the agent.
func TestBrowserOffer(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test: skipped with -short")
	}
	chromium := chromiumPath(t)
	srv := startServer(t)
	need(t, "GET", srv.URL+"/", "", "the agent desk UI (run `make ui` to build web/ui)")
	need(t, "GET", srv.URL+"/ws/agent", "", "the agent websocket /ws/agent mounted in the server")
	need(t, "GET", srv.URL+"/api/v1/queues", "", "the routing engine wired into the server")
	ctx := context.Background()

	root := startBrowser(t, chromium)
	dir := artifactsDir(t)
	t.Logf("screenshots in %s", dir)
	agent := newBrowser(t, root, "offer", dir)
	agent.login(srv.URL, "agent@"+demoDomain, demoAgentPassword)
	agent.waitJS("the live connection", `document.querySelector(".conn-open") !== null`)
	agent.choose("[data-testid=presence]", "available")
	agent.waitJS("presence available", `document.querySelector(".presence-available") !== null`)

	// The contact goes to a queue made after the desk loaded its list of
	// queues: the offer names it all the same.
	if _, err := srv.DB.DB().Exec(ctx, `
WITH support AS (
	SELECT * FROM queues WHERE account_id = $1 AND name = 'Support'
), q AS (
	INSERT INTO queues (account_id, name, channels, team_id) SELECT account_id, 'Returns', channels, team_id FROM support RETURNING id
)
UPDATE queue_defaults SET queue_id = (SELECT id FROM q) WHERE account_id = $1 AND queue_id = (SELECT id FROM support)`, srv.Account); err != nil {
		t.Fatal(err)
	}

	form := `{"name": "Dora Form", "email": "dora@example.org", "subject": "Broken rake", "message": "The rake I bought broke on day one."}`
	res, err := http.Post(fmt.Sprintf("%s/api/v1/inbound/form?account=%d", srv.URL, srv.Account), "application/json", strings.NewReader(form))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusAccepted {
		t.Fatalf("contact form: %s", res.Status)
	}

	agent.waitJS("the offer card", `document.querySelector(".offer") !== null`)
	agent.waitJS("the customer on the offer", `document.querySelector("[data-testid=offer-customer]")?.textContent === "Dora Form"`)
	agent.waitJS("the queue on the offer", `document.querySelector(".offer")?.textContent.includes("Returns")`)
	agent.screenshot("offer")
	agent.do(chromedp.KeyEvent("a", chromedp.KeyModifiers(chromedp.ModifierAlt)))
	agent.waitJS("the ticket with the form message", `document.querySelector(".timeline")?.textContent.includes("broke on day one")`)
	agent.waitJS("the offer card gone", `document.querySelector(".offer") === null`)
	agent.screenshot("accepted")

	var taskID int64
	var state string
	if err := srv.DB.DB().QueryRow(ctx, `SELECT id, state FROM tasks WHERE account_id = $1 ORDER BY id DESC LIMIT 1`, srv.Account).Scan(&taskID, &state); err != nil {
		t.Fatal(err)
	}
	if state != "assigned" {
		t.Errorf("task %d after accept: %s, want assigned", taskID, state)
	}

	agent.do(chromedp.Click(chromedp.CSS("[data-testid=wrapup]")), chromedp.WaitVisible(chromedp.CSS("dialog.wrapup")))
	reason := optionValue(t, agent, "#wrap-contact", "Defect")
	agent.choose("#wrap-contact", reason)
	agent.do(chromedp.Click(chromedp.CSS("dialog.wrapup button[type=submit]")))
	agent.waitJS("the solved ticket", `document.querySelector("[data-testid=wrapup]")?.textContent.includes("Solved")`)
	agent.screenshot("solved")

	var contact *int64
	var ticketStatus string
	err = srv.DB.DB().QueryRow(ctx, `SELECT t.state, k.status, k.contact_reason_id FROM tasks t JOIN tickets k ON k.id = t.ticket_id
		WHERE t.account_id = $1 AND t.id = $2`, srv.Account, taskID).Scan(&state, &ticketStatus, &contact)
	if err != nil {
		t.Fatal(err)
	}
	if state != "completed" || ticketStatus != "solved" || contact == nil || fmt.Sprint(*contact) != reason {
		t.Errorf("after wrap-up: task %s, ticket %s, contact reason %v; want completed, solved, %s", state, ticketStatus, deref(contact), reason)
	}
}

// TestBrowserWidget runs widget.js in Chromium on a customer's site whose
// CSP allows no inline script or style, against a stand-in for the chat
// server that speaks web/ui/WIDGET.md and web/PROTOCOL.md. It proves what
// the browser alone decides — cross-origin REST with CORS, the websocket,
// the shadow-root styles under a strict CSP, visitor storage — while
// TestBrowserChat waits for the real chat channel.
func TestBrowserWidget(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test: skipped with -short")
	}
	chromium := chromiumPath(t)
	desk := newFakeChatServer(t)
	need(t, "GET", desk.URL+"/widget.js", "", "widget.js (run `make ui` to build web/ui)")
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", fmt.Sprintf(
			"default-src 'self'; script-src 'self' %[1]s; style-src 'self'; connect-src %[1]s %[2]s", desk.URL, strings.Replace(desk.URL, "http", "ws", 1)))
		fmt.Fprintf(w, `<!doctype html><html lang="en"><head><title>Acme shop</title></head>
<body><h1>Acme shop</h1><script src="%s/widget.js" data-widget="w1" async></script></body></html>`, desk.URL)
	}))
	t.Cleanup(site.Close)
	siteURL := strings.Replace(site.URL, "127.0.0.1", "localhost", 1)

	root := startBrowser(t, chromium)
	dir := artifactsDir(t)
	t.Logf("screenshots in %s", dir)
	b := newBrowser(t, root, "widget", dir)
	w := `document.querySelector("[data-agentdesk-widget]").shadowRoot`
	b.do(chromedp.Navigate(siteURL))
	b.waitJS("the launcher", w+`?.querySelector(".launcher") != null`)
	// The launcher is styled (fixed, round): the adopted stylesheet applied under the site's CSP.
	b.waitJS("the launcher's styles", `getComputedStyle(`+w+`.querySelector(".launcher")).position === "fixed"`)
	b.eval(w + `.querySelector(".launcher").click(), true`)
	b.waitJS("the pre-chat form", w+`.querySelector("[name=email]") != null`)
	b.eval(`(() => { const r = ` + w + `;
		r.querySelector("[name=name]").value = "Carla Customer";
		r.querySelector("[name=email]").value = "carla@example.org";
		r.querySelector("[name=topic]").value = "2";
		r.querySelector("[name=message]").value = "Where is my order?";
		r.querySelector("form button[type=submit]").click(); return true })()`)
	b.waitJS("the queue position", w+`.querySelector("[data-testid=queue-status]")?.textContent.includes("number 3 in the queue")`)
	b.screenshot("waiting")

	desk.push(`{"type":"chat.agent_joined","data":{"ticket_id":9,"agent_name":"Alex Agent"}}`)
	desk.push(`{"type":"message.created","data":{"id":501,"ticket_id":9,"direction":"out","body":"Hi Carla, it ships today."}}`)
	desk.push(`{"type":"typing","data":{"ticket_id":9,"from":"agent","typing":true}}`)
	b.waitJS("the agent's name", w+`.querySelector("[data-testid=agent-name]")?.textContent.includes("Alex Agent")`)
	b.waitJS("the agent's message", w+`.querySelector("[data-testid=msg-agent]")?.textContent.includes("it ships today")`)
	b.waitJS("the typing indicator", w+`.querySelector(".typing")?.textContent.includes("is typing")`)
	b.eval(`(() => { const r = ` + w + `;
		r.querySelector(".composer textarea").value = "Great, thanks!";
		r.querySelector(".composer button[type=submit]").click(); return true })()`)
	b.waitJS("the server's echo handled once", w+`.querySelectorAll("[data-testid=msg-me]").length === 2 && `+
		`[...`+w+`.querySelectorAll("[data-testid=msg-me]")].map(e => e.textContent).join("|") === "Where is my order?|Great, thanks!"`)
	b.screenshot("chatting")

	desk.push(`{"type":"chat.ended","data":{"ticket_id":9}}`)
	b.waitJS("the rating form", w+`.querySelector(".stars") != null`)
	b.eval(`(() => { const r = ` + w + `;
		r.querySelector("[data-rating='4']").click();
		r.querySelector("[name=comment]").value = "Quick";
		r.querySelector("[name=transcript]").checked = true;
		r.querySelector("form button[type=submit]").click(); return true })()`)
	b.waitJS("the thank-you", w+`.querySelector("[data-testid=thanks]") != null`)
	b.screenshot("rated")

	visitor := string(b.eval(`localStorage.getItem("agentdesk_visitor")`))
	got := desk.log()
	want := []string{
		`session {}`,
		`ws resume {"streams":[]}`,
		`chat {"body":"Where is my order?","email":"carla@example.org","name":"Carla Customer","queue_id":2}`,
		`ws chat.send {"body":"Great, thanks!","ticket_id":9}`,
		`rating {"comment":"Quick","rating":4}`,
		`transcript {"email":"carla@example.org"}`,
	}
	// The rating and the transcript are sent together: either may land first.
	if len(got) >= len(want) {
		slices.Sort(got[len(want)-2 : len(want)])
	}
	slices.Sort(want[len(want)-2:])
	if strings.Join(got[:min(len(got), len(want))], "\n") != strings.Join(want, "\n") {
		t.Errorf("the chat server saw:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if visitor != `"v_e2e"` {
		t.Errorf("visitor id in the site's storage: %s, want \"v_e2e\"", visitor)
	}

	// Back on the site later: the visitor is recognised.
	b.do(chromedp.Navigate(siteURL))
	b.waitJS("the launcher", w+`?.querySelector(".launcher") != null`)
	b.eval(w + `.querySelector(".launcher").click(), true`)
	b.waitJS("the welcome back", w+`.textContent.includes("Welcome back, Carla Customer")`)
	if got := desk.log(); !slices.Contains(got[len(want):], `session {"visitor_id":"v_e2e"}`) {
		t.Errorf("a returning visitor's requests: %q, want the session to name the stored visitor id", got[len(want):])
	}
}

// fakeChatServer stands in for the chat channel's server side: it serves
// the real widget.js and records what the widget sends.
type fakeChatServer struct {
	*httptest.Server
	mu     sync.Mutex
	seen   []string
	ws     *websocket.Conn
	seq    int
	wsOpen chan struct{}
}

func (f *fakeChatServer) record(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen = append(f.seen, s)
}

func (f *fakeChatServer) log() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.seen...)
}

// push sends an event on the visitor's stream, numbered like the hub does.
func (f *fakeChatServer) push(frame string) {
	<-f.wsOpen
	f.mu.Lock()
	defer f.mu.Unlock()
	var env map[string]any
	json.Unmarshal([]byte(frame), &env)
	if env["type"] != "typing" {
		f.seq++
		env["seq"] = f.seq
	}
	env["stream"] = "visitor:v_e2e"
	f.ws.WriteJSON(env)
}

func newFakeChatServer(t *testing.T) *fakeChatServer {
	f := &fakeChatServer{wsOpen: make(chan struct{})}
	mux := http.NewServeMux()
	mux.Handle("GET /widget.js", ui.Handler())
	body := func(r *http.Request) string {
		var v any
		json.NewDecoder(r.Body).Decode(&v)
		b, _ := json.Marshal(v)
		return string(b)
	}
	api := func(name string, answer func(in string) any) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Access-Control-Allow-Origin", r.Header.Get("Origin"))
			w.Header().Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
			w.Header().Set("Access-Control-Allow-Methods", "POST")
			if r.Method == http.MethodOptions {
				w.WriteHeader(http.StatusNoContent)
				return
			}
			if name != "session" && r.Header.Get("Authorization") != "Bearer wt1.e2e" {
				http.Error(w, `{"error":{"kind":"unauthenticated","message":"no token"}}`, http.StatusUnauthorized)
				return
			}
			in := body(r)
			f.record(name + " " + in)
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(answer(in))
		}
	}
	session := api("session", func(in string) any {
		s := map[string]any{"visitor_id": "v_e2e", "token": "wt1.e2e", "online": true, "title": "Acme support",
			"queues": []map[string]any{{"id": 1, "name": "Sales"}, {"id": 2, "name": "Support"}}}
		if strings.Contains(in, "v_e2e") {
			s["name"], s["email"] = "Carla Customer", "carla@example.org"
		}
		return s
	})
	chat := api("chat", func(string) any {
		return map[string]any{"ticket_id": 9, "message_id": 500, "position": 3, "estimated_wait_seconds": 90}
	})
	empty := func(name string) http.HandlerFunc { return api(name, func(string) any { return map[string]any{} }) }
	for path, h := range map[string]http.HandlerFunc{
		"/api/v1/widget/w1/session": session, "/api/v1/widget/w1/chat": chat,
		"/api/v1/widget/w1/chat/rating": empty("rating"), "/api/v1/widget/w1/chat/transcript": empty("transcript"),
	} {
		mux.Handle(path, h)
	}
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	mux.HandleFunc("GET /ws/customer", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("token") != "wt1.e2e" {
			http.Error(w, "bad token", http.StatusUnauthorized)
			return
		}
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		f.mu.Lock()
		f.ws = ws
		f.mu.Unlock()
		for {
			var m struct {
				Type string          `json:"type"`
				ID   string          `json:"id"`
				Data json.RawMessage `json:"data"`
			}
			if err := ws.ReadJSON(&m); err != nil {
				return
			}
			var data map[string]any
			json.Unmarshal(m.Data, &data)
			clientID := data["client_msg_id"]
			delete(data, "client_msg_id") // random; its use is checked by the echo below
			b, _ := json.Marshal(data)
			f.record("ws " + m.Type + " " + string(b))
			f.mu.Lock()
			switch m.Type {
			case "resume":
				ws.WriteJSON(map[string]any{"type": "ack", "id": m.ID})
				ws.WriteJSON(map[string]any{"type": "subscribed", "stream": "visitor:v_e2e", "seq": f.seq})
				select {
				case <-f.wsOpen:
				default:
					close(f.wsOpen)
				}
			case "chat.send":
				ws.WriteJSON(map[string]any{"type": "ack", "id": m.ID, "data": map[string]any{"message_id": 502, "ticket_id": 9}})
				f.seq++
				// The echo of the visitor's own message, as the chat channel publishes it.
				ws.WriteJSON(map[string]any{"type": "message.created", "stream": "visitor:v_e2e", "seq": f.seq,
					"data": map[string]any{"id": 502, "ticket_id": 9, "direction": "in", "body": data["body"], "client_msg_id": clientID}})
			default:
				ws.WriteJSON(map[string]any{"type": "ack", "id": m.ID})
			}
			f.mu.Unlock()
		}
	})
	f.Server = httptest.NewServer(mux)
	t.Cleanup(f.Server.Close)
	return f
}
