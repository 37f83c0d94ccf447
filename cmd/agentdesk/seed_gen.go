package main

import (
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The history generator builds customers, companies and tickets in memory
// from a seeded random source (the same seed on the same day gives the same
// data), shaped like DOMAIN.md's demo operation: ~60% email, 25% chat, 15%
// voice; peaks at 10:00 and 14:00; Monday busiest; ~3% monthly churn with
// cancellation reasons skewed to price and competitor. Messages and orders
// are derived from this model while they are copied (seed_bulk.go).

type genConfig struct {
	customers, companies, messages, months int
	seed                                   uint64
	now                                    time.Time
	// tasks adds the routing history (seed_tasks.go); the demo has it
	tasks bool
}

type genCompany struct {
	id        int64
	name      string
	domain    string
	createdAt time.Time
}

type genCustomer struct {
	id           int64
	idx          int // unique in the account across runs: names its email, phone, shop id
	first, last  string
	country      byte // 'U' US, 'D' Germany, 'G' UK
	company      int  // index into companies, -1 for consumers
	stage        string
	plan         string
	monthlyCents int64
	createdAt    time.Time
	churnAt      time.Time // zero unless churned
	phone        bool
	visitor      bool
	social       bool
}

type genTicket struct {
	id                      int64
	cust                    int32
	channel                 string
	reason                  int // index into org.contact
	team                    string
	assignee                int64
	status                  string
	priority                string
	subject                 string
	tags                    []string
	resolution              string
	cancelReason            int64
	revenueLost             int64
	retOffered, retAccepted bool
	created                 time.Time
	firstResp, resolved     time.Time // zero when not yet
	closed                  time.Time
	nmsg                    int
	csat                    int // 1..5, 0 when the customer did not rate
	csatComment             string
	csatAt                  time.Time
}

type model struct {
	companies []genCompany
	customers []genCustomer
	tickets   []genTicket
	start     time.Time
}

var firstNames = map[byte][]string{
	'U': {"James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth", "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Chris", "Karen", "Daniel", "Nancy", "Matthew", "Lisa", "Anthony", "Betty", "Mark", "Sandra", "Aisha", "Carlos"},
	'D': {"Lukas", "Anna", "Leon", "Marie", "Finn", "Sophie", "Jonas", "Emma", "Paul", "Mia", "Felix", "Hannah", "Elias", "Lea", "Noah", "Lena", "Ben", "Laura", "Maximilian", "Julia", "Jan", "Katharina", "Tim", "Sarah", "Moritz", "Johanna", "Niklas", "Clara", "Emre", "Aylin"},
	'G': {"Oliver", "Olivia", "George", "Amelia", "Harry", "Isla", "Jack", "Ava", "Charlie", "Emily", "Jacob", "Sophia", "Oscar", "Grace", "Thomas", "Lily", "Henry", "Freya", "William", "Ella", "Alfie", "Poppy", "Arthur", "Evie", "Noah", "Ruby", "Leo", "Daisy", "Priya", "Arjun"},
}

var lastNames = map[byte][]string{
	'U': {"Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez", "Hernandez", "Lopez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin", "Lee", "Thompson", "White", "Harris", "Clark", "Lewis", "Robinson", "Walker", "Young", "Allen", "Nguyen"},
	'D': {"Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz", "Hoffmann", "Schäfer", "Koch", "Bauer", "Richter", "Klein", "Wolf", "Schröder", "Neumann", "Schwarz", "Zimmermann", "Braun", "Krüger", "Hofmann", "Hartmann", "Lange", "Schmitt", "Werner", "Krause", "Yilmaz", "Kaya"},
	'G': {"Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Robinson", "Wright", "Thompson", "Evans", "Walker", "White", "Roberts", "Green", "Hall", "Wood", "Jackson", "Clarke", "Patel", "Khan", "Lewis", "Harris", "Hughes", "Edwards", "Turner", "Hill", "Cooper", "Ward"},
}

var companyWords = [][]string{
	{"Northwind", "Blue Harbor", "Evergreen", "Summit", "Brightline", "Ironbridge", "Silverleaf", "Redwood", "Cobalt", "Lakeside", "Granite", "Sunrise", "Meridian", "Harbor & Vale", "Alpine", "Nordlicht", "Kestrel", "Oakridge", "Pioneer", "Westfield"},
	{"Trading", "Logistics", "Studios", "Health", "Foods", "Consulting", "Outdoor", "Media", "Engineering", "Retail", "Software", "Dental", "Travel", "Architects", "Bikes", "GmbH", "Supplies", "Labs", "Partners", "Living"},
}

// Plans with their monthly price in cents; what a cancellation loses is a
// year of it.
var plans = []struct {
	name  string
	cents int64
	w     float64
}{{"basic", 1900, 0.5}, {"plus", 4900, 0.35}, {"pro", 9900, 0.15}}

// Contact-reason weights by reason name (lower case); others weigh 1.
var reasonWeights = map[string]float64{
	"where is my order": 4, "invoice question": 2.5, "refund request": 2, "payment failed": 1.5,
	"login problem": 2, "how-to": 2.5, "return": 1.8, "wrong item": 1, "defect": 1.2,
	"change details": 1.2, "close account": 0.3, "feature request": 0.6, "pricing": 1, "upgrade": 0.7, "demo request": 0.4,
}

// Cancellation reasons skewed to price and competitor.
var cancelWeights = []struct {
	name string
	w    float64
}{
	{"too expensive", 30}, {"moved to competitor", 25}, {"product not needed anymore", 12}, {"poor service experience", 8},
	{"missing feature", 8}, {"technical problems", 7}, {"moving or closing business", 5}, {"payment failure (involuntary)", 5},
}

// weekday weights, Sunday first: Monday busiest, weekends quiet.
var weekdayWeight = [7]float64{0.35, 1.35, 1.15, 1.05, 1.0, 0.9, 0.45}

// asciiFold makes names usable in email addresses.
var asciiFold = strings.NewReplacer("ä", "ae", "ö", "oe", "ü", "ue", "Ä", "Ae", "Ö", "Oe", "Ü", "Ue", "ß", "ss", " ", "", "&", "and", "'", "")

// buildModel draws the companies, customers and tickets of one data set.
// baseCustomer and baseCompany make identities unique across runs on one
// account.
func buildModel(r *rand.Rand, o *org, g genConfig, baseCustomer, baseCompany int) *model {
	m := &model{start: g.now.AddDate(0, -g.months, 0)}
	for i := range g.companies {
		idx := baseCompany + i
		name := companyWords[0][r.IntN(len(companyWords[0]))] + " " + companyWords[1][r.IntN(len(companyWords[1]))]
		m.companies = append(m.companies, genCompany{
			name:      name,
			domain:    strings.ToLower(asciiFold.Replace(name)) + "-" + strconv.Itoa(idx) + ".example",
			createdAt: g.now.Add(-time.Duration(r.Float64() * float64(24*time.Hour) * 540)),
		})
	}
	days := int(g.now.Sub(m.start).Hours()/24) + 1
	pickTime := newTimePicker(m.start, g.now, days)

	for i := range g.customers {
		c := genCustomer{idx: baseCustomer + i, company: -1}
		switch x := r.Float64(); {
		case x < 0.4:
			c.country = 'U'
		case x < 0.7:
			c.country = 'D'
		default:
			c.country = 'G'
		}
		c.first = firstNames[c.country][r.IntN(30)]
		c.last = lastNames[c.country][r.IntN(30)]
		if len(m.companies) > 0 && r.Float64() < 0.2 {
			c.company = r.IntN(len(m.companies))
		}
		switch x := r.Float64(); {
		case x < 0.06:
			c.stage = "lead"
		case x < 0.10:
			c.stage = "prospect"
		default:
			c.stage = "customer"
		}
		c.plan, c.monthlyCents = weightedPlan(r)
		if c.company >= 0 {
			c.plan, c.monthlyCents = "business", 29900
		}
		age := time.Duration(r.Float64() * float64(24*time.Hour) * 540)
		if c.stage != "customer" {
			age /= 8
		}
		c.createdAt = g.now.Add(-age)
		c.phone = r.Float64() < 0.7
		c.visitor = r.Float64() < 0.3
		c.social = r.Float64() < 0.05
		m.customers = append(m.customers, c)
	}

	budget := g.messages
	// Cancellation intents first: ~3% of paying customers a month churn; for
	// every ten who ask to cancel, three accept a retention offer.
	for ci := range m.customers {
		c := &m.customers[ci]
		from := c.createdAt
		if from.Before(m.start) {
			from = m.start
		}
		if c.stage != "customer" || budget <= 0 {
			continue
		}
		months := g.now.Sub(from).Hours() / 24 / 30.4
		pIntent := (1 - math.Pow(0.97, months)) / 0.7
		if r.Float64() >= pIntent {
			continue
		}
		at := from.Add(time.Duration(r.Float64() * float64(g.now.Sub(from))))
		at = pickTime.onDay(r, at)
		t := newTicket(r, o, m, g, int32(ci), at, o.reasonIndex("close account"), &budget)
		if r.Float64() < 0.3 {
			t.resolution = "retained"
			t.retOffered, t.retAccepted = true, true
		} else {
			t.resolution = "cancellation"
			t.retOffered = r.Float64() < 0.35
			t.revenueLost = c.monthlyCents * 12
			c.stage, c.churnAt = "churned", at
		}
		t.cancelReason = o.cancel[weightedCancel(r)]
		if t.cancelReason == 0 {
			for _, id := range o.cancel {
				t.cancelReason = id
				break
			}
		}
		if !t.done() {
			t.resolution, t.cancelReason, t.revenueLost, t.retOffered, t.retAccepted = "", 0, 0, false, false
			c.stage, c.churnAt = "customer", time.Time{}
		}
		m.tickets = append(m.tickets, t)
	}
	reasonCum := o.reasonCumulative()
	for budget > 0 {
		// A few customers write a lot; most write once or twice.
		ci := int32(float64(len(m.customers)) * math.Pow(r.Float64(), 1.7))
		reason := sort.SearchFloat64s(reasonCum, r.Float64()*reasonCum[len(reasonCum)-1])
		t := newTicket(r, o, m, g, ci, pickTime.draw(r), reason, &budget)
		if t.done() {
			switch x := r.Float64(); {
			case x < 0.03:
				t.resolution = "duplicate"
			case x < 0.07:
				t.resolution = "no_response"
			case x < 0.08:
				t.resolution = "spam"
			default:
				t.resolution = "solved"
			}
		}
		m.tickets = append(m.tickets, t)
	}
	// A customer was first seen no later than their first contact.
	for i := range m.tickets {
		c := &m.customers[m.tickets[i].cust]
		if first := m.tickets[i].created.Add(-time.Duration(r.IntN(30*24)) * time.Hour); first.Before(c.createdAt) {
			c.createdAt = first
		}
	}
	sort.SliceStable(m.tickets, func(i, j int) bool { return m.tickets[i].created.Before(m.tickets[j].created) })
	return m
}

func (t *genTicket) done() bool { return t.status == "solved" || t.status == "closed" }

// newTicket draws one ticket's channel, timing, status and assignee and
// takes its messages out of the budget.
func newTicket(r *rand.Rand, o *org, m *model, g genConfig, ci int32, at time.Time, reason int, budget *int) genTicket {
	c := &m.customers[ci]
	t := genTicket{cust: ci, created: at, reason: reason, priority: "normal"}
	switch x := r.Float64(); {
	case x < 0.60:
		t.channel = "email"
	case x < 0.85:
		t.channel = "chat"
	default:
		t.channel = "voice"
	}
	// Calls and chats happen while the lines are open.
	if t.channel != "email" && (at.Hour() < 7 || at.Hour() >= 20) {
		t.channel = "email"
	}
	switch x := r.Float64(); {
	case x < 0.08:
		t.priority = "low"
	case x < 0.85:
	case x < 0.97:
		t.priority = "high"
	default:
		t.priority = "urgent"
	}
	if c.company >= 0 && t.priority == "normal" && r.Float64() < 0.3 {
		t.priority = "high"
	}
	rs := o.contact[reason]
	t.subject = subjectFor(r, rs.name)
	switch rs.category {
	case "Billing", "Sales":
		t.team = rs.category
	default:
		t.team = "Support"
	}
	if c.country == 'D' {
		t.tags = append(t.tags, "german")
	}
	if c.company >= 0 {
		t.tags = append(t.tags, "b2b")
	}
	var n int
	switch t.channel {
	case "email":
		n = 2 + r.IntN(4)
	case "chat":
		n = 3 + r.IntN(7)
	default:
		n = 1 + r.IntN(2)
	}
	t.nmsg = min(n, *budget)
	*budget -= t.nmsg

	frt, res := responseTimes(r, t.channel)
	switch {
	case at.Add(frt).After(g.now):
		t.status = "new"
		if r.Float64() < 0.5 {
			t.assignee = pickAgent(r, o, t.team, c.country == 'D')
		}
		return t
	case at.Add(res).After(g.now) || r.Float64() < 0.02:
		t.status = []string{"open", "open", "open", "pending", "pending", "on_hold"}[r.IntN(6)]
	default:
		t.status = "solved"
		t.resolved = at.Add(res)
		if t.resolved.Add(96 * time.Hour).Before(g.now) {
			t.status, t.closed = "closed", t.resolved.Add(96*time.Hour)
		}
	}
	t.firstResp = at.Add(frt)
	t.assignee = pickAgent(r, o, t.team, c.country == 'D')
	// About a third of customers rate a solved ticket; ~85% of ratings are
	// 4 or 5 (CSAT).
	if t.done() && r.Float64() < 0.3 {
		t.csat, t.csatComment = csatRating(r)
		t.csatAt = t.resolved.Add(time.Duration(r.IntN(48*3600)) * time.Second)
		if t.csatAt.After(g.now) {
			t.csatAt = g.now
		}
	}
	return t
}

// responseTimes draws first-response and resolution times by channel:
// calls are answered in seconds and mostly solved on the call, chats in a
// minute, emails within hours.
func responseTimes(r *rand.Rand, channel string) (frt, res time.Duration) {
	logn := func(median time.Duration, sigma float64) time.Duration {
		return time.Duration(float64(median) * math.Exp(r.NormFloat64()*sigma))
	}
	switch channel {
	case "voice":
		frt = logn(12*time.Second, 0.7)
		res = frt + logn(6*time.Minute, 0.5)
		if r.Float64() < 0.2 {
			res += logn(24*time.Hour, 0.8)
		}
	case "chat":
		frt = logn(20*time.Second, 0.6)
		res = frt + logn(11*time.Minute, 0.5)
		if r.Float64() < 0.25 {
			res += logn(24*time.Hour, 0.8)
		}
	default:
		frt = min(logn(3*time.Hour, 1), 72*time.Hour)
		res = frt + logn(20*time.Hour, 0.9)
	}
	return frt.Round(time.Second), res.Round(time.Second)
}

func pickAgent(r *rand.Rand, o *org, team string, german bool) int64 {
	pool := o.agents[team]
	if len(pool) == 0 {
		pool = o.allAgents
	}
	if german && r.Float64() < 0.7 {
		var de []orgAgent
		for _, a := range pool {
			if a.german {
				de = append(de, a)
			}
		}
		if len(de) > 0 {
			pool = de
		}
	}
	return pool[r.IntN(len(pool))].id
}

func weightedPlan(r *rand.Rand) (string, int64) {
	x := r.Float64()
	for _, p := range plans {
		if x < p.w {
			return p.name, p.cents
		}
		x -= p.w
	}
	return plans[0].name, plans[0].cents
}

func weightedCancel(r *rand.Rand) string {
	x := r.Float64() * 100
	for _, c := range cancelWeights {
		if x < c.w {
			return c.name
		}
		x -= c.w
	}
	return cancelWeights[0].name
}

func (o *org) reasonIndex(name string) int {
	for i, r := range o.contact {
		if strings.EqualFold(r.name, name) {
			return i
		}
	}
	return 0
}

func (o *org) reasonCumulative() []float64 {
	cum := make([]float64, len(o.contact))
	sum := 0.0
	for i, r := range o.contact {
		w, ok := reasonWeights[strings.ToLower(r.name)]
		if !ok {
			w = 1
		}
		sum += w
		cum[i] = sum
	}
	return cum
}

// timePicker draws contact times: a day weighted by weekday and a slowly
// growing volume, then an hour around the 10:00 and 14:00 peaks.
type timePicker struct {
	start, now time.Time
	cum        []float64
}

func newTimePicker(start, now time.Time, days int) *timePicker {
	p := &timePicker{start: start.Truncate(24 * time.Hour), now: now, cum: make([]float64, days)}
	sum := 0.0
	for d := range days {
		day := p.start.AddDate(0, 0, d)
		sum += weekdayWeight[day.Weekday()] * (0.85 + 0.3*float64(d)/float64(days))
		p.cum[d] = sum
	}
	return p
}

func (p *timePicker) draw(r *rand.Rand) time.Time {
	for {
		d := sort.SearchFloat64s(p.cum, r.Float64()*p.cum[len(p.cum)-1])
		t := p.onDay(r, p.start.AddDate(0, 0, d))
		if !t.After(p.now) && !t.Before(p.start) {
			return t
		}
	}
}

// onDay returns a time on t's day with the daily shape of contact volume.
func (p *timePicker) onDay(r *rand.Rand, t time.Time) time.Time {
	var h float64
	switch x := r.Float64(); {
	case x < 0.42:
		h = 10 + r.NormFloat64()*1.1
	case x < 0.80:
		h = 14 + r.NormFloat64()*1.3
	default:
		h = 7 + r.Float64()*13
	}
	h = math.Max(0, math.Min(h, 23.99))
	at := t.Truncate(24 * time.Hour).Add(time.Duration(h * float64(time.Hour))).Truncate(time.Second)
	if at.After(p.now) {
		at = p.now.Add(-time.Duration(r.IntN(3600)) * time.Second)
	}
	return at
}
