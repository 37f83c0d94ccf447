// Package email is AgentDesk's email channel: mail in over SMTP and IMAP,
// threading into tickets, and agent replies out through an SMTP relay.
//
// It owns the email tables of migrations 003 and 007 (email_mailboxes,
// email_imap_accounts, email_blobs, email_messages, email_attachments,
// email_ticket_links, email_deliveries, email_failing_addresses,
// email_auto_acks) and the River jobs of the "email_outbox" queue. For
// inbound mail it writes customers, identities, tickets and messages of the
// core schema itself, because threading, the closed-ticket policy and
// auto-replies decide what happens to the ticket; outbound messages go through postgres.AddMessageTx so the ticket rules
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
// Sender.QueueReply stores an agent's reply on the ticket, records it in
// email_deliveries and inserts its River job (queue "email_outbox") in one
// transaction, so a reply is never recorded without being queued. The mail
// is multipart/alternative (text + HTML) inside multipart/mixed with the
// attachments, with a Message-ID carrying the ticket token, In-Reply-To and
// References of the conversation, Thread-Index/Thread-Topic for Outlook, and
// a Reply-To plus-address. It goes only to the ticket customer's own address.
//
// The outbox is River (riverqueue/river; its schema comes from River's own
// migrations, which agentdesk/postgres.Migrate applies after ours under the
// same lock). River schedules, claims and retries the jobs; a started Sender
// runs a River client whose worker delivers through the relay (submission,
// AUTH PLAIN, STARTTLS or implicit TLS). A temporary failure (4xx, network)
// is retried after RelayConfig.Backoff, doubling per attempt up to an hour
// (the worker's NextRetry); a permanent one (5xx) cancels the job
// (river.JobCancel) and marks the delivery failed with the relay's answer, as
// does the last of RelayConfig.MaxAttempts. email_deliveries stays the
// record of what is sent (raw bytes, state, attempts, last answer, the River
// job id), and the state is mirrored into the message's meta.email.delivery
// ({state, answer, attempts}) so the desk shows it; a successful send is
// recorded and its job completed in one transaction (river.JobCompleteTx).
// Delivery is at least once: a crash between the relay's 250 and that commit
// sends the mail again, once River rescues the job it left running (after
// 10 minutes); a stopped process finishes the deliveries it started. Only a started Sender runs a River client; the
// ingester and a Sender without relay only insert jobs. A database upgraded
// to migration 007 may hold deliveries the earlier outbox left queued
// without a River job: Sender.Start gives each one a job in one
// transaction (only rows whose river_job_id is NULL, which it then sets, so
// a second start adopts nothing) and logs how many it adopted.
//
// # Live updates
//
// With Config.Events set, the desks hear about changes in the transaction
// that makes them: a mail appended to an existing ticket publishes
// message.created and ticket.updated to the ticket's stream and its
// assignee's (a mail that opens a ticket has no desk following it yet, and
// publishes nothing); a reply queued
// does the same; every recorded delivery attempt (sent, failed, or queued
// again with the relay's answer) and a bounce publish message.updated (the
// message, with meta.email.delivery) to the ticket's stream. Publisher is
// this package's interface; cmd/agentdesk wires the hub's.
//
// Optional auto-acknowledgements (per mailbox) name the ticket number, go at
// most once per sender per Config.AutoAckInterval, and never to
// auto-replies, bounces, list mail, the null sender or failing addresses.
//
// # Administration
//
// Admin adds, changes and removes support addresses (email_mailboxes: the
// address, the queue and team its mail is routed to) and IMAP accounts
// (host, port, security tls/starttls/insecure, credentials, folders, an
// optional PEM CA bundle), validating every field and auditing every change
// in its transaction; web/email_admin.go serves it as /api/v1/email/....
// IMAP passwords are write-only: sealed with AES-256-GCM under a key derived
// from the server's secret, never returned or audited; without a secret they
// are refused. A stored password is only ever sent to the server and user it
// was given for: a change of host, port, security or username without a new
// password is refused (Invalid on password) and changes nothing, so an admin
// cannot redirect it to a host of theirs or into plain text. (A new CA
// bundle alone keeps it: trusting another CA for the same host is the
// admin's choice and needs a position on the network path to abuse.)
//
// Support addresses are unique across all accounts, because the SMTP server
// learns the account from the recipient. An address of another account is
// refused with a Conflict that says only "address is not available", never
// whose it is; one of the same account says it is already one of its
// support addresses. Ownership of an address's domain is not verified: on
// an install shared by several organisations, the first account to claim
// an address receives its mail. That is a known limit; such installs must
// vet the addresses their accounts add.
//
// The poller connects only to public addresses unless
// Config.IMAPAllowPrivate (--imap-allow-private) is set: loopback, private,
// shared and link-local addresses are refused when the connection is made,
// after name resolution, so an admin cannot probe the server's own network
// through an IMAP account and read the answers in last_error. Installs with
// their IMAP server on their own network set the flag (make run and the
// tests do). Nothing needs a restart: the SMTP server looks every RCPT up
// in email_mailboxes, and the poller reloads its accounts every
// Config.IMAPPoll and at once on Poller.Reload (Admin's change signal),
// starting added accounts, stopping removed or disabled ones and
// reconnecting changed ones (a new password included). An IMAP server's
// certificate is verified against the account's CA bundle, else
// Config.IMAPRootCAs (--imap-ca-file), else the system's roots.
//
// # Wiring
//
// cmd/agentdesk (serve_email.go) builds NewServer, NewPoller, NewSender and
// NewAdmin from the smtp-*, imap-ca-file, imap-allow-private and
// email-secret flags, passes the
// routing engine as the Enqueuer and the hub as the Publisher, and hands
// agent replies of kind email to Sender.QueueReply. Blob serves attachments
// and raw mail by sha256. `agentdesk loadgen email` measures ingest
// throughput and latency (BENCHMARKS.md).
//
// This package must never import routing or web, never send mail outside
// the outbox (River jobs), never show unsanitised HTML, never return or log
// an IMAP password, and never read or write another account's rows: every
// query is scoped by the account of the mailbox or actor.
package email
