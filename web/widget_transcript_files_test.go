package web

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"agentdesk/agentdesk"
)

// The emailed transcript names the files of each message (no links: they
// would need the widget's token); files of internal notes stay out.
func TestWidgetTranscriptListsFiles(t *testing.T) {
	t.Parallel()
	ct := newChatEnv(t)
	agent := ct.clients["agent"]
	v := ct.visitor(t, "")
	v.connect(ct)
	started := v.startChat(map[string]any{"name": "Pia", "email": "pia@example.org", "queue_id": ct.queueID, "body": "My parcel is damaged"})

	res := v.upload("damage.png", pngBytes)
	wantStatus(t, "visitor upload", res, http.StatusCreated)
	var photo agentdesk.Attachment
	res.json(t, &photo)
	v.ws.WriteJSON(map[string]any{"type": "chat.send", "id": "f1", "data": map[string]any{"body": "", "client_msg_id": "f1", "attachment_ids": []int64{photo.ID}}}) //nolint:errcheck
	if ack := readFrame(t, v.ws, "ack"); dataOf(ack)["message_id"] == nil {
		t.Fatalf("chat.send with a file: %v", ack)
	}
	up := func(name string, data []byte) agentdesk.Attachment {
		t.Helper()
		res := agent.upload(t, "/api/v1/attachments", name, "", data)
		wantStatus(t, "agent upload", res, http.StatusCreated)
		var a agentdesk.Attachment
		res.json(t, &a)
		return a
	}
	label, form, secret := up("label.pdf", pdfBytes), up("claim form.pdf", []byte("%PDF-1.4 claim")), up("internal.pdf", []byte("%PDF-1.4 internal"))
	msgs := fmt.Sprintf("/api/v1/tickets/%d/messages", started.TicketID)
	wantStatus(t, "reply with files", agent.do(t, "POST", msgs, map[string]any{"direction": "out", "body": "Label and form", "attachment_ids": []int64{label.ID, form.ID}}), http.StatusCreated)
	wantStatus(t, "note with file", agent.do(t, "POST", msgs, map[string]any{"kind": "note", "body": "fraud check", "attachment_ids": []int64{secret.ID}}), http.StatusCreated)

	wantStatus(t, "transcript", v.post("/chat/transcript", map[string]any{"email": "pia@example.org"}), http.StatusAccepted)
	var transcript string
	if err := ct.store.DB().QueryRow(context.Background(), `SELECT body FROM messages WHERE account_id = $1 AND ticket_id = $2 AND meta ? 'transcript_to'`,
		ct.account, started.TicketID).Scan(&transcript); err != nil {
		t.Fatalf("transcript: %v", err)
	}
	for _, want := range []string{"You: My parcel is damaged\n", "You: \n    Attached: damage.png\n", "Label and form\n    Attached: label.pdf\n    Attached: claim form.pdf\n"} {
		if !strings.Contains(transcript, want) {
			t.Errorf("transcript lacks %q:\n%s", want, transcript)
		}
	}
	for _, not := range []string{"internal.pdf", "fraud check", "/attachments/"} {
		if strings.Contains(transcript, not) {
			t.Errorf("transcript shows %q:\n%s", not, transcript)
		}
	}
}
