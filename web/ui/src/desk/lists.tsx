import { useEffect, useRef, useState } from "preact/hooks";
import { CHANNELS, PRIORITIES, STATUSES, tickets, type Agent, type Ticket, type TicketFilter } from "./api";
import { CHANNEL_ICON, ago, label } from "./format";
import type { Socket } from "./socket";

/** A new ticket on one of the desk's streams (web/PROTOCOL.md). */
export const TICKET_CREATED = "ticket.created";

export type ListName = "mine" | "queue" | "open";
export const LISTS: { name: ListName; title: string }[] = [
  { name: "mine", title: "My tickets" },
  { name: "queue", title: "Team queue" },
  { name: "open", title: "All open" },
];
const OPEN: string[] = ["new", "open", "pending", "on_hold"];

function baseFilter(list: ListName, me: Agent): TicketFilter {
  switch (list) {
    case "mine":
      return { assignee: "me", status: OPEN };
    case "queue":
      return { team: me.team_ids?.[0], unassigned: true, status: OPEN };
    default:
      return { status: OPEN };
  }
}

/** The stream that carries a list's new tickets beyond the agent's own
 * (web/PROTOCOL.md): All open → account:<id>, Team queue → team:<id> (the
 * account's when the agent has no team). The desk follows it only while
 * the list is on screen: each new ticket is a frame to every follower.
 * Supervisors hear every new ticket on the supervisor stream anyway. */
export function listStream(list: ListName, me: Agent, accountId?: number): string | undefined {
  if (me.role !== "agent" || list === "mine") return undefined;
  if (list === "queue" && me.team_ids?.[0] !== undefined) return `team:${me.team_ids[0]}`;
  return accountId !== undefined ? `account:${accountId}` : undefined;
}

/** Whether a ticket belongs in a list shown with filter f (as the server
 * would answer GET /tickets with it). */
export function matches(t: Ticket, f: TicketFilter, me: Agent): boolean {
  if (f.status && !f.status.includes(t.status)) return false;
  if (f.assignee !== undefined && t.assignee_id !== (f.assignee === "me" ? me.id : f.assignee)) return false;
  if (f.unassigned && t.assignee_id != null) return false;
  if (f.team !== undefined && t.team_id !== f.team) return false;
  if (f.customer !== undefined && t.customer_id !== f.customer) return false;
  if (f.channel && t.channel !== f.channel) return false;
  if (f.priority && t.priority !== f.priority) return false;
  if (f.tag && !(t.tags ?? []).includes(f.tag)) return false;
  return true;
}

/** Newest first, as GET /tickets orders them (created_at, then id). */
function newer(a: Ticket, b: Ticket): boolean {
  const ta = Date.parse(a.times.created_at), tb = Date.parse(b.times.created_at);
  return ta !== tb ? ta > tb : a.id > b.id;
}

/** items with t inserted in order; unchanged when t is there already, or
 * when it sorts after the last loaded item while more pages remain ("Load
 * more" brings it). */
export function insertTicket(items: Ticket[], t: Ticket, more: boolean): Ticket[] {
  if (items.some((x) => x.id === t.id)) return items;
  let i = items.findIndex((x) => newer(t, x));
  if (i < 0) {
    if (more) return items;
    i = items.length;
  }
  return [...items.slice(0, i), t, ...items.slice(i)];
}

export function TicketList(props: {
  list: ListName;
  me: Agent;
  selected?: number;
  unread: Record<number, number>;
  refresh: number;
  onOpen: (id: number) => void;
  onItems?: (items: Ticket[]) => void;
  /** New tickets arrive on it (ticket.created) and join the list live. */
  socket?: Socket;
}) {
  const { list, me } = props;
  const [items, setItems] = useState<Ticket[]>([]);
  const [next, setNext] = useState<string | undefined>();
  const [error, setError] = useState("");
  const [loading, setLoading] = useState(false);
  const [channel, setChannel] = useState("");
  const [priority, setPriority] = useState("");
  const [status, setStatus] = useState("");
  const [tag, setTag] = useState("");
  const listRef = useRef<HTMLUListElement>(null);

  const filter: TicketFilter = {
    ...baseFilter(list, me),
    ...(status ? { status: [status] } : {}),
    channel: channel || undefined,
    priority: priority || undefined,
    tag: tag.trim() || undefined,
    limit: 50,
  };
  const key = JSON.stringify(filter);

  // The keyboard cursor follows a ticket, not a position: tickets joining
  // the list live or a reload must not move it to another ticket. It
  // belongs to one list and filter (key): another starts at the top.
  const [cursor, setCursor] = useState<{ key: string; id?: number }>({ key });
  const lastIdx = useRef({ key, i: 0 });
  if (lastIdx.current.key !== key) lastIdx.current = { key, i: 0 };
  let cursorIdx = cursor.key === key ? items.findIndex((t) => t.id === cursor.id) : -1;
  if (cursorIdx < 0) cursorIdx = Math.min(lastIdx.current.i, Math.max(0, items.length - 1));
  lastIdx.current.i = cursorIdx;
  const setCursorIdx = (i: number) => {
    lastIdx.current = { key, i };
    setCursor({ key, id: items[i]?.id });
  };

  // Only the newest request may fill the list: a slow answer for the list
  // or filter the agent just left must not overwrite the current one.
  const latest = useRef(0);
  // Tickets announced while a reload runs: the answer may have been read
  // before they were committed, and must not drop them.
  const arrived = useRef<Ticket[]>([]);
  async function load(cursor?: string) {
    const n = ++latest.current;
    if (!cursor) arrived.current = [];
    setLoading(true);
    setError("");
    try {
      const page = await tickets({ ...filter, cursor });
      if (n !== latest.current) return;
      let fresh = page.items;
      if (!cursor) for (const t of arrived.current) fresh = insertTicket(fresh, t, !!page.next_cursor);
      setItems((old) => {
        const all = cursor ? [...old, ...fresh] : fresh;
        props.onItems?.(all);
        return all;
      });
      setNext(page.next_cursor || undefined);
    } catch (e) {
      if (n === latest.current) setError((e as Error).message);
    } finally {
      if (n === latest.current) setLoading(false);
    }
  }
  // A ticket created anywhere (REST, a form, a chat) that this list shows.
  const live = useRef({ filter, next });
  live.current = { filter, next };
  useEffect(() => {
    if (!props.socket) return;
    return props.socket.on(TICKET_CREATED, (t: Ticket) => {
      if (!t?.id || !matches(t, live.current.filter, me)) return;
      arrived.current.push(t);
      setItems((old) => {
        const all = insertTicket(old, t, !!live.current.next);
        if (all !== old) props.onItems?.(all);
        return all;
      });
    });
  }, [props.socket, me.id]);

  // The list's stream, followed while the list is shown. Following starts
  // at the stream's head; the list is (re)loaded once the server has
  // answered, so a ticket created just before is in the REST answer and
  // every later one arrives as ticket.created (kept once, by id).
  const socket = props.socket;
  const [accountId, setAccountId] = useState(socket?.accountId);
  useEffect(() => {
    setAccountId(socket?.accountId); // learned between render and this effect
    return socket?.on("account", (d) => setAccountId(d.account_id));
  }, [socket]);
  const stream = socket ? listStream(list, me, accountId) : undefined;
  const [followed, setFollowed] = useState<{ stream?: string; n: number }>({ n: 0 });
  useEffect(() => {
    if (!stream || !socket) return;
    let current = true;
    // Refused (or left): load anyway, without live updates.
    const done = () => current && setFollowed((f) => ({ stream, n: f.n + 1 }));
    socket.follow(stream).then(done, done);
    return () => {
      current = false;
      socket.unfollow(stream);
      setFollowed((f) => ({ n: f.n })); // shown again: wait for the new follow
    };
  }, [stream, socket]);
  // Connected and the follow not answered yet: its answer loads the list.
  // Offline: load now, and again when the follow lands on reconnect.
  const waiting = !!stream && socket?.state === "open" && followed.stream !== stream;
  useEffect(() => {
    if (!waiting) load();
  }, [key, props.refresh, followed.n, waiting]);

  function onKey(e: KeyboardEvent) {
    if (!items.length) return;
    let i = cursorIdx;
    if (e.key === "ArrowDown" || e.key === "j") i = Math.min(items.length - 1, i + 1);
    else if (e.key === "ArrowUp" || e.key === "k") i = Math.max(0, i - 1);
    else if (e.key === "Home") i = 0;
    else if (e.key === "End") i = items.length - 1;
    else if (e.key === "Enter" || e.key === " ") {
      e.preventDefault();
      props.onOpen(items[i].id);
      return;
    } else return;
    e.preventDefault();
    setCursorIdx(i);
    (listRef.current?.children[i] as HTMLElement | undefined)?.focus();
  }

  return (
    <section class="list-pane" aria-label={LISTS.find((l) => l.name === list)?.title}>
      <form class="filters" onSubmit={(e) => e.preventDefault()} aria-label="Filters">
        <label>
          <span class="sr-only">Status</span>
          <select value={status} onChange={(e) => setStatus(e.currentTarget.value)} aria-label="Status filter">
            <option value="">Any open status</option>
            {STATUSES.map((s) => <option value={s}>{label(s)}</option>)}
          </select>
        </label>
        <label>
          <span class="sr-only">Channel</span>
          <select value={channel} onChange={(e) => setChannel(e.currentTarget.value)} aria-label="Channel filter">
            <option value="">All channels</option>
            {CHANNELS.map((c) => <option value={c}>{label(c)}</option>)}
          </select>
        </label>
        <label>
          <span class="sr-only">Priority</span>
          <select value={priority} onChange={(e) => setPriority(e.currentTarget.value)} aria-label="Priority filter">
            <option value="">Any priority</option>
            {PRIORITIES.map((p) => <option value={p}>{label(p)}</option>)}
          </select>
        </label>
        <label class="grow">
          <span class="sr-only">Tag</span>
          <input type="search" placeholder="Tag" value={tag} aria-label="Tag filter"
            onChange={(e) => setTag(e.currentTarget.value)} />
        </label>
      </form>
      {error && <p class="error" role="alert">{error}</p>}
      <ul class="tickets" role="listbox" aria-label="Tickets" ref={listRef} onKeyDown={onKey}
        aria-activedescendant={items[cursorIdx] ? `t-${items[cursorIdx].id}` : undefined}>
        {items.map((t, i) => (
          <li id={`t-${t.id}`} key={t.id} role="option" tabIndex={i === cursorIdx ? 0 : -1}
            aria-selected={t.id === props.selected}
            class={`ticket-row prio-${t.priority}${t.id === props.selected ? " selected" : ""}`}
            onClick={() => { setCursorIdx(i); props.onOpen(t.id); }}
            onFocus={() => setCursorIdx(i)}>
            <span class="ch" aria-label={label(t.channel)} title={label(t.channel)}>{CHANNEL_ICON[t.channel]}</span>
            <span class="subject">{t.subject}</span>
            {props.unread[t.id] ? <span class="badge" aria-label={`${props.unread[t.id]} unread`}>{props.unread[t.id]}</span> : null}
            <span class="meta">
              #{t.id} · {label(t.status)} · {label(t.priority)} · {ago(t.times.updated_at)}
            </span>
          </li>
        ))}
      </ul>
      {!loading && !items.length && !error && <p class="empty">No tickets here.</p>}
      {next && (
        <button class="more" disabled={loading} onClick={() => load(next)}>
          {loading ? "Loading…" : "Load more"}
        </button>
      )}
    </section>
  );
}
