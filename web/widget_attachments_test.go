package web

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"agentdesk/agentdesk"
	"agentdesk/web/hub"
)

func (v *visitor) upload(name string, data []byte) response {
	v.t.Helper()
	ct, body := multipartFile(v.t, name, "", data)
	return v.c.do(v.t, "POST", "/api/v1/widget/acme/attachments", body, "Content-Type", ct, "Origin", shopOrigin, "Authorization", "Bearer "+v.token)
}

func (v *visitor) get(path string) response {
	v.t.Helper()
	return v.c.do(v.t, "GET", path, nil, "Origin", shopOrigin, "Authorization", "Bearer "+v.token)
}

// A visitor sends a file in its chat and the desk gets it; the agent sends
// one back and the visitor downloads it; nobody else's visitor can, and
// files of internal notes never reach the visitor.
func TestWidgetAttachments(t *testing.T) {
	t.Parallel()
	ct := newChatEnv(t)
	agent := ct.clients["agent"]
	v := ct.visitor(t, "")
	v.connect(ct)

	// No chat yet: no uploads.
	if res := v.upload("early.png", pngBytes); res.status != http.StatusConflict {
		t.Errorf("upload before a chat: %d %s", res.status, res.body)
	}
	started := v.startChat(map[string]any{"name": "Pia", "email": "pia@example.org", "queue_id": ct.queueID, "body": "My parcel is damaged"})
	desk := ct.agentSocket(t, "agent", hub.TicketStream(started.TicketID))

	// The preflight allows the download's GET.
	pre := v.c.do(t, "OPTIONS", "/api/v1/widget/acme/attachments/1/content", nil, "Origin", shopOrigin, "Access-Control-Request-Method", "GET",
		"Access-Control-Request-Headers", "authorization")
	if pre.status != http.StatusNoContent || !strings.Contains(pre.header.Get("Access-Control-Allow-Methods"), "GET") || pre.header.Get("Access-Control-Allow-Origin") != shopOrigin {
		t.Errorf("preflight: %d %v", pre.status, pre.header)
	}

	res := v.upload("damage.png", pngBytes)
	wantStatus(t, "visitor upload", res, http.StatusCreated)
	if res.header.Get("Access-Control-Allow-Origin") != shopOrigin {
		t.Errorf("upload CORS %v", res.header)
	}
	var photo agentdesk.Attachment
	res.json(t, &photo)
	if photo.URL != fmt.Sprintf("/api/v1/widget/acme/attachments/%d/content", photo.ID) || photo.ContentType != "image/png" {
		t.Errorf("visitor upload answer %+v", photo)
	}
	v.ws.WriteJSON(map[string]any{"type": "chat.send", "id": "f1", "data": map[string]any{"body": "", "client_msg_id": "f1", "attachment_ids": []int64{photo.ID}}}) //nolint:errcheck
	if ack := readFrame(t, v.ws, "ack"); dataOf(ack)["message_id"] == nil {
		t.Fatalf("chat.send with a file: %v", ack)
	}
	f := readFrame(t, desk, MessageCreated)
	atts, _ := dataOf(f)["attachments"].([]any)
	if len(atts) != 1 || atts[0].(map[string]any)["filename"] != "damage.png" {
		t.Fatalf("desk got %v", dataOf(f))
	}
	if res := agent.do(t, "GET", fmt.Sprintf("/api/v1/attachments/%d/content", photo.ID), nil); res.status != 200 || !bytes.Equal(res.body, pngBytes) {
		t.Errorf("agent download of the visitor's file: %d", res.status)
	}
	if res := v.get(photo.URL); res.status != 200 || !bytes.Equal(res.body, pngBytes) || res.header.Get("Access-Control-Allow-Origin") != shopOrigin {
		t.Errorf("visitor download of its own file: %d %v", res.status, res.header)
	}
	// The same file cannot be sent twice.
	v.ws.WriteJSON(map[string]any{"type": "chat.send", "id": "f2", "data": map[string]any{"body": "again", "attachment_ids": []int64{photo.ID}}}) //nolint:errcheck
	if e := readFrame(t, v.ws, "error"); !strings.Contains(fmt.Sprint(dataOf(e)), "attachment_ids") {
		t.Errorf("resent file: %v", e)
	}

	// The agent answers with a file over REST, and notes one.
	up := func(name string, data []byte) agentdesk.Attachment {
		t.Helper()
		res := agent.upload(t, "/api/v1/attachments", name, "", data)
		wantStatus(t, "agent upload", res, http.StatusCreated)
		var a agentdesk.Attachment
		res.json(t, &a)
		return a
	}
	label, secret := up("label.pdf", pdfBytes), up("internal.pdf", []byte("%PDF-1.4 internal"))
	ticketPath := fmt.Sprintf("/api/v1/tickets/%d/messages", started.TicketID)
	wantStatus(t, "reply with file", agent.do(t, "POST", ticketPath, map[string]any{"direction": "out", "body": "Here is a return label", "attachment_ids": []int64{label.ID}}), http.StatusCreated)
	wantStatus(t, "note with file", agent.do(t, "POST", ticketPath, map[string]any{"kind": "note", "body": "fraud check", "attachment_ids": []int64{secret.ID}}), http.StatusCreated)
	got := dataOf(readMessage(t, v.ws, "Here is a return label"))
	if atts, _ := got["attachments"].([]any); len(atts) != 1 || atts[0].(map[string]any)["id"] != float64(label.ID) {
		t.Errorf("visitor got %v", got)
	}
	widgetURL := func(id int64) string { return fmt.Sprintf("/api/v1/widget/acme/attachments/%d/content", id) }
	if res := v.get(widgetURL(label.ID)); res.status != 200 || !bytes.Equal(res.body, pdfBytes) || res.header.Get("Content-Security-Policy") != "sandbox" {
		t.Errorf("visitor download of the agent's file: %d", res.status)
	}
	if res := v.get(widgetURL(secret.ID)); res.status != 404 {
		t.Errorf("visitor download of a note's file: %d", res.status)
	}

	// Over the agent's websocket too.
	sup := ct.agentSocket(t, "supervisor")
	res = ct.clients["supervisor"].upload(t, "/api/v1/attachments", "map.png", "", pngBytes)
	wantStatus(t, "supervisor upload", res, http.StatusCreated)
	var map1 agentdesk.Attachment
	res.json(t, &map1)
	sup.WriteJSON(map[string]any{"type": "chat.send", "id": "a1", "data": map[string]any{"ticket_id": started.TicketID, "body": "Drop-off points", "attachment_ids": []int64{map1.ID}}}) //nolint:errcheck
	got = dataOf(readMessage(t, v.ws, "Drop-off points"))
	if atts, _ := got["attachments"].([]any); len(atts) != 1 {
		t.Errorf("visitor got %v from the agent's websocket", got)
	}

	// Another visitor sees none of it, and cannot upload without a chat;
	// a request without the token is refused.
	other := ct.visitor(t, "")
	for _, id := range []int64{photo.ID, label.ID} {
		if res := other.get(widgetURL(id)); res.status != 404 {
			t.Errorf("another visitor, file %d: %d", id, res.status)
		}
	}
	if res := other.upload("x.png", pngBytes); res.status != http.StatusConflict {
		t.Errorf("another visitor's upload: %d", res.status)
	}
	if res := v.c.do(t, "GET", widgetURL(photo.ID), nil, "Origin", shopOrigin); res.status != http.StatusUnauthorized {
		t.Errorf("no token: %d", res.status)
	}

	// Too large, or too many: refused, nothing stored.
	before := ct.deskCount(`SELECT count(*) FROM uploads`)
	res = v.upload("big.bin", bytes.Repeat([]byte("z"), DefaultVisitorAttachmentMaxBytes+1))
	if kind, field := res.errorKind(t); res.status != http.StatusRequestEntityTooLarge || field != "file" {
		t.Errorf("oversize visitor upload: %d %s %s", res.status, kind, field)
	}
	if n := ct.deskCount(`SELECT count(*) FROM uploads`); n != before {
		t.Errorf("uploads %d → %d after an oversize upload", before, n)
	}
	limited := false
	for i := 0; i < 25 && !limited; i++ {
		res := v.upload(fmt.Sprintf("n%d.txt", i), []byte(fmt.Sprint("note ", i)))
		limited = res.status == http.StatusTooManyRequests && res.header.Get("Retry-After") != ""
	}
	if !limited {
		t.Error("a visitor's uploads are not rate limited")
	}

	// After a reload the chat shows the files again.
	again := ct.visitor(t, v.id)
	if again.session.Chat == nil {
		t.Fatal("no chat after reload")
	}
	var files []string
	for _, m := range again.session.Chat.Messages {
		for _, a := range m.Attachments {
			files = append(files, a.Filename)
		}
	}
	if strings.Join(files, ",") != "damage.png,label.pdf,map.png" {
		t.Errorf("reloaded chat files %v", files)
	}
}
