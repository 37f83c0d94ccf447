import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import {
  AGENT_SOCKET, AWAY_REASONS, EV, acceptOffer, customer, rejectOffer, setPresence, ticketTasks, normalizeOffer, queues, ticket, ticketStream, agents as listAgents, getPresence, logout, me as whoami,
  setUnauthenticatedHandler, type Agent, type Customer, type Message, type Offer, type Presence, type Ticket,
} from "./api";
import { CustomerPanel } from "./customer";
import { label } from "./format";
import { LISTS, TicketList, type ListName } from "./lists";
import { LiveQueues } from "./live";
import { Login } from "./login";
import { Widgets } from "./widgets";
import { OfferCard, chime, notify } from "./offer";
import { Socket, type SocketState } from "./socket";
import { TicketView } from "./ticket";

interface Route {
  list: ListName | "live" | "widgets";
  ticket?: number;
}

function parseRoute(): Route {
  if (location.pathname.startsWith("/live")) return { list: "live" };
  if (location.pathname.startsWith("/widgets")) return { list: "widgets" };
  const m = location.pathname.match(/^\/(mine|queue|open)(?:\/tickets\/(\d+))?/) ?? location.pathname.match(/^\/tickets\/(\d+)/);
  if (!m) return { list: "mine" };
  if (m[0].startsWith("/tickets")) return { list: "mine", ticket: Number(m[1]) };
  return { list: m[1] as ListName, ticket: m[2] ? Number(m[2]) : undefined };
}

function routePath(r: Route): string {
  return `/${r.list}${r.ticket ? `/tickets/${r.ticket}` : ""}`;
}

export function App() {
  const [me, setMe] = useState<Agent | null | undefined>(undefined);
  useEffect(() => {
    setUnauthenticatedHandler(() => setMe(null));
    whoami().then(setMe, () => setMe(null));
  }, []);
  if (me === undefined) return <p class="muted boot">Loading…</p>;
  if (me === null) return <Login onLogin={setMe} />;
  return <Desk me={me} onLogout={() => setMe(null)} />;
}

function PresenceSwitch({ presence, onChange }: { presence: Presence; onChange: (p: Presence) => void }) {
  const reason = presence.reason || "break";
  const known = (AWAY_REASONS as readonly string[]).includes(reason);
  const value = presence.state === "away" ? `away:${reason}` : presence.state;
  return (
    <label class={`presence presence-${presence.state}`}>
      <span class="dot" aria-hidden="true" />
      <span class="sr-only">Presence</span>
      <select aria-label="Presence" value={value} data-testid="presence" onChange={(e) => {
        const v = e.currentTarget.value;
        onChange(v.startsWith("away:") ? { state: "away", reason: v.slice(5) } : { state: v as Presence["state"] });
      }}>
        {presence.state === "busy" && <option value="busy" disabled>Busy</option>}
        {presence.state === "wrap_up" && <option value="wrap_up" disabled>Wrap-up</option>}
        <option value="available">Available</option>
        {AWAY_REASONS.map((r) => <option value={`away:${r}`}>Away — {label(r)}</option>)}
        {presence.state === "away" && !known && <option value={`away:${reason}`}>Away — {reason}</option>}
        <option value="offline">Offline</option>
      </select>
    </label>
  );
}

function Desk({ me, onLogout }: { me: Agent; onLogout: () => void }) {
  const socket = useMemo(() => new Socket(AGENT_SOCKET), []);
  const [sockState, setSockState] = useState<SocketState>("connecting");
  const [route, setRoute] = useState<Route>(parseRoute);
  const [presence, setPres] = useState<Presence>({ state: "offline" });
  const [presErr, setPresErr] = useState("");
  const [offers, setOffers] = useState<{ offer: Offer; at: number }[]>([]);
  const [offerBusy, setOfferBusy] = useState(false);
  const [offerErr, setOfferErr] = useState("");
  const [unread, setUnread] = useState<Record<number, number>>({});
  const [refresh, setRefresh] = useState(0);
  const [agents, setAgents] = useState<Map<number, Agent>>(new Map([[me.id, me]]));
  const [current, setCurrent] = useState<Ticket | null>(null);
  const names = useRef(new Map<number, string>());
  const watched = useRef(new Set<number>());
  const queueNames = useRef(new Map<number, string>());
  const queuesLoaded = useRef<Promise<unknown>>(Promise.resolve());
  const counted = useRef(new Set<number>());
  const presenceKnown = useRef(false);
  const routeRef = useRef(route);
  routeRef.current = route;

  /** (Re)reads the queue list; queueName waits for the read in flight. */
  function loadQueues() {
    queuesLoaded.current = queues().then((m) => (queueNames.current = m));
    return queuesLoaded.current;
  }

  // queueName is the name of queue id once the list has loaded, read again
  // when the list has no such queue (created after the desk was opened).
  async function queueName(id: number): Promise<string | undefined> {
    await queuesLoaded.current;
    if (!queueNames.current.has(id)) {
      await loadQueues();
    }
    return queueNames.current.get(id);
  }

  function go(r: Route, replace = false) {
    if (replace) history.replaceState(null, "", routePath(r));
    else history.pushState(null, "", routePath(r));
    setRoute(r);
    if (r.ticket) setUnread((u) => ({ ...u, [r.ticket!]: 0 }));
  }

  useEffect(() => {
    const onPop = () => setRoute(parseRoute());
    addEventListener("popstate", onPop);
    if (location.pathname === "/" || location.pathname === "/index.html") go(route, true);
    listAgents().then((l) => setAgents(new Map(l.items.map((a) => [a.id, a]))), () => {});
    // The first read must not undo a change made or announced while it ran.
    getPresence().then((p) => !presenceKnown.current && setPres(p), () => {});
    loadQueues();
    socket.start();
    // Lists follow events; a slow poll catches what no event announced.
    const poll = setInterval(() => !document.hidden && setRefresh((x) => x + 1), 30000);
    const offs = [
      socket.onState(setSockState),
      socket.on(EV.offer, (d) => {
        const o: Offer = normalizeOffer(d.offer ?? d);
        if (!o.queue_name && o.queue_id) o.queue_name = queueNames.current.get(o.queue_id);
        // An offer can arrive before the queue list has loaded, or name a
        // queue created since: fill the name in when it is known.
        if (!o.queue_name && o.queue_id) {
          queueName(o.queue_id).then((name) => {
            if (name) setOffers((old) => old.map((x) => (x.offer.offer_id === o.offer_id ? { ...x, offer: { ...x.offer, queue_name: name } } : x)));
          }, () => {});
        }
        setOffers((old) => (old.some((x) => x.offer.offer_id === o.offer_id) ? old : [...old, { offer: o, at: Date.now() }]));
        chime();
        notify(o);
        // The routing event names ids only; fill in who is waiting.
        if (!o.customer_name && o.customer_id) {
          customer(o.customer_id).then((c) => {
            setOffers((old) => old.map((x) => (x.offer.offer_id === o.offer_id ? { ...x, offer: { ...x.offer, customer_name: c.name } } : x)));
          }, () => {});
        }
        if (!o.subject && o.ticket_id) {
          ticket(o.ticket_id).then((tk) => {
            setOffers((old) => old.map((x) => (x.offer.offer_id === o.offer_id ? { ...x, offer: { ...x.offer, subject: tk.subject } } : x)));
          }, () => {});
        }
      }),
      socket.on(EV.offerGone, (d) => {
        const id = d.offer_id ?? d.task_id;
        setOffers((old) => old.filter((x) => x.offer.offer_id !== id));
      }),
      socket.on(EV.assigned, (d) => {
        setOffers((old) => old.filter((x) => x.offer.offer_id !== d.task_id));
        setRefresh((x) => x + 1);
      }),
      socket.on(EV.message, (d) => {
        const m: Message = d.message ?? d;
        // A message reaches both the ticket's and the assignee's stream: count it once.
        if (counted.current.has(m.id)) return;
        counted.current.add(m.id);
        if (m.direction === "in" && m.ticket_id !== routeRef.current.ticket) {
          setUnread((u) => ({ ...u, [m.ticket_id]: (u[m.ticket_id] ?? 0) + 1 }));
        }
      }),
      socket.on(EV.presence, (d) => {
        // Supervisors' streams carry everyone's presence: only mine is mine.
        if (!d?.state || (d.agent_id && d.agent_id !== me.id)) return;
        presenceKnown.current = true;
        setPres({ state: d.state, reason: d.reason });
      }),
      socket.on(EV.resync, () => setRefresh((x) => x + 1)),
      socket.on(EV.ticketUpdated, () => setRefresh((x) => x + 1)),
      socket.on(EV.ticketUnassigned, () => setRefresh((x) => x + 1)),
    ];
    return () => {
      removeEventListener("popstate", onPop);
      clearInterval(poll);
      offs.forEach((f) => f());
      watched.current.forEach((id) => socket.unfollow(ticketStream(id)));
      socket.stop();
    };
  }, []);

  /** Follows the streams of my open chats and emails, for unread counts. */
  function watch(items: Ticket[]) {
    if (route.list !== "mine") return;
    const want = new Set(items.filter((t) => t.assignee_id === me.id).slice(0, 40).map((t) => t.id));
    for (const id of watched.current) if (!want.has(id)) socket.unfollow(ticketStream(id));
    for (const id of want) if (!watched.current.has(id)) socket.follow(ticketStream(id));
    watched.current = want;
  }

  const totalUnread = Object.values(unread).reduce((a, b) => a + b, 0);
  useEffect(() => {
    document.title = `${totalUnread ? `(${totalUnread}) ` : ""}${offers.length ? "● " : ""}AgentDesk`;
  }, [totalUnread, offers.length]);

  async function changePresence(p: Presence) {
    setPresErr("");
    presenceKnown.current = true;
    if (p.state === "available" && "Notification" in window && Notification.permission === "default") {
      Notification.requestPermission().catch(() => {});
    }
    try {
      const r = await setPresence(p);
      setPres(r?.state ? r : p);
    } catch (e) {
      setPresErr((e as Error).message);
    }
  }

  const offer = offers[0];
  async function answer(accept: boolean) {
    if (!offer || offerBusy) return;
    setOfferBusy(true);
    setOfferErr("");
    try {
      if (accept) {
        await acceptOffer(offer.offer.offer_id);
        if (offer.offer.ticket_id) ticketTasks.set(offer.offer.ticket_id, offer.offer.offer_id);
      } else {
        await rejectOffer(offer.offer.offer_id);
      }
      setOffers((old) => old.filter((x) => x.offer.offer_id !== offer.offer.offer_id));
      if (accept) {
        setRefresh((x) => x + 1);
        go({ list: "mine", ticket: offer.offer.ticket_id });
      }
    } catch (e) {
      setOfferErr((e as Error).message);
      // An offer that timed out or went to someone else cannot be answered any more.
      const code = (e as any).kind ?? (e as any).code;
      if (code === "not_found" || code === "conflict") {
        setTimeout(() => setOffers((old) => old.filter((x) => x.offer.offer_id !== offer.offer.offer_id)), 1500);
      }
    } finally {
      setOfferBusy(false);
    }
  }

  useEffect(() => {
    function onKey(e: KeyboardEvent) {
      if (offer && e.altKey && (e.key === "a" || e.key === "A")) { e.preventDefault(); answer(true); }
      else if (offer && e.altKey && (e.key === "r" || e.key === "R")) { e.preventDefault(); answer(false); }
      else if (e.altKey && ["1", "2", "3"].includes(e.key)) { e.preventDefault(); go({ list: LISTS[Number(e.key) - 1].name }); }
      else if (e.altKey && e.key === "4" && me.role !== "agent") { e.preventDefault(); go({ list: "live" }); }
      else if (e.altKey && e.key === "5" && me.role === "admin") { e.preventDefault(); go({ list: "widgets" }); }
    }
    addEventListener("keydown", onKey);
    return () => removeEventListener("keydown", onKey);
  });

  return (
    <div class="desk">
      <a class="skip" href="#main">Skip to ticket</a>
      <header class="topbar">
        <span class="brand">AgentDesk</span>
        <nav aria-label="Ticket lists">
          {[
            ...LISTS,
            ...(me.role === "agent" ? [] : [{ name: "live" as const, title: "Live queues" }]),
            ...(me.role === "admin" ? [{ name: "widgets" as const, title: "Chat widgets" }] : []),
          ].map((l, i) => (
            <a href={`/${l.name}`} aria-current={route.list === l.name ? "page" : undefined} aria-keyshortcuts={`Alt+${i + 1}`}
              onClick={(e) => { e.preventDefault(); go({ list: l.name }); }}>
              {l.title}{l.name === "mine" && totalUnread ? <span class="badge" aria-label={`${totalUnread} unread`}>{totalUnread}</span> : null}
            </a>
          ))}
        </nav>
        <span class={`conn conn-${sockState}`} role="status" title="Live connection">
          {sockState === "open" ? "Live" : sockState === "connecting" ? "Connecting…" : "Offline — reconnecting"}
        </span>
        <PresenceSwitch presence={presence} onChange={changePresence} />
        {presErr && <span class="error" role="alert">{presErr}</span>}
        <span class="who">{me.name} <span class="muted">({label(me.role)})</span></span>
        <button class="link" onClick={async () => { await logout().catch(() => {}); socket.stop(); onLogout(); }}>Sign out</button>
      </header>
      {offer && (
        <OfferCard offer={offer.offer} receivedAt={offer.at} busy={offerBusy} error={offerErr}
          onAccept={() => answer(true)} onReject={() => answer(false)} />
      )}
      {route.list === "live" ? (
        <main id="main" class="live-pane" tabIndex={-1}>
          <LiveQueues socket={socket} agents={agents} />
        </main>
      ) : route.list === "widgets" ? (
        <main id="main" class="live-pane" tabIndex={-1}>
          <Widgets />
        </main>
      ) : (
      <div class="panes">
        <TicketList list={route.list as ListName} me={me} selected={route.ticket} unread={unread} refresh={refresh}
          onOpen={(id) => go({ list: route.list as ListName, ticket: id })} onItems={watch} socket={socket} />
        <main id="main" class="main-pane" tabIndex={-1}>
          {route.ticket ? (
            <TicketView key={route.ticket} id={route.ticket} me={me} socket={socket} agents={agents}
              customerName={(id) => names.current.get(id) ?? ""}
              onChanged={() => setRefresh((x) => x + 1)} onTicket={setCurrent} />
          ) : (
            <section class="workspace empty-state">
              <h2>No ticket open</h2>
              <p class="muted">Choose a ticket from the list (↑/↓, Enter), or set yourself Available to receive offers.</p>
              <p class="muted">Shortcuts: Alt+1/2/3 lists · Alt+A accept · Alt+R reject · Ctrl+Enter send</p>
            </section>
          )}
        </main>
        {route.ticket && current && current.id === route.ticket ? (
          <CustomerPanel customerId={current.customer_id} refresh={refresh} onOpenTicket={(id) => go({ list: route.list as ListName, ticket: id })}
            onLoaded={(c: Customer) => { names.current.set(c.id, c.name); }} />
        ) : <aside class="customer-panel" aria-label="Customer" />}
      </div>
      )}
    </div>
  );
}
