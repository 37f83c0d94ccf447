package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"agentdesk/agentdesk"
	"agentdesk/web"
)

// A 2×2 PNG: a real image, so the widget's thumbnail must decode.
const tinyPNG = "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAFklEQVR4nGP4z8DAwMDAxMDAwMAAAAWGAQF6m2cMAAAAAElFTkSuQmCC"

// TestBrowserWidgetFiles: in headless Chromium, a visitor on another
// origin sends a photo from the widget (upload, then chat.send), sees it as
// a thumbnail fetched with its token across origins, and receives an
// agent's file as a download link; the database links both files to their
// messages.
func TestBrowserWidgetFiles(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test: skipped with -short")
	}
	chromium := chromiumPath(t)
	srv := startServer(t)
	need(t, "GET", srv.URL+"/widget.js", "", "widget.js (run `make ui`)")
	ctx := context.Background()
	root := startBrowser(t, chromium)
	dir := artifactsDir(t)
	customer := newBrowser(t, root, "customer", dir)

	var widgetID string
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html lang="en"><head><title>Acme shop</title></head>
<body><h1>Acme shop</h1><script src="%s/widget.js" data-widget="%s" async></script></body></html>`, srv.URL, widgetID)
	}))
	t.Cleanup(site.Close)
	siteURL := strings.Replace(site.URL, "127.0.0.1", "localhost", 1)
	widgetID = createWidget(t, srv, siteURL)

	root0 := `document.querySelector("[data-agentdesk-widget]").shadowRoot`
	customer.do(chromedp.Navigate(siteURL))
	customer.waitJS("the widget launcher", root0+`?.querySelector(".launcher") != null`)
	customer.eval(root0 + `.querySelector(".launcher").click(), true`)
	customer.waitJS("the pre-chat form", root0+`.querySelector("form [name=email]") != null`)
	customer.eval(`(() => { const r = ` + root0 + `;
		r.querySelector("[name=name]").value = "Pia Photo";
		r.querySelector("[name=email]").value = "pia@example.org";
		r.querySelector("[name=message]").value = "The parcel arrived broken";
		r.querySelector("form button[type=submit]").click(); return true })()`)
	customer.waitJS("the chat view", root0+`.querySelector("[data-testid=attach]") != null`)

	// The visitor picks a photo.
	customer.eval(`(() => { const r = ` + root0 + `;
		const bin = atob(` + js(tinyPNG) + `); const bytes = new Uint8Array(bin.length);
		for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
		const dt = new DataTransfer(); dt.items.add(new File([bytes], "broken box.png", {type: "image/png"}));
		const input = r.querySelector("[data-testid=attach]"); input.files = dt.files;
		input.dispatchEvent(new Event("change")); return true })()`)
	customer.waitJS("the photo's thumbnail", root0+`.querySelector("[data-testid=msg-me] img.thumb")?.naturalWidth === 2`)
	customer.screenshot("photo-sent")
	if got := string(customer.eval(root0 + `.querySelector(".error")?.textContent ?? ""`)); got != `""` {
		t.Errorf("widget error after the upload: %s", got)
	}

	var ticketID int64
	db := srv.DB.DB()
	if err := db.QueryRow(ctx, `SELECT ticket_id FROM chats WHERE account_id = $1 ORDER BY ticket_id DESC LIMIT 1`, srv.Account).Scan(&ticketID); err != nil {
		t.Fatal(err)
	}
	// The thumbnail shows before chat.send is acknowledged (the visitor
	// may see its own upload): wait for the message that links it.
	var name, direction string
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		err := db.QueryRow(ctx, `SELECT u.filename, m.direction FROM uploads u JOIN messages m ON m.id = u.message_id
			WHERE u.account_id = $1 AND m.ticket_id = $2 AND u.uploaded_by_visitor IS NOT NULL`, srv.Account, ticketID).Scan(&name, &direction)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the visitor's photo in the database: %v", err)
		}
	}
	if name != "broken box.png" || direction != "in" {
		t.Errorf("photo stored as %q on a %q message", name, direction)
	}

	// The agent answers with a file (over the API here; the desk UI is
	// tested on its own).
	admin := agentdesk.Actor{AccountID: srv.Account, Role: agentdesk.RoleAdmin}
	if err := db.QueryRow(ctx, `SELECT id FROM agents WHERE account_id = $1 AND role = 'admin' ORDER BY id LIMIT 1`, srv.Account).Scan(&admin.AgentID); err != nil {
		t.Fatal(err)
	}
	_, token, err := web.CreateAPIToken(ctx, srv.DB, admin, "files", agentdesk.RoleAdmin, nil)
	if err != nil {
		t.Fatal(err)
	}
	call := func(path, ctype string, body []byte) []byte {
		t.Helper()
		req, _ := http.NewRequest("POST", srv.URL+path, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", ctype)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode != 201 {
			t.Fatalf("POST %s: %d %s", path, res.StatusCode, b)
		}
		return b
	}
	var form bytes.Buffer
	mw := multipart.NewWriter(&form)
	fw, _ := mw.CreateFormFile("file", "return-label.pdf")
	fw.Write([]byte("%PDF-1.4 return label\n%%EOF\n")) //nolint:errcheck
	mw.Close()
	var label agentdesk.Attachment
	json.Unmarshal(call("/api/v1/attachments", mw.FormDataContentType(), form.Bytes()), &label) //nolint:errcheck
	reply, _ := json.Marshal(map[string]any{"direction": "out", "body": "Sorry! Here is a return label.", "attachment_ids": []int64{label.ID}})
	call(fmt.Sprintf("/api/v1/tickets/%d/messages", ticketID), "application/json", reply)
	customer.waitJS("the agent's file", root0+`.querySelector("[data-testid=msg-agent] [data-testid=file]")?.textContent.includes("return-label.pdf")`)
	// Downloading fetches the bytes with the token; no error shows.
	customer.eval(root0 + `.querySelector("[data-testid=msg-agent] [data-testid=file]").click(), true`)
	customer.screenshot("file-received")
	if got := string(customer.eval(root0 + `.querySelector(".error")?.textContent ?? ""`)); got != `""` {
		t.Errorf("widget error after the download: %s", got)
	}
}
