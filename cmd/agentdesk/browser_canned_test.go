package main

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"agentdesk/agentdesk"
)

// TestBrowserCanned works one email ticket with the composer's tools: a
// canned response by "/" + shortcut and one from the Canned picker, both
// with their placeholders filled in by the server; a new personal canned
// response from the management dialog; a custom status from the status
// picker; a refused and a stored file attached to an internal note
// (POST /api/v1/attachments). It
// asserts what the page shows and what the database holds.
func TestBrowserCanned(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test: skipped with -short")
	}
	chromium := chromiumPath(t)
	srv := startServer(t)
	need(t, "GET", srv.URL+"/", "", "the agent desk UI (run `make ui` to build web/ui)")
	ctx := context.Background()
	db := srv.DB.DB()

	creds, err := srv.DB.CredentialsByEmail(ctx, "agent@"+demoDomain)
	if err != nil {
		t.Fatal(err)
	}
	actor := agentdesk.Actor{AccountID: srv.Account, AgentID: creds.AgentID, Role: agentdesk.RoleAgent}
	admin := agentdesk.Actor{AccountID: srv.Account, Role: agentdesk.RoleAdmin}
	if err := srv.DB.CreateCustomStatus(ctx, admin, &agentdesk.CustomStatus{Name: "Waiting for parts", MapsTo: agentdesk.StatusPending}); err != nil {
		t.Fatal(err)
	}
	cust := &agentdesk.Customer{Name: "Carla Customer", Identities: []agentdesk.Identity{{Kind: agentdesk.IdentityEmail, Value: "carla@example.org"}}}
	if err := srv.DB.CreateCustomer(ctx, srv.Account, cust); err != nil {
		t.Fatal(err)
	}
	tk := &agentdesk.Ticket{Subject: "Cannot sign in", Status: agentdesk.StatusOpen, Channel: agentdesk.ChannelEmail, CustomerID: cust.ID, AssigneeID: &creds.AgentID}
	first := &agentdesk.Message{Kind: agentdesk.KindEmail, Direction: agentdesk.DirIn, Subject: "Cannot sign in", Body: "I forgot my password and the rake order is stuck."}
	if err := srv.DB.CreateTicket(ctx, actor, tk, first); err != nil {
		t.Fatal(err)
	}

	root := startBrowser(t, chromium)
	dir := artifactsDir(t)
	t.Logf("screenshots in %s", dir)
	agent := newBrowser(t, root, "canned", dir)
	agent.login(srv.URL, "agent@"+demoDomain, demoAgentPassword)
	agent.do(chromedp.Navigate(fmt.Sprintf("%s/mine/tickets/%d", srv.URL, tk.ID)))
	agent.waitJS("the customer's email", `document.querySelector(".timeline")?.textContent.includes("rake order is stuck")`)

	// "/res" offers the Support team's "Password reset"; Enter inserts it
	// with the customer's name and address filled in.
	textarea := chromedp.CSS(".composer textarea")
	agent.do(chromedp.SendKeys(textarea, "/res"))
	agent.waitJS("the / menu", `[...document.querySelectorAll("[data-testid=canned-slash] [role=option] .canned-title")].map(e => e.textContent).join("|") === "Password reset"`)
	agent.screenshot("slash-menu")
	menuKey(agent, "Enter")
	reset := "Hi Carla,\n\nplease use \"Forgot password\" on the sign-in page; the link goes to carla@example.org and works for one hour."
	agent.waitJS("the rendered password reset", `document.querySelector(".composer textarea").value === `+js(reset))
	if got := string(agent.eval(`document.querySelector("[data-testid=canned-slash]") === null`)); got != "true" {
		t.Errorf("the / menu is still open after inserting")
	}

	// The Canned picker, from the keyboard: Alt+C, search, Enter. It
	// inserts Alex's personal sign-off at the caret.
	agent.do(chromedp.SendKeys(textarea, "\n\n"))
	agent.do(chromedp.KeyEvent("c", chromedp.KeyModifiers(chromedp.ModifierAlt)))
	agent.waitJS("the picker's search field focused", `document.activeElement?.matches(".canned-picker input[type=search]")`)
	agent.do(chromedp.SendKeys(chromedp.CSS(".canned-picker input[type=search]"), "sign"))
	agent.waitJS("the picker's match", `document.querySelector(".canned-picker [aria-selected=true] .canned-title")?.textContent === "My sign-off"`)
	agent.screenshot("picker")
	agent.do(chromedp.KeyEvent(kb.Enter))
	reply := reset + "\n\nKind regards,\nAlex Agent\nAgentDesk Demo Support"
	agent.waitJS("the sign-off after the reset text", `document.querySelector(".composer textarea").value === `+js(reply))
	agent.waitJS("the picker closed, the composer focused", `document.querySelector(".canned-picker") === null && document.activeElement === document.querySelector(".composer textarea")`)
	agent.do(chromedp.Click(chromedp.CSS(".composer button[type=submit]")))
	agent.waitJS("the sent reply", `document.querySelector(".msg.dir-out")?.textContent.includes("AgentDesk Demo Support")`)
	agent.screenshot("replied")

	// A personal canned response made in the management dialog is offered
	// at once.
	agent.do(chromedp.Click(chromedp.CSS("[data-testid=canned-button]")))
	agent.do(chromedp.Click(chromedp.CSS(".canned-picker-foot button")))
	agent.waitJS("the management dialog", `document.querySelector("dialog.canned-manager")?.open`)
	agent.waitJS("the shared and own responses listed", `[...document.querySelectorAll("dialog.canned-manager [data-testid=canned-row]")].length >= 4`)
	agent.eval(`[...document.querySelectorAll("dialog.canned-manager button")].find(b => b.textContent === "New canned response").click(), true`)
	agent.do(
		chromedp.SendKeys(chromedp.ID("canned-title"), "Parts ordered"),
		chromedp.SendKeys(chromedp.ID("canned-shortcut"), "parts"),
		chromedp.SendKeys(chromedp.ID("canned-body"), "Hi {{customer.first_name}}, the parts for ticket {{ticket.id}} are on order."),
	)
	agent.screenshot("manage-new")
	agent.do(chromedp.Click(chromedp.CSS("dialog.canned-manager button[type=submit]")))
	agent.waitJS("the new response in the list", `[...document.querySelectorAll("dialog.canned-manager [data-testid=canned-row]")].some(r => r.textContent.includes("Parts ordered"))`)
	agent.eval(`[...document.querySelectorAll("dialog.canned-manager button")].find(b => b.textContent === "Close").click(), true`)
	agent.waitJS("the dialog closed", `document.querySelector("dialog.canned-manager") === null`)

	// A custom status, grouped under its base status.
	agent.waitJS("the custom status under Pending", `document.querySelector('[data-testid=status] optgroup[label="Pending"] option[value="custom:waiting for parts"]') !== null`)
	agent.choose("[data-testid=status]", "custom:waiting for parts")
	agent.waitJS("the custom status shown", `document.querySelector("[data-testid=status]").value === "custom:waiting for parts"`)

	// An internal note with a file: an empty file is refused with the
	// server's message, a photo is stored and shown as a thumbnail.
	files := t.TempDir()
	empty := filepath.Join(files, "empty.txt")
	photo := filepath.Join(files, "broken-rake.png")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(photo, pngImage(t), 0o644); err != nil {
		t.Fatal(err)
	}
	agent.do(chromedp.Click(chromedp.CSS(`.composer-tabs [role=tab]:nth-child(2)`)))
	agent.do(chromedp.SendKeys(textarea, "/parts"))
	agent.waitJS("the new shortcut in the / menu", `document.querySelector("[data-testid=canned-slash] [aria-selected=true] .canned-title")?.textContent === "Parts ordered"`)
	menuKey(agent, "Tab")
	note := fmt.Sprintf("Hi Carla, the parts for ticket %d are on order.", tk.ID)
	agent.waitJS("the rendered note", `document.querySelector(".composer textarea").value === `+js(note))
	agent.do(chromedp.SetUploadFiles(chromedp.CSS("[data-testid=attach-input]"), []string{empty}))
	agent.waitJS("the server's refusal in the composer", `document.querySelector("[data-testid=upload-error]")?.textContent.startsWith("empty.txt: ")`)
	agent.screenshot("upload-refused")
	agent.do(chromedp.Click(chromedp.CSS(`[aria-label="Remove empty.txt"]`)))
	agent.do(chromedp.SetUploadFiles(chromedp.CSS("[data-testid=attach-input]"), []string{photo}))
	agent.waitJS("the stored upload", `document.querySelector("[data-testid=upload].upload-done")?.textContent.includes("broken-rake.png")`)
	if got := string(agent.eval(`document.querySelectorAll("[data-testid=upload]").length`)); got != "1" {
		t.Errorf("uploads listed after removing the refused one: %s", got)
	}
	agent.do(chromedp.Click(chromedp.CSS(".composer button[type=submit]")))
	agent.waitJS("the note", `document.querySelector(".msg.dir-internal")?.textContent.includes("are on order")`)
	agent.waitJS("the photo's thumbnail, loaded", `document.querySelector(".msg.dir-internal img.thumb")?.naturalWidth === 40`)
	agent.waitJS("the download link", `document.querySelector(".msg.dir-internal a[download]")?.textContent.includes("broken-rake.png")`)
	agent.screenshot("note")

	// What the database holds.
	var status, custom string
	if err := db.QueryRow(ctx, `SELECT status, coalesce(custom_status, '') FROM tickets WHERE account_id = $1 AND id = $2`, srv.Account, tk.ID).Scan(&status, &custom); err != nil {
		t.Fatal(err)
	}
	if status != "pending" || custom != "waiting for parts" {
		t.Errorf("ticket status %s/%q, want pending/\"waiting for parts\"", status, custom)
	}
	rows, err := db.Query(ctx, `SELECT kind, direction, body FROM messages WHERE account_id = $1 AND ticket_id = $2 AND direction <> 'in' ORDER BY id`, srv.Account, tk.ID)
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
	want := []string{"email/out/" + reply, "note/internal/" + note}
	if strings.Join(got, "\n---\n") != strings.Join(want, "\n---\n") {
		t.Errorf("messages in the database:\n%s\nwant:\n%s", strings.Join(got, "\n---\n"), strings.Join(want, "\n---\n"))
	}
	var title, body, shortcut string
	var owner *int64
	if err := db.QueryRow(ctx, `SELECT title, body, shortcut, agent_id FROM canned_responses WHERE account_id = $1 AND shortcut = 'parts'`, srv.Account).
		Scan(&title, &body, &shortcut, &owner); err != nil {
		t.Fatalf("the new canned response: %v", err)
	}
	if title != "Parts ordered" || owner == nil || *owner != creds.AgentID || !strings.Contains(body, "{{ticket.id}}") {
		t.Errorf("new canned response: %q %q owner %v", title, body, deref(owner))
	}
	var filename, contentType string
	var size int64
	err = db.QueryRow(ctx, `SELECT u.filename, u.content_type, u.size FROM uploads u JOIN messages m ON m.account_id = u.account_id AND m.id = u.message_id
		WHERE u.account_id = $1 AND m.ticket_id = $2 AND m.kind = 'note'`, srv.Account, tk.ID).Scan(&filename, &contentType, &size)
	if err != nil {
		t.Fatalf("the note's file: %v", err)
	}
	if filename != "broken-rake.png" || contentType != "image/png" || size != int64(len(pngImage(t))) {
		t.Errorf("the note's file: %s %s %d bytes", filename, contentType, size)
	}
	var unlinked int
	db.QueryRow(ctx, `SELECT count(*) FROM uploads WHERE account_id = $1 AND message_id IS NULL`, srv.Account).Scan(&unlinked)
	if unlinked != 0 {
		t.Errorf("%d uploads left on no message", unlinked)
	}
	// The server answers what the page showed.
	res, err := http.Get(srv.URL + "/api/v1/canned-responses")
	if err == nil {
		res.Body.Close()
		if res.StatusCode != http.StatusUnauthorized {
			t.Errorf("canned responses without a session: %s", res.Status)
		}
	}
}

// menuKey presses key in the composer's textarea while the "/" menu is
// open. A key sent through the DevTools protocol arrives as a key-down and
// a separate character event, and Chromium inserts the character even when
// the page cancelled the key-down, which a person's key press never does;
// so the key-down is dispatched in the page, the way the menu sees it.
func menuKey(b *browser, key string) {
	b.t.Helper()
	b.eval(`document.querySelector(".composer textarea").dispatchEvent(new KeyboardEvent("keydown", {key: ` + js(key) + `, bubbles: true, cancelable: true})), true`)
}

// pngImage is a 40×30 picture of a rake's handle.
func pngImage(t *testing.T) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 40, 30))
	for x := 0; x < 40; x++ {
		for y := 0; y < 30; y++ {
			c := color.RGBA{R: 0x2b, G: 0x41, B: 0x66, A: 0xff}
			if y > 12 && y < 17 {
				c = color.RGBA{R: 0xb2, G: 0x6b, B: 0x00, A: 0xff}
			}
			img.Set(x, y, c)
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
