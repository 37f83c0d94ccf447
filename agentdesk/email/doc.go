// Package email is AgentDesk's email channel: mail in over SMTP and IMAP,
// threading into tickets, and agent replies out through an SMTP relay.
//
// It owns the email tables of migration 003 (email_mailboxes,
// email_imap_accounts, email_blobs, email_messages, email_attachments,
// email_ticket_links, email_deliveries, email_failing_addresses,
// email_auto_acks). For inbound mail it writes customers, identities,
// tickets and messages of the core schema itself, because threading, the
// closed-ticket policy and auto-replies decide what happens to the ticket;
// outbound messages go through postgres.AddMessageTx so the ticket rules
// (visibility, first response) are the store's.
//
// # Inbound
//
// Server (emersion/go-smtp, default 127.0.0.1:2525) accepts mail only for
// addresses in email_mailboxes (plus-addresses included); other recipients
// get 550 5.1.1 at RCPT. The size limit (default 25 MB) is announced with
// SIZE and enforced while DATA is read (552). STARTTLS is offered when
// Config.TLS is set. A mail is answered 250 only after its transaction
// committed; a storage failure is a 451 the client retries, and the
// Message-ID (or, when missing, a hash of the content) makes the retry land
// once. Poller (emersion/go-imap/v2) fetches configured IMAP mailboxes,
// waits with IDLE where offered, and moves processed mail to a folder; IMAP
// passwords are sealed with AES-256-GCM under a key derived from
// Config.Secret.
//
// Parse (emersion/go-message and its charset tables) takes a mail apart:
// text and HTML (sanitised with bluemonday before anything shows it),
// attachments and inline images stored by sha256 in email_blobs, the raw
// mail kept there too so nothing is lost. Quoted history and signatures are
// not removed: they are recorded as folds (byte ranges) next to the full
// text, and meta.email.visible holds the text without them;
// meta.email.html_visible is the HTML without the quote containers of Gmail,
// Apple Mail, Thunderbird and Outlook (meta.email.html keeps all of it).
// Auto-replies (Auto-Submitted, X-Autoreply, Precedence, out-of-office
// subjects) and bounces (multipart/report DSNs, mailer-daemon notices) are
// stored but never acknowledged, never reopen a ticket, and a bounce marks
// the failed address in email_failing_addresses and the delivery it is
// about as failed.
//
// # Threading
//
// A mail joins a ticket by the first rule that matches: In-Reply-To /
// References naming a mail we stored or sent; the ticket token (HMAC-signed,
// "T<id>-<mac>") in one of our Message-IDs or in the Reply-To
// plus-address; a "[#id]" subject tag on a ticket of the same customer;
// Outlook's Thread-Index conversation root; Outlook's Thread-Topic of a reply,
// or a "Re:" subject, from the same sender within Config.ThreadWindow. A
// reply to a solved ticket reopens it; to a closed ticket it reopens it or
// opens a linked follow-up, per mailbox (closed_reply). New tickets, follow-ups
// and reopened tickets are enqueued for routing through Enqueuer in the same
// transaction; replies to open tickets are appended without a new task.
//
// # Outbound
//
// Sender.QueueReply stores an agent's reply on the ticket and puts it in the
// outbox (email_deliveries) in one transaction. The mail is
// multipart/alternative (text + HTML) inside multipart/mixed with the
// attachments, with a Message-ID carrying the ticket token, In-Reply-To and
// References of the conversation, Thread-Index/Thread-Topic for Outlook, and a
// Reply-To plus-address. It goes only to the ticket customer's own address.
// Sender delivers through the relay (submission, AUTH PLAIN, STARTTLS or
// implicit TLS), retries temporary failures with doubling backoff, and
// mirrors the state (queued, sent, failed with the SMTP answer) into the
// message's meta.email.delivery so the desk shows it.
//
// The outbox is our own table claimed with FOR UPDATE SKIP LOCKED, not River:
// River's schema lives outside our numbered migrations (rivermigrate keeps
// its own version table), and one table with a due-time index gives the
// same guarantees here (durable, retried, one sender per row across
// processes). Delivery is at least once: a crash between the relay's 250
// and our commit sends the mail again. LISTEN/NOTIFY on "email_outbox"
// only wakes the workers; they also poll.
//
// Optional auto-acknowledgements (per mailbox) name the ticket number, go at
// most once per sender per Config.AutoAckInterval, and never to
// auto-replies, bounces, list mail, the null sender or failing addresses.
//
// # Wiring
//
// cmd/agentdesk (serve_email.go) builds NewServer, NewPoller and NewSender
// from AGENTDESK_SMTP_* / AGENTDESK_EMAIL_SECRET, passes the routing engine
// as the Enqueuer, and hands agent replies of kind email to
// Sender.QueueReply. Support addresses are rows of email_mailboxes
// (CreateMailbox); IMAP accounts are added with Poller.AddAccount; Blob
// serves attachments and raw mail by sha256. `agentdesk loadgen email`
// measures ingest throughput and latency (BENCHMARKS.md).
//
// This package must never import routing or web, never send mail outside
// the outbox, never show unsanitised HTML, and never read or write another
// account's rows: every query is scoped by the account of the mailbox or
// actor.
package email
