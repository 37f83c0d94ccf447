import { useEffect, useRef, useState } from "preact/hooks";
import {
  CMD, EV, PRIORITIES, cannedResponses, messageAttachments, messageDelivery, messages, renderCanned, startWrapUp, teams, ticketStream, ticketTasks, sendMessage, ticket, updateTicket,
  type Agent, type Canned, type CustomStatus, type Message, type Ticket,
} from "./api";
import { AttachmentList, UploadList, filesOf, useUploads } from "./attach";
import { CannedManager, CannedOptions, CannedPicker, matchCanned, menuKey, slashToken } from "./canned";
import { CHANNEL_ICON, label, when } from "./format";
import { SocketError, type Socket } from "./socket";
import { StatusSelect, type StatusChoice } from "./status";
import { WrapUpDialog } from "./wrapup";

/** What the channel did with an outbound message (meta.delivery). */
const DELIVERY: Record<string, string> = {
  not_sent: "Not sent: no channel configured",
  queued: "Queued",
  sent: "Sent",
  failed: "Not delivered",
};

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
          <AttachmentList list={messageAttachments(m)} />
        </article>
      ))}
      <div ref={end} />
    </div>
  );
}

type Mode = "reply" | "note";

/** Canned responses, shared by the composers of this page; reloaded when
 * one is managed. */
function useCanned(): [Canned[], () => void] {
  const [list, setList] = useState<Canned[]>([]);
  const reload = () => {
    cannedResponses().then(setList, () => {});
  };
  useEffect(reload, []);
  return [list, reload];
}

export function Composer(props: { ticket: Ticket; me: Agent; socket: Socket; onSent: (m: Message) => void }) {
  const t = props.ticket;
  const replyKind = t.channel === "chat" ? "chat" : "email";
  const [mode, setMode] = useState<Mode>("reply");
  const [body, setBody] = useState("");
  const [subject, setSubject] = useState(`Re: ${t.subject}`);
  const uploads = useUploads();
  const [canned, reloadCanned] = useCanned();
  const [teamNames, setTeamNames] = useState<Map<number, string>>(new Map());
  const [picker, setPicker] = useState(false);
  const [managing, setManaging] = useState<{ draft?: string } | null>(null);
  // The "/shortcut" menu: where its "/" is, what follows it, the active option.
  const [slash, setSlash] = useState<{ start: number; query: string } | null>(null);
  const [slashActive, setSlashActive] = useState(0);
  const [dragging, setDragging] = useState(false);
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const lastTyping = useRef(0);
  const area = useRef<HTMLTextAreaElement>(null);
  const caretAfter = useRef<number | null>(null);
  const slashItems = slash ? matchCanned(canned, slash.query, true).slice(0, 8) : [];

  useEffect(() => {
    teams().then((l) => setTeamNames(new Map(l.items.map((x) => [x.id, x.name]))), () => {});
  }, []);
  // After an insertion, the caret goes to the end of the inserted text.
  useEffect(() => {
    if (caretAfter.current === null || !area.current) return;
    area.current.focus();
    area.current.setSelectionRange(caretAfter.current, caretAfter.current);
    caretAfter.current = null;
  }, [body]);

  function typing() {
    // At most one typing signal every 2 s: the customer needs to see liveness, not keystrokes.
    const now = Date.now();
    if (mode === "reply" && replyKind === "chat" && now - lastTyping.current > 2000) {
      lastTyping.current = now;
      props.socket.send(CMD.typing, { ticket_id: t.id, typing: true });
    }
  }

  /** Inserts c, rendered for this ticket, at the caret or over the "/query". */
  async function insert(c: Canned, over?: { start: number; end: number }) {
    setSlash(null);
    setPicker(false);
    setError("");
    let text: string;
    try {
      text = await renderCanned(c.id, t.id);
    } catch (err) {
      setError(`${c.title}: ${(err as Error).message}`);
      area.current?.focus();
      return;
    }
    const el = area.current;
    const cur = el?.value ?? body;
    const start = over?.start ?? el?.selectionStart ?? cur.length;
    const end = over?.end ?? el?.selectionEnd ?? cur.length;
    caretAfter.current = start + text.length;
    setBody(cur.slice(0, start) + text + cur.slice(end));
    typing();
  }

  function onBodyInput(e: Event) {
    const el = e.currentTarget as HTMLTextAreaElement;
    setBody(el.value);
    typing();
    const tok = slashToken(el.value, el.selectionStart ?? el.value.length);
    setSlash(tok);
    if (tok?.query !== slash?.query) setSlashActive(0);
  }

  function onBodyKey(e: KeyboardEvent) {
    if (slash && slashItems.length) {
      const r = menuKey(e.key, slashActive, slashItems.length);
      if (r !== null) {
        e.preventDefault();
        if (r === "pick") {
          const el = area.current;
          insert(slashItems[slashActive], { start: slash.start, end: el?.selectionStart ?? body.length });
        } else if (r === "close") setSlash(null);
        else setSlashActive(r);
        return;
      }
    } else if (slash && e.key === "Escape") {
      setSlash(null);
      return;
    }
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey || (replyKind === "chat" && mode === "reply" && !e.shiftKey))) send(e);
  }

  async function send(e?: Event) {
    e?.preventDefault();
    if ((!body.trim() && !uploads.ids.length) || busy || uploads.busy) return;
    setBusy(true);
    setError("");
    try {
      let m: Message;
      let ack: any;
      const withFiles = uploads.ids.length > 0;
      if (mode === "reply" && replyKind === "chat" && !withFiles && props.socket.state === "open") {
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
          attachment_ids: withFiles ? uploads.ids : undefined,
        });
      }
      props.onSent(m);
      setBody("");
      uploads.clear();
      area.current?.focus();
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  }

  const canSend = (body.trim() || uploads.ids.length > 0) && !uploads.busy && !busy;
  const slashId = "canned-slash-options";
  return (
    <form class={`composer mode-${mode}${dragging ? " dragging" : ""}`} onSubmit={send} aria-label="Composer"
      onKeyDown={(e) => {
        if (e.altKey && (e.key === "c" || e.key === "C")) {
          e.preventDefault();
          setSlash(null);
          setPicker(true);
        }
      }}
      onDragOver={(e) => {
        if (!e.dataTransfer?.types?.includes("Files")) return;
        e.preventDefault();
        setDragging(true);
      }}
      onDragLeave={(e) => { if (e.currentTarget === e.target) setDragging(false); }}
      onDrop={(e) => {
        const files = filesOf(e.dataTransfer);
        setDragging(false);
        if (!files.length) return;
        e.preventDefault();
        uploads.add(files);
      }}>
      <div class="composer-tabs" role="tablist" aria-label="Message type">
        <button type="button" role="tab" aria-selected={mode === "reply"} onClick={() => setMode("reply")}>
          {replyKind === "chat" ? "Chat reply" : "Email reply"}
        </button>
        <button type="button" role="tab" aria-selected={mode === "note"} onClick={() => setMode("note")}>Internal note</button>
        <span class="composer-tools">
          {body.trim() && (
            <button type="button" class="link save-canned" onClick={() => setManaging({ draft: body })}>Save as canned</button>
          )}
          <button type="button" class="canned-button" aria-haspopup="dialog" aria-expanded={picker} data-testid="canned-button"
            aria-keyshortcuts="Alt+C" onClick={() => setPicker((x) => !x)}>Canned</button>
        </span>
      </div>
      {picker && (
        <CannedPicker list={canned} teamNames={teamNames} onPick={(c) => insert(c)}
          onClose={() => { setPicker(false); area.current?.focus(); }}
          onManage={() => { setPicker(false); setManaging({}); }} />
      )}
      {mode === "reply" && replyKind === "email" && (
        <input aria-label="Subject" class="subject-input" value={subject} onInput={(e) => setSubject(e.currentTarget.value)} />
      )}
      <div class="composer-body">
        <textarea ref={area} aria-label={mode === "note" ? "Internal note (not shown to the customer)" : "Reply to the customer"}
          placeholder={mode === "note" ? "Internal note — only agents see this (/ for canned responses)" : "Type a reply… / for canned responses, Ctrl+Enter sends"}
          value={body} rows={3}
          aria-controls={slash ? slashId : undefined}
          aria-autocomplete={slash ? "list" : undefined}
          aria-activedescendant={slash && slashItems[slashActive] ? `${slashId}-${slashItems[slashActive].id}` : undefined}
          onInput={onBodyInput} onKeyDown={onBodyKey}
          onBlur={() => setSlash(null)}
          onPaste={(e) => {
            const files = filesOf(e.clipboardData);
            if (!files.length) return;
            e.preventDefault();
            uploads.add(files);
          }} />
        {slash && (
          <div class="canned-slash" data-testid="canned-slash">
            <CannedOptions id={slashId} items={slashItems} active={slashActive} teamNames={teamNames}
              onPick={(c) => insert(c, { start: slash.start, end: area.current?.selectionStart ?? body.length })} onHover={setSlashActive} />
          </div>
        )}
      </div>
      <UploadList items={uploads.items} onRemove={uploads.remove} />
      {error && <p class="error" role="alert">{error}</p>}
      {uploads.error && <p class="error" role="alert" data-testid="upload-error">{uploads.error.filename}: {uploads.error.error}</p>}
      <div class="composer-actions">
        <label class="file-button">+ Attach file<input type="file" multiple class="sr-only" data-testid="attach-input"
          onChange={(e) => {
            const input = e.currentTarget;
            const files = Array.from(input.files ?? []);
            input.value = "";
            if (files.length) uploads.add(files);
          }} /></label>
        <span class="muted drop-hint">{dragging ? "Drop to attach" : "Paste or drop files to attach"}</span>
        <button type="submit" class="primary" disabled={!canSend}>
          {uploads.busy ? "Uploading…" : mode === "note" ? "Add note" : "Send"}
        </button>
      </div>
      {managing && (
        <CannedManager me={props.me} list={canned} draftBody={managing.draft} onChanged={reloadCanned}
          onClose={() => { setManaging(null); area.current?.focus(); }} />
      )}
    </form>
  );
}

export function Fields({ ticket: t, onChange, onWrapUp }: { ticket: Ticket; onChange: (t: Ticket) => void; onWrapUp: (custom: CustomStatus) => void }) {
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
  function chooseStatus(c: StatusChoice) {
    if ("status" in c) {
      if (c.status !== t.status || t.custom_status) save({ status: c.status });
    } else if (c.custom.maps_to === "solved" || c.custom.maps_to === "closed") {
      // Solving and closing need the wrap-up's reasons: the dialog sets it.
      onWrapUp(c.custom);
    } else if (c.custom.name !== t.custom_status) {
      save({ custom_status: c.custom.name });
    }
  }
  return (
    <div class="fields" role="group" aria-label="Ticket fields">
      <label>Status
        <StatusSelect ticket={t} onChoose={chooseStatus} />
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
  // The wrap-up dialog, open; custom is the solved or closed custom status
  // chosen in the status picker, which the wrap-up sets with the outcome.
  const [wrapping, setWrapping] = useState<{ custom?: CustomStatus } | null>(null);
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
    const offUpdated = props.socket.on(EV.messageUpdated, (d) => {
      const m: Message = d.message ?? d;
      if (m.ticket_id !== props.id) return;
      setItems((old) => old.map((x) => (x.id === m.id ? m : x)));
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
      offUpdated();
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
  function startWrapping(custom?: CustomStatus) {
    // After-contact work starts now: routing holds new offers until it ends.
    const task = ticketTasks.get(t!.id);
    if (task) startWrapUp(task).catch(() => {});
    setWrapping({ custom });
  }

  return (
    <section class="workspace" aria-labelledby="ticket-title">
      <header class="ticket-head">
        <h2 id="ticket-title">
          <span aria-hidden="true">{CHANNEL_ICON[t.channel]} </span>
          {t.subject} <span class="muted">#{t.id}</span>
        </h2>
        <button class={done ? "" : "primary"} data-testid="wrapup" disabled={done} onClick={() => startWrapping()}>
          {done ? `${label(t.status)}${t.custom_status ? ` · ${label(t.custom_status)}` : ""}` : "Wrap up"}
        </button>
      </header>
      <Fields ticket={t} onChange={(nt) => { setT(nt); props.onChanged(); }} onWrapUp={(custom) => startWrapping(custom)} />
      <Timeline items={items} agents={props.agents} customerName={customerName} />
      <p class="typing" aria-live="polite">{typing ? `${customerName || "Customer"} is typing…` : ""}</p>
      {!done && (
        <Composer ticket={t} me={props.me} socket={props.socket}
          onSent={(m) => setItems((old) => (old.some((x) => x.id === m.id) ? old : [...old, m]))} />
      )}
      {wrapping && (
        <WrapUpDialog ticket={t} customStatus={wrapping.custom} onCancel={() => setWrapping(null)}
          onDone={(nt) => { setT(nt); setWrapping(null); props.onChanged(); }} />
      )}
    </section>
  );
}
