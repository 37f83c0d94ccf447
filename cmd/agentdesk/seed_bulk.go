package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"agentdesk/agentdesk/postgres"
)

// generate writes one data set into o's account with COPY, in one
// transaction: either all of it is there or none. Row-by-row inserts would
// take an hour for the benchmark set; COPY takes a minute or two.
func generate(ctx context.Context, db *pgxpool.Pool, o *org, g genConfig, bar *progressBar) (string, error) {
	start := time.Now()
	var baseCustomer, baseCompany int
	err := db.QueryRow(ctx, `SELECT (SELECT count(*) FROM customers WHERE account_id = $1), (SELECT count(*) FROM companies WHERE account_id = $1)`,
		o.accountID).Scan(&baseCustomer, &baseCompany)
	if err != nil {
		return "", err
	}
	m := buildModel(rand.New(rand.NewPCG(g.seed, uint64(o.accountID))), o, g, baseCustomer, baseCompany)
	// Messages and orders are drawn from a source of their own while they
	// are copied, so they do not depend on how the model was drawn.
	r := rand.New(rand.NewPCG(g.seed, uint64(o.accountID)+1<<40))
	var n [7]int64
	err = postgres.InTx(ctx, db, func(tx pgx.Tx) error {
		if err := reserveIDs(ctx, tx, m); err != nil {
			return err
		}
		acct := o.accountID
		i := 0
		n[0], err = copyRows(ctx, tx, bar, "companies", len(m.companies), "companies",
			[]string{"id", "account_id", "name", "domain", "created_at", "updated_at"}, func() []any {
				if i == len(m.companies) {
					return nil
				}
				c := &m.companies[i]
				i++
				return []any{c.id, acct, c.name, c.domain, c.createdAt, c.createdAt}
			})
		if err != nil {
			return err
		}
		i = 0
		n[1], err = copyRows(ctx, tx, bar, "customers", len(m.customers), "customers",
			[]string{"id", "account_id", "name", "company_id", "lifecycle_stage", "preferred_channel", "attributes", "created_at", "updated_at"}, func() []any {
				if i == len(m.customers) {
					return nil
				}
				c := &m.customers[i]
				i++
				var company any
				if c.company >= 0 {
					company = m.companies[c.company].id
				}
				lang, country := "en", map[byte]string{'U': "US", 'D': "DE", 'G': "GB"}[c.country]
				if c.country == 'D' {
					lang = "de"
				}
				attrs := fmt.Sprintf(`{"plan":%q,"language":%q,"country":%q,"source":%q}`, c.plan, lang, country,
					[]string{"web", "referral", "campaign", "store", "partner"}[c.idx%5])
				pref := []string{"", "", "email", "chat", "voice", ""}[c.idx%6]
				return []any{c.id, acct, c.first + " " + c.last, company, c.stage, pref, attrs, c.createdAt, g.now}
			})
		if err != nil {
			return err
		}
		n[2], err = copyRows(ctx, tx, bar, "identities", len(m.customers)*2, "identities",
			[]string{"account_id", "customer_id", "kind", "network", "value", "created_at"}, identityRows(r, m, acct))
		if err != nil {
			return err
		}
		n[3], err = copyRows(ctx, tx, bar, "tickets", len(m.tickets), "tickets", ticketColumns, ticketRows(o, m))
		if err != nil {
			return err
		}
		n[4], err = copyRows(ctx, tx, bar, "messages", g.messages, "messages",
			[]string{"account_id", "ticket_id", "customer_id", "kind", "direction", "author_id", "subject", "body", "meta", "created_at"},
			messageRows(r, o, m, g.now))
		if err != nil {
			return err
		}
		n[5], err = copyRows(ctx, tx, bar, "orders", len(m.customers)*2, "orders",
			[]string{"account_id", "external_id", "customer_id", "amount_cents", "currency", "items", "status", "placed_at", "created_at", "updated_at"},
			orderRows(r, m, acct, g.now))
		if err != nil || !g.tasks || len(o.queues) == 0 {
			return err
		}
		n[6], err = copyTasks(ctx, tx, bar, o, buildTasks(r, o, m, g.now))
		return err
	})
	if err != nil {
		return "", err
	}
	// Fresh statistics, so the planner picks the indexes right away rather
	// than after autovacuum gets round to it.
	if _, err := db.Exec(ctx, `ANALYZE companies, customers, identities, tickets, messages, orders, tasks, task_events`); err != nil {
		return "", fmt.Errorf("analyze: %w", err)
	}
	tasks := ""
	if n[6] > 0 {
		tasks = fmt.Sprintf(", %d routing tasks", n[6])
	}
	return fmt.Sprintf("%d companies, %d customers, %d identities, %d tickets, %d messages, %d orders%s in %s",
		n[0], n[1], n[2], n[3], n[4], n[5], tasks, time.Since(start).Round(10*time.Millisecond)), nil
}

// reserveIDs takes ids from the tables' identity sequences, so rows that
// refer to each other can be copied with their ids known in advance. COPY
// writes given values into identity columns.
func reserveIDs(ctx context.Context, tx pgx.Tx, m *model) error {
	take := func(table string, n int) ([]int64, error) {
		rows, err := tx.Query(ctx, `SELECT nextval(pg_get_serial_sequence($1, 'id')) FROM generate_series(1, $2)`, table, n)
		if err != nil {
			return nil, err
		}
		return pgx.CollectRows(rows, pgx.RowTo[int64])
	}
	ids, err := take("companies", len(m.companies))
	if err != nil {
		return fmt.Errorf("reserve company ids: %w", err)
	}
	for i := range m.companies {
		m.companies[i].id = ids[i]
	}
	if ids, err = take("customers", len(m.customers)); err != nil {
		return fmt.Errorf("reserve customer ids: %w", err)
	}
	for i := range m.customers {
		m.customers[i].id = ids[i]
	}
	if ids, err = take("tickets", len(m.tickets)); err != nil {
		return fmt.Errorf("reserve ticket ids: %w", err)
	}
	for i := range m.tickets {
		m.tickets[i].id = ids[i]
	}
	return nil
}

// copyRows copies the rows next returns (nil ends them) into table.
func copyRows(ctx context.Context, tx pgx.Tx, bar *progressBar, phase string, estimate int, table string, cols []string, next func() []any) (int64, error) {
	bar.start(phase, estimate)
	count := 0
	n, err := tx.CopyFrom(ctx, pgx.Identifier{table}, cols, pgx.CopyFromFunc(func() ([]any, error) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		row := next()
		if row != nil {
			count++
			if count&1023 == 0 {
				bar.set(count)
			}
		}
		return row, nil
	}))
	bar.finish(int(n))
	if err != nil {
		return n, fmt.Errorf("copy %s: %w", table, err)
	}
	return n, nil
}

func identityRows(r *rand.Rand, m *model, acct int64) func() []any {
	var queue [][]any
	i := 0
	return func() []any {
		for len(queue) == 0 {
			if i == len(m.customers) {
				return nil
			}
			c := &m.customers[i]
			i++
			fold := func(s string) string { return strings.ToLower(asciiFold.Replace(s)) }
			domain := []string{"example.com", "example.net", "example.org"}[c.idx%3]
			if c.company >= 0 {
				domain = m.companies[c.company].domain
			}
			add := func(kind, network, value string) {
				queue = append(queue, []any{acct, c.id, kind, network, value, c.createdAt})
			}
			add("email", "", fold(c.first)+"."+fold(c.last)+"."+strconv.Itoa(c.idx)+"@"+domain)
			if c.phone {
				add("phone", "", phoneNumber(c))
			}
			if c.visitor {
				add("visitor", "", fmt.Sprintf("v-%x-%06x", c.idx, r.Uint32()&0xffffff))
			}
			if c.social {
				add("social", "x", "@"+fold(c.first)+"_"+fold(c.last)+strconv.Itoa(c.idx))
			}
			if c.stage == "customer" || c.stage == "churned" {
				add("shop", "", "shop-"+strconv.Itoa(c.idx))
			}
		}
		row := queue[0]
		queue = queue[1:]
		return row
	}
}

// phoneNumber gives each customer a distinct E.164 number derived from its
// index that phone-number validation accepts: US numbers in the 555 exchange
// of real area codes (unique for the first 2.8 million customers), Berlin
// numbers and UK mobile numbers.
func phoneNumber(c *genCustomer) string {
	switch c.country {
	case 'U':
		return fmt.Sprintf("+1%d555%04d", usAreaCodes[(c.idx/10000)%len(usAreaCodes)], c.idx%10000)
	case 'D':
		return fmt.Sprintf("+4930%08d", 20000000+c.idx%70000000)
	default:
		return fmt.Sprintf("+447%09d", 400000000+c.idx%500000000)
	}
}

var usAreaCodes = []int{201, 202, 203, 205, 206, 207, 208, 209, 210, 212, 213, 214, 215, 216, 217, 218, 219, 224, 225, 228,
	229, 231, 234, 239, 240, 248, 251, 252, 253, 254, 256, 260, 262, 267, 269, 270, 276, 281, 301, 302, 303, 304, 305, 307,
	308, 309, 310, 312, 313, 314, 315, 316, 317, 318, 319, 320, 321, 323, 325, 330, 334, 336, 337, 339, 347, 351, 352, 360,
	361, 386, 401, 402, 404, 405, 406, 407, 408, 409, 410, 412, 413, 414, 415, 417, 419, 423, 425, 432, 434, 435, 440, 443,
	469, 478, 479, 480, 484, 501, 502, 503, 504, 505, 507, 508, 509, 510, 512, 513, 515, 516, 517, 518, 520, 530, 540, 541,
	559, 561, 562, 563, 567, 570, 571, 573, 574, 580, 585, 586, 601, 602, 603, 605, 606, 607, 608, 609, 610, 612, 614, 615,
	616, 617, 618, 619, 620, 623, 626, 630, 631, 636, 641, 646, 650, 651, 660, 661, 662, 678, 682, 701, 702, 703, 704, 706,
	707, 708, 712, 713, 714, 715, 716, 717, 718, 719, 720, 724, 727, 731, 732, 734, 740, 754, 757, 760, 763, 765, 770, 772,
	773, 774, 775, 781, 785, 786, 801, 802, 803, 804, 805, 806, 808, 810, 812, 813, 814, 815, 816, 817, 818, 828, 830, 831,
	832, 843, 845, 847, 848, 850, 856, 857, 858, 859, 860, 862, 863, 864, 865, 870, 901, 903, 904, 906, 907, 908, 909, 910,
	912, 913, 914, 915, 916, 917, 918, 919, 920, 925, 928, 931, 936, 937, 940, 941, 947, 949, 951, 952, 954, 956, 970, 971,
	972, 973, 978, 979, 980, 985, 989}

var ticketColumns = []string{"id", "account_id", "subject", "status", "priority", "channel", "customer_id", "assignee_id", "team_id", "tags",
	"contact_reason_id", "resolution_code", "cancellation_reason_id", "revenue_lost_cents", "retention_offered", "retention_accepted",
	"created_at", "updated_at", "first_response_at", "resolved_at", "closed_at", "first_response_seconds", "resolution_seconds",
	"csat_rating", "csat_comment", "csat_rated_at"}

func ticketRows(o *org, m *model) func() []any {
	i := 0
	return func() []any {
		if i == len(m.tickets) {
			return nil
		}
		t := &m.tickets[i]
		i++
		var assignee, team, reason, cancel, frt, res, csat any
		if t.csat != 0 {
			csat = int16(t.csat)
		}
		if t.assignee != 0 {
			assignee = t.assignee
		}
		if id, ok := o.teams[t.team]; ok {
			team = id
		}
		if t.done() {
			reason = o.contact[t.reason].id
		}
		if t.cancelReason != 0 {
			cancel = t.cancelReason
		}
		updated := t.created
		for _, at := range []time.Time{t.firstResp, t.resolved, t.closed} {
			if at.After(updated) {
				updated = at
			}
		}
		if !t.firstResp.IsZero() {
			frt = int64(t.firstResp.Sub(t.created).Seconds())
		}
		if !t.resolved.IsZero() {
			res = int64(t.resolved.Sub(t.created).Seconds())
		}
		tags := t.tags
		if tags == nil {
			tags = []string{}
		}
		return []any{t.id, o.accountID, t.subject, t.status, t.priority, t.channel, m.customers[t.cust].id, assignee, team, tags,
			reason, t.resolution, cancel, t.revenueLost, t.retOffered, t.retAccepted,
			t.created, updated, nullTime(t.firstResp), nullTime(t.resolved), nullTime(t.closed), frt, res,
			csat, t.csatComment, nullTime(t.csatAt)}
	}
}

func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

func messageRows(r *rand.Rand, o *org, m *model, now time.Time) func() []any {
	ti, mi := 0, 0
	return func() []any {
		for ti < len(m.tickets) && mi >= m.tickets[ti].nmsg {
			ti++
			mi = 0
		}
		if ti == len(m.tickets) {
			return nil
		}
		t := &m.tickets[ti]
		c := &m.customers[t.cust]
		i := mi
		mi++
		end := t.resolved
		if end.IsZero() {
			end = now
		}
		at := t.created
		switch {
		case i == 1 && !t.firstResp.IsZero():
			at = t.firstResp
		case i >= 1:
			from := t.created
			if !t.firstResp.IsZero() {
				from = t.firstResp
			}
			at = from.Add(time.Duration(float64(end.Sub(from)) * float64(i) / float64(t.nmsg)))
		}
		var author any
		if t.assignee != 0 {
			author = t.assignee
		}
		if t.channel == "voice" {
			if i == 0 {
				talk := int64(360 * math.Exp(r.NormFloat64()*0.5))
				wait := int64(t.firstResp.Sub(t.created).Seconds())
				if t.firstResp.IsZero() {
					wait, author = 0, nil
				}
				meta := fmt.Sprintf(`{"direction":"inbound","wait_seconds":%d,"talk_seconds":%d}`, max(wait, 0), talk)
				body := fmt.Sprintf("Inbound call, %dm %02ds", talk/60, talk%60)
				return []any{o.accountID, t.id, c.id, "call", "in", author, "", body, meta, at}
			}
			return []any{o.accountID, t.id, c.id, "note", "internal", author, "", pick(r, callNotes), "{}", at}
		}
		dir := "in"
		if i%2 == 1 && author != nil {
			dir = "out"
		}
		if dir == "in" {
			author = nil
		}
		subject := ""
		if t.channel == "email" {
			subject = t.subject
			if i > 0 {
				subject = "Re: " + t.subject
			}
		}
		body := messageBody(r, t, c, o.contact[t.reason].category, i, dir)
		return []any{o.accountID, t.id, c.id, t.channel, dir, author, subject, body, "{}", at}
	}
}

var products = []struct {
	name  string
	cents int64
}{{"Starter kit", 2900}, {"Refill pack", 1500}, {"Premium bundle", 8900}, {"Gift card", 5000}, {"Annual plan", 19900}, {"Accessory set", 3900}}

func orderRows(r *rand.Rand, m *model, acct int64, now time.Time) func() []any {
	var queue [][]any
	i := 0
	return func() []any {
		for len(queue) == 0 {
			if i == len(m.customers) {
				return nil
			}
			c := &m.customers[i]
			i++
			if c.stage != "customer" && c.stage != "churned" {
				continue
			}
			k := 1
			for r.Float64() < 0.6 && k < 12 {
				k++
			}
			if c.company >= 0 {
				k += 2
			}
			from, to := c.createdAt, now
			if y := now.AddDate(-1, 0, 0); from.Before(y) {
				from = y
			}
			if !c.churnAt.IsZero() {
				to = c.churnAt
			}
			if !to.After(from) {
				to = from.Add(time.Hour)
			}
			currency := map[byte]string{'U': "USD", 'D': "EUR", 'G': "GBP"}[c.country]
			for j := range k {
				placed := from.Add(time.Duration(r.Float64() * float64(to.Sub(from)))).Truncate(time.Second)
				p := products[r.IntN(len(products))]
				qty := int64(1 + r.IntN(3))
				if c.company >= 0 {
					qty *= 10
				}
				unit := int64(float64(p.cents) * math.Exp(r.NormFloat64()*0.2))
				status := "paid"
				switch {
				case now.Sub(placed) < 5*24*time.Hour:
					status = "shipped"
				case r.Float64() < 0.05:
					status = "refunded"
				}
				items := fmt.Sprintf(`[{"sku":"SKU-%04d","name":%q,"quantity":%d,"unit_cents":%d}]`, 1000+r.IntN(9000), p.name, qty, unit)
				queue = append(queue, []any{acct, fmt.Sprintf("SO-%d-%d", c.idx, j+1), c.id, unit * qty, currency, items, status, placed, placed, placed})
			}
		}
		row := queue[0]
		queue = queue[1:]
		return row
	}
}

// progressBar draws one line per phase on a terminal (a final line per
// phase otherwise). A nil bar draws nothing.
type progressBar struct {
	w       io.Writer
	tty     bool
	phase   string
	total   int
	started time.Time
	drawn   time.Time
}

func newProgressBar(f *os.File) *progressBar {
	st, err := f.Stat()
	return &progressBar{w: f, tty: err == nil && st.Mode()&os.ModeCharDevice != 0}
}

func (b *progressBar) start(phase string, total int) {
	if b == nil {
		return
	}
	b.phase, b.total, b.started = phase, total, time.Now()
	b.set(0)
}

func (b *progressBar) set(n int) {
	if b == nil || !b.tty || time.Since(b.drawn) < 150*time.Millisecond {
		return
	}
	b.drawn = time.Now()
	b.draw(n, "")
}

func (b *progressBar) finish(n int) {
	if b == nil {
		return
	}
	b.total = n
	b.draw(n, "\n")
}

func (b *progressBar) draw(n int, end string) {
	frac := 1.0
	if b.total > 0 {
		frac = min(float64(n)/float64(b.total), 1)
	}
	const width = 30
	filled := int(frac * width)
	prefix := "\r"
	if !b.tty {
		prefix = ""
	}
	fmt.Fprintf(b.w, "%sseed: %-10s [%s%s] %3.0f%% %9d rows %6.1fs%s", prefix, b.phase,
		strings.Repeat("#", filled), strings.Repeat(".", width-filled), frac*100, n, time.Since(b.started).Seconds(), end)
}
