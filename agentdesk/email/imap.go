package email

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"agentdesk/agentdesk"
)

// IMAPAccount is a mailbox the poller fetches mail from.
type IMAPAccount struct {
	ID              int64  `json:"id"`
	AccountID       int64  `json:"-"`
	MailboxID       int64  `json:"mailbox_id"` // the support address its mail is for
	Host            string `json:"host"`
	Port            int    `json:"port"`
	Security        string `json:"security"` // tls (default), starttls, insecure
	Username        string `json:"username"`
	Password        string `json:"-"` // only on create; stored sealed
	Folder          string `json:"folder"`
	ProcessedFolder string `json:"processed_folder"`
	// CAPEM, when set, is the PEM bundle the server's certificate must chain
	// to (a private CA); otherwise Config.IMAPRootCAs or the system's roots.
	CAPEM string `json:"ca_pem"`
}

// hostPattern is a DNS host name; IP addresses are checked apart.
var hostPattern = regexp.MustCompile(`^(?i)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\.?$`)

// maxCAPEM bounds a CA bundle (the column allows 64 KiB).
const maxCAPEM = 64 << 10

// Validate normalises and checks the account's fields, password included.
func (a *IMAPAccount) Validate() error {
	if err := a.validateSettings(); err != nil {
		return err
	}
	return validPassword(a.Password)
}

func validPassword(pw string) error {
	if pw == "" {
		return agentdesk.FieldError("password", "is required")
	}
	if len(pw) > 1000 {
		return agentdesk.FieldError("password", "must be at most 1000 bytes")
	}
	return nil
}

// validateSettings checks everything but the password (an update may keep
// the stored one).
func (a *IMAPAccount) validateSettings() error {
	if a.MailboxID <= 0 {
		return agentdesk.FieldError("mailbox_id", "is required")
	}
	a.Host = strings.TrimSpace(a.Host)
	if h, port, err := net.SplitHostPort(a.Host); err == nil {
		// "imap.example.com:993" in the host field is understood.
		n, err := strconv.Atoi(port)
		if err != nil {
			return agentdesk.FieldError("host", "%q has no valid port", a.Host)
		}
		if a.Port != 0 && a.Port != n {
			return agentdesk.FieldError("port", "%d differs from the port in host (%d)", a.Port, n)
		}
		a.Host, a.Port = h, n
	}
	if a.Host == "" || len(a.Host) > 253 || (net.ParseIP(a.Host) == nil && !hostPattern.MatchString(a.Host)) {
		return agentdesk.FieldError("host", "must be a host name or IP address")
	}
	if a.Security == "" {
		a.Security = "tls"
	}
	if a.Security != "tls" && a.Security != "starttls" && a.Security != "insecure" {
		return agentdesk.FieldError("security", "must be tls, starttls or insecure")
	}
	if a.Port == 0 {
		a.Port = 993
		if a.Security != "tls" {
			a.Port = 143
		}
	}
	if a.Port < 1 || a.Port > 65535 {
		return agentdesk.FieldError("port", "must be 1-65535")
	}
	a.Username = strings.TrimSpace(a.Username)
	if a.Username == "" {
		return agentdesk.FieldError("username", "is required")
	}
	if len(a.Username) > 320 {
		return agentdesk.FieldError("username", "must be at most 320 bytes")
	}
	if a.Folder == "" {
		a.Folder = "INBOX"
	}
	if a.ProcessedFolder == "" {
		a.ProcessedFolder = "Processed"
	}
	for field, f := range map[string]string{"folder": a.Folder, "processed_folder": a.ProcessedFolder} {
		if len(f) > 200 || strings.ContainsAny(f, "\r\n\x00") {
			return agentdesk.FieldError(field, "must be a folder name of at most 200 bytes")
		}
	}
	if a.Folder == a.ProcessedFolder {
		return agentdesk.FieldError("processed_folder", "must differ from the folder polled")
	}
	a.CAPEM = strings.TrimSpace(a.CAPEM)
	if a.CAPEM != "" {
		if a.Security == "insecure" {
			return agentdesk.FieldError("ca_pem", "is only used with security tls or starttls")
		}
		if len(a.CAPEM) > maxCAPEM {
			return agentdesk.FieldError("ca_pem", "must be at most 64 KiB")
		}
		if _, err := certPool(a.CAPEM); err != nil {
			return agentdesk.FieldError("ca_pem", "%v", err)
		}
	}
	return nil
}

// certPool parses a PEM bundle of CA certificates.
func certPool(bundle string) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	rest := []byte(bundle)
	n := 0
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %v", n+1, err)
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, errors.New("must hold at least one PEM certificate")
	}
	return pool, nil
}

// Poller fetches mail from the IMAP accounts in email_imap_accounts, one
// connection per account, waiting with IDLE where the server offers it and
// polling otherwise. Each mail is stored, then moved to the processed
// folder: a crash in between fetches it again, and its Message-ID makes
// that harmless.
type Poller struct {
	in  *Ingester
	log *slog.Logger

	mu      sync.Mutex
	cancel  context.CancelFunc
	running map[int64]runningAccount
	reload  chan struct{}
	wg      sync.WaitGroup
}

// runningAccount is a polled account and the settings it runs with: when
// they change (host, password, CA, ...) its connection is replaced.
type runningAccount struct {
	cancel context.CancelFunc
	config string
}

// NewPoller returns a poller storing mail through in.
func NewPoller(in *Ingester, log *slog.Logger) *Poller {
	if log == nil {
		log = in.log
	}
	return &Poller{in: in, log: log.With("component", "imap"), running: map[int64]runningAccount{}, reload: make(chan struct{}, 1)}
}

// AddAccount stores an IMAP account with its password sealed. A running
// poller picks it up within Config.IMAPPoll (at once after Reload).
func (p *Poller) AddAccount(ctx context.Context, accountID int64, a *IMAPAccount) error {
	if err := a.Validate(); err != nil {
		return err
	}
	sealed, err := p.in.keys.seal(a.Password)
	if err != nil {
		return err
	}
	a.AccountID = accountID
	err = p.in.db.QueryRow(ctx, `
INSERT INTO email_imap_accounts (account_id, mailbox_id, host, port, security, username, password_sealed, folder, processed_folder, ca_pem)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id`,
		accountID, a.MailboxID, a.Host, a.Port, a.Security, a.Username, sealed, a.Folder, a.ProcessedFolder, a.CAPEM).Scan(&a.ID)
	if err != nil {
		if strings.Contains(err.Error(), "23503") {
			return agentdesk.FieldError("mailbox_id", "no such support address")
		}
		return fmt.Errorf("add imap account: %w", err)
	}
	p.Reload()
	return nil
}

// Reload makes a running poller read its accounts now: added ones start,
// removed or disabled ones stop, changed ones reconnect. Other processes'
// pollers see the change within Config.IMAPPoll.
func (p *Poller) Reload() {
	select {
	case p.reload <- struct{}{}:
	default:
	}
}

// Start begins polling every enabled account, and reloads the accounts
// every Config.IMAPPoll and on Reload.
func (p *Poller) Start(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cancel != nil {
		return errors.New("imap poller already started")
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	p.cancel = cancel
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(p.in.cfg.IMAPPoll)
		defer t.Stop()
		for {
			if err := p.refresh(runCtx); err != nil && runCtx.Err() == nil {
				p.log.Error("load imap accounts", "err", err)
			}
			select {
			case <-runCtx.Done():
				return
			case <-t.C:
			case <-p.reload:
			}
		}
	}()
	return nil
}

// Stop closes every IMAP connection and waits for the pollers to end (a
// mail being stored finishes first).
func (p *Poller) Stop(ctx context.Context) error {
	p.mu.Lock()
	cancel := p.cancel
	p.cancel = nil
	p.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *Poller) refresh(ctx context.Context) error {
	rows, err := p.in.db.Query(ctx, `
SELECT id, account_id, mailbox_id, host, port, security, username, password_sealed, folder, processed_folder, ca_pem
FROM email_imap_accounts WHERE enabled`)
	if err != nil {
		return err
	}
	type row struct {
		a      IMAPAccount
		sealed []byte
	}
	var all []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.a.ID, &r.a.AccountID, &r.a.MailboxID, &r.a.Host, &r.a.Port, &r.a.Security, &r.a.Username, &r.sealed, &r.a.Folder, &r.a.ProcessedFolder, &r.a.CAPEM); err != nil {
			rows.Close()
			return err
		}
		all = append(all, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	want := map[int64]string{}
	for _, r := range all {
		// The sealed password changes with every new password (fresh nonce).
		want[r.a.ID] = fmt.Sprintf("%d|%s|%d|%s|%s|%x|%s|%s|%s", r.a.MailboxID, r.a.Host, r.a.Port, r.a.Security, r.a.Username, r.sealed, r.a.Folder, r.a.ProcessedFolder, r.a.CAPEM)
	}
	// Accounts disabled, deleted or changed since the last look stop.
	for id, run := range p.running {
		if want[id] != run.config {
			run.cancel()
			delete(p.running, id)
		}
	}
	for _, r := range all {
		if _, ok := p.running[r.a.ID]; ok || ctx.Err() != nil {
			continue
		}
		pw, err := p.in.keys.open(r.sealed)
		if err != nil {
			p.recordError(ctx, r.a, err)
			continue
		}
		a := r.a
		a.Password = pw
		actx, cancel := context.WithCancel(ctx)
		p.running[a.ID] = runningAccount{cancel: cancel, config: want[a.ID]}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.run(actx, a)
		}()
	}
	return nil
}

func (p *Poller) recordError(ctx context.Context, a IMAPAccount, err error) {
	msg := ""
	if err != nil {
		msg = truncate(err.Error(), 1000)
		p.log.Warn("imap", "imap_account_id", a.ID, "host", a.Host, "err", err)
	}
	p.in.db.Exec(context.WithoutCancel(ctx), `UPDATE email_imap_accounts SET last_error = $3, last_polled_at = now() WHERE account_id = $1 AND id = $2`, a.AccountID, a.ID, msg) //nolint:errcheck
}

// run keeps one account's session alive, reconnecting with backoff.
func (p *Poller) run(ctx context.Context, a IMAPAccount) {
	backoff := time.Second
	for ctx.Err() == nil {
		err := p.session(ctx, a)
		if ctx.Err() != nil {
			return
		}
		p.recordError(ctx, a, err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, p.in.cfg.IMAPPoll)
	}
}

// errPrivateIMAPHost is the last_error of an account whose host is on a
// network the poller may not reach. It does not say which address the name
// resolved to.
var errPrivateIMAPHost = errors.New("the IMAP host is a loopback, private or link-local address, which this server does not connect to (--imap-allow-private)")

// blockedNets are the networks besides loopback, private, link-local,
// multicast and unspecified that the poller does not reach without
// Config.IMAPAllowPrivate.
var blockedNets = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),     // "this network"
	netip.MustParsePrefix("100.64.0.0/10"), // shared address space (carrier NAT)
	netip.MustParsePrefix("64:ff9b::/96"),  // NAT64 of any IPv4 address
	netip.MustParsePrefix("64:ff9b:1::/48"),
}

// publicAddr reports whether ip is an address on the public internet.
func publicAddr(ip netip.Addr) bool {
	ip = ip.Unmap()
	if !ip.IsValid() || ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() {
		return false
	}
	for _, n := range blockedNets {
		if n.Contains(ip) {
			return false
		}
	}
	return true
}

// publicOnly is a net.Dialer Control refusing to connect to addresses that
// are not public. It sees the address after name resolution, so a host name
// resolving (or rebinding) to 127.0.0.1 is refused like the literal.
func publicOnly(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil || !publicAddr(ap.Addr()) {
		return errPrivateIMAPHost
	}
	return nil
}

func (p *Poller) dial(a IMAPAccount, opts *imapclient.Options) (*imapclient.Client, error) {
	addr := net.JoinHostPort(a.Host, strconv.Itoa(a.Port))
	if !p.in.cfg.IMAPAllowPrivate {
		d := net.Dialer{Timeout: 30 * time.Second}
		if opts.Dialer != nil {
			d = *opts.Dialer
		}
		d.Control = publicOnly
		opts.Dialer = &d
	}
	if a.Security == "insecure" {
		return imapclient.DialInsecure(addr, opts)
	}
	// The account's own CA bundle, else the server's (--imap-ca-file), else
	// the system's roots.
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: p.in.cfg.IMAPRootCAs}
	if a.CAPEM != "" {
		pool, err := certPool(a.CAPEM)
		if err != nil {
			return nil, fmt.Errorf("ca_pem: %w", err)
		}
		cfg.RootCAs = pool
	}
	opts.TLSConfig = cfg
	if a.Security == "starttls" {
		return imapclient.DialStartTLS(addr, opts)
	}
	return imapclient.DialTLS(addr, opts)
}

// session is one connection: log in, then fetch, store and move whatever is
// in the folder, and wait for more.
func (p *Poller) session(ctx context.Context, a IMAPAccount) error {
	arrived := make(chan struct{}, 1)
	c, err := p.dial(a, &imapclient.Options{
		Dialer: &net.Dialer{Timeout: 30 * time.Second},
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Mailbox: func(d *imapclient.UnilateralDataMailbox) {
				if d.NumMessages != nil {
					select {
					case arrived <- struct{}{}:
					default:
					}
				}
			},
		},
	})
	if errors.Is(err, errPrivateIMAPHost) {
		return errPrivateIMAPHost // without the address the name resolved to
	}
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if err := c.Login(a.Username, a.Password).Wait(); err != nil {
		return fmt.Errorf("login: %w", err)
	}
	// Creating a folder that exists fails harmlessly.
	_ = c.Create(a.ProcessedFolder, nil).Wait()
	if _, err := c.Select(a.Folder, nil).Wait(); err != nil {
		return fmt.Errorf("select %s: %w", a.Folder, err)
	}
	p.recordError(ctx, a, nil)
	for ctx.Err() == nil {
		// Read the support address each round: an admin may have changed
		// its queue or team since the session began.
		mb, err := scanMailbox(p.in.db.QueryRow(ctx, selectMailboxByID, a.AccountID, a.MailboxID))
		if err != nil {
			return fmt.Errorf("load support address of imap account: %w", err)
		}
		if err := p.drain(ctx, c, a, mb); err != nil {
			return err
		}
		if err := p.wait(ctx, c, arrived); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// wait blocks until new mail may be there: IDLE until the server reports
// it (or IMAPIdle passes), or a plain poll interval without IDLE.
func (p *Poller) wait(ctx context.Context, c *imapclient.Client, arrived <-chan struct{}) error {
	timeout := p.in.cfg.IMAPPoll
	if c.Caps().Has(imap.CapIdle) {
		timeout = p.in.cfg.IMAPIdle
		idle, err := c.Idle()
		if err != nil {
			return fmt.Errorf("idle: %w", err)
		}
		select {
		case <-ctx.Done():
		case <-arrived:
		case <-time.After(timeout):
		}
		if err := idle.Close(); err != nil {
			return err
		}
		return idle.Wait()
	}
	select {
	case <-ctx.Done():
	case <-arrived:
	case <-time.After(timeout):
	}
	return c.Noop().Wait()
}

// fetchBatch bounds how many mails are held in memory at once (each up to
// the server's size limit).
const fetchBatch = 8

func (p *Poller) drain(ctx context.Context, c *imapclient.Client, a IMAPAccount, mb *Mailbox) error {
	for ctx.Err() == nil {
		data, err := c.UIDSearch(&imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagDeleted}}, nil).Wait()
		if err != nil {
			return fmt.Errorf("search: %w", err)
		}
		uids := data.AllUIDs()
		if len(uids) == 0 {
			return nil
		}
		if len(uids) > fetchBatch {
			uids = uids[:fetchBatch]
		}
		section := &imap.FetchItemBodySection{Peek: true}
		msgs, err := c.Fetch(imap.UIDSetNum(uids...), &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{section}}).Collect()
		if err != nil {
			return fmt.Errorf("fetch: %w", err)
		}
		var done imap.UIDSet
		for _, m := range msgs {
			raw := m.FindBodySection(section)
			if raw == nil {
				continue
			}
			if err := p.store(ctx, a, mb, raw); err != nil {
				return err // temporary: leave it in the folder and retry
			}
			done.AddNum(m.UID)
		}
		if len(done) == 0 {
			return nil
		}
		if _, err := c.Move(done, a.ProcessedFolder).Wait(); err != nil {
			return fmt.Errorf("move to %s: %w", a.ProcessedFolder, err)
		}
	}
	return ctx.Err()
}

// store ingests one fetched mail. Mail we can never store (no header, no
// sender) is moved along with a warning rather than fetched forever; it
// stays in the processed folder on the server.
func (p *Poller) store(ctx context.Context, a IMAPAccount, mb *Mailbox, raw []byte) error {
	parsed, err := Parse(raw)
	if err != nil {
		p.log.Warn("imap: unparseable mail moved without storing", "imap_account_id", a.ID, "err", err)
		return nil
	}
	var tags []string
	for _, addr := range append(append([]Address{}, parsed.To...), parsed.Cc...) {
		if base, tag := splitPlus(addr.Address); tag != "" && base == mb.Address {
			tags = append(tags, tag)
		}
	}
	_, err = p.in.IngestParsed(ctx, Delivery{Mailbox: mb, Tags: tags, EnvelopeFrom: parsed.ReturnPath, Raw: raw}, parsed)
	if agentdesk.IsKind(err, agentdesk.Invalid) {
		p.log.Warn("imap: mail moved without storing", "imap_account_id", a.ID, "message_id", parsed.MessageID, "err", err)
		return nil
	}
	if err != nil {
		return fmt.Errorf("store mail: %w", err)
	}
	return nil
}
