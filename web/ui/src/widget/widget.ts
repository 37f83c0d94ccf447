// widget.js: the customer chat widget. A site adds
//   <script src="https://desk.example.com/widget.js" data-widget="ID" async></script>
// and gets a launcher button and a chat panel. No dependencies, no framework:
// it must stay tiny and must not clash with the host page, so everything lives
// in a shadow root with its own stylesheet.
//
// Everything that depends on the server's API (paths, message types, field
// names) is in the PROTOCOL block below.
import { CSS } from "./style";

// ---- PROTOCOL -----------------------------------------------------------
// REST paths are relative to the desk's origin (the script's src).
const W = (id: string) => `/api/v1/widget/${encodeURIComponent(id)}`;
const P = {
  /** POST {visitor_id?} → Session: the signed token bound to the visitor. */
  session: (id: string) => `${W(id)}/session`,
  /** POST (Bearer) {name,email,queue_id,body} → {ticket_id}: starts a chat. */
  start: (id: string) => `${W(id)}/chat`,
  /** POST (Bearer) → 204: the visitor ends the chat. */
  end: (id: string) => `${W(id)}/chat/end`,
  /** POST (Bearer) {rating, comment} → 204: CSAT on the chat's ticket. */
  rate: (id: string) => `${W(id)}/chat/rating`,
  /** POST (Bearer) {email} → 202: mails the transcript. */
  transcript: (id: string) => `${W(id)}/chat/transcript`,
  /** POST (Bearer) {name,email,body} → 201: offline message, an email ticket. */
  offline: (id: string) => `${W(id)}/messages`,
  /** POST multipart (Bearer), field "file" → {id,filename,content_type,size,url}; only during a chat. */
  upload: (id: string) => `${W(id)}/attachments`,
  /** GET (Bearer) → the bytes of a file of the visitor's chat. */
  file: (id: string, att: number) => `${W(id)}/attachments/${att}/content`,
  socket: "/ws/customer",
  // client → server over the socket
  resume: "resume", // {streams:[{stream,last_seq}]}
  send: "chat.send", // {ticket_id (0 = my open chat), body, client_msg_id, attachment_ids?}
  typing: "typing", // {ticket_id, typing}
  // server → client events on the visitor's stream
  queued: "chat.queued", // {ticket_id, position, estimated_wait_seconds}
  joined: "chat.agent_joined", // {ticket_id, agent_name}
  message: "message.created", // {message} or the message itself
  agentTyping: "typing", // {ticket_id, from, typing}
  ended: "chat.ended",
  state: "chat.state", // the chat after (re)connect: {status, ticket_id, messages, ...}
};

interface Session {
  visitor_id: string;
  token: string;
  online: boolean;
  queues?: { id: number; name: string }[];
  name?: string;
  email?: string;
  title?: string;
  greeting?: string;
  stream?: string;
  /** The visitor's open chat, when there is one: shown again after a reload. */
  chat?: { ticket_id?: number; status?: string; agent_name?: string; messages?: Msg[]; position?: number; estimated_wait_seconds?: number };
}

/** A file on a message (the API's attachment; older mail metadata says name). */
interface Att {
  id?: number;
  filename?: string;
  name?: string;
  content_type?: string;
  size?: number;
  url?: string;
}

interface Msg {
  id?: number | string;
  ticket_id?: number;
  client_msg_id?: string;
  meta?: { attachments?: Att[]; client_msg_id?: unknown };
  direction?: "in" | "out";
  from?: "customer" | "agent" | "system";
  author_name?: string;
  body: string;
  attachments?: Att[];
  created_at?: string;
}

type View = "loading" | "prechat" | "waiting" | "chat" | "ended" | "offline" | "thanks" | "error";

// ---- tiny DOM helper ----------------------------------------------------
type Attrs = Record<string, string | number | boolean | EventListener | undefined>;
function h(tag: string, attrs: Attrs | null, ...kids: (Node | string | null | false | undefined)[]): HTMLElement {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === false) continue;
    if (typeof v === "function") el.addEventListener(k.slice(2).toLowerCase(), v as EventListener);
    else if (k === "text") el.textContent = String(v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const k of kids) if (k !== null && k !== false && k !== undefined) el.append(k);
  return el;
}

/** The launcher's speech bubble, drawn as SVG so no font or image is needed. */
function bubble(): SVGSVGElement {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("width", "26");
  svg.setAttribute("height", "26");
  svg.setAttribute("aria-hidden", "true");
  const path = document.createElementNS(ns, "path");
  path.setAttribute("d", "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z");
  path.setAttribute("fill", "#fff");
  svg.append(path);
  return svg;
}

function fmtSize(n: number): string {
  return n < 1024 ? `${n} B` : n < 1 << 20 ? `${Math.round(n / 1024)} KB` : `${(n / (1 << 20)).toFixed(1)} MB`;
}

/** Raster images are shown as thumbnails; everything else is a download. */
const IMAGE = /^image\/(png|jpeg|gif|webp)\b/;

function fmtWait(s: number): string {
  if (s < 60) return "less than a minute";
  const m = Math.round(s / 60);
  return m === 1 ? "about 1 minute" : `about ${m} minutes`;
}

const VISITOR_KEY = "agentdesk_visitor";
function storedVisitor(): string | undefined {
  try {
    const v = localStorage.getItem(VISITOR_KEY);
    if (v) return v;
  } catch {
    /* storage blocked: fall back to the cookie */
  }
  const m = document.cookie.match(/(?:^|;\s*)agentdesk_visitor=([^;]+)/);
  return m ? decodeURIComponent(m[1]) : undefined;
}
function storeVisitor(id: string) {
  try {
    localStorage.setItem(VISITOR_KEY, id);
  } catch {
    /* ignore */
  }
  document.cookie = `${VISITOR_KEY}=${encodeURIComponent(id)}; path=/; max-age=${60 * 60 * 24 * 365}; SameSite=Lax`;
}

class Widget {
  private root: ShadowRoot;
  private panel!: HTMLElement;
  private body!: HTMLElement;
  private launcher!: HTMLButtonElement;
  private badge!: HTMLElement;
  private view: View = "loading";
  private session?: Session;
  private ws?: WebSocket;
  private seq: Record<string, number> = {};
  private messages: Msg[] = [];
  private seen = new Set<string>();
  private agentName = "";
  private position = 0;
  private wait = 0;
  private typingTimer?: number;
  private lastTypingSent = 0;
  private unread = 0;
  private open = false;
  private retry = 0;
  private pending: { type: string; id: string; data: unknown }[] = [];
  private ticketId = 0;
  private acks = new Map<string, (data: any) => void>();
  private error = "";
  private email = "";
  /** The file being uploaded and how far it is (percent). */
  private uploading?: { name: string; pct: number };
  private blobs = new Map<number, Promise<string>>();

  constructor(private host: string, private widgetId: string) {
    const mount = document.createElement("div");
    mount.setAttribute("data-agentdesk-widget", widgetId);
    document.body.appendChild(mount);
    this.root = mount.attachShadow({ mode: "open" });
    this.style();
    this.build();
    this.connectSession();
  }

  private style() {
    // A constructed stylesheet is not inline markup, so host pages with a
    // strict style-src CSP still style the widget.
    try {
      const sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS);
      this.root.adoptedStyleSheets = [sheet];
    } catch {
      this.root.append(h("style", { text: CSS }));
    }
  }

  private build() {
    this.badge = h("span", { class: "badge", hidden: true, "aria-hidden": "true" });
    this.launcher = h("button", {
      class: "launcher", type: "button", "aria-label": "Chat with us", "aria-expanded": "false",
      "aria-controls": "agentdesk-panel", "data-testid": "launcher", onclick: () => this.toggle(),
    }, bubble(), this.badge) as HTMLButtonElement;
    this.body = h("div", { class: "body" });
    this.panel = h("section", { id: "agentdesk-panel", class: "panel", role: "dialog", "aria-label": "Chat", hidden: true },
      h("header", null,
        h("strong", { class: "title", text: "Chat with us" }),
        h("button", { type: "button", class: "close", "aria-label": "Minimise chat", onclick: () => this.toggle(false), text: "–" }),
      ),
      this.body,
    );
    this.panel.addEventListener("keydown", (e) => {
      if ((e as KeyboardEvent).key === "Escape") this.toggle(false);
    });
    this.root.append(this.launcher, this.panel);
  }

  private toggle(force?: boolean) {
    this.open = force ?? !this.open;
    this.panel.hidden = !this.open;
    this.launcher.setAttribute("aria-expanded", String(this.open));
    if (this.open) {
      this.unread = 0;
      this.updateBadge();
      this.render();
      (this.panel.querySelector("input, textarea, select, button.primary") as HTMLElement | null)?.focus();
    } else {
      this.launcher.focus();
    }
  }

  private updateBadge() {
    this.badge.hidden = this.unread === 0;
    this.badge.textContent = String(this.unread);
  }

  // ---- server -----------------------------------------------------------

  private async api(path: string, body?: unknown, form?: FormData): Promise<any> {
    const headers: Record<string, string> = { Accept: "application/json" };
    if (this.session) headers.Authorization = `Bearer ${this.session.token}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const res = await fetch(this.host + path, {
      method: "POST", headers, credentials: "omit", mode: "cors",
      body: form ?? (body !== undefined ? JSON.stringify(body) : undefined),
    });
    const data = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(data?.error?.message || `The chat service answered ${res.status}.`);
    return data;
  }

  private async connectSession() {
    try {
      const s: Session = await this.api(P.session(this.widgetId), { visitor_id: storedVisitor() });
      this.session = s;
      storeVisitor(s.visitor_id);
      if (s.title) (this.panel.querySelector(".title") as HTMLElement).textContent = s.title;
      if (!s.online) {
        this.setView("offline");
        return;
      }
      this.setView("prechat");
      if (s.chat) this.applyState(s.chat);
      this.openSocket();
    } catch (e) {
      this.error = (e as Error).message;
      this.setView("error");
    }
  }

  private openSocket() {
    if (!this.session) return;
    const u = new URL(this.host + P.socket);
    u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
    u.searchParams.set("token", this.session.token);
    const ws = new WebSocket(u.toString());
    this.ws = ws;
    ws.onopen = () => {
      this.retry = 0;
      const streams = Object.entries(this.seq).map(([stream, last_seq]) => ({ stream, last_seq }));
      ws.send(JSON.stringify({ type: P.resume, id: "r", data: { streams } }));
      for (const p of this.pending.splice(0)) ws.send(JSON.stringify(p));
    };
    ws.onmessage = (ev) => {
      try {
        this.onEvent(JSON.parse(ev.data));
      } catch {
        /* a malformed frame is ignored; the stream stays usable */
      }
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = undefined;
      if (ev.code === 4001 || ev.code === 1008) {
        // The token expired or was refused: get a fresh one.
        this.session = undefined;
        setTimeout(() => this.connectSession(), 1000);
        return;
      }
      setTimeout(() => this.openSocket(), Math.min(15000, 500 * 2 ** this.retry++));
    };
  }

  private nextId = 1;
  private send(type: string, data?: unknown) {
    const frame = { type, id: `w${this.nextId++}`, data };
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(frame));
    else this.pending.push(frame);
  }

  private onEvent(env: { type: string; stream?: string; seq?: number; id?: string; data?: any }) {
    if (env.stream && (env.type === "subscribed" || env.type === "resync")) {
      this.seq[env.stream] = env.seq ?? 0;
      return;
    }
    if (env.stream && env.seq) {
      if (env.seq <= (this.seq[env.stream] ?? 0)) return;
      this.seq[env.stream] = env.seq;
    }
    const d = env.data ?? {};
    if (env.type === "ack" || env.type === "error") {
      const f = env.id ? this.acks.get(env.id) : undefined;
      if (env.id) this.acks.delete(env.id);
      if (env.type === "ack") {
        f?.(d);
        return;
      }
    }
    if (d.ticket_id) this.ticketId = d.ticket_id;
    switch (env.type) {
      case P.state:
        // Sent right after a resync: the chat as it stands, or null when
        // there is none to show (a chat on screen ended and was rated).
        if (env.data == null) {
          if (this.view === "waiting" || this.view === "chat") {
            this.messages = [];
            this.seen.clear();
            this.ticketId = 0;
            this.setView("prechat");
          }
          break;
        }
        this.applyState(d);
        break;
      case P.queued:
        this.position = d.position ?? this.position;
        this.wait = d.estimated_wait_seconds ?? this.wait;
        if (this.view === "prechat" || this.view === "waiting") this.setView("waiting");
        break;
      case P.joined:
        this.agentName = d.agent_name || "An agent";
        this.addMessage({ id: `joined-${env.seq ?? Date.now()}`, from: "system", body: `${this.agentName} joined the chat` });
        this.setView("chat");
        break;
      case P.message: {
        const m: Msg = d.message ?? d;
        if (m.ticket_id) this.ticketId = m.ticket_id;
        this.addMessage(m);
        if (this.view === "waiting" && this.isAgent(m)) this.setView("chat");
        break;
      }
      case P.agentTyping:
        if (d.from === "customer" || d.typing === false) break;
        this.showTyping(true);
        clearTimeout(this.typingTimer);
        this.typingTimer = window.setTimeout(() => this.showTyping(false), 5000);
        break;
      case P.ended:
        if (this.view !== "ended" && this.view !== "thanks") this.setView("ended");
        break;
      case "error":
        this.error = d.message || "Something went wrong.";
        this.render();
        break;
    }
  }

  private applyState(d: any) {
    if (Array.isArray(d.messages)) {
      this.messages = [];
      this.seen.clear();
      d.messages.forEach((m: Msg) => this.addMessage(m, true));
    }
    if (d.agent_name) this.agentName = d.agent_name;
    if (d.ticket_id) this.ticketId = d.ticket_id;
    if (d.position !== undefined) this.position = d.position;
    if (d.estimated_wait_seconds !== undefined) this.wait = d.estimated_wait_seconds;
    const status = d.status as string | undefined;
    if (status === "queued" || status === "waiting") this.setView("waiting");
    else if (status === "active" || status === "assigned") this.setView("chat");
    else if (status === "ended" && this.view !== "thanks") this.setView(this.messages.length ? "ended" : "prechat");
    else this.render();
  }

  private isAgent(m: Msg) {
    return m.from === "agent" || m.direction === "out";
  }

  private addMessage(m: Msg, quiet = false) {
    const key = m.id !== undefined && m.id !== null ? String(m.id) : `${m.created_at}-${m.body}`;
    const clientKey = m.client_msg_id ?? (m.meta?.client_msg_id as string | undefined);
    if (this.seen.has(key) || (clientKey && this.seen.has(clientKey))) return;
    this.seen.add(key);
    this.messages.push(m);
    if (this.isAgent(m)) {
      this.showTyping(false);
      if (!this.open && !quiet) {
        this.unread++;
        this.updateBadge();
      }
    }
    const log = this.root.querySelector(".log");
    if (log && (this.view === "chat" || this.view === "waiting" || this.view === "ended")) {
      log.append(this.renderMessage(m));
      log.scrollTop = log.scrollHeight;
    }
  }

  /** Sends a chat message; it shows at once and the ack gives it its id. */
  private sendChat(body: string, files: Att[] = []) {
    const clientId = `c${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
    const local: Msg = { id: clientId, direction: "in", from: "customer", body, attachments: files };
    this.addMessage(local);
    this.acks.set(`w${this.nextId}`, (ack) => {
      if (ack?.message_id) this.seen.add(String(ack.message_id));
      if (ack?.ticket_id) this.ticketId = ack.ticket_id;
    });
    const data: Record<string, unknown> = { ticket_id: this.ticketId, body, client_msg_id: clientId };
    if (files.length) data.attachment_ids = files.map((f) => f.id);
    this.send(P.send, data);
  }

  /** Uploads a file with XHR, which reports progress (fetch does not). */
  private uploadFile(f: File, progress: (pct: number) => void): Promise<Att> {
    return new Promise((resolve, reject) => {
      const x = new XMLHttpRequest();
      x.open("POST", this.host + P.upload(this.widgetId));
      x.setRequestHeader("Accept", "application/json");
      if (this.session) x.setRequestHeader("Authorization", `Bearer ${this.session.token}`);
      x.upload.onprogress = (e) => {
        if (e.lengthComputable) progress(Math.round((e.loaded * 100) / e.total));
      };
      x.onload = () => {
        let d: any = {};
        try {
          d = JSON.parse(x.responseText);
        } catch {
          /* not JSON: the status says enough */
        }
        if (x.status >= 200 && x.status < 300) resolve(d);
        else reject(new Error(d?.error?.message || `The upload failed (${x.status}).`));
      };
      x.onerror = () => reject(new Error("The upload failed. Check your connection and try again."));
      const fd = new FormData();
      fd.append("file", f, f.name);
      x.send(fd);
    });
  }

  private async sendFile(f: File) {
    this.uploading = { name: f.name, pct: 0 };
    this.error = "";
    this.render();
    try {
      const a = await this.uploadFile(f, (pct) => {
        if (!this.uploading) return;
        this.uploading.pct = pct;
        const st = this.root.querySelector("[data-testid=upload-status]");
        if (st) st.textContent = `Uploading ${f.name}… ${pct}%`;
      });
      this.uploading = undefined;
      this.render();
      this.sendChat("", [a]);
    } catch (err) {
      this.uploading = undefined;
      this.error = `${f.name}: ${(err as Error).message}`;
      this.render();
    }
  }

  /** A file's bytes as an object URL, fetched once with the token (a plain
   *  link cannot carry it). */
  private blobURL(id: number): Promise<string> {
    let p = this.blobs.get(id);
    if (!p) {
      p = fetch(this.host + P.file(this.widgetId, id), {
        headers: { Authorization: `Bearer ${this.session?.token ?? ""}` }, credentials: "omit", mode: "cors",
      }).then((r) => {
        if (!r.ok) throw new Error(`The file could not be loaded (${r.status}).`);
        return r.blob();
      }).then((b) => URL.createObjectURL(b));
      p.catch(() => this.blobs.delete(id));
      this.blobs.set(id, p);
    }
    return p;
  }

  private renderFile(a: Att): HTMLElement {
    const name = a.filename || a.name || "file";
    const label = `⤓ ${name}${a.size ? ` (${fmtSize(a.size)})` : ""}`;
    if (!a.id) {
      // Mail metadata without an id: a plain link when it has one.
      return h("a", { class: "file", href: a.url ? (a.url.startsWith("http") ? a.url : this.host + a.url) : undefined, target: "_blank", rel: "noopener", text: label });
    }
    const id = a.id;
    const link = h("a", { class: "file", href: "#", "data-testid": "file", title: `Download ${name}` });
    if (IMAGE.test(a.content_type ?? "")) {
      const img = h("img", { class: "thumb", alt: name }) as HTMLImageElement;
      link.append(img);
      this.blobURL(id).then((u) => (img.src = u), () => img.remove());
    }
    link.append(h("span", { text: label }));
    link.addEventListener("click", (e) => {
      e.preventDefault();
      this.blobURL(id).then((u) => {
        const save = h("a", { href: u, download: name, hidden: true });
        this.root.append(save);
        save.click();
        save.remove();
      }, (err) => {
        this.error = (err as Error).message;
        this.render();
      });
    });
    return link;
  }

  private showTyping(on: boolean) {
    const t = this.root.querySelector(".typing");
    if (t) t.textContent = on ? `${this.agentName || "Agent"} is typing…` : "";
  }

  // ---- views -------------------------------------------------------------

  private setView(v: View) {
    this.view = v;
    this.error = "";
    this.render();
  }

  private render() {
    const b = this.body;
    b.replaceChildren();
    const err = this.error ? h("p", { class: "error", role: "alert", text: this.error }) : null;
    switch (this.view) {
      case "loading":
        b.append(h("p", { class: "muted", text: "Connecting…" }));
        break;
      case "error":
        b.append(h("p", { class: "error", role: "alert", text: this.error || "The chat is not available right now." }),
          h("button", { type: "button", onclick: () => { this.setView("loading"); this.connectSession(); }, text: "Try again" }));
        break;
      case "prechat":
        b.append(this.prechat(), err ?? "");
        break;
      case "waiting":
      case "chat":
        b.append(this.chat(), err ?? "");
        break;
      case "ended":
        b.append(this.ended(), err ?? "");
        break;
      case "offline":
        b.append(this.offline(), err ?? "");
        break;
      case "thanks":
        b.append(h("p", { class: "thanks", role: "status", "data-testid": "thanks", text: "Thank you! We have your feedback." }),
          h("button", { type: "button", onclick: () => { this.messages = []; this.seen.clear(); this.agentName = ""; this.setView("prechat"); }, text: "Start a new chat" }));
        break;
    }
  }

  private field(label: string, input: HTMLElement): HTMLElement {
    return h("label", { class: "field" }, h("span", { text: label }), input);
  }

  private prechat(): HTMLElement {
    const s = this.session!;
    const name = h("input", { name: "name", required: true, autocomplete: "name", value: s.name ?? "", maxlength: 200 }) as HTMLInputElement;
    const email = h("input", { name: "email", type: "email", required: true, autocomplete: "email", value: s.email ?? "", maxlength: 320 }) as HTMLInputElement;
    const topic = h("select", { name: "topic", required: true }) as HTMLSelectElement;
    for (const q of s.queues ?? []) topic.append(h("option", { value: q.id, text: q.name }));
    const first = h("textarea", { name: "message", rows: 3, required: true, maxlength: 4000 }) as HTMLTextAreaElement;
    const form = <HTMLFormElement>h("form", { class: "form", "aria-label": "Start a chat" },
      s.name ? h("p", { class: "muted", text: `Welcome back, ${s.name}!` }) : h("p", { class: "muted", text: s.greeting ?? "Tell us who you are and how we can help." }),
      this.field("Name", name),
      this.field("Email", email),
      (s.queues?.length ?? 0) > 1 ? this.field("Topic", topic) : null,
      this.field("How can we help?", first),
      h("button", { type: "submit", class: "primary", text: "Start chat" }),
    );
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      if (!form.reportValidity()) return;
      this.email = email.value.trim();
      const body = first.value.trim();
      this.messages = [];
      this.seen.clear();
      this.position = 0;
      const btn = form.querySelector("button[type=submit]") as HTMLButtonElement;
      btn.disabled = true;
      this.api(P.start(this.widgetId), {
        name: name.value.trim(), email: this.email,
        queue_id: topic.value ? Number(topic.value) : undefined, body,
      }).then((r) => {
        this.ticketId = r?.ticket_id ?? this.ticketId;
        if (r?.position !== undefined) this.position = r.position;
        if (r?.estimated_wait_seconds !== undefined) this.wait = r.estimated_wait_seconds;
        if (this.session) this.session.name = name.value.trim();
        this.addMessage({ id: r?.message_id, direction: "in", from: "customer", body });
        if (this.view === "prechat") this.setView("waiting");
      }, (err) => {
        btn.disabled = false;
        this.error = (err as Error).message;
        this.render();
      });
    });
    return form;
  }

  private renderMessage(m: Msg): HTMLElement {
    const who = m.from === "system" ? "system" : this.isAgent(m) ? "agent" : "me";
    const el = h("div", { class: `msg ${who}`, "data-testid": `msg-${who}` });
    if (who === "agent") el.append(h("span", { class: "who", text: m.author_name || this.agentName || "Agent" }));
    if (m.body) el.append(h("span", { class: "text", text: m.body }));
    for (const a of m.attachments?.length ? m.attachments : m.meta?.attachments ?? []) el.append(this.renderFile(a));
    return el;
  }

  private chat(): HTMLElement {
    const log = h("div", { class: "log", role: "log", "aria-live": "polite", "aria-label": "Messages" });
    this.messages.forEach((m) => log.append(this.renderMessage(m)));
    setTimeout(() => (log.scrollTop = log.scrollHeight));
    const status = this.view === "waiting"
      ? h("p", { class: "status", role: "status", "data-testid": "queue-status" },
        this.position ? `You are number ${this.position} in the queue` : "Finding an agent for you…",
        this.wait ? h("span", { text: ` · estimated wait ${fmtWait(this.wait)}` }) : "")
      : h("p", { class: "status", role: "status", "data-testid": "agent-name", text: `You are chatting with ${this.agentName || "an agent"}` });
    const input = h("textarea", { rows: 2, "aria-label": "Your message", placeholder: "Type a message…", maxlength: 4000 }) as HTMLTextAreaElement;
    const file = h("input", { type: "file", class: "sr-only", "aria-label": "Attach a file", "data-testid": "attach", disabled: !!this.uploading }) as HTMLInputElement;
    const form = h("form", { class: "composer", "aria-label": "Send a message" },
      input,
      h("div", { class: "row" },
        h("label", { class: "attach", title: "Attach a file" }, h("span", { text: "+ File" }), file),
        h("button", { type: "button", class: "end", onclick: () => { this.api(P.end(this.widgetId), {}).catch(() => {}); this.setView("ended"); }, text: "End chat" }),
        h("button", { type: "submit", class: "primary", text: "Send" }),
      ),
    );
    const submit = (e: Event) => {
      e.preventDefault();
      const body = input.value.trim();
      if (!body) return;
      if (body.length > 4000) {
        this.error = "That message is too long (4,000 characters at most).";
        this.render();
        return;
      }
      this.sendChat(body);
      input.value = "";
      input.focus();
    };
    form.addEventListener("submit", submit);
    input.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey) submit(e);
    });
    input.addEventListener("input", () => {
      const now = Date.now();
      if (this.ticketId && now - this.lastTypingSent > 2000) {
        this.lastTypingSent = now;
        this.send(P.typing, { ticket_id: this.ticketId, typing: true });
      }
    });
    file.addEventListener("change", () => {
      const f = file.files?.[0];
      if (f) this.sendFile(f);
    });
    const up = this.uploading
      ? h("p", { class: "upload", role: "status", "data-testid": "upload-status", text: `Uploading ${this.uploading.name}… ${this.uploading.pct}%` })
      : null;
    return h("div", { class: "chat" }, status, log, h("p", { class: "typing", "aria-live": "polite" }), up, form);
  }

  private ended(): HTMLElement {
    let rating = 0;
    const stars = h("div", { class: "stars", role: "radiogroup", "aria-label": "Rate this chat from 1 to 5" });
    for (let i = 1; i <= 5; i++) {
      const b = h("button", {
        type: "button", role: "radio", "aria-checked": "false", "aria-label": `${i} of 5`, "data-rating": i, text: "★",
        onclick: () => {
          rating = i;
          stars.querySelectorAll("button").forEach((x, j) => {
            x.setAttribute("aria-checked", String(j + 1 === i));
            x.classList.toggle("on", j < i);
          });
        },
      });
      stars.append(b);
    }
    const comment = h("textarea", { rows: 2, maxlength: 2000, name: "comment" }) as HTMLTextAreaElement;
    const wantTranscript = h("input", { type: "checkbox", name: "transcript" }) as HTMLInputElement;
    const tEmail = h("input", { type: "email", name: "transcript_email", value: this.email || this.session?.email || "", "aria-label": "Email for the transcript" }) as HTMLInputElement;
    const form = h("form", { class: "form", "aria-label": "Rate the chat" },
      h("p", { text: "The chat has ended. How did we do?" }),
      stars,
      this.field("Comment (optional)", comment),
      h("label", { class: "check" }, wantTranscript, h("span", { text: " Email me the transcript" })),
      tEmail,
      h("button", { type: "submit", class: "primary", text: "Send feedback" }),
    );
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      if (!rating) {
        this.error = "Please choose 1 to 5 stars.";
        this.render();
        return;
      }
      const jobs = [this.api(P.rate(this.widgetId), { rating, comment: comment.value.trim() })];
      if (wantTranscript.checked && tEmail.value.trim()) jobs.push(this.api(P.transcript(this.widgetId), { email: tEmail.value.trim() }));
      Promise.all(jobs).then(() => this.setView("thanks"), (err) => {
        this.error = (err as Error).message;
        this.render();
      });
    });
    return form;
  }

  private offline(): HTMLElement {
    const s = this.session;
    const name = h("input", { name: "name", required: true, value: s?.name ?? "" }) as HTMLInputElement;
    const email = h("input", { name: "email", type: "email", required: true, value: s?.email ?? "" }) as HTMLInputElement;
    const msg = h("textarea", { name: "message", rows: 4, required: true, maxlength: 10000 }) as HTMLTextAreaElement;
    const form = <HTMLFormElement>h("form", { class: "form", "aria-label": "Leave a message" },
      h("p", { text: "We are offline right now. Leave a message and we will answer by email." }),
      this.field("Name", name), this.field("Email", email), this.field("Message", msg),
      h("button", { type: "submit", class: "primary", text: "Leave a message" }),
    );
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      if (!form.reportValidity()) return;
      try {
        await this.api(P.offline(this.widgetId), { name: name.value.trim(), email: email.value.trim(), body: msg.value.trim() });
        this.body.replaceChildren(h("p", { class: "thanks", role: "status", text: "Thanks! We will answer by email." }));
      } catch (err) {
        this.error = (err as Error).message;
        this.render();
      }
    });
    return form;
  }
}

(function boot() {
  const script = (document.currentScript as HTMLScriptElement | null) ??
    document.querySelector<HTMLScriptElement>("script[data-widget]");
  if (!script || (window as any).__agentdeskWidget) return;
  const id = script.dataset.widget;
  if (!id) {
    console.warn("AgentDesk widget: the script tag needs data-widget=\"ID\"");
    return;
  }
  const host = new URL(script.src, location.href).origin;
  const start = () => ((window as any).__agentdeskWidget = new Widget(host, id));
  if (document.body) start();
  else document.addEventListener("DOMContentLoaded", start);
})();
