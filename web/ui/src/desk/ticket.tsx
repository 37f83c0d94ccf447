import { useEffect, useRef, useState } from "preact/hooks";
import {
  CMD, EV, PRIORITIES, STATUSES, cannedResponses, messageAttachments, messageDelivery, messages, savePersonalCanned, startWrapUp, ticketStream, ticketTasks, sendMessage, ticket, updateTicket, uploadAttachment,
  type Agent, type Attachment, type Canned, type Message, type Ticket,
} from "./api";
import { CHANNEL_ICON, bytes, label, when } from "./format";
import { SocketError, type Socket } from "./socket";
import { WrapUpDialog } from "./wrapup";

/** What the channel did with an outbound message (meta.delivery). */
const DELIVERY: Record<string, string> = {
  not_sent: "Not sent: no channel configured",
  queued: "Queued",
  sent: "Sent",
  failed: "Not delivered",
};

function Attachments({ list }: { list: Attachment[] }) {
  if (!list.length) return null;
  return (
    <ul class="attachments" aria-label="Attachments">
      {list.map((a) => (
        <li>
          {a.url ? <a href={a.url} target="_blank" rel="noopener" download={a.name}>⤓ {a.name}</a> : <span>⎘ {a.name}</span>}{" "}
          <span class="muted">{bytes(a.size)}</span>
        </li>
      ))}
    </ul>
  );
}

function Delivery({ m }: { m: Message }) {
  const d = messageDelivery(m);
  if (!d || m.direction !== "out") return null;
  return (
    <span class={`delivery delivery-${d.state}`} title={d.answer || "Delivery to the customer"}>
      {DELIVERY[d.state] ?? label(d.state)}
    </span>
  );
}

function author(m: Message, agents: Map<number, Agent>, customerName: string): string {
  if (m.direction === "in") return customerName || "Customer";
  if (m.author_id) return agents.get(m.author_id)?.name ?? `Agent #${m.author_id}`;
  return m.direction === "out" ? "AgentDesk" : "System";
}

export function Timeline({ items, agents, customerName }: { items: Message[]; agents: Map<number, Agent>; customerName: string }) {
  const end = useRef<HTMLDivElement>(null);
  useEffect(() => end.current?.scrollIntoView({ block: "end" }), [items.length]);
  return (
    <div class="timeline" role="log" aria-live="polite" aria-label="Conversation">
      {items.map((m) => (
        <article key={m.id} class={`msg dir-${m.direction} kind-${m.kind}`} data-testid="message">
          <header>
            <span aria-hidden="true">{CHANNEL_ICON[m.kind] ?? "•"}</span>{" "}
            <strong>{author(m, agents, customerName)}</strong>
            <span class="muted"> · {m.kind === "note" ? "Internal note" : label(m.kind)} · <time dateTime={m.created_at}>{when(m.created_at)}</time></span>
            <Delivery m={m} />
          </header>
          {m.subject && (m.kind === "email" || m.kind === "form") && m.subject !== m.body && <p class="msg-subject">{m.subject}</p>}
          <p class="msg-body">{m.body}</p>
          <Attachments list={messageAttachments(m)} />
        </article>
      ))}
      <div ref={end} />
    </div>
  );
}

type Mode = "reply" | "note";

function Composer(props: { ticket: Ticket; me: Agent; socket: Socket; onSent: (m: Message) => void }) {
  const t = props.ticket;
  const replyKind = t.channel === "chat" ? "chat" : "email";
  const [mode, setMode] = useState<Mode>("reply");
  const [body, setBody] = useState("");
  const [subject, setSubject] = useState(`Re: ${t.subject}`);
  const [files, setFiles] = useState<Attachment[]>([]);
  const [canned, setCanned] = useState<Canned[]>([]);
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const lastTyping = useRef(0);
  const area = useRef<HTMLTextAreaElement>(null);

  useEffect(() => {
    cannedResponses().then(setCanned, () => {});
  }, []);

  function typing() {
    // At most one typing signal every 2 s: the customer needs to see liveness, not keystrokes.
    const now = Date.now();
    if (mode === "reply" && replyKind === "chat" && now - lastTyping.current > 2000) {
      lastTyping.current = now;
      props.socket.send(CMD.typing, { ticket_id: t.id, typing: true });
    }
  }

  async function attach(e: Event) {
    const input = e.currentTarget as HTMLInputElement;
    const list = Array.from(input.files ?? []);
    input.value = "";
    for (const f of list) {
      try {
        const a = await uploadAttachment(f);
        setFiles((old) => [...old, { ...a, name: a.name || f.name, size: a.size ?? f.size }]);
      } catch (err) {
        setError(`${f.name}: ${(err as Error).message}`);
      }
    }
  }

  async function send(e?: Event) {
    e?.preventDefault();
    if (!body.trim() || busy) return;
    setBusy(true);
    setError("");
    try {
      let m: Message;
      let ack: any;
      if (mode === "reply" && replyKind === "chat" && !files.length && props.socket.state === "open") {
        // Live chat goes over the websocket, which delivers it to the visitor.
        const clientId = `${t.id}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;
        try {
          ack = await props.socket.request(CMD.chatSend, { ticket_id: t.id, body, client_msg_id: clientId });
        } catch (err) {
          // No live chat on this server: the reply is still stored (REST).
          if (!(err instanceof SocketError && err.code === "unavailable")) throw err;
        }
      }
      if (ack) {
        m = {
          id: ack.message_id ?? Date.now(), ticket_id: t.id, customer_id: t.customer_id, kind: "chat", direction: "out",
          author_id: props.me.id, body, created_at: new Date().toISOString(),
        };
      } else {
        m = await sendMessage(t.id, {
          kind: mode === "note" ? "note" : replyKind,
          direction: mode === "note" ? "internal" : "out",
          body,
          subject: mode === "reply" && replyKind === "email" ? subject : undefined,
          meta: files.length ? { attachments: files } : undefined,
        });
      }
      props.onSent(m);
      setBody("");
      setFiles([]);
      area.current?.focus();
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  }

  return (
    <form class={`composer mode-${mode}`} onSubmit={send} aria-label="Composer">
      <div class="composer-tabs" role="tablist" aria-label="Message type">
        <button type="button" role="tab" aria-selected={mode === "reply"} onClick={() => setMode("reply")}>
          {replyKind === "chat" ? "Chat reply" : "Email reply"}
        </button>
        <button type="button" role="tab" aria-selected={mode === "note"} onClick={() => setMode("note")}>Internal note</button>
        {body.trim() && (
          <button type="button" class="link save-canned" onClick={() => {
            const title = prompt("Name this canned response", body.trim().split("\n")[0].slice(0, 40));
            if (!title) return;
            savePersonalCanned(title, body);
            cannedResponses().then(setCanned, () => {});
          }}>Save as canned</button>
        )}
        {canned.length > 0 && (
          <select aria-label="Insert canned response" value="" onChange={(e) => {
            const c = canned.find((x) => String(x.id) === e.currentTarget.value);
            if (c) setBody((b) => (b ? b + "\n" : "") + c.body);
            area.current?.focus();
          }}>
            <option value="">Canned responses…</option>
            {canned.map((c) => <option value={String(c.id)}>{c.title}</option>)}
          </select>
        )}
      </div>
      {mode === "reply" && replyKind === "email" && (
        <input aria-label="Subject" class="subject-input" value={subject} onInput={(e) => setSubject(e.currentTarget.value)} />
      )}
      <textarea ref={area} aria-label={mode === "note" ? "Internal note (not shown to the customer)" : "Reply to the customer"}
        placeholder={mode === "note" ? "Internal note — only agents see this" : "Type a reply… (Ctrl+Enter sends)"}
        value={body} rows={3}
        onInput={(e) => { setBody(e.currentTarget.value); typing(); }}
        onKeyDown={(e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey || (replyKind === "chat" && mode === "reply" && !e.shiftKey))) send(e); }} />
      {files.length > 0 && (
        <ul class="attachments" aria-label="Attached files">
          {files.map((f, i) => (
            <li>⎘ {f.name} <span class="muted">{bytes(f.size)}</span>{" "}
              <button type="button" class="link" aria-label={`Remove ${f.name}`} onClick={() => setFiles(files.filter((_, j) => j !== i))}>×</button>
            </li>
          ))}
        </ul>
      )}
      {error && <p class="error" role="alert">{error}</p>}
      <div class="composer-actions">
        <label class="file-button">+ Attach file<input type="file" multiple onChange={attach} class="sr-only" /></label>
        <button type="submit" class="primary" disabled={busy || !body.trim()}>
          {mode === "note" ? "Add note" : "Send"}
        </button>
      </div>
    </form>
  );
}

function Fields({ ticket: t, onChange }: { ticket: Ticket; onChange: (t: Ticket) => void }) {
  const [tags, setTags] = useState(t.tags.join(", "));
  const [error, setError] = useState("");
  useEffect(() => setTags(t.tags.join(", ")), [t.id, t.tags.join(",")]);
  async function save(patch: Partial<Ticket>) {
    setError("");
    try {
      onChange(await updateTicket(t.id, patch));
    } catch (e) {
      setError((e as Error).message);
    }
  }
  return (
    <div class="fields" role="group" aria-label="Ticket fields">
      <label>Status
        <select value={t.status} onChange={(e) => save({ status: e.currentTarget.value as Ticket["status"] })}>
          {STATUSES.filter((s) => s !== "solved" && s !== "closed" || s === t.status).map((s) => <option value={s}>{label(s)}</option>)}
        </select>
      </label>
      <label>Priority
        <select value={t.priority} onChange={(e) => save({ priority: e.currentTarget.value as Ticket["priority"] })}>
          {PRIORITIES.map((p) => <option value={p}>{label(p)}</option>)}
        </select>
      </label>
      <label class="grow">Tags
        <input value={tags} onInput={(e) => setTags(e.currentTarget.value)}
          onBlur={() => {
            const next = tags.split(",").map((x) => x.trim()).filter(Boolean);
            if (next.join(",") !== t.tags.join(",")) save({ tags: next });
          }} />
      </label>
      {error && <p class="error" role="alert">{error}</p>}
    </div>
  );
}

export function TicketView(props: {
  id: number;
  me: Agent;
  socket: Socket;
  agents: Map<number, Agent>;
  customerName: (id: number) => string;
  onChanged: () => void;
  onTicket: (t: Ticket) => void;
}) {
  const [t, setT] = useState<Ticket | null>(null);
  const [items, setItems] = useState<Message[]>([]);
  const [error, setError] = useState("");
  const [typingUntil, setTypingUntil] = useState(0);
  const [wrapping, setWrapping] = useState(false);
  const [, tick] = useState(0);

  useEffect(() => {
    let live = true;
    setT(null);
    setItems([]);
    setError("");
    // The conversation pages oldest first; tail is the cursor of its last
    // (growing) page, from which a poll reads what is new.
    let tail: string | undefined;
    const merge = (more: Message[]) =>
      setItems((old) => {
        const seen = new Set(old.map((m) => m.id));
        const add = more.filter((m) => !seen.has(m.id));
        if (!add.length) return old;
        return [...old, ...add].sort((a, b) => a.created_at.localeCompare(b.created_at) || a.id - b.id);
      });
    async function readFrom(cursor: string | undefined): Promise<Message[]> {
      const all: Message[] = [];
      for (let i = 0; i < 20; i++) {
        const p = await messages(props.id, cursor);
        all.push(...p.items);
        if (!p.next_cursor) break;
        cursor = tail = p.next_cursor;
      }
      return all;
    }
    (async () => {
      try {
        const [tk, all] = await Promise.all([ticket(props.id), readFrom(undefined)]);
        if (!live) return;
        setT(tk);
        merge(all);
      } catch (e) {
        if (live) setError((e as Error).message);
      }
    })();
    // Events bring new messages at once; this poll is the safety net for a
    // lost connection or a change nobody published.
    const poll = setInterval(async () => {
      if (document.hidden) return;
      try {
        const more = await readFrom(tail);
        if (live) merge(more);
      } catch {
        /* the next round tries again */
      }
    }, 10000);
    props.socket.follow(ticketStream(props.id));
    const offMsg = props.socket.on(EV.message, (d) => {
      const m: Message = d.message ?? d;
      if (m.ticket_id !== props.id) return;
      setItems((old) => (old.some((x) => x.id === m.id) ? old : [...old, m]));
      if (m.direction === "in") setTypingUntil(0);
    });
    const offTyping = props.socket.on(EV.typing, (d) => {
      if (d?.ticket_id !== props.id || d?.from === "agent") return;
      setTypingUntil(d.typing === false ? 0 : Date.now() + 5000);
    });
    const offUpd = props.socket.on(EV.ticketUpdated, (d) => {
      const nt: Ticket = d.ticket ?? d;
      if (nt.id === props.id) setT(nt);
    });
    return () => {
      live = false;
      offMsg();
      offTyping();
      offUpd();
      clearInterval(poll);
      props.socket.unfollow(ticketStream(props.id));
    };
  }, [props.id]);

  useEffect(() => {
    if (t) props.onTicket(t);
  }, [t]);

  useEffect(() => {
    if (!typingUntil) return;
    const h = setTimeout(() => tick((x) => x + 1), typingUntil - Date.now() + 50);
    return () => clearTimeout(h);
  }, [typingUntil]);

  if (error) return <section class="workspace"><p class="error" role="alert">{error}</p></section>;
  if (!t) return <section class="workspace" aria-busy="true"><p class="muted">Loading ticket…</p></section>;
  const customerName = t.customer_name ?? props.customerName(t.customer_id);
  const typing = typingUntil > Date.now();
  const done = t.status === "solved" || t.status === "closed";

  return (
    <section class="workspace" aria-labelledby="ticket-title">
      <header class="ticket-head">
        <h2 id="ticket-title">
          <span aria-hidden="true">{CHANNEL_ICON[t.channel]} </span>
          {t.subject} <span class="muted">#{t.id}</span>
        </h2>
        <button class={done ? "" : "primary"} data-testid="wrapup" disabled={done} onClick={() => {
          // After-contact work starts now: routing holds new offers until it ends.
          const task = ticketTasks.get(t.id);
          if (task) startWrapUp(task).catch(() => {});
          setWrapping(true);
        }}>
          {done ? `${label(t.status)}` : "Wrap up"}
        </button>
      </header>
      <Fields ticket={t} onChange={(nt) => { setT(nt); props.onChanged(); }} />
      <Timeline items={items} agents={props.agents} customerName={customerName} />
      <p class="typing" aria-live="polite">{typing ? `${customerName || "Customer"} is typing…` : ""}</p>
      {!done && (
        <Composer ticket={t} me={props.me} socket={props.socket}
          onSent={(m) => setItems((old) => (old.some((x) => x.id === m.id) ? old : [...old, m]))} />
      )}
      {wrapping && (
        <WrapUpDialog ticket={t} onCancel={() => setWrapping(false)}
          onDone={(nt) => { setT(nt); setWrapping(false); props.onChanged(); }} />
      )}
    </section>
  );
}
