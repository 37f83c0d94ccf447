package web

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"agentdesk/agentdesk"
)

// cannedTeams puts agent in team "Support" and agent2 in team "Sales", and
// returns their ids.
func (e *testEnv) cannedTeams() (support, sales int64) {
	e.t.Helper()
	for _, tm := range []struct {
		name   string
		member string
		id     *int64
	}{{"Support", "agent", &support}, {"Sales", "agent2", &sales}} {
		res := e.clients["admin"].do(e.t, "POST", "/api/v1/teams", map[string]any{"name": tm.name, "member_ids": []int64{e.ids[tm.member]}})
		if res.status != http.StatusCreated {
			e.t.Fatalf("team %s: %d %s", tm.name, res.status, res.body)
		}
		var team agentdesk.Team
		res.json(e.t, &team)
		*tm.id = team.ID
	}
	return support, sales
}

func (e *testEnv) canned(who string, body map[string]any) cannedView {
	e.t.Helper()
	res := e.clients[who].do(e.t, "POST", "/api/v1/canned-responses", body)
	if res.status != http.StatusCreated {
		e.t.Fatalf("%s creates canned response %v: %d %s", who, body, res.status, res.body)
	}
	var c cannedView
	res.json(e.t, &c)
	return c
}

// cannedTitles lists the titles who sees for query (a query string).
func (e *testEnv) cannedTitles(who, query string) string {
	e.t.Helper()
	res := e.clients[who].do(e.t, "GET", "/api/v1/canned-responses"+query, nil)
	if res.status != http.StatusOK {
		e.t.Fatalf("%s lists canned responses: %d %s", who, res.status, res.body)
	}
	var l List[cannedView]
	res.json(e.t, &l)
	var out []string
	for _, c := range l.Items {
		out = append(out, c.Title)
	}
	return strings.Join(out, "|")
}

// TestCannedCreateByRole: agents keep personal responses; only supervisors
// and admins share them with a team or the account; an API token, which is
// nobody, cannot own a personal one.
func TestCannedCreateByRole(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	support, _ := e.cannedTeams()
	cases := []struct {
		who    string
		body   map[string]any
		status int
		field  string
		scope  agentdesk.CannedScope
	}{
		{"agent", map[string]any{}, 201, "", agentdesk.CannedPersonal},
		{"agent", map[string]any{"scope": "personal"}, 201, "", agentdesk.CannedPersonal},
		{"agent", map[string]any{"scope": "team", "team_id": support}, 403, "scope", ""},
		{"agent", map[string]any{"scope": "account"}, 403, "scope", ""},
		{"supervisor", map[string]any{}, 201, "", agentdesk.CannedPersonal},
		{"supervisor", map[string]any{"scope": "team", "team_id": support}, 201, "", agentdesk.CannedTeam},
		{"supervisor", map[string]any{"scope": "account"}, 201, "", agentdesk.CannedAccount},
		{"admin", map[string]any{"scope": "account"}, 201, "", agentdesk.CannedAccount},
		{"token", map[string]any{"scope": "account"}, 201, "", agentdesk.CannedAccount},
		{"token", map[string]any{}, 422, "scope", ""},
		{"anon", map[string]any{}, 401, "", ""},
	}
	for i, c := range cases {
		t.Run(fmt.Sprintf("%s-%v", c.who, c.body["scope"]), func(t *testing.T) {
			c.body["title"] = fmt.Sprintf("Greeting %d", i)
			c.body["body"] = "Hello {{customer.first_name}},"
			c.body["shortcut"] = fmt.Sprintf("hello-%d", i)
			res := e.clients[c.who].do(t, "POST", "/api/v1/canned-responses", c.body)
			if res.status != c.status {
				t.Fatalf("status %d, want %d: %s", res.status, c.status, res.body)
			}
			if c.status != 201 {
				if _, field := res.errorKind(t); field != c.field {
					t.Errorf("field %q, want %q", field, c.field)
				}
				return
			}
			var got cannedView
			res.json(t, &got)
			if got.Scope != c.scope {
				t.Errorf("scope %s, want %s", got.Scope, c.scope)
			}
			if (got.AgentID != nil) != (c.scope == agentdesk.CannedPersonal) || (c.scope == agentdesk.CannedPersonal && *got.AgentID != e.ids[c.who]) {
				t.Errorf("agent_id %v for scope %s", got.AgentID, c.scope)
			}
			if c.who != "token" && (got.CreatedBy == nil || *got.CreatedBy != e.ids[c.who]) {
				t.Errorf("created_by %v, want %d", got.CreatedBy, e.ids[c.who])
			}
		})
	}
}

// TestCannedVisibilityAndChanges: who sees which response, and who may
// change or delete it; shared changes are audited, personal ones are not.
func TestCannedVisibilityAndChanges(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	support, sales := e.cannedTeams()
	account := e.canned("supervisor", map[string]any{"title": "A account", "body": "For everyone", "scope": "account"})
	supportOnly := e.canned("supervisor", map[string]any{"title": "B support", "body": "For support", "scope": "team", "team_id": support})
	salesOnly := e.canned("admin", map[string]any{"title": "C sales", "body": "For sales", "scope": "team", "team_id": sales})
	mine := e.canned("agent", map[string]any{"title": "D agent's own", "body": "Mine"})
	e.canned("agent2", map[string]any{"title": "E agent2's own", "body": "Theirs"})

	for who, want := range map[string]string{
		"agent":      "A account|B support|D agent's own",
		"agent2":     "A account|C sales|E agent2's own",
		"supervisor": "A account|B support|C sales",
		"admin":      "A account|B support|C sales",
		"token":      "A account|B support|C sales",
	} {
		if got := e.cannedTitles(who, ""); got != want {
			t.Errorf("%s sees %q, want %q", who, got, want)
		}
	}

	path := func(c cannedView) string { return fmt.Sprintf("/api/v1/canned-responses/%d", c.ID) }
	steps := []struct {
		who, method, path string
		body              any
		status            int
	}{
		// Out of sight is 404, whatever the role.
		{"agent2", "GET", path(mine), nil, 404},
		{"agent", "GET", path(salesOnly), nil, 404},
		{"supervisor", "PATCH", path(mine), map[string]any{"title": "Taken over"}, 404},
		{"admin", "DELETE", path(mine), nil, 404},
		{"agent", "POST", path(salesOnly) + "/render", map[string]any{"ticket_id": 1}, 404},
		// In sight but not theirs to change is 403.
		{"agent", "PATCH", path(account), map[string]any{"title": "Mine now"}, 403},
		{"agent", "DELETE", path(supportOnly), nil, 403},
		// Owners and supervisors change what is theirs to change.
		{"agent", "GET", path(mine), nil, 200},
		{"agent", "PATCH", path(mine), map[string]any{"body": "Mine, edited", "shortcut": "/Mine"}, 200},
		{"supervisor", "PATCH", path(salesOnly), map[string]any{"title": "C sales (edited)"}, 200},
		{"admin", "PATCH", path(account), map[string]any{"body": "For everyone, {{agent.name}}"}, 200},
		{"agent", "DELETE", path(mine), nil, 204},
		{"agent", "GET", path(mine), nil, 404},
		{"supervisor", "DELETE", path(supportOnly), nil, 204},
	}
	for _, s := range steps {
		res := e.clients[s.who].do(t, s.method, s.path, s.body)
		if res.status != s.status {
			t.Errorf("%s %s %s: %d, want %d: %s", s.who, s.method, s.path, res.status, s.status, res.body)
		}
	}
	var c cannedView
	e.clients["supervisor"].do(t, "GET", path(salesOnly), nil).json(t, &c)
	if c.Title != "C sales (edited)" || c.Scope != agentdesk.CannedTeam || c.TeamID == nil || *c.TeamID != sales || !c.UpdatedAt.After(c.CreatedAt) {
		t.Errorf("after the patch: %+v", c)
	}
	var shortcut string
	if err := e.store.DB().QueryRow(context.Background(), `SELECT shortcut FROM canned_responses WHERE id = $1`, mine.ID).Scan(&shortcut); err == nil {
		t.Errorf("deleted personal response still stored (shortcut %q)", shortcut)
	}

	// The audit log holds the shared changes only.
	rows, err := e.store.DB().Query(context.Background(), `SELECT action, target FROM audit_log WHERE account_id = $1 AND action LIKE 'canned_response.%' ORDER BY id`, e.account)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var a, tg string
		rows.Scan(&a, &tg)
		got = append(got, a+" "+tg)
	}
	want := []string{
		fmt.Sprintf("canned_response.create canned_response:%d", account.ID),
		fmt.Sprintf("canned_response.create canned_response:%d", supportOnly.ID),
		fmt.Sprintf("canned_response.create canned_response:%d", salesOnly.ID),
		fmt.Sprintf("canned_response.update canned_response:%d", salesOnly.ID),
		fmt.Sprintf("canned_response.update canned_response:%d", account.ID),
		fmt.Sprintf("canned_response.delete canned_response:%d", supportOnly.ID),
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("audit log:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestCannedBadInput: malformed, oversize, unknown fields and invalid values
// are refused naming the field; a shortcut is unique within its scope.
func TestCannedBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	support, _ := e.cannedTeams()
	ok := func(extra map[string]any) map[string]any {
		b := map[string]any{"title": "Refund", "body": "Your refund is on its way."}
		for k, v := range extra {
			b[k] = v
		}
		return b
	}
	cases := []struct {
		name   string
		who    string
		body   any
		status int
		kind   agentdesk.Kind
		field  string
	}{
		{"malformed JSON", "agent", `{"title": "x",`, 400, agentdesk.Invalid, ""},
		{"not an object", "agent", `["title"]`, 400, agentdesk.Invalid, ""},
		{"two objects", "agent", `{"title":"a","body":"b"} {}`, 400, agentdesk.Invalid, ""},
		{"unknown field", "agent", ok(map[string]any{"colour": "red"}), 400, agentdesk.Invalid, "colour"},
		{"agent_id is not a field", "agent", ok(map[string]any{"agent_id": 1}), 400, agentdesk.Invalid, "agent_id"},
		{"title of the wrong type", "agent", `{"title": 5, "body": "b"}`, 400, agentdesk.Invalid, "title"},
		{"no title", "agent", ok(map[string]any{"title": "  "}), 422, agentdesk.Invalid, "title"},
		{"long title", "agent", ok(map[string]any{"title": strings.Repeat("t", 201)}), 422, agentdesk.Invalid, "title"},
		{"no body", "agent", ok(map[string]any{"body": "\n "}), 422, agentdesk.Invalid, "body"},
		{"body over 10,000 characters", "agent", ok(map[string]any{"body": strings.Repeat("é", 10001)}), 422, agentdesk.Invalid, "body"},
		{"request over the size limit", "agent", ok(map[string]any{"body": strings.Repeat("x", 70000)}), 413, agentdesk.TooLarge, ""},
		{"unknown placeholder", "agent", ok(map[string]any{"body": "Hi {{customer.name}}, {{ order.total }}"}), 422, agentdesk.Invalid, "body"},
		{"shortcut with a space", "agent", ok(map[string]any{"shortcut": "re fund"}), 422, agentdesk.Invalid, "shortcut"},
		{"shortcut with capitals is lowered, with a dot refused", "agent", ok(map[string]any{"shortcut": "Re.fund"}), 422, agentdesk.Invalid, "shortcut"},
		{"shortcut of 33 characters", "agent", ok(map[string]any{"shortcut": strings.Repeat("r", 33)}), 422, agentdesk.Invalid, "shortcut"},
		{"unknown scope", "supervisor", ok(map[string]any{"scope": "galaxy"}), 422, agentdesk.Invalid, "scope"},
		{"team scope without a team", "supervisor", ok(map[string]any{"scope": "team"}), 422, agentdesk.Invalid, "team_id"},
		{"personal with a team", "agent", ok(map[string]any{"team_id": support}), 422, agentdesk.Invalid, "team_id"},
		{"no such team", "supervisor", ok(map[string]any{"scope": "team", "team_id": 999999}), 422, agentdesk.Invalid, "team_id"},
		{"body of exactly 10,000 characters", "agent", ok(map[string]any{"body": strings.Repeat("é", 10000), "shortcut": "long"}), 201, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := e.clients[c.who].do(t, "POST", "/api/v1/canned-responses", c.body)
			if res.status != c.status {
				t.Fatalf("status %d, want %d: %.300s", res.status, c.status, res.body)
			}
			if c.status >= 400 {
				kind, field := res.errorKind(t)
				if kind != c.kind || field != c.field {
					t.Errorf("error %s/%q, want %s/%q: %.300s", kind, field, c.kind, c.field, res.body)
				}
			}
		})
	}

	// Shortcuts: unique per scope, not across scopes.
	dupes := []struct {
		who    string
		body   map[string]any
		status int
	}{
		{"agent", ok(map[string]any{"shortcut": "refund"}), 201},
		{"agent", ok(map[string]any{"shortcut": "REFUND"}), 409},
		{"agent2", ok(map[string]any{"shortcut": "refund"}), 201},
		{"supervisor", ok(map[string]any{"shortcut": "refund", "scope": "account"}), 201},
		{"admin", ok(map[string]any{"shortcut": "refund", "scope": "account"}), 409},
		{"supervisor", ok(map[string]any{"shortcut": "refund", "scope": "team", "team_id": support}), 201},
		{"supervisor", ok(map[string]any{"shortcut": "refund", "scope": "team", "team_id": support}), 409},
		// No shortcut is no clash.
		{"agent", ok(nil), 201},
		{"agent", ok(nil), 201},
	}
	for i, d := range dupes {
		res := e.clients[d.who].do(t, "POST", "/api/v1/canned-responses", d.body)
		if res.status != d.status {
			t.Fatalf("duplicate %d: %d, want %d: %s", i, res.status, d.status, res.body)
		}
		if d.status == 409 {
			if kind, field := res.errorKind(t); kind != agentdesk.Conflict || field != "shortcut" {
				t.Errorf("duplicate %d: %s/%q, want conflict/shortcut", i, kind, field)
			}
		}
	}

	// The same rules hold for a change.
	other := e.canned("agent", ok(map[string]any{"shortcut": "other"}))
	path := fmt.Sprintf("/api/v1/canned-responses/%d", other.ID)
	for _, c := range []struct {
		body   any
		status int
		field  string
	}{
		{map[string]any{"shortcut": "refund"}, 409, "shortcut"},
		{map[string]any{"body": "{{ticket.total}}"}, 422, "body"},
		{map[string]any{"title": ""}, 422, "title"},
		{map[string]any{"scope": "account"}, 400, "scope"},
		{`{"title": `, 400, ""},
		{map[string]any{"body": strings.Repeat("x", 10001)}, 422, "body"},
	} {
		res := e.clients["agent"].do(t, "PATCH", path, c.body)
		if res.status != c.status {
			t.Errorf("patch %v: %d, want %d: %.200s", c.body, res.status, c.status, res.body)
			continue
		}
		if _, field := res.errorKind(t); field != c.field {
			t.Errorf("patch %v: field %q, want %q", c.body, field, c.field)
		}
	}
	for _, p := range []string{"/api/v1/canned-responses/abc", "/api/v1/canned-responses/0", "/api/v1/canned-responses/99999"} {
		if res := e.clients["agent"].do(t, "GET", p, nil); res.status != 404 {
			t.Errorf("GET %s: %d, want 404", p, res.status)
		}
	}
}

// TestCannedListQueryAndPages: q narrows by title, shortcut or body (its
// LIKE wildcards taken literally), and pages follow the title order to the
// end without repeats.
func TestCannedListQueryAndPages(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, c := range []map[string]any{
		{"title": "Refund approved", "body": "We refunded your order.", "shortcut": "refund"},
		{"title": "Delivery delay", "body": "Your parcel is late, sorry.", "shortcut": "late"},
		{"title": "Discount", "body": "Here is 10% off your next order.", "shortcut": "promo"},
		{"title": "apology", "body": "We are sorry for the trouble.", "shortcut": "sorry"},
		{"title": "Closing", "body": "Anything else?", "shortcut": "bye"},
	} {
		e.canned("agent", c)
	}
	for q, want := range map[string]string{
		"":           "apology|Closing|Delivery delay|Discount|Refund approved",
		"?q=ORDER":   "Discount|Refund approved",
		"?q=ref":     "Refund approved",
		"?q=/pro":    "Discount",
		"?q=sorry":   "apology|Delivery delay",
		"?q=10%25":   "Discount",
		"?q=%25":     "Discount",
		"?q=_":       "",
		"?q=nothing": "",
	} {
		if got := e.cannedTitles("agent", q); got != want {
			t.Errorf("list%s: %q, want %q", q, got, want)
		}
	}
	var seen []string
	cursor := ""
	for i := 0; i < 10; i++ {
		res := e.clients["agent"].do(t, "GET", "/api/v1/canned-responses?limit=2&cursor="+cursor, nil)
		var l List[cannedView]
		res.json(t, &l)
		if len(l.Items) > 2 {
			t.Fatalf("page of %d", len(l.Items))
		}
		for _, c := range l.Items {
			seen = append(seen, c.Title)
		}
		if cursor = l.NextCursor; cursor == "" {
			break
		}
	}
	if got := strings.Join(seen, "|"); got != "apology|Closing|Delivery delay|Discount|Refund approved" {
		t.Errorf("paged: %s", got)
	}
	for _, q := range []string{"?cursor=!!", "?limit=0", "?q=" + strings.Repeat("q", 201)} {
		res := e.clients["agent"].do(t, "GET", "/api/v1/canned-responses"+q, nil)
		if res.status != 422 {
			t.Errorf("list%.40s: %d, want 422", q, res.status)
		}
	}
}

// TestCannedRender fills the placeholders for a ticket the caller sees, and
// refuses a ticket out of sight as if it did not exist.
func TestCannedRender(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	cust := &agentdesk.Customer{Name: "Carla Maria Customer", Identities: []agentdesk.Identity{
		{Kind: agentdesk.IdentityPhone, Value: "+4915112345678"}, {Kind: agentdesk.IdentityEmail, Value: "carla@example.org"}}}
	if err := e.store.CreateCustomer(ctx, e.account, cust); err != nil {
		t.Fatal(err)
	}
	tk := e.deskTicket("agent", map[string]any{"subject": "Refund for order 1001", "customer_id": cust.ID})
	res := e.clients["admin"].do(t, "POST", "/api/v1/teams", map[string]any{"name": "Legal", "private": true, "member_ids": []int64{e.ids["agent2"]}})
	var legal agentdesk.Team
	res.json(t, &legal)
	hidden := e.deskTicket("agent2", map[string]any{"subject": "Private", "customer_id": cust.ID, "team_id": legal.ID})
	nameless := e.deskTicket("agent", map[string]any{"subject": "No name", "customer_id": e.deskCustomer("")})

	c := e.canned("supervisor", map[string]any{"scope": "account", "title": "Refund", "shortcut": "refund",
		"body": "Hi {{customer.first_name}} ({{ customer.name }}, {{customer.email}}),\nyour ticket #{{ticket.id}} \"{{ticket.subject}}\" is done.\n{{agent.name}} {{not closed}"})
	render := fmt.Sprintf("/api/v1/canned-responses/%d/render", c.ID)
	cases := []struct {
		who    string
		body   any
		status int
		want   string
		field  string
	}{
		{"agent", map[string]any{"ticket_id": tk.ID}, 200,
			fmt.Sprintf("Hi Carla (Carla Maria Customer, carla@example.org),\nyour ticket #%d \"Refund for order 1001\" is done.\nagent {{not closed}", tk.ID), ""},
		{"supervisor", map[string]any{"ticket_id": tk.ID}, 200,
			fmt.Sprintf("Hi Carla (Carla Maria Customer, carla@example.org),\nyour ticket #%d \"Refund for order 1001\" is done.\nsupervisor {{not closed}", tk.ID), ""},
		{"token", map[string]any{"ticket_id": nameless.ID}, 200,
			fmt.Sprintf("Hi  (, ),\nyour ticket #%d \"No name\" is done.\n {{not closed}", nameless.ID), ""},
		{"agent", map[string]any{"ticket_id": hidden.ID}, 404, "", ""},
		{"agent2", map[string]any{"ticket_id": hidden.ID}, 200, "", ""},
		{"agent", map[string]any{"ticket_id": 999999}, 404, "", ""},
		{"agent", map[string]any{}, 422, "", "ticket_id"},
		{"agent", map[string]any{"ticket_id": "7"}, 400, "", "ticket_id"},
		{"agent", map[string]any{"ticket_id": tk.ID, "extra": 1}, 400, "", "extra"},
	}
	for i, cs := range cases {
		res := e.clients[cs.who].do(t, "POST", render, cs.body)
		if res.status != cs.status {
			t.Errorf("case %d (%s): %d, want %d: %s", i, cs.who, res.status, cs.status, res.body)
			continue
		}
		if cs.status != 200 {
			if _, field := res.errorKind(t); field != cs.field {
				t.Errorf("case %d: field %q, want %q", i, field, cs.field)
			}
			continue
		}
		var out renderedCanned
		res.json(t, &out)
		if cs.want != "" && out.Body != cs.want {
			t.Errorf("case %d (%s): rendered\n%q\nwant\n%q", i, cs.who, out.Body, cs.want)
		}
	}
}
