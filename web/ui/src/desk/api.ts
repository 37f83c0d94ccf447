// api.ts is the desk's only door to the server: every REST path, request and
// response shape, and every websocket message type lives here, so following a
// change of the API is an edit in one file.

export type Role = "agent" | "supervisor" | "admin";
export type Channel = "email" | "chat" | "voice" | "form" | "order" | "social" | "in_person";
export type Status = "new" | "open" | "pending" | "on_hold" | "solved" | "closed";
export type Priority = "low" | "normal" | "high" | "urgent";
export type MessageKind = "email" | "chat" | "call" | "form" | "order_event" | "social" | "in_person" | "note";

export const STATUSES: Status[] = ["new", "open", "pending", "on_hold", "solved", "closed"];
export const PRIORITIES: Priority[] = ["low", "normal", "high", "urgent"];
export const CHANNELS: Channel[] = ["email", "chat", "voice", "form", "order", "social", "in_person"];
export const RESOLUTIONS = ["solved", "cancellation", "retained", "duplicate", "no_response", "spam"] as const;
export type Resolution = (typeof RESOLUTIONS)[number];
export const AWAY_REASONS = ["break", "lunch", "meeting", "training"] as const;

export interface Agent {
  id: number;
  email: string;
  name: string;
  role: Role;
  team_ids: number[];
}

export interface Identity {
  id: number;
  kind: "email" | "phone" | "visitor" | "social" | "shop";
  network?: string;
  value: string;
}

export interface Customer {
  id: number;
  name: string;
  company_id: number | null;
  lifecycle_stage: string;
  identities: Identity[];
  attributes: Record<string, string>;
  lifetime_value_cents?: number;
  currency?: string;
  created_at: string;
}

export interface Company {
  id: number;
  name: string;
  domain?: string;
}

export interface Outcome {
  contact_reason_id: number | null;
  resolution_code?: string;
  cancellation_reason_id: number | null;
  revenue_lost_cents?: number;
  retention_offered?: boolean;
  retention_accepted?: boolean;
}

export interface Ticket {
  id: number;
  subject: string;
  status: Status;
  priority: Priority;
  channel: Channel;
  customer_id: number;
  assignee_id: number | null;
  team_id: number | null;
  tags: string[];
  outcome: Outcome;
  times: { created_at: string; updated_at: string; resolved_at: string | null; resolution_seconds: number | null };
  customer_name?: string;
  /** The account's own name for the stage, mapped onto status (GET /statuses). */
  custom_status?: string;
}

/** A file on a message, or one just uploaded (POST /attachments). */
export interface Attachment {
  id?: number | string;
  filename: string;
  size?: number;
  content_type?: string;
  url?: string;
  sha256?: string;
}

export interface Message {
  id: number;
  ticket_id: number;
  customer_id: number;
  kind: MessageKind;
  direction: "in" | "out" | "internal";
  author_id: number | null;
  subject?: string;
  body: string;
  meta?: { attachments?: any[]; [k: string]: unknown };
  /** The message's files (uploads linked to it, files of an email). */
  attachments?: Attachment[];
  created_at: string;
}

/** A message's files: its attachments, or for messages stored before files
 * were linked, meta.attachments or a mail's meta.email.attachments. */
export function messageAttachments(m: Message): Attachment[] {
  const email = (m.meta?.email ?? {}) as { attachments?: any[] };
  const list: any[] = m.attachments?.length ? m.attachments : m.meta?.attachments ?? email.attachments ?? [];
  return list
    .filter((a) => !a.inline)
    .map((a) => ({ id: a.id ?? a.sha256, filename: a.filename ?? a.name ?? "file", size: a.size, content_type: a.content_type, url: a.url }));
}

/** What the channel did with an outbound message: meta.delivery or the
 * email outbox's meta.email.delivery, a state or {state, answer}. */
export function messageDelivery(m: Message): { state: string; answer: string } | null {
  const d = (m.meta?.delivery ?? (m.meta?.email as any)?.delivery) as string | { state?: string; answer?: string } | undefined;
  if (!d) return null;
  if (typeof d === "string") return { state: d, answer: String(m.meta?.delivery_reason ?? "") };
  return d.state ? { state: d.state, answer: d.answer ?? "" } : null;
}

export interface Reason {
  id: number;
  kind: "contact" | "cancellation";
  parent_id: number | null;
  name: string;
  archived_at: string | null;
}

export interface Team {
  id: number;
  name: string;
}

export type CannedScope = "personal" | "team" | "account";
/** A canned response (GET /canned-responses): shared with the account, a
 * team, or personal. Its body may hold placeholders such as
 * {{customer.first_name}}, which the server fills in for a ticket. */
export interface Canned {
  id: number;
  title: string;
  body: string;
  shortcut: string;
  scope: CannedScope;
  team_id: number | null;
  agent_id: number | null;
  updated_at?: string;
}
export type NewCanned = Pick<Canned, "title" | "body" | "shortcut"> & { scope?: CannedScope; team_id?: number | null };

/** The placeholders a canned response may use. */
export const PLACEHOLDERS = ["customer.name", "customer.first_name", "customer.email", "agent.name", "ticket.id", "ticket.subject"] as const;

/** The base statuses and the account's custom statuses (GET /statuses). */
export interface CustomStatus {
  id: number;
  name: string;
  maps_to: Status;
}
export interface StatusList {
  base: Status[];
  items: CustomStatus[];
}

export interface List<T> {
  items: T[];
  next_cursor?: string;
}

/** The routing engine's offer event (routing.Offer) in the desk's terms. */
export function normalizeOffer(d: any): Offer {
  const a = d.attributes ?? {};
  return {
    offer_id: d.offer_id ?? d.task_id,
    ticket_id: d.ticket_id ?? a.ticket_id,
    channel: d.channel,
    customer_id: d.customer_id ?? undefined,
    customer_name: d.customer_name ?? a.customer_name ?? a.name,
    queue_id: d.queue_id,
    queue_name: d.queue_name ?? a.queue_name ?? a.queue,
    subject: d.subject ?? a.subject ?? a.topic,
    waited_seconds: d.waited_seconds ?? (d.waited_ms !== undefined ? d.waited_ms / 1000 : undefined),
    expires_at: d.expires_at,
    timeout_seconds: d.timeout_seconds,
  };
}

/** An offer of one task (offer_id is the routing task's id) to this agent. */
export interface Offer {
  offer_id: number;
  ticket_id: number;
  channel: Channel;
  customer_id?: number;
  customer_name?: string;
  queue_id?: number;
  queue_name?: string;
  subject?: string;
  waited_seconds?: number;
  /** RFC 3339; the offer goes to the next agent after this. */
  expires_at?: string;
  timeout_seconds?: number;
}

export type PresenceState = "available" | "away" | "offline" | "busy" | "wrap_up";
export interface Presence {
  state: PresenceState;
  reason?: string;
}

/** The one error body every endpoint answers with. */
export class ApiError extends Error {
  constructor(
    public status: number,
    public kind: string,
    message: string,
    public field?: string,
  ) {
    super(message);
  }
}

const BASE = "/api/v1";

async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const init: RequestInit = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (body instanceof FormData) {
    init.body = body;
  } else if (body !== undefined) {
    init.body = JSON.stringify(body);
    (init.headers as Record<string, string>)["Content-Type"] = "application/json";
  }
  let res: Response;
  try {
    res = await fetch(BASE + path, init);
  } catch {
    throw new ApiError(0, "unavailable", "The server cannot be reached. Check the connection.");
  }
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  let data: any = undefined;
  try {
    data = text ? JSON.parse(text) : undefined;
  } catch {
    /* not JSON: handled below */
  }
  if (!res.ok) {
    const e = data?.error;
    if (res.status === 401) onUnauthenticated?.();
    throw new ApiError(res.status, e?.kind ?? "internal", e?.message ?? `HTTP ${res.status}`, e?.field || undefined);
  }
  return data as T;
}

let onUnauthenticated: (() => void) | undefined;
/** Registers what happens when the session ends (401 on any call). */
export function setUnauthenticatedHandler(f: () => void) {
  onUnauthenticated = f;
}

function qs(params: Record<string, string | number | boolean | undefined | null | string[]>): string {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === "" || v === false) continue;
    if (Array.isArray(v)) v.forEach((x) => u.append(k, x));
    else u.set(k, String(v));
  }
  const s = u.toString();
  return s ? "?" + s : "";
}

function unwrap<T>(r: any, key: string): T {
  return r && typeof r === "object" && key in r ? r[key] : r;
}

// --- session -----------------------------------------------------------

export async function login(email: string, password: string): Promise<Agent> {
  return unwrap<Agent>(await call("POST", "/auth/login", { email, password }), "agent");
}
export const logout = () => call<void>("POST", "/auth/logout");
export async function me(): Promise<Agent> {
  return unwrap<Agent>(await call("GET", "/me"), "agent");
}

// --- presence and offers ----------------------------------------------

// --- routing: presence, offers, wrap-up ------------------------------------

export const getPresence = () => call<Presence>("GET", "/presence");
export const setPresence = (p: Presence) => call<Presence>("PUT", "/presence", { state: p.state, reason: p.reason ?? "" });
/** An offer's id is its routing task's id. */
export const acceptOffer = (taskId: number) => call<unknown>("POST", `/tasks/${taskId}/accept`);
export const rejectOffer = (taskId: number, reason = "") => call<unknown>("POST", `/tasks/${taskId}/reject`, { reason });
/** Ends the interaction; the agent is in wrap-up until the task completes. */
export const startWrapUp = (taskId: number) => call<unknown>("POST", `/tasks/${taskId}/wrap-up`);
export const queueStats = () => call<List<any>>("GET", "/queues/stats");
export const agentPresence = () => call<List<any>>("GET", "/agents/presence");
export const completeTask = (taskId: number, o: Outcome) => call<unknown>("POST", `/tasks/${taskId}/complete`, o);

/** Which routing task brought each ticket to this agent (from accepted
 * offers), so wrap-up can complete the task too. Kept per browser tab. */
export const ticketTasks = {
  get(ticketId: number): number | undefined {
    const v = sessionStorage.getItem(`agentdesk.task.${ticketId}`);
    return v ? Number(v) : undefined;
  },
  set(ticketId: number, taskId: number) {
    sessionStorage.setItem(`agentdesk.task.${ticketId}`, String(taskId));
  },
  delete(ticketId: number) {
    sessionStorage.removeItem(`agentdesk.task.${ticketId}`);
  },
};

// --- tickets -----------------------------------------------------------

export interface TicketFilter {
  status?: string[];
  assignee?: number | "me";
  team?: number;
  customer?: number;
  channel?: string;
  priority?: string;
  tag?: string;
  unassigned?: boolean;
  limit?: number;
  cursor?: string;
}

export const tickets = (f: TicketFilter) =>
  call<List<Ticket>>("GET", "/tickets" + qs({ ...f, status: f.status?.join(",") }));
export const ticket = (id: number) => call<Ticket>("GET", `/tickets/${id}`);
export const updateTicket = (id: number, patch: Partial<Ticket>) => call<Ticket>("PATCH", `/tickets/${id}`, patch);

export const messages = (ticketId: number, cursor?: string) =>
  call<List<Message>>("GET", `/tickets/${ticketId}/messages` + qs({ cursor, limit: 100 }));

export interface NewMessage {
  kind: MessageKind;
  direction: "out" | "internal";
  body: string;
  subject?: string;
  /** Uploads (POST /attachments) to link to the message. */
  attachment_ids?: (number | string)[];
}
export const sendMessage = (ticketId: number, m: NewMessage) => call<Message>("POST", `/tickets/${ticketId}/messages`, m);

/** Uploads one file (multipart field "file"), reporting progress from 0 to
 * 1. fetch cannot report upload progress, hence XMLHttpRequest. A refused
 * file rejects with the server's ApiError (413 too large, 422 invalid);
 * abort() through signal rejects with an AbortError. */
export function uploadAttachment(file: File, opts: { onProgress?: (fraction: number) => void; signal?: AbortSignal } = {}): Promise<Attachment> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", BASE + "/attachments");
    xhr.withCredentials = true;
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable && e.total > 0) opts.onProgress?.(e.loaded / e.total);
    };
    xhr.onload = () => {
      let data: any;
      try {
        data = xhr.responseText ? JSON.parse(xhr.responseText) : undefined;
      } catch {
        /* not JSON: handled below */
      }
      if (xhr.status >= 200 && xhr.status < 300 && data) {
        opts.onProgress?.(1);
        resolve(data as Attachment);
        return;
      }
      const e = data?.error;
      if (xhr.status === 401) onUnauthenticated?.();
      const fallback = xhr.status === 413 ? "The file is too large." : `HTTP ${xhr.status}`;
      reject(new ApiError(xhr.status, e?.kind ?? (xhr.status === 413 ? "too_large" : "internal"), e?.message ?? fallback, e?.field || undefined));
    };
    xhr.onerror = () => reject(new ApiError(0, "unavailable", "The server cannot be reached. Check the connection."));
    xhr.onabort = () => reject(new DOMException("Upload cancelled", "AbortError"));
    if (opts.signal) {
      if (opts.signal.aborted) {
        reject(new DOMException("Upload cancelled", "AbortError"));
        return;
      }
      opts.signal.addEventListener("abort", () => xhr.abort(), { once: true });
    }
    const fd = new FormData();
    fd.append("file", file, file.name);
    xhr.send(fd);
  });
}

export interface WrapUp {
  status: Status;
  /** A custom status mapped onto status, set with the outcome. */
  custom_status?: string;
  contact_reason_id: number;
  resolution_code: Resolution;
  cancellation_reason_id: number | null;
  note?: string;
}
/** Wrap-up: the routing task (when the ticket came as an offer) records the
 * outcome and frees the agent; the ticket gets its outcome and status. */
export async function wrapUp(ticketId: number, w: WrapUp): Promise<Ticket> {
  const outcome: Outcome = {
    contact_reason_id: w.contact_reason_id,
    resolution_code: w.resolution_code,
    cancellation_reason_id: w.cancellation_reason_id,
  };
  const taskId = ticketTasks.get(ticketId);
  if (taskId) {
    try {
      await completeTask(taskId, outcome);
      ticketTasks.delete(ticketId);
    } catch (e) {
      // Completed before (another tab, a reload) or moved away: the ticket
      // still needs its outcome. Anything else (a missing reason) is the user's.
      if (!(e instanceof ApiError && (e.kind === "conflict" || e.kind === "not_found"))) throw e;
      ticketTasks.delete(ticketId);
    }
  }
  return call<Ticket>("PATCH", `/tickets/${ticketId}`, { status: w.status, ...(w.custom_status ? { custom_status: w.custom_status } : {}), outcome });
}

// --- customers ---------------------------------------------------------

export const customer = (id: number) => call<Customer>("GET", `/customers/${id}`);
export const company = (id: number) => call<Company>("GET", `/companies/${id}`);
/** Lifetime value per currency, in cents (orders not refunded or cancelled). */
export const lifetimeValue = (id: number) => call<{ totals: Record<string, number> }>("GET", `/customers/${id}/lifetime-value`);
export const customerTimeline = (id: number, cursor?: string) =>
  call<List<Message>>("GET", `/customers/${id}/timeline` + qs({ cursor, limit: 30 }));

// --- reference data ----------------------------------------------------

export const reasons = (kind: "contact" | "cancellation") => call<List<Reason>>("GET", "/reasons" + qs({ kind }));
export const teams = () => call<List<Team>>("GET", "/teams");
export interface Queue {
  id: number;
  name: string;
}
/** Queues by id; empty when the routing API is not there. */
export async function queues(): Promise<Map<number, string>> {
  try {
    const l = await call<List<Queue> | Queue[]>("GET", "/queues");
    const items = Array.isArray(l) ? l : l.items;
    return new Map(items.map((q) => [q.id, q.name]));
  } catch {
    return new Map();
  }
}
export const agents = () => call<List<Agent>>("GET", "/agents" + qs({ limit: 200 }));

// --- statuses and canned responses ---------------------------------------

let statusCache: Promise<StatusList> | undefined;
/** The base and custom statuses, read once per page load (they change rarely,
 * by an admin). */
export function statuses(): Promise<StatusList> {
  statusCache ??= call<StatusList>("GET", "/statuses").catch((e) => {
    statusCache = undefined;
    throw e;
  });
  return statusCache;
}

/** The canned responses this agent may use, by title: every page (there are
 * tens, not thousands). */
export async function cannedResponses(q = ""): Promise<Canned[]> {
  const all: Canned[] = [];
  let cursor: string | undefined;
  for (let i = 0; i < 10; i++) {
    const page = await call<List<Canned>>("GET", "/canned-responses" + qs({ q, cursor, limit: 200 }));
    all.push(...page.items);
    if (!(cursor = page.next_cursor)) break;
  }
  return all;
}
export const createCanned = (c: NewCanned) => call<Canned>("POST", "/canned-responses", c);
export const updateCanned = (id: number, c: Partial<Pick<Canned, "title" | "body" | "shortcut">>) => call<Canned>("PATCH", `/canned-responses/${id}`, c);
export const deleteCanned = (id: number) => call<void>("DELETE", `/canned-responses/${id}`);
/** The body with its placeholders filled in for the ticket. */
export async function renderCanned(id: number, ticketId: number): Promise<string> {
  return (await call<{ body: string }>("POST", `/canned-responses/${id}/render`, { ticket_id: ticketId })).body;
}

// --- chat widgets (admins) --------------------------------------------------

export interface ChatWidget {
  id: number;
  public_id: string;
  name: string;
  allowed_origins: string[];
  default_queue_id: number | null;
  topics: { name: string; queue_id: number }[];
  title: string;
  greeting: string;
  offline_behaviour: "message" | "queue";
  embed: string;
}
export type NewChatWidget = Omit<ChatWidget, "id" | "embed">;
export const widgets = () => call<List<ChatWidget>>("GET", "/widgets");
export const createWidget = (w: NewChatWidget) => call<ChatWidget>("POST", "/widgets", w);

// --- websocket (web/PROTOCOL.md) --------------------------------------

/** Server → desk event types. */
export const EV = {
  offer: "offer",
  offerGone: "offer_revoked", // {task_id, state, agent_id, reason}
  assigned: "task_assigned",
  message: "message.created",
  messageUpdated: "message.updated", // the same message, changed (an email's delivery state)
  typing: "typing",
  ticketUpdated: "ticket.updated",
  ticketUnassigned: "ticket.unassigned", // {ticket_id}: taken from me; my lists reload
  presence: "presence",
  resync: "resync",
} as const;

/** Desk → server message types. */
export const CMD = {
  typing: "typing", // {ticket_id, typing}
  chatSend: "chat.send", // {ticket_id, body, client_msg_id}
  presence: "presence.set", // {state, reason}
  accept: "offer.accept", // {offer_id}
  reject: "offer.reject", // {offer_id, reason}
} as const;

export const AGENT_SOCKET = "/ws/agent";
export const ticketStream = (id: number) => `ticket:${id}`;
