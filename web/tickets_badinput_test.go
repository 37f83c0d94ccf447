package web

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"agentdesk/agentdesk"
)

// deskTables are the tables the ticket, reason, status, agent and team
// endpoints write.
var deskTables = []string{"tickets", "messages", "reasons", "custom_statuses", "agents", "teams", "team_members", "agent_skills", "skills", "audit_log"}

// deskSnapshot is every row of those tables as text, so a test can prove a
// refused request changed nothing at all.
func (e *testEnv) deskSnapshot() map[string]string {
	e.t.Helper()
	out := map[string]string{}
	for _, table := range deskTables {
		var s string
		err := e.store.DB().QueryRow(context.Background(),
			`SELECT coalesce(string_agg(r::text, E'\n' ORDER BY r::text), '') FROM (SELECT row_to_json(x) AS r FROM `+table+` x) s`).Scan(&s)
		if err != nil {
			e.t.Fatal(err)
		}
		out[table] = s
	}
	return out
}

// TestBadInputIsRefusedAndChangesNothing sends malformed, mistyped, unknown,
// oversize and rule-breaking input to the ticket, message, reason, status,
// agent and team endpoints: each gets a 4xx naming the field (where there is
// one), and every row of the tables those endpoints write is as before.
func TestBadInputIsRefusedAndChangesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	customer := e.deskCustomer("Bad Input")
	cat := e.deskReason(agentdesk.ContactReason, "Billing", nil)
	contact := e.deskReason(agentdesk.ContactReason, "Refund", &cat)
	cancel := e.deskReason(agentdesk.CancellationReason, "Too expensive", nil)
	archived := e.deskReason(agentdesk.ContactReason, "Old", &cat)
	if res := e.clients["admin"].do(t, "PATCH", fmt.Sprintf("/api/v1/reasons/%d", archived), map[string]any{"archived": true}); res.status != 200 {
		t.Fatalf("archive: %d %s", res.status, res.body)
	}
	e.clients["admin"].do(t, "POST", "/api/v1/statuses", map[string]any{"name": "escalated", "maps_to": "open"})
	tk := e.deskTicket("agent", map[string]any{"subject": "Existing", "customer_id": customer, "message": map[string]any{"direction": "in", "body": "hi"}})
	ticket := fmt.Sprintf("/api/v1/tickets/%d", tk.ID)
	agentPath := fmt.Sprintf("/api/v1/agents/%d", e.ids["agent2"])

	valid := func(extra string) string {
		return fmt.Sprintf(`{"subject":"New","customer_id":%d%s}`, customer, extra)
	}
	huge := `{"subject":"` + strings.Repeat("x", maxBody+10) + `"}`
	bigBody := strings.Repeat("y", agentdesk.MaxMessageBody+1)

	cases := []struct {
		name         string
		who          string
		method, path string
		body         string
		status       int
		field        string
	}{
		// Ticket create.
		{"malformed JSON", "agent", "POST", "/api/v1/tickets", `{"subject":`, 400, ""},
		{"not an object", "agent", "POST", "/api/v1/tickets", `[1,2]`, 400, ""},
		{"trailing data", "agent", "POST", "/api/v1/tickets", valid("") + `{}`, 400, ""},
		{"wrong type", "agent", "POST", "/api/v1/tickets", `{"subject":5}`, 400, "subject"},
		{"wrong type id", "agent", "POST", "/api/v1/tickets", `{"subject":"x","customer_id":"12"}`, 400, "customer_id"},
		{"unknown field", "agent", "POST", "/api/v1/tickets", valid(`,"subjekt":"x"`), 400, "subjekt"},
		{"oversize body", "agent", "POST", "/api/v1/tickets", huge, 413, ""},
		{"empty subject", "agent", "POST", "/api/v1/tickets", fmt.Sprintf(`{"subject":" ","customer_id":%d}`, customer), 422, "subject"},
		{"no customer", "agent", "POST", "/api/v1/tickets", `{"subject":"x"}`, 422, "customer_id"},
		{"unknown customer", "agent", "POST", "/api/v1/tickets", `{"subject":"x","customer_id":987654}`, 422, "customer_id"},
		{"unknown status", "agent", "POST", "/api/v1/tickets", valid(`,"status":"bogus"`), 422, "status"},
		{"unknown custom status", "agent", "POST", "/api/v1/tickets", valid(`,"custom_status":"bogus"`), 422, "custom_status"},
		{"status contradicts custom status", "agent", "POST", "/api/v1/tickets", valid(`,"custom_status":"escalated","status":"pending"`), 422, "status"},
		{"unknown priority", "agent", "POST", "/api/v1/tickets", valid(`,"priority":"asap"`), 422, "priority"},
		{"unknown channel", "agent", "POST", "/api/v1/tickets", valid(`,"channel":"fax"`), 422, "channel"},
		{"unknown team", "agent", "POST", "/api/v1/tickets", valid(`,"team_id":987654`), 422, "team_id"},
		{"unknown assignee", "agent", "POST", "/api/v1/tickets", valid(`,"assignee_id":987654`), 422, "assignee_id"},
		{"solved without contact reason", "agent", "POST", "/api/v1/tickets", valid(`,"status":"solved"`), 422, "outcome.contact_reason_id"},
		{"cancellation without reason", "agent", "POST", "/api/v1/tickets", valid(fmt.Sprintf(`,"status":"solved","outcome":{"contact_reason_id":%d,"resolution_code":"cancellation"}`, contact)), 422, "outcome.cancellation_reason_id"},
		{"wrong-kind cancellation reason", "agent", "POST", "/api/v1/tickets", valid(fmt.Sprintf(`,"status":"solved","outcome":{"contact_reason_id":%d,"resolution_code":"cancellation","cancellation_reason_id":%d}`, contact, contact)), 422, "outcome.cancellation_reason_id"},
		{"wrong-kind contact reason", "agent", "POST", "/api/v1/tickets", valid(fmt.Sprintf(`,"outcome":{"contact_reason_id":%d}`, cancel)), 422, "outcome.contact_reason_id"},
		{"unknown resolution code", "agent", "POST", "/api/v1/tickets", valid(`,"outcome":{"resolution_code":"vanished"}`), 422, "outcome.resolution_code"},
		{"first message empty", "agent", "POST", "/api/v1/tickets", valid(`,"message":{"direction":"in","body":""}`), 422, "message.body"},
		{"first message unknown kind", "agent", "POST", "/api/v1/tickets", valid(`,"message":{"kind":"fax","direction":"in","body":"x"}`), 422, "message.kind"},
		{"first message wrong type", "agent", "POST", "/api/v1/tickets", valid(`,"message":{"direction":"in","body":3}`), 400, "message.body"},
		{"first message unknown field", "agent", "POST", "/api/v1/tickets", valid(`,"message":{"direction":"in","body":"x","from":"y"}`), 400, "from"},
		{"first message too big", "agent", "POST", "/api/v1/tickets", valid(`,"message":{"direction":"in","body":"` + bigBody + `"}`), 413, "message.body"},

		// Ticket update.
		{"patch malformed", "agent", "PATCH", ticket, `{`, 400, ""},
		{"patch unknown status", "agent", "PATCH", ticket, `{"status":"bogus"}`, 422, "status"},
		{"patch empty status", "agent", "PATCH", ticket, `{"status":""}`, 422, "status"},
		{"patch unknown custom status", "agent", "PATCH", ticket, `{"custom_status":"bogus"}`, 422, "custom_status"},
		{"patch solve without reason", "agent", "PATCH", ticket, `{"status":"closed"}`, 422, "outcome.contact_reason_id"},
		{"patch cancellation without reason", "agent", "PATCH", ticket, `{"outcome":{"resolution_code":"retained"}}`, 422, "outcome.cancellation_reason_id"},
		{"patch wrong-kind reason", "agent", "PATCH", ticket, fmt.Sprintf(`{"outcome":{"contact_reason_id":%d}}`, cancel), 422, "outcome.contact_reason_id"},
		{"patch category as reason", "agent", "PATCH", ticket, fmt.Sprintf(`{"outcome":{"contact_reason_id":%d}}`, cat), 422, "outcome.contact_reason_id"},
		{"patch archived reason", "agent", "PATCH", ticket, fmt.Sprintf(`{"outcome":{"contact_reason_id":%d}}`, archived), 422, "outcome.contact_reason_id"},
		{"patch assignee wrong type", "agent", "PATCH", ticket, `{"assignee_id":"me"}`, 400, "assignee_id"},
		{"patch reason wrong type", "agent", "PATCH", ticket, `{"outcome":{"contact_reason_id":true}}`, 400, "outcome.contact_reason_id"},
		{"patch unknown field", "agent", "PATCH", ticket, `{"customer_id":5}`, 400, "customer_id"},
		{"patch negative revenue", "agent", "PATCH", ticket, `{"outcome":{"revenue_lost_cents":-1}}`, 422, "outcome.revenue_lost_cents"},
		{"patch too many tags", "agent", "PATCH", ticket, `{"tags":[` + strings.Repeat(`"a",`, 50) + `"b"]}`, 422, "tags"},
		{"patch unknown ticket", "agent", "PATCH", "/api/v1/tickets/987654", `{"priority":"high"}`, 404, ""},

		// Messages.
		{"message empty body", "agent", "POST", ticket + "/messages", `{"direction":"out","body":"  "}`, 422, "body"},
		{"message bad direction", "agent", "POST", ticket + "/messages", `{"direction":"sideways","body":"x"}`, 422, "direction"},
		{"message internal non-note", "agent", "POST", ticket + "/messages", `{"direction":"internal","body":"x"}`, 422, "direction"},
		{"message unknown kind", "agent", "POST", ticket + "/messages", `{"kind":"fax","direction":"in","body":"x"}`, 422, "kind"},
		{"message too big", "agent", "POST", ticket + "/messages", `{"direction":"in","body":"` + bigBody + `"}`, 413, "body"},
		{"message oversize request", "agent", "POST", ticket + "/messages", `{"direction":"in","body":"` + strings.Repeat("z", maxBody) + `"}`, 413, ""},
		{"message unknown ticket", "agent", "POST", "/api/v1/tickets/987654/messages", `{"direction":"in","body":"x"}`, 404, ""},

		// Lists.
		{"list unknown status", "agent", "GET", "/api/v1/tickets?status=open,bogus", "", 422, "status"},
		{"list bad assignee", "agent", "GET", "/api/v1/tickets?assignee=x", "", 422, "assignee"},
		{"list bad unassigned", "agent", "GET", "/api/v1/tickets?unassigned=maybe", "", 422, "unassigned"},
		{"list bad channel", "agent", "GET", "/api/v1/tickets?channel=fax", "", 422, "channel"},
		{"list bad cursor", "agent", "GET", "/api/v1/tickets?cursor=!!", "", 422, "cursor"},
		{"list bad limit", "agent", "GET", "/api/v1/tickets?limit=0", "", 422, "limit"},
		{"reasons bad kind", "agent", "GET", "/api/v1/reasons?kind=other", "", 422, "kind"},

		// Reasons.
		{"reason unknown kind", "admin", "POST", "/api/v1/reasons", `{"kind":"other","name":"x"}`, 422, "kind"},
		{"reason empty name", "admin", "POST", "/api/v1/reasons", `{"kind":"contact","name":""}`, 422, "name"},
		{"reason parent of other kind", "admin", "POST", "/api/v1/reasons", fmt.Sprintf(`{"kind":"cancellation","name":"x","parent_id":%d}`, cat), 422, "parent_id"},
		{"reason three levels deep", "admin", "POST", "/api/v1/reasons", fmt.Sprintf(`{"kind":"contact","name":"x","parent_id":%d}`, contact), 422, "parent_id"},
		{"reason duplicate", "admin", "POST", "/api/v1/reasons", fmt.Sprintf(`{"kind":"contact","name":"REFUND","parent_id":%d}`, cat), 409, "name"},
		{"reason own parent", "admin", "PATCH", fmt.Sprintf("/api/v1/reasons/%d", contact), fmt.Sprintf(`{"parent_id":%d}`, contact), 422, "parent_id"},
		{"reason kind is fixed", "admin", "PATCH", fmt.Sprintf("/api/v1/reasons/%d", contact), `{"kind":"cancellation"}`, 400, "kind"},

		// Custom statuses.
		{"status unknown base", "admin", "POST", "/api/v1/statuses", `{"name":"x","maps_to":"limbo"}`, 422, "maps_to"},
		{"status shadows base", "admin", "POST", "/api/v1/statuses", `{"name":"Open","maps_to":"open"}`, 422, "name"},
		{"status duplicate", "admin", "POST", "/api/v1/statuses", `{"name":"Escalated","maps_to":"open"}`, 409, "name"},

		// Agents.
		{"agent short password", "admin", "POST", "/api/v1/agents", `{"email":"a@example.com","name":"A","password":"short"}`, 422, "password"},
		{"agent bad email", "admin", "POST", "/api/v1/agents", `{"email":"not-an-email","name":"A","password":"long enough pw"}`, 422, "email"},
		{"agent bad role", "admin", "POST", "/api/v1/agents", `{"email":"a@example.com","name":"A","role":"root","password":"long enough pw"}`, 422, "role"},
		{"agent unknown team", "admin", "POST", "/api/v1/agents", `{"email":"a@example.com","name":"A","password":"long enough pw","team_ids":[987654]}`, 422, "team_ids"},
		{"agent duplicate email", "admin", "POST", "/api/v1/agents", `{"email":"AGENT@example.com","name":"A","password":"long enough pw"}`, 409, "email"},
		{"agent bad skill level", "admin", "POST", "/api/v1/agents", `{"email":"a@example.com","name":"A","password":"long enough pw","skills":{"german":9}}`, 422, "skills"},
		{"agent capacity channel", "admin", "PATCH", agentPath, `{"capacity":{"fax":1}}`, 422, "capacity"},
		{"agent capacity type", "admin", "PATCH", agentPath, `{"capacity":{"chat":"three"}}`, 400, "capacity"},
		{"agent patch short password", "admin", "PATCH", agentPath, `{"password":"short"}`, 422, "password"},
		{"agent patch duplicate email", "admin", "PATCH", agentPath, `{"email":"agent@example.com"}`, 409, "email"},

		// Teams.
		{"team empty name", "admin", "POST", "/api/v1/teams", `{"name":""}`, 422, "name"},
		{"team unknown member", "admin", "POST", "/api/v1/teams", `{"name":"T","member_ids":[987654]}`, 422, "member_ids"},
		{"team private wrong type", "admin", "POST", "/api/v1/teams", `{"name":"T","private":"yes"}`, 400, "private"},
	}
	for _, c := range cases {
		before := e.deskSnapshot()
		var body any
		if c.body != "" {
			body = c.body
		}
		res := e.clients[c.who].do(t, c.method, c.path, body)
		if res.status != c.status {
			t.Errorf("%s: status %d, want %d: %.300s", c.name, res.status, c.status, res.body)
			continue
		}
		if c.status >= 400 {
			_, field := res.errorKind(t)
			if field != c.field {
				t.Errorf("%s: field %q, want %q: %.300s", c.name, field, c.field, res.body)
			}
			after := e.deskSnapshot()
			for _, table := range deskTables {
				if before[table] != after[table] {
					t.Errorf("%s: table %s changed", c.name, table)
				}
			}
		}
	}
}
